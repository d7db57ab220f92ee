"""Per-request context and the one place where typed errors become HTTP responses."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from redactor.errors import RedactorError
from vault.errors import VaultError

log = structlog.get_logger()

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = web.RequestKey("request_id", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# Nine digits in a row once every non-alphanumeric character is deleted: `4111-1111_1111/1111`
# and `536.90.4399` as much as the bare numbers (every PAN and SSN has 9+ digits).
_NON_ALNUM = re.compile(r"[\W_]+")
_NINE_DIGITS = re.compile(r"[0-9]{9}")


def new_request_id() -> str:
    """A fresh id: 32 hex digits with at least one letter and at most 12 digits in a row, so
    the log leak guard passes it whole (a run of 13+ digits is masked as a possible PAN)."""
    while True:
        candidate = os.urandom(16).hex()
        # Hex digits only, so "a letter" is "not all digits"; one linear search for the run
        # (the lookaheads of one pattern tried `.*` from every position: ~10 us an id).
        if not candidate.isdigit() and _THIRTEEN_DIGITS.search(candidate) is None:
            return candidate


_THIRTEEN_DIGITS = re.compile(r"[0-9]{13}")


def _request_id(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    # Propagate a sender's id only when it looks like one: it goes into every log line, the
    # audit trail and the upstream request. One holding a long digit run may be a card number
    # sent as an id: it is replaced, never logged or forwarded.
    if (
        0 < len(given) <= 128
        and given.isascii()
        and given.isprintable()
        and " " not in given
        and _NINE_DIGITS.search(_NON_ALNUM.sub("", given)) is None
    ):
        return given
    return new_request_id()


def error_response(
    status: int, code: str, request_id: str, fields: dict[str, str] | None = None, **extra: str
) -> web.Response:
    """The JSON error body every failure gets: a stable code and the request id, no value;
    `fields`: what the error adds (RedactorError.answer_fields)."""
    resp = web.json_response(
        {"error": code, **(fields or {}), "request_id": request_id}, status=status
    )
    resp.headers[REQUEST_ID_HEADER] = request_id
    for name, value in extra.items():
        resp.headers[name] = value
    return resp


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request id for every log line; map our errors to status + code."""
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    # Cleared in `finally`: a keep-alive connection's next request starts from a clean context.
    structlog.contextvars.bind_contextvars(request_id=request_id, method=request.method)
    try:
        return await handler(request)
    except (RedactorError, VaultError) as exc:
        status = getattr(exc, "status", 500)
        code = getattr(exc, "code", "internal_error")
        if status >= 500:
            log.error("request_failed", status=status, error=code)  # noqa: TRY400 - a typed error, its traceback says nothing new
        else:
            log.info("request_refused", status=status, error=code)
        retry_after = getattr(exc, "retry_after_s", None) or (5 if status == 503 else None)
        extra = {"Retry-After": str(retry_after)} if retry_after else {}
        fields = exc.answer_fields() if isinstance(exc, RedactorError) else None
        resp = error_response(status, code, request_id, fields, **extra)
        if getattr(exc, "close_connection", False):
            # The rest of the request never came (a slow client): no keep-alive after this.
            resp.force_close()
        return resp
    except web.HTTPException:
        raise
    except Exception:  # the last line of defence: a 500, never the input
        log.exception("request_crashed")
        return error_response(500, "internal_error", request_id)
    finally:
        structlog.contextvars.clear_contextvars()
