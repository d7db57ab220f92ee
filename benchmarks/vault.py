"""Vault speed: tokenize and resolve throughput and latency on SQLite and PostgreSQL.

Scenarios, each run for a fixed wall-clock time on a fresh store:
  tokenize  messages of 1, 2, 5 and 50 new values (half cards, half SSNs), one
            `tokenize_many` per message, at concurrency 1 and 32 (coroutines on one loop);
  resolve   one token per `resolve_many` call, over tokens made beforehand, at 1 and 32.

Reported: messages/s and values/s (tokenize), calls/s (resolve), p50/p99 latency per call.
One process, one event loop: the figure a single proxy worker gets. SQLite runs with its
default `synchronous=FULL` (a token is on disk before the message leaves with it).

    python benchmarks/vault.py                      # ~2.5 minutes; writes results/vault.json
    python benchmarks/vault.py --seconds 1          # shorter
    python benchmarks/vault.py --backends sqlite --concurrency 32 --batches 2
    python benchmarks/vault.py --profile sqlite     # cProfile of tokenize (2 values, c=32)

Values come from a counter with a random per-run prefix (no Luhn check is needed by the
vault). Output holds figures only: never a value.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import os
import platform
import pstats
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
# This script shares its name with the `vault` package: when run as a file, its own directory
# is sys.path[0] and `import vault` would import the script itself.
if sys.path and Path(sys.path[0] or ".").resolve() == _ROOT / "benchmarks":
    sys.path[0] = str(_ROOT)

import asyncpg  # noqa: E402

from redactor.ops.logconfig import configure_logging  # noqa: E402
from vault.config import VaultConfig  # noqa: E402
from vault.keyring import generate_key_material, render_key_material  # noqa: E402
from vault.service import Resolved  # noqa: E402
from vault.startup import open_vault  # noqa: E402

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS = _ROOT / "benchmarks" / "results" / "vault.json"
TARGETS = {
    "sqlite_msgs_per_s_2_values_c32": 5000,
    "postgres_msgs_per_s_2_values_c32": 3000,
    "resolve_p99_ms": 5.0,
}


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    scenario: str
    values_per_message: int
    concurrency: int
    seconds: float
    calls: int
    calls_per_s: float
    values_per_s: float
    p50_ms: float
    p99_ms: float


class Values:
    """Fresh card numbers and SSNs from a counter; never printed."""

    def __init__(self) -> None:
        self._prefix = secrets.randbelow(10**5)
        self._n = 0

    def message(self, size: int) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        for i in range(size):
            self._n += 1
            if i % 2 == 0:
                items.append(("card", f"4{self._prefix:05d}{self._n:010d}"))
            else:
                items.append(("ssn", f"{self._n % 10**9:09d}"))
        return items


async def _timed_run(
    call: Callable[[], Awaitable[object]], concurrency: int, seconds: float
) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return len(latencies), time.perf_counter() - started, latencies


def _result(
    backend: str, scenario: str, size: int, concurrency: int, run: tuple[int, float, list[float]]
) -> Result:
    calls, elapsed, latencies = run
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(
        backend,
        scenario,
        size,
        concurrency,
        round(elapsed, 2),
        calls,
        round(calls / elapsed, 1),
        round(calls * size / elapsed, 1),
        round(quantiles[49] * 1000, 3),
        round(quantiles[98] * 1000, 3),
    )


async def bench_backend(
    backend: str, config: VaultConfig, batches: list[int], concurrency: list[int], seconds: float
) -> list[Result]:
    results: list[Result] = []
    values = Values()
    async with await open_vault(config) as vault:
        await vault.tokenize_many("warmup", values.message(2))
        for size in batches:
            for conc in concurrency:

                async def tokenize(size: int = size) -> object:
                    return await vault.tokenize_many("bench", values.message(size))

                result = _result(
                    backend, "tokenize", size, conc, await _timed_run(tokenize, conc, seconds)
                )
                _print(result)
                results.append(result)

        tokens = [t.text for t in await vault.tokenize_many("bench", values.message(2000))]
        await vault.resolve_many("bench", tokens)  # first resolve records last-resolved times
        for conc in concurrency:
            picks = itertools.count()

            async def resolve(picks: Iterator[int] = picks) -> object:
                token = tokens[next(picks) % len(tokens)]
                found = (await vault.resolve_many("bench", [token]))[token]
                if not isinstance(found, Resolved):
                    raise TypeError("benchmark token did not resolve")
                return found

            result = _result(backend, "resolve", 1, conc, await _timed_run(resolve, conc, seconds))
            _print(result)
            results.append(result)
    return results


def _print(r: Result) -> None:
    rate = (
        f"{r.calls_per_s:>9.0f} msg/s {r.values_per_s:>9.0f} val/s"
        if r.scenario == "tokenize"
        else f"{r.calls_per_s:>9.0f} call/s{'':>16}"
    )
    print(
        f"{r.backend:<8} {r.scenario:<8} values={r.values_per_message:<3} c={r.concurrency:<3} "
        f"{rate}  p50={r.p50_ms:7.3f} ms  p99={r.p99_ms:7.3f} ms",
        flush=True,
    )


async def _with_backend(
    backend: str, body: Callable[[VaultConfig], Awaitable[list[Result]]]
) -> list[Result]:
    keys = render_key_material(generate_key_material(secrets.token_bytes))
    with tempfile.TemporaryDirectory(prefix="vault-bench-") as tmp:
        if backend == "sqlite":
            config = VaultConfig.from_environ(
                {"REDACTOR_KEYS": keys},
                data_dir=tmp,
                vault_url=f"sqlite:///{tmp}/vault.db",
                create=True,
            )
            return await body(config)
        schema = "vault_bench_" + secrets.token_hex(4)
        config = VaultConfig.from_environ(
            {"REDACTOR_KEYS": keys},
            data_dir=tmp,
            vault_url=f"{PG_DSN}?schema={schema}",
            pool_min_size=4,
            pool_max_size=16,
            create=True,
        )
        try:
            return await body(config)
        finally:
            conn = await asyncpg.connect(PG_DSN)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()


def _machine(load_at_start: tuple[float, float, float]) -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_at_start": [round(x, 2) for x in load_at_start],
        "note": "shared machine: other agents run tests concurrently, figures are noisy",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--batches", default="1,2,5,50", help="values per message")
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--seconds", type=float, default=5.0, help="wall time per scenario")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--profile", choices=["sqlite", "postgres"], help="cProfile instead")
    args = parser.parse_args(argv)
    # As in production (info and up); the benchmark itself wants warnings only on stderr.
    configure_logging(level="warning")
    batches = [int(b) for b in args.batches.split(",")]
    concurrency = [int(c) for c in args.concurrency.split(",")]

    if args.profile:
        profiler = cProfile.Profile()

        async def profiled(config: VaultConfig) -> list[Result]:
            profiler.enable()
            try:
                return await bench_backend(args.profile, config, [2], [32], args.seconds)
            finally:
                profiler.disable()

        asyncio.run(_with_backend(args.profile, profiled))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return 0

    load_at_start = os.getloadavg()
    results: list[Result] = []
    for backend in args.backends.split(","):
        results += asyncio.run(
            _with_backend(
                backend,
                lambda c, b=backend: bench_backend(b, c, batches, concurrency, args.seconds),
            )
        )
    doc = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(load_at_start),
        "settings": {"seconds_per_scenario": args.seconds, "sqlite_synchronous": "FULL"},
        "targets": TARGETS,
        "results": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
