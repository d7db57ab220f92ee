"""structlog configuration: JSON lines, UTC timestamps, request context, and a leak guard.

The leak guard is a safety net, not a mechanism: code never logs bodies or values. It masks
anything card- or SSN-shaped that slipped into an event anyway, and tests prove it works.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog

from redactor.detection.digits import digit_count

# Any run of 9 or more digits, possibly grouped by spaces, dashes or dots: the shape of every
# PAN and SSN. Deliberately broader than detection: in a log line a false mask costs nothing.
_DIGIT_RUN = re.compile(r"\d(?:[ \t.\-]{0,2}\d){8,}")
MASK = "[MASKED]"
_MIN_DIGITS = 9
# Identifiers pass whole, so a log line can be matched with the X-Request-ID header and the
# audit trail: a UUID (32 hex digits, bare or in its 8-4-4-4-12 groups). A random UUID often
# holds 9+ digits in a row; masking part of it only destroys the id. The hex must include a
# letter, and no more than 12 digits may follow one another (no PAN is shorter than 13), so a
# card number dressed up as a UUID is still masked.
# An audit chain id (16 hex digits, `secrets.token_hex(8)`) passes under the same rule, so a
# log line can be matched with the chain `redactor audit verify` names.
_UUID = re.compile(
    r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16}",
    re.IGNORECASE,
)
# The stamp in a rotated audit file's name (`audit.20261129T231500.123456Z-000000000042.jsonl`,
# `sink.rotated_name`): a time and a sequence number, no run of 13 digits. It is set aside
# while the rest of the string is masked, and the rest is masked as usual (a digit run
# before or after it is not joined to it: the stamp stands as a letter).
_AUDIT_STAMP = re.compile(r"(?<=\.)[0-9]{8}T[0-9]{6}\.[0-9]{6}Z-[0-9]{12}(?=\.jsonl)")
_LETTER = re.compile(r"[a-f]", re.IGNORECASE)
_PAN_LENGTH_RUN = re.compile(r"\d{13}")


def _is_identifier(value: str) -> bool:
    return (
        _UUID.fullmatch(value) is not None
        and _LETTER.search(value) is not None
        and _PAN_LENGTH_RUN.search(value.replace("-", "")) is None
    )


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        # Most values (ids, codes, names) have too few digits to be a PAN or SSN: one C pass
        # proves it before the pattern runs. Tokens hold at most four digits in a row: the
        # digit-run pattern never matches them.
        if digit_count(value) < _MIN_DIGITS or _is_identifier(value):
            return value
        if ".jsonl" in value and _AUDIT_STAMP.search(value):
            stamps = _AUDIT_STAMP.findall(value)
            rest = _DIGIT_RUN.sub(MASK, _AUDIT_STAMP.sub("\x00", value)).split("\x00")
            return "".join(part + stamp for part, stamp in zip(rest, [*stamps, ""], strict=True))
        return _DIGIT_RUN.sub(MASK, value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        # A card number can arrive as a JSON number, at any depth.
        return MASK if abs(value) >= 10**8 else value
    if isinstance(value, dict):
        return {_mask(k): _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    if isinstance(value, BaseException):
        return _DIGIT_RUN.sub(MASK, repr(value))
    return value


def leak_guard(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask digit runs shaped like a PAN or SSN in every value."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask(value)
    return event_dict


def _orjson_text(obj: Any, **kwargs: Any) -> str:
    # A log line as orjson writes it: a few microseconds less per request than json.dumps.
    # What orjson refuses (an integer past 64 bits) is written by the stdlib instead.
    try:
        return orjson.dumps(
            obj, default=kwargs.get("default"), option=orjson.OPT_NON_STR_KEYS
        ).decode()
    except TypeError:
        return json.dumps(obj, default=kwargs.get("default"))


class StdlibBridge(logging.Handler):
    """Every stdlib logger (`aiohttp.server`, `aiohttp.access`, `aiohttp.client`, `asyncio`,
    ...) written as redactor's own lines are: JSON, request context, the leak guard.

    aiohttp's server logs a malformed request (an obs-folded header, a bad Content-Length or
    chunk size, a NUL) with the parser's exception, whose text quotes the raw request bytes;
    Python's last-resort handler printed that traceback on stderr, outside the leak guard
    (issue 18, item 10). Here an exception is logged by its class only: never its text, never
    a traceback (a frame's repr can quote the bytes too).
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event: dict[str, Any] = dict(structlog.contextvars.get_contextvars())
            event.update(
                event="stdlib_logged",
                logger=record.name,
                level=record.levelname.lower(),
                timestamp=datetime.fromtimestamp(record.created, UTC).isoformat(),
                message=record.getMessage(),
            )
            if record.exc_info and record.exc_info[0] is not None:
                event["exc_type"] = record.exc_info[0].__name__
            leak_guard(None, record.levelname.lower(), event)
            # One write per line, as structlog's WriteLogger does.
            self._stream.write(_orjson_text(event) + "\n")
            self._stream.flush()
        except Exception:  # noqa: BLE001 - logging must not raise; a bare marker instead
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # The stdlib prints the record's message and traceback on stderr: not here.
        with contextlib.suppress(OSError, ValueError):
            self._stream.write('{"event":"stdlib_log_failed"}\n')


def _route_stdlib_logging(stream: TextIO, level: str) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, StdlibBridge):
            root.removeHandler(handler)
    root.addHandler(StdlibBridge(stream))
    root.setLevel(logging.getLevelNamesMapping()[level.upper()])
    for name in ("aiohttp.server", "aiohttp.access", "aiohttp.client", "aiohttp.web"):
        # Through the root handler only: no handler of their own may print the raw text.
        logging.getLogger(name).propagate = True
    logging.captureWarnings(True)


def configure_logging(
    *,
    level: str = "info",
    console: bool = False,
    stream: TextIO | None = None,
    cache: bool = False,
) -> None:
    """Configure structlog once, at start: contextvars first, UTC ISO time, JSON out.

    `cache` (the server): each module's logger is built once, on first use, instead of on
    every call; even a filtered-out debug line cost a logger build, several microseconds per
    message (issue 14). Tests that reconfigure logging leave it off.
    """
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if console
        else structlog.processors.JSONRenderer(serializer=_orjson_text)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            leak_guard,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # One write per line (the line and its newline together): print() writes them apart,
        # and with unbuffered stderr (PYTHONUNBUFFERED, as in the Dockerfile) two workers' lines
        # then interleave on the shared stream, two JSON objects on one line.
        logger_factory=structlog.WriteLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=cache,
    )
    _route_stdlib_logging(stream or sys.stderr, level)
