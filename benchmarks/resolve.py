"""Agent API speed: POST /v1/resolve throughput and latency, JWT verification included.

A real `redactor serve` process (dev mode, SQLite vault, audit log to a file, info logs to a
file) listens on 127.0.0.1; this process is the load generator: one aiohttp session, a fixed
number of concurrent workers, a fixed request count and a time cap. Scenarios: RS256 and ES256
bearer tokens, 1 and 20 vault tokens per call (masked level: the policy needs no purpose).
Every request verifies its JWT (there is no verification cache), runs the policy, makes one
`resolve_many` call and writes one audit record per token before answering.

    python benchmarks/resolve.py                    # ~1 minute; writes results/resolve.json
    python benchmarks/resolve.py --requests 5000 --seconds 5 --concurrency 16
    python benchmarks/resolve.py --profile /tmp/server.prof --no-write   # cProfile the server

Reported: calls/s, tokens/s, p50/p99 latency per call as the client sees it. The server and
the client share the machine (2 cores here): the client takes one of them. Output holds
figures only: never a value.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == _ROOT / "benchmarks":
    sys.path[0] = str(_ROOT)  # see benchmarks/vault.py: the script dir shadows `vault`

import aiohttp  # noqa: E402
import jwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from jwt.algorithms import ECAlgorithm, RSAAlgorithm  # noqa: E402

from redactor.settings import Overrides, load_settings  # noqa: E402
from vault.startup import open_vault  # noqa: E402

RESULTS = _ROOT / "benchmarks" / "results" / "resolve.json"
TARGETS = {"calls_per_s": 2000, "p99_ms": 10.0}
ISSUER = "https://idp.bench.invalid/"
AUDIENCE = "redactor-bench"
TENANT = "bench"
POLICY = """\
version: 1
full_reveal:
  purpose: {min_length: 20}
default:
  roles:
    support_agent: {CREDIT_CARD: masked, US_SSN: masked}
"""


@dataclass(frozen=True, slots=True)
class Result:
    alg: str
    tokens_per_call: int
    concurrency: int
    seconds: float
    calls: int
    errors: int
    calls_per_s: float
    tokens_per_s: float
    p50_ms: float
    p99_ms: float


def _card(n: int, prefix: int) -> str:
    # Luhn is not needed by the vault; the proxy is not in this path.
    return f"4{prefix:05d}{n:010d}"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _make_tokens(data_dir: Path, count: int) -> list[str]:
    settings = load_settings(
        Overrides(upstream="http://127.0.0.1:9", dev=True, data_dir=str(data_dir)), {}
    )
    prefix = secrets.randbelow(10**5)
    async with await open_vault(settings.vault) as vault:
        made = await vault.tokenize_many(
            TENANT,
            [("card", _card(i, prefix)) if i % 2 else ("ssn", f"{i:09d}") for i in range(count)],
        )
    return [t.text for t in made]


def _write_keys(tmp: Path) -> dict[str, tuple[str, object]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = []
    for kid, key, algorithm in (("r1", rsa_key, RSAAlgorithm), ("e1", ec_key, ECAlgorithm)):
        jwk = algorithm.to_jwk(key.public_key(), as_dict=True)
        jwk["kid"] = kid
        jwks.append(jwk)
    (tmp / "jwks.json").write_text(json.dumps({"keys": jwks}), encoding="utf-8")
    return {"RS256": ("r1", rsa_key), "ES256": ("e1", ec_key)}


def _bearer(alg: str, kid: str, key: object, subject: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "tenant": TENANT,
        "roles": ["support_agent"],
        "iat": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
    }
    return "Bearer " + jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})  # type: ignore[arg-type]


async def _wait_ready(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit("redactor serve exited during start; see its log")
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("redactor serve did not become ready")


async def _run(
    session: aiohttp.ClientSession,
    url: str,
    bearers: list[str],
    tokens: list[str],
    per_call: int,
    concurrency: int,
    requests: int,
    seconds: float,
) -> tuple[int, int, float, list[float]]:
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal errors, issued
        headers = {"Authorization": bearers[w % len(bearers)]}
        while issued < requests and time.perf_counter() < deadline:
            n = issued
            issued += 1
            start_at = (n * per_call) % (len(tokens) - per_call)
            body = {"tokens": tokens[start_at : start_at + per_call]}
            started = time.perf_counter()
            async with session.post(url, json=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for w in range(concurrency):
            group.create_task(worker(w))
    return len(latencies), errors, time.perf_counter() - started, latencies


async def main_async(args: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="resolve-bench-") as tmp_name:
        tmp = Path(tmp_name)
        keys = _write_keys(tmp)
        (tmp / "policy.yaml").write_text(POLICY, encoding="utf-8")
        tokens = await _make_tokens(tmp / "data", 2000)
        agent_port, admin_port = _free_port(), _free_port()
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        command = [
            sys.executable, *profile, "-m", "redactor", "serve", "--dev",
            "--data-dir", str(tmp / "data"), "--upstream", "http://127.0.0.1:9",
            "--listen", f"127.0.0.1:{_free_port()}", "--admin-listen", f"127.0.0.1:{admin_port}",
            "--agent-listen", f"127.0.0.1:{agent_port}", "--jwks", str(tmp / "jwks.json"),
            "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE,
            "--policy", str(tmp / "policy.yaml"), "--audit-log", str(tmp / "audit.jsonl"),
            "--workers", str(args.workers),
        ]  # fmt: skip
        results: list[Result] = []
        with (tmp / "server.log").open("wb") as server_log:
            proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
                command, stdout=server_log, stderr=server_log, cwd=_ROOT, env=dict(os.environ)
            )
            try:
                connector = aiohttp.TCPConnector(limit=max(args.concurrency))
                async with aiohttp.ClientSession(connector=connector) as session:
                    await _wait_ready(session, f"http://127.0.0.1:{admin_port}/healthz", proc)
                    url = f"http://127.0.0.1:{agent_port}/v1/resolve"
                    for alg in ("RS256", "ES256"):
                        kid, key = keys[alg]
                        bearers = [_bearer(alg, kid, key, f"agent-{i}") for i in range(8)]
                        for per_call, conc in itertools.product((1, 20), args.concurrency):
                            await _run(session, url, bearers, tokens, per_call, conc, 300, 5)
                            calls, errors, elapsed, lat = await _run(
                                session, url, bearers, tokens, per_call,
                                conc, args.requests, args.seconds,
                            )  # fmt: skip
                            q = statistics.quantiles(lat, n=100, method="inclusive")
                            result = Result(
                                alg, per_call, conc, round(elapsed, 2), calls, errors,
                                round(calls / elapsed, 1), round(calls * per_call / elapsed, 1),
                                round(q[49] * 1000, 3), round(q[98] * 1000, 3),
                            )  # fmt: skip
                            print(
                                f"{alg} tokens/call={per_call:<3} c={conc:<3} "
                                f"{result.calls_per_s:>8.0f} call/s {result.tokens_per_s:>8.0f} tok/s "
                                f"p50={result.p50_ms:6.2f} ms p99={result.p99_ms:6.2f} ms "
                                f"errors={errors}",
                                flush=True,
                            )
                            results.append(result)
            finally:
                # SIGINT: the server stops cleanly (and cProfile, when on, writes its file).
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000, help="per scenario")
    parser.add_argument("--seconds", type=float, default=10.0, help="time cap per scenario")
    parser.add_argument(
        "--concurrency",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 16],
        help="comma-separated worker counts (default 1,16)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="server processes (redactor serve --workers)"
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the server into FILE")
    parser.add_argument("--no-write", action="store_true", help="do not write results/resolve.json")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    if args.no_write:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "resolve",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "setup": "redactor serve subprocess (SQLite vault, audit file, info logs to file); "
                "aiohttp client in this process; masked level",
                "server_workers": args.workers,
                "targets": TARGETS,
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {RESULTS.relative_to(_ROOT)}")


if __name__ == "__main__":
    main()
