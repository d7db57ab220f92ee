"""`redactor demo`: the proxy in development mode in front of an upstream that shows what it got.

One command, no configuration: a newcomer pastes the printed curl line and sees their card
number come back as a token.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp import web

from redactor.resources import Resources
from redactor.server import run_server
from redactor.settings import Listen, Overrides, load_settings

DEMO_UPSTREAM = Listen("127.0.0.1", 9000)


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "upstream_received": {
                "method": request.method,
                "path": request.path_qs,
                "content_type": request.content_type,
                "body": body.decode("utf-8", errors="replace"),
            }
        }
    )


def build_demo_upstream() -> web.Application:
    """An upstream that answers with the request it received (what the helpdesk would store)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    return app


def curl_line(listen: Listen) -> str:
    """A ready curl command against the demo proxy (test values, not a real card)."""
    payload = '{"ticket": {"comment": "My card is 4111 1111 1111 1111 and my SSN 536-90-4399"}}'
    return (
        f"curl -s http://{listen}/tickets -H 'Content-Type: application/json' "
        f"-d '{payload}'"
    )


async def run_demo(data_dir: Path, listen: str, admin_listen: str, environ: dict[str, str]) -> None:
    """Start the demo upstream and the proxy; print the curl line; run until Ctrl-C."""
    settings = load_settings(
        Overrides(
            listen=listen,
            admin_listen=admin_listen,
            upstream=f"http://{DEMO_UPSTREAM}",
            data_dir=str(data_dir),
            dev=True,
            tenant="demo",
        ),
        environ,
    )
    upstream = web.AppRunner(build_demo_upstream(), access_log=None)
    await upstream.setup()
    await web.TCPSite(upstream, DEMO_UPSTREAM.host, DEMO_UPSTREAM.port).start()

    async def ready(_res: Resources) -> None:
        print(
            "\nredactor demo is running (development mode, data in "
            f"{data_dir}).\nTry it:\n\n  {curl_line(settings.listen)}\n\n"
            f"Health: curl -s http://{settings.admin_listen}/readyz\nStop with Ctrl-C.\n",
            file=sys.stderr,
            flush=True,
        )

    try:
        await run_server(settings, ready=ready)
    finally:
        await upstream.cleanup()


def main_demo(data_dir: Path, listen: str, admin_listen: str, environ: dict[str, str]) -> int:
    asyncio.run(run_demo(data_dir, listen, admin_listen, environ))
    return 0
