"""Ingress handler: bounded read, verify, redact, audit, forward; and the way back.

Fail closed: a body that cannot be parsed, a vault that is down, an audit record that cannot be
written all end the request here with an error, and nothing is forwarded. The upstream is
called once; redactor never retries on its own (a webhook sender retries, and the vault gives
the same tokens again). A `delivery: queued` route stores the redacted request in the outbox
instead and answers 202; `delivery.py` delivers it, and retries.
"""

from __future__ import annotations

import asyncio
import functools
import time

import structlog
from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from redactor.audit import AuditEvent, AuditWriteError, DeliveryEvent, now_iso
from redactor.bodies.http_parts import HeaderValues, UrlPath, UrlQuery
from redactor.errors import RedactorError, UnreadableAnswerPartError, UnreadablePartError
from redactor.ingress.config import RouteSettings
from redactor.ingress.links import LinkRewriter
from redactor.ingress.outbox import OutboxUnavailableError, is_url_verification, new_item
from redactor.ingress.pipeline import Redaction, ScannedPart
from redactor.ingress.resources import INGRESS, IngressResources
from redactor.ingress.signatures import sign, verify
from redactor.middleware import REQUEST_ID, REQUEST_ID_HEADER
from redactor.relay import (
    MAYBE_SENT,
    NEVER_SENT,
    add_forwarded_headers,
    end_to_end_headers,
    read_answer_bounded,
    read_bounded,
    upstream_failure,
)
from vault.errors import VaultError

log = structlog.get_logger()

# Upstream answers up to this size are read whole and sent in one write; larger ones stream.
_BUFFERED_RESPONSE_BYTES = 256 * 1024
# Recomputed for the body we send, or set by the client for the upstream host.
_RECOMPUTED = frozenset({"content-length", "host"})
# Headers the client must not invent for the upstream.
_NO_AUTO_HEADERS = frozenset({"Content-Type"})
# Set again for the answer we send (aiohttp frames and, where it compresses, encodes it).
_RESPONSE_RECOMPUTED = frozenset({"content-length", "content-encoding"})


@functools.lru_cache(maxsize=4)
def _timeout(total: float, connect: float) -> ClientTimeout:
    return ClientTimeout(total=total, connect=connect)


class NoRouteError(RedactorError):
    status = 404
    code = "no_route"
    message = "no route for this path"


async def _redact(
    request: web.Request,
    res: IngressResources,
    route: RouteSettings,
    body: bytes,
    headers: CIMultiDictProxy[str] | CIMultiDict[str],
    extras: tuple[ScannedPart, ...] = (),
) -> Redaction:
    started = time.perf_counter()
    try:
        redaction = await _redact_in_pipeline(res, route, body, headers, extras)
    except UnreadablePartError as exc:
        for kind in exc.kinds:
            res.metrics.unread_part(route.name, kind, "refused")
        raise
    res.metrics.redaction_took(route.name, time.perf_counter() - started)
    for number, part in enumerate(redaction.unread):
        action = "stripped" if number in redaction.stripped else "passed"
        res.metrics.unread_part(route.name, part.kind, action)
    return redaction


def unread_record(redaction: Redaction) -> tuple[dict[str, object], ...]:
    """The audit record's list of unread parts: type, size, kind, what became of each."""
    return tuple(
        {
            "type": part.media_type,
            "size": part.size,
            "kind": part.kind,
            "action": "stripped" if number in redaction.stripped else "passed",
            "value_found": part.value_found,
        }
        for number, part in enumerate(redaction.unread)
    )


async def _redact_in_pipeline(
    res: IngressResources,
    route: RouteSettings,
    body: bytes,
    headers: CIMultiDictProxy[str] | CIMultiDict[str],
    extras: tuple[ScannedPart, ...],
) -> Redaction:
    return await res.pipeline_for(route).redact(
        body,
        content_type=headers.get(hdrs.CONTENT_TYPE),
        # Every Content-Encoding line, in order: a reader applies them all (`gzip` then `gzip`).
        content_encoding=", ".join(headers.getall(hdrs.CONTENT_ENCODING, ())) or None,
        tenant=route.tenant,
        unknown_types=route.unknown_content_types,
        max_decoded_bytes=route.max_body_bytes,
        limits=route.limits,
        extras=extras,
        unreadable_parts=route.unreadable_parts,
    )


async def handle_proxy(request: web.Request) -> web.StreamResponse:
    """Every ingress request: route, read, verify, redact, audit, forward."""
    res = request.app[INGRESS]
    route = res.settings.route_for(request.path)
    if route is None:
        raise NoRouteError()
    structlog.contextvars.bind_contextvars(route=route.name)
    try:
        return await _proxy(request, res, route)
    except RedactorError as exc:
        res.metrics.failed(route.name, exc.code)
        res.metrics.request_done(route.name, exc.status)
        if not isinstance(exc, AuditWriteError):
            # "not_sent": the upstream never got it; "upstream_failed": it may have.
            if isinstance(exc, NEVER_SENT):
                outcome = "not_sent"
            elif isinstance(exc, MAYBE_SENT):
                outcome = "upstream_failed"
            else:
                outcome = "refused"
            await _audit_delivery(
                request, res, route, outcome, exc.status, exc.code, getattr(exc, "reading", None)
            )
        raise
    except Exception as exc:
        code = getattr(exc, "code", "internal_error")
        res.metrics.failed(route.name, str(code))
        raise


async def _proxy(
    request: web.Request, res: IngressResources, route: RouteSettings
) -> web.StreamResponse:
    request_id = request[REQUEST_ID]
    if route.delivery.queued:
        # Back-pressure before any work: above the high-water mark the sender retries later.
        res.outbox_depth.check(route, time.time())
    body = await read_bounded(
        request,
        route.max_body_bytes,
        grace_s=res.settings.header_timeout_s,
        min_rate_bytes_s=res.settings.min_body_rate_bytes_s,
    )
    verify(route.signature, request.headers, body, now=time.time())
    # The message is the body and the parts around it: path, query and header values are
    # scanned with it (a card in `X-Customer-Note` or in `/customers/%34%31...` too), and
    # tokenised in the same vault call.
    raw_path, _, raw_query = request.raw_path.partition("?")
    headers = end_to_end_headers(request.headers, _RECOMPUTED)
    header_items = list(headers.items())
    extras = (
        UrlPath(raw_path),
        UrlQuery(raw_query),
        HeaderValues(header_items, route.unscanned_headers),
    )
    redaction = await _redact(request, res, route, body, request.headers, extras)
    new_body, counts, tokens = redaction.body, redaction.counts, redaction.tokens
    new_path, new_query, new_headers = redaction.extras
    raw_path = new_path if new_path is not None else raw_path
    raw_query = new_query if new_query is not None else raw_query
    if new_headers:
        headers = CIMultiDict(
            (name, new_headers.get(i, value)) for i, (name, value) in enumerate(header_items)
        )
    # The second reader: what leaves, read every way a reader may read it. A value redaction
    # could not read refuses the message (422) before the audit record and the forward. Our
    # own headers (forwarding, signature, request id) are added after it.
    await res.pipeline_for(route).verify(
        new_body,
        answer=False,
        content_type=headers.get(hdrs.CONTENT_TYPE),
        # Every Content-Encoding line, joined: a reader applies them all (issue 18, item 6).
        content_encoding=", ".join(headers.getall(hdrs.CONTENT_ENCODING, [])) or None,
        url=f"{raw_path}?{raw_query}" if raw_query else raw_path,
        headers=list(headers.items()),
        unscanned_headers=route.unscanned_headers,
        seen=redaction.seen,
    )

    # The audit record is written before the body leaves; if it cannot be, nothing leaves.
    await res.audit.write(
        AuditEvent(
            event="message_redacted" if counts else "message_scanned",
            time=now_iso(),
            request_id=request_id,
            route=route.name,
            tenant=route.tenant,
            counts=counts,
            tokens=tokens,
            unread_parts=unread_record(redaction),
        )
    )
    for entity, n in counts.items():
        res.metrics.found(route.name, entity, n)

    add_forwarded_headers(request, headers)
    headers[REQUEST_ID_HEADER] = request_id
    headers.update(sign(route.signature, request.headers, new_body))
    if route.delivery.queued and not is_url_verification(new_body, headers.get(hdrs.CONTENT_TYPE)):
        target = f"{raw_path}?{raw_query}" if raw_query else raw_path
        return await _enqueue(request, res, route, target, headers, new_body)
    url = route.upstream_url(raw_path, raw_query)
    return await _forward(request, res, route, url, headers, new_body, counts)


async def _enqueue(
    request: web.Request,
    res: IngressResources,
    route: RouteSettings,
    target: str,
    headers: CIMultiDict[str],
    body: bytes,
) -> web.StreamResponse:
    # The tokens this body holds were committed by the vault before the rewrite (the
    # tokenize group commit), so the outbox row is written after them: nothing in the outbox
    # ever refers to a token that is not durable. If this write fails the sender gets 503 and
    # sends again (the same values get the same tokens); nothing was accepted.
    item = new_item(
        route, request[REQUEST_ID], request.method, target, list(headers.items()), body,
        headers.get(hdrs.CONTENT_TYPE), time.time(),
    )  # fmt: skip
    try:
        async with asyncio.timeout(res.shared.vault_timeout_s):
            await res.vault.outbox.enqueue(item)
    except (TimeoutError, VaultError):
        # A RedactorError, so the message's record says it was refused (after its
        # redaction record): the sender got 503 and nothing was queued.
        raise OutboxUnavailableError() from None
    res.outbox_depth.enqueued(route.name)
    status = route.delivery.answer_status
    res.metrics.request_done(route.name, status)
    await _audit_delivery(request, res, route, "queued", status, None, outbox_id=item.id)
    # Woken after the record: this worker's trail says `queued` before `delivered`.
    if res.deliverer is not None:
        res.deliverer.wake()
    answer_headers = {REQUEST_ID_HEADER: request[REQUEST_ID]}
    if status == 204:
        return web.Response(status=status, headers=answer_headers)
    return web.json_response(
        {"status": "queued", "outbox_id": item.id, "request_id": request[REQUEST_ID]},
        status=status,
        headers=answer_headers,
    )


async def _forward(
    request: web.Request,
    res: IngressResources,
    route: RouteSettings,
    url: URL,
    headers: CIMultiDict[str],
    body: bytes,
    counts: dict[str, int],
) -> web.StreamResponse:
    session: ClientSession = res.session
    timeout = _timeout(res.shared.upstream_timeout_s, res.shared.upstream_connect_timeout_s)
    started = time.perf_counter()
    answered = False
    try:
        async with session.request(
            request.method,
            url,
            headers=headers,
            data=body,
            allow_redirects=False,
            timeout=timeout,
            # aiohttp labels bytes `application/octet-stream` when no type is given: a body
            # the sender sent untyped goes on untyped (issue 18, item 5).
            skip_auto_headers=_NO_AUTO_HEADERS,
        ) as upstream:
            answered = True
            res.metrics.upstream_answered("ingress", upstream.status, time.perf_counter() - started)
            if route.redact_responses:
                redacted = await _redacted_response(request, res, route, upstream)
                await _audit_delivery(request, res, route, "forwarded", redacted.status, None)
                return redacted
            headers = end_to_end_headers(upstream.headers, _RESPONSE_RECOMPUTED)
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
                try:
                    async for chunk in upstream.content.iter_chunked(64 * 1024):
                        await response.write(chunk)
                    await response.write_eof()
                except (ClientError, OSError, TimeoutError):
                    # The status line is out: a second response (502) written into the same
                    # stream would corrupt it. Abort the connection, so the client sees a
                    # cut answer for what it is.
                    _abort(request)
                    res.metrics.failed(route.name, "upstream_broke_mid_answer")
                    log.warning("upstream_broke_mid_answer", status=response.status)
                    await _audit_delivery(
                        request, res, route, "upstream_failed", response.status,
                        "upstream_broke_mid_answer",
                    )  # fmt: skip
                    return response
    except (ClientError, OSError, TimeoutError) as exc:
        if not answered:
            res.metrics.upstream_answered("ingress", None, time.perf_counter() - started)
        raise upstream_failure(exc) from None
    res.metrics.request_done(route.name, response.status)
    if res.settings.access_log:
        log.info("request_forwarded", status=response.status, findings=sum(counts.values()))
    await _audit_delivery(request, res, route, "forwarded", response.status, None)
    return response


def _abort(request: web.Request) -> None:
    transport = request.transport
    request.protocol.force_close()
    if transport is not None:
        transport.abort()


_DELIVERY_EVENTS = {
    "queued": "message_queued",
    "forwarded": "message_delivered",
    "refused": "message_refused",
    "upstream_failed": "message_upstream_failed",
    "not_sent": "message_not_sent",
}


async def _audit_delivery(
    request: web.Request,
    res: IngressResources,
    route: RouteSettings,
    outcome: str,
    status: int,
    code: str | None,
    reading: str | None = None,
    outbox_id: str | None = None,
) -> None:
    # After the fact: the message was already forwarded or refused, so a failed write here
    # cannot stop anything; it is logged and counted, and the redaction record stands.
    try:
        await res.audit.write(
            DeliveryEvent(
                event=_DELIVERY_EVENTS[outcome],
                time=now_iso(),
                request_id=request[REQUEST_ID],
                route=route.name,
                tenant=route.tenant,
                outcome=outcome,
                status=status,
                code=code,
                reading=reading,
                outbox_id=outbox_id,
            )
        )
    except AuditWriteError:
        res.metrics.failed(route.name, "audit_delivery_unrecorded")
        log.error("delivery_not_audited", outcome=outcome)  # noqa: TRY400 - the sink logged why


async def _redacted_response(
    request: web.Request, res: IngressResources, route: RouteSettings, upstream: ClientResponse
) -> web.Response:
    # aiohttp's client already decoded the response's Content-Encoding: the body is plain.
    # The whole answer is read (every chunk) up to the limit; past it, a clear 502: too big
    # to scan is too big to show, and a cut answer is never sent.
    raw = await read_answer_bounded(upstream, route.max_body_bytes)
    headers = end_to_end_headers(upstream.headers, _RESPONSE_RECOMPUTED)
    try:
        redaction = await _redact(request, res, route, raw, headers)
    except UnreadablePartError as exc:
        # An answer with a part `reject` refuses: the upstream's fault, a 502 like the others.
        raise UnreadableAnswerPartError(exc.kinds) from None
    counts, tokens = redaction.counts, redaction.tokens
    # Links to the upstream (links.next, Location, Link) lead back through redactor, so a
    # client that follows them stays behind redaction and the audit.
    links = LinkRewriter.for_route(
        route.upstream, route.path_prefix, route.strip_prefix, request.scheme, request.host
    )
    new_body = links.body(redaction.body)
    links.headers(headers)
    await res.pipeline_for(route).verify(
        new_body,
        answer=True,
        content_type=headers.get(hdrs.CONTENT_TYPE),
        content_encoding=None,
        url="",
        headers=list(headers.items()),
        unscanned_headers=route.unscanned_headers,
        seen=redaction.seen,
    )
    if counts:
        await res.audit.write(
            AuditEvent(
                event="response_redacted",
                time=now_iso(),
                request_id=request[REQUEST_ID],
                route=route.name,
                tenant=route.tenant,
                counts=counts,
                tokens=tokens,
            )
        )
    headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
    res.metrics.request_done(route.name, upstream.status)
    return web.Response(
        status=upstream.status, reason=upstream.reason, headers=headers, body=new_body
    )
