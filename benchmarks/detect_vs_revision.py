"""Detection speed of this tree against another git revision, in one process, interleaved.

`detect.py` compares redactor with stock presidio; on a shared machine its absolute figures
move with the load. This script answers a narrower question with less noise: how much faster
or slower is `Detector.find` here than at REV, on the same corpora (mix, dev, clean)? It copies
REV's `redactor` package into a temporary directory under another name, builds both
detectors, and times them in alternating passes (best pass each), so a burst of load hits both.

    python benchmarks/detect_vs_revision.py 2f0db72            # ~1 minute
    python benchmarks/detect_vs_revision.py HEAD~3 --passes 15

Prints figures only (never a value from the corpora) and writes
benchmarks/results/detect_vs_revision.json.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.support_mix import generate_clean, generate_mix  # noqa: E402
from redactor.detection import Detector  # noqa: E402

DEV_SET = ROOT / "tests" / "data" / "eval" / "dev.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "detect_vs_revision.json"
# The modules detection imports, renamed in the copy so both trees load side by side.
_RENAMED = re.compile(
    r"\bredactor(?=\.(?:detection|digits|errors)\b)|(?<=from )redactor(?= import)"
)


def _load_revision(rev: str, into: Path) -> type:
    """REV's Detector class, from a renamed copy of its `redactor` package."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "redactor"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "redactor_rev"
    (into / "redactor").rename(package)
    for path in package.rglob("*.py"):
        path.write_text(_RENAMED.sub("redactor_rev", path.read_text()))
    sys.path.insert(0, str(into))
    from redactor_rev.detection import Detector as RevDetector  # type: ignore[import-not-found]

    return RevDetector  # type: ignore[no-any-return]


def _race(a: Callable[[], object], b: Callable[[], object], passes: int) -> tuple[float, float]:
    best_a = best_b = float("inf")
    for i in range(passes):
        gc.disable()
        try:
            for which, fn in ((0, a), (1, b)) if i % 2 else ((1, b), (0, a)):
                t0 = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - t0
                if which == 0:
                    best_a = min(best_a, elapsed)
                else:
                    best_b = min(best_b, elapsed)
        finally:
            gc.enable()
    return best_a, best_b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="git revision to compare with, e.g. main or a commit")
    ap.add_argument("--passes", type=int, default=30, help="timed passes per detector")
    ap.add_argument("--messages", type=int, default=3000, help="messages in mix and clean")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    corpora = {
        "mix": [m.text for m in generate_mix(7, args.messages)],
        "dev": [
            json.loads(line)["text"]
            for line in DEV_SET.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ],
        "clean": [m.text for m in generate_clean(8, args.messages)],
    }
    with tempfile.TemporaryDirectory() as tmp:
        rev_detector = _load_revision(args.rev, Path(tmp))()
        here = Detector()
        rows = {}
        print(f"{'corpus':8}{'rev ms':>10}{'here ms':>10}{'here/rev':>10}")
        for name, texts in corpora.items():
            for t in texts:  # warm both
                rev_detector.find(t)
                here.find(t)
            rev_s, here_s = _race(
                lambda texts=texts: [rev_detector.find(t) for t in texts],
                lambda texts=texts: [here.find(t) for t in texts],
                args.passes,
            )
            rows[name] = {"rev_ms": rev_s * 1e3, "here_ms": here_s * 1e3, "ratio": here_s / rev_s}
            print(f"{name:8}{rev_s * 1e3:10.2f}{here_s * 1e3:10.2f}{here_s / rev_s:10.3f}")
    if not args.no_write:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        doc = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "rev": args.rev,
            "here": head,
            "passes": args.passes,
            "corpora": rows,
        }
        RESULTS.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
