"""`redactor serve --workers 2`: processes share the ports, all stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from aiohttp import ClientSession, web

from redactor.audit import load_audit_key
from redactor.audit.verify import verify_paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_two_workers_serve_the_same_port_and_stop_together(
    tmp_path: Path, aiohttp_server
) -> None:
    received: list[bytes] = []

    async def upstream(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", upstream)
    server = await aiohttp_server(app)
    listen, admin = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", "serve", "--dev", "--workers", "2",
        "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}",
        "--upstream", str(server.make_url("/")), "--data-dir", str(tmp_path),
        "--audit-log", str(tmp_path / "logs" / "audit.jsonl"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    seen: list[bytes] = []
    try:
        # Both workers up (each logs redactor_started) before anything is sent or stopped.
        async with asyncio.timeout(60):
            while sum(b"redactor_started" in line for line in seen) < 2:
                line = await proc.stderr.readline()
                assert line, b"".join(seen).decode(errors="replace")[-2000:]
                seen.append(line)
        async with ClientSession() as session:
            for _ in range(150):
                try:
                    async with session.get(f"http://127.0.0.1:{admin}/readyz") as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("workers never became ready")
            # New connections each time, so the kernel may hand them to either worker; every
            # one is redacted with the same vault and key.
            for _ in range(10):
                async with (
                    ClientSession() as fresh,
                    fresh.post(
                        f"http://127.0.0.1:{listen}/t", json={"text": "card 4111 1111 1111 1111"}
                    ) as resp,
                ):
                    assert resp.status == 200
        assert len(received) == 10
        assert len(set(received)) == 1
        assert b"tok_v1_card_" in received[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(proc.communicate(), timeout=60)
        stderr = b"".join(seen) + rest
    assert proc.returncode == 0, stderr.decode(errors="replace")[-2000:]
    assert stderr.count(b"redactor_stopped") == 2
    assert stderr.count(b"dev_key_generated") == 1
    assert stderr.count(b"dev_audit_key_generated") == 1
    # Each worker wrote its own file and chain; both verify under the one audit key.
    key = await asyncio.to_thread(load_audit_key, key_file=None, inline=None, dev_data_dir=tmp_path)
    result = await asyncio.to_thread(verify_paths, key, [tmp_path / "logs"])
    assert result.ok
    assert len(result.chains) == 2
    assert all(chain.closed for chain in result.chains.values())
    assert sorted(p.name for p in (tmp_path / "logs").glob("*.jsonl")) == [
        "audit-w1.jsonl",
        "audit-w2.jsonl",
    ]
