"""The hostile-body and per-stage benchmarks still run against this tree (smallest settings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_hostile_case_runs_against_a_real_server_and_is_refused() -> None:
    out = subprocess.run(
        [sys.executable, "benchmarks/hostile.py", "--only", "gzip_bomb", "--repeats", "1", "--no-write"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    line = next(line for line in out.stdout.splitlines() if line.startswith("gzip_bomb"))
    assert "413 body_too_large" in line
    assert line.rstrip().endswith("ok")


def test_the_stage_benchmark_reports_every_stage_of_every_body() -> None:
    out = subprocess.run(
        [sys.executable, "benchmarks/proxy_stages.py", "--measure-only", "--messages", "48"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    stages = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(stages) == {"chat", "chat-card", "thread"}
    for figures in stages.values():
        assert set(figures) == {"request_parts_us", "pipeline_us", "audit_us"}
        assert all(value > 0 for value in figures.values())


def test_the_egress_benchmark_reports_the_verifier_for_every_body() -> None:
    out = subprocess.run(
        [sys.executable, "benchmarks/egress.py", "--messages", "30", "--no-write"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert {"chat", "chat-card", "thread"} <= set(rows)
    assert all("%" in rows[kind] for kind in ("chat", "chat-card", "thread"))
