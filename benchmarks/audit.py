"""Audit chain figures: records/s through the chained sink, proxy throughput with the chain on
and off, and `redactor audit verify` speed on a large generated trail.

    python benchmarks/audit.py                      # ~2 minutes; writes results/audit.json
    python benchmarks/audit.py --verify-mb 1024     # the 1 GB trail (generation takes longer)
    python benchmarks/audit.py --quick              # a smoke run, small everything
    python benchmarks/audit.py --fsync-only         # the fsync policies; results/audit_fsync.json

Sink: 200 concurrent writers each writing records one at a time (the proxy's pattern; group
commit batches them) into a file, chained, against the same sink writing the same records
without the chain (the unchained lines are what the sink wrote before the chain existed).

Proxy: `redactor serve` (the real server, one process) in front of a local upstream, driven
closed-loop by concurrent clients posting a JSON body with one card number; the chain is
switched off by replacing the sink with the unchained one in the server process (benchmark
only: the product has no switch). Runs alternate on/off so load from other processes hits
both alike; the figure is the ratio of medians.

Fsync (`--fsync-only` runs just this): the sink and the proxy under each `audit_fsync` policy
(batch, interval, never): sink records/s, and the server's CPU per request, throughput and
request latency (p50/p99), runs alternating between policies.

Verify: a trail of realistic records (message, delivery and reveal records, ~300 bytes a line)
generated with the chain, then `verify_paths` timed over it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from redactor.audit import AccessEvent, AuditEvent, AuditSink, DeliveryEvent  # noqa: E402
from redactor.audit.chain import ChainState, LineSigner, canonical_json  # noqa: E402
from redactor.audit.verify import verify_paths  # noqa: E402

RESULTS = _ROOT / "benchmarks" / "results" / "audit.json"
FSYNC_RESULTS = _ROOT / "benchmarks" / "results" / "audit_fsync.json"
FSYNC_POLICIES = ("batch", "interval", "never")
KEY = bytes(range(32))
CARD = "4111 1111 1111 1111"


class UnchainedSink(AuditSink):
    """The sink writing plain canonical JSON lines, as before the chain (benchmark only)."""

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        data = "".join(canonical_json(r) + "\n" for r in records).encode("utf-8")
        self._append(data)


def _records(n: int) -> list[Any]:
    out: list[Any] = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append(
                AuditEvent(
                    "message_redacted",
                    "2026-11-29T10:00:00.000+00:00",
                    f"{i:032x}",
                    "zendesk",
                    "acme",
                    {"CREDIT_CARD": 1},
                    ("tok_v1_card_abcdefghijklmnopqrst_1111",),
                )
            )
        elif kind == 1:
            out.append(
                DeliveryEvent(
                    "message_delivered",
                    "2026-11-29T10:00:00.001+00:00",
                    f"{i:032x}",
                    "zendesk",
                    "acme",
                    "forwarded",
                    200,
                )
            )
        else:
            out.append(
                AccessEvent(
                    "token_revealed",
                    "2026-11-29T10:00:00.002+00:00",
                    f"{i:032x}",
                    "resolve",
                    "agent-7",
                    "acme",
                    "tok_v1_card_abcdefghijklmnopqrst_1111",
                    "masked",
                    "granted",
                    None,
                    None,
                    "jti-123",
                    "0123456789ab",
                )
            )
    return out


async def _sink_rate(
    sink_cls: type[AuditSink], path: Path, records: list[Any], fsync: str = "never"
) -> float:
    # "never" by default: the chain's cost alone, as measured before the fsync policy existed.
    sink = sink_cls(path, KEY, checkpoint_interval_s=0, fsync=fsync)
    await sink.open()
    queue = list(records)
    start = time.perf_counter()

    async def writer() -> None:
        while queue:
            await sink.write(queue.pop())

    await asyncio.gather(*(writer() for _ in range(200)))
    elapsed = time.perf_counter() - start
    await sink.close()
    return len(records) / elapsed


def bench_sink(n: int, rounds: int) -> dict[str, Any]:
    records = _records(n)
    chained: list[float] = []
    plain: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            chained.append(asyncio.run(_sink_rate(AuditSink, Path(tmp) / f"c{r}.jsonl", records)))
            plain.append(asyncio.run(_sink_rate(UnchainedSink, Path(tmp) / f"p{r}.jsonl", records)))
    data = [r.to_data() for r in records]
    state = ChainState("bench", KEY)
    signer = LineSigner(KEY)
    start = time.perf_counter()
    prev = state.last_mac
    for i, d in enumerate(data):
        _line, prev = signer.sign(prev, {**d, "chain": "bench", "seq": i})
    seal_rate = len(data) / (time.perf_counter() - start)
    return {
        "records": n,
        "rounds": rounds,
        "chained_records_per_s": round(statistics.median(chained)),
        "unchained_records_per_s": round(statistics.median(plain)),
        "chain_sign_only_records_per_s": round(seal_rate),
    }


# --- proxy on/off ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_child(args: argparse.Namespace) -> None:
    """Child process: the real server, with the chained or the unchained sink."""
    from redactor import resources
    from redactor.server import run_server
    from redactor.settings import Overrides, load_settings

    if args.chain == "legacy":
        # As before this change: no delivery record after forwarding (and no chain).
        from redactor.ingress import proxy

        async def no_delivery_record(*_args: Any) -> None:
            return None

        proxy._audit_delivery = no_delivery_record  # type: ignore[assignment]
    if args.chain in ("off", "legacy"):
        original = resources.open_audit_sink

        async def unchained(settings: Any, metrics: Any = None) -> AuditSink:
            sink = await original(settings, metrics)
            await sink.close()
            plain = UnchainedSink(settings.audit_log, KEY, checkpoint_interval_s=0)
            await plain.open()
            return plain

        resources.open_audit_sink = unchained  # type: ignore[assignment]
    environ = {"REDACTOR_AUDIT_FSYNC": args.fsync} if args.fsync else {}
    settings = load_settings(
        Overrides(
            upstream=args.upstream,
            dev=True,
            data_dir=args.data_dir,
            audit_log=str(Path(args.data_dir) / f"audit-{args.chain}.jsonl"),
            listen=f"127.0.0.1:{args.port}",
            admin_listen=f"127.0.0.1:{_free_port()}",
            log_level="warning",
        ),
        environ,
    )
    asyncio.run(run_server(settings))


def upstream_child(args: argparse.Namespace) -> None:
    """Child process: an upstream that answers 200 to everything."""
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text='{"ok":true}', content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


async def _wait_ready(port: int) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(f"http://127.0.0.1:{port}/") as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError("server never came up")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(port: int, seconds: float, concurrency: int) -> tuple[float, int]:
    import aiohttp

    body = json.dumps({"ticket": {"comment": f"my card is {CARD}, please refund"}}).encode()
    done = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.post(
                    f"http://127.0.0.1:{port}/hook",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"proxy answered {resp.status}")
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return done / (time.perf_counter() - start), done


def bench_proxy(seconds: float, rounds: int, concurrency: int) -> dict[str, Any]:
    me = str(Path(__file__).resolve())
    up_port = _free_port()
    upstream = subprocess.Popen(
        [sys.executable, me, "_upstream", "--port", str(up_port)], stdout=subprocess.DEVNULL
    )
    variants = ("on", "off", "legacy")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    cpu_ms: dict[str, list[float]] = {v: [] for v in variants}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(rounds):
                # Alternate which goes first, so a drift within a round hits both alike.
                for chain in variants if n % 2 == 0 else variants[::-1]:
                    port = _free_port()
                    command = [sys.executable, me, "_serve", "--chain", chain, "--fsync", "never"]
                    command += ["--port", str(port), "--data-dir", tmp]
                    command += ["--upstream", f"http://127.0.0.1:{up_port}/"]
                    proc = subprocess.Popen(
                        command,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    try:
                        asyncio.run(_wait_ready(port))
                        asyncio.run(_load(port, 1.0, concurrency))  # warm-up
                        cpu_before = _cpu_s(proc.pid)
                        rate, done = asyncio.run(_load(port, seconds, concurrency))
                        rates[chain].append(rate)
                        cpu_ms[chain].append(1000 * (_cpu_s(proc.pid) - cpu_before) / done)
                    finally:
                        proc.terminate()
                        proc.wait(timeout=30)
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])

    def paired(figures: dict[str, list[float]], a: str, b: str) -> float:
        # The median of each round's ratio: a round's runs are seconds apart, so a burst of
        # load from another process hits both.
        return statistics.median(x / y for x, y in zip(figures[a], figures[b], strict=True))

    return {
        "cpu_ms_per_request": {v: [round(c, 3) for c in cpu_ms[v]] for v in variants},
        # Throughput of a saturated server is 1 / CPU per request: the robust figure on a
        # shared machine, where other processes move the wall-clock rate from run to run.
        "chain_cost_cpu_pct": round(100 * (paired(cpu_ms, "on", "off") - 1), 2),
        "chain_cost_rps_pct": round(100 * (1 - paired(rates, "on", "off")), 2),
        "delivery_record_cost_cpu_pct": round(100 * (paired(cpu_ms, "off", "legacy") - 1), 2),
        "legacy_rps": [round(r, 1) for r in rates["legacy"]],
        "seconds_per_run": seconds,
        "rounds": rounds,
        "concurrency": concurrency,
        "chain_on_rps": [round(r, 1) for r in rates["on"]],
        "chain_off_rps": [round(r, 1) for r in rates["off"]],
        "chain_on_median_rps": round(on, 1),
        "chain_off_median_rps": round(off, 1),
        "chain_cost_pct_of_medians": round(100 * (1 - on / off), 2),
    }


# --- fsync policies --------------------------------------------------------------------------


def bench_fsync_sink(n: int, rounds: int) -> dict[str, Any]:
    """Sink records/s under each fsync policy (200 concurrent writers, group commit)."""
    records = _records(n)
    rates: dict[str, list[float]] = {p: [] for p in FSYNC_POLICIES}
    with tempfile.TemporaryDirectory(dir=_ROOT / "benchmarks") as tmp:
        for r in range(rounds):
            for policy in FSYNC_POLICIES:
                path = Path(tmp) / f"{policy}{r}.jsonl"
                rates[policy].append(
                    asyncio.run(_sink_rate(AuditSink, path, records, fsync=policy))
                )
    return {
        "records": n,
        "rounds": rounds,
        "records_per_s": {p: round(statistics.median(v)) for p, v in rates.items()},
    }


async def _load_timed(port: int, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    """Closed-loop load: (requests/s, each request's latency in seconds)."""
    import aiohttp

    body = json.dumps({"ticket": {"comment": f"my card is {CARD}, please refund"}}).encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def client() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                async with session.post(
                    f"http://127.0.0.1:{port}/hook",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"proxy answered {resp.status}")
                latencies.append(time.perf_counter() - sent)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return len(latencies) / (time.perf_counter() - start), latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_fsync_proxy(seconds: float, rounds: int, concurrency: int) -> dict[str, Any]:
    """The real server under each fsync policy: CPU per request, requests/s, latency."""
    me = str(Path(__file__).resolve())
    up_port = _free_port()
    upstream = subprocess.Popen(
        [sys.executable, me, "_upstream", "--port", str(up_port)], stdout=subprocess.DEVNULL
    )
    rates: dict[str, list[float]] = {p: [] for p in FSYNC_POLICIES}
    cpu_ms: dict[str, list[float]] = {p: [] for p in FSYNC_POLICIES}
    p50: dict[str, list[float]] = {p: [] for p in FSYNC_POLICIES}
    p99: dict[str, list[float]] = {p: [] for p in FSYNC_POLICIES}
    try:
        # On the disk the trail would be on (not a tmpfs /tmp): fsync's cost is the disk's.
        with tempfile.TemporaryDirectory(dir=_ROOT / "benchmarks") as tmp:
            for n in range(rounds):
                for policy in FSYNC_POLICIES if n % 2 == 0 else FSYNC_POLICIES[::-1]:
                    port = _free_port()
                    command = [sys.executable, me, "_serve", "--chain", "on", "--fsync", policy]
                    command += ["--port", str(port), "--data-dir", tmp]
                    command += ["--upstream", f"http://127.0.0.1:{up_port}/"]
                    proc = subprocess.Popen(
                        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                    try:
                        asyncio.run(_wait_ready(port))
                        asyncio.run(_load_timed(port, 1.0, concurrency))  # warm-up
                        cpu_before = _cpu_s(proc.pid)
                        rate, latencies = asyncio.run(_load_timed(port, seconds, concurrency))
                        rates[policy].append(rate)
                        cpu_ms[policy].append(
                            1000 * (_cpu_s(proc.pid) - cpu_before) / len(latencies)
                        )
                        p50[policy].append(1000 * _percentile(latencies, 0.5))
                        p99[policy].append(1000 * _percentile(latencies, 0.99))
                    finally:
                        proc.terminate()
                        proc.wait(timeout=30)
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)

    def med(figures: dict[str, list[float]], digits: int) -> dict[str, float]:
        return {p: round(statistics.median(v), digits) for p, v in figures.items()}

    def paired(figures: dict[str, list[float]], a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(figures[a], figures[b], strict=True))

    return {
        "seconds_per_run": seconds,
        "rounds": rounds,
        "concurrency": concurrency,
        "rps": med(rates, 1),
        "cpu_ms_per_request": med(cpu_ms, 3),
        "latency_p50_ms": med(p50, 2),
        "latency_p99_ms": med(p99, 2),
        "batch_vs_never_cpu_pct": round(100 * (paired(cpu_ms, "batch", "never") - 1), 1),
        "interval_vs_never_cpu_pct": round(100 * (paired(cpu_ms, "interval", "never") - 1), 1),
        "batch_vs_never_rps_pct": round(100 * (paired(rates, "batch", "never") - 1), 1),
        "rps_runs": {p: [round(r, 1) for r in v] for p, v in rates.items()},
    }


# --- verify -----------------------------------------------------------------------------------


def _generate_trail(path: Path, megabytes: int) -> int:
    target = megabytes * 1024 * 1024
    data = [r.to_data() for r in _records(3000)]
    signer = LineSigner(KEY)
    prev = ChainState("gen", KEY).last_mac
    seq = 0
    written = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < target:
            chunk: list[str] = []
            for d in data:
                line, prev = signer.sign(prev, {**d, "chain": "gen", "seq": seq})
                chunk.append(line.decode() + "\n")
                seq += 1
            text = "".join(chunk)
            fh.write(text)
            written += len(text.encode())
    return seq


def bench_verify(megabytes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        start = time.perf_counter()
        records = _generate_trail(path, megabytes)
        generate_s = time.perf_counter() - start
        size = path.stat().st_size
        start = time.perf_counter()
        result = verify_paths(KEY, [path])
        elapsed = time.perf_counter() - start
        if not result.ok:
            raise RuntimeError("generated trail did not verify")
        jobs = os.cpu_count() or 1
        start = time.perf_counter()
        if not verify_paths(KEY, [path], jobs=jobs, parallel_min_bytes=0).ok:
            raise RuntimeError("generated trail did not verify")
        elapsed_jobs = time.perf_counter() - start
    return {
        "trail_mb": round(size / 1e6, 1),
        "records": records,
        "generate_s": round(generate_s, 1),
        "verify_s": round(elapsed, 2),
        "verify_mb_per_s": round(size / 1e6 / elapsed, 1),
        "verify_records_per_s": round(records / elapsed),
        "jobs": jobs,
        "verify_jobs_mb_per_s": round(size / 1e6 / elapsed_jobs, 1),
    }


# --- the console on its index (issue 22) -----------------------------------------------------

_ME = str(Path(__file__).resolve())
CONSOLE_RESULTS = _ROOT / "benchmarks" / "results" / "audit_console.json"
CONSOLE_TARGETS = {"summary_30d_warm_ms": 500.0, "p99_delta_ms": 5.0}
_ISSUER = "https://idp.bench.invalid/"
_AUDIENCE = "redactor-bench"
_POLICY = (
    "version: 1\nfull_reveal:\n  purpose: {min_length: 20}\n"
    "default:\n  roles:\n    support_agent: {CREDIT_CARD: masked}\n"
)


def _security_bearer(tmp: Path) -> str:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk["kid"] = "e1"
    (tmp / "jwks.json").write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    now = int(time.time())
    claims = {
        "iss": _ISSUER, "aud": _AUDIENCE, "sub": "sec-officer", "tenant": "acme",
        "roles": ["security"], "iat": now, "exp": now + 7200, "jti": "bench",
    }  # fmt: skip
    return "Bearer " + jwt.encode(claims, key, algorithm="ES256", headers={"kid": "e1"})


def _summary_query(days: int) -> dict[str, str]:
    from datetime import UTC, datetime, timedelta

    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    return {"since": since.isoformat(), "until": until.isoformat(), "tz": "Europe/Paris"}


def console_child(args: argparse.Namespace) -> None:
    """Child process: on each `go` line, the analyst for `--seconds`; then a line with each
    request's milliseconds. Ends when its stdin closes."""
    bearer = sys.stdin.readline().strip()

    async def run() -> list[float]:
        stop = asyncio.Event()
        times: list[float] = []
        task = asyncio.create_task(_console_loop(args.port, bearer, stop, times))
        await asyncio.sleep(args.seconds)
        stop.set()
        await task
        return times

    for line in sys.stdin:
        if line.strip() == "go":
            print(json.dumps([round(t * 1000, 2) for t in asyncio.run(run())]), flush=True)


async def _console_loop(
    port: int, bearer: str, stop: asyncio.Event, times: list[float], *, once: bool = False
) -> None:
    """One analyst clicking through the console as fast as it answers: the 30-day summary,
    then a page of reveals sorted by subject, again and again."""
    import aiohttp

    params = _summary_query(30)
    base = f"http://127.0.0.1:{port}/security/api"
    async with aiohttp.ClientSession(headers={"Authorization": bearer}) as session:
        while once or not stop.is_set():
            once = False
            for path, extra in (
                ("summary", {}),
                ("panel/reveals", {"sort": "subject", "offset": "100", "limit": "50"}),
            ):
                sent = time.perf_counter()
                async with session.get(f"{base}/{path}", params={**params, **extra}) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"console answered {resp.status}")
                times.append(time.perf_counter() - sent)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _cpu_or_zero(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        return _cpu_s(pid)
    except OSError:
        return 0.0


async def _proxy_rounds(
    server_pid: int,
    proxy_port: int,
    admin_port: int,
    bearer: str,
    seconds: float,
    rounds: int,
    concurrency: int,
) -> dict[str, Any]:
    p99: dict[str, list[float]] = {"quiet": [], "console": []}
    p50: dict[str, list[float]] = {"quiet": [], "console": []}
    server_cpu: dict[str, list[float]] = {"quiet": [], "console": []}
    requests: dict[str, int] = {"quiet": 0, "console": 0}
    worker_cpu = 0.0
    console_ms: list[float] = []
    # The analyst runs in a process of its own, started once: the load generator's own loop
    # must not carry the console's answers (they would be measured as proxy latency).
    analyst = await asyncio.create_subprocess_exec(
        sys.executable,
        _ME,
        "_console",
        "--port",
        str(admin_port),
        "--seconds",
        str(seconds),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert analyst.stdin is not None  # noqa: S101 - a pipe
    analyst.stdin.write(bearer.encode() + b"\n")
    # Warm-up: the index worker started and caught up, the proxy's pools filled.
    warm_stop = asyncio.Event()
    warm_stop.set()
    await _console_loop(admin_port, bearer, warm_stop, [], once=True)
    await _load_timed(proxy_port, 1.0, concurrency)
    worker: int | None = None
    for round_no in range(rounds):
        # Alternating order: a burst of load from other processes hits both variants alike.
        order = ("quiet", "console") if round_no % 2 == 0 else ("console", "quiet")
        for variant in order:
            if variant == "console":
                assert analyst.stdin is not None  # noqa: S101 - a pipe
                analyst.stdin.write(b"go\n")
                await analyst.stdin.drain()
            cpu0, worker_cpu0 = _cpu_s(server_pid), _cpu_or_zero(worker)
            _rate, latencies = await _load_timed(proxy_port, seconds, concurrency)
            if variant == "console":
                assert analyst.stdout is not None  # noqa: S101 - a pipe
                console_ms.extend(json.loads(await analyst.stdout.readline()))
            server_cpu[variant].append(_cpu_s(server_pid) - cpu0)
            requests[variant] += len(latencies)
            if worker is None:
                # The index worker, started by the first console request.
                found = [c for c in _children(server_pid) if "index_worker" in _cmdline(c)]
                worker = found[0] if found else None
            else:
                worker_cpu += _cpu_or_zero(worker) - worker_cpu0
            p99[variant].append(_percentile(latencies, 0.99) * 1000)
            p50[variant].append(_percentile(latencies, 0.50) * 1000)
    analyst.stdin.close()
    await analyst.wait()
    quiet, busy = statistics.median(p99["quiet"]), statistics.median(p99["console"])
    return {
        "server_cpu_ms_per_request": {
            v: round(1000 * sum(server_cpu[v]) / max(requests[v], 1), 3) for v in server_cpu
        },
        "index_worker_cpu_s_after_start": round(worker_cpu, 2),
        "p99_ms_quiet": round(quiet, 2),
        "p99_ms_with_console": round(busy, 2),
        "p99_delta_ms": round(busy - quiet, 2),
        "p99_delta_ms_paired_median": round(
            statistics.median(b - q for b, q in zip(p99["console"], p99["quiet"], strict=True)), 2
        ),
        "p50_ms_quiet": round(statistics.median(p50["quiet"]), 2),
        "p50_ms_with_console": round(statistics.median(p50["console"]), 2),
        "p99_ms_rounds": {k: [round(v, 2) for v in vs] for k, vs in p99.items()},
        "console_requests": len(console_ms),
        "console_request_ms_median": round(statistics.median(console_ms), 1)
        if console_ms
        else None,
        "seconds_per_run": seconds,
        "rounds": rounds,
        "concurrency": concurrency,
    }


def bench_console(records: int, seconds: float, rounds: int, concurrency: int) -> dict[str, Any]:
    """A trail of `records` over 60 days: the index's build rate, the console's 30-day summary
    warm (in the index worker, and through the API), and the proxy's p99 with and without an
    analyst using the console."""
    from datetime import UTC, datetime, timedelta

    from benchmarks.trailgen import records as trail_records
    from benchmarks.trailgen import write_trail
    from redactor.audit.index import TrailIndex, index_path_for, trail_files
    from redactor.audit.index_report import report_from_index
    from redactor.audit.keys import DEV_AUDIT_KEY_FILE_NAME, write_audit_key_file
    from redactor.ops.index_worker import Worker

    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="audit-console-bench-") as tmp_name:
        tmp = Path(tmp_name)
        data_dir, logs = tmp / "data", tmp / "logs"
        data_dir.mkdir()
        logs.mkdir()
        key = write_audit_key_file(data_dir / DEV_AUDIT_KEY_FILE_NAME)
        live = logs / "audit.jsonl"
        start = time.perf_counter()
        write_trail(
            logs / "audit.20260101T000000.000000Z-000000000000.jsonl",
            key,
            trail_records(records, end=datetime.now(UTC), days=60),
            chain="bench",
        )
        generate_s = time.perf_counter() - start
        trail_mb = sum(p.stat().st_size for p in trail_files(live)) / 1e6
        index = TrailIndex(index_path_for(live), key)
        start = time.perf_counter()
        built = index.update(trail_files(live))
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        index.full_check(trail_files(live))
        rehash_s = time.perf_counter() - start
        report_ms = []
        for _ in range(3):
            start = time.perf_counter()
            report_from_index(
                index, since=datetime.now(UTC) - timedelta(days=30), until=datetime.now(UTC)
            )
            report_ms.append((time.perf_counter() - start) * 1000)
        index.close()
        index_mb = index_path_for(live).stat().st_size / 1e6
        worker = Worker(key, live)
        worker.answer({"op": "summary", "tenant": "acme", "params": _summary_query(30)})
        warm = []
        for _ in range(7):
            start = time.perf_counter()
            _meta, body = worker.answer(
                {"op": "summary", "tenant": "acme", "params": _summary_query(30)}
            )
            warm.append((time.perf_counter() - start) * 1000)
        doc = json.loads(body)
        worker.index.close()
        bearer = _security_bearer(tmp)
        (tmp / "policy.yaml").write_text(_POLICY, encoding="utf-8")
        up_port, proxy_port, admin_port = _free_port(), _free_port(), _free_port()
        upstream = subprocess.Popen([sys.executable, me, "_upstream", "--port", str(up_port)])
        command = [
            sys.executable, "-m", "redactor", "serve", "--dev", "--data-dir", str(data_dir),
            "--upstream", f"http://127.0.0.1:{up_port}", "--listen", f"127.0.0.1:{proxy_port}",
            "--admin-listen", f"127.0.0.1:{admin_port}", "--agent-listen",
            f"127.0.0.1:{_free_port()}", "--jwks", str(tmp / "jwks.json"), "--jwt-issuer",
            _ISSUER, "--jwt-audience", _AUDIENCE, "--policy", str(tmp / "policy.yaml"),
            "--audit-log", str(live), "--log-level", "warning",
        ]  # fmt: skip
        with (tmp / "server.log").open("wb") as server_log:
            server = subprocess.Popen(command, stdout=server_log, stderr=server_log, cwd=_ROOT)
            try:
                asyncio.run(_wait_ready(up_port))
                asyncio.run(_wait_ready(proxy_port))
                proxy = asyncio.run(
                    _proxy_rounds(
                        server.pid, proxy_port, admin_port, bearer, seconds, rounds, concurrency
                    )
                )
            except BaseException:
                print((tmp / "server.log").read_text()[-4000:], file=sys.stderr)
                raise
            finally:
                server.send_signal(2)
                server.wait(timeout=60)
                upstream.terminate()
                upstream.wait(timeout=10)
    totals = doc["totals"]
    return {
        "records": records,
        "trail_mb": round(trail_mb, 1),
        "generate_s": round(generate_s, 1),
        "index_build_s": round(build_s, 2),
        "index_build_records_per_s": round(built.records / build_s),
        "index_mb": round(index_mb, 1),
        "full_rehash_s": round(rehash_s, 2),
        "summary_30d_warm_ms_median": round(statistics.median(warm), 1),
        "report_30d_from_index_ms_median": round(statistics.median(report_ms), 1),
        "summary_30d_warm_ms_max": round(max(warm), 1),
        "summary_30d_reveals": totals["reveals"],
        "summary_30d_denials": totals["denials"],
        "proxy": proxy,
        "targets": CONSOLE_TARGETS,
    }


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    serve = sub.add_parser("_serve")
    serve.add_argument("--chain", choices=["on", "off", "legacy"])
    serve.add_argument("--port", type=int)
    serve.add_argument("--upstream")
    serve.add_argument("--data-dir")
    serve.add_argument("--fsync", choices=FSYNC_POLICIES)
    analyst = sub.add_parser("_console")
    analyst.add_argument("--port", type=int)
    analyst.add_argument("--seconds", type=float)
    up = sub.add_parser("_upstream")
    up.add_argument("--port", type=int)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--verify-mb", type=int, default=200)
    parser.add_argument("--sink-records", type=int, default=60_000)
    parser.add_argument("--proxy-seconds", type=float, default=5.0)
    parser.add_argument("--proxy-rounds", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--fsync-only", action="store_true", help="only the fsync policies' figures"
    )
    parser.add_argument(
        "--console-only", action="store_true", help="only the console/index figures"
    )
    parser.add_argument("--console-records", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.cmd == "_serve":
        serve_child(args)
        return
    if args.cmd == "_console":
        console_child(args)
        return
    if args.cmd == "_upstream":
        upstream_child(args)
        return
    if args.quick:
        args.verify_mb, args.sink_records, args.proxy_seconds, args.proxy_rounds = 5, 3000, 1, 1
    if args.console_only:
        if args.quick:
            args.console_records = 20_000
        console = bench_console(
            args.console_records, args.proxy_seconds, args.proxy_rounds, args.concurrency
        )
        print(f"console: {json.dumps(console)}", flush=True)
        if not args.no_write:
            CONSOLE_RESULTS.write_text(
                json.dumps({"machine": _machine(), "console": console}, indent=2) + "\n"
            )
        return
    if args.fsync_only:
        fsync = {
            "sink": bench_fsync_sink(args.sink_records, 1 if args.quick else 3),
            "proxy": bench_fsync_proxy(args.proxy_seconds, args.proxy_rounds, args.concurrency),
        }
        print(f"fsync: {json.dumps(fsync)}", flush=True)
        if not args.no_write:
            FSYNC_RESULTS.write_text(
                json.dumps({"machine": _machine(), "fsync": fsync}, indent=2) + "\n"
            )
        return
    sink = bench_sink(args.sink_records, 1 if args.quick else 3)
    print(f"sink: {json.dumps(sink)}", flush=True)
    verify = bench_verify(args.verify_mb)
    print(f"verify: {json.dumps(verify)}", flush=True)
    proxy = bench_proxy(args.proxy_seconds, args.proxy_rounds, args.concurrency)
    print(f"proxy: {json.dumps(proxy)}", flush=True)
    if not args.no_write:
        RESULTS.write_text(
            json.dumps(
                {
                    "machine": _machine(),
                    "sink": sink,
                    "verify": verify,
                    "proxy": proxy,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
