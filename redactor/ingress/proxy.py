"""Ingress handler: bounded read, verify, redact, audit, forward; and the way back.

Fail closed: a body that cannot be parsed, a vault that is down, an audit record that cannot be
written all end the request here with an error, and nothing is forwarded. The upstream is
called once; redactor never retries on its own (a webhook sender retries, and the vault gives
the same tokens again).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import structlog
from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from redactor.audit import AuditEvent, AuditWriteError, DeliveryEvent
from redactor.detection.digits import ascii_digit_count
from redactor.errors import RedactorError
from redactor.ingress.signatures import sign, verify
from redactor.middleware import REQUEST_ID, REQUEST_ID_HEADER
from redactor.relay import (
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    add_forwarded_headers,
    end_to_end_headers,
    read_bounded,
)
from redactor.resources import RESOURCES, Resources
from redactor.settings import RouteSettings

log = structlog.get_logger()

# Upstream answers up to this size are read whole and sent in one write; larger ones stream.
_BUFFERED_RESPONSE_BYTES = 256 * 1024
# Recomputed for the body we send, or set by the client for the upstream host.
_RECOMPUTED = frozenset({"content-length", "host"})


class NoRouteError(RedactorError):
    status = 404
    code = "no_route"
    message = "no route for this path"


async def _redact(
    res: Resources,
    route: RouteSettings,
    body: bytes,
    headers: CIMultiDictProxy[str] | CIMultiDict[str],
) -> tuple[bytes, dict[str, int], tuple[str, ...]]:
    if not body:
        return body, {}, ()
    started = time.perf_counter()
    redaction = await res.pipeline_for(route).redact(
        body,
        content_type=headers.get(hdrs.CONTENT_TYPE),
        content_encoding=headers.get(hdrs.CONTENT_ENCODING),
        tenant=route.tenant,
        unknown_types=route.unknown_content_types,
        max_decoded_bytes=route.max_body_bytes,
    )
    res.metrics.latency.labels(route.name).observe(time.perf_counter() - started)
    return redaction.body, redaction.counts, redaction.tokens


# A URL part with fewer digits cannot hold a PAN or SSN: skip the pipeline for it.
_MIN_URL_DIGITS = 9


async def _redact_url(
    res: Resources, route: RouteSettings, raw_path_qs: str
) -> tuple[str, str, dict[str, int], tuple[str, ...]]:
    """The raw path and query with values tokenised: `GET /search?q=4111...` must not carry
    the number upstream either. The query is read as a form (`+`, `%20`), the path as text."""
    raw_path, _, raw_query = raw_path_qs.partition("?")
    counts: Counter[str] = Counter()
    tokens: list[str] = []
    parts = []
    for part, content_type in (
        (raw_path, "text/plain"),
        (raw_query, "application/x-www-form-urlencoded"),
    ):
        if ascii_digit_count(part) >= _MIN_URL_DIGITS:
            new, found, issued = await _redact(
                res, route, part.encode(), CIMultiDict({hdrs.CONTENT_TYPE: content_type})
            )
            part = new.decode("utf-8", "surrogateescape")
            counts.update(found)
            tokens.extend(t for t in issued if t not in tokens)
        parts.append(part)
    return parts[0], parts[1], dict(counts), tuple(tokens)


async def handle_proxy(request: web.Request) -> web.StreamResponse:
    """Every ingress request: route, read, verify, redact, audit, forward."""
    res = request.app[RESOURCES]
    route = res.settings.route_for(request.path)
    if route is None:
        raise NoRouteError()
    structlog.contextvars.bind_contextvars(route=route.name)
    try:
        return await _proxy(request, res, route)
    except RedactorError as exc:
        res.metrics.failures.labels(route.name, exc.code).inc()
        res.metrics.requests.labels(route.name, str(exc.status)).inc()
        if not isinstance(exc, AuditWriteError):
            upstream_failed = isinstance(exc, UpstreamTimeoutError | UpstreamUnavailableError)
            await _audit_delivery(
                request,
                res,
                route,
                "upstream_failed" if upstream_failed else "refused",
                exc.status,
                exc.code,
            )
        raise
    except Exception as exc:
        code = getattr(exc, "code", "internal_error")
        res.metrics.failures.labels(route.name, str(code)).inc()
        raise


async def _proxy(request: web.Request, res: Resources, route: RouteSettings) -> web.StreamResponse:
    request_id = request[REQUEST_ID]
    body = await read_bounded(request, route.max_body_bytes)
    verify(route.signature, request.headers, body, now=time.time())
    new_body, counts, tokens = await _redact(res, route, body, request.headers)
    raw_path, raw_query, url_counts, url_tokens = await _redact_url(res, route, request.raw_path)
    if url_counts:
        counts = dict(Counter(counts) + Counter(url_counts))
        tokens = (*tokens, *(t for t in url_tokens if t not in tokens))

    # The audit record is written before the body leaves; if it cannot be, nothing leaves.
    await res.audit.write(
        AuditEvent(
            event="message_redacted" if counts else "message_scanned",
            time=datetime.now(UTC).isoformat(timespec="milliseconds"),
            request_id=request_id,
            route=route.name,
            tenant=route.tenant,
            counts=counts,
            tokens=tokens,
        )
    )
    for entity, n in counts.items():
        res.metrics.findings.labels(route.name, entity).inc(n)

    headers = end_to_end_headers(request.headers, _RECOMPUTED)
    add_forwarded_headers(request, headers)
    headers[REQUEST_ID_HEADER] = request_id
    headers.update(sign(route.signature, request.headers, new_body))
    url = route.upstream_url(raw_path, raw_query)
    return await _forward(request, res, route, url, headers, new_body, counts)


async def _forward(
    request: web.Request,
    res: Resources,
    route: RouteSettings,
    url: URL,
    headers: CIMultiDict[str],
    body: bytes,
    counts: dict[str, int],
) -> web.StreamResponse:
    session: ClientSession = res.session
    timeout = ClientTimeout(
        total=res.settings.upstream_timeout_s, connect=res.settings.upstream_connect_timeout_s
    )
    try:
        async with session.request(
            request.method, url, headers=headers, data=body, allow_redirects=False, timeout=timeout
        ) as upstream:
            if route.redact_responses:
                redacted = await _redacted_response(request, res, route, upstream)
                await _audit_delivery(request, res, route, "forwarded", redacted.status, None)
                return redacted
            headers = end_to_end_headers(
                upstream.headers, frozenset({"content-length", "content-encoding"})
            )
            headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
            length = upstream.content_length
            if length is not None and length <= _BUFFERED_RESPONSE_BYTES:
                # A webhook's answer is small: one write, like a plain proxy, not a stream.
                body = await upstream.read()
                response: web.StreamResponse = web.Response(
                    status=upstream.status, reason=upstream.reason, headers=headers, body=body
                )
            else:
                response = web.StreamResponse(
                    status=upstream.status, reason=upstream.reason, headers=headers
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    await response.write(chunk)
                await response.write_eof()
    except TimeoutError:
        raise UpstreamTimeoutError() from None
    except (ClientError, OSError):
        raise UpstreamUnavailableError() from None
    res.metrics.requests.labels(route.name, str(response.status)).inc()
    log.info("request_forwarded", status=response.status, findings=sum(counts.values()))
    await _audit_delivery(request, res, route, "forwarded", response.status, None)
    return response


_DELIVERY_EVENTS = {
    "forwarded": "message_delivered",
    "refused": "message_refused",
    "upstream_failed": "message_upstream_failed",
}


async def _audit_delivery(
    request: web.Request,
    res: Resources,
    route: RouteSettings,
    outcome: str,
    status: int,
    code: str | None,
) -> None:
    # After the fact: the message was already forwarded or refused, so a failed write here
    # cannot stop anything; it is logged and counted, and the redaction record stands.
    try:
        await res.audit.write(
            DeliveryEvent(
                event=_DELIVERY_EVENTS[outcome],
                time=datetime.now(UTC).isoformat(timespec="milliseconds"),
                request_id=request[REQUEST_ID],
                route=route.name,
                tenant=route.tenant,
                outcome=outcome,
                status=status,
                code=code,
            )
        )
    except AuditWriteError:
        res.metrics.failures.labels(route.name, "audit_delivery_unrecorded").inc()
        log.error("delivery_not_audited", outcome=outcome)  # noqa: TRY400 - the sink logged why


async def _redacted_response(
    request: web.Request, res: Resources, route: RouteSettings, upstream: ClientResponse
) -> web.Response:
    # aiohttp's client already decoded the response's Content-Encoding: the body is plain.
    raw = await upstream.content.read(route.max_body_bytes + 1)
    if len(raw) > route.max_body_bytes:
        # Too big to scan, so too big to show: fail closed on the way back as well.
        raise UpstreamUnavailableError("response too large to scan")
    headers = end_to_end_headers(
        upstream.headers, frozenset({"content-length", "content-encoding"})
    )
    new_body, counts, tokens = await _redact(res, route, raw, headers)
    if counts:
        await res.audit.write(
            AuditEvent(
                event="response_redacted",
                time=datetime.now(UTC).isoformat(timespec="milliseconds"),
                request_id=request[REQUEST_ID],
                route=route.name,
                tenant=route.tenant,
                counts=counts,
                tokens=tokens,
            )
        )
    headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
    res.metrics.requests.labels(route.name, str(upstream.status)).inc()
    return web.Response(
        status=upstream.status, reason=upstream.reason, headers=headers, body=new_body
    )
