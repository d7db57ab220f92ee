"""The worst CPU an inline body costs: hostile bodies of at most 16 KiB, in-process.

Bodies of 16 KiB or less are redacted and verified on the event loop, with no time budget
(larger ones go to the scan worker, which has one). So no such body may take long. This
script builds hostile shapes filled up to 16 KiB (unterminated tags, attributes, references,
base64-looking lines, digit pieces side by side, escapes, separators, `data:` and `;`
markers) and a seeded random mix of them, runs each the way the proxy does inline
(`Pipeline.redact`, then `Pipeline.verify` on what redaction returned, the SQLite vault of a
dev setup) and reports `time.process_time()` per body, best of 3, and the worst of all.
A body the proxy refuses (413, 422, ...) counts with the CPU it took to refuse it.

    python benchmarks/inline_hostile.py             # ~1 min; benchmarks/results/inline_hostile.json
    python benchmarks/inline_hostile.py --mixes 50  # fewer random mixes

Pinned to one CPU like the other in-process figures. Figures only, never a value.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
RESULTS = _HERE / "results" / "inline_hostile.json"
INLINE_MAX = 16 * 1024
ROUNDS = 3

HTML = "text/html"
JSON = "application/json"
TEXT = "text/plain"
FORM = "application/x-www-form-urlencoded"


def _fill(unit: str, head: str = "", tail: str = "") -> str:
    room = INLINE_MAX - len(head.encode()) - len(tail.encode())
    return head + unit * max(0, room // max(1, len(unit.encode()))) + tail


def _json_list(item: str, key: str = "card") -> str:
    head, tail = '{"' + key + '": [', "1]}"
    return _fill(item + ", ", head, tail)


_B64_LINE = base64.b64encode(b"Thanks for the note, see you at 10:30 on the 4th " * 2).decode()[:60]

SHAPES: dict[str, tuple[str, Callable[[], str]]] = {
    "html unterminated <a": (HTML, lambda: _fill("<a")),
    'html unterminated <b title="': (HTML, lambda: _fill('<b title="')),
    'html one tag of many attributes x="y"': (HTML, lambda: _fill(' x="y"', "<a", ">")),
    "html tags <a <b>": (HTML, lambda: _fill("<a <b>")),
    "html inline tags <b>1</b>": (HTML, lambda: _fill("<b>1</b>", "<p>", "</p>")),
    "html references &#52;": (HTML, lambda: _fill("&#52;", "<p>", "</p>")),
    "html cells of digits": (HTML, lambda: _fill("<td>4111</td>", "<table><tr>", "</tr></table>")),
    "html hidden spans": (HTML, lambda: _fill('<span style="display:none">1</span>2')),
    "html comments parting digits": (HTML, lambda: _fill("41<!-- x -->", "<p>", "</p>")),
    "html base64-like lines": (HTML, lambda: _fill(_B64_LINE + "\n", "<p>file</p><pre>", "</pre>")),
    "html short base64-like lines": (HTML, lambda: _fill("Abcd\n", "<pre>", "</pre>")),
    "html data: markers": (HTML, lambda: _fill("data:;base64,", "<p>", "</p>")),
    "json integer pieces unnamed": (JSON, lambda: _json_list("4111", "items")),
    "json integer pieces named": (JSON, lambda: _json_list("4111")),
    "json string pieces named": (JSON, lambda: _json_list('"4111"')),
    "json long pieces named": (JSON, lambda: _json_list('"41111111111"')),
    "json members cc1..": (
        JSON,
        lambda: "{" + ", ".join(f'"cc{i}": {4111 + i % 7}' for i in range(1500))[:16000] + "}",
    ),
    "json unicode escapes": (JSON, lambda: _fill("\\u0034", '{"n": "', '"}')),
    "json base64 lines in a string": (
        JSON,
        lambda: _fill(_B64_LINE + "\\n", '{"html": "<p>file</p><pre>', '</pre>"}'),
    ),
    "json digits and separators": (JSON, lambda: _fill("4111 ", '{"n": "', '"}')),
    "json semicolons and colons": (JSON, lambda: _fill("a:;", '{"n": "', '"}')),
    "text digits and separators": (TEXT, lambda: _fill("4111-")),
    "text one digit per line": (TEXT, lambda: _fill("4\n")),
    "form pieces cc": (
        FORM,
        lambda: "&".join(f"cc{i}={4111 + i % 9}" for i in range(1800))[:16000],
    ),
}

_MIX_UNITS = [
    "<a", '<b title="', "<b>", "</b>", "<div>", "<!--", "&#52;", "4111", " ", "\n", "-",
    "Abcd", "\\u0034", "data:", ";base64,", "%34", '"', ",", ":", "=", "<td>", "SSN",
]  # fmt: skip


def _mixes(count: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        parts: list[str] = []
        size = 0
        while size < INLINE_MAX - 16:
            unit = rng.choice(_MIX_UNITS) * rng.choice((1, 1, 2, 8, 64))
            parts.append(unit)
            size += len(unit)
        text = "".join(parts)[: INLINE_MAX - 16]
        kind = rng.choice((HTML, TEXT, JSON))
        if kind == JSON:
            text = json.dumps({"n": text})[:INLINE_MAX]
        out.append((f"mix {n}", kind, text))
    return out


async def measure(bodies: list[tuple[str, str, str]], workdir: Path) -> dict[str, dict[str, Any]]:
    from redactor.bodies.http_parts import HeaderValues, UrlPath, UrlQuery
    from redactor.errors import RedactorError
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
    results: dict[str, dict[str, Any]] = {}
    async with open_resources(settings) as res:
        pipeline = res.ingress.pipeline_for(route)

        async def once(body: bytes, content_type: str) -> str:
            headers = [("Content-Type", content_type)]
            try:
                redaction = await pipeline.redact(
                    body,
                    content_type=content_type,
                    content_encoding=None,
                    tenant=route.tenant,
                    limits=route.limits,
                    extras=(
                        UrlPath("/hook"),
                        UrlQuery(""),
                        HeaderValues(headers, route.unscanned_headers),
                    ),
                )
                await pipeline.verify(
                    redaction.body,
                    answer=False,
                    content_type=content_type,
                    content_encoding=None,
                    url="/hook",
                    headers=headers,
                    unscanned_headers=route.unscanned_headers,
                    seen=redaction.seen,
                )
            except RedactorError as exc:
                return type(exc).__name__
            return "forwarded"

        await once(b'{"warm": "up 4111 1111 1111 1111"}', JSON)
        for name, content_type, text in bodies:
            body = text.encode("utf-8", "surrogatepass")[:INLINE_MAX]
            best = float("inf")
            outcome = ""
            for _ in range(ROUNDS):
                started = time.process_time()
                outcome = await once(body, content_type)
                best = min(best, time.process_time() - started)
            results[name] = {
                "content_type": content_type,
                "bytes": len(body),
                "cpu_ms": round(best * 1000, 2),
                "outcome": outcome,
            }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    from redactor.ops.logconfig import configure_logging

    configure_logging(level="error", cache=True)
    bodies = [(name, ctype, make()) for name, (ctype, make) in SHAPES.items()]
    bodies += _mixes(args.mixes, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(measure(bodies, Path(tmp)))
    shapes = {k: v for k, v in figures.items() if not k.startswith("mix ")}
    mixes = [v["cpu_ms"] for k, v in figures.items() if k.startswith("mix ")]
    for name, row in shapes.items():
        print(f"{name:<42}{row['bytes']:>7} B{row['cpu_ms']:>9.2f} ms  {row['outcome']}")
    worst_name = max(figures, key=lambda k: figures[k]["cpu_ms"])
    summary = {
        "worst_shape_ms": max(v["cpu_ms"] for v in shapes.values()),
        "worst_mix_ms": max(mixes) if mixes else None,
        "median_mix_ms": sorted(mixes)[len(mixes) // 2] if mixes else None,
        "worst": worst_name,
    }
    print(json.dumps(summary))
    if not args.no_write:
        commit = subprocess.run(
            ["git", "-C", str(_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        RESULTS.write_text(
            json.dumps(
                {
                    "commit": commit,
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "python": platform.python_version(),
                    "load_avg_at_start": list(os.getloadavg()),
                    "rounds": ROUNDS,
                    "mixes": args.mixes,
                    "seed": args.seed,
                    "summary": summary,
                    "cpu_ms_per_body": figures,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
