"""Builds the admin Application: /healthz, /readyz, /metrics, on a listener of its own, and
the security console (/security/) when the agent API's JWT verification is configured."""

from __future__ import annotations

from aiohttp import web

from redactor.middleware import context_middleware
from redactor.ops.console import add_console_routes
from redactor.ops.health import add_admin_routes
from redactor.resources import RESOURCES, Resources


def build_admin_app(resources: Resources) -> web.Application:
    """The admin app: /healthz, /readyz, /metrics, and /security/ with the agent API."""
    app = web.Application(middlewares=[context_middleware])
    app[RESOURCES] = resources
    add_admin_routes(app)
    if resources.agent is not None:
        add_console_routes(app)
    return app
