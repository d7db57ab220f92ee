"""The scan worker: a process that parses and scans large bodies off the event loop."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import structlog

from redactor.detection import DetectionOptions
from redactor.errors import RedactorError
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


class ScanPool:
    """One worker process for large bodies, replaced when it dies.

    A process, not a thread: a thread shares the GIL, and one C call on a large body
    (`json.loads`, a regex over 9 MB) holds it for 100 ms and more, stalling the loop
    (benchmarks/hostile.py). `redactor serve` forks it before its first thread
    (`forked_now`); otherwise, and to replace a dead one, it is spawned: by then the server
    holds threads and sockets.
    """

    def __init__(self, executor: ProcessPoolExecutor | None = None) -> None:
        self._executor = executor if executor is not None else self._new()
        # The process's metrics, once they exist (the pool is forked before them).
        self.metrics: Metrics | None = None

    @classmethod
    def forked_now(cls, warm: Iterable[DetectionOptions]) -> ScanPool:
        """Fork the scan worker now and build its detectors: call this before the process
        starts any thread (no event loop, no vault yet), so forking is safe. The worker then
        shares this process's loaded code copy-on-write instead of loading its own (issue
        14: a spawned scan worker cost ~90 MiB per server process). A worker that dies is
        replaced by a spawned one."""
        executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
        )
        for options in warm:
            executor.submit(warm_worker, options).result()
        return cls(executor)

    @staticmethod
    def _new() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
        )

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` in the worker. Raises what `fn` raises, or ScanUnavailableError."""
        executor = self._executor
        try:
            if self.metrics is None:
                return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
            async with self.metrics.scanning():
                return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except BrokenProcessPool:
            log.error("scan_worker_died")  # noqa: TRY400 -- the traceback is the pool's, not ours
            if self._executor is executor:
                self._executor = self._new()
                executor.shutdown(wait=False, cancel_futures=True)
            raise ScanUnavailableError() from None

    async def close(self) -> None:
        """Stop the worker (a scan still running finishes first, off the loop)."""
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
