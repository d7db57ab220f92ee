"""The `use` level: `/out/<name>/...` sends a tool's request to an allow-listed destination with
tokens replaced by their values, and brings the answer back redacted.

The tool never holds a value: it posts tokens, redactor swaps them in on the way out (only if
the caller has `use` or `full` for every token's entity type; otherwise 403 and nothing is
sent), and any card number or SSN in the destination's answer becomes a token again through
the same redaction pipeline the proxy uses. Destinations are fixed in configuration; a name
that is not there is refused, and the path a tool appends can never leave the destination.
"""

from __future__ import annotations

import time
from urllib.parse import unquote, urlsplit

import structlog
from aiohttp import ClientError, ClientTimeout, hdrs, web
from yarl import URL

from redactor.agent.auth import Principal
from redactor.agent.config import OutboundRoute
from redactor.agent.policy import Decision, Level, Reason, raise_for_decision
from redactor.agent.resolve import (
    TooManyTokensError,
    access_event,
    agent_of,
    authenticate,
    decide_tokens,
    now_iso,
    resolve_granted,
)
from redactor.agent.resources import AgentResources
from redactor.audit import AuditEvent
from redactor.bodies import Edit, parse_body
from redactor.errors import RedactorError
from redactor.middleware import REQUEST_ID, REQUEST_ID_HEADER
from redactor.relay import end_to_end_headers, read_answer_bounded, read_bounded, upstream_failure
from vault import TOKEN_PATTERN, NotFound, Resolution, Resolved

log = structlog.get_logger()

PREFIX = "/out/"
# Never passed on: the agent's own credential and cookies are for redactor, not the processor;
# the length is recomputed for the body we send; the host is the destination's.
_DROP_OUT = frozenset({"authorization", "cookie", "host", "content-length"})
_DROP_BACK = frozenset({"content-length", "content-encoding", "set-cookie"})


class DestinationNotAllowedError(RedactorError):
    status = 404
    code = "destination_not_allowed"
    message = "no allow-listed destination of this name"


class OutboundPathError(RedactorError):
    status = 400
    code = "path_invalid"
    message = "path does not stay inside the destination"


class TokenUnresolvableError(RedactorError):
    status = 422
    code = "token_unresolvable"
    message = "a token in the body cannot be resolved (not found or erased)"


def destination_url(route: OutboundRoute, raw_tail: str, query: str) -> URL:
    """The destination URL for the still percent-encoded path after `/out/<name>/`.

    Raises OutboundPathError for a dot segment (`..`, `%2e%2e`) or anything that would change
    the origin or leave the destination's base path.
    """
    if any(unquote(part) in (".", "..") for part in raw_tail.split("/")):
        raise OutboundPathError()
    if "\\" in unquote(raw_tail):
        raise OutboundPathError()
    base = route.destination.rstrip("/")
    text = f"{base}/{raw_tail}" + (f"?{query}" if query else "")
    try:
        url = URL(text, encoded=True)
    except ValueError:
        raise OutboundPathError() from None
    parts = urlsplit(route.destination)
    if (
        url.scheme != parts.scheme
        or url.raw_host != (parts.hostname or "")
        or url.port != (URL(route.destination).port)
        or not url.raw_path.startswith(parts.path.rstrip("/") + "/")
    ):
        raise OutboundPathError()
    return url


USED_EVENT = "token_used"
USE_DENIED_EVENT = "token_use_denied"
# A token the caller may use, in a request refused for another of its tokens: not sent.
NOT_USED_EVENT = "token_not_used"
OTHER_REFUSED_REASON = "other_token_refused"


async def _use_outcomes(
    agent: AgentResources, principal: Principal, decisions: dict[str, Decision | None]
) -> tuple[dict[str, tuple[str, Level, str]], dict[str, Resolution]]:
    """(event, level, reason) per token, and what the vault gave for the granted ones.

    A request is all or nothing: one refused token refuses it. Each token's record still says
    what came of that token: used; denied with the policy's reason; `invalid_format`,
    `not_found`, `erased` (...) for one that cannot be resolved; or `token_not_used` with
    `other_token_refused` for one that was allowed but not sent because another was refused.
    The vault is not asked once a token is refused: no value is decrypted for nothing.
    """
    outcomes: dict[str, tuple[str, Level, str]] = {}
    granted: list[str] = []
    for token, decision in decisions.items():
        if decision is None:
            outcomes[token] = (USE_DENIED_EVENT, Level.NONE, "invalid_format")
        elif not decision.granted:
            outcomes[token] = (USE_DENIED_EVENT, Level.NONE, decision.reason_code.value)
        else:
            granted.append(token)
    # Already refused (a denial or a malformed token): the others are not looked up.
    found = {} if outcomes else await resolve_granted(agent, principal, granted)
    for token in granted:
        resolution = found.get(token)
        if found and not isinstance(resolution, Resolved):
            # not_found, erased, key_missing or corrupt: this token's own reason.
            status = resolution.status if resolution is not None else NotFound(token).status
            outcomes[token] = (USE_DENIED_EVENT, Level.NONE, status)
    refused = bool(outcomes)  # a denial, a malformed or an unresolvable token
    for token in granted:
        if token in outcomes:
            continue
        if refused:
            outcomes[token] = (NOT_USED_EVENT, Level.NONE, OTHER_REFUSED_REASON)
        else:
            outcomes[token] = (USED_EVENT, Level.USE, Reason.GRANTED.value)
    # Records in the order the tokens came.
    return {t: outcomes[t] for t in decisions}, found


def _raw_tail(request: web.Request, name: str) -> str:
    raw_path = request.raw_path.split("?", 1)[0]
    return raw_path[len(PREFIX) + len(name) + 1 :]


async def handle_outbound(request: web.Request) -> web.StreamResponse:
    """`/out/<name>/<path>`: swap tokens for values, forward, redact the answer."""
    agent = agent_of(request)
    name = request.match_info["name"]
    route_label = f"out:{name}"
    principal = await authenticate(request, "outbound")
    route = agent.settings.outbound_route(name)
    if route is None:
        log.info("outbound_refused", destination=name[:64], subject=principal.subject)
        raise DestinationNotAllowedError()
    url = destination_url(route, _raw_tail(request, name), request.query_string)
    request_id = request[REQUEST_ID]

    body = await read_bounded(request, route.max_body_bytes)
    parsed = parse_body(
        body,
        request.headers.get(hdrs.CONTENT_TYPE),
        content_encoding=request.headers.get(hdrs.CONTENT_ENCODING),
        unknown_types="text",
        max_decoded_bytes=route.max_body_bytes,
    )
    spans = [
        (seg.index, m.start(), m.end(), m.group(0))
        for seg in parsed.segments
        for m in TOKEN_PATTERN.finditer(seg.text)
    ]
    tokens = list(dict.fromkeys(span[3] for span in spans))
    if len(tokens) > agent.settings.max_tokens_per_request:
        raise TooManyTokensError()

    policy_version = agent.policies.policy.version
    decisions = decide_tokens(
        agent, principal, tokens, purpose=None, ticket=None, requested=Level.USE
    )
    outcomes, found = await _use_outcomes(agent, principal, decisions)
    refused = any(event != USED_EVENT for event, _level, _reason in outcomes.values())
    # One record per token, each with its own outcome; audited before anything leaves (a
    # failed write is a 503 and nothing is sent).
    await agent.audit.write_many(
        [
            access_event(
                event,
                request_id,
                route_label,
                principal,
                token,
                level,
                reason,
                None,
                None,
                policy_version,
            )
            for token, (event, level, reason) in outcomes.items()
        ]
    )
    denied = [d for d in decisions.values() if d is not None and not d.granted]
    if denied:
        log.info("outbound_denied", destination=name, reason=denied[0].reason_code.value)
        raise_for_decision(denied[0])
    if refused:
        raise TokenUnresolvableError()
    values = {t: r.value for t, r in found.items() if isinstance(r, Resolved)}

    edits: dict[int, list[Edit]] = {}
    for index, start, end, token in spans:
        edits.setdefault(index, []).append(Edit(start, end, values[token]))
    out_body = parsed.rebuild(edits) if edits else body

    headers = end_to_end_headers(request.headers, _DROP_OUT)
    headers[REQUEST_ID_HEADER] = request_id
    timeout = ClientTimeout(
        total=agent.shared.upstream_timeout_s, connect=agent.shared.upstream_connect_timeout_s
    )
    started = time.perf_counter()
    answered = False
    try:
        async with agent.session.request(
            request.method,
            url,
            headers=headers,
            data=out_body,
            allow_redirects=False,  # a redirect could lead off the allow-listed origin
            timeout=timeout,
        ) as answer:
            answered = True
            agent.metrics.upstream_answered(
                "outbound", answer.status, time.perf_counter() - started
            )
            # The client decoded any Content-Encoding: the answer is plain here. Too big to
            # scan is too big to show: UpstreamResponseTooLargeError, never a cut answer.
            raw = await read_answer_bounded(answer, route.max_body_bytes)
            status, reason, answer_headers = answer.status, answer.reason, answer.headers
    except (ClientError, OSError, TimeoutError) as exc:
        if not answered:
            agent.metrics.upstream_answered("outbound", None, time.perf_counter() - started)
        raise upstream_failure(exc) from None

    back_headers = end_to_end_headers(answer_headers, _DROP_BACK)
    redaction = await agent.outbound_pipeline.redact(
        raw,
        content_type=back_headers.get(hdrs.CONTENT_TYPE),
        content_encoding=None,
        tenant=principal.tenant,
        unknown_types="text",
        max_decoded_bytes=route.max_body_bytes,
    )
    if redaction.changed:
        await agent.audit.write(
            AuditEvent(
                event="response_redacted",
                time=now_iso(),
                request_id=request_id,
                route=route_label,
                tenant=principal.tenant,
                counts=redaction.counts,
                tokens=redaction.tokens,
            )
        )
    back_headers[REQUEST_ID_HEADER] = request_id
    log.info(
        "outbound_forwarded",
        destination=name,
        status=status,
        tokens=len(tokens),
        findings=sum(redaction.counts.values()),
    )
    return web.Response(status=status, reason=reason, headers=back_headers, body=redaction.body)
