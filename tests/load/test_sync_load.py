"""Sync delivery (the default) under load and faults, through a real `redactor serve`.

A few hundred messages with known card numbers and SSNs at concurrency 64, on each vault
backend, with each fault in the middle of the load. Afterwards: every message answered 2xx
reached the upstream exactly once, redacted; a message answered with an error is the
sender's to retry (counted apart, and reached the upstream at most once); no known value in
what the upstream got, the logs, /metrics or the database; one token per value; the audit
chains verify and the vault lacks no token a message carried. Bounded: each run stops by
itself within its deadline.
"""

from __future__ import annotations

import pytest

from tests.load import faults
from tests.load.conftest import BACKENDS
from tests.load.messages import generate
from tests.load.scenario import run_scenario

COUNT = 240


@pytest.mark.parametrize("backend", BACKENDS)
async def test_sync_load_delivers_every_accepted_message_once_and_redacted(
    make_site, backend: str
) -> None:
    site = await make_site(backend)
    server = site.server("one")
    await server.start()
    tally = await run_scenario(site, [server], generate(COUNT, seed=1), mode="sync")
    assert tally.problems == []
    assert (tally.accepted, tally.delivered, tally.receipts) == (COUNT, COUNT, COUNT)
    assert tally.leaked == tally.duplicates == tally.lost == 0
    assert tally.tokens > COUNT  # every message held at least one value


# fault -> (how, the answers senders must have seen while it lasted); the proxy gives up on
# a hanging upstream after upstream_timeout_s (1 s here), well inside the 1.5 s fault.
UPSTREAM_FAULTS = {
    "refuses": ("refuse", {502}),
    "hangs": ("hang", {504}),
    "answers_500": ("error", {500}),
    "answers_429": ("throttle", {429}),
    "closes_mid_answer": ("cut", {502}),
}


@pytest.mark.parametrize("fault", sorted(UPSTREAM_FAULTS))
async def test_sync_load_when_the_upstream_fails_loses_nothing_it_accepted(
    make_site, fault: str
) -> None:
    mode, seen = UPSTREAM_FAULTS[fault]
    site = await make_site("sqlite", top={"upstream_timeout_s": 1})
    server = site.server("one")
    await server.start()
    tally = await run_scenario(
        site, [server], generate(COUNT, seed=2), mode="sync", fault=faults.upstream(mode)
    )
    assert tally.problems == []
    assert seen <= set(tally.statuses), tally.statuses  # the fault bit
    assert tally.refused > 0
    assert tally.accepted > 0
    assert tally.lost == tally.leaked == tally.duplicates == 0


@pytest.mark.postgres
async def test_sync_load_while_postgres_is_unreachable_refuses_and_recovers(make_site) -> None:
    site = await make_site("postgres", pg_through_proxy=True)
    server = site.server("one")
    await server.start()
    messages = generate(COUNT, seed=3)
    tally = await run_scenario(
        site, [server], messages, mode="sync", fault=faults.POSTGRES_UNREACHABLE
    )
    assert tally.problems == []
    assert 503 in tally.statuses, tally.statuses  # refused while the vault was away
    assert tally.lost == tally.leaked == 0
    # It came back: the last messages were accepted again.
    assert {tally.outcomes[m.id].status for m in messages[-20:]} == {200}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_sync_load_across_a_sigkill_and_restart_loses_nothing_accepted(
    make_site, backend: str
) -> None:
    site = await make_site(backend)
    server = site.server("one")
    await server.start()
    tally = await run_scenario(
        site, [server], generate(COUNT, seed=4), mode="sync",
        fault=(faults.kill_and_restart, faults.nothing), fault_s=0.0,
    )  # fmt: skip
    assert tally.problems == []
    assert 0 in tally.statuses  # some senders saw the connection go
    assert server.starts == 2
    assert tally.lost == tally.leaked == tally.duplicates == 0
