"""Builds the agent API Application: /v1/resolve, /v1/reveal-text and /out/<name>/...

It runs on a listener of its own (`agent_listen`), apart from the proxy and admin listeners,
so the surface that can return values is never reachable through the ingress port.
"""

from __future__ import annotations

from aiohttp import web

from redactor.agent.openapi import build_openapi
from redactor.agent.outbound import handle_outbound
from redactor.agent.resolve import (
    CHALLENGE,
    LEVEL_ASKED,
    RETRY_AFTER_S,
    handle_resolve,
    handle_reveal_text,
)
from redactor.agent.resources import AGENT, AgentResources
from redactor.errors import RedactorError
from redactor.middleware import Handler, context_middleware


@web.middleware
async def challenge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers RFC 6750 and RFC 6585 ask for on the error answers context_middleware builds:
    `WWW-Authenticate: Bearer` on a 401, `Retry-After` on a 429."""
    response = await handler(request)
    if response.status == 401:
        response.headers["WWW-Authenticate"] = request.get(CHALLENGE, 'Bearer realm="redactor"')
    elif response.status == 429:
        response.headers["Retry-After"] = str(request.get(RETRY_AFTER_S, 60))
    return response


@web.middleware
async def call_metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts every call by endpoint (the route's pattern, never the path), outcome (`ok` or
    the error code) and the level asked for. Innermost: it sees our typed errors."""
    resource = request.match_info.route.resource
    endpoint = resource.canonical if resource is not None else "unmatched"
    outcome = "internal_error"
    try:
        response = await handler(request)
    except RedactorError as exc:
        outcome = exc.code
        raise
    except web.HTTPException as exc:
        outcome = f"http_{exc.status}"
        raise
    else:
        outcome = "ok" if response.status < 400 else f"http_{response.status}"
        return response
    finally:
        request.app[AGENT].metrics.agent_call(
            endpoint, outcome, request.get(LEVEL_ASKED, "default")
        )


def build_agent_app(resources: AgentResources) -> web.Application:
    """The agent app, on the agent side's share of the resources."""
    app = web.Application(
        # challenge first (outermost): it decorates the error answers context_middleware makes.
        middlewares=[challenge_middleware, context_middleware, call_metrics_middleware],
        client_max_size=resources.settings.max_body_bytes,
    )
    app[AGENT] = resources
    document = build_openapi(resources.settings)

    async def openapi(_request: web.Request) -> web.Response:
        """This API's OpenAPI 3.1 description (no token needed: it holds no value)."""
        return web.json_response(document)

    app.router.add_get("/openapi.json", openapi)
    app.router.add_post("/v1/resolve", handle_resolve)
    app.router.add_post("/v1/reveal-text", handle_reveal_text)
    app.router.add_route("*", "/out/{name}/{tail:.*}", handle_outbound)
    return app
