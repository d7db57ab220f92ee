"""The egress verifier: the last reader before a message leaves.

After redaction, the outgoing request (body, URL, header names and values) or answer is read
every way a plausible reader would (readings.py). A strong value found there that redaction
did not read and deliberately keep (seen.py) is a value redactor could not read: the message
is refused with `unreadable_value`, naming the reading, never the value. Work past the bounds
is refused too (`unverifiable_message`). Pure: bytes and strings in, an error or nothing out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from redactor.egress.readings import EgressLimits, Reader
from redactor.egress.seen import SeenValues
from redactor.errors import UnreadableAnswerError, UnreadableValueError

__all__ = ["EgressLimits", "SeenValues", "verify_answer", "verify_request"]

_BOUNDARY = re.compile(r"""(?i)boundary\s*=\s*(?:"([^"]{1,200})"|([^\s;,"]{1,200}))""")


def _boundary(content_type: str | None) -> bytes | None:
    if not content_type or "multipart" not in content_type.lower():
        return None
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).encode("latin-1", "replace")


def _verify(
    error: type[UnreadableValueError],
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    url: str,
    headers: Iterable[tuple[str, str]],
    unscanned_headers: frozenset[str],
    seen: SeenValues | None,
    limits: EgressLimits | None,
) -> None:
    def check(_kind: str, digits: str, path: str, inside: bool) -> None:
        if seen is None or not seen.kept(digits, inside=inside):
            raise error(path)

    reader = Reader(check, limits or EgressLimits.for_message(len(body)))
    reader.read_text(url, "url")
    lines: dict[str, list[str]] = {}
    for name, value in headers:
        reader.read_text(name, "header-name")
        # Structural headers (signatures, validators, credentials) are not read by redaction
        # on purpose, so a value there cannot be told from an id: they are not verified either.
        if name.lower() not in unscanned_headers:
            reader.read_text(value, "header")
            lines.setdefault(name.lower(), []).append(value)
    for values in lines.values():
        if len(values) > 1:
            # A reader joins the lines of one name (RFC 9110, 5.3: with `, `): a value split
            # over two `X-Note` lines is one value to it. Joined by a space here, so the
            # comma does not make the two halves a list of two numbers.
            reader.read_text(" ".join(values), "header")
    path = "body"
    data = body
    if content_encoding:
        # Layers in the order applied: undone last to first, each bounded.
        for coding in reversed([c for c in content_encoding.split(",") if c.strip()]):
            path += ">" + coding.strip().lower()
            data = reader.decode_layer(data, coding, path, 0)
    reader.read_bytes(data, path, 0, boundary=_boundary(content_type))


def verify_request(
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    url: str,
    headers: Iterable[tuple[str, str]],
    unscanned_headers: frozenset[str] = frozenset(),
    seen: SeenValues | None = None,
    limits: EgressLimits | None = None,
) -> None:
    """Verify a request about to be forwarded. Raises UnreadableValueError (422) or
    UnverifiableMessageError (422); returns None when it may leave."""
    _verify(
        UnreadableValueError,
        body,
        content_type=content_type,
        content_encoding=content_encoding,
        url=url,
        headers=headers,
        unscanned_headers=unscanned_headers,
        seen=seen,
        limits=limits,
    )


def verify_answer(
    body: bytes,
    *,
    content_type: str | None,
    headers: Iterable[tuple[str, str]],
    unscanned_headers: frozenset[str] = frozenset(),
    seen: SeenValues | None = None,
    limits: EgressLimits | None = None,
) -> None:
    """Verify an upstream answer about to be returned on a `redact_responses` route (its
    content coding already undone). Raises UnreadableAnswerError (502) or
    UnverifiableMessageError."""
    _verify(
        UnreadableAnswerError,
        body,
        content_type=content_type,
        content_encoding=None,
        url="",
        headers=headers,
        unscanned_headers=unscanned_headers,
        seen=seen,
        limits=limits,
    )
