"""`redactor serve --workers 2` with a queued route: every worker enqueues and delivers, and a
SIGTERM ends cleanly with nothing left leased."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

from aiohttp import ClientSession, TCPConnector

from tests.outbox.conftest import Helpdesk
from tests.vault.conftest import CARD_DIGITS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _records(root: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in root.glob("audit*.jsonl")
        for line in path.read_text().splitlines()
        if line
    ]


async def test_two_workers_queue_and_deliver_every_message_and_stop_cleanly(
    tmp_path: Path, helpdesk: Helpdesk
) -> None:
    listen, admin = _free_port(), _free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        "routes:\n"
        f"  - {{name: chat, path_prefix: /chat/, upstream: '{helpdesk.url}', tenant: acme,"
        " delivery: queued, outbox: {backoff_base_s: 0.05, backoff_cap_s: 0.1}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", "serve", "--dev", "--workers", "2",
        "--config", str(config), "--data-dir", str(tmp_path / "data"),
        "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}",
        "--audit-log", str(tmp_path / "audit.jsonl"),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(90):
            while sum(b'"redactor_started"' in line for line in seen) < 2:
                line = await proc.stderr.readline()
                assert line, b"".join(seen).decode(errors="replace")[-2000:]
                seen.append(line)
        drain = asyncio.create_task(proc.stderr.read())
        helpdesk.script = [(503, {"Retry-After": "0"})] * 3  # a few retries on the way
        ids = []
        # A fresh connection each: the kernel spreads them over both workers.
        async with ClientSession(connector=TCPConnector(force_close=True)) as session:
            for n in range(20):
                async with session.post(
                    f"http://127.0.0.1:{listen}/chat/t", json={"n": n, "c": f"card {CARD_DIGITS}"}
                ) as resp:
                    assert resp.status == 202
                    ids.append((await resp.json())["outbox_id"])
            await helpdesk.wait_for(23, timeout_s=60)
            async with session.get(f"http://127.0.0.1:{admin}/readyz") as resp:
                ready = await resp.json()
            assert ready["outbox"]["chat"]["accepting"] is True
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        await drain
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert sorted({d.key for d in helpdesk.received}) == sorted(ids)
    assert all(CARD_DIGITS not in d.body.decode() for d in helpdesk.received)
    records = _records(tmp_path)
    delivered = {r["outbox_id"] for r in records if r["event"] == "message_delivered"}
    assert delivered == set(ids)
    # Both workers queued (each writes its own trail).
    queued_by = {r["chain"] for r in records if r["event"] == "message_queued"}
    assert len(queued_by) == 2
