"""Every chain accounted for: writers record their chains in the vault's chain registry, and
`audit verify --config` names a chain (or a rotated file) the trail lost, however cleanly its
lines and checkpoint lines were removed."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from redactor.audit import AuditSink, AuditWriteError, SystemEvent
from redactor.audit.integrity import read_trail
from redactor.audit.registration import ChainRegistryError, StoreChainRegistry
from redactor.audit.registry import not_checked, registry_message
from redactor.cli import main
from redactor.ops.index_worker import Worker
from redactor.settings import Overrides, load_vault_config
from tests.audit.conftest import Trail, free_port
from tests.vault.conftest import PG_DSN
from vault.chains import ChainUpdate
from vault.cli import open_existing_store
from vault.config import VaultConfig
from vault.keyring import generate_key_material, write_key_file
from vault.service import Resolved
from vault.startup import open_vault

TOKEN = "tok_v1_ssn_" + "q" * 20


@dataclass
class Site:
    """A configuration file naming a vault (SQLite or PostgreSQL), its key, the audit log and
    the audit key: what an operator passes as --config."""

    root: Path
    config: Path
    vault_url: str
    key_file: Path
    audit_key_file: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cli_log(self) -> Path:
        return self.logs / "audit-cli.jsonl"

    def run(self, *argv: str) -> int:
        return main([*argv, "--config", str(self.config)])

    def vault_config(self) -> VaultConfig:
        return load_vault_config(Overrides(config=str(self.config)), {})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    for name in list(os.environ):
        if name.startswith("REDACTOR_"):
            monkeypatch.delenv(name)
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, generate_key_material(secrets.token_bytes))
    audit_key = tmp_path / "audit.key"
    assert main(["audit", "init-key", str(audit_key)]) == 0
    schema = "chains_" + secrets.token_hex(6)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'vault.db'}"
    else:
        url = f"{PG_DSN}?schema={schema}"
    config = tmp_path / "redactor.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"audit_log: {tmp_path / 'logs' / 'audit.jsonl'}\n"
        f"audit_key_file: {audit_key}\n"
        f"vault:\n  url: {url}\n  key_file: {key_file}\n"
        "routes:\n"
        "  - {name: chat, path_prefix: /, upstream: 'http://127.0.0.1:9000', tenant: acme}\n"
    )
    yield Site(tmp_path, config, url, key_file, audit_key)
    if request.param == "postgres":

        async def drop() -> None:
            conn = await asyncpg.connect(PG_DSN)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        asyncio.run(drop())


def _erase_twice(site: Site) -> None:
    assert site.run("vault", "init") == 0
    for _ in range(2):
        # An unknown token: the command fails (exit 1), and is audited all the same.
        assert site.run("vault", "erase-token", TOKEN, "--tenant", "acme") == 1


def _runs(site: Site) -> dict[str, list[str]]:
    """The lines of each chain in the commands' file, by chain id, in order."""
    runs: dict[str, list[str]] = {}
    for line in site.cli_log.read_text().splitlines(keepends=True):
        runs.setdefault(json.loads(line)["chain"], []).append(line)
    return runs


def _remove_chain(site: Site, chain: str) -> None:
    """Remove every line of `chain` from the log and from its checkpoint side file."""
    for path in (site.cli_log, site.cli_log.with_name(site.cli_log.name + ".checkpoints")):
        kept = [ln for ln in path.read_text().splitlines(keepends=True) if chain not in ln]
        path.write_text("".join(kept))


def test_an_untouched_trail_verifies_with_every_registered_chain_accounted_for(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    _erase_twice(site)
    capsys.readouterr()
    assert site.run("audit", "verify", str(site.logs)) == 0
    out = capsys.readouterr().out
    assert "verified: ok; every registered chain accounted for (3 in the registry)" in out
    assert "MISSING" not in out
    # Each chain's line says who wrote it, not only its id.
    assert out.count(f"[cli vault erase-token, host {socket.gethostname()}, pid {os.getpid()}") == 2
    # `audit chains` lists each with its writer, host, pid, file, times, records and state.
    assert site.run("audit", "chains", str(site.logs), "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True
    rows = doc["chains"]
    assert [r["writer"] for r in rows] == [
        "cli vault init",
        "cli vault erase-token",
        "cli vault erase-token",
    ]
    for row in rows:
        assert row["state"] == "ok"
        assert row["host"] == socket.gethostname()
        assert row["pid"] == os.getpid()
        assert row["file"] == str(site.cli_log)
        assert row["records"] == 3
        assert row["first"] <= row["last"]
        assert row["registered_checkpoint_seq"] == 2
    assert site.run("audit", "chains", str(site.logs)) == 0
    table = capsys.readouterr().out
    assert table.startswith("STATE")
    assert table.count("cli vault erase-token") == 2


def test_removing_one_erase_token_run_and_its_checkpoint_line_fails_verify_naming_it(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    _erase_twice(site)
    runs = _runs(site)
    chain, lines = list(runs.items())[1]  # the first `vault erase-token` run
    assert len(lines) == 3  # started, failed, final checkpoint
    _remove_chain(site, chain)
    capsys.readouterr()
    # The files alone still verify: nothing in them shows the gap ...
    key_only = ["--audit-key-file", str(site.audit_key_file)]
    assert main(["audit", "verify", str(site.logs), *key_only]) == 0
    out = capsys.readouterr().out
    assert "chain completeness NOT checked (no chain registry" in out
    assert "verified: ok" not in out
    # ... the registry does.
    assert site.run("audit", "verify", str(site.logs)) == 1
    out = capsys.readouterr().out
    missing = [line for line in out.splitlines() if line.startswith("MISSING:")]
    assert len(missing) == 1
    assert missing[0].startswith(
        f"MISSING: chain {chain} (cli vault erase-token, host {socket.gethostname()}, "
        f"pid {os.getpid()}, file {site.cli_log}, started "
    )
    assert "missing: no record of it in the trail (registered through seq 2" in missing[0]
    assert out.rstrip().endswith("verified: FAILED; 1 of 3 registered chains not accounted for")
    # Replicas sharing the vault: another host's trail is not expected to hold this host's.
    assert site.run("audit", "verify", str(site.logs), "--host", "elsewhere") == 0
    assert "every registered chain accounted for (0 in the registry)" in capsys.readouterr().out
    assert site.run("audit", "verify", str(site.logs), "--host", socket.gethostname()) == 1
    capsys.readouterr()
    # Every view's headline says so first, and the report exits non-zero.
    assert site.run("audit", "report", str(site.logs)) == 1
    report = capsys.readouterr().out
    assert report.startswith(f"integrity: does not verify: chain {chain} (cli vault erase-token")
    assert site.run("audit", "chains", str(site.logs)) == 1
    assert any(
        row.startswith("missing") and chain in row for row in capsys.readouterr().out.splitlines()
    )


def test_a_chain_cut_below_its_registered_checkpoint_fails_verify(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    _erase_twice(site)
    chain, lines = list(_runs(site).items())[2]
    # The run's final checkpoint, from the log and its side file: the files look like a run
    # still going (open), which verify alone accepts.
    text = site.cli_log.read_text().replace(lines[-1], "")
    site.cli_log.write_text(text)
    side = site.cli_log.with_name(site.cli_log.name + ".checkpoints")
    side.write_text("".join(ln for ln in side.read_text().splitlines(True) if chain not in ln))
    capsys.readouterr()
    assert (
        main(["audit", "verify", str(site.logs), "--audit-key-file", str(site.audit_key_file)]) == 0
    )
    capsys.readouterr()
    assert site.run("audit", "verify", str(site.logs)) == 1
    out = capsys.readouterr().out
    assert f"MISSING: chain {chain} (cli vault erase-token" in out
    assert "ends before its registered checkpoint: the trail ends at seq 1, the registry " in out
    assert "holds a checkpoint at seq 2" in out


def test_a_registry_that_cannot_be_read_fails_verify_and_says_completeness_was_not_checked(
    site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _erase_twice(site)
    capsys.readouterr()
    argv = ["audit", "verify", str(site.logs), "--audit-key-file", str(site.audit_key_file)]
    assert main([*argv, "--vault-url", f"sqlite:///{tmp_path / 'elsewhere.db'}"]) == 1
    out = capsys.readouterr().out
    assert "chain completeness NOT checked (the chain registry could not be read: " in out
    assert "vault_missing" in out


def test_a_removed_rotated_file_fails_verify_naming_the_file(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert site.run("vault", "init") == 0
    key = site.audit_key_file

    async def write_rotating() -> None:
        from redactor.audit import load_audit_key

        store = await open_existing_store(site.vault_config())
        try:
            sink = AuditSink(
                site.logs / "audit.jsonl",
                load_audit_key(key_file=key, inline=None, dev_data_dir=None),
                max_bytes=1500,
                checkpoint_interval_s=0,
                registry=StoreChainRegistry(store),
            )
            await sink.open()
            for n in range(40):
                await sink.write(SystemEvent("test_event", f"2026-12-07T10:00:{n:02d}+00:00", {}))
                if n % 10 == 9:
                    await sink.checkpoint()
            await sink.close()
        finally:
            await store.close()

    asyncio.run(write_rotating())
    rotated = sorted(p for p in site.logs.glob("audit.2*.jsonl"))
    assert len(rotated) >= 3
    capsys.readouterr()
    assert site.run("audit", "verify", str(site.logs)) == 0
    capsys.readouterr()
    gone = rotated[1]
    gone.unlink()
    assert site.run("audit", "verify", str(site.logs)) == 1
    out = capsys.readouterr().out
    named = [line for line in out.splitlines() if line.startswith("MISSING:")]
    assert len(named) == 1
    assert "(serve, host " in named[0]
    assert "has a file missing: records seq " in named[0]
    assert f"went to {gone} (rotated at " in named[0]
    assert "which is not in the trail" in named[0]


def test_every_view_headline_names_a_missing_chain(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    _erase_twice(site)
    chain = list(_runs(site))[1]
    _remove_chain(site, chain)

    async def chains() -> list:
        store = await open_existing_store(site.vault_config())
        try:
            return await StoreChainRegistry(store).chains()
        finally:
            await store.close()

    from redactor.audit import load_audit_key

    key = load_audit_key(key_file=site.audit_key_file, inline=None, dev_data_dir=None)
    now = datetime.now(UTC)
    without = read_trail(key, [site.logs], now=now)
    assert without.integrity.ok
    assert without.integrity.headline().endswith(
        "chain completeness NOT checked (no chain registry given)"
    )
    trail = read_trail(key, [site.logs], now=now, registry=asyncio.run(chains()))
    assert not trail.integrity.ok
    headline = trail.integrity.headline()
    assert headline.startswith(f"does not verify: chain {chain} (cli vault erase-token, host ")
    assert " missing: " in headline
    assert trail.integrity.to_json()["completeness"]["gaps"][0]["chain"] == chain

    # The console's index worker holds its index against the registry the console read.
    worker = Worker(key, site.logs / "audit.jsonl")
    ask = {"op": "summary", "tenant": "acme", "params": {}}
    _meta, body = worker.answer({**ask, "registry": registry_message(asyncio.run(chains()))})
    shown = json.loads(body)["integrity"]
    assert not shown["ok"]
    assert shown["headline"].startswith(f"does not verify: chain {chain} (cli vault erase-token")
    unread = registry_message(
        not_checked("the chain registry could not be read: x", unreadable=True)
    )
    _meta, body = worker.answer({**ask, "registry": unread})
    assert "chain completeness NOT checked" in json.loads(body)["integrity"]["headline"]


def test_a_command_whose_chain_cannot_be_registered_does_not_run(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert site.run("vault", "init") == 0

    async def mint_and_break_the_registry() -> str:
        async with await open_vault(site.vault_config(), create=False) as vault:
            (token,) = await vault.tokenize_many("acme", [("ssn", "219099999")])
        if site.vault_url.startswith("sqlite"):
            with sqlite3.connect(site.root / "data" / "vault.db") as db:
                db.execute("DROP TABLE audit_chains")
            db.close()
        else:
            schema = site.vault_url.rsplit("schema=", 1)[1]
            conn = await asyncpg.connect(PG_DSN)
            try:
                await conn.execute(f'DROP TABLE "{schema}".audit_chains')
            finally:
                await conn.close()
        return str(token)

    token = asyncio.run(mint_and_break_the_registry())
    capsys.readouterr()
    assert site.run("vault", "erase-token", token, "--tenant", "acme") == 2
    err = capsys.readouterr().err
    assert "cannot write the audit record" in err
    assert "chain registry" in err
    assert "nothing was changed" in err
    # Not erased, and no record of a run that did not happen.
    assert token not in site.cli_log.read_text()

    async def resolve() -> object:
        async with await open_vault(site.vault_config(), create=False) as vault:
            return (await vault.resolve_many("acme", [token]))[token]

    assert isinstance(asyncio.run(resolve()), Resolved)


def test_a_served_trail_removed_whole_is_named_by_the_serving_process(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = ["--dev", "--data-dir", str(trail.data_dir)]
    assert main(["audit", "verify", str(trail.log), *dev]) == 0
    assert "verified: ok; every registered chain accounted for" in capsys.readouterr().out
    chain = json.loads(trail.lines()[0])["chain"]
    trail.write([])
    trail.checkpoints.unlink()
    assert main(["audit", "verify", str(trail.log), *dev]) == 1
    out = capsys.readouterr().out
    assert f"MISSING: chain {chain} (serve, host {socket.gethostname()}, pid " in out
    assert "registered through seq " in out


def test_chains_closed_before_since_are_not_expected(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    # Retention removed old files on purpose: --since says from when chains are expected.
    _erase_twice(site)
    runs = _runs(site)
    for chain in list(runs)[:2]:
        _remove_chain(site, chain)
    last_started = json.loads(list(runs.values())[2][0])["time"]
    capsys.readouterr()
    assert site.run("audit", "verify", str(site.logs)) == 1
    assert capsys.readouterr().out.count("MISSING:") == 2
    assert site.run("audit", "verify", str(site.logs), "--since", last_started) == 0
    out = capsys.readouterr().out
    assert "verified: ok; every registered chain accounted for (1 in the registry)" in out


class _Registry:
    """A registry that is down until `up` is set, and remembers what it recorded."""

    def __init__(self) -> None:
        self.up = False
        self.updates: list[ChainUpdate] = []

    async def record(self, update: ChainUpdate) -> None:
        if not self.up:
            raise ChainRegistryError("vault_unavailable")
        self.updates.append(update)


async def test_a_writer_whose_chain_cannot_be_registered_writes_nothing(tmp_path: Path) -> None:
    # A server (and every command on an existing vault) fails closed: no record, no action.
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path, bytes(32), checkpoint_interval_s=0, registry=_Registry())
    with pytest.raises(AuditWriteError):
        await sink.open()
    assert not path.exists() or path.read_bytes() == b""


async def test_a_deferred_chain_is_registered_with_its_next_checkpoint(tmp_path: Path) -> None:
    # `vault init` and the like: the genesis is owed, and recorded with the final checkpoint.
    registry = _Registry()
    sink = AuditSink(
        tmp_path / "audit.jsonl",
        bytes(32),
        checkpoint_interval_s=0,
        registry=registry,
        writer="cli",
        command="vault init",
        registry_required=False,
    )
    await sink.open()
    await sink.write(SystemEvent("vault_init", "2026-12-07T10:00:00.000+00:00", {}))
    await sink.checkpoint()  # the registry is still down: owed, logged, nothing raised
    registry.up = True
    await sink.close()
    (update,) = registry.updates
    assert update.genesis is not None
    assert (update.genesis.writer, update.genesis.command) == ("cli", "vault init")
    assert update.genesis.pid == os.getpid()
    assert update.checkpoint is not None
    assert (update.checkpoint.seq, update.checkpoint.final) == (2, True)


async def test_a_worker_registers_its_chain_as_worker_n(tmp_path: Path) -> None:
    from dataclasses import replace

    from redactor.resources import open_audit_sink
    from redactor.settings import load_settings
    from tests.conftest import AUDIT_KEY

    flags = Overrides(
        upstream="http://127.0.0.1:9/",
        data_dir=str(tmp_path / "data"),
        audit_log=str(tmp_path / "audit.jsonl"),
    )
    settings = load_settings(
        flags, {"REDACTOR_AUDIT_KEY": AUDIT_KEY, "REDACTOR_KEY_FILE": str(tmp_path / "k")}
    )
    for worker, expected in ((None, ("serve", None)), (2, ("worker", "2"))):
        registry = _Registry()
        registry.up = True
        sink = await open_audit_sink(replace(settings, worker=worker), None, registry)
        await sink.close()
        genesis = registry.updates[0].genesis
        assert genesis is not None
        assert (genesis.writer, genesis.command) == expected
        assert genesis.file == str(tmp_path / "audit.jsonl")


def test_a_server_whose_chain_cannot_be_registered_does_not_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    argv = [sys.executable, "-m", "redactor"]
    common = ["--dev", "--data-dir", str(tmp_path / "data")]
    done = subprocess.run(  # noqa: S603 - our own CLI
        [*argv, "vault", "init", *common], env=env, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "data" / "vault.db") as db:
        db.execute("DROP TABLE audit_chains")
    db.close()
    serve = [*argv, "serve", *common, "--audit-log", str(tmp_path / "audit.jsonl")]
    serve += ["--upstream", "http://127.0.0.1:9/", "--listen", f"127.0.0.1:{free_port()}"]
    serve += ["--admin-listen", f"127.0.0.1:{free_port()}"]
    done = subprocess.run(serve, env=env, capture_output=True, timeout=120, check=False)  # noqa: S603
    assert done.returncode == 2
    assert b"cannot start: audit record could not be written: chain registry" in done.stderr
    assert not (tmp_path / "audit.jsonl").exists() or (tmp_path / "audit.jsonl").stat().st_size == 0
