"""The admin listener: liveness, readiness (vault, key ring, audit sink, not draining) and
Prometheus metrics.

It runs on a listener of its own, so no upstream path is ever shadowed by these.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from redactor.audit import AuditWriteError
from redactor.resources import RESOURCES
from vault.errors import VaultError


async def healthz(_request: web.Request) -> web.Response:
    """The process is up and serving."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the vault answers, is still the file or schema opened at start, has our
    schema version, and its key records fit the key ring (the check `serve` runs at start);
    and when the audit sink can write (after a failed write, it tries again here: a full disk
    keeps the answer at 503 `audit_unavailable` until space returns).

    With queued routes the answer has `outbox`: per route `pending`, `dead`, `oldest_age_s`
    and `accepting` (below its high-water marks).

    Draining (SIGTERM arrived, requests in flight finishing) is not ready either: 503
    `draining`, whatever the vault and the audit sink say.
    Not ready says why with a stable code (`vault_gone`, `key_ring_mismatch`,
    `audit_unavailable`, ...); the versions involved are in the log, never key material.
    """
    res = request.app[RESOURCES]
    if res.draining:
        # Stopping: no new traffic, whatever the vault says.
        return web.json_response({"status": "draining"}, status=503)
    vault = "ok"
    try:
        async with asyncio.timeout(res.settings.vault_timeout_s):
            await res.vault.check_ready()
    except VaultError as exc:
        vault = exc.code
    except (TimeoutError, OSError):
        vault = "down"
    audit = "ok"
    try:
        # The retry after failed writes: a disk that hangs (a dead NFS server) is as
        # unavailable as a full one.
        async with asyncio.timeout(res.settings.vault_timeout_s):
            await res.audit.check_writable()
    except AuditWriteError as exc:
        audit = exc.code
    except TimeoutError:
        audit = AuditWriteError.code
    answer: dict[str, Any] = {"vault": vault, "audit": audit}
    if res.ingress.outbox_depth.routes:
        # Queued routes: what waits for delivery (as last read, at most a few seconds old),
        # and whether each route still takes messages. Reported, not a reason to be unready:
        # every replica shares the outbox, so all would turn unready together.
        answer["outbox"] = res.ingress.outbox_depth.report(time.time())
    if vault != "ok" or audit != "ok":
        return web.json_response({"status": "unavailable", **answer}, status=503)
    return web.json_response({"status": "ready", **answer})


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus exposition of the whole server (every worker's counters summed)."""
    res = request.app[RESOURCES]
    body = res.metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
