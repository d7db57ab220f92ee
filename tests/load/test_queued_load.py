"""Queued delivery (`delivery: queued`) under load and faults, through real `redactor serve`
processes.

A few hundred messages with known card numbers and SSNs at concurrency 64. Afterwards, once
the outbox has drained (bounded wait): every message answered 202 reached the upstream at
least once and, counted by Idempotency-Key, exactly once; every copy redacted; no known value
in what the upstream got, the outbox (read at the height of each fault, every body decoded as
the upstream would), the logs, /metrics or the database bytes; one token per value; the audit
chains verify, the vault lacks no token a message carried, and `redactor outbox list` shows
nothing pending and nothing dead.

The scenarios where a deliverer dies holding leases (SIGKILL, a replica killed, the database
cut mid-delivery) wait for those leases to run out (2 x upstream_timeout_s + 30 s, the
delivery loop's default, which a config cannot shorten), so each takes about 45 s; the others
stay near 20 s.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.load import faults
from tests.load.checks import outbox_rows, tally
from tests.load.conftest import BACKENDS
from tests.load.messages import find_known, generate, known_digits
from tests.load.scenario import Run, push, run_scenario, wait_drained

COUNT = 240
# Quick retries, so a healed upstream gets the backlog within the test's span, and attempts
# enough that no fault, however long a busy machine stretches it, makes an item dead.
QUEUED = {
    "delivery": "queued",
    "outbox": {"backoff_base_s": 0.2, "backoff_cap_s": 1.0, "max_attempts": 1000},
}
FAST_UPSTREAM = {"upstream_timeout_s": 1}
# Leases of a dead deliverer end after 2 x 1 s + 30 s; then another takes the items.
LEASE_DRAIN_S = 60.0


@pytest.mark.parametrize("backend", BACKENDS)
async def test_queued_load_delivers_every_accepted_message_once_per_key_redacted(
    make_site, backend: str
) -> None:
    site = await make_site(backend, route=QUEUED)
    server = site.server("one")
    await server.start()
    tally = await run_scenario(site, [server], generate(COUNT, seed=11), mode="queued")
    assert tally.problems == []
    assert tally.statuses == {202: COUNT}
    assert (tally.accepted, tally.delivered) == (COUNT, COUNT)
    assert tally.leaked == tally.lost == tally.duplicates_after_dedupe == 0
    assert tally.tokens > COUNT


# fault -> (how, backend): both stores' claim paths meet a failing upstream.
UPSTREAM_FAULTS = {
    "refuses": ("refuse", "sqlite"),
    "hangs": ("hang", "postgres"),
    "answers_500": ("error", "sqlite"),
    "answers_429": ("throttle", "postgres"),
    "closes_mid_answer": ("cut", "sqlite"),
}


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(f, marks=[pytest.mark.postgres] if UPSTREAM_FAULTS[f][1] == "postgres" else [])
        for f in sorted(UPSTREAM_FAULTS)
    ],
)
async def test_queued_load_when_the_upstream_fails_accepts_all_and_delivers_all_later(
    make_site, fault: str
) -> None:
    how, backend = UPSTREAM_FAULTS[fault]
    site = await make_site(backend, route=QUEUED, top=FAST_UPSTREAM)
    server = site.server("one")
    await server.start()
    tally = await run_scenario(
        site, [server], generate(COUNT, seed=12), mode="queued", fault=faults.upstream(how)
    )
    assert tally.problems == []
    # The sender never waits for the helpdesk: every message was accepted.
    assert tally.statuses == {202: COUNT}
    assert tally.lost == tally.leaked == tally.duplicates_after_dedupe == 0
    # The fault bit: the upstream turned attempts away, and the backlog was held meanwhile.
    assert any(r.answer != 200 for r in site.upstream.received) or how == "refuse"
    assert tally.receipts >= COUNT
    if how == "cut":
        # The upstream took a copy whose answer was lost: it came again, with the same key.
        assert tally.duplicates > 0
    if how == "throttle":
        # Retry-After is honoured: no throttled message came back sooner than it said.
        by_key: dict[str | None, list[float]] = {}
        throttled: set[tuple[str | None, float]] = set()
        for r in site.upstream.received:
            by_key.setdefault(r.idempotency_key, []).append(r.at)
            if r.answer == 429:
                throttled.add((r.idempotency_key, r.at))
        gaps = [
            later - at
            for key, times in by_key.items()
            for at, later in itertools.pairwise(times)
            if (key, at) in throttled
        ]
        assert gaps
        assert min(gaps) >= site.upstream.retry_after_s - 0.1


async def test_queued_outbox_commands_show_pending_messages_redacted(make_site) -> None:
    """While the upstream refuses, `redactor outbox list` and `show` print the waiting
    messages: redacted requests with their tokens, never a value."""
    site = await make_site("sqlite", route=QUEUED, top=FAST_UPSTREAM)
    server = site.server("one")
    await server.start()
    messages = generate(40, seed=13)
    await site.upstream.set_mode("refuse")
    outcomes = await push([server], messages)
    assert {o.status for o in outcomes.values()} == {202}
    rows = await outbox_rows(site)
    assert len(rows) == len(messages)
    config = str(server.config)
    runs = await site.cli_batch(
        ("outbox", "list", "--json", "--config", config),
        *(("outbox", "show", row.id, "--config", config) for row in rows[:3]),
    )
    known = known_digits(messages)
    for code, out, err in runs:
        assert code == 0, err
        assert not set(find_known((out + err).encode(), known))
    listed, *shown = runs
    assert len(listed[1].splitlines()) == len(messages)
    assert all("tok_v1_" in out for _code, out, _err in shown)
    # Then the upstream comes back and gets every one of them.
    await site.upstream.set_mode("ok")
    await wait_drained(site, outcomes, timeout_s=30)
    await server.stop()
    result = await tally(site, messages, outcomes, mode="queued", outbox=rows)
    assert result.problems == []
    assert result.delivered == len(messages)


async def test_queued_load_across_a_sigkill_mid_delivery_loses_nothing_accepted(make_site) -> None:
    # SQLite; on PostgreSQL a deliverer dies holding leases in the two-replica test below.
    site = await make_site("sqlite", route=QUEUED, top=FAST_UPSTREAM)
    server = site.server("one")
    await server.start()
    # The upstream is slow to answer, so deliveries are in flight (leased) at the kill.
    site.upstream.hang_s = 0.3
    await site.upstream.set_mode("hang")
    tally = await run_scenario(
        site, [server], generate(COUNT, seed=14), mode="queued",
        fault=(faults.kill_and_restart, faults.healthy_upstream), fault_s=0.0, drain_s=LEASE_DRAIN_S,
    )  # fmt: skip
    assert tally.problems == []
    assert server.starts == 2
    assert tally.lost == tally.leaked == tally.duplicates_after_dedupe == 0
    # Every sender answered 202 has its message delivered; the others saw the process go.
    assert set(tally.statuses) <= {202, 0}


@pytest.mark.postgres
async def test_queued_load_while_postgres_is_unreachable_refuses_then_delivers_all_accepted(
    make_site,
) -> None:
    site = await make_site("postgres", route=QUEUED, top=FAST_UPSTREAM, pg_through_proxy=True)
    server = site.server("one")
    await server.start()
    messages = generate(COUNT, seed=15)
    tally = await run_scenario(
        site, [server], messages, mode="queued",
        fault=faults.POSTGRES_UNREACHABLE, drain_s=LEASE_DRAIN_S,
    )  # fmt: skip
    assert tally.problems == []
    assert 503 in tally.statuses  # nothing accepted while the outbox could not be written
    assert tally.lost == tally.leaked == tally.duplicates_after_dedupe == 0
    assert {tally.outcomes[m.id].status for m in messages[-20:]} == {202}


@pytest.mark.postgres
async def test_queued_load_one_of_two_replicas_killed_holding_leases_loses_nothing(
    make_site,
) -> None:
    site = await make_site("postgres", route=QUEUED, top=FAST_UPSTREAM)
    one, two = site.server("one"), site.server("two")
    await one.start()
    await two.start()
    site.upstream.hang_s = 0.3
    await site.upstream.set_mode("hang")
    held: list[str] = []

    async def kill_one_holding_leases(run: Run) -> None:
        # Killed once it holds a lease (a bounded wait): under a loaded CI machine its first
        # claim could come later than the fault's moment, and the scenario is a replica dying
        # with work in hand, not whichever moment the clock picked.
        assert one.proc is not None
        mine = f":{one.proc.pid}:"
        for _ in range(200):
            rows = await outbox_rows(run.site)
            owners = [r.lease_owner for r in rows if r.lease_owner]
            if any(mine in owner for owner in owners):
                break
            await asyncio.sleep(0.05)
        held.extend(owners)
        one.kill()
        await one.wait()

    tally = await run_scenario(
        site, [one, two], generate(COUNT, seed=16), mode="queued",
        fault=(kill_one_holding_leases, faults.healthy_upstream), fault_s=0.5, drain_s=LEASE_DRAIN_S,
    )  # fmt: skip
    assert tally.problems == []
    assert one.proc is not None
    assert any(f":{one.proc.pid}:" in owner for owner in held)  # it died holding leases
    assert tally.lost == tally.leaked == tally.duplicates_after_dedupe == 0
    assert set(tally.statuses) <= {202, 0}
