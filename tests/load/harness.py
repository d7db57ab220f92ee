"""A real `redactor serve` process for the load and fault suites, and what it needs.

A `Site` is one deployment in a temporary folder: key file, audit key, a vault (SQLite in the
data directory, or a PostgreSQL schema of its own, optionally reached through a `FaultProxy`),
a config file with one route to the stand-in upstream, and any number of `Server` processes
started from it (two of them are two replicas on one vault). Logs go to files (never a pipe:
a killed server's scan worker could hold a pipe open), appended across restarts, so every
line a process wrote can be searched afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from aiohttp import ClientError, ClientSession, ClientTimeout

from tests.load.faultproxy import FaultProxy
from tests.load.standin import HOST, StandInUpstream, free_port
from vault.keyring import generate_key_material, write_key_file

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_PORT = 5432
TENANT = "acme"
ROUTE = "hook"
AUDIT_KEY = base64.b64encode(bytes(range(32))).decode()
# Runs each argv list through redactor.cli.main, capturing what it prints and its exit code.
_BATCH = """
import contextlib, io, json, sys
from redactor.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    results.append((code, out.getvalue(), err.getvalue()))
print(json.dumps(results))
"""


@dataclass
class Site:
    """One deployment: its folder, vault, config and upstream; `Server`s run from it."""

    root: Path
    backend: str  # "sqlite" or "postgres"
    upstream: StandInUpstream
    route: Mapping[str, Any] = field(default_factory=dict)  # extra keys for the route
    top: Mapping[str, Any] = field(default_factory=dict)  # extra top-level settings
    pg_proxy: FaultProxy | None = None  # PostgreSQL reached through it when set
    schema: str = field(default_factory=lambda: "load_" + secrets.token_hex(6))
    servers: list[Server] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def key_file(self) -> Path:
        return self.root / "keys.json"

    @property
    def sqlite_file(self) -> Path:
        return self.data_dir / "vault.db"

    def vault_url(self, *, direct: bool = False) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.sqlite_file}"
        port = PG_PORT if direct or self.pg_proxy is None else self.pg_proxy.port
        return f"postgresql://postgres@{HOST}:{port}/test?schema={self.schema}"

    def env(self) -> dict[str, str]:
        """What an operator would set; nothing REDACTOR_* inherited from the test run."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
        return {
            **base,
            "REDACTOR_KEY_FILE": str(self.key_file),
            "REDACTOR_AUDIT_KEY": AUDIT_KEY,
            "REDACTOR_VAULT_URL": self.vault_url(),
            "REDACTOR_DATA_DIR": str(self.data_dir),
        }

    def config_file(self, name: str, listen: int, admin: int) -> Path:
        """The YAML file one server reads: its listeners, its audit file, the shared route."""
        doc: dict[str, Any] = {
            "listen": f"{HOST}:{listen}",
            "admin_listen": f"{HOST}:{admin}",
            "data_dir": str(self.data_dir),
            "audit_log": f"audit-{name}.jsonl",
            "audit_fsync": "never",  # durability is not what these suites measure
            # Faults that need a quick give-up set 1 s; otherwise a busy box is no fault.
            "upstream_timeout_s": 10,
            "upstream_connect_timeout_s": 5,
            # Generous: on a busy test box a vault call may wait for a CPU; the faults these
            # suites inject are their own (a cut database fails at once, not by timing out).
            "vault": {"timeout_s": 10},
            **self.top,
            "routes": [
                {
                    "name": ROUTE,
                    "path_prefix": "/hook/",
                    "strip_prefix": True,
                    "upstream": self.upstream.url + "helpdesk/",
                    "tenant": TENANT,
                    **self.route,
                }
            ],
        }
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return path

    async def prepare(self) -> None:
        """The key file; the first server start creates the vault (`--create-vault`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_key_file(self.key_file, generate_key_material(secrets.token_bytes))

    async def cli(self, *argv: str) -> tuple[int, str, str]:
        """`python -m redactor ARGV` with this site's environment: (exit code, stdout, stderr)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "redactor", *argv,
            env=self.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    async def cli_batch(self, *commands: tuple[str, ...]) -> list[tuple[int, str, str]]:
        """Several `redactor` commands in one interpreter (start-up is most of a command's
        cost): each through the console script's `main`, its own output and exit code. The
        interpreter's own stray output is appended to the last command's stderr."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _BATCH, json.dumps([list(c) for c in commands]),
            env=self.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
        assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
        results = [tuple(r) for r in json.loads(out.decode().splitlines()[-1])]
        code, last_out, last_err = results[-1]
        results[-1] = (code, last_out, last_err + err.decode(errors="replace"))
        return results  # type: ignore[return-value]

    def server(self, name: str) -> Server:
        server = Server(self, name, free_port(), free_port())
        self.servers.append(server)
        return server

    def log_files(self) -> list[Path]:
        """Every file a server wrote that a person reads: logs and audit trails."""
        return sorted(self.root.glob("*.log")) + sorted(self.data_dir.glob("audit*"))

    async def drop_schema(self) -> None:
        if self.backend != "postgres":
            return
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            await conn.close()

    async def close(self) -> None:
        for server in self.servers:
            await server.stop()
        await self.drop_schema()


@dataclass
class Server:
    """One `redactor serve` process of a site (restartable; the same ports each time)."""

    site: Site
    name: str
    listen: int
    admin: int
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.listen}/hook/"

    @property
    def log(self) -> Path:
        return self.site.root / f"{self.name}.log"

    @property
    def config(self) -> Path:
        return self.site.config_file(self.name, self.listen, self.admin)

    async def start(self, *, timeout_s: float = 60) -> None:
        """Start it and wait until /readyz answers 200."""
        config = self.config
        # The site's first start creates the vault, as `serve --create-vault` does once.
        create = ["--create-vault"] if not any(s.starts for s in self.site.servers) else []
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "redactor", "serve", "--config", str(config), *create,
                env=self.site.env(), stdout=out, stderr=out,
            )  # fmt: skip
        self.starts += 1
        async with ClientSession(timeout=ClientTimeout(total=2)) as session:
            async with asyncio.timeout(timeout_s):
                while True:
                    if self.proc.returncode is not None:
                        raise AssertionError(self.log.read_text(errors="replace")[-3000:])
                    try:
                        async with session.get(f"http://{HOST}:{self.admin}/readyz") as r:
                            if r.status == 200:
                                return
                    except (ClientError, TimeoutError):
                        pass
                    await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no draining, no stop record, leases and connections left as they are."""
        assert self.proc is not None
        self.proc.kill()

    async def wait(self) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout=60)

    async def stop(self) -> int | None:
        """SIGTERM and wait (a no-op when it is not running)."""
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout=60)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    async def get(self, path: str) -> tuple[int, str]:
        """GET on the admin listener: (status, body)."""
        async with (
            ClientSession(timeout=ClientTimeout(total=10)) as session,
            session.get(f"http://{HOST}:{self.admin}{path}") as r,
        ):
            return r.status, await r.text()

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the process and its children (scan workers) so far."""
        assert self.proc is not None
        return _cpu_ticks(self.proc.pid) / os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of `pid`, plus its live children's (/proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            ticks += sum(_cpu_ticks(int(child)) for child in task.read_text().split())
        except OSError:
            continue
    return ticks
