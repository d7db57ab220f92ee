"""CPU per message of redaction and of the egress verifier, in-process, at several trees.

`proxy_ab.py` gives the whole request under load; this splits out the two steps issue 18 made
heavier: `Pipeline.redact` (parse, detect, vault, rewrite, with the request parts `wrk` sends)
and `Pipeline.verify` on what redaction returned (absent in trees before the verifier: 0). Each
tree runs in a subprocess with its own `redactor` and `vault` first on the path, pinned to one
CPU, best of `--rounds` passes of `time.process_time()` over the bodies of `proxy.py`; the trees
take turns, `--repeat` times, and the best figure of each is kept.

    python benchmarks/redact_verify_ab.py --tree base=/tmp/base --tree main=. [--out FILE]

Figures only, never a value.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
BODIES = ("chat", "chat-card", "thread")
HEADERS = [("Content-Type", "application/json")]


def _bodies(kind: str, count: int) -> list[bytes]:
    # proxy.py's bodies, loaded by path; it puts this checkout first on sys.path, which must
    # not decide which tree's `redactor` is measured, so the path is restored after.
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location("_proxy_bench", _HERE / "proxy.py")
    if spec is None or spec.loader is None:
        raise ImportError("benchmarks/proxy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["_proxy_bench"] = module
    spec.loader.exec_module(module)
    sys.path[:] = saved
    return list(module.make_bodies(kind, count, 7))


async def measure(kinds: list[str], count: int, rounds: int) -> dict[str, dict[str, float]]:
    bodies = {kind: _bodies(kind, count + (count if kind == "chat-card" else 0)) for kind in kinds}
    from redactor.bodies.http_parts import HeaderValues, UrlPath, UrlQuery
    from redactor.ops.logconfig import configure_logging
    from redactor.resources import open_resources
    from redactor.settings import Overrides, load_settings

    try:
        configure_logging(level="warning", cache=True)  # type: ignore[call-arg]
    except TypeError:
        configure_logging(level="warning")
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = load_settings(
            Overrides(
                upstream="http://127.0.0.1:9", data_dir=str(work / "data"), dev=True,
                tenant="bench", audit_log=str(work / "audit.jsonl"),
            ),
            {},
        )  # fmt: skip
        route = settings.routes[0]
        async with open_resources(settings) as res:
            holder = getattr(res, "ingress", res)
            pipeline = holder.pipeline_for(route)
            verifies = hasattr(pipeline, "verify")
            for kind in kinds:
                todo = bodies[kind]

                async def redact(body: bytes) -> Any:
                    return await pipeline.redact(
                        body, content_type="application/json", content_encoding=None,
                        tenant=route.tenant, limits=route.limits,
                        extras=(
                            UrlPath("/hook"), UrlQuery(""),
                            HeaderValues(HEADERS, route.unscanned_headers),
                        ),
                    )  # fmt: skip

                async def verify(redaction: Any) -> None:
                    await pipeline.verify(
                        redaction.body, answer=False, content_type="application/json",
                        content_encoding=None, url="/hook", headers=HEADERS,
                        unscanned_headers=route.unscanned_headers, seen=redaction.seen,
                    )  # fmt: skip

                for body in todo[:50]:
                    await redact(body)
                best_r = best_v = float("inf")
                for r in range(rounds):
                    # Cards: a new set of bodies each round, so every card is a new vault row.
                    batch = todo[count:] if kind == "chat-card" and r % 2 else todo[:count]
                    started = time.process_time()
                    done = [await redact(body) for body in batch]
                    best_r = min(best_r, (time.process_time() - started) / len(batch))
                    if verifies:
                        started = time.process_time()
                        for redaction in done:
                            await verify(redaction)
                        best_v = min(best_v, (time.process_time() - started) / len(batch))
                out[kind] = {
                    "redact_us": round(best_r * 1e6, 1),
                    "verify_us": round(best_v * 1e6, 1) if verifies else 0.0,
                }
    return out


def _run_tree(tree: Path, kinds: list[str], count: int, rounds: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env["PYTHONPATH"] = str(tree)
    argv = [
        "taskset", "-c", "1", sys.executable, str(Path(__file__).resolve()), "--measure-only",
        "--bodies", ",".join(kinds), "--messages", str(count), "--rounds", str(rounds),
    ]  # fmt: skip
    out = subprocess.run(
        argv, cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=900
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append", default=[], help="NAME=PATH of a checkout")
    p.add_argument("--bodies", default=",".join(BODIES))
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--out", type=Path)
    p.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    kinds = args.bodies.split(",")
    if args.measure_only:
        # `vault` is the tree's package, not benchmarks/vault.py beside this script.
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
        print(json.dumps(asyncio.run(measure(kinds, args.messages, args.rounds))))
        return 0
    trees = {name: Path(path).resolve() for name, _, path in (t.partition("=") for t in args.tree)}
    best: dict[str, dict[str, dict[str, float]]] = {}
    for _ in range(args.repeat):
        for name, tree in trees.items():
            got = _run_tree(tree, kinds, args.messages, args.rounds)
            for kind, row in got.items():
                keep = best.setdefault(name, {}).setdefault(kind, dict(row))
                for key, value in row.items():
                    keep[key] = min(keep[key], value)
    print(f"{'tree':<16}{'body':<11}{'redact':>10}{'verify':>10}{'sum':>10}")
    for name, rows in best.items():
        for kind, row in rows.items():
            total = row["redact_us"] + row["verify_us"]
            print(f"{name:<16}{kind:<11}{row['redact_us']:>7.1f} us{row['verify_us']:>7.1f} us"
                  f"{total:>7.1f} us")  # fmt: skip
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "load_average": list(os.getloadavg()),
                    "trees": {name: str(path) for name, path in trees.items()},
                    "messages": args.messages,
                    "rounds": args.rounds,
                    "repeat": args.repeat,
                    "cpu_us_per_message": best,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
