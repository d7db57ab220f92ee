"""The outbox load benchmark runs end to end at its smallest settings and reports every figure."""

from __future__ import annotations

from benchmarks.outbox_load import Config, run_benchmark


async def test_outbox_load_benchmark_reports_cost_latency_and_fault_figures() -> None:
    cfg = Config(
        messages=20,
        latency_messages=10,
        rate=20.0,
        fault_messages=24,
        backends=("sqlite",),
        fault_backend="sqlite",
        faults=("error",),
        modes=("queued",),
        parts=("cost", "latency", "faults"),
    )
    result = await run_benchmark(cfg, log=lambda _line: None)

    assert {(r["backend"], r["mode"]) for r in result["cost"]} == {
        ("sqlite", "sync"),
        ("sqlite", "queued"),
    }
    assert all(r["cpu_ms_per_message"] > 0 for r in result["cost"])
    assert result["target"]["queued_cpu_ratio"]["sqlite"] > 0
    queued = next(r for r in result["latency"] if r["mode"] == "queued")
    assert queued["delivered"] == 10
    assert queued["delivery_p99_ms"] >= queued["delivery_p50_ms"] > 0
    assert result["totals"] == {
        "messages_pushed": 24,
        "faults_injected": 1,
        "values_leaked": 0,
        "accepted_lost": 0,
        "duplicates_before_dedupe": 0,
        "duplicates_after_dedupe": 0,
        "sync_error_answers": 0,
        "problems": 0,
    }
