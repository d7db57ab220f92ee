"""/metrics with `--workers N`: one exposition for the whole server, whatever worker answers."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import ClientSession, TCPConnector, web
from prometheus_client.parser import text_string_to_metric_families

from tests.test_workers import _luhn_card

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

# Sent in 8 rounds, a scrape after each: the 8th scrape sees everything.
ROUNDS = 8
PER_ROUND = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _monotonic_names(samples: Samples) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every counter and histogram series (gauges may go down)."""
    return {
        key
        for key in samples
        if key[0].endswith(("_total", "_count", "_sum", "_bucket"))
        and not key[0].endswith("_created")
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the series of `name` whose labels include `labels`."""
    return sum(
        v for (n, lbls), v in samples.items() if n == name and set(labels.items()) <= set(lbls)
    )


@pytest.mark.parametrize("workers", [1, 2, 4])
async def test_every_counter_is_monotonic_and_exact_across_workers(
    workers: int, tmp_path: Path, aiohttp_server
) -> None:
    async def upstream(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", upstream)
    server = await aiohttp_server(app)
    listen, admin = _free_port(), _free_port()
    # The supervisor's metrics directory goes under TMPDIR: checked empty after the stop.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env["TMPDIR"] = str(scratch)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", "serve", "--dev", "--workers", str(workers),
        "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}",
        "--upstream", str(server.make_url("/")), "--data-dir", str(tmp_path),
        "--audit-log", str(tmp_path / "logs" / "audit.jsonl"),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    seen: list[bytes] = []
    scrapes: list[Samples] = []
    cards = 0
    sent = 0
    try:
        async with asyncio.timeout(90):
            while sum(b"redactor_started" in line for line in seen) < workers:
                line = await proc.stderr.readline()
                assert line, b"".join(seen).decode(errors="replace")[-2000:]
                seen.append(line)
        drain = asyncio.create_task(_drain(proc.stderr, seen))
        # One worker counts in its own process; more share a directory the supervisor made.
        made = [p.name.startswith("redactor-metrics-") for p in scratch.iterdir()]
        assert made == ([] if workers == 1 else [True])
        # A new connection for every request and every scrape: the kernel spreads them over
        # the workers, so scrapes are answered by different ones.
        async with ClientSession(connector=TCPConnector(force_close=True)) as session:

            async def send(n: int) -> None:
                text = f"card {_luhn_card(n)}" if n % 2 == 0 else f"order {n} shipped"
                async with session.post(f"http://127.0.0.1:{listen}/t", json={"c": text}) as r:
                    assert r.status == 200

            async def scrape() -> Samples:
                async with session.get(f"http://127.0.0.1:{admin}/metrics") as r:
                    assert r.status == 200
                    return _parse(await r.text())

            for round_ in range(ROUNDS):
                batch = range(round_ * PER_ROUND, (round_ + 1) * PER_ROUND)
                # The scrape runs while the round's requests are in flight (bounded: 6 at once).
                results = await asyncio.gather(scrape(), *(send(n) for n in batch))
                scrapes.append(results[0])
                sent += PER_ROUND
                cards += sum(1 for n in batch if n % 2 == 0)
            scrapes.append(await scrape())
            lines = sum(
                len(p.read_bytes().splitlines()) for p in (tmp_path / "logs").glob("*.jsonl")
            )
            nbytes = sum(p.stat().st_size for p in (tmp_path / "logs").glob("*.jsonl"))
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=60)
    drain.cancel()
    assert proc.returncode == 0, b"".join(seen).decode(errors="replace")[-3000:]
    assert len(scrapes) == ROUNDS + 1

    # Monotonic: no series ever goes down or disappears from one scrape to the next.
    for before, after in itertools.pairwise(scrapes):
        for key in _monotonic_names(before):
            assert key in after, key
            assert after[key] >= before[key], (key, before[key], after[key])

    # Equal to what was sent, summed over every worker.
    last = scrapes[-1]
    assert _value(last, "redactor_requests_total", route="default", status="200") == sent
    assert _value(last, "redactor_requests_total") == sent
    assert _value(last, "redactor_redaction_seconds_count") == sent
    assert _value(last, "redactor_findings_total", entity="CREDIT_CARD") == cards
    assert _value(last, "redactor_upstream_calls_total", side="ingress", status_class="2xx") == sent
    assert _value(last, "redactor_upstream_seconds_count", side="ingress") == sent
    assert _value(last, "redactor_vault_operations_total", kind="tokenize", outcome="ok") == cards
    assert _value(last, "redactor_vault_operation_seconds_count", kind="tokenize") == cards
    # Every audit line of every worker's file, and its bytes, counted once.
    assert _value(last, "redactor_audit_records_total") == lines
    assert _value(last, "redactor_audit_bytes_total") == nbytes
    assert _value(last, "redactor_audit_write_failures_total") == 0
    # The audit sink's health: one series whatever the number of workers (the lowest of the
    # live ones), and its counters at 0, each family exported once.
    assert [k for k in last if k[0] == "redactor_audit_writable"] == [
        ("redactor_audit_writable", ())
    ]
    assert _value(last, "redactor_audit_writable") == 1
    assert _value(last, "redactor_audit_refused_records_total") == 0
    for cause in ("deleted", "moved", "replaced"):
        assert ("redactor_audit_file_replaced_total", (("cause", cause),)) in last
    assert _value(last, "redactor_audit_file_replaced_total") == 0
    assert _value(last, "redactor_audit_fsync_failures_total") == 0
    assert _value(last, "redactor_scan_queue_depth") == 0
    # Labels are names and codes: no card number anywhere in the exposition.
    assert not any(_luhn_card(n) in str(key) for key in last for n in range(sent))
    # The supervisor made its metrics directory there, and removed it on the way out.
    assert not list(scratch.iterdir())


async def _drain(stream: asyncio.StreamReader, into: list[bytes]) -> None:
    while line := await stream.readline():
        into.append(line)
