"""Content type -> codec. The one entry point the pipeline calls: `parse_body`.

There is no passthrough: a type we have no codec for is scanned as text (its bytes decoded as
UTF-8 with surrogateescape, so they round-trip exactly) or refused, as the route chooses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from redactor.bodies.content_encoding import DEFAULT_MAX_DECODED_BYTES, EncodedBody, decode_content
from redactor.bodies.email_body import EmailBody, parse_email
from redactor.bodies.folding import FOLDED_TYPES
from redactor.bodies.form_body import parse_form
from redactor.bodies.html_body import parse_html, parse_xml
from redactor.bodies.json_body import parse_json
from redactor.bodies.limits import BodyLimits, budget_for, check_segments
from redactor.bodies.mime import parse_content_type
from redactor.bodies.multipart_body import parse_multipart
from redactor.bodies.nested import value_view
from redactor.bodies.segments import Edit, ParsedBody
from redactor.bodies.text_body import parse_text
from redactor.bodies.text_readings import parse_text_readings
from redactor.errors import UnsupportedMediaTypeError

__all__ = ["parse_body"]

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_JSON_TYPES = frozenset({"application/json", "text/json"})
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_XML_TYPES = frozenset({"application/xml", "text/xml"})


class _BareMultipart:
    """A top-level multipart/mixed|alternative|related body, walked like a message body.

    The e-mail walker needs a header block; we give it one holding the request's
    Content-Type and strip it again on rebuild (Content-Type is never a segment).
    """

    __slots__ = ("_inner", "_prefix_len", "segments", "unread_parts")

    def __init__(self, body: bytes, content_type: str) -> None:
        prefix = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
        self._prefix_len = len(prefix)
        self._inner = EmailBody(prefix + body)
        self.segments = self._inner.segments
        self.unread_parts = self._inner.unread_parts

    def rebuild(
        self, edits: Mapping[int, Sequence[Edit]], strip: frozenset[int] = frozenset()
    ) -> bytes:
        """The body without the synthetic header block. Raises ValueError for invalid edits."""
        return self._inner.rebuild(edits, strip)[self._prefix_len :]


# gzip, zlib (the common window sizes and levels), bzip2, xz, zstd.
COMPRESSED_MAGIC = (
    b"\x1f\x8b",
    b"\x78\x01",
    b"\x78\x5e",
    b"\x78\x9c",
    b"\x78\xda",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
)


class CompressedWithoutEncodingError(UnsupportedMediaTypeError):
    """A body of no known type that is compressed data, sent without Content-Encoding."""

    code = "compressed_without_encoding"
    message = "body is compressed data but names no Content-Encoding"


def _refuse_compressed(body: bytes) -> None:
    """Compressed bytes under a text or unknown label that says nothing of it: a reader may
    well inflate them (the egress verifier does), while scanning them as text finds nothing
    real and may rewrite a digit run inside the stream, corrupting it. Refused (415)."""
    if body.startswith(COMPRESSED_MAGIC):
        raise CompressedWithoutEncodingError()


def _parse_decoded(
    body: bytes,
    content_type: str | None,
    unknown_types: Literal["text", "refuse"],
    min_segment_digits: int,
) -> ParsedBody:
    parsed = parse_content_type(content_type)
    media_type = parsed.media_type if parsed else None
    charset = parsed.params.get("charset") if parsed else None
    if parsed is not None and media_type is not None and content_type is not None:
        if media_type in _JSON_TYPES or media_type.endswith("+json"):
            return parse_json(
                body, charset, value_view=value_view, min_segment_digits=min_segment_digits
            )
        if media_type in _HTML_TYPES:
            return parse_html(body, charset)
        if media_type in _XML_TYPES or media_type.endswith("+xml"):
            _refuse_compressed(body)
            return parse_xml(body, charset)
        if media_type == "application/x-www-form-urlencoded":
            return parse_form(body, charset)
        if media_type == "multipart/form-data":
            return parse_multipart(body, parsed.params.get("boundary"))
        if media_type in _MESSAGE_TYPES:
            return parse_email(body)
        if media_type.startswith("multipart/"):
            return _BareMultipart(body, content_type.strip())
        if media_type.startswith("text/"):
            _refuse_compressed(body)
            if media_type in FOLDED_TYPES:
                return parse_text(body, charset, folded=True)
            # JSON, JSON lines or a form labelled text is read as what it is (issue 18, item 5).
            return parse_text_readings(body, charset)
    if unknown_types == "refuse":
        raise UnsupportedMediaTypeError()
    _refuse_compressed(body)
    # Scanned as text, never passed through: surrogateescape keeps arbitrary bytes exact.
    return parse_text_readings(body, None)


def parse_body(
    body: bytes,
    content_type: str | None,
    *,
    content_encoding: str | None = None,
    unknown_types: Literal["text", "refuse"] = "text",
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    min_segment_digits: int = 0,
    limits: BodyLimits | None = None,
) -> ParsedBody:
    """Parse a request body by its Content-Type (after undoing its Content-Encoding).

    Raises BodyUnparseableError (invalid for its type, undecodable charset, corrupt
    compression), UnsupportedMediaTypeError (unknown type with unknown_types="refuse", or
    an unsupported Content-Encoding: UnsupportedContentEncodingError) and BodyTooLargeError
    (decoded body over `max_decoded_bytes`). With `min_segment_digits`, codecs may leave out
    segments that hold fewer digit characters (JSON does: keys, ids, short fields).
    With `limits`, a body that holds more fields, parts, nesting, references or segments
    than allowed raises the BodyLimitError naming that limit.
    """
    if unknown_types not in ("text", "refuse"):
        raise ValueError("unknown_types must be 'text' or 'refuse'")
    decoded, applied = decode_content(body, content_encoding, max_decoded_bytes)
    with budget_for(limits):
        inner = _parse_decoded(decoded, content_type, unknown_types, min_segment_digits)
        check_segments(inner.segments)
    return EncodedBody(body, applied, inner) if applied else inner
