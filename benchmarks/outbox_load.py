"""Queued delivery under load and faults, at benchmark size (issue 23).

Real `redactor serve` processes on 127.0.0.1 (fresh data directory, key file and vault per
run; PostgreSQL in a schema of its own, dropped afterwards), the stand-in upstream and the
load driver of `tests/load/`, messages in the vendor payload shapes with generated card
numbers and SSNs. Three parts:

1. Cost: the same messages through a fresh server in sync and in queued mode, closed loop at
   concurrency 64; the server process's CPU time (/proc: user + system, its scan workers
   included) from after a warm-up to the end (queued: until the outbox has drained, so the
   deliveries are counted). Figure: queued CPU per message / sync CPU per message (target
   <= 1.3). The PostgreSQL server's own CPU is not in it.
2. Latency: queued with a healthy upstream, open loop at a rate the server sustains: from the
   sender's request to the upstream's receipt of the delivery (p50/p99), and the sender's
   wait for its 202; sync at the same rate for reference.
3. Faults: each fault in the middle of a load (as the suites do, larger): the upstream
   refuses, hangs, answers 500, 429 + Retry-After, or cuts its answers; PostgreSQL cut by the
   TCP fault proxy; SIGKILL and restart; one of two replicas killed (in queued mode while it
   holds leases). Per run and in total: messages pushed, faults injected, values leaked,
   accepted messages lost, duplicates the upstream took before and after deduplication by
   Idempotency-Key. Every run is also checked as the tests check it (tokens, vault, audit
   chains, logs, /metrics, database bytes, outbox).

    python benchmarks/outbox_load.py                      # ~20 minutes on 2 busy cores
    python benchmarks/outbox_load.py --quick              # ~4 minutes, small counts
    python benchmarks/outbox_load.py --parts cost --messages 3000 --backends sqlite

Writes benchmarks/results/outbox_load.json (or --out). Prints figures only, never a value.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
_HERE = _ROOT / "benchmarks"
# Run as `python benchmarks/outbox_load.py`, benchmarks/ is first on sys.path and its
# vault.py would shadow the vault package: the repository root instead.
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from tests.load import faults  # noqa: E402
from tests.load.checks import Tally  # noqa: E402
from tests.load.faultproxy import FaultProxy  # noqa: E402
from tests.load.harness import PG_PORT, Server, Site  # noqa: E402
from tests.load.messages import Message, generate  # noqa: E402
from tests.load.scenario import Run, push, run_scenario, wait_drained  # noqa: E402
from tests.load.standin import StandInUpstream  # noqa: E402

RESULTS = _ROOT / "benchmarks" / "results" / "outbox_load.json"
TARGET_CPU_RATIO = 1.3
QUEUED = {
    "delivery": "queued",
    "outbox": {"backoff_base_s": 0.2, "backoff_cap_s": 1.0, "max_attempts": 1000},
}
FAST_UPSTREAM = {"upstream_timeout_s": 1}
WARMUP = 50
LEASE_DRAIN_S = 90.0
FAULTS = ("refuse", "hang", "error", "throttle", "cut", "postgres", "sigkill", "replica")


@dataclass(frozen=True)
class Config:
    messages: int = 2000  # cost part, per mode and backend
    latency_messages: int = 600
    rate: float = 20.0  # latency part, messages per second: well below what one core takes
    fault_messages: int = 600  # per fault run
    backends: tuple[str, ...] = ("sqlite", "postgres")
    fault_backend: str = "postgres"
    faults: tuple[str, ...] = FAULTS
    modes: tuple[str, ...] = ("sync", "queued")
    parts: tuple[str, ...] = ("cost", "latency", "faults")


def _route(mode: str) -> dict[str, Any]:
    return dict(QUEUED) if mode == "queued" else {}


async def _site(
    root: Path,
    upstream: StandInUpstream,
    backend: str,
    mode: str,
    *,
    pg_proxy: bool = False,
    faulty: bool = False,
) -> Site:
    proxy = None
    if pg_proxy:
        proxy = FaultProxy(PG_PORT)
        await proxy.__aenter__()
    # Fault runs give up on a hanging upstream after 1 s; cost and latency runs keep the
    # default, so a busy load generator is never mistaken for a slow helpdesk.
    top = FAST_UPSTREAM if faulty else {"upstream_timeout_s": 30}
    site = Site(root, backend, upstream, _route(mode), top, proxy)
    await site.prepare()
    return site


async def _close(site: Site) -> None:
    await site.close()
    if site.pg_proxy is not None:
        await site.pg_proxy.close()
    await site.upstream.set_mode("ok")
    site.upstream.received.clear()


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


# --- 1. cost ---------------------------------------------------------------------------------


async def cost_run(
    tmp: Path, upstream: StandInUpstream, backend: str, mode: str, messages: list[Message]
) -> dict[str, Any]:
    site = await _site(tmp / f"cost-{backend}-{mode}", upstream, backend, mode)
    try:
        server = site.server("one")
        await server.start()
        warm = await push([server], generate(WARMUP, seed=99, prefix="warm"))
        if mode == "queued":
            await wait_drained(site, warm, timeout_s=60)
        cpu_before, began = server.cpu_seconds(), time.monotonic()
        outcomes = await push([server], messages)
        if mode == "queued":
            await wait_drained(site, outcomes, timeout_s=120)
        elapsed, cpu = time.monotonic() - began, server.cpu_seconds() - cpu_before
        statuses: dict[str, int] = {}
        for o in outcomes.values():
            key = f"{o.status} {o.error}" if o.error else str(o.status)
            statuses[key] = statuses.get(key, 0) + 1
        ok = 202 if mode == "queued" else 200
        return {
            "backend": backend,
            "mode": mode,
            "messages": len(messages),
            "accepted": statuses.get(str(ok), 0),
            "statuses": statuses,
            "seconds": round(elapsed, 2),
            "messages_per_s": round(len(messages) / elapsed, 1),
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_message": round(cpu * 1000 / len(messages), 3),
        }
    finally:
        await _close(site)


# --- 2. latency ------------------------------------------------------------------------------


async def latency_run(
    tmp: Path, upstream: StandInUpstream, backend: str, mode: str, cfg: Config
) -> dict[str, Any]:
    site = await _site(tmp / f"latency-{backend}-{mode}", upstream, backend, mode)
    try:
        server = site.server("one")
        await server.start()
        warm = await push([server], generate(WARMUP, seed=98, prefix="warm"))
        if mode == "queued":
            await wait_drained(site, warm, timeout_s=60)
        messages = generate(cfg.latency_messages, seed=21)
        started = len(upstream.received)
        outcomes = await push([server], messages, rate=cfg.rate)
        if mode == "queued":
            await wait_drained(site, outcomes, timeout_s=120)
        first: dict[str, float] = {}
        for r in upstream.received[started:]:
            if r.message_id is not None and 200 <= r.answer < 300:
                first.setdefault(r.message_id, r.at)
        answer = [o.ended - o.started for o in outcomes.values() if o.status in (200, 202)]
        delivery = [first[m] - o.started for m, o in outcomes.items() if m in first]
        return {
            "backend": backend,
            "mode": mode,
            "rate": cfg.rate,
            "messages": len(messages),
            "answer_p50_ms": _ms(_quantile(answer, 0.5)),
            "answer_p99_ms": _ms(_quantile(answer, 0.99)),
            "delivery_p50_ms": _ms(_quantile(delivery, 0.5)),
            "delivery_p99_ms": _ms(_quantile(delivery, 0.99)),
            "delivered": len(delivery),
        }
    finally:
        await _close(site)


# --- 3. faults -------------------------------------------------------------------------------


def _fault(kind: str, mode: str, held: list[str]) -> tuple[faults.Fault, faults.Heal, float]:
    """(inject, heal, seconds it stays in at least)."""
    if kind in ("refuse", "hang", "error", "throttle", "cut"):
        inject, heal = faults.upstream(kind)
        return inject, heal, 2.0
    if kind == "postgres":
        inject, heal = faults.POSTGRES_UNREACHABLE
        return inject, heal, 2.0
    if kind == "sigkill":
        return faults.kill_and_restart, faults.healthy_upstream, 0.0

    async def kill_first_replica(run: Run) -> None:
        if mode == "queued":
            from tests.load.checks import outbox_rows

            held.extend(r.lease_owner for r in await outbox_rows(run.site) if r.lease_owner)
        run.servers[0].kill()
        await run.servers[0].wait()

    return kill_first_replica, faults.healthy_upstream, 0.5


async def fault_run(
    tmp: Path, upstream: StandInUpstream, backend: str, mode: str, kind: str, count: int
) -> dict[str, Any]:
    if kind == "postgres" and backend != "postgres":
        backend = "postgres"
    if kind == "replica" and backend != "postgres":
        backend = "postgres"  # replicas share a PostgreSQL vault
    site = await _site(
        tmp / f"fault-{kind}-{mode}",
        upstream,
        backend,
        mode,
        pg_proxy=kind == "postgres",
        faulty=True,
    )
    try:
        servers: list[Server] = [site.server("one")]
        if kind == "replica":
            servers.append(site.server("two"))
        for server in servers:
            await server.start()
        if kind in ("sigkill", "replica") and mode == "queued":
            # Deliveries in flight at the kill: a slow upstream holds them.
            upstream.hang_s = 0.3
            await upstream.set_mode("hang")
        held: list[str] = []
        inject, heal, fault_s = _fault(kind, mode, held)
        began = time.monotonic()
        tally = await run_scenario(
            site, servers, generate(count, seed=31 + FAULTS.index(kind)), mode=mode,
            fault=(inject, heal), fault_s=fault_s, drain_s=LEASE_DRAIN_S,
        )  # fmt: skip
        upstream.hang_s = 30.0
        killed = servers[0].proc.pid if servers[0].proc is not None else -1
        row = _fault_row(kind, backend, tally, time.monotonic() - began)
        if kind == "replica" and mode == "queued":
            row["killed_holding_leases"] = sum(f":{killed}:" in o for o in held)
        return row
    finally:
        await _close(site)


def _fault_row(kind: str, backend: str, t: Tally, seconds: float) -> dict[str, Any]:
    return {
        "fault": kind,
        "backend": backend,
        "mode": t.mode,
        "pushed": t.pushed,
        "accepted": t.accepted,
        "error_answers": t.refused,
        "no_answer": t.unanswered,
        "delivered": t.delivered,
        "upstream_requests": t.receipts,
        "lost": t.lost,
        "duplicates": t.duplicates,
        "duplicates_after_dedupe": t.duplicates_after_dedupe,
        "leaked": t.leaked,
        "problems": t.problems[:20],
        "statuses": {str(k): v for k, v in sorted(t.statuses.items())},
        "seconds": round(seconds, 1),
    }


# --- run -------------------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "-C", str(_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
    except OSError:
        commit = ""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
    }


async def run_benchmark(cfg: Config, log: Callable[[str], None] = print) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": _machine(), "config": cfg.__dict__, "target": {}}
    upstream = StandInUpstream()
    await upstream.start()
    try:
        with tempfile.TemporaryDirectory(prefix="outbox-load-") as tmp_name:
            tmp = Path(tmp_name)
            if "cost" in cfg.parts:
                messages = generate(cfg.messages, seed=7)
                rows = []
                for backend in cfg.backends:
                    for mode in ("sync", "queued"):
                        row = await cost_run(tmp, upstream, backend, mode, messages)
                        log(_line(row, ("backend", "mode", "messages", "accepted",
                                        "messages_per_s", "cpu_ms_per_message")))  # fmt: skip
                        rows.append(row)
                result["cost"] = rows
                ratios = {}
                for backend in cfg.backends:
                    per = {
                        r["mode"]: r["cpu_ms_per_message"] for r in rows if r["backend"] == backend
                    }
                    ratios[backend] = round(per["queued"] / per["sync"], 3)
                result["target"]["queued_cpu_ratio"] = ratios
                result["target"]["queued_cpu_ratio_max"] = TARGET_CPU_RATIO
                log(f"queued / sync CPU per message: {ratios} (target <= {TARGET_CPU_RATIO})")
            if "latency" in cfg.parts:
                rows = []
                for backend in cfg.backends:
                    for mode in ("sync", "queued"):
                        row = await latency_run(tmp, upstream, backend, mode, cfg)
                        log(_line(row, ("backend", "mode", "rate", "answer_p50_ms",
                                        "answer_p99_ms", "delivery_p50_ms",
                                        "delivery_p99_ms")))  # fmt: skip
                        rows.append(row)
                result["latency"] = rows
            if "faults" in cfg.parts:
                rows = []
                for mode in cfg.modes:
                    for kind in cfg.faults:
                        row = await fault_run(
                            tmp, upstream, cfg.fault_backend, mode, kind, cfg.fault_messages
                        )
                        log(_line(row, ("mode", "fault", "backend", "pushed", "accepted",
                                        "error_answers", "no_answer", "lost", "duplicates",
                                        "duplicates_after_dedupe", "leaked", "seconds")))  # fmt: skip
                        for problem in row["problems"]:
                            log(f"  problem: {problem}")
                        rows.append(row)
                result["faults"] = rows
                result["totals"] = {
                    "messages_pushed": sum(r["pushed"] for r in rows),
                    "faults_injected": len(rows),
                    "values_leaked": sum(r["leaked"] for r in rows),
                    "accepted_lost": sum(r["lost"] for r in rows),
                    "duplicates_before_dedupe": sum(
                        r["duplicates"] for r in rows if r["mode"] == "queued"
                    ),
                    "duplicates_after_dedupe": sum(
                        r["duplicates_after_dedupe"] for r in rows if r["mode"] == "queued"
                    ),
                    "sync_error_answers": sum(
                        r["error_answers"] + r["no_answer"] for r in rows if r["mode"] == "sync"
                    ),
                    "problems": sum(len(r["problems"]) for r in rows),
                }
                log(f"totals: {result['totals']}")
    finally:
        await upstream.stop()
    return result


def _line(row: dict[str, Any], keys: Sequence[str]) -> str:
    return "  ".join(f"{k}={row.get(k)}" for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, a few minutes")
    parser.add_argument("--messages", type=int, help="cost part: messages per mode and backend")
    parser.add_argument("--fault-messages", type=int, help="messages per fault run")
    parser.add_argument("--backends", help="comma-separated: sqlite,postgres")
    parser.add_argument("--faults", help=f"comma-separated, of {','.join(FAULTS)}")
    parser.add_argument("--parts", help="comma-separated: cost,latency,faults")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cfg = Config()
    if args.quick:
        cfg = Config(messages=400, latency_messages=100, fault_messages=240)
    changes: dict[str, Any] = {}
    if args.messages:
        changes["messages"] = args.messages
    if args.fault_messages:
        changes["fault_messages"] = args.fault_messages
    if args.backends:
        changes["backends"] = tuple(args.backends.split(","))
    if args.faults:
        changes["faults"] = tuple(args.faults.split(","))
    if args.parts:
        changes["parts"] = tuple(args.parts.split(","))
    cfg = Config(**{**cfg.__dict__, **changes})
    result = asyncio.run(run_benchmark(cfg))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
