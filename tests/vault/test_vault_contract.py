"""The vault contract, run against every store backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.vault.conftest import (
    CARD,
    CARD_2,
    CARD_2_DIGITS,
    CARD_DIGITS,
    SSN,
    SSN_DIGITS,
    Backend,
    FakeClock,
    record_rotation,
)
from vault.errors import (
    KeyRetireError,
    KeyRingMismatchError,
    KeyRingStaleError,
    TenantFormatError,
    TokenFormatError,
    ValueFormatError,
)
from vault.keyring import KeyMaterial, add_kek_version, generate_key_material, read_key_file
from vault.service import Corrupt, Erased, KeyMissing, NotFound, Resolved, Vault
from vault.stores.base import SCHEMA_VERSION, Heartbeat
from vault.tokens import EntityType, parse_token

DAY_S = 86_400


async def test_tokenize_then_resolve_gives_back_normalised_values(vault: Vault) -> None:
    tokens = await vault.tokenize_many("acme", [("card", CARD), ("ssn", SSN)])
    results = await vault.resolve_many("acme", [t.text for t in tokens])
    assert results[tokens[0].text] == Resolved(tokens[0].text, EntityType.CARD, CARD_DIGITS)
    assert results[tokens[1].text] == Resolved(tokens[1].text, EntityType.SSN, SSN_DIGITS)


async def test_card_token_ends_with_last_four_and_ssn_token_has_no_digits(vault: Vault) -> None:
    card, ssn = await vault.tokenize_many("acme", [("card", CARD), ("ssn", SSN)])
    assert parse_token(card.text).last4 == "1111"
    assert card.entity_type is EntityType.CARD
    assert not any(c.isdigit() for c in ssn.text.removeprefix("tok_v1"))


async def test_policy_without_last_four_gives_card_tokens_without_digits(
    make_vault: Callable[..., Any],
) -> None:
    vault = await make_vault(card_last4=False)
    (card,) = await vault.tokenize_many("acme", [("card", CARD)])
    assert parse_token(card.text).last4 is None


async def test_same_value_in_other_spelling_gets_same_token_and_one_row(
    vault: Vault, backend: Backend
) -> None:
    first = await vault.tokenize_many("acme", [("card", CARD), ("card", CARD_DIGITS)])
    # A retried webhook, and a quoted reply that re-typed the number in full-width digits.
    retried = await vault.tokenize_many("acme", [("card", "４１１１ １１１１ １１１１ １１１１")])
    assert first[0] == first[1] == retried[0]
    assert await backend.sql("SELECT COUNT(*) FROM tokens") == [(1,)]


async def test_different_tenants_get_different_tokens_for_one_value(vault: Vault) -> None:
    (a,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    (b,) = await vault.tokenize_many("globex", [("ssn", SSN)])
    assert a != b


async def test_token_of_another_tenant_is_not_found(vault: Vault) -> None:
    (token,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    assert await vault.resolve_many("globex", [token.text]) == {token.text: NotFound(token.text)}


async def test_unknown_token_is_not_found(vault: Vault) -> None:
    unknown = "tok_v1_ssn_" + "q" * 20
    assert await vault.resolve_many("acme", [unknown]) == {unknown: NotFound(unknown)}


async def test_concurrent_writers_of_one_value_agree_on_one_token(
    make_vault: Callable[..., Any], backend: Backend
) -> None:
    # Two vault instances stand for two worker processes sharing the store.
    vaults = [await make_vault(), await make_vault()]
    results = await asyncio.gather(
        *(vaults[i % 2].tokenize_many("acme", [("card", CARD), ("ssn", SSN)]) for i in range(20))
    )
    assert len({tuple(r) for r in results}) == 1
    assert await backend.sql("SELECT COUNT(*) FROM tokens") == [(2,)]


async def test_tokenize_rejects_values_of_the_wrong_shape(vault: Vault) -> None:
    for item in [("ssn", "12345"), ("card", "4111 1111 1111 111x"), ("iban", "123456789")]:
        with pytest.raises(ValueFormatError) as info:
            await vault.tokenize_many("acme", [item])
        assert item[1] not in str(info.value)


async def test_bad_tenant_ids_are_refused(vault: Vault) -> None:
    with pytest.raises(TenantFormatError):
        await vault.tokenize_many("acme corp", [("ssn", SSN)])
    with pytest.raises(TenantFormatError):
        await vault.resolve_many("", [])


async def test_resolve_refuses_malformed_tokens(vault: Vault) -> None:
    with pytest.raises(TokenFormatError):
        await vault.resolve_many("acme", ["tok_v1_ssn_short"])


async def test_empty_batches_need_no_store(vault: Vault) -> None:
    assert await vault.tokenize_many("acme", []) == []
    assert await vault.resolve_many("acme", []) == {}


async def test_large_message_is_tokenized_in_one_call(vault: Vault) -> None:
    values = [("card", f"4000{n:012d}") for n in range(600)]
    tokens = await vault.tokenize_many("acme", values)
    assert len(set(tokens)) == 600
    results = await vault.resolve_many("acme", [t.text for t in tokens])
    assert [r.value for r in results.values() if isinstance(r, Resolved)] == [v for _, v in values]


async def test_erased_token_resolves_as_erased_and_others_still_resolve(vault: Vault) -> None:
    card, ssn = await vault.tokenize_many("acme", [("card", CARD), ("ssn", SSN)])
    assert await vault.erase_token("acme", ssn.text)
    results = await vault.resolve_many("acme", [card.text, ssn.text])
    assert results[ssn.text] == Erased(ssn.text)
    assert isinstance(results[card.text], Resolved)
    assert not await vault.erase_token("globex", card.text)


async def test_erased_tenant_resolves_as_erased_and_gets_new_tokens(
    vault: Vault, backend: Backend
) -> None:
    (old,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    (other,) = await vault.tokenize_many("globex", [("ssn", SSN)])
    assert await vault.erase_tenant("acme") == 1
    assert await vault.resolve_many("acme", [old.text]) == {old.text: Erased(old.text)}
    assert isinstance((await vault.resolve_many("globex", [other.text]))[other.text], Resolved)
    # Its data keys are gone: crypto-shredding, not just a flag.
    assert await backend.sql("SELECT COUNT(*) FROM deks WHERE tenant = $1", "acme") == [(0,)]
    (new,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    assert new != old
    assert (await vault.resolve_many("acme", [new.text]))[new.text] == Resolved(
        new.text, EntityType.SSN, SSN_DIGITS
    )


async def test_erasure_seen_by_another_process_with_a_cached_key(
    make_vault: Callable[..., Any],
) -> None:
    proxy, admin = await make_vault(), await make_vault()
    (old,) = await proxy.tokenize_many("acme", [("ssn", SSN)])
    await admin.erase_tenant("acme")
    # The proxy still holds acme's old data key in memory; it must not use it.
    (new,) = await proxy.tokenize_many("acme", [("ssn", SSN)])
    assert new != old
    assert isinstance((await admin.resolve_many("acme", [new.text]))[new.text], Resolved)


async def test_purge_drops_idle_tokens_and_keeps_recently_used_ones(
    vault: Vault, clock: FakeClock
) -> None:
    idle, seen, resolved = await vault.tokenize_many(
        "acme", [("card", CARD), ("card", CARD_2), ("ssn", SSN)]
    )
    clock.now += 60 * DAY_S
    await vault.tokenize_many("acme", [("card", CARD_2)])
    await vault.resolve_many("acme", [resolved.text])
    clock.now += 60 * DAY_S
    assert await vault.purge(90 * DAY_S) == 1
    results = await vault.resolve_many("acme", [idle.text, seen.text, resolved.text])
    assert results[idle.text] == NotFound(idle.text)
    assert results[seen.text] == Resolved(seen.text, EntityType.CARD, CARD_2_DIGITS)
    assert isinstance(results[resolved.text], Resolved)


async def test_wrong_key_resolves_as_corrupt_and_is_logged_with_token_and_version(
    vault: Vault, make_vault: Callable[..., Any]
) -> None:
    (token,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    other = generate_key_material(secrets.token_bytes)
    intruder = await make_vault(other)
    with capture_logs() as events:
        results = await intruder.resolve_many("acme", [token.text])
    assert results == {token.text: Corrupt(token.text)}
    failed = next(e for e in events if e["event"] == "data_key_integrity_failed")
    assert (failed["token"], failed["key_version"]) == (token.text, 1)
    assert SSN_DIGITS not in repr(events)


async def test_wrong_key_ring_is_refused_at_bind_naming_versions(
    vault: Vault, make_vault: Callable[..., Any]
) -> None:
    await vault.tokenize_many("acme", [("ssn", SSN)])
    other = await make_vault(generate_key_material(secrets.token_bytes))
    with pytest.raises(KeyRingMismatchError) as info:
        await other.bind_keys()
    assert "index key" in str(info.value)
    assert "kek versions 1 of the key ring are other keys" in str(info.value)
    with pytest.raises(KeyRingMismatchError):
        await other.check_ready()


async def test_missing_key_version_resolves_as_key_missing(
    vault: Vault, make_vault: Callable[..., Any], backend: Backend
) -> None:
    (good,) = await vault.tokenize_many("globex", [("ssn", SSN)])
    material = read_key_file(backend.key_file)
    rotated = add_kek_version(material, secrets.token_bytes)
    newer = await make_vault(rotated)
    await record_rotation(newer, rotated)
    (token,) = await newer.tokenize_many("acme", [("ssn", SSN)])
    # A process still on the old key ring (and no key file to re-read) meets a data key
    # wrapped by version 2: that token is key_missing, the others still resolve.
    results = await vault.resolve_many("acme", [token.text])
    assert results == {token.text: KeyMissing(token.text, 2)}
    assert isinstance((await vault.resolve_many("globex", [good.text]))[good.text], Resolved)


async def test_process_without_the_active_key_never_wraps_a_new_data_key(
    vault: Vault, make_vault: Callable[..., Any], backend: Backend
) -> None:
    (old,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    rotated = add_kek_version(read_key_file(backend.key_file), secrets.token_bytes)
    await record_rotation(vault, rotated)
    with pytest.raises(KeyRingStaleError):
        await vault.tokenize_many("globex", [("ssn", SSN)])
    with pytest.raises(KeyRingStaleError):
        await vault.check_ready()
    assert {u.kek_version for u in await vault.kek_usage()} == {1}
    assert (await vault.resolve_many("acme", [old.text]))[old.text] == Resolved(
        old.text, EntityType.SSN, SSN_DIGITS
    )


async def test_a_corrupt_row_among_good_ones_is_reported_alone(
    vault: Vault, backend: Backend
) -> None:
    card, card_2, ssn = await vault.tokenize_many(
        "acme", [("card", CARD), ("card", CARD_2), ("ssn", SSN)]
    )
    rows = dict(await backend.sql("SELECT token, sealed FROM tokens"))
    # Swapped ciphertext: it must fail, never resolve to the other card.
    await backend.sql(
        "UPDATE tokens SET sealed = $1 WHERE token = $2", rows[card_2.text], card.text
    )
    results = await vault.resolve_many("acme", [card.text, card_2.text, ssn.text])
    assert results[card.text] == Corrupt(card.text)
    assert results[card_2.text] == Resolved(card_2.text, EntityType.CARD, CARD_2_DIGITS)
    assert results[ssn.text] == Resolved(ssn.text, EntityType.SSN, SSN_DIGITS)


async def test_row_copied_to_another_tenant_fails_to_decrypt(
    vault: Vault, backend: Backend
) -> None:
    (token,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    await vault.tokenize_many("globex", [("card", CARD)])
    await backend.sql(
        "UPDATE tokens SET tenant = $1, dek_id = (SELECT dek_id FROM deks WHERE tenant = $1) "
        "WHERE token = $2",
        "globex",
        token.text,
    )
    assert await vault.resolve_many("globex", [token.text]) == {token.text: Corrupt(token.text)}


@pytest.mark.parametrize("flip_at", [0, 12, -1])
async def test_corrupted_ciphertext_resolves_as_corrupt(
    vault: Vault, backend: Backend, flip_at: int
) -> None:
    (token,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    ((sealed,),) = await backend.sql("SELECT sealed FROM tokens")
    corrupted = bytearray(sealed)
    corrupted[flip_at] ^= 0x01
    await backend.sql("UPDATE tokens SET sealed = $1", bytes(corrupted))
    with capture_logs() as events:
        assert await vault.resolve_many("acme", [token.text]) == {token.text: Corrupt(token.text)}
    failed = next(e for e in events if e["event"] == "value_integrity_failed")
    assert failed["key_version"] == 1


async def test_corrupted_wrapped_data_key_resolves_as_corrupt(
    vault: Vault, make_vault: Callable[..., Any], backend: Backend
) -> None:
    (token,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    ((wrapped,),) = await backend.sql("SELECT wrapped FROM deks")
    # Flip the last byte (setting it to a constant leaves it unchanged 1 time in 256).
    await backend.sql(
        "UPDATE deks SET wrapped = $1", bytes(wrapped[:-1]) + bytes([wrapped[-1] ^ 0xFF])
    )
    fresh = await make_vault()  # no key cached in memory
    assert await fresh.resolve_many("acme", [token.text]) == {token.text: Corrupt(token.text)}


async def test_rotate_then_rewrap_moves_data_keys_without_changing_values(
    vault: Vault, make_vault: Callable[..., Any], backend: Backend
) -> None:
    (before,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    rotated: KeyMaterial = add_kek_version(read_key_file(backend.key_file), secrets.token_bytes)
    rewrapper = await make_vault(rotated)
    await record_rotation(rewrapper, rotated)
    (after,) = await rewrapper.tokenize_many("acme", [("card", CARD)])
    assert {u.kek_version: u.deks for u in await rewrapper.kek_usage()} == {1: 1, 2: 1}
    ((sealed_before,),) = await backend.sql(
        "SELECT sealed FROM tokens WHERE token = $1", before.text
    )

    report = await rewrapper.rewrap()
    assert (report.rewrapped, report.failed_versions) == (1, ())
    assert {u.kek_version: u.deks for u in await rewrapper.kek_usage()} == {2: 2}
    assert await backend.sql("SELECT sealed FROM tokens WHERE token = $1", before.text) == [
        (sealed_before,)
    ]
    # A process that only knows version 2 reads everything; the old one keeps its cached key.
    only_new = await make_vault(KeyMaterial({2: rotated.keks[2]}, 2, rotated.index_key))
    results = await only_new.resolve_many("acme", [before.text, after.text])
    assert results[before.text] == Resolved(before.text, EntityType.SSN, SSN_DIGITS)
    assert isinstance((await vault.resolve_many("acme", [before.text]))[before.text], Resolved)
    assert (await rewrapper.rewrap()).rewrapped == 0  # resumable: nothing left to do


async def test_migrate_is_idempotent_and_check_ready_passes(vault: Vault, backend: Backend) -> None:
    from vault.startup import open_store

    store = await open_store(backend.config)
    try:
        assert await store.migrate() == SCHEMA_VERSION
        assert await store.migrate() == SCHEMA_VERSION
    finally:
        await store.close()
    await vault.check_ready()


async def test_find_token_gives_the_issued_token_and_stores_nothing(vault: Vault) -> None:
    [card] = await vault.tokenize_many("acme", [("card", CARD)])
    # Another spelling of the same value finds the same token.
    assert await vault.find_token("acme", "card", CARD_DIGITS) == card.text
    # A value never tokenised is not found, and finding it does not create it.
    assert await vault.find_token("acme", "card", CARD_2) is None
    assert await vault.find_token("acme", "card", CARD_2) is None
    # Another tenant's lookup key gives another digest: nothing there.
    assert await vault.find_token("other", "card", CARD) is None
    [again] = await vault.tokenize_many("acme", [("card", CARD_2)])
    assert await vault.find_token("acme", "card", CARD_2) == again.text


async def test_retire_waits_for_data_keys_and_for_live_processes_holding_the_version(
    vault: Vault, make_vault: Callable[..., Any], backend: Backend
) -> None:
    (token,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    rotated = add_kek_version(read_key_file(backend.key_file), secrets.token_bytes)
    newer = await make_vault(rotated)
    await record_rotation(newer, rotated)
    store = newer.store
    with pytest.raises(KeyRetireError, match="still wraps 1 data keys of 1 tenants"):
        await store.record_retirement(1, 100)
    assert (await newer.rewrap()).rewrapped == 1
    await store.heartbeat(Heartbeat("old-process", 1, 100, 110))
    await store.heartbeat(Heartbeat("gone-process", 1, 10, 20))  # expired: does not count
    with pytest.raises(KeyRetireError, match="1 running processes still hold kek version 1"):
        await store.record_retirement(1, 100)
    await store.heartbeat(Heartbeat("old-process", 2, 101, 111))
    await store.record_retirement(1, 102)
    state = await store.read_key_state()
    assert state is not None
    record = state.record(1)
    assert record is not None
    assert (record.state, record.retired_at) == ("retired", 102)
    assert [b.process_id for b in await store.live_heartbeats(105)] == ["old-process"]
    results = await newer.resolve_many("acme", [token.text])
    assert results[token.text] == Resolved(token.text, EntityType.SSN, SSN_DIGITS)
