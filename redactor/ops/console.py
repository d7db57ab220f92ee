"""The security console: a page on the admin listener for the `security` role.

`/security/` serves a static page and script (no build step, nothing downloaded); the page
asks `/security/api/summary` for a period's figures and `/security/api/panel/NAME` for a page
of one panel (or all of it as CSV or JSON) with the caller's JWT. The API verifies the JWT
with the agent API's verifier and requires the `security` role; it answers from the trail's
index (`redactor.audit.index`), which an index worker process keeps up to date and verified
(tokens and masked forms only: records never hold a value). Failed and refused attempts are
audited like the agent API's.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from redactor.agent.auth import Principal
from redactor.audit import AccessEvent, now_iso
from redactor.audit.index import trail_files as index_trail_files
from redactor.audit.registry import registry_message
from redactor.errors import AuthError, PermissionDeniedError, RedactorError
from redactor.middleware import REQUEST_ID
from redactor.ops.console_index import IndexClient, IndexUnavailableError
from redactor.resources import RESOURCES, Resources

SECURITY_ROLE = "security"
API_ROUTE = "/security/api/summary"
PANEL_ROUTE = "/security/api/panel/{name}"
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

    def __init__(self, message: str | None = None) -> None:
        super().__init__()
        if message:
            self.message = message


class ConsoleIndexUnavailableError(RedactorError):
    status = 503
    code = "audit_index_unavailable"
    message = "the audit index could not answer; try again"


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
            route=request.path,
            subject=who.subject if who else None,
            tenant=who.tenant if who else None,
            token=None,
            level="none",
            reason=reason,
            token_id=who.token_id if who else None,
        )
    )


def trail_files(audit_log: Path | None) -> list[Path]:
    """Every file of this server's trail: rotated, per-worker, CLI, and the live one."""
    return index_trail_files(audit_log)


INDEX_CLIENT = web.AppKey("index_client", IndexClient)


def _client(request: web.Request) -> IndexClient | None:
    return request.app.get(INDEX_CLIENT)


async def _close_client(app: web.Application) -> None:
    client = app.get(INDEX_CLIENT)
    if client is not None:
        await client.close()


_NO_TRAIL = {
    "integrity": {"ok": False, "headline": "does not verify: the trail is not a file"},
    "series": [],
    "totals": {},
    "panels": {},
    "chains": [],
    "trail_problems": ["the trail is not a file"],
    "trail_ok": False,
}


async def _ask(request: web.Request, op: str, **extra: Any) -> web.Response:
    res = request.app[RESOURCES]
    principal = await _principal(request, res)
    await _audit(request, res, "console_viewed", principal, "granted")
    client = _client(request)
    headers = {"Cache-Control": "no-store"}
    if client is None:
        return web.json_response(_NO_TRAIL, headers=headers)
    # The trail is held against the vault's chain registry (one query, here where the vault
    # is open); the index worker compares, so a missing chain is a break on every panel.
    registry = registry_message(await _registry(res))
    # The index is built and read in a process of its own: the loop only moves bytes.
    try:
        meta, body = await client.ask(
            {
                "op": op,
                "tenant": principal.tenant,
                "params": dict(request.query),
                "registry": registry,
                **extra,
            }
        )
    except IndexUnavailableError:
        raise ConsoleIndexUnavailableError() from None
    if not meta.get("ok"):
        if meta.get("status") == 400:
            raise ConsoleRequestError(str(meta.get("error")))
        raise ConsoleIndexUnavailableError()
    content_type = str(meta.get("content_type", "application/json"))
    if extra.get("format") in ("csv", "json"):
        extension = "csv" if extra["format"] == "csv" else "json"
        headers["Content-Disposition"] = (
            f'attachment; filename="redactor-{extra.get("panel")}.{extension}"'
        )
    return web.Response(body=body, content_type=content_type, headers=headers)


async def summary(request: web.Request) -> web.Response:
    """The period's figures for a caller with the security role, from the trail's index."""
    return await _ask(request, "summary")


async def panel(request: web.Request) -> web.Response:
    """One page of a panel (`?offset=&limit=&sort=&order=`), or all of it with
    `?format=csv|json`."""
    name = request.match_info["name"]
    fmt = request.query.get("format")
    if fmt not in (None, "csv", "json"):
        raise ConsoleRequestError("format is csv or json")
    return await _ask(request, "panel", panel=name, format=fmt)


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
    app.router.add_get(PANEL_ROUTE, panel)
    res = app[RESOURCES]
    if res.settings.audit_log is not None:
        # Started at the first request; stopped with the app.
        app[INDEX_CLIENT] = IndexClient(res.audit.key, res.settings.audit_log)
        app.on_cleanup.append(_close_client)
