"""The full-reveal rate limit is a window counted in the vault's database: it holds across
server processes (two stacks on one vault stand for two workers or replicas), and Retry-After
says when the oldest counted reveal leaves the window."""

from __future__ import annotations

import asyncio
import secrets
import time

import asyncpg
import pytest

from tests.agent.conftest import CARD, TENANT, Stack
from tests.vault.conftest import PG_DSN

BODY_PURPOSE = "CHARGEBACK_DISPUTE"
LIMIT, WINDOW_S = 3, 600  # tests/agent/conftest.py's policy


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def two_processes(request: pytest.FixtureRequest, start_stack):
    """Two stacks (each with its own vault handle, policy store and verifier) on one vault."""
    if request.param == "sqlite":
        yield await start_stack(), await start_stack()
        return
    schema = "agent_rl_" + secrets.token_hex(6)
    url = f"{PG_DSN}?schema={schema}"
    try:
        yield await start_stack(vault_url=url), await start_stack(vault_url=url)
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def _full(stack: Stack, token: str, sub: str) -> tuple[int, dict, str | None]:
    resp = await stack.agent.post(
        "/v1/resolve",
        json={"tokens": [token], "purpose": BODY_PURPOSE},
        headers=stack.auth(roles=["supervisor"], sub=sub),
    )
    return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def test_reveals_spread_over_two_processes_share_one_limit(two_processes) -> None:
    one, two = two_processes
    [card] = await one.tokenize(f"card {CARD}")
    statuses = [(await _full(stack, card, "sup-9"))[0] for stack in (one, two, one)]
    assert statuses == [200, 200, 200]
    for stack in (two, one):
        status, doc, _ = await _full(stack, card, "sup-9")
        assert (status, doc["error"]) == (429, "rate_limited")
    # Another subject has a budget of its own.
    assert (await _full(two, card, "sup-10"))[0] == 200


async def test_concurrent_reveals_on_two_processes_never_pass_the_limit(two_processes) -> None:
    one, two = two_processes
    [card] = await one.tokenize(f"card {CARD}")
    results = await asyncio.gather(
        *(_full(stack, card, "sup-11") for _ in range(6) for stack in (one, two))
    )
    assert sorted(status for status, _, _ in results) == [200] * LIMIT + [429] * (12 - LIMIT)


async def test_retry_after_is_when_the_oldest_counted_reveal_leaves_the_window(
    stack: Stack,
) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    # A reveal counted 9 minutes ago (through the vault, as another replica would have).
    nine_minutes_ago = time.time() - 540
    budget = await stack.resources.vault.take_reveals(
        TENANT, "sup-12", 1, limit=LIMIT, window_s=WINDOW_S, now=nine_minutes_ago
    )
    assert budget.granted == 1
    for _ in range(LIMIT - 1):
        assert (await _full(stack, card, "sup-12"))[0] == 200
    status, doc, retry_after = await _full(stack, card, "sup-12")
    assert (status, doc["error"]) == (429, "rate_limited")
    # The oldest reveal leaves the window in about 60 s, not the window's 600.
    assert retry_after is not None
    assert 1 <= int(retry_after) <= 60


async def test_a_reveal_older_than_the_window_no_longer_counts(stack: Stack) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    long_ago = time.time() - WINDOW_S - 1
    budget = await stack.resources.vault.take_reveals(
        TENANT, "sup-13", LIMIT, limit=LIMIT, window_s=WINDOW_S, now=long_ago
    )
    assert budget.granted == LIMIT
    for _ in range(LIMIT):
        assert (await _full(stack, card, "sup-13"))[0] == 200
    assert (await _full(stack, card, "sup-13"))[0] == 429
