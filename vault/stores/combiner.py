"""Call combining for the stores: concurrent calls folded into one statement.

One proxy worker runs many messages at once on one event loop. Each `tokenize` or `resolve`
call on its own costs a statement, a commit (tokenize) and a thread hop (SQLite) or a round
trip (PostgreSQL); with 32 calls in flight, latency is queueing behind those. A `Combiner`
owns one task that takes every call queued while the previous batch ran and hands them to
the store as ONE batch; each caller then gets its own slice of the answer through a future.

Failure is per batch: if the batch statement fails, every caller in it gets the error
(a fresh VaultUnavailableError each, never a shared instance). The task is owned by the
store: `close()` cancels and awaits it, and every queued or in-flight call fails cleanly.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog

from vault.errors import VaultUnavailableError
from vault.stores.base import NewRow, StoredValue

log = structlog.get_logger("vault")

_Call = TypeVar("_Call")
_Answer = TypeVar("_Answer")


@dataclass(slots=True)
class _Waiting(Generic[_Call, _Answer]):
    call: _Call
    future: asyncio.Future[_Answer]


class Combiner(Generic[_Call, _Answer]):
    """Runs queued calls in batches, one batch at a time, on a task it owns.

    `run(batch)` returns one answer per call, in order, or raises; `size(call)` is a call's
    weight (rows, tokens) and a batch stops before `max_size` (a single heavier call still
    runs, alone). `wait_timeout_s` bounds a caller's wait for its answer.
    """

    def __init__(
        self,
        run: Callable[[Sequence[_Call]], Awaitable[Sequence[_Answer]]],
        *,
        name: str,
        size: Callable[[_Call], int],
        max_size: int,
        wait_timeout_s: float,
    ) -> None:
        self._run = run
        self._name = name
        self._size = size
        self._max_size = max_size
        self._wait_timeout_s = wait_timeout_s
        self._pending: collections.deque[_Waiting[_Call, _Answer]] = collections.deque()
        self._in_flight: list[_Waiting[_Call, _Answer]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start the batch task (call from the event loop that will use the store)."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._loop(), name=f"vault-{self._name}")

    async def submit(self, call: _Call) -> _Answer:
        """Queue `call` for the next batch and wait for its answer.

        Raises VaultUnavailableError if the batch fails, the wait times out or the store
        is closed.
        """
        if self._closed or self._task is None or self._task.done():
            raise VaultUnavailableError(f"{self._name} closed")
        # The loop from the batch task and a plain timer, not asyncio.get_running_loop() and
        # asyncio.timeout(): each of those asks the kernel for the process id (a fork check),
        # three system calls per message (issue 14).
        loop = self._task.get_loop()
        waiting: _Waiting[_Call, _Answer] = _Waiting(call, loop.create_future())
        self._pending.append(waiting)
        self._wakeup.set()
        # A caller giving up (timeout, cancellation) ends only its own future, which the batch
        # task then skips or ignores: the batch others wait on goes on.
        timer = loop.call_later(
            self._wait_timeout_s, _fail, waiting, VaultUnavailableError(self._name)
        )
        try:
            return await waiting.future
        finally:
            timer.cancel()

    async def close(self) -> None:
        """Stop the task; queued and in-flight calls fail with VaultUnavailableError."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Re-raise if it is our own caller being cancelled, not just the task ending.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        self._fail_all()

    async def _loop(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._pending:
                    self._in_flight = self._take_batch()
                    if self._in_flight:
                        await self._settle(self._in_flight)
                    self._in_flight = []
        finally:
            # Cancelled by close() (or a bug): nobody may wait on a call never answered.
            self._fail_all()

    def _take_batch(self) -> list[_Waiting[_Call, _Answer]]:
        batch: list[_Waiting[_Call, _Answer]] = []
        total = 0
        while self._pending:
            size = self._size(self._pending[0].call)
            if batch and total + size > self._max_size:
                break
            waiting = self._pending.popleft()
            if not waiting.future.done():  # its caller gave up (timeout, cancellation)
                batch.append(waiting)
                total += size
        return batch

    async def _settle(self, batch: list[_Waiting[_Call, _Answer]]) -> None:
        try:
            answers = await self._run([w.call for w in batch])
            if len(answers) != len(batch):
                raise RuntimeError("combined batch answered the wrong number of calls")  # noqa: TRY301 - handled below like any bug
        except VaultUnavailableError:
            for waiting in batch:
                _fail(waiting, VaultUnavailableError(self._name))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must still answer every caller
            # Type only: a driver's message can quote parameters (ciphertexts, digests).
            log.error("store_batch_failed", combiner=self._name, error=type(exc).__name__)  # noqa: TRY400
            for waiting in batch:
                _fail(waiting, VaultUnavailableError(f"{self._name} failed"))
            return
        for waiting, answer in zip(batch, answers, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(answer)

    def _fail_all(self) -> None:
        for waiting in [*self._in_flight, *self._pending]:
            _fail(waiting, VaultUnavailableError(f"{self._name} closed"))
        self._in_flight = []
        self._pending.clear()


def _fail(waiting: _Waiting[_Call, _Answer], error: VaultUnavailableError) -> None:
    if not waiting.future.done():
        waiting.future.set_exception(error)


# The two combined calls, shared by both stores.


@dataclass(frozen=True, slots=True)
class TokenizeCall:
    """One `TokenStore.tokenize` call waiting to be combined."""

    tenant: str
    dek_id: str
    rows: Sequence[NewRow] = field(repr=False)
    now: int


@dataclass(frozen=True, slots=True)
class UniqueRow:
    """A row to upsert once per batch, with the call fields it needs."""

    tenant: str
    dek_id: str
    now: int
    row: NewRow


def unique_rows(batch: Sequence[TokenizeCall]) -> list[UniqueRow]:
    """Rows of the batch, one per (tenant, lookup): the first call's row wins.

    Two messages of one tenant with the same value then insert one row and get one token
    (PostgreSQL refuses to upsert one key twice in a statement anyway).
    """
    seen: dict[tuple[str, bytes], UniqueRow] = {}
    for call in batch:
        for row in call.rows:
            key = (call.tenant, row.lookup)
            if key not in seen:
                seen[key] = UniqueRow(call.tenant, call.dek_id, call.now, row)
    return list(seen.values())


def tokenize_answers(
    batch: Sequence[TokenizeCall], found: dict[tuple[str, bytes], str]
) -> list[dict[bytes, str] | None]:
    """Per call: lookup -> token, or None if any of its rows was refused (its key is gone)."""
    return [_tokenize_answer(call, found) for call in batch]


def _tokenize_answer(
    call: TokenizeCall, found: dict[tuple[str, bytes], str]
) -> dict[bytes, str] | None:
    answer: dict[bytes, str] = {}
    for row in call.rows:
        token = found.get((call.tenant, row.lookup))
        if token is None:
            return None
        answer[row.lookup] = token
    return answer


@dataclass(frozen=True, slots=True)
class ResolveCall:
    """One `TokenStore.resolve` call waiting to be combined."""

    tenant: str
    tokens: Sequence[str]
    now: int
    touch_before: int


@dataclass(frozen=True, slots=True)
class ResolveKey:
    """A (tenant, token) to look up once per batch, with the first caller's times."""

    tenant: str
    token: str
    now: int
    touch_before: int


def resolve_keys(batch: Sequence[ResolveCall]) -> list[ResolveKey]:
    """The batch's distinct (tenant, token) pairs: the tenant travels with every token."""
    seen: dict[tuple[str, str], ResolveKey] = {}
    for call in batch:
        for token in call.tokens:
            if (call.tenant, token) not in seen:
                seen[(call.tenant, token)] = ResolveKey(
                    call.tenant, token, call.now, call.touch_before
                )
    return list(seen.values())


def resolve_answers(
    batch: Sequence[ResolveCall], found: dict[tuple[str, str], StoredValue]
) -> list[list[StoredValue]]:
    """Per call: its rows, looked up by its own tenant only (the tenant wall)."""
    answers: list[list[StoredValue]] = []
    for call in batch:
        rows = (found.get((call.tenant, token)) for token in dict.fromkeys(call.tokens))
        answers.append([row for row in rows if row is not None])
    return answers
