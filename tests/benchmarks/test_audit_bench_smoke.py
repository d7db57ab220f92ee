"""The audit benchmark's sink and verify parts run at their smallest settings."""

from __future__ import annotations

from benchmarks.audit import bench_console, bench_fsync_sink, bench_sink, bench_verify


def test_sink_and_verify_benchmarks_report_their_figures() -> None:
    sink = bench_sink(300, 1)
    assert sink["chained_records_per_s"] > 0
    assert sink["unchained_records_per_s"] > 0
    verify = bench_verify(1)
    assert verify["records"] > 0
    assert verify["verify_mb_per_s"] > 0


def test_the_fsync_benchmark_reports_each_policy() -> None:
    figures = bench_fsync_sink(300, 1)
    assert set(figures["records_per_s"]) == {"batch", "interval", "never"}
    assert all(rate > 0 for rate in figures["records_per_s"].values())


def test_the_console_benchmark_reports_index_summary_and_proxy_figures() -> None:
    figures = bench_console(3000, 0.5, 1, 4)
    assert figures["index_build_records_per_s"] > 0
    assert figures["summary_30d_reveals"] > 0
    proxy = figures["proxy"]
    assert proxy["console_requests"] > 0
    assert proxy["p99_ms_quiet"] > 0
    assert proxy["p99_ms_with_console"] > 0
