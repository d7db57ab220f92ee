"""Scan workers under a time budget, in two lanes (issue 18, bounded cost): a step past the
budget gets its worker replaced and the message 503 scan_timeout, nothing forwarded; a small
webhook is answered while a large body holds the other lane. No assertion on time: the
blocking steps below never end by themselves, they wait for a file."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

import redactor.ingress.pipeline
from redactor.ingress.scan_pool import ScanPool, ScanTimeoutError
from tests.ingress.conftest import Proxy
from tests.ingress.scan_steps import block_until, echo, scan_forever

PAN = "4111 1111 1111 1111"
LARGE = 10 * 1024 * 1024
MEDIUM = 20 * 1024


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def _until(path: Path) -> None:
    for _ in range(3000):  # bounded: 60 s at most
        if os.path.exists(path):  # noqa: ASYNC240 - a stat of a local file
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path.name} never appeared")


def _forked(**settings: float) -> ScanPool:
    # Forked from the test process (its code already loaded): a spawned worker would load
    # presidio first, seconds per test. A replaced worker is spawned, as in the server.
    return ScanPool.forked_now((), **settings)  # type: ignore[arg-type]


@pytest.fixture
async def pool():
    made = _forked(timeout_s=0.5)
    yield made
    await made.close()


@pytest.fixture
async def forked_proxy(start_proxy, make_settings, monkeypatch: pytest.MonkeyPatch) -> Proxy:
    import redactor.resources

    monkeypatch.setattr(redactor.resources, "ScanPool", lambda **kw: _forked(**kw))
    return await start_proxy(make_settings())


async def test_a_step_past_the_budget_is_cut_and_its_worker_replaced(
    pool: ScanPool, tmp_path: Path
) -> None:
    [old] = pool.worker_pids()["large"]
    with pytest.raises(ScanTimeoutError):
        await pool.run(block_until, str(tmp_path / "never"), str(tmp_path / "s"), size=LARGE)
    # The stuck worker is gone (killed, not left running) and the lane works again.
    assert await pool.run(echo, "again", size=LARGE) == "again"
    [new] = pool.worker_pids()["large"]
    assert new != old
    assert _gone(old)


async def test_a_medium_body_is_answered_while_a_large_one_holds_its_lane(
    tmp_path: Path,
) -> None:
    pool = _forked(timeout_s=120)
    try:
        flag, started = tmp_path / "flag", tmp_path / "started"
        large = asyncio.create_task(pool.run(block_until, str(flag), str(started), size=LARGE))
        await _until(started)
        assert await pool.run(echo, "webhook", size=MEDIUM) == "webhook"
        assert not large.done()  # answered while the large body still scans
        flag.touch()
        assert await large == "released"
    finally:
        await pool.close()


def test_the_lane_follows_the_body_size() -> None:
    pool = ScanPool(lane_bytes=1000)
    assert (pool.lane_for(1000), pool.lane_for(1001)) == ("medium", "large")


async def test_a_webhook_through_the_proxy_is_answered_while_a_large_scan_runs(
    forked_proxy: Proxy, tmp_path: Path
) -> None:
    proxy = forked_proxy
    scan_pool = proxy.resources.ingress.scan_pool
    assert scan_pool is not None
    flag, started = tmp_path / "flag", tmp_path / "started"
    large = asyncio.create_task(scan_pool.run(block_until, str(flag), str(started), size=LARGE))
    try:
        await _until(started)
        body = json.dumps({"pad": "x" * 30_000, "note": f"card {PAN}"}).encode()
        assert scan_pool.lane_for(len(body)) == "medium"
        resp = await proxy.client.post(
            "/x", data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 200
        assert not large.done()
        [got] = proxy.upstream.received
        assert PAN.encode() not in got.body
        assert b"tok_v1_card_" in got.body
    finally:
        flag.touch()
        await large


async def test_a_scan_past_its_budget_answers_503_and_forwards_nothing(
    forked_proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = forked_proxy
    scan_pool = proxy.resources.ingress.scan_pool
    assert scan_pool is not None
    body = json.dumps({"pad": "x" * 30_000, "note": f"card {PAN}"}).encode()
    headers = {"Content-Type": "application/json"}
    assert (await proxy.client.post("/x", data=body, headers=headers)).status == 200
    [old] = scan_pool.worker_pids()["medium"]
    scan_pool.timeout_s = 0.5  # the worker has started: a real scan takes a few ms

    monkeypatch.setattr(redactor.ingress.pipeline, "scan_in_worker", scan_forever)
    resp = await proxy.client.post("/x", data=body, headers=headers)
    assert resp.status == 503
    assert (await resp.json())["error"] == "scan_timeout"
    assert int(resp.headers["Retry-After"]) > 0
    assert len(proxy.upstream.received) == 1  # only the first message
    records = [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]
    refused = [r for r in records if r["event"] == "message_refused"]
    assert [r["code"] for r in refused] == ["scan_timeout"]

    monkeypatch.undo()
    scan_pool.timeout_s = 60
    again = await proxy.client.post("/x", data=body, headers=headers)
    assert again.status == 200
    assert scan_pool.worker_pids()["medium"] != [old]
    assert PAN.encode() not in proxy.upstream.received[-1].body
