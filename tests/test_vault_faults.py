"""Issue 20's vault situations, reproduced with the real proxy and the real `redactor` command,
on SQLite and PostgreSQL: a vault restored from a backup (5), restored across a key rotation
(6), and two `keys rotate` started together (8). Each ends safe or loud, never silent.
"""

from __future__ import annotations

import asyncio
import random
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from redactor.ingress.app import build_proxy_app
from redactor.ops.admin import build_admin_app
from redactor.resources import Resources, open_resources
from tests.conftest import Deployment
from tests.test_vault_operations import _free_listen
from tests.vault.conftest import PG_DSN
from vault.crypto import check_value
from vault.keyring import read_key_file
from vault.service import NotFound, Resolved
from vault.startup import open_vault

# Vault tables a restore brings back, parents first.
_TABLES = ("vault_schema", "vault_keys", "kek_versions", "deks", "tokens", "vault_mark")


def _cards(n: int, seed: int) -> list[str]:
    """Luhn-valid 16-digit Visa-shaped test numbers, spaced in fours."""
    rng = random.Random(seed)
    cards = []
    for _ in range(n):
        digits = [4, *(rng.randrange(10) for _ in range(14))]
        total = 0
        for i, d in enumerate(reversed(digits)):
            total += sum(divmod(d * 2, 10)) if i % 2 == 0 else d
        digits.append((10 - total % 10) % 10)
        text = "".join(map(str, digits))
        cards.append(" ".join(text[i : i + 4] for i in range(0, 16, 4)))
    return cards


@asynccontextmanager
async def _serving(
    deployment: Deployment, aiohttp_client: Callable[..., Any]
) -> AsyncIterator[tuple[Resources, TestClient, TestClient]]:
    """The proxy and admin apps of one process, stopped (vault closed) on exit."""
    async with open_resources(deployment.settings()) as res:
        yield (
            res,
            await aiohttp_client(build_proxy_app(res.ingress)),
            await aiohttp_client(build_admin_app(res)),
        )


class _Backup:
    """A copy of the vault taken at one moment, and its restore in place (the way a backup,
    a snapshot or a point-in-time recovery brings the data back: same file, same schema)."""

    def __init__(self, deployment: Deployment, where: Path) -> None:
        self.deployment = deployment
        self.where = where
        self.schema = f"{deployment.schema}_backup"

    async def take(self) -> None:
        if self.deployment.backend == "sqlite":
            await asyncio.to_thread(_sqlite_copy, self._db, self.where)
            return
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'CREATE SCHEMA "{self.schema}"')
            for table in _TABLES:
                await conn.execute(
                    f'CREATE TABLE "{self.schema}".{table} AS '
                    f'TABLE "{self.deployment.schema}".{table}'
                )
            seq = await conn.fetchval(
                f'SELECT last_value FROM "{self.deployment.schema}".token_mint_seq'  # noqa: S608 - a test's own schema name
            )
            await conn.execute(f'CREATE TABLE "{self.schema}".seq AS SELECT {int(seq)} AS v')
        finally:
            await conn.close()

    async def restore(self) -> None:
        if self.deployment.backend == "sqlite":
            await asyncio.to_thread(_sqlite_copy, self.where, self._db)
            return
        live, kept = self.deployment.schema, self.schema
        conn = await asyncpg.connect(PG_DSN)
        try:
            async with conn.transaction():
                for table in reversed(_TABLES):
                    await conn.execute(f'DELETE FROM "{live}".{table}')  # noqa: S608 - test schema
                for table in _TABLES:
                    await conn.execute(f'INSERT INTO "{live}".{table} TABLE "{kept}".{table}')
                await conn.execute(
                    f'SELECT setval(\'"{live}".token_mint_seq\', (SELECT v FROM "{kept}".seq))'  # noqa: S608 - test schema
                )
        finally:
            await conn.close()

    async def drop(self) -> None:
        if self.deployment.backend == "postgres":
            conn = await asyncpg.connect(PG_DSN)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            finally:
                await conn.close()

    @property
    def _db(self) -> Path:
        return self.deployment.root / "data" / "vault.db"


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy, written into `target` in place."""
    import sqlite3

    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


async def _serve_refusal(deployment: Deployment) -> str:
    code, _, err = await deployment.cli(
        "serve", "--upstream", deployment.upstream_url, "--listen", _free_listen(),
        "--admin-listen", _free_listen(),
    )  # fmt: skip
    assert code == 2, err
    return err


def _missing(out: str) -> set[str]:
    return {
        part.split("=", 1)[1]
        for line in out.splitlines()
        if line.startswith("missing ")
        for part in line.split()
        if part.startswith("token=")
    }


async def test_vault_restored_from_a_backup_is_refused_reconciled_and_accepted(
    deployment: Deployment, aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    cards = _cards(12, seed=5)
    backup = _Backup(deployment, tmp_path / "backup.db")
    try:
        assert (await deployment.cli("vault", "init"))[0] == 0
        async with _serving(deployment, aiohttp_client) as (_, proxy, admin):
            before = [(await deployment.post_card(proxy, c))[1] for c in cards[:4]]
            await backup.take()
            after = [(await deployment.post_card(proxy, c))[1] for c in cards[4:]]
            assert None not in before + after
            assert (await admin.get("/readyz")).status == 200
            # Restored under the running process: /readyz says so at once.
            await backup.restore()
            ready = await admin.get("/readyz")
            assert ready.status == 503
            assert (await ready.json())["vault"] == "vault_behind"

        # At start: refused with its own message, never the interrupted-rotation one.
        err = await _serve_refusal(deployment)
        assert "older than its high-water mark" in err
        assert "vault reconcile --audit" in err
        assert "key ring does not match" not in err
        assert "interrupted" not in err

        # The audit trail names exactly the tokens minted after the backup.
        code, out, err = await deployment.cli(
            "vault", "reconcile", "--audit", str(deployment.root), "--record"
        )
        assert code == 1, err
        assert _missing(out) == set(after)
        assert f"recorded {len(after)} tokens as lost" in out
        assert "(BEHIND)" in out
        for card in cards:
            assert card.replace(" ", "") not in out

        code, _, err = await deployment.cli("vault", "accept-restore")
        assert (code, "--yes" in err) == (2, True)
        code, out, err = await deployment.cli("vault", "accept-restore", "--yes")
        assert code == 0, err
        assert "accepted" in out

        async with _serving(deployment, aiohttp_client) as (res, proxy, admin):
            assert (await admin.get("/readyz")).status == 200
            with capture_logs() as events:
                results = await res.vault.resolve_many("acme", before + after)
            assert all(isinstance(results[t], Resolved) for t in before)
            assert all(results[t] == NotFound(t) for t in after)
            lost = [e for e in events if e["event"] == "token_lost"]
            assert sorted(e["token"] for e in lost) == sorted(after)
            assert {e["log_level"] for e in lost} == {"error"}
            for token in after:
                del deployment.minted[token]
            await deployment.assert_nothing_lost(proxy)
    finally:
        await backup.drop()


async def test_vault_restored_across_a_rotation_is_refused_and_rotate_cannot_repair_it(
    deployment: Deployment, aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    cards = _cards(8, seed=6)
    backup = _Backup(deployment, tmp_path / "backup.db")
    try:
        assert (await deployment.cli("vault", "init"))[0] == 0
        async with _serving(deployment, aiohttp_client) as (_, proxy, _admin):
            for card in cards[:3]:
                assert (await deployment.post_card(proxy, card))[0] == 200
        await backup.take()
        code, _, err = await deployment.cli("keys", "rotate")
        assert code == 0, err
        async with _serving(deployment, aiohttp_client) as (_, proxy, _admin):
            after = [(await deployment.post_card(proxy, c))[1] for c in cards[3:]]
        await backup.restore()

        err = await _serve_refusal(deployment)
        assert "older than its high-water mark" in err
        assert "key epoch" in err
        assert "key ring does not match" not in err

        # The rotation runbook no longer puts the rolled-back vault in service.
        code, out, err = await deployment.cli("keys", "rotate")
        assert code == 1
        assert "vault_behind" in err
        assert "now active" not in out
        assert read_key_file(deployment.key_file).versions == [1, 2]
        code, out, _ = await deployment.cli("keys", "list")
        assert code == 1
        assert "BEHIND: the vault is at" in out
        async with await open_vault(
            deployment.settings().vault, create=False, bind=False, check_mark=False
        ) as vault:
            state = await vault.store.read_key_state()
        assert state is not None
        assert [k.version for k in state.keks] == [1]

        code, out, _ = await deployment.cli("vault", "reconcile", "--audit", str(deployment.root))
        assert code == 1
        assert _missing(out) == set(after)
    finally:
        await backup.drop()


# Runs one `redactor` command after a barrier: it connects to the test, says it is ready,
# and waits for the word to go, so two commands start within the same instant.
_ALIGNED = """
import socket, sys
from redactor.cli import main
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as barrier:
    barrier.sendall(b"r")
    barrier.recv(1)
sys.exit(main(sys.argv[2:]))
"""


async def _aligned(deployment: Deployment, runs: list[tuple[list[str], dict[str, str]]]):
    """Start each (argv, env) `redactor` command, release them together; [(code, out, err)]."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(len(runs))
        port = server.getsockname()[1]
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _ALIGNED,
                str(port),
                *argv,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for argv, env in runs
        ]

        def release() -> None:
            waiting = []
            for _ in runs:
                conn, _addr = server.accept()
                conn.recv(1)
                waiting.append(conn)
            for conn in waiting:
                conn.sendall(b"g")
            for conn in waiting:
                conn.close()

        await asyncio.to_thread(release)
        results = []
        for proc in procs:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
            results.append((proc.returncode, out.decode(), err.decode()))
    return results


async def _vault_versions(deployment: Deployment) -> list[tuple[int, str, bytes]]:
    async with await open_vault(deployment.settings().vault, create=False, bind=False) as vault:
        state = await vault.store.read_key_state()
    assert state is not None
    assert state.pending_version is None
    return [(k.version, k.state, k.check_value) for k in state.keks]


async def test_two_rotations_released_together_leave_one_key_recorded_once(
    deployment: Deployment, aiohttp_client: Callable[..., Any]
) -> None:
    assert (await deployment.cli("vault", "init"))[0] == 0
    cards = _cards(400, seed=7)
    async with _serving(deployment, aiohttp_client) as (_, proxy, admin):
        # Steady traffic through the proxy while the two commands race.
        statuses: list[int] = []
        done = asyncio.Event()

        async def send() -> None:
            for card in cards:
                if done.is_set():
                    break
                statuses.append((await deployment.post_card(proxy, card))[0])

        traffic = asyncio.create_task(send())
        try:
            results = await _aligned(deployment, [(["keys", "rotate"], deployment.env)] * 2)
        finally:
            done.set()
            await traffic
        assert statuses
        assert set(statuses) == {200}
        assert (await admin.get("/readyz")).status == 200
        await deployment.assert_nothing_lost(proxy)
    codes = sorted(code for code, _, _ in results)
    ring = read_key_file(deployment.key_file)
    versions = await _vault_versions(deployment)
    # Whatever the interleaving: every version in the key file is recorded once, with the
    # key file's key, and the file's active version is the vault's.
    assert [v for v, _, _ in versions] == ring.versions
    assert [c for _, _, c in versions] == [check_value(ring.keks[v], "kek") for v in ring.versions]
    assert [v for v, s, _ in versions if s == "active"] == [ring.active_version]
    if codes == [0, 1]:
        # Released together (the usual case): the second finds the lock held.
        loser = next(err for code, _, err in results if code == 1)
        assert "key_command_busy" in loser
        assert ring.versions == [1, 2]
    else:
        # One finished before the other started: two rotations, one after the other.
        assert (codes, ring.versions) == ([0, 0], [1, 2, 3]), results
    code, out, _ = await deployment.cli("keys", "list")
    assert (code, "MISMATCH" in out) == (0, False)
    # And the proxy starts on what they left.
    async with _serving(deployment, aiohttp_client) as (_, proxy, admin):
        assert (await deployment.post_card(proxy, _cards(1, seed=8)[0]))[0] == 200
        assert (await admin.get("/readyz")).status == 200


async def test_two_rotations_from_two_copies_of_the_key_file_cannot_both_write(
    deployment: Deployment,
) -> None:
    assert (await deployment.cli("vault", "init"))[0] == 0
    # Two operators, each with a copy of the key file: two lock files, one vault.
    copy = deployment.root / "operator-b" / "keys.json"
    copy.parent.mkdir()
    copy.write_bytes(deployment.key_file.read_bytes())
    env_b = {**deployment.env, "REDACTOR_KEY_FILE": str(copy)}
    results = await _aligned(
        deployment, [(["keys", "rotate"], deployment.env), (["keys", "rotate"], env_b)]
    )
    codes = [code for code, _, _ in results]
    assert sorted(codes) == [0, 1], results
    files = [deployment.key_file, copy]
    winner_file, loser_file = (files[0], files[1]) if codes[0] == 0 else (files[1], files[0])
    # The loser failed before touching its key file.
    assert read_key_file(loser_file).versions == [1]
    ring = read_key_file(winner_file)
    versions = await _vault_versions(deployment)
    assert [(v, s) for v, s, _ in versions] == [(1, "decrypt-only"), (2, "active")]
    assert versions[1][2] == check_value(ring.keks[2], "kek")
