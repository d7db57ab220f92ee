"""The proxy benchmark runs end to end at its smallest settings and reports every figure."""

from __future__ import annotations

import pytest

from benchmarks.proxy_backends import Config, run_benchmark

ROW_KEYS = {
    "proxy",
    "scenario",
    "rps",
    "p50_ms",
    "p99_ms",
    "errors",
    "peak_rss_mib",
    "cpu_ms_per_request",
    "added_p50_ms",
    "added_p99_ms",
    "throughput_ratio",
    "light_p99_ms",
    "light_added_p99_ms",
    "at_rate_rps",
    "at_rate_p99_ms",
    "at_rate_added_p99_ms",
    "audit_ok",
}


@pytest.mark.postgres
async def test_proxy_benchmark_reports_every_figure_for_both_vaults() -> None:
    cfg = Config(
        concurrency=2,
        seconds=0.3,
        warmup_s=0.1,
        max_requests=40,
        rate_seconds=0.2,
        rate_fractions=(0.3,),
        backends=("sqlite", "postgres"),
        scenarios=("one",),
        repeats=1,
    )
    result = await run_benchmark(cfg, log=lambda _line: None)

    assert {"machine", "config", "targets", "best", "spread", "runs"} <= result.keys()
    rows = {(r["proxy"], r["scenario"]): r for r in result["best"]["rows"]}
    assert set(rows) == {
        ("direct", "none"),
        ("bare", "none"),
        ("redactor", "sqlite/one"),
        ("redactor", "postgres/one"),
    }
    for row in rows.values():
        assert row.keys() >= ROW_KEYS
    for backend in ("sqlite", "postgres"):
        row = rows[("redactor", f"{backend}/one")]
        assert row["rps"] > 0
        assert row["peak_rss_mib"] > 0
        # The proxy audited every message with the one value it held.
        assert row["audit_ok"] is True
    assert result["best"]["rate_search"]["steps"]
    assert set(result["best"]["targets"]["figures"]) == {
        "sqlite_throughput_ratio_one_value",
        "sqlite_added_p99_ms_at_bare_p99_10ms",
        "postgres_throughput_ratio_one_value",
        "postgres_added_p99_ms_at_bare_p99_10ms",
    }
