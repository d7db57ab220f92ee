"""What a sender learns when the upstream fails (issue 20): "never sent" (safe to send again)
is told apart from "sent, answer lost" (the upstream may have it), each with Retry-After, and
the audit trail says which."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from redactor.ingress.app import build_proxy_app
from redactor.resources import open_resources
from redactor.settings import Overrides, Settings, load_settings

PAN = "4111 1111 1111 1111"


def _settings(tmp_path: Path, upstream: str, **changes: object) -> Settings:
    settings = load_settings(
        Overrides(
            upstream=upstream,
            data_dir=str(tmp_path / "data"),
            dev=True,
            tenant="acme",
            audit_log=str(tmp_path / "audit.jsonl"),
        ),
        {},
    )
    return replace(settings, **changes)  # type: ignore[arg-type]


async def _send(aiohttp_client, settings: Settings):
    async with open_resources(settings) as res:
        client = await aiohttp_client(build_proxy_app(res.ingress))
        body = json.dumps({"text": f"card {PAN}"}).encode()
        resp = await client.post("/hook", data=body, headers={"Content-Type": "application/json"})
        return [(resp.status, resp.headers.get("Retry-After"), await resp.json())]


def _deliveries(tmp_path: Path) -> list[tuple[str, str | None]]:
    records = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    return [
        (r["event"], r.get("code"))
        for r in records
        if r["event"].startswith("message_") and "outcome" in r
    ]


async def test_an_upstream_that_is_down_never_got_the_message(
    aiohttp_client, tmp_path: Path
) -> None:
    # Port 9 on loopback (discard): nothing listens there.
    [(status, retry_after, body)] = await _send(
        aiohttp_client, _settings(tmp_path, "http://127.0.0.1:9")
    )

    assert (status, body["error"], retry_after) == (502, "upstream_unavailable", "5")
    assert _deliveries(tmp_path) == [("message_not_sent", "upstream_unavailable")]


async def test_an_upstream_that_takes_the_message_and_hangs_may_have_it(
    aiohttp_server, aiohttp_client, tmp_path: Path
) -> None:
    received: list[bytes] = []
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        received.append(await request.read())
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    server = await aiohttp_server(app)
    settings = _settings(tmp_path, str(server.make_url("/")), upstream_timeout_s=0.5)

    [(status, retry_after, body)] = await _send(aiohttp_client, settings)
    release.set()

    assert (status, body["error"], retry_after) == (504, "upstream_timeout", "5")
    assert len(received) == 1
    assert b"4111" not in received[0]
    assert _deliveries(tmp_path) == [("message_upstream_failed", "upstream_timeout")]


async def test_a_connection_cut_after_sending_may_have_delivered(
    aiohttp_server, aiohttp_client, tmp_path: Path
) -> None:
    async def cut(request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", cut)
    server = await aiohttp_server(app)

    [(status, retry_after, body)] = await _send(
        aiohttp_client, _settings(tmp_path, str(server.make_url("/")))
    )

    assert (status, body["error"], retry_after) == (502, "upstream_answer_lost", "5")
    assert _deliveries(tmp_path) == [("message_upstream_failed", "upstream_answer_lost")]


async def test_a_full_connection_pool_is_never_sent_and_says_so(
    aiohttp_server, aiohttp_client, tmp_path: Path
) -> None:
    arrived: list[bytes] = []
    first_arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.append(await request.read())
        first_arrived.set()
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow)
    server = await aiohttp_server(app)
    settings = _settings(
        tmp_path,
        str(server.make_url("/")),
        upstream_pool_size=1,
        upstream_connect_timeout_s=0.3,
        upstream_timeout_s=30.0,
    )
    body = json.dumps({"text": f"card {PAN}"}).encode()
    headers = {"Content-Type": "application/json"}
    async with open_resources(settings) as res:
        client = await aiohttp_client(build_proxy_app(res.ingress))
        # The first message holds the pool's only connection...
        first = asyncio.create_task(client.post("/hook", data=body, headers=headers))
        await first_arrived.wait()
        # ...so the second waits for a connection, in vain.
        second = await client.post("/hook", data=body, headers=headers)
        release.set()
        assert (await first).status == 200

    assert (second.status, (await second.json())["error"]) == (504, "upstream_connect_timeout")
    assert second.headers["Retry-After"] == "5"
    # The refused one never reached the upstream.
    assert len(arrived) == 1
    assert ("message_not_sent", "upstream_connect_timeout") in _deliveries(tmp_path)
