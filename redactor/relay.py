"""HTTP plumbing both sides share: bounded reads, end-to-end headers, upstream errors.

The ingress proxy and the agent's outbound route both relay a request to an upstream; what they
have in common lives here, so neither side imports the other.
"""

from __future__ import annotations

import asyncio
import functools

from aiohttp import ClientConnectorError, ClientResponse, hdrs, web
from aiohttp import ConnectionTimeoutError as ClientConnectionTimeout
from multidict import CIMultiDict, CIMultiDictProxy

from redactor.errors import BodyTooLargeError, RedactorError

# RFC 9110 section 7.6.1: connection-specific fields are not forwarded, nor any field the
# Connection header names.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
        "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    )
)  # fmt: skip


class UpstreamUnavailableError(RedactorError):
    """No connection to the upstream: the message was never sent (safe to send again)."""

    status = 502
    code = "upstream_unavailable"
    message = "upstream could not be reached; the message was not delivered"
    retry_after_s = 5


class UpstreamConnectTimeoutError(RedactorError):
    """No connection in time (the upstream is slow to accept, or the pool is full): the message
    was never sent (safe to send again)."""

    status = 504
    code = "upstream_connect_timeout"
    message = "no connection to the upstream in time; the message was not delivered"
    retry_after_s = 5


class UpstreamAnswerLostError(RedactorError):
    """The connection broke after the message was sent: the upstream may have it, so a sender
    that retries may deliver it twice."""

    status = 502
    code = "upstream_answer_lost"
    message = "the upstream connection broke after the message was sent; it may have been delivered"
    retry_after_s = 5


class UpstreamResponseTooLargeError(RedactorError):
    """An answer that must be scanned is bigger than the route's limit: never sent cut short."""

    status = 502
    code = "upstream_response_too_large"
    message = "upstream answer exceeds the size limit for scanning"


class RequestTimeoutError(RedactorError):
    """The client sent its body too slowly (408); the connection is closed after the answer."""

    status = 408
    code = "request_timeout"
    message = "request body was not received in time"
    close_connection = True


class UpstreamTimeoutError(RedactorError):
    """Sent, and no answer in time: the upstream may have it."""

    status = 504
    code = "upstream_timeout"
    message = "upstream did not answer in time; the message may have been delivered"
    retry_after_s = 5


def upstream_failure(exc: BaseException) -> RedactorError:
    """The typed error for a failed upstream call, telling "never sent" (safe to resend) from
    "sent, answer lost" (the upstream may have it). aiohttp's connect-phase errors, the
    connection pool's wait included, are the only ones that prove nothing was sent."""
    if isinstance(exc, ClientConnectionTimeout):
        return UpstreamConnectTimeoutError()
    if isinstance(exc, TimeoutError):
        return UpstreamTimeoutError()
    if isinstance(exc, ClientConnectorError):
        return UpstreamUnavailableError()
    return UpstreamAnswerLostError()


# The upstream never got the message / it may have: senders treat the two differently.
NEVER_SENT = (UpstreamUnavailableError, UpstreamConnectTimeoutError)
MAYBE_SENT = (UpstreamTimeoutError, UpstreamAnswerLostError)


def _connection_listed(headers: CIMultiDictProxy[str]) -> set[str]:
    listed: set[str] = set()
    if hdrs.CONNECTION not in headers:
        return listed
    for value in headers.getall(hdrs.CONNECTION, []):
        listed.update(v.strip().lower() for v in value.split(",") if v.strip())
    return listed


def end_to_end_headers(
    headers: CIMultiDictProxy[str], drop: frozenset[str] = frozenset()
) -> CIMultiDict[str]:
    """The headers a proxy passes on: hop-by-hop and `drop` removed."""
    listed = _connection_listed(headers)
    skip = _skipped(drop) | listed if listed else _skipped(drop)
    return CIMultiDict([(k, v) for k, v in headers.items() if k.lower() not in skip])


@functools.lru_cache(maxsize=16)
def _skipped(drop: frozenset[str]) -> frozenset[str]:
    # A few constant `drop` sets per process: the union is made once, not per request.
    return HOP_BY_HOP | drop


def add_forwarded_headers(request: web.Request, headers: CIMultiDict[str]) -> None:
    """Append this hop to `X-Forwarded-*` and RFC 7239 `Forwarded`.

    The prior hops are read from `headers`, the outgoing (redacted) ones, never from the
    request: a value a sender wrote into `Forwarded` was tokenised there, and the request's
    own copy still holds it (issue 18's second round found it forwarded raw). Every line of a
    repeated header is kept, joined, as RFC 9110 allows."""
    peer = request.remote or "unknown"
    proto = request.scheme
    host = request.host
    prior = ", ".join(headers.getall("X-Forwarded-For", []))
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    headers["X-Forwarded-Proto"] = proto
    headers["X-Forwarded-Host"] = host
    node = f'"[{peer}]"' if ":" in peer else peer
    forwarded = f'for={node};proto={proto};host="{host}"'
    prior_fwd = ", ".join(headers.getall("Forwarded", []))
    headers["Forwarded"] = f"{prior_fwd}, {forwarded}" if prior_fwd else forwarded


async def read_bounded(
    request: web.Request,
    limit: int,
    *,
    grace_s: float | None = None,
    min_rate_bytes_s: float | None = None,
) -> bytes:
    """The whole request body, or BodyTooLargeError as soon as it passes `limit` bytes.

    With `grace_s` and `min_rate_bytes_s`, a body trickled slower than `grace_s` plus its
    size at that rate raises RequestTimeoutError (408), and the connection is closed after
    the answer: a slow client cannot hold a connection open for minutes.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLargeError()
    chunks: list[bytes] = []
    size = 0
    content = request.content
    started: float | None = None
    while True:
        # What has arrived is taken at once; only a wait for more needs a deadline (a small
        # webhook is whole in the first read: no timer, issue 14).
        chunk = content.read_nowait()
        if not chunk:
            if content.at_eof():
                break
            if grace_s is None or min_rate_bytes_s is None:
                chunk = await content.readany()
            else:
                # The next byte is due before the deadline that the bytes so far have earned.
                # (The clock is read only now: most bodies are whole in the first read, and
                # asyncio.get_running_loop() asks the kernel for the process id.)
                if started is None:
                    started = asyncio.get_running_loop().time()
                deadline = started + grace_s + (size + 1) / min_rate_bytes_s
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await content.readany()
                except TimeoutError:
                    raise RequestTimeoutError() from None
            if not chunk:
                break
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError()
        chunks.append(chunk)
    return b"".join(chunks)


async def read_answer_bounded(upstream: ClientResponse, limit: int) -> bytes:
    """The whole upstream answer (every chunk, not one buffered read), or
    UpstreamResponseTooLargeError once it passes `limit` bytes."""
    if upstream.content_length is not None and upstream.content_length > limit:
        raise UpstreamResponseTooLargeError()
    chunks: list[bytes] = []
    size = 0
    async for chunk in upstream.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise UpstreamResponseTooLargeError()
        chunks.append(chunk)
    return b"".join(chunks)
