"""The admin listener: liveness, readiness (vault and key ring) and Prometheus metrics.

It runs on a listener of its own, so no upstream path is ever shadowed by these.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from redactor.resources import RESOURCES
from vault.errors import VaultError


async def healthz(_request: web.Request) -> web.Response:
    """The process is up and serving."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the vault answers, is still the file or schema opened at start, has our
    schema version, and its key records fit the key ring (the check `serve` runs at start).

    Draining (SIGTERM arrived, requests in flight finishing) is not ready either.
    Not ready says why with a stable code (`vault_gone`, `key_ring_mismatch`, ...); the
    versions involved are in the log, never key material anywhere.
    """
    res = request.app[RESOURCES]
    if res.draining:
        # Stopping: no new traffic, whatever the vault says.
        return web.json_response({"status": "draining"}, status=503)
    try:
        async with asyncio.timeout(res.settings.vault_timeout_s):
            await res.vault.check_ready()
    except VaultError as exc:
        return web.json_response({"status": "unavailable", "vault": exc.code}, status=503)
    except (TimeoutError, OSError):
        return web.json_response({"status": "unavailable", "vault": "down"}, status=503)
    return web.json_response({"status": "ready", "vault": "ok"})


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus exposition of the whole server (every worker's counters summed)."""
    res = request.app[RESOURCES]
    body = res.metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
