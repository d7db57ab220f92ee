"""The security console: a page on the admin listener for the `security` role.

`/security/` serves a static page and script (no build step, nothing downloaded); the page
asks `/security/api/summary` for a period's figures with the caller's JWT. The API verifies
the JWT with the agent API's verifier and requires the `security` role; it answers from the
audit trail (tokens and masked forms only: records never hold a value) and verifies every
chain in it. Failed and refused attempts are audited like the agent API's.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from redactor.agent.auth import Principal
from redactor.audit import AccessEvent, now_iso
from redactor.audit.integrity import is_verified, read_trail
from redactor.audit.report import (
    DENY_EVENTS,
    MESSAGE_EVENTS,
    REVEAL_EVENTS,
    in_period,
    parse_time,
)
from redactor.errors import AuthError, PermissionDeniedError, RedactorError
from redactor.middleware import REQUEST_ID
from redactor.resources import RESOURCES, Resources

SECURITY_ROLE = "security"
API_ROUTE = "/security/api/summary"
MAX_ROWS = 1000  # a table beyond this is a report's job, not a page's
_STATIC = resources.files("redactor.ops") / "console"
# The page loads only its own script and style; no inline script, nothing from elsewhere.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)


class ConsoleUnauthenticatedError(AuthError):
    """No valid JWT for the console (401); the reason is audited, never answered."""


class SecurityRoleRequiredError(PermissionDeniedError):
    code = "security_role_required"
    message = "the security role is required"


class ConsoleRequestError(RedactorError):
    status = 400
    code = "bad_request"
    message = "since and until must be ISO times, since before until"


def _static(name: str, content_type: str) -> web.Response:
    body = (_STATIC / name).read_bytes()
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"},
    )


async def page(_request: web.Request) -> web.Response:
    """The console page (static: the data comes from the API, with the caller's token)."""
    return _static("index.html", "text/html")


async def script(_request: web.Request) -> web.Response:
    """The console script."""
    return _static("console.js", "text/javascript")


async def style(_request: web.Request) -> web.Response:
    """The console style sheet."""
    return _static("console.css", "text/css")


async def _principal(request: web.Request, res: Resources) -> Principal:
    agent = res.agent
    if agent is None:  # the routes exist only with the agent API configured
        raise ConsoleUnauthenticatedError()
    try:
        principal = await agent.verifier.verify(request.headers.get(hdrs.AUTHORIZATION))
    except AuthError as exc:
        await _audit(request, res, "console_unauthenticated", None, exc.code)
        raise ConsoleUnauthenticatedError() from None
    # The revocation list holds here as on the agent API (a stale list raises 503).
    if agent.revocations.check(principal.token_id, principal.tenant, principal.subject):
        await _audit(request, res, "console_unauthenticated", principal, "token_revoked")
        raise ConsoleUnauthenticatedError()
    if SECURITY_ROLE not in principal.roles:
        await _audit(request, res, "console_denied", principal, SecurityRoleRequiredError.code)
        raise SecurityRoleRequiredError()
    return principal


async def _audit(
    request: web.Request, res: Resources, event: str, who: Principal | None, reason: str
) -> None:
    # Raises AuditWriteError (503): a console view that cannot be recorded is not shown.
    await res.audit.write(
        AccessEvent(
            event=event,
            time=now_iso(),
            request_id=request[REQUEST_ID],
            route=API_ROUTE,
            subject=who.subject if who else None,
            tenant=who.tenant if who else None,
            token=None,
            level="none",
            reason=reason,
            token_id=who.token_id if who else None,
        )
    )


def _period(request: web.Request, now: datetime) -> tuple[datetime, datetime]:
    try:
        until = parse_time(request.query["until"]) if "until" in request.query else now
        since = (
            parse_time(request.query["since"])
            if "since" in request.query
            else until - timedelta(days=7)
        )
    except ValueError:
        raise ConsoleRequestError() from None
    if since >= until:
        raise ConsoleRequestError()
    return since, until


def trail_files(audit_log: Path | None) -> list[Path]:
    """Every file of this server's trail: rotated, per-worker, CLI, and the live one."""
    if audit_log is None or not audit_log.parent.exists():
        return []
    # A worker writes `audit-w2.jsonl`; its console shows the whole trail, every worker's.
    stem = re.sub(r"-w[0-9]+$", "", audit_log.stem)
    return sorted(
        p
        for p in audit_log.parent.iterdir()
        if p.name.startswith(stem) and ".jsonl" in p.name and not p.name.endswith(".checkpoints")
    )


def summarise(
    records: list[dict[str, Any]], since: datetime, until: datetime, tenant: str
) -> dict[str, Any]:
    """What the page shows for `tenant` in [since, until): a series, reveals and denials."""
    hourly = until - since <= timedelta(days=2)
    width = 13 if hourly else 10  # "2026-11-29T10" or "2026-11-29"
    redactions: Counter[str] = Counter()
    reveals_by: Counter[str] = Counter()
    reveals: list[dict[str, Any]] = []
    denied: list[dict[str, Any]] = []
    for record in records:
        if not in_period(record, since, until, tenant):
            continue
        bucket = str(record.get("time", ""))[:width]
        event = record.get("event")
        if event in MESSAGE_EVENTS:
            redactions[bucket] += sum(int(n) for n in dict(record.get("counts") or {}).values())
        elif event in REVEAL_EVENTS:
            reveals_by[bucket] += 1
            reveals.append(_row(record))
        elif event in DENY_EVENTS:
            denied.append(_row(record))
    buckets = []
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    at = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if not hourly:
        at = at.replace(hour=0)
    while at < until:
        key = at.isoformat()[:width]
        buckets.append({"at": key, "redactions": redactions[key], "reveals": reveals_by[key]})
        at += step
    return {
        "tenant": tenant,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "bucket": "hour" if hourly else "day",
        "series": buckets,
        "reveals": reveals[-MAX_ROWS:],
        "denied": denied[-MAX_ROWS:],
    }


def _row(record: dict[str, Any]) -> dict[str, Any]:
    # Only these fields leave: a token (with at most a card's last four), never a value.
    keys = ("time", "event", "subject", "token", "level", "purpose", "reason", "route")
    row = {k: record.get(k) for k in keys}
    row["verified"] = is_verified(record)  # False: at or after a break, or not in a chain
    return row


def _load(
    audit_log: Path | None,
    key: bytes,
    since: datetime,
    until: datetime,
    tenant: str,
    registry: Any = None,
) -> dict[str, Any]:
    files = trail_files(audit_log)
    if not files:
        integrity = {"ok": False, "headline": "does not verify: the trail is not a file"}
        return {
            "integrity": integrity,
            **summarise([], since, until, tenant),
            "chains": [],
            "trail_problems": ["the trail is not a file"],
            "trail_ok": False,
        }
    # Verified first, then read: every row says whether the chains vouch for it.
    trail = read_trail(key, files, now=datetime.now(UTC), registry=registry)
    checked = trail.integrity.to_json()
    data = {"integrity": checked, **summarise(list(trail.records()), since, until, tenant)}
    data["chains"] = checked["chains"]
    data["trail_problems"] = checked["problems"]
    data["trail_ok"] = checked["ok"]
    return data


async def summary(request: web.Request) -> web.Response:
    """The period's figures for a caller with the security role, from the audit trail."""
    res = request.app[RESOURCES]
    principal = await _principal(request, res)
    since, until = _period(request, datetime.now(UTC))
    await _audit(request, res, "console_viewed", principal, "granted")
    registry = await _registry(res)
    # Reading and verifying the trail is file I/O and CPU: a thread, not the loop.
    data = await asyncio.to_thread(
        _load, res.settings.audit_log, res.audit.key, since, until, principal.tenant, registry
    )
    return web.json_response(data, headers={"Cache-Control": "no-store"})


async def _registry(res: Resources) -> Any:
    """The chains the vault's registry knows, or a Completeness saying it could not be read
    (the headline then says completeness was not checked)."""
    from redactor.audit.registration import ChainRegistryError, StoreChainRegistry
    from redactor.audit.registry import not_checked

    try:
        return await StoreChainRegistry(res.shared.vault.store).chains()
    except ChainRegistryError as exc:
        return not_checked(f"the chain registry could not be read: {exc.code}", unreadable=True)


def add_console_routes(app: web.Application) -> None:
    """Mount the console on the admin app (only when the agent API's JWT settings exist)."""
    app.router.add_get("/security/", page)
    app.router.add_get("/security/console.js", script)
    app.router.add_get("/security/console.css", style)
    app.router.add_get(API_ROUTE, summary)
