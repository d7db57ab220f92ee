"""A clone runs its tests, benchmarks and documented commands with nothing beside it.

Earlier tests read `../shared`, and a user's fresh clone failed 19 of them (issue 19). The
data they need lives in `tests/data/` now; this test fails when anything reaches outside again.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.factories import DATA, DEV_SET, PAYLOAD_SHAPES

ROOT = Path(__file__).resolve().parents[1]
# A path out of the repository into a sibling folder: `../shared`, `.parent / "shared"`,
# `parents[2].parent`, or an absolute /work/ path.
OUTSIDE = re.compile(
    r"\.\./shared|/work/shared|parent\s*/\s*[\"']shared[\"']|parents\[\d\]\.parent\b"
)


def _checked_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / ".ci" / "run", ROOT / "Dockerfile"]
    for folder in ("tests", "benchmarks", "redactor", "vault", "policies", "deploy"):
        files += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and p.suffix in {".py", ".md", ".yaml", ".yml", ".json", ".sh", ""}
            and "data" not in p.relative_to(ROOT).parts[:2]
        ]
    return [p for p in files if p.exists() and p != Path(__file__).resolve()]


def test_nothing_reads_a_folder_beside_the_repository() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in _checked_files()
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_the_copied_data_is_in_the_repository() -> None:
    assert DATA.is_relative_to(ROOT)
    assert sum(1 for _ in DEV_SET.open(encoding="utf-8")) > 100
    shapes = {p.name for p in PAYLOAD_SHAPES.iterdir()}
    assert {"zendesk_webhook_ticket_comment_added.json", "rfc5322_multipart_qp_base64.eml"} <= shapes


def test_the_guard_recognises_each_way_out() -> None:
    for line in (
        'SHARED = Path(__file__).parents[2].parent / "shared"',
        "python ../shared/tools/score_detection.py",
        "DEV = ROOT.parent / 'shared' / 'eval'",
        "/work/shared/eval/dev.jsonl",
    ):
        assert OUTSIDE.search(line), line
    assert not OUTSIDE.search("Fixtures shared across the tree.")
