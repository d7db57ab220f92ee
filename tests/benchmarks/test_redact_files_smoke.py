"""The file-redaction benchmark's export generator and one run of the command stay working."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.redact_files import _prepare_vault, generate_export, run_once


def test_the_export_is_ticket_shaped_and_one_run_reports_its_figures(tmp_path: Path) -> None:
    source = tmp_path / "export.jsonl"
    corpus = generate_export(source, 300_000, seed=3)
    lines = source.read_bytes().splitlines()
    assert len(lines) == corpus["tickets"]
    ticket = json.loads(lines[0])
    assert {"id", "comments", "status"} <= set(ticket)
    assert {"body", "html_body", "author_id"} <= set(ticket["comments"][0])
    figures = run_once(source, tmp_path / "out.jsonl", _prepare_vault(tmp_path), jobs=1)
    assert figures["items"] == corpus["tickets"]
    assert figures["mb_per_s"] > 0
    assert figures["peak_rss_mb"] > 0
