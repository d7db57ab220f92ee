"""The vault's own counters, its high-water mark outside it, lost tokens and key-state claims,
on SQLite and PostgreSQL (issue 20, items 5, 6 and 8 at the store level)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.vault.conftest import CARD, CARD_2, SSN, Backend, FakeClock
from vault.crypto import check_value
from vault.errors import KeyStateChangedError, VaultBehindError
from vault.keyring import add_kek_version, read_key_file
from vault.mark import VaultMark, advance_mark, read_mark
from vault.service import NotFound, Vault
from vault.startup import open_vault
from vault.stores.base import KekRecord

DAY_S = 86400


async def test_minted_counts_inserted_tokens_only_and_purge_never_lowers_it(
    vault: Vault, clock: FakeClock
) -> None:
    start = await vault.store.read_mark()
    await vault.tokenize_many("acme", [("card", CARD), ("ssn", SSN)])
    after_two = await vault.store.read_mark()
    assert after_two.minted > start.minted
    # The same values again (another message): found, not inserted; the mark stays.
    await vault.tokenize_many("acme", [("card", CARD), ("ssn", SSN)])
    assert await vault.store.read_mark() == after_two
    await vault.tokenize_many("acme", [("card", CARD_2)])
    after_three = await vault.store.read_mark()
    assert after_three.minted > after_two.minted
    # Every token purged, the newest one too: the counter does not go back.
    clock.now += 100 * DAY_S
    assert await vault.purge(90 * DAY_S) == 3
    assert (await vault.store.read_mark()).minted >= after_three.minted
    await vault.tokenize_many("acme", [("card", CARD)])
    assert (await vault.store.read_mark()).minted > after_three.minted


async def test_vault_behind_its_mark_file_is_refused_at_open_and_on_readyz(
    backend: Backend,
) -> None:
    mark_file = backend.config.vault_mark_file
    async with await open_vault(backend.config) as vault:
        await vault.tokenize_many("acme", [("ssn", SSN)])
        current = await vault.store.read_mark()
    # close() copied the counters out.
    assert read_mark(mark_file, current.vault_id) == current
    # A mark ahead of the vault: what a restore from an older copy looks like.
    advance_mark(mark_file, VaultMark(current.vault_id, current.minted + 5, current.epoch))
    with pytest.raises(VaultBehindError) as info:
        await open_vault(backend.config)
    text = str(info.value)
    assert info.value.code == "vault_behind"
    assert f"minted {current.minted}" in text
    assert f"minted {current.minted + 5}" in text
    assert "vault reconcile --audit" in text
    assert "accept-restore" in text
    assert "interrupted" not in text

    # Opened without the check (as accept-restore does), /readyz's check still refuses.
    async with await open_vault(backend.config, check_mark=False) as vault:
        with pytest.raises(VaultBehindError):
            await vault.check_ready()


async def test_a_mark_of_another_vault_does_not_apply(backend: Backend) -> None:
    advance_mark(backend.config.vault_mark_file, VaultMark("someothervault", 10**6, 10**6))
    async with await open_vault(backend.config) as vault:
        await vault.check_ready()


async def test_vault_rolled_back_under_a_running_process_stops_it(
    make_vault: Callable[..., Any], backend: Backend
) -> None:
    vault: Vault = await make_vault()
    await vault.tokenize_many("acme", [("ssn", SSN), ("card", CARD)])
    await vault.check_ready()  # the process has now seen these counters
    # The newest row disappears under it, as a point-in-time restore would remove it; the
    # counter goes back with it.
    if backend.name == "sqlite":
        await backend.sql("UPDATE vault_mark SET minted = minted - 1")
    else:
        await backend.sql("DELETE FROM tokens WHERE mint_seq = (SELECT MAX(mint_seq) FROM tokens)")
    with pytest.raises(VaultBehindError):
        await vault.check_ready()


async def test_a_token_recorded_as_lost_is_logged_at_error_level_when_asked_for(
    vault: Vault,
) -> None:
    (kept,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    lost = "tok_v1_card_" + "q" * 20 + "_1111"
    guessed = "tok_v1_ssn_" + "z" * 20
    assert await vault.store.record_lost("acme", [lost], 1) == 1
    assert await vault.store.record_lost("acme", [lost], 2) == 0
    with capture_logs() as events:
        results = await vault.resolve_many("acme", [kept.text, lost, guessed])
    assert results[lost] == NotFound(lost)
    assert results[guessed] == NotFound(guessed)
    errors = [e for e in events if e["log_level"] == "error"]
    assert [(e["event"], e["token"]) for e in errors] == [("token_lost", lost)]
    # Another tenant asking for the same token string is not told anything.
    with capture_logs() as events:
        await vault.resolve_many("globex", [lost])
    assert not [e for e in events if e["log_level"] == "error"]


async def test_present_tokens_reports_rows_erased_ones_included(vault: Vault) -> None:
    card, ssn = await vault.tokenize_many("acme", [("card", CARD), ("ssn", SSN)])
    await vault.erase_token("acme", ssn.text)
    absent = "tok_v1_ssn_" + "a" * 20
    assert await vault.store.present_tokens("acme", [card.text, ssn.text, absent]) == {
        card.text,
        ssn.text,
    }
    assert await vault.store.present_tokens("globex", [card.text]) == set()


async def test_a_rotation_claim_is_compare_and_set_on_the_epoch(
    vault: Vault, backend: Backend
) -> None:
    store = vault.store
    state = await store.read_key_state()
    assert state is not None
    rotated = add_kek_version(read_key_file(backend.key_file), secrets.token_bytes)
    other = add_kek_version(read_key_file(backend.key_file), secrets.token_bytes)
    mine = KekRecord(2, "active", check_value(rotated.keks[2], "kek"), 1)
    theirs = KekRecord(2, "active", check_value(other.keks[2], "kek"), 1)

    epoch = await store.claim_rotation(mine, state.epoch)
    # Two commands that read the same state: the second claim fails, nothing recorded.
    with pytest.raises(KeyStateChangedError):
        await store.claim_rotation(theirs, state.epoch)
    # Only the claimed key may be recorded, and only at the epoch the claim returned.
    with pytest.raises(KeyStateChangedError):
        await store.record_rotation(theirs, 1, expected_epoch=epoch)
    with pytest.raises(KeyStateChangedError):
        await store.record_rotation(mine, 1, expected_epoch=state.epoch)
    pending = await store.read_key_state()
    assert pending is not None
    assert (pending.pending_version, pending.active_version) == (2, 1)
    # A retirement at a stale epoch fails too.
    with pytest.raises(KeyStateChangedError):
        await store.record_retirement(1, 1, expected_epoch=state.epoch)

    await store.record_rotation(mine, 1, expected_epoch=epoch)
    done = await store.read_key_state()
    assert done is not None
    assert (done.pending_version, done.active_version) == (None, 2)
    assert [k.version for k in done.keks] == [1, 2]
    assert done.record(2) == KekRecord(2, "active", mine.check_value, 1)


async def test_only_one_key_command_holds_the_vault_lock(
    vault: Vault, make_vault: Callable[..., Any]
) -> None:
    from vault.errors import KeyCommandBusyError

    other: Vault = await make_vault()
    async with vault.store.key_command_lock():
        with pytest.raises(KeyCommandBusyError):
            async with other.store.key_command_lock():
                pass
    async with other.store.key_command_lock():
        pass


def test_mark_file_only_moves_forward(tmp_path: Path) -> None:
    path = tmp_path / "vault-mark.json"
    assert advance_mark(path, VaultMark("v", 5, 2)) == VaultMark("v", 5, 2)
    # A slower writer with older counters never lowers the mark.
    assert advance_mark(path, VaultMark("v", 3, 4)) == VaultMark("v", 5, 4)
    assert read_mark(path, "v") == VaultMark("v", 5, 4)
    assert read_mark(path, "w") is None
    path.write_text("{", encoding="utf-8")
    from vault.errors import VaultConfigError

    with pytest.raises(VaultConfigError):
        read_mark(path, "v")
