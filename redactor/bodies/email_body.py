"""Raw Internet messages (RFC 5322 / MIME): headers and text parts are segments.

The MIME tree is walked on the raw bytes. Text parts are decoded (quoted-printable, base64,
then the part's charset) for detection; a changed part is re-encoded with its own transfer
encoding and charset, and only that part's body bytes change. Unchanged parts, boundaries,
preamble and epilogue stay byte-identical. A part of any other type is read as text when its
bytes are text (a `.log` attached as application/octet-stream); else (images, PDFs, archives)
it is an unread part, listed for the route's `unreadable_parts` policy, and replaced whole by
a small text part when stripped. Nested multiparts and attached messages (`message/rfc822`)
are walked recursively.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence

from redactor.bodies.attachments import (
    UnreadPart,
    is_pdf,
    placeholder_text,
    text_charset,
    unread_part,
)
from redactor.bodies.hidden import hidden_view
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


class _Unread:
    """The unread parts of one message, in order, and which entity holds each: the entity
    itself (None) or the n-th unread part of the message attached in it."""

    __slots__ = ("owners", "parts")

    def __init__(self) -> None:
        self.parts: list[UnreadPart] = []
        self.owners: list[tuple[_Entity, int | None]] = []


class _Strip:
    """Which entities a rebuild replaces whole, and which parts of attached messages."""

    __slots__ = ("children", "entities")

    def __init__(self, unread: _Unread, strip: frozenset[int]) -> None:
        self.entities: set[int] = set()
        self.children: dict[int, set[int]] = {}
        for number in strip:
            entity, child_number = unread.owners[number]
            if child_number is None:
                self.entities.add(id(entity))
            else:
                self.children.setdefault(id(entity), set()).add(child_number)


def _decoded(text: str, field_name: str | None, kind: str) -> TextView:
    """The view for text decoded from a part's base64 blob or `data:` URI."""
    return hidden_view(text, field_name, kind, _decoded) or PlainView(text, field_name, kind)


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
        "_unread",
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
        unread: _Unread,
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
        self._unread: UnreadPart | None = None
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
                _Entity(
                    table, raw, part, default_type=part_default, depth=depth + 1, top=False,
                    unread=unread,
                )
                for part in layout.parts
            ]  # fmt: skip
            return
        if media_type in _MESSAGE_TYPES:
            self._child = EmailBody(decode_transfer(body, self._transfer), depth=depth + 1)
            table.add((self._key, "body"), self._child.segments)
            for number, part in enumerate(self._child.unread_parts):
                unread.parts.append(part)
                unread.owners.append((self, number))
            return
        declared_text = media_type.startswith(("text/", "message/"))
        broken = False
        try:
            decoded = decode_transfer(body, self._transfer)
        except BodyUnparseableError:
            if declared_text:
                raise
            decoded, broken = body, True  # a binary part with a broken encoding: unread
        sniffed = None if declared_text or broken else text_charset(decoded)
        if not declared_text and (broken or is_pdf(decoded) or sniffed is None):
            # Not text (an image, a PDF, an archive): kept verbatim unless stripped.
            self._unread = unread_part(decoded, media_type if content_type else None)
            unread.parts.append(self._unread)
            unread.owners.append((self, None))
            return
        # UTF-16 without a byte order mark is known by its bytes; else the declared charset.
        text, codec, errors = decode_text(decoded, sniffed or params.get("charset"))
        view: TextView
        if media_type == "text/html":
            view = HtmlView(text, "body")
        else:
            # A link with `%34%31...`, a `data:` URI, a base64 blob pasted in: read decoded.
            view = hidden_view(text, "body", "mime_text", _decoded) or PlainView(
                text, "body", "mime_text"
            )
        self._text = (view, text, codec, errors, body)
        table.add((self._key, "body"), view.segments)

    def rebuild(self, raw: bytes, routed: _Routed, strip: _Strip) -> bytes | None:
        """New bytes of this entity, or None when nothing in it changed."""
        if self._unread is not None and id(self) in strip.entities:
            return self._placeholder(raw)
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
        child_strip = frozenset(strip.children.get(id(self), ()))
        if (body_edits or child_strip) and self._child is not None:
            original = raw[self._body_start : self._end]
            new_child = self._child.rebuild(body_edits or {}, child_strip)
            new_body = encode_transfer(new_child, self._transfer, original)
            replacements.append((self._body_start, self._end, new_body))
        elif body_edits and self._text is not None:
            view, text, codec, errors, original = self._text
            new_text = apply_edits(text, view.source_edits(body_edits))
            new_body = encode_transfer(
                encode_text(new_text, codec, errors), self._transfer, original
            )
            replacements.append((self._body_start, self._end, new_body))
        for part in self._parts:
            new_part = part.rebuild(raw, routed, strip)
            if new_part is not None:
                replacements.append((part._start, part._end, new_part))
        if not replacements:
            return None
        entity = raw[self._start : self._end]
        return splice_bytes(
            entity, [(s - self._start, e - self._start, b) for s, e, b in replacements]
        )

    def _placeholder(self, raw: bytes) -> bytes:
        """This entity replaced whole by a small text part naming its type and size."""
        if self._unread is None:
            raise ValueError("only an unread part has a placeholder")
        header = raw[self._start : self._header_end]
        eol = b"\r\n" if b"\r\n" in header or not header else b"\n"
        return (
            b"Content-Type: text/plain; charset=us-ascii" + eol
            + b"Content-Transfer-Encoding: 7bit" + eol + eol
            + placeholder_text(self._unread).encode("ascii", "replace") + eol
        )  # fmt: skip


class EmailBody:
    """A parsed raw message. `segments` are its header values and decoded text parts;
    `unread_parts` the parts that are not text (images, PDFs, archives), in order."""

    __slots__ = ("_raw", "_root", "_table", "_unread", "segments", "unread_parts")

    def __init__(self, raw: bytes, *, depth: int = 0) -> None:
        """Walk the message. Raises BodyUnparseableError for malformed headers, MIME or encodings."""
        self._raw = raw
        self._table = SegmentTable()
        self._unread = _Unread()
        self._root = _Entity(
            self._table, raw, (0, len(raw)), default_type="text/plain", depth=depth, top=True,
            unread=self._unread,
        )  # fmt: skip
        self.segments: Sequence[Segment] = self._table.segments
        self.unread_parts: Sequence[UnreadPart] = self._unread.parts

    def rebuild(
        self, edits: Mapping[int, Sequence[Edit]], strip: frozenset[int] = frozenset()
    ) -> bytes:
        """The message with edits applied and the unread parts numbered in `strip` replaced
        by a placeholder text part; the input bytes exactly when there is neither.

        Raises ValueError for invalid edits.
        """
        if not has_edits(edits) and not strip:
            return self._raw
        routed = self._table.route(edits)
        new = self._root.rebuild(self._raw, routed, _Strip(self._unread, strip))
        return self._raw if new is None else new


def parse_email(body: bytes) -> EmailBody:
    """Parse a raw RFC 5322 message. Raises BodyUnparseableError if it is not one."""
    if not looks_like_email(body):
        raise BodyUnparseableError("not an Internet message")
    return EmailBody(body)
