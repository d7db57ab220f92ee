"""Concurrent calls combined by the stores, against real SQLite and PostgreSQL.

Calls made together (asyncio.gather on one loop) are folded into one statement per batch;
each caller must still get exactly its own answer, and never another tenant's row.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.vault.conftest import CARD, CARD_2, CARD_2_DIGITS, CARD_DIGITS, SSN, SSN_DIGITS, Backend
from vault.errors import VaultUnavailableError
from vault.service import NotFound, Resolution, Resolved, Vault
from vault.startup import open_store
from vault.stores.base import DekRecord, KekRecord, KeyState, NewRow
from vault.tokens import EntityType, Token

TENANTS = ("acme", "globex")
# Raw spellings and the digits they normalise to; repeated across calls on purpose.
VALUES = [("card", CARD, CARD_DIGITS), ("card", CARD_2, CARD_2_DIGITS), ("ssn", SSN, SSN_DIGITS)]
# A hang is a failure, not a stuck run.
HANG_GUARD_S = 30


async def test_many_concurrent_mixed_calls_get_their_own_tenant_separated_answers(
    vault: Vault,
) -> None:
    # Known tokens first (this also caches both tenants' data keys, so the calls below go
    # straight to the store and queue together).
    known = {
        tenant: await vault.tokenize_many(tenant, [(e, raw) for e, raw, _ in VALUES])
        for tenant in TENANTS
    }
    calls: list[Any] = []
    expected: list[Any] = []
    for i in range(50):
        tenant, other = TENANTS[i % 2], TENANTS[(i + 1) % 2]
        if i % 3 == 0:
            # Messages of 1-3 values, repeated values within and across calls.
            picks = [VALUES[(i + j) % 3] for j in range(1 + i % 3)] + [VALUES[i % 3]]
            calls.append(vault.tokenize_many(tenant, [(e, raw) for e, raw, _ in picks]))
            expected.append([known[tenant][VALUES.index(p)] for p in picks])
        else:
            # Its own tenant's tokens, plus one of the other tenant's: that one is NotFound.
            own = known[tenant][i % 3]
            foreign = known[other][(i + 1) % 3]
            calls.append(vault.resolve_many(tenant, [own.text, foreign.text]))
            expected.append(
                {
                    own.text: Resolved(own.text, own.entity_type, VALUES[i % 3][2]),
                    foreign.text: NotFound(foreign.text),
                }
            )
    async with asyncio.timeout(HANG_GUARD_S):
        results = await asyncio.gather(*calls)
    assert results == expected


async def test_concurrent_resolves_of_two_tenants_never_cross_the_tenant_wall(
    vault: Vault,
) -> None:
    # Both tenants tokenize the same values, then each resolves every token of both, in
    # one combined batch: only its own resolve.
    tokens = dict(
        zip(
            TENANTS,
            await asyncio.gather(
                *(vault.tokenize_many(t, [(e, raw) for e, raw, _ in VALUES]) for t in TENANTS)
            ),
            strict=True,
        )
    )
    everything = [tok.text for tenant in TENANTS for tok in tokens[tenant]]
    asks = [TENANTS[i % 2] for i in range(20)]
    async with asyncio.timeout(HANG_GUARD_S):
        results: list[dict[str, Resolution]] = await asyncio.gather(
            *(vault.resolve_many(tenant, everything) for tenant in asks)
        )
    for tenant, result in zip(asks, results, strict=True):
        own = {tok.text for tok in tokens[tenant]}
        assert {t for t, r in result.items() if isinstance(r, Resolved)} == own
        assert all(isinstance(r, NotFound) for t, r in result.items() if t not in own)


async def test_same_new_value_from_many_concurrent_messages_gets_one_token(
    vault: Vault, backend: Backend
) -> None:
    await vault.tokenize_many("acme", [("ssn", SSN)])  # caches the data key
    fresh = [("card", f"4000{n:012d}") for n in range(3)]
    async with asyncio.timeout(HANG_GUARD_S):
        results: list[list[Token]] = await asyncio.gather(
            *(vault.tokenize_many("acme", [fresh[i % 3], fresh[(i + 1) % 3]]) for i in range(30))
        )
    by_value: dict[str, set[Token]] = {}
    for i, (first, second) in enumerate(results):
        by_value.setdefault(fresh[i % 3][1], set()).add(first)
        by_value.setdefault(fresh[(i + 1) % 3][1], set()).add(second)
    assert all(len(tokens) == 1 for tokens in by_value.values())
    assert await backend.sql("SELECT COUNT(*) FROM tokens") == [(4,)]


async def test_a_new_tenants_first_concurrent_messages_share_one_data_key(
    vault: Vault, backend: Backend
) -> None:
    with capture_logs() as events:
        async with asyncio.timeout(HANG_GUARD_S):
            await asyncio.gather(
                *(vault.tokenize_many("newco", [("card", f"4000{n:012d}")]) for n in range(16))
            )
    created = [e for e in events if e["event"] == "data_key_created"]
    assert len(created) == 1
    assert await backend.sql("SELECT COUNT(*) FROM deks WHERE tenant = 'newco'") == [(1,)]


async def test_store_failure_reaches_every_waiting_caller_and_nothing_hangs(
    vault: Vault, backend: Backend
) -> None:
    known = await vault.tokenize_many("acme", [(e, raw) for e, raw, _ in VALUES])
    await vault.tokenize_many("globex", [("ssn", SSN)])
    # The table disappears under the running vault: every combined statement fails.
    await backend.sql("ALTER TABLE tokens RENAME TO tokens_gone")
    calls = [
        vault.tokenize_many(TENANTS[i % 2], [("card", f"4000{i:012d}")])
        if i % 2
        else vault.resolve_many("acme", [known[i % 3].text])
        for i in range(20)
    ]
    async with asyncio.timeout(HANG_GUARD_S):
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, VaultUnavailableError) for r in results), results
    # The store comes back: the same vault serves again without a restart.
    await backend.sql("ALTER TABLE tokens_gone RENAME TO tokens")
    async with asyncio.timeout(HANG_GUARD_S):
        resolved = await vault.resolve_many("acme", [known[0].text])
    assert resolved[known[0].text] == Resolved(known[0].text, EntityType.CARD, CARD_DIGITS)


async def test_close_while_calls_are_queued_fails_them_cleanly(
    make_vault: Callable[..., Any],
) -> None:
    vault: Vault = await make_vault()
    known = await vault.tokenize_many("acme", [("ssn", SSN)])
    tasks = [
        asyncio.create_task(
            vault.tokenize_many("acme", [("card", f"4000{i:012d}")])
            if i % 2
            else vault.resolve_many("acme", [known[0].text])
        )
        for i in range(20)
    ]
    await asyncio.sleep(0)  # every call is queued in the store now
    await vault.close()
    async with asyncio.timeout(HANG_GUARD_S):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert failed
    assert all(isinstance(r, VaultUnavailableError) for r in failed)
    with pytest.raises(VaultUnavailableError):
        await vault.resolve_many("acme", [known[0].text])


async def test_erased_data_key_refuses_only_the_calls_that_used_it(backend: Backend) -> None:
    store = await open_store(backend.config, create=True)
    try:
        await store.migrate()
        await store.init_key_state(KeyState(1, b"i", (KekRecord(1, "active", b"c", 1),)), 1)
        deks = {
            tenant: await store.insert_dek(
                DekRecord(secrets.token_hex(12), tenant, 1, 1, secrets.token_bytes(60)), 1
            )
            for tenant in TENANTS
        }
        await store.erase_tenant("acme")  # its data key is gone; a stale caller still has it

        def rows(tag: str) -> list[NewRow]:
            return [NewRow(f"{tag}-{n}".encode(), f"tok-{tag}-{n}", "card", b"s") for n in (1, 2)]

        async with asyncio.timeout(HANG_GUARD_S):
            stale, live = await asyncio.gather(
                store.tokenize("acme", deks["acme"].dek_id, rows("a"), 1),
                store.tokenize("globex", deks["globex"].dek_id, rows("g"), 1),
            )
        assert stale is None
        assert live == {b"g-1": "tok-g-1", b"g-2": "tok-g-2"}
        # Nothing of the stale call was written.
        assert await store.resolve("acme", ["tok-a-1", "tok-a-2"], 1, 0) == []
    finally:
        await store.close()
