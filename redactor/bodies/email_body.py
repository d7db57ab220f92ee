"""Raw Internet messages (RFC 5322 / MIME): headers and text parts are segments.

The MIME tree is walked on the raw bytes. Text parts are decoded (quoted-printable, base64,
then the part's charset) for detection; a changed part is re-encoded with its own transfer
encoding and charset, and only that part's body bytes change. Unchanged parts, boundaries,
preamble and epilogue stay byte-identical. Non-text parts (images, PDFs, ...) are never
decoded. Nested multiparts and attached messages (`message/rfc822`) are walked recursively.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence

from redactor.bodies.html_body import HtmlView
from redactor.bodies.limits import check_depth, count_parts
from redactor.bodies.mime import (
    HeaderBlockView,
    decode_transfer,
    encode_transfer,
    parse_content_type,
    split_header_body,
    split_multipart,
)
from redactor.bodies.segments import (
    Edit,
    PlainView,
    Segment,
    SegmentTable,
    TextView,
    apply_edits,
    has_edits,
    splice_bytes,
)
from redactor.bodies.text_body import decode_text, encode_text
from redactor.errors import BodyUnparseableError

__all__ = ["EmailBody", "looks_like_email", "parse_email"]

# Real mail nests a handful of levels; a bound stops a crafted body from recursing forever.
MAX_MIME_DEPTH = 32

_HEADERS_START = re.compile(rb"(?:From [^\n]*\n)?[!-9;-~]+[ \t]*:[^\n]*\n")
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})

_Routed = Mapping[Hashable, Mapping[int, Sequence[Edit]]]


def looks_like_email(raw: bytes) -> bool:
    """True when `raw` starts with a header field line (or an mbox `From ` line and one)."""
    return _HEADERS_START.match(raw) is not None


class _Entity:
    """One MIME entity: its header block, and its body as text, message, multipart or opaque."""

    __slots__ = (
        "_body_start",
        "_child",
        "_end",
        "_header_end",
        "_header_text",
        "_header_view",
        "_key",
        "_parts",
        "_start",
        "_text",
        "_transfer",
    )

    def __init__(
        self,
        table: SegmentTable,
        raw: bytes,
        span: tuple[int, int],
        *,
        default_type: str,
        depth: int,
        top: bool,
    ) -> None:
        if depth > MAX_MIME_DEPTH:
            raise BodyUnparseableError("MIME nesting too deep")
        check_depth(depth)
        count_parts()
        self._start, self._end = span
        self._key: Hashable = ("entity", len(table.segments), id(self))
        self._header_end, self._body_start = split_header_body(raw, self._start, self._end)
        # surrogateescape: 8-bit header bytes (RFC 6532) round-trip exactly.
        self._header_text = raw[self._start : self._header_end].decode("utf-8", "surrogateescape")
        self._header_view = HeaderBlockView(self._header_text, allow_mbox_from=top)
        table.add((self._key, "headers"), self._header_view.segments)
        self._text: tuple[TextView, str, str, str, bytes] | None = None
        self._child: EmailBody | None = None
        self._parts: list[_Entity] = []
        self._transfer = self._header_view.get("content-transfer-encoding")

        content_type = parse_content_type(self._header_view.get("content-type"))
        # RFC 2045 section 5.2: a missing or invalid Content-Type means the default.
        media_type = content_type.media_type if content_type else default_type
        params = content_type.params if content_type else {}
        body = raw[self._body_start : self._end]
        if media_type.startswith("multipart/"):
            if (self._transfer or "").strip().lower() not in _IDENTITY:
                raise BodyUnparseableError("encoded multipart entity")
            boundary = params.get("boundary")
            if boundary is None:
                raise BodyUnparseableError("multipart without boundary")
            layout = split_multipart(raw, self._body_start, self._end, boundary)
            part_default = "message/rfc822" if media_type == "multipart/digest" else "text/plain"
            self._parts = [
                _Entity(table, raw, part, default_type=part_default, depth=depth + 1, top=False)
                for part in layout.parts
            ]
        elif media_type in _MESSAGE_TYPES:
            self._child = EmailBody(decode_transfer(body, self._transfer), depth=depth + 1)
            table.add((self._key, "body"), self._child.segments)
        elif media_type.startswith(("text/", "message/")):
            decoded = decode_transfer(body, self._transfer)
            text, codec, errors = decode_text(decoded, params.get("charset"))
            view: TextView
            if media_type == "text/html":
                view = HtmlView(text, "body")
            else:
                view = PlainView(text, "body", "mime_text")
            self._text = (view, text, codec, errors, body)
            table.add((self._key, "body"), view.segments)
        # Anything else (images, PDFs, archives) is not text: never decoded, kept verbatim.

    def rebuild(self, raw: bytes, routed: _Routed) -> bytes | None:
        """New bytes of this entity, or None when nothing in it changed."""
        replacements: list[tuple[int, int, bytes]] = []
        header_edits = routed.get((self._key, "headers"))
        if header_edits:
            new_header = apply_edits(
                self._header_text, self._header_view.source_edits(header_edits)
            )
            replacements.append(
                (self._start, self._header_end, new_header.encode("utf-8", "surrogateescape"))
            )
        body_edits = routed.get((self._key, "body"))
        if body_edits and self._child is not None:
            original = raw[self._body_start : self._end]
            new_body = encode_transfer(self._child.rebuild(body_edits), self._transfer, original)
            replacements.append((self._body_start, self._end, new_body))
        elif body_edits and self._text is not None:
            view, text, codec, errors, original = self._text
            new_text = apply_edits(text, view.source_edits(body_edits))
            new_body = encode_transfer(
                encode_text(new_text, codec, errors), self._transfer, original
            )
            replacements.append((self._body_start, self._end, new_body))
        for part in self._parts:
            new_part = part.rebuild(raw, routed)
            if new_part is not None:
                replacements.append((part._start, part._end, new_part))
        if not replacements:
            return None
        entity = raw[self._start : self._end]
        return splice_bytes(
            entity, [(s - self._start, e - self._start, b) for s, e, b in replacements]
        )


class EmailBody:
    """A parsed raw message. `segments` are its header values and decoded text parts."""

    __slots__ = ("_raw", "_root", "_table", "segments")

    def __init__(self, raw: bytes, *, depth: int = 0) -> None:
        """Walk the message. Raises BodyUnparseableError for malformed headers, MIME or encodings."""
        self._raw = raw
        self._table = SegmentTable()
        self._root = _Entity(
            self._table, raw, (0, len(raw)), default_type="text/plain", depth=depth, top=True
        )
        self.segments: Sequence[Segment] = self._table.segments

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> bytes:
        """The message with edits applied; the input bytes exactly when there are none.

        Raises ValueError for invalid edits.
        """
        if not has_edits(edits):
            return self._raw
        new = self._root.rebuild(self._raw, self._table.route(edits))
        return self._raw if new is None else new


def parse_email(body: bytes) -> EmailBody:
    """Parse a raw RFC 5322 message. Raises BodyUnparseableError if it is not one."""
    if not looks_like_email(body):
        raise BodyUnparseableError("not an Internet message")
    return EmailBody(body)
