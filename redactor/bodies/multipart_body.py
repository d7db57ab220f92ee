"""multipart/form-data bodies (SendGrid Inbound Parse, Mailgun routes with attachments).

Each text field is a segment (field_name = the form field name), and so are the part headers
that could carry a value: the `filename` and `name` parameters (RFC 7578 quoted strings,
RFC 2231 `filename*`, RFC 2047 encoded words and percent escapes decoded) and free-text
headers of the part (`X-Note: ...`). Boundaries, field order, unchanged part headers,
unchanged fields and attachments stay byte-identical: a change swaps only its own bytes, a
changed parameter is spelt again in its own style. A field's charset comes from, in order: its own
Content-Type `charset`, SendGrid's `charsets` field (JSON: field name -> charset), the
`_charset_` field (RFC 7578 section 4.6); undeclared values are UTF-8. A field holding a raw
message (`email`, `body-mime`, or Content-Type message/rfc822) is parsed as e-mail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redactor.bodies.attachments import (
    UnreadPart,
    is_pdf,
    placeholder_text,
    text_charset,
    unread_part,
)
from redactor.bodies.email_body import EmailBody, looks_like_email
from redactor.bodies.form_body import PieceRun, email_child, field_view
from redactor.bodies.mime import (
    ContentType,
    HeaderBlockView,
    HeaderField,
    ParamSpan,
    decode_transfer,
    encode_param,
    encode_transfer,
    param_spans,
    parse_content_type,
    parse_disposition,
    parse_header_fields,
    split_header_body,
    split_multipart,
)
from redactor.bodies.segments import (
    Edit,
    Segment,
    SegmentTable,
    TextView,
    apply_edits,
    has_edits,
    neighbours_of,
    splice_bytes,
)
from redactor.bodies.text_body import decode_text, encode_text
from redactor.detection.digits import digit_count
from redactor.errors import BodyUnparseableError

__all__ = ["MultipartFormBody", "parse_multipart"]

# Types read as text even when the part has a filename: a .txt or .json upload can hold a
# card number as well as a typed field. A part of any other type or none is read as text when
# its bytes are text (attachments.is_text); else it is an unread part (a PDF, an image, an
# archive) that the route's `unreadable_parts` policy passes, strips or refuses.
_TEXT_APPLICATION_TYPES = frozenset({"application/json", "application/xml"})


def _is_text_type(media_type: str) -> bool:
    return (
        media_type.startswith("text/")
        or media_type in _TEXT_APPLICATION_TYPES
        or media_type.endswith(("+json", "+xml"))
    )


@dataclass(frozen=True, slots=True)
class _Part:
    name: str | None
    filename: str | None
    content_type: ContentType | None
    transfer: str | None
    body_start: int
    body_end: int
    start: int
    header_end: int
    header_block: str
    fields: tuple[HeaderField, ...]


# Parameters of Content-Disposition that name things a sender typed.
_SCANNED_PARAMS = frozenset({"filename", "name"})
# No PAN or SSN has fewer digits; encoded words hide theirs in base64.
_MIN_DIGITS = 9


class _PartHeaders:
    """Segments for a part's header block: free-text headers and the name parameters."""

    __slots__ = ("_block", "_headers", "_params", "_table", "segments")

    def __init__(self, part: _Part) -> None:
        self._block = part.header_block
        self._table = SegmentTable()
        self._headers = HeaderBlockView(self._block)
        self._table.add("headers", self._headers.segments)
        self._params: list[ParamSpan] = []
        for header in part.fields:
            if header.name.lower() != "content-disposition":
                continue
            for span in param_spans(self._block, header.value_start, header.value_end):
                raw = self._block[span.start : span.end]
                if span.name in _SCANNED_PARAMS and (
                    digit_count(span.text) >= _MIN_DIGITS or "=?" in raw
                ):
                    self._table.add(
                        len(self._params), (Segment(0, span.text, span.name, "part_param"),)
                    )
                    self._params.append(span)
        self.segments: Sequence[Segment] = self._table.segments

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> str:
        """The header block with edits applied."""
        block_edits: list[Edit] = []
        for key, local in self._table.route(edits).items():
            if key == "headers":
                block_edits.extend(self._headers.source_edits(local))
            else:
                span = self._params[key]  # type: ignore[index]
                new_text = apply_edits(span.text, local[0])
                block_edits.append(Edit(span.start, span.end, encode_param(span, new_text)))
        return apply_edits(self._block, block_edits)


@dataclass(frozen=True, slots=True)
class _TextField:
    part: _Part
    text: str
    codec: str
    errors: str
    view: TextView


@dataclass(frozen=True, slots=True)
class _MessageField:
    part: _Part
    child: EmailBody


def _read_part(raw: bytes, start: int, end: int) -> _Part:
    header_end, body_start = split_header_body(raw, start, end)
    block = raw[start:header_end].decode("utf-8", "surrogateescape")
    fields = parse_header_fields(block)
    headers = {f.name.lower(): f.value for f in fields}
    disposition = parse_disposition(headers.get("content-disposition"))
    params = disposition.params if disposition else {}
    return _Part(
        name=params.get("name"),
        filename=params.get("filename"),
        content_type=parse_content_type(headers.get("content-type")),
        transfer=headers.get("content-transfer-encoding"),
        body_start=body_start,
        body_end=end,
        start=start,
        header_end=header_end,
        header_block=block,
        fields=tuple(fields),
    )


def _declared_charsets(raw: bytes, parts: Sequence[_Part]) -> tuple[dict[str, str], str | None]:
    """SendGrid's `charsets` map and the `_charset_` field, when present."""
    by_field: dict[str, str] = {}
    default: str | None = None
    for part in parts:
        value = raw[part.body_start : part.body_end]
        if part.name == "charsets":
            try:
                declared = json.loads(value)
            except (ValueError, RecursionError):
                raise BodyUnparseableError("invalid charsets field") from None
            if isinstance(declared, dict):
                by_field = {str(k): v for k, v in declared.items() if isinstance(v, str)}
        elif part.name == "_charset_":
            default = value.decode("ascii", "replace").strip() or None
    return by_field, default


class MultipartFormBody:
    """A parsed multipart/form-data body; text fields (and messages in fields) are segments."""

    __slots__ = (
        "_fields",
        "_header_parts",
        "_headers",
        "_pieces",
        "_raw",
        "_table",
        "_unread_owners",
        "neighbours",
        "segments",
        "unread_parts",
    )

    def __init__(self, raw: bytes, boundary: str) -> None:
        """Parse the body. Raises BodyUnparseableError for a missing close delimiter, bad
        part headers, undecodable values or unknown charsets."""
        self._raw = raw
        self._table = SegmentTable()
        self._fields: list[_TextField | _MessageField] = []
        # Every part that is not text, this body's and those of messages in its fields, in
        # order; per entry, the part it replaces (or the field whose message holds it).
        self.unread_parts: list[UnreadPart] = []
        self._unread_owners: list[_Part | tuple[int, int]] = []
        layout = split_multipart(raw, 0, len(raw), boundary)
        if not layout.closed:
            # A form upload without its close delimiter was cut short: fail closed.
            raise BodyUnparseableError("multipart body is truncated")
        parts = [_read_part(raw, start, end) for start, end in layout.parts]
        charsets, default_charset = _declared_charsets(raw, parts)
        self._headers: list[_PartHeaders] = []
        self._header_parts: list[_Part] = []
        # Text fields of 2-17 digits one after the other (`cc1`..`cc4`): a neighbour run.
        self._pieces = PieceRun(self._table)
        for part in parts:
            headers = _PartHeaders(part)
            if headers.segments:
                self._pieces.end()
                self._table.add(("headers", len(self._headers)), headers.segments)
                self._headers.append(headers)
                self._header_parts.append(part)
            before = len(self._table.segments)
            self._add_part(part, charsets, default_charset)
            if len(self._table.segments) == before:
                self._pieces.end()  # an attachment between: the fields are not neighbours
        self._pieces.end()
        self.segments: Sequence[Segment] = self._table.segments
        self.neighbours: Sequence[tuple[int, ...]] = self._table.neighbours

    def _add_part(self, part: _Part, charsets: Mapping[str, str], default: str | None) -> None:
        media_type = part.content_type.media_type if part.content_type else "text/plain"
        is_message = media_type in ("message/rfc822", "message/global")
        declared_text = is_message or (
            _is_text_type(media_type) and (part.filename is None or part.content_type is not None)
        )
        raw_value = self._raw[part.body_start : part.body_end]
        broken = False
        try:
            value = decode_transfer(raw_value, part.transfer)
        except BodyUnparseableError:
            if declared_text:
                raise
            value, broken = raw_value, True  # a binary file with a broken encoding: unread
        sniffed = None if declared_text or broken else text_charset(value)
        if not declared_text and (broken or is_pdf(value) or sniffed is None):
            # A file redactor cannot read (a PDF even when its bytes are ASCII: rewriting one
            # would break its offsets). A text file under any label or none is read below.
            self.unread_parts.append(
                unread_part(value, part.content_type.media_type if part.content_type else None)
            )
            self._unread_owners.append(part)
            return
        index = len(self._fields)
        child = EmailBody(value) if is_message and looks_like_email(value) else None
        if child is None and part.filename is None:
            child = email_child(part.name, value)
        if child is not None:
            self._pieces.end()
            self._fields.append(_MessageField(part, child))
            self._table.add(index, child.segments)
            for number in range(len(child.unread_parts)):
                self._unread_owners.append((index, number))
            self.unread_parts.extend(child.unread_parts)
            return
        charset = part.content_type.params.get("charset") if part.content_type else None
        if charset is None and part.name is not None:
            charset = charsets.get(part.name, default)
        if sniffed:
            charset = sniffed  # UTF-16 without a byte order mark, known by its bytes
        text, codec, errors = decode_text(value, charset)
        view = field_view(part.name, text)
        self._fields.append(_TextField(part, text, codec, errors, view))
        self._pieces.add(text, view, len(self._table.segments))
        self._table.add(index, view.segments, neighbours=neighbours_of(view))

    def rebuild(
        self, edits: Mapping[int, Sequence[Edit]], strip: frozenset[int] = frozenset()
    ) -> bytes:
        """The body with edits applied and the unread parts numbered in `strip` replaced by
        a placeholder text part; the input bytes exactly when there is neither.

        Raises ValueError for invalid edits, RedactorError for an unencodable replacement.
        """
        if not has_edits(edits) and not strip:
            return self._raw
        replacements: list[tuple[int, int, bytes]] = []
        stripped: set[int] = set()  # part starts replaced whole
        child_strip: dict[int, set[int]] = {}
        for number in sorted(strip):
            owner = self._unread_owners[number]
            if isinstance(owner, tuple):
                child_strip.setdefault(owner[0], set()).add(owner[1])
            else:
                stripped.add(owner.start)
                replacements.append(
                    (owner.start, owner.body_end, _placeholder(owner, self.unread_parts[number]))
                )
        routed = dict(self._table.route(edits))
        for index in child_strip:
            routed.setdefault(index, {})
        for index, local_edits in routed.items():
            if isinstance(index, tuple):
                number = index[1]
                part = self._header_parts[number]
                if part.start in stripped:
                    continue  # replaced whole by its placeholder
                new_block = self._headers[number].rebuild(local_edits)
                replacements.append(
                    (part.start, part.header_end, new_block.encode("utf-8", "surrogateescape"))
                )
                continue
            field = self._fields[index]  # type: ignore[index]
            if isinstance(field, _MessageField):
                new_value = field.child.rebuild(
                    local_edits,
                    frozenset(child_strip.get(index, ())),  # type: ignore[arg-type]
                )
            else:
                new_text = apply_edits(field.text, field.view.source_edits(local_edits))
                new_value = encode_text(new_text, field.codec, field.errors)
            part = field.part
            original = self._raw[part.body_start : part.body_end]
            encoded = encode_transfer(new_value, part.transfer, original)
            replacements.append((part.body_start, part.body_end, encoded))
        return splice_bytes(self._raw, replacements)


def _placeholder(part: _Part, unread: UnreadPart) -> bytes:
    """A small text part in place of a stripped one: same field name (when it is a plain
    one), its type and size as text, the line ends of the original header block."""
    eol = "\r\n" if "\r\n" in part.header_block or not part.header_block else "\n"
    name = part.name or "attachment"
    if not (name.isascii() and name.isprintable()) or '"' in name or "\\" in name:
        name = "attachment"
    if digit_count(name) >= _MIN_DIGITS:
        name = "attachment"
    head = (
        f'Content-Disposition: form-data; name="{name}"{eol}'
        f"Content-Type: text/plain; charset=us-ascii{eol}{eol}"
    )
    return (head + placeholder_text(unread)).encode("ascii", "replace")


def parse_multipart(body: bytes, boundary: str | None) -> MultipartFormBody:
    """Parse multipart/form-data. Raises BodyUnparseableError (missing boundary, bad body)."""
    if not boundary:
        raise BodyUnparseableError("multipart/form-data without boundary")
    return MultipartFormBody(body, boundary)
