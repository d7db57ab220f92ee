"""The reveal window counter: one count per (tenant, subject) for every process on the vault."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from vault.service import Vault
from vault.stores.base import RevealBudget


async def test_reveals_are_counted_per_subject_within_the_window(vault: Vault) -> None:
    take = vault.take_reveals
    assert await take("acme", "ann", 2, limit=3, window_s=60, now=100.0) == RevealBudget(2, 100.0)
    assert await take("acme", "ann", 2, limit=3, window_s=60, now=110.0) == RevealBudget(1, 100.0)
    assert await take("acme", "ann", 1, limit=3, window_s=60, now=120.0) == RevealBudget(0, 100.0)
    # Another subject, and the same subject of another tenant, count apart.
    assert await take("acme", "bob", 1, limit=3, window_s=60, now=120.0) == RevealBudget(1, 120.0)
    assert await take("globex", "ann", 3, limit=3, window_s=60, now=120.0) == RevealBudget(3, 120.0)
    # At 160 the two reveals of 100 leave the window; the one of 110 is the oldest left.
    assert await take("acme", "ann", 5, limit=3, window_s=60, now=160.0) == RevealBudget(2, 110.0)
    assert await take("acme", "ann", 0, limit=3, window_s=60, now=160.0) == RevealBudget(0, None)


async def test_two_vault_handles_never_grant_past_the_limit_together(
    make_vault: Callable[..., Any],
) -> None:
    first = await make_vault()
    second = await make_vault()
    budgets = await asyncio.gather(
        *(
            handle.take_reveals("acme", "ann", 1, limit=5, window_s=60, now=100.0)
            for _ in range(10)
            for handle in (first, second)
        )
    )
    assert sum(b.granted for b in budgets) == 5


async def test_the_subject_is_stored_as_a_digest(vault: Vault, backend) -> None:
    await vault.take_reveals("acme", "ann@example.com", 1, limit=3, window_s=60, now=100.0)
    rows = await backend.sql("SELECT subject_key FROM reveal_events")
    assert len(rows) == 1
    assert "ann" not in str(rows)
    assert len(rows[0][0]) == 64
