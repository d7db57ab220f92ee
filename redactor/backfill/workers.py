"""The scan workers of `redactor redact --jobs N`, started before the command's own imports.

A worker is a fresh interpreter (spawn: it must not inherit the vault's threads or the event
loop) that imports detection (presidio, spaCy: ~2 CPU s) before it can scan. Started first
thing, the workers pay that while the main process pays its own, instead of one after the
other when the first batch is ready (issue 24: that wait was a tenth of a 2-job run at 100 MB).
This module imports only the standard library, so the command line can start the pool before
it imports the rest.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing

__all__ = ["start_scan_pool"]


def _warm() -> None:
    import redactor.backfill.scan  # noqa: F401 - the import is the point


def start_scan_pool(jobs: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of `jobs` spawned worker processes, each already importing the scanner."""
    pool = concurrent.futures.ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context("spawn")
    )
    # A spawn pool starts a process per task submitted while none is idle: one task each.
    for _ in range(jobs):
        pool.submit(_warm)
    return pool
