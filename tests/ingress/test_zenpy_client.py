"""A real paginating API client (zenpy, the Zendesk client) reading through redactor.

zenpy follows the absolute `next_page` URL of each page of ticket comments. redactor points
those URLs back at itself, so every page comes through redaction (and the audit), never
straight from the helpdesk."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import zenpy
from aiohttp import web

PAN = "4111 1111 1111 1111"


async def test_zenpy_reads_every_page_of_comments_through_redactor(
    start_proxy, make_settings, aiohttp_server
) -> None:
    seen_by_upstream: list[str] = []
    base: dict[str, str] = {}

    async def comments(request: web.Request) -> web.Response:
        seen_by_upstream.append(request.path_qs)
        page = int(request.query.get("page", "1"))
        next_page = (
            f"{base['up']}/api/v2/tickets/7/comments.json?page={page + 1}" if page < 3 else None
        )
        return web.json_response(
            {
                "comments": [
                    {"id": page * 10 + i, "type": "Comment", "body": f"p{page} card {PAN}"}
                    for i in range(2)
                ],
                "next_page": next_page,
                "previous_page": None,
                "count": 6,
            }
        )

    app = web.Application()
    app.router.add_get("/api/v2/tickets/7/comments.json", comments)
    up = await aiohttp_server(app)
    base["up"] = str(up.make_url("")).rstrip("/")
    settings = make_settings()
    route = replace(settings.routes[0], upstream=base["up"], redact_responses=True)
    proxy = await start_proxy(replace(settings, routes=(route,)))
    host, port = proxy.client.host, proxy.client.port

    def read_all() -> list[str]:
        # zenpy builds `https://{subdomain}.{domain}/api/v2/`: point it at redactor over http.
        client = zenpy.Zenpy(subdomain="127", domain=f"0.0.1:{port}", email="a@b.c", token="t")
        client.tickets.protocol = "http"
        return [c.body for c in client.tickets.comments(ticket=7)]

    assert host == "127.0.0.1"
    bodies = await asyncio.to_thread(read_all)
    assert len(bodies) == 6
    assert len(seen_by_upstream) == 3
    for body in bodies:
        assert PAN not in body
        assert "card tok_v1_card_" in body
