"""The scan workers: processes that parse and scan large bodies off the event loop, in two
lanes (medium and large bodies), each step under a time budget."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import structlog

from redactor.detection import DetectionOptions
from redactor.errors import RedactorError
from redactor.ingress.config import DEFAULT_SCAN_LANE_BYTES, DEFAULT_SCAN_TIMEOUT_S
from redactor.redaction.scanning import warm_worker
from redactor.runtime.metrics import Metrics

log = structlog.get_logger()

# How often a scan worker looks whether the server that started it is still there.
_PARENT_CHECK_S = 0.5


def exit_with_parent(parent_pid: int) -> None:
    """Initializer of a scan worker: end it when the server that started it is gone.

    A SIGKILLed server never shuts its pool down; its worker, re-parented to PID 1, waited on
    its queue forever (about 100 MB each, and a supervisor restarting the server piled them
    up). A daemon thread polls the parent: cheap, and it needs no Linux-only prctl."""
    if os.getppid() != parent_pid:
        os._exit(0)  # the server died while this worker was starting

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="scan-parent-watch", daemon=True).start()


class ScanUnavailableError(RedactorError):
    """The scan worker died (killed, out of memory): this message fails closed, the next
    gets a new worker."""

    status = 503
    code = "scan_unavailable"
    message = "scan worker unavailable"


class ScanTimeoutError(RedactorError):
    """A scan step ran past the time budget: its worker was replaced and nothing was
    forwarded. The sender may retry (Retry-After); a body that keeps timing out is refused
    every time, and costs one budget each time."""

    status = 503
    code = "scan_timeout"
    message = "scanning the body took longer than allowed"
    retry_after_s = 5


def _new_executor(context: str) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context(context),
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )


def _warm_all(options: tuple[DetectionOptions, ...]) -> None:
    for each in options:
        warm_worker(each)


class _Lane:
    """One worker process and the steps waiting for it, one at a time."""

    __slots__ = ("executor", "lock", "name", "started", "warming")

    def __init__(self, name: str, executor: ProcessPoolExecutor, *, started: bool) -> None:
        self.name = name
        self.executor = executor
        # Whether the worker process is up with its detectors built: a start (an interpreter,
        # presidio, the detectors: seconds on a loaded machine) is never a body's budget.
        self.started = started
        # One step at a time: the time budget runs from when a step starts in the worker,
        # never while it waits behind another (whose budget bounds that wait).
        self.lock = asyncio.Lock()
        # A replacement worker's start-up (interpreter, detectors), paid outside the budget.
        self.warming: asyncio.Future[Any] | None = None

    def pids(self) -> list[int]:
        return list(getattr(self.executor, "_processes", None) or {})

    def kill(self) -> None:
        """End the worker now (SIGKILL): a scan past its budget may be stuck in one C call."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class ScanPool:
    """Two worker processes for large bodies, one per lane, each replaced when it dies or
    runs past the time budget.

    Processes, not threads: a thread shares the GIL, and one C call on a large body
    (`json.loads`, a regex over 9 MB) holds it for 100 ms and more, stalling the loop
    (benchmarks/hostile.py). `redactor serve` forks them before its first thread
    (`forked_now`); otherwise, and to replace one, they are spawned: by then the server
    holds threads and sockets. Bodies up to `lane_bytes` use the medium lane, larger ones
    the large lane, so a webhook never queues behind a hostile body.
    """

    def __init__(
        self,
        executors: tuple[ProcessPoolExecutor, ProcessPoolExecutor] | None = None,
        *,
        timeout_s: float = DEFAULT_SCAN_TIMEOUT_S,
        lane_bytes: int = DEFAULT_SCAN_LANE_BYTES,
        warm: Iterable[DetectionOptions] = (),
    ) -> None:
        forked = executors is not None
        medium, large = executors if executors is not None else (None, None)
        self._medium = _Lane("medium", medium or _new_executor("spawn"), started=forked)
        self._large = _Lane("large", large or _new_executor("spawn"), started=forked)
        self.timeout_s = timeout_s
        self.lane_bytes = lane_bytes
        self._warm = tuple(warm)
        # The process's metrics, once they exist (the pool is forked before them).
        self.metrics: Metrics | None = None

    @classmethod
    def forked_now(
        cls,
        warm: Iterable[DetectionOptions],
        *,
        timeout_s: float = DEFAULT_SCAN_TIMEOUT_S,
        lane_bytes: int = DEFAULT_SCAN_LANE_BYTES,
    ) -> ScanPool:
        """Fork the scan workers now and build their detectors: call this before the process
        starts any thread (no event loop, no vault yet), so forking is safe. The workers then
        share this process's loaded code copy-on-write instead of loading their own (issue
        14: a spawned scan worker cost ~90 MiB per server process). A worker that dies is
        replaced by a spawned one."""
        options = tuple(warm)
        executors = (_new_executor("fork"), _new_executor("fork"))
        for executor in executors:
            executor.submit(_warm_all, options).result()
        return cls(executors, timeout_s=timeout_s, lane_bytes=lane_bytes, warm=options)

    async def warm(self, options: Iterable[DetectionOptions]) -> None:
        """Start both workers and build their detectors now, not on the first large body;
        a replacement worker builds the same before its first step."""
        self._warm = tuple(dict.fromkeys((*self._warm, *options)))

        async def start(lane: _Lane) -> None:
            async with lane.lock:
                lane.started = False
                await self._warmed(lane)

        await asyncio.gather(start(self._medium), start(self._large))

    def worker_pids(self) -> dict[str, list[int]]:
        """The worker processes by lane (for tests and operators)."""
        return {lane.name: lane.pids() for lane in (self._medium, self._large)}

    def lane_for(self, size: int) -> str:
        """The lane a body of `size` bytes goes to."""
        return self._lane(size).name

    def _lane(self, size: int) -> _Lane:
        return self._large if size > self.lane_bytes else self._medium

    async def run(self, fn: Callable[..., Any], *args: Any, size: int = 0) -> Any:
        """`fn(*args)` in the lane's worker, for a body of `size` bytes. Raises what `fn`
        raises, ScanTimeoutError (past the budget) or ScanUnavailableError."""
        lane = self._lane(size)
        async with lane.lock:
            await self._warmed(lane)
            if self.metrics is None:
                return await self._step(lane, fn, args)
            async with self.metrics.scanning():
                return await self._step(lane, fn, args)

    async def _warmed(self, lane: _Lane) -> None:
        """Wait for the lane's worker to be up, outside the time budget."""
        warming, lane.warming = lane.warming, None
        if lane.started and warming is None:
            return
        if warming is None:
            warming = asyncio.get_running_loop().run_in_executor(
                lane.executor, _warm_all, self._warm
            )
        try:
            await warming
        except BrokenProcessPool:
            self._replace(lane)
            raise ScanUnavailableError() from None
        lane.started = True

    async def _step(self, lane: _Lane, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        executor = lane.executor
        try:
            async with asyncio.timeout(self.timeout_s):
                return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except TimeoutError:
            log.error("scan_timeout", lane=lane.name, budget_s=self.timeout_s)  # noqa: TRY400
            lane.kill()
            self._replace(lane)
            raise ScanTimeoutError() from None
        except BrokenProcessPool:
            log.error("scan_worker_died", lane=lane.name)  # noqa: TRY400 -- the pool's traceback
            self._replace(lane)
            raise ScanUnavailableError() from None

    def _replace(self, lane: _Lane) -> None:
        """A new worker for the lane, started (and warmed) now, in the background."""
        old = lane.executor
        lane.executor = _new_executor("spawn")
        lane.started = False
        old.shutdown(wait=False, cancel_futures=True)
        lane.warming = asyncio.get_running_loop().run_in_executor(
            lane.executor, _warm_all, self._warm
        )

    async def close(self) -> None:
        """Stop the workers (a scan still running finishes first, off the loop)."""
        for lane in (self._medium, self._large):
            if lane.warming is not None:
                lane.warming.cancel()
            await asyncio.to_thread(lane.executor.shutdown, wait=True, cancel_futures=True)
