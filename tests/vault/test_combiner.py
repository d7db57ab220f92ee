"""The generic call combiner on its own: batching, per-caller answers, failure and close.

`run` here is a plain function standing for a store statement; the stores' use of the
combiner is tested against real SQLite and PostgreSQL in test_combining.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from structlog.testing import capture_logs

from vault.errors import VaultUnavailableError
from vault.stores.combiner import Combiner


class Doubler:
    """A batch runner that records its batches and can be told to fail or to block."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail_with: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def __call__(self, batch: Sequence[int]) -> list[int]:
        self.batches.append(list(batch))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [n * 2 for n in batch]


@pytest.fixture
def runner() -> Doubler:
    return Doubler()


@pytest.fixture
async def combiner(runner: Doubler) -> AsyncIterator[Combiner[int, int]]:
    combiner: Combiner[int, int] = Combiner(
        runner, name="test", size=lambda n: 1 + n // 100, max_size=10, wait_timeout_s=5.0
    )
    combiner.start()
    try:
        yield combiner
    finally:
        await combiner.close()


async def test_calls_queued_together_run_as_one_batch_and_each_gets_its_answer(
    combiner: Combiner[int, int], runner: Doubler
) -> None:
    answers = await asyncio.gather(*(combiner.submit(n) for n in range(8)))
    assert answers == [n * 2 for n in range(8)]
    assert runner.batches == [list(range(8))]


async def test_calls_arriving_during_a_batch_make_the_next_batch(
    combiner: Combiner[int, int], runner: Doubler
) -> None:
    runner.gate = asyncio.Event()
    first = asyncio.create_task(combiner.submit(1))
    await runner.started.wait()
    later = [asyncio.create_task(combiner.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    runner.gate.set()
    assert await first == 2
    assert [await task for task in later] == [4, 6, 8]
    assert runner.batches == [[1], [2, 3, 4]]


async def test_batches_stop_at_max_size_but_a_heavier_call_still_runs_alone(
    combiner: Combiner[int, int], runner: Doubler
) -> None:
    # Sizes: 2000 weighs 21 (over the limit of 10), the small ones 1 each.
    answers = await asyncio.gather(*(combiner.submit(n) for n in [*range(12), 2000, 5]))
    assert answers == [n * 2 for n in [*range(12), 2000, 5]]
    assert runner.batches == [list(range(10)), [10, 11], [2000], [5]]


async def test_failed_batch_fails_every_caller_in_it_and_the_next_batch_works(
    combiner: Combiner[int, int], runner: Doubler
) -> None:
    runner.fail_with = VaultUnavailableError("store down")
    results = await asyncio.gather(*(combiner.submit(n) for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, VaultUnavailableError) for r in results)
    # One instance per caller: a shared exception would mix the callers' tracebacks.
    assert len({id(r) for r in results}) == 5
    runner.fail_with = None
    assert await combiner.submit(7) == 14


async def test_unexpected_error_reaches_callers_as_unavailable_and_is_logged_without_text(
    combiner: Combiner[int, int], runner: Doubler
) -> None:
    runner.fail_with = ValueError("driver text quoting 4111111111111111")
    with capture_logs() as logs:
        results = await asyncio.gather(
            *(combiner.submit(n) for n in range(3)), return_exceptions=True
        )
    assert all(isinstance(r, VaultUnavailableError) for r in results)
    assert [e["event"] for e in logs] == ["store_batch_failed"]
    assert "4111111111111111" not in repr(logs) + repr(results)


async def test_caller_that_gives_up_is_skipped_and_others_are_answered(
    combiner: Combiner[int, int], runner: Doubler
) -> None:
    runner.gate = asyncio.Event()
    blocker = asyncio.create_task(combiner.submit(0))
    await runner.started.wait()
    quitter = asyncio.create_task(combiner.submit(1))
    stayer = asyncio.create_task(combiner.submit(2))
    await asyncio.sleep(0)
    quitter.cancel()
    runner.gate.set()
    assert (await blocker, await stayer) == (0, 4)
    with pytest.raises(asyncio.CancelledError):
        await quitter
    assert runner.batches == [[0], [2]]


async def test_wait_is_bounded_by_the_timeout(runner: Doubler) -> None:
    runner.gate = asyncio.Event()  # never set: the store hangs
    combiner: Combiner[int, int] = Combiner(
        runner, name="test", size=lambda _n: 1, max_size=10, wait_timeout_s=0.05
    )
    combiner.start()
    try:
        with pytest.raises(VaultUnavailableError):
            await combiner.submit(1)
    finally:
        await combiner.close()


async def test_close_fails_in_flight_and_queued_calls_and_refuses_new_ones(
    runner: Doubler,
) -> None:
    runner.gate = asyncio.Event()  # the first batch never finishes on its own
    combiner: Combiner[int, int] = Combiner(
        runner, name="test", size=lambda _n: 1, max_size=10, wait_timeout_s=5.0
    )
    combiner.start()
    in_flight = asyncio.create_task(combiner.submit(1))
    await runner.started.wait()
    queued = [asyncio.create_task(combiner.submit(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    await combiner.close()
    results = await asyncio.gather(in_flight, *queued, return_exceptions=True)
    assert all(isinstance(r, VaultUnavailableError) for r in results)
    with pytest.raises(VaultUnavailableError):
        await combiner.submit(4)
    await combiner.close()  # idempotent


async def test_submit_before_start_is_refused(runner: Doubler) -> None:
    combiner: Combiner[int, int] = Combiner(
        runner, name="test", size=lambda _n: 1, max_size=10, wait_timeout_s=5.0
    )
    with pytest.raises(VaultUnavailableError):
        await combiner.submit(1)
