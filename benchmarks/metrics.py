"""What counting costs per proxied message: the metric calls one message with a card makes
(pipeline time, finding, vault call, upstream call, request, two audit records), in one process
with in-process values against prometheus-client's multiprocess values (`--workers N`), and
what a scrape costs with N workers' files.

    python benchmarks/metrics.py            # ~20 s; prints JSON
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from redactor.runtime.metrics import (  # noqa: E402
    Metrics,
    start_multiprocess,
    stop_multiprocess,
)

MESSAGES = 20_000
ROUNDS = 5


async def _one_message(metrics: Metrics) -> None:
    metrics.redaction_took("chat", 0.0004)
    metrics.found("chat", "CREDIT_CARD", 1)
    async with metrics.vault_call("tokenize"):
        pass
    metrics.upstream_answered("ingress", 200, 0.002)
    metrics.request_done("chat", 200)
    metrics.audit_written(2, 700)


async def _per_message_us(metrics: Metrics) -> float:
    for _ in range(500):  # children created, caches warm
        await _one_message(metrics)
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(MESSAGES):
            await _one_message(metrics)
        rounds.append((time.perf_counter() - started) / MESSAGES * 1e6)
    return statistics.median(rounds)


def _worker_files(path: Path, worker: int) -> None:
    # A child process per "worker" writes its own files, as a forked worker would.
    code = (
        f"import asyncio, sys; sys.path.insert(0, {str(_ROOT)!r})\n"
        "from prometheus_client import values\n"
        "values.ValueClass = values.MultiProcessValue()\n"
        "from benchmarks.metrics import _one_message\n"
        "from redactor.runtime.metrics import Metrics\n"
        "from pathlib import Path\n"
        f"m = Metrics(multiprocess_dir=Path({str(path)!r}))\n"
        "async def go():\n"
        f"    for _ in range({100 + worker}): await _one_message(m)\n"
        "asyncio.run(go())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def main() -> None:
    results: dict[str, object] = {
        "python": platform.python_version(),
        "load_average": os.getloadavg()[0],
    }
    results["in_process_us_per_message"] = round(asyncio.run(_per_message_us(Metrics())), 2)
    path = start_multiprocess()
    try:
        results["multiprocess_us_per_message"] = round(
            asyncio.run(_per_message_us(Metrics(multiprocess_dir=path))), 2
        )
        for workers in (2, 4):
            for n in range(workers):
                _worker_files(path, n)
            metrics = Metrics(multiprocess_dir=path)
            scrapes = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                body = metrics.exposition()
                scrapes.append((time.perf_counter() - started) * 1e3)
            results[f"scrape_ms_{workers}_workers"] = round(statistics.median(scrapes), 2)
            results[f"scrape_bytes_{workers}_workers"] = len(body)
            for f in path.glob("*.db"):
                if not f.name.endswith(f"_{os.getpid()}.db"):
                    f.unlink()
    finally:
        stop_multiprocess(path)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
