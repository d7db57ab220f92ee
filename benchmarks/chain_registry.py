"""What the audit chain registry costs: the sink's write rate with and without it, one
registration (a checkpoint) on SQLite and PostgreSQL, and holding a trail against a large
registry in `verify`.

    python benchmarks/chain_registry.py            # ~30 s; writes results/chain_registry.json
    python benchmarks/chain_registry.py --quick    # a smoke run

The registry is written at chain start, at each checkpoint and at close, never per record:
(a) shows the write rate is the same with it (a checkpoint every `--checkpoint-interval-s`,
default 0.1 s: 600 times the 60 s default), (b) what one checkpoint's transaction costs,
(c) that comparing with the registry is small beside verifying the files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

import asyncpg  # noqa: E402

from redactor.audit import AuditSink, SystemEvent  # noqa: E402
from redactor.audit.registration import StoreChainRegistry  # noqa: E402
from redactor.audit.registry import check_completeness  # noqa: E402
from redactor.audit.verify import expand_paths, verify_paths  # noqa: E402
from vault.chains import (  # noqa: E402
    ChainCheckpoint,
    ChainGenesis,
    ChainUpdate,
    RegisteredChain,
)
from vault.config import VaultConfig  # noqa: E402
from vault.startup import open_store  # noqa: E402

RESULTS = _ROOT / "benchmarks" / "results" / "chain_registry.json"
KEY = bytes(range(32))
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
        "platform": platform.platform(),
    }


async def _store(kind: str, root: Path) -> object:
    if kind == "sqlite":
        url = f"sqlite:///{root / 'vault.db'}"
    else:
        url = f"{PG_DSN}?schema=bench_chains_{secrets.token_hex(4)}"
    config = VaultConfig.from_environ({}, data_dir=root, vault_url=url, create=True, dev=True)
    store = await open_store(config, create=True)
    await store.migrate()
    return store


async def _drop(store: object, kind: str) -> None:
    schema = getattr(store, "_schema", None)
    await store.close()  # type: ignore[attr-defined]
    if kind == "postgres" and schema:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def _sink_rate(path: Path, records: int, interval_s: float, store: object | None) -> float:
    # Checkpoints come from the sink's own ticker, as in `serve`: the writers never wait for
    # the registry's transaction.
    sink = AuditSink(
        path,
        KEY,
        checkpoint_interval_s=interval_s,
        fsync="never",
        registry=None if store is None else StoreChainRegistry(store),  # type: ignore[arg-type]
    )
    await sink.open()
    batch = [SystemEvent("bench", "2026-12-07T10:00:00.000+00:00", {"n": n}) for n in range(32)]
    started = time.perf_counter()
    written = 0
    while written < records:
        await sink.write_many(batch)
        written += len(batch)
    elapsed = time.perf_counter() - started
    await sink.close()
    return written / elapsed


async def _registration(kind: str, root: Path, count: int) -> dict[str, float]:
    store = await _store(kind, root)
    try:
        registry = StoreChainRegistry(store)  # type: ignore[arg-type]
        genesis = ChainGenesis("bench", "serve", None, "h", 1, "/x", "k", "t")
        await registry.record(ChainUpdate(genesis=genesis))
        times = []
        for seq in range(count):
            update = ChainUpdate(checkpoint=ChainCheckpoint("bench", seq, "ab" * 32, "t", False))
            started = time.perf_counter()
            await registry.record(update)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        return {
            "median_ms": round(statistics.median(times), 3),
            "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        }
    finally:
        await _drop(store, kind)


def _compare(trail: Path, chains: int) -> dict[str, float]:
    started = time.perf_counter()
    result = verify_paths(KEY, [trail], jobs=1)
    verify_s = time.perf_counter() - started
    registered = [
        RegisteredChain(
            ChainGenesis(f"c{n:06d}", "cli", "vault purge", "h", n, "/x/audit-cli.jsonl", "k", "t"),
            2,
            "ab" * 32,
            "t",
            True,
        )
        for n in range(chains)
    ]
    logs, _ = expand_paths([trail])
    started = time.perf_counter()
    completeness = check_completeness(result, registered, logs, whole_directories=True)
    compare_s = time.perf_counter() - started
    if len(completeness.gaps) != chains:  # none of them is in this trail
        raise SystemExit("the comparison did not find every registered chain missing")
    return {
        "records": sum(r.records for r in result.chains.values()),
        "verify_s": round(verify_s, 3),
        "registered_chains": chains,
        "compare_s": round(compare_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--checkpoint-interval-s", type=float, default=0.1, metavar="S")
    args = parser.parse_args()
    records = 20_000 if args.quick else 200_000
    rounds = 1 if args.quick else 3
    out: dict[str, object] = {"machine": _machine(), "records": records}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain: list[float] = []
        registered: list[float] = []
        for r in range(rounds):  # interleaved: load from elsewhere hits both alike
            plain.append(
                asyncio.run(
                    _sink_rate(root / f"p{r}.jsonl", records, args.checkpoint_interval_s, None)
                )
            )

            async def with_registry(r: int = r) -> float:
                store = await _store("sqlite", root / f"r{r}")
                try:
                    return await _sink_rate(
                        root / f"r{r}.jsonl", records, args.checkpoint_interval_s, store
                    )
                finally:
                    await _drop(store, "sqlite")

            (root / f"r{r}").mkdir()
            registered.append(asyncio.run(with_registry()))
        out["sink_records_per_s"] = {
            "without_registry": round(max(plain)),
            "with_registry_sqlite": round(max(registered)),
            "ratio": round(max(registered) / max(plain), 3),
            "checkpoint_interval_s": args.checkpoint_interval_s,
            "spread": round(1 - min(plain + registered) / max(plain + registered), 3),
        }
        count = 50 if args.quick else 300
        for kind in ("sqlite", "postgres"):
            (root / kind).mkdir()
            out[f"registration_{kind}"] = asyncio.run(_registration(kind, root / kind, count))
        out["compare"] = _compare(root / "p0.jsonl", 1000 if args.quick else 10_000)
    print(json.dumps(out, indent=2))
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
