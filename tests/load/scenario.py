"""One load run with a fault in its middle: the shared timeline of the suites and the benchmark.

Three phases, each a bounded load at concurrency 64: a quarter of the messages before the
fault; half of them paced over the fault's span, with the fault injected once they flow and
healed after `fault_s`; the last quarter after it is healed. Then the run waits (bounded) for
the outbox to drain, scrapes /metrics, stops the servers and tallies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from tests.load.checks import OutboxRow, Tally, database_bytes, outbox_rows, tally
from tests.load.driver import Load, Outcome
from tests.load.harness import Server, Site
from tests.load.messages import Message

Fault = Callable[["Run"], Awaitable[None]]
Heal = Callable[["Run"], Awaitable[None]]
# Time between the start of the paced phase and the fault: requests are in flight by then.
LEAD_S = 0.3
# The longest a fault stays in, whatever the load's progress.
MAX_FAULT_S = 20.0


@dataclass
class Run:
    """What a fault may act on: the site, its servers and the outcomes so far."""

    site: Site
    servers: Sequence[Server]
    mode: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    # Queued: the outbox as it stood at the height of the fault (checked for values).
    outbox: list[OutboxRow] = field(default_factory=list)


async def push(
    servers: Sequence[Server], messages: Sequence[Message], rate: float | None = None
) -> dict[str, Outcome]:
    """One bounded load over `servers` (round robin); the outcome of every message."""
    return await Load(messages, [s.url for s in servers], rate=rate).run()


async def run_scenario(
    site: Site,
    servers: Sequence[Server],
    messages: Sequence[Message],
    *,
    mode: str,
    fault: tuple[Fault, Heal] | None = None,
    fault_s: float = 1.5,
    drain_s: float = 30.0,
) -> Tally:
    """Push `messages` through `servers`, with `fault` in the middle; the tally afterwards."""
    run = Run(site, servers, mode)
    if fault is None:
        run.outcomes.update(await push(servers, messages))
    else:
        inject, heal = fault
        first, last = len(messages) // 4, len(messages) - len(messages) // 4
        run.outcomes.update(await push(servers, messages[:first]))
        paced = Load(
            messages[first:last], [s.url for s in servers], rate=(last - first) / (LEAD_S + fault_s)
        )
        during = asyncio.create_task(paced.run())
        try:
            await asyncio.sleep(LEAD_S)
            await inject(run)
            # At least `fault_s`, and until half the paced messages were answered: on a busy
            # machine the fault still meets the load, not only its tail.
            await asyncio.sleep(fault_s)
            async with asyncio.timeout(MAX_FAULT_S):
                while len(paced.outcomes) < (last - first) // 2:  # noqa: ASYNC110 - polled
                    await asyncio.sleep(0.05)
            if mode == "queued":
                run.outbox = await outbox_rows(site)
            await heal(run)
            run.outcomes.update(await during)
        finally:
            if not during.done():
                during.cancel()
        run.outcomes.update(await push(servers, messages[last:]))
    if mode == "queued":
        await wait_drained(site, run.outcomes, timeout_s=drain_s)
    live = [s for s in site.servers if s.proc is not None and s.proc.returncode is None]
    metrics = [(await s.get("/metrics"))[1] for s in live]
    # SQLite's WAL as the running servers left it (a clean stop checkpoints and removes it).
    running = {f"{k} while serving": v for k, v in (await database_bytes(site)).items()}
    for server in live:
        await server.stop()
    return await tally(
        site, messages, run.outcomes, mode=mode, metrics=metrics, outbox=run.outbox, blobs=running
    )


async def wait_drained(site: Site, outcomes: dict[str, Outcome], timeout_s: float) -> None:
    """Until every accepted message was answered 2xx by the upstream and the outbox holds
    nothing (a message queued just before its sender lost the connection is delivered too),
    at most `timeout_s`."""
    accepted = {m for m, o in outcomes.items() if o.status == 202}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        delivered = {r.message_id for r in site.upstream.delivered()}
        if accepted <= delivered and not await outbox_rows(site):
            return
        await asyncio.sleep(0.2)
