"""CPU per message of the egress verifier, in-process, on the three standard bodies.

The verifier (redactor/egress) reads what is about to leave after redaction. This script
redacts each body as the proxy does (`Pipeline.redact` with the request parts `wrk` sends, the
SQLite vault of a dev setup), then times, with `time.process_time()`:

- `pipeline`: `Pipeline.redact` on the body and its parts (for scale);
- `verify`: `Pipeline.verify` on what redaction returned: the body, the URL and the headers,
  with the values redaction weighed, exactly as `proxy.py` calls it (inline: these bodies are
  under the scan-worker threshold).

The share is the verifier's CPU over the whole proxy's CPU per request, taking the proxy's
figure from `benchmarks/results/proxy.json` (`redactor`, measured before the verifier existed)
plus the verifier: `verify / (proxy + verify)`. The target (issue 18) is under 15 %.

    python benchmarks/egress.py                 # ~20 s; table + benchmarks/results/egress.json
    python benchmarks/egress.py --messages 200  # quicker

Pinned to one CPU like the other in-process figures. Figures only, never a value.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
RESULTS = _HERE / "results" / "egress.json"
PROXY_RESULTS = _HERE / "results" / "proxy.json"
BODIES = ("chat", "chat-card", "thread")
HEADERS = [("Content-Type", "application/json")]
ROUNDS = 5


def _bodies(kind: str, count: int) -> list[bytes]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_proxy_bench", _HERE / "proxy.py")
    if spec is None or spec.loader is None:
        raise ImportError("benchmarks/proxy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["_proxy_bench"] = module
    spec.loader.exec_module(module)
    return list(module.make_bodies(kind, count, 7))


async def measure(messages: int, workdir: Path) -> dict[str, dict[str, float]]:
    from redactor.bodies.http_parts import HeaderValues, UrlPath, UrlQuery
    from redactor.resources import open_resources
    from redactor.settings import Overrides, load_settings

    settings = load_settings(
        Overrides(
            upstream="http://127.0.0.1:9",
            data_dir=str(workdir / "data"),
            dev=True,
            tenant="bench",
            audit_log=str(workdir / "audit.jsonl"),
        ),
        {},
    )
    route = settings.routes[0]
    results: dict[str, dict[str, float]] = {}
    async with open_resources(settings) as res:
        pipeline = res.ingress.pipeline_for(route)
        for kind in BODIES:
            bodies = _bodies(kind, messages)

            async def redact(body: bytes) -> Any:
                return await pipeline.redact(
                    body,
                    content_type="application/json",
                    content_encoding=None,
                    tenant=route.tenant,
                    limits=route.limits,
                    extras=(
                        UrlPath("/hook"),
                        UrlQuery(""),
                        HeaderValues(HEADERS, route.unscanned_headers),
                    ),
                )

            # Warm-up: caches, the vault's data key; chat-card's first cards become vault rows.
            for body in bodies[: min(100, len(bodies))]:
                await redact(body)
            started = time.process_time()
            redactions = [await redact(body) for body in bodies]
            pipeline_us = (time.process_time() - started) / len(bodies) * 1e6

            async def verify(redaction: Any) -> None:
                await pipeline.verify(
                    redaction.body,
                    answer=False,
                    content_type="application/json",
                    content_encoding=None,
                    url="/hook",
                    headers=HEADERS,
                    unscanned_headers=route.unscanned_headers,
                    seen=redaction.seen,
                )

            for redaction in redactions[:50]:
                await verify(redaction)
            best = float("inf")
            for _ in range(ROUNDS):
                started = time.process_time()
                for redaction in redactions:
                    await verify(redaction)
                best = min(best, (time.process_time() - started) / len(redactions) * 1e6)
            results[kind] = {"pipeline_us": round(pipeline_us, 1), "verify_us": round(best, 1)}
    return results


def _proxy_cpu_us() -> dict[str, float]:
    try:
        doc = json.loads(PROXY_RESULTS.read_text())
        return {k: v["cpu_ms_per_request"] * 1000 for k, v in doc["results"]["redactor"].items()}
    except (OSError, KeyError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (egress.json)")
    args = parser.parse_args(argv)
    # `vault` is the project's package, not benchmarks/vault.py beside this script.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    from redactor.ops.logconfig import configure_logging

    configure_logging(level="warning", cache=True)
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(measure(args.messages, Path(tmp)))
    proxy = _proxy_cpu_us()
    lines = [f"{'body':<10}{'pipeline':>12}{'verify':>12}{'proxy cpu':>12}{'share':>9}"]
    for kind, row in figures.items():
        if kind in proxy:
            row["proxy_cpu_us"] = round(proxy[kind], 1)
            row["share_pct"] = round(100 * row["verify_us"] / (proxy[kind] + row["verify_us"]), 1)
        lines.append(
            f"{kind:<10}{row['pipeline_us']:>9.1f} us{row['verify_us']:>9.1f} us"
            f"{row.get('proxy_cpu_us', float('nan')):>9.1f} us{row.get('share_pct', float('nan')):>8.1f}%"
        )
    print("\n".join(lines))
    if not args.no_write:
        commit = subprocess.run(
            ["git", "-C", str(_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        args.out.write_text(
            json.dumps(
                {
                    "commit": commit,
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "python": platform.python_version(),
                    "load_avg_at_start": list(os.getloadavg()),
                    "messages": args.messages,
                    "rounds": ROUNDS,
                    "cpu_us_per_message": figures,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
