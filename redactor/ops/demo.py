"""`redactor demo`: the proxy in development mode in front of an upstream that shows what it got,
and the agent API on its own listener, trusting a development key (`redactor dev-token`).

One command, no configuration: a newcomer pastes the printed curl lines and sees their card
number come back as a token, then resolves that token as an agent.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path

from aiohttp import web

from redactor.ops.devtoken import (
    DEMO_POLICY,
    DEV_AUDIENCE,
    DEV_ISSUER,
    ensure_dev_signing_key,
)
from redactor.resources import Resources
from redactor.server import run_server
from redactor.settings import Listen, Overrides, load_settings
from vault import EntityType

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
    return f"curl -s http://{listen}/tickets -H 'Content-Type: application/json' -d '{payload}'"


DEMO_TENANT = "demo"
DEMO_CARD = "4111111111111111"  # the test card of the curl line above, not a real one
DEMO_ROLE = "support_agent"


def resolve_curl_line(agent_listen: Listen, data_dir: Path, token: str) -> str:
    """A ready curl for /v1/resolve: the bearer token comes from `redactor dev-token`."""
    dev_token = shlex.join(
        [
            sys.executable, "-m", "redactor", "dev-token", "--role", DEMO_ROLE,
            "--tenant", DEMO_TENANT, "--data-dir", str(data_dir.resolve()),
        ]
    )  # fmt: skip
    body = '{"tokens": ["' + token + '"], "level": "masked"}'
    return (
        f"curl -s http://{agent_listen}/v1/resolve "
        f'-H "Authorization: Bearer $({dev_token})" '
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


async def run_demo(
    data_dir: Path,
    listen: str,
    admin_listen: str,
    environ: dict[str, str],
    agent_listen: str = "127.0.0.1:8081",
    upstream_listen: Listen = DEMO_UPSTREAM,
) -> None:
    """Start the demo upstream, the proxy and the agent API; print the curl lines; run until
    Ctrl-C."""
    jwks = await asyncio.to_thread(ensure_dev_signing_key, data_dir)
    settings = load_settings(
        Overrides(
            listen=listen,
            admin_listen=admin_listen,
            agent_listen=agent_listen,
            jwks=str(jwks),
            jwt_issuer=DEV_ISSUER,
            jwt_audience=DEV_AUDIENCE,
            policy=str(DEMO_POLICY),
            upstream=f"http://{upstream_listen}",
            data_dir=str(data_dir),
            dev=True,
            tenant=DEMO_TENANT,
        ),
        environ,
    )
    assert settings.agent is not None  # noqa: S101 - agent_listen was given just above
    upstream = web.AppRunner(build_demo_upstream(), access_log=None)
    await upstream.setup()
    await web.TCPSite(upstream, upstream_listen.host, upstream_listen.port).start()

    agent = settings.agent

    async def ready(res: Resources) -> None:
        # The token the curl line's card gets (same value, same token), for the resolve line.
        (token,) = await res.vault.tokenize_many(DEMO_TENANT, [(EntityType.CARD, DEMO_CARD)])
        print(
            "\nredactor demo is running (development mode, data in "
            f"{data_dir}).\nTry it:\n\n  {curl_line(settings.listen)}\n\n"
            "Resolve the card's token as an agent (role support_agent: masked; a\n"
            "fraud_investigator with a purpose sees the full value, see README):\n\n"
            f"  {resolve_curl_line(agent.listen, data_dir, token.text)}\n\n"
            f"Agent API description: curl -s http://{agent.listen}/openapi.json\n"
            f"Health: curl -s http://{settings.admin_listen}/readyz\nStop with Ctrl-C.\n",
            file=sys.stderr,
            flush=True,
        )

    try:
        await run_server(settings, ready=ready)
    finally:
        await upstream.cleanup()


def main_demo(
    data_dir: Path,
    listen: str,
    admin_listen: str,
    environ: dict[str, str],
    agent_listen: str = "127.0.0.1:8081",
    upstream_listen: Listen = DEMO_UPSTREAM,
) -> int:
    asyncio.run(run_demo(data_dir, listen, admin_listen, environ, agent_listen, upstream_listen))
    return 0
