"""SIGTERM: /readyz answers 503 at once, while the requests in flight finish."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import ClientError, ClientSession, TCPConnector, web


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("workers", [1, 2])
async def test_readyz_is_503_while_draining_and_requests_in_flight_finish(
    workers: int, tmp_path: Path, aiohttp_server
) -> None:
    arrived = asyncio.Event()
    release = asyncio.Event()

    received: list[bytes] = []

    async def upstream(request: web.Request) -> web.Response:
        received.append(await request.read())
        arrived.set()
        await release.wait()  # held until the server is draining
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", upstream)
    server = await aiohttp_server(app)
    listen, admin = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", "serve", "--dev", "--workers", str(workers),
        "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}",
        "--upstream", str(server.make_url("/")), "--data-dir", str(tmp_path),
        "--audit-log", str(tmp_path / "audit.jsonl"),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while sum(b"redactor_started" in line for line in seen) < workers:
                line = await proc.stderr.readline()
                assert line, b"".join(seen).decode(errors="replace")[-2000:]
                seen.append(line)
        drain = asyncio.create_task(_drain(proc.stderr, seen))
        async with ClientSession(connector=TCPConnector(force_close=True)) as session:
            async with session.get(f"http://127.0.0.1:{admin}/readyz") as r:
                assert r.status == 200
            in_flight = asyncio.create_task(
                session.post(f"http://127.0.0.1:{listen}/t", json={"c": "card 4111111111111111"})
            )
            async with asyncio.timeout(30):
                await arrived.wait()
            proc.send_signal(signal.SIGTERM)

            # From SIGTERM on (once the process has seen it), /readyz says draining.
            answers: list[tuple[int, dict[str, str]]] = []
            async with asyncio.timeout(30):
                while not answers or answers[-1][0] != 503:
                    try:
                        async with session.get(f"http://127.0.0.1:{admin}/readyz") as r:
                            answers.append((r.status, await r.json()))
                    except ClientError:
                        pass  # a worker with nothing in flight has already closed
                    await asyncio.sleep(0.05)
            assert answers[-1] == (503, {"status": "draining"})
            assert not in_flight.done()
            # Draining: no new request is taken.
            with pytest.raises(ClientError):
                async with session.post(f"http://127.0.0.1:{listen}/t", json={"c": "x"}):
                    pass
            release.set()
            async with asyncio.timeout(30):
                response = await in_flight
            assert response.status == 200
            assert await response.json() == {"ok": True}
            response.release()
            assert len(received) == 1
            assert b"tok_v1_card_" in received[0]
    finally:
        release.set()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=60)
    drain.cancel()
    assert proc.returncode == 0, b"".join(seen).decode(errors="replace")[-3000:]
    assert sum(b"redactor_draining" in line for line in seen) == workers


async def _drain(stream: asyncio.StreamReader, into: list[bytes]) -> None:
    while line := await stream.readline():
        into.append(line)
