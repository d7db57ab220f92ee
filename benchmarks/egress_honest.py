"""CPU per message of the egress verifier on honest variants of the 20 KB thread, at several trees.

`egress.py` and `redact_verify_ab.py` time the three standard bodies, which hold no digit
stretch and no character outside ASCII. Honest mail often holds both. Each variant below is
the thread of `proxy.py` changed in one way a real thread is, holding no value:

- `thread`: as it is;
- `curly-utf8`: typographic apostrophes and dashes (`I’ve`, `Hello —`), sent as UTF-8;
- `curly-escaped`: the same sent as `\\u2019` escapes (Python's `json.dumps` default);
- `phone`: one phone number, `(415) 555-0100`;
- `order9`: one nine-digit order number, `order 123456789`;
- `html`: the thread's comment as an HTML mail (a paragraph a line, `>` quote marks as
  `&gt;`), sent as `text/html` (about 32 KB).

`verify_request` is called as the proxy calls it (body, URL, the JSON content type header).
Each tree runs in a subprocess with its own `redactor` first on the path, pinned to one CPU,
best of `--rounds` passes of `time.process_time()`; the trees take turns `--repeat` times.

    python benchmarks/egress_honest.py --tree main=/work/main --tree branch=. [--out FILE]

Figures only, never a value.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
VARIANTS = ("thread", "curly-utf8", "curly-escaped", "phone", "order9", "html")


def _threads(count: int) -> list[bytes]:
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location("_proxy_bench", _HERE / "proxy.py")
    if spec is None or spec.loader is None:
        raise ImportError("benchmarks/proxy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["_proxy_bench"] = module
    spec.loader.exec_module(module)
    sys.path[:] = saved
    return list(module.make_bodies("thread", count, 7))


def _curly(body: bytes, ensure_ascii: bool) -> bytes:
    doc = json.loads(body)
    comment = doc["event"]["comment"]
    comment["body"] = (
        comment["body"].replace("I have", "I\u2019ve").replace("Hello", "Hello \u2014")
    )
    return json.dumps(doc, ensure_ascii=ensure_ascii).encode()


def variant(name: str, body: bytes) -> bytes:
    if name == "curly-utf8":
        return _curly(body, False)
    if name == "curly-escaped":
        return _curly(body, True)
    if name == "phone":
        return body.replace(b"Kind regards,", b"Call me at (415) 555-0100. Kind regards,", 1)
    if name == "order9":
        return body.replace(b"order A-", b"order 123456789 A-", 1)
    if name == "html":
        lines = json.loads(body)["event"]["comment"]["body"].split("\n")
        paragraphs = "".join(f"<p>{html.escape(line)}</p>\n" for line in lines)
        return f"<html><body>{paragraphs}</body></html>".encode()
    return body


def measure(names: list[str], count: int, rounds: int) -> dict[str, float]:
    from redactor.egress import verify_request

    threads = _threads(count)
    out: dict[str, float] = {}
    for name in names:
        bodies = [variant(name, body) for body in threads]
        ctype = "text/html" if name == "html" else "application/json"
        headers = [("Content-Type", ctype)]
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            for body in bodies:
                verify_request(
                    body, content_type=ctype, content_encoding=None, url="/hook", headers=headers
                )
            best = min(best, (time.process_time() - started) / len(bodies))
        out[name] = round(best * 1e6, 1)
    return out


def _run_tree(tree: Path, names: list[str], count: int, rounds: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env["PYTHONPATH"] = str(tree)
    argv = [
        "taskset", "-c", "1", sys.executable, str(Path(__file__).resolve()), "--measure-only",
        "--variants", ",".join(names), "--messages", str(count), "--rounds", str(rounds),
    ]  # fmt: skip
    done = subprocess.run(
        argv, cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=900
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", action="append", default=[], help="NAME=PATH of a checkout")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--messages", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--out", type=Path)
    p.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    names = args.variants.split(",")
    if args.measure_only:
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
        print(json.dumps(measure(names, args.messages, args.rounds)))
        return 0
    trees = {name: Path(path).resolve() for name, _, path in (t.partition("=") for t in args.tree)}
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        for name, tree in trees.items():
            for kind, value in _run_tree(tree, names, args.messages, args.rounds).items():
                row = best.setdefault(name, {})
                row[kind] = min(row.get(kind, value), value)
    print(f"{'variant':<15}" + "".join(f"{name:>14}" for name in trees))
    for kind in names:
        print(f"{kind:<15}" + "".join(f"{best[name][kind]:>11.1f} us" for name in trees))
    if args.out:
        record: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average": list(os.getloadavg()),
            "trees": {name: str(path) for name, path in trees.items()},
            "messages": args.messages,
            "rounds": args.rounds,
            "repeat": args.repeat,
            "verify_us_per_message": best,
        }
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
