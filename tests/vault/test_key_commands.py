"""Key commands serialised, rotations interrupted, purge against a wrong clock: the `keys` and
`vault` commands in-process, on SQLite and PostgreSQL (issue 20, items 7 and 8)."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import pytest

import vault.cli
from tests.vault.conftest import CARD, CARD_2, SSN, Backend
from tests.vault.test_cli import _cli
from vault.crypto import check_value
from vault.keyring import add_kek_version, generate_key_material, read_key_file, write_key_file
from vault.service import Resolved
from vault.startup import open_vault
from vault.stores.base import Heartbeat, KekRecord

DAY_S = 86400


async def _recorded_versions(backend: Backend) -> list[tuple[int, str, bytes]]:
    rows = await backend.sql("SELECT version, state, check_value FROM kek_versions ORDER BY 1")
    return [(r[0], r[1], bytes(r[2])) for r in rows]


async def test_rotate_fails_when_the_key_file_is_replaced_before_success_is_printed(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await _cli(backend, "vault", "init"))[0] == 0
    real_write = vault.cli.write_key_file

    def write_then_someone_else_writes(path, material):  # type: ignore[no-untyped-def]
        real_write(path, material)
        # Another tool puts its own "version 2" there right after ours.
        real_write(
            path, add_kek_version(generate_key_material(secrets.token_bytes), secrets.token_bytes)
        )

    monkeypatch.setattr(vault.cli, "write_key_file", write_then_someone_else_writes)
    code, out, err = await _cli(backend, "keys", "rotate")
    assert code == 1
    assert "key_state_changed" in err
    assert "now active" not in out


async def test_rotate_finishes_a_rotation_interrupted_after_its_key_file_was_written(
    backend: Backend,
) -> None:
    assert (await _cli(backend, "vault", "init"))[0] == 0
    async with await open_vault(backend.config) as v:
        state = await v.store.read_key_state()
        assert state is not None
        rotated = add_kek_version(read_key_file(backend.key_file), secrets.token_bytes)
        check = check_value(rotated.keks[2], "kek")
        # Claimed and written, then the process died before recording it.
        await v.store.claim_rotation(KekRecord(2, "active", check, 1), state.epoch)
    write_key_file(backend.key_file, rotated)
    code, out, _ = await _cli(backend, "keys", "rotate")
    assert code == 0
    assert "finished an interrupted rotation" in out
    assert read_key_file(backend.key_file).versions == [1, 2]
    versions = await _recorded_versions(backend)
    assert [(v, s) for v, s, _ in versions] == [(1, "decrypt-only"), (2, "active")]
    assert versions[1][2] == check


async def test_rotate_drops_a_claim_that_never_reached_its_key_file(backend: Backend) -> None:
    assert (await _cli(backend, "vault", "init"))[0] == 0
    async with await open_vault(backend.config) as v:
        state = await v.store.read_key_state()
        assert state is not None
        ghost = check_value(secrets.token_bytes(32), "kek")
        await v.store.claim_rotation(KekRecord(2, "active", ghost, 1), state.epoch)
    code, out, _ = await _cli(backend, "keys", "rotate")
    assert code == 0
    assert "dropped an interrupted rotation to kek version 2" in out
    ring = read_key_file(backend.key_file)
    versions = await _recorded_versions(backend)
    assert [(v, s) for v, s, _ in versions] == [(1, "decrypt-only"), (2, "active")]
    assert versions[1][2] == check_value(ring.keks[2], "kek") != ghost
    assert (await _cli(backend, "keys", "list"))[0] == 0


async def test_purge_with_the_clock_ahead_is_refused_unless_forced(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await open_vault(backend.config, create=True) as v:
        tokens = await v.tokenize_many("acme", [("card", CARD), ("card", CARD_2), ("ssn", SSN)])
    # A serving process that has checked in (what its key watch writes every interval).
    serving = await open_vault(backend.config)
    try:
        now = int(time.time())
        await serving.store.heartbeat(Heartbeat(serving.process_id, 1, now, now + 7))

        # The clock right: nothing is idle, nothing refused.
        code, out, err = await _cli(backend, "vault", "purge", "--older-than", "90d")
        assert (code, err) == (0, "")
        assert out.startswith("purged 0 tokens")

        # This command's clock 100 days ahead (the trial).
        ahead = time.time() + 100 * DAY_S
        monkeypatch.setattr(vault.cli, "_clock", lambda: ahead)
        cutoff_day = datetime.fromtimestamp(ahead - 90 * DAY_S, UTC).strftime("%Y-%m-%d")
        code, out, _ = await _cli(backend, "vault", "purge", "--older-than", "90d", "--dry-run")
        assert code == 0
        if backend.name == "sqlite":
            assert f"would purge 3 tokens idle since before {cutoff_day}" in out
            assert "later than the vault's newest activity" in out
        else:
            # PostgreSQL counts from now(): the wrong clock takes nothing, and is named.
            assert "would purge 0 tokens" in out
            assert "now()" in out
            assert "ahead of running process" in out

        code, out, err = await _cli(backend, "vault", "purge", "--older-than", "90d")
        assert (code, out) == (1, "")
        assert "purge_refused" in err
        assert "nothing purged" in err
        results = await serving.resolve_many("acme", [t.text for t in tokens])
        assert all(isinstance(r, Resolved) for r in results.values())

        code, out, _ = await _cli(backend, "vault", "purge", "--older-than", "90d", "--force")
        assert code == 0
        assert out.startswith("purged 3 tokens" if backend.name == "sqlite" else "purged 0 tokens")
    finally:
        await serving.close()


async def test_a_key_file_ahead_of_the_vault_names_the_rotate_step_and_rotate_finishes_it(
    backend: Backend,
) -> None:
    from vault.errors import KeyRingMismatchError

    assert (await _cli(backend, "vault", "init"))[0] == 0
    # A rotation that wrote its key file and died before any vault write.
    rotated = add_kek_version(read_key_file(backend.key_file), secrets.token_bytes)
    write_key_file(backend.key_file, rotated)
    with pytest.raises(KeyRingMismatchError) as info:
        await open_vault(backend.config)
    assert "a `redactor keys rotate` was interrupted: run it again" in str(info.value)
    code, out, _ = await _cli(backend, "keys", "rotate")
    assert (code, "finished an interrupted rotation" in out) == (0, True)
    versions = await _recorded_versions(backend)
    assert [(v, s) for v, s, _ in versions] == [(1, "decrypt-only"), (2, "active")]
    assert versions[1][2] == check_value(rotated.keks[2], "kek")
