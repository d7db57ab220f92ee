"""Builds the ingress Application: every method and path goes through the redaction proxy."""

from __future__ import annotations

from aiohttp import web

from redactor.ingress.proxy import handle_proxy
from redactor.ingress.resources import INGRESS, IngressResources
from redactor.middleware import context_middleware

# aiohttp's own limit sits above every route's so a route's limit (413) is what callers see;
# the proxy reads bodies itself, bounded per route.
_CLIENT_MAX_SIZE = 1024**3


def build_proxy_app(resources: IngressResources) -> web.Application:
    """The ingress app: every method and path goes through the redaction proxy."""
    app = web.Application(
        middlewares=[context_middleware],
        client_max_size=_CLIENT_MAX_SIZE,
        # Bodies reach the codecs as sent: they decode Content-Encoding themselves, bounded,
        # and re-encode what they change.
        handler_args={"auto_decompress": False},
    )
    app[INGRESS] = resources
    app.router.add_route("*", "/{tail:.*}", handle_proxy)
    return app
