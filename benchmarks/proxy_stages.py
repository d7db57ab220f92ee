"""CPU per message for each stage of the proxy, in-process, on this tree and on another revision.

`proxy.py` gives the whole: CPU per request of the server against a bare aiohttp proxy. This
script splits redactor's part into the stages the issue-14 profile named, on the same three
bodies (`chat`, `chat-card`, `thread`), each stage timed alone with `time.process_time()` (CPU
of every thread of this process, so the vault's SQLite thread counts):

- `request parts`: the URL path, query and header values read as scanned parts (the headers
  `wrk` sends);
- `pipeline`: `Pipeline.redact` on the body and those parts: parse, detect, one vault call
  (SQLite, `synchronous=FULL`, every card new), rewrite;
- `audit`: the message's two records (scanned or redacted, then delivered) through the sink;

Each stage runs 16 messages at a time on one event loop, as 16 connections would, so group
commit in the vault and the audit sink works as it does under load. Figures only, never a value.

    python benchmarks/proxy_stages.py                  # this tree; ~30 s
    python benchmarks/proxy_stages.py --rev 5372160    # and that revision, side by side; ~1 min

The revision is checked out with `git worktree` into a temporary directory and measured by this
same script in a subprocess whose `redactor` and `vault` come from it. Results go to
`benchmarks/results/proxy_stages.json`.
"""

from __future__ import annotations

import argparse
import asyncio
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
_ROOT = _HERE.parent
RESULTS = _HERE / "results" / "proxy_stages.json"
BODIES = ("chat", "chat-card", "thread")
CONCURRENCY = 16
# What wrk sends besides Host and Content-Length (which the proxy drops before scanning).
HEADERS = [("Content-Type", "application/json")]
AUDIT_KEY = bytes(range(32))


def _bodies(kind: str, count: int) -> list[bytes]:
    # benchmarks/proxy.py's bodies, loaded by path: under --tree, `benchmarks` is not the
    # package of the tree being measured.
    import importlib.util

    spec = importlib.util.spec_from_file_location("_proxy_bench", _HERE / "proxy.py")
    if spec is None or spec.loader is None:
        raise ImportError("benchmarks/proxy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["_proxy_bench"] = module
    spec.loader.exec_module(module)
    return list(module.make_bodies(kind, count, 7))


async def _in_waves(messages: int, step: Any) -> float:
    """CPU seconds per message of `step(i)` run CONCURRENCY at a time."""
    started = time.process_time()
    for base in range(0, messages, CONCURRENCY):
        await asyncio.gather(*(step(i) for i in range(base, min(base + CONCURRENCY, messages))))
    return (time.process_time() - started) / messages


def _configure_logging() -> None:
    # As `redactor serve` does (JSON lines at info, to stderr); an older tree's
    # configure_logging may not know `cache`.
    from redactor.ops.logconfig import configure_logging

    try:
        configure_logging(level="info", cache=True)  # type: ignore[call-arg]
    except TypeError:
        configure_logging(level="info")


async def measure(messages: int, workdir: Path) -> dict[str, dict[str, float]]:
    from redactor.audit import AuditEvent, AuditSink, DeliveryEvent
    from redactor.bodies.http_parts import HeaderValues, UrlPath, UrlQuery
    from redactor.resources import open_resources
    from redactor.settings import Overrides, load_settings

    settings = load_settings(
        Overrides(
            upstream="http://127.0.0.1:9",
            data_dir=str(workdir / "data"),
            dev=True,
            tenant="bench",
            audit_log=str(workdir / "audit-resources.jsonl"),
        ),
        {},
    )
    route = settings.routes[0]
    results: dict[str, dict[str, float]] = {}
    async with open_resources(settings) as res:
        pipeline = res.ingress.pipeline_for(route)
        sink = AuditSink(workdir / "audit.jsonl", AUDIT_KEY)
        await sink.open()
        for kind in BODIES:
            bodies = _bodies(kind, messages)
            warm = min(200, max(1, len(bodies) // 4))

            def parts() -> tuple[Any, ...]:
                return (
                    UrlPath("/hook"),
                    UrlQuery(""),
                    HeaderValues(HEADERS, route.unscanned_headers),
                )

            async def parts_step(_i: int) -> None:
                parts()

            async def pipeline_step(i: int, bodies: list[bytes] = bodies) -> None:
                await pipeline.redact(
                    bodies[i % len(bodies)],
                    content_type="application/json",
                    content_encoding=None,
                    tenant=route.tenant,
                    limits=route.limits,
                    extras=parts(),
                )

            async def audit_step(i: int, kind: str = kind) -> None:
                stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
                request_id = f"{i:032x}"
                counts = {"CREDIT_CARD": 1} if kind == "chat-card" else {}
                tokens = ("tok_v1_card_0123456789abcdef_1111",) if counts else ()
                event = "message_redacted" if counts else "message_scanned"
                await sink.write(
                    AuditEvent(event, stamp, request_id, route.name, route.tenant, counts, tokens)
                )
                await sink.write(
                    DeliveryEvent(
                        "message_delivered", stamp, request_id, route.name, route.tenant,
                        "forwarded", 200, None,
                    )
                )  # fmt: skip

            # Warm-up (caches, the vault's data key), then the measured runs: the card bodies
            # of the warm-up are not reused, so every measured card is a new vault row.
            await _in_waves(warm, pipeline_step)
            timed = bodies[warm:] if kind == "chat-card" else bodies

            async def timed_pipeline(i: int, timed: list[bytes] = timed) -> None:
                await pipeline_step(i % len(timed), timed)

            stage = {
                "request_parts_us": await _in_waves(messages, parts_step) * 1e6,
                "pipeline_us": await _in_waves(len(timed), timed_pipeline) * 1e6,
                "audit_us": await _in_waves(messages, audit_step) * 1e6,
            }
            results[kind] = {k: round(v, 1) for k, v in stage.items()}
        await sink.close()
    return results


def _run_tree(tree: Path, messages: int) -> dict[str, dict[str, float]]:
    """This script's measure() with `redactor` and `vault` imported from `tree`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env["PYTHONPATH"] = str(tree)
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure-only", "--messages", str(messages)],
        cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=900,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _worktree(rev: str, into: Path) -> Path:
    path = into / "rev"
    subprocess.run(
        ["git", "-C", str(_ROOT), "worktree", "add", "--detach", str(path), rev],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def _table(columns: dict[str, dict[str, dict[str, float]]]) -> str:
    names = list(columns)
    lines = [f"{'body':<10} {'stage':<15}" + "".join(f"{n:>14}" for n in names)]
    for kind in BODIES:
        for stage in ("request_parts_us", "pipeline_us", "audit_us"):
            row = f"{kind:<10} {stage.removesuffix('_us'):<15}"
            row += "".join(f"{columns[n][kind][stage]:>11.1f} us" for n in names)
            lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="also measure this git revision, side by side")
    parser.add_argument("--messages", type=int, default=1600)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_only:
        # `vault` is the tree's package, not benchmarks/vault.py beside this script.
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
        # Pinned like the proxy in benchmarks/proxy.py, so figures compare across runs.
        if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
            os.sched_setaffinity(0, {0})
        _configure_logging()
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(asyncio.run(measure(args.messages, Path(tmp)))))
        return 0
    columns: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.rev:
            tree = _worktree(args.rev, Path(tmp))
            try:
                columns[args.rev] = _run_tree(tree, args.messages)
            finally:
                subprocess.run(
                    ["git", "-C", str(_ROOT), "worktree", "remove", "--force", str(tree)],
                    check=False, capture_output=True,
                )  # fmt: skip
        columns["this tree"] = _run_tree(_ROOT, args.messages)
    print(_table(columns))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        commit = subprocess.run(
            ["git", "-C", str(_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        RESULTS.write_text(
            json.dumps(
                {
                    "commit": commit,
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "messages": args.messages,
                    "concurrency": CONCURRENCY,
                    "cpu_us_per_message": columns,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
