"""MIME building blocks shared by the e-mail and multipart/form-data codecs.

Everything here works on the raw bytes and records offsets: the stdlib `email` package
re-serialises messages (folding, line ends, boundaries), which would change bytes nobody
asked to change and break DKIM and webhook signatures. We only borrow its pieces: RFC 2047
decoding (`email.header`) and the QP/base64 primitives.
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import email.header
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from redactor.bodies.limits import count_fields, count_parts
from redactor.bodies.segments import Edit, Segment, SegmentTable, apply_edits
from redactor.errors import BodyUnparseableError

__all__ = [
    "ContentType",
    "HeaderBlockView",
    "HeaderField",
    "decode_transfer",
    "encode_transfer",
    "parse_content_type",
    "split_header_body",
    "split_multipart",
]

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_TYPE = re.compile(rf"\s*({_TCHARS})/({_TCHARS})\s*")
_PARAM = re.compile(rf'\s*;\s*({_TCHARS})\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_BAD_PARAM = re.compile(r"\s*;?[^;]*")
_QUOTED_PAIR = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class ContentType:
    """A parsed Content-Type (or Content-Disposition) value."""

    media_type: str  # lower case; for Content-Disposition, the disposition type
    params: Mapping[str, str]  # names lower case, values unquoted

    @property
    def main_type(self) -> str:
        """The part before the slash."""
        return self.media_type.partition("/")[0]

    @property
    def subtype(self) -> str:
        """The part after the slash."""
        return self.media_type.partition("/")[2]


def _parse_params(value: str, pos: int) -> dict[str, str]:
    """The parameters after a media type or disposition. RFC 2231 extended values are decoded
    and their continuations (`filename*0*=...; filename*1*=...`) joined. A parameter given
    twice is refused: readers disagree on which one counts (the first, the last), so the
    one redactor scanned might not be the one a reader shows."""
    params: dict[str, str] = {}
    pieces: dict[str, dict[int, tuple[bool, str]]] = {}
    seen: set[str] = set()
    length = len(value)
    while pos < length:
        match = _PARAM.match(value, pos)
        if match is None:
            # A parameter without `=` (seen in the wild): skip it, keep the rest.
            skipped = _BAD_PARAM.match(value, pos)
            pos = skipped.end() if skipped and skipped.end() > pos else pos + 1
            continue
        pos = match.end()
        name, raw = match.group(1).lower(), match.group(2).strip()
        if name in seen:
            raise BodyUnparseableError("repeated parameter")
        seen.add(name)
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
        extended = name.endswith("*")
        base = name.removesuffix("*")
        stem, star, number = base.rpartition("*")
        if star and number.isdigit():
            pieces.setdefault(stem, {})[int(number)] = (extended, raw)
        elif extended:
            params[base] = _extended_value(raw)
        else:
            params.setdefault(base, raw)
    for stem, parts in pieces.items():
        params[stem] = _joined_continuations(parts)
    return params


def _extended_value(raw: str, charset: str | None = None) -> str:
    """An RFC 2231 extended value: `charset'language'percent-encoded` (the first piece), or
    percent-encoded in `charset` (a later piece)."""
    if charset is None:
        charset, _, rest = raw.partition("'")
        _language, _, raw = rest.partition("'")
    try:
        return unquote(raw, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        raise BodyUnparseableError("invalid extended parameter") from None


def _joined_continuations(parts: dict[int, tuple[bool, str]]) -> str:
    """`name*0`, `name*1`, ... joined in order (RFC 2231 section 3); a gap is refused."""
    if sorted(parts) != list(range(len(parts))):
        raise BodyUnparseableError("incomplete parameter continuation")
    first_extended, first = parts[0]
    charset = first.partition("'")[0] if first_extended else "utf-8"
    out = [_extended_value(first) if first_extended else first]
    for index in range(1, len(parts)):
        extended, raw = parts[index]
        out.append(_extended_value(raw, charset or "utf-8") if extended else raw)
    return "".join(out)


def parse_content_type(value: str | None) -> ContentType | None:
    """Parse `type/subtype; k=v`; None when absent or without a valid media type."""
    if value is None:
        return None
    match = _MEDIA_TYPE.match(value)
    if match is None:
        return None
    media_type = f"{match.group(1)}/{match.group(2)}".lower()
    return ContentType(media_type, _parse_params(value, match.end()))


def parse_disposition(value: str | None) -> ContentType | None:
    """Parse `form-data; name="x"; filename="y"`; None when absent."""
    if value is None:
        return None
    match = re.match(rf"\s*({_TCHARS})\s*", value)
    if match is None:
        return None
    return ContentType(match.group(1).lower(), _parse_params(value, match.end()))


# --- header blocks -----------------------------------------------------------------------------

_FIELD_NAME = re.compile(r"[!-9;-~]+")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")
_UNFOLD = re.compile(r"\r?\n(?=[ \t])")

# Headers whose rewriting would break the message or its signatures, and that carry no free
# text a customer typed: structure (Content-*), identities and signatures.
_UNSCANNED_HEADERS = frozenset(
    {
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "content-id",
        "mime-version",
        "message-id",
        "in-reply-to",
        "references",
        "dkim-signature",
        "domainkey-signature",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
        "authentication-results",
        "received-spf",
        "date",
    }
)


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field of a block: name, unfolded raw value, and where the value sits."""

    name: str
    value: str  # unfolded, surrounding whitespace stripped, RFC 2047 words still encoded
    value_start: int  # just after the colon
    value_end: int  # before the field's final line end
    line_end: str  # "\r\n", "\n" or "" (last line without one)


def _decode_words(value: str) -> tuple[str, str | None]:
    """Decode RFC 2047 encoded words; return (text, charset of the first encoded word)."""
    if "=?" not in value:
        return value, None
    try:
        chunks = email.header.decode_header(value)
        text = str(email.header.make_header(chunks))
    except (LookupError, UnicodeError, ValueError, binascii.Error, email.errors.MessageError):
        # MessageError covers HeaderParseError and CharsetError (a charset name holding a
        # byte that is not ASCII: found by tests/ingress/test_card_anywhere.py).
        raise BodyUnparseableError("invalid encoded word in header") from None
    charset = next((c for _b, c in chunks if c), None)
    return text, charset


def parse_header_fields(block: str, *, allow_mbox_from: bool = False) -> list[HeaderField]:
    """Parse a header block (up to, not including, the blank line).

    Raises BodyUnparseableError for a line that is neither a field nor a continuation.
    """
    fields: list[HeaderField] = []
    current: tuple[str, int, int] | None = None  # name, value_start, line start
    for line_match in _LINE.finditer(block):
        line = line_match.group()
        if line[:1] not in (" ", "\t"):
            count_fields()
        start = line_match.start()
        if line[:1] in (" ", "\t") and current is not None:
            continue  # a folded continuation of the current field
        if current is not None:
            fields.append(_finish_field(block, current, start))
            current = None
        if start == 0 and allow_mbox_from and line.startswith("From "):
            continue  # mbox separator line: kept verbatim, not a header
        name_match = _FIELD_NAME.match(line)
        if name_match is None or not line[name_match.end() :].lstrip(" \t").startswith(":"):
            raise BodyUnparseableError("malformed header line")
        colon = line.index(":", name_match.end())
        current = (name_match.group(), start + colon + 1, start)
    if current is not None:
        fields.append(_finish_field(block, current, len(block)))
    return fields


def _finish_field(block: str, current: tuple[str, int, int], field_end: int) -> HeaderField:
    name, value_start, _line_start = current
    raw = block[value_start:field_end]
    line_end = "\r\n" if raw.endswith("\r\n") else "\n" if raw.endswith("\n") else ""
    value_end = field_end - len(line_end)
    value = _UNFOLD.sub("", block[value_start:value_end]).strip(" \t\r\n")
    return HeaderField(name, value, value_start, value_end, line_end)


class HeaderBlockView:
    """Segments for the free-text header fields of a header block (a TextView over the block).

    A changed field is rewritten whole: plain when the new value is printable ASCII and the old
    one had no encoded words, otherwise as RFC 2047 encoded words in the field's own charset
    (UTF-8 when that cannot hold the new text). Unchanged fields keep their bytes and folding.
    """

    __slots__ = ("_block", "_fields", "_scanned", "_table", "fields", "segments")

    def __init__(self, block: str, *, allow_mbox_from: bool = False) -> None:
        """Parse the block. Raises BodyUnparseableError for malformed lines or encoded words."""
        self.fields = parse_header_fields(block, allow_mbox_from=allow_mbox_from)
        self._block = block
        self._scanned: list[tuple[HeaderField, str, str | None]] = []
        self._table = SegmentTable()
        for header in self.fields:
            if header.name.lower() in _UNSCANNED_HEADERS:
                continue
            text, charset = _decode_words(header.value)
            slot = len(self._scanned)
            self._scanned.append((header, text, charset))
            self._table.add(slot, (Segment(0, text, header.name, "header"),))
        self.segments: Sequence[Segment] = self._table.segments

    def get(self, name: str) -> str | None:
        """The unfolded raw value of the first field called `name` (case-insensitive)."""
        lowered = name.lower()
        return next((f.value for f in self.fields if f.name.lower() == lowered), None)

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Edits on the header block. Raises ValueError for invalid edits."""
        result: list[Edit] = []
        for slot, local_edits in self._table.route(edits).items():
            header, text, charset = self._scanned[slot]  # type: ignore[index]
            if charset is None and all(_plain(e) for e in local_edits[0]):
                # No encoded words: each edit lands on the field's own bytes, so its folding,
                # spacing and raw UTF-8 (RFC 6532) stay as they came.
                result.extend(_in_place(self._block, header, local_edits[0]))
                continue
            new_text = apply_edits(text, local_edits[0])
            result.append(
                Edit(header.value_start, header.value_end, _encode_value(header, new_text, charset))
            )
        return sorted(result, key=lambda e: e.start)


def _plain(edit: Edit) -> bool:
    """An edit that can stand in a header's own bytes: it replaces something, with printable
    text and no line break (a token)."""
    return edit.end > edit.start and edit.replacement.isprintable()


def _in_place(block: str, header: HeaderField, edits: Sequence[Edit]) -> list[Edit]:
    """`edits` on the unfolded, stripped value of `header`, moved onto the block's own
    characters (a value split by a fold is replaced together with the fold)."""
    start, end = header.value_start, header.value_end
    folds = {m.start(): len(m.group()) for m in _UNFOLD.finditer(block, start, end)}
    source: list[int] = []  # block offset of each character of the unfolded value
    i = start
    while i < end:
        if i in folds:
            i += folds[i]
            continue
        source.append(i)
        i += 1
    lead = 0
    while lead < len(source) and block[source[lead]] in " \t\r\n":
        lead += 1
    return [
        Edit(source[lead + e.start], source[lead + e.end - 1] + 1, e.replacement) for e in edits
    ]


def _encode_value(header: HeaderField, text: str, charset: str | None) -> str:
    if charset is None and text.isascii() and text.isprintable():
        return " " + text
    # Encoded words also neutralise CR/LF in a replacement: no header injection.
    linesep = header.line_end or "\r\n"
    for candidate in (charset, "utf-8"):
        if candidate is None:
            continue
        try:
            encoded = email.header.Header(text, candidate, header_name=header.name).encode(
                linesep=linesep
            )
        except (LookupError, UnicodeError):
            continue
        return " " + encoded
    raise ValueError("header value cannot be encoded")  # unreachable: UTF-8 encodes any text


# --- entities and multipart bodies -------------------------------------------------------------

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def split_header_body(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """Return (header_end, body_start) of the entity raw[start:end].

    header_end includes the last header line's line end; a part that starts with a blank line
    has no headers; an entity without a blank line is all headers and an empty body.
    """
    if raw.startswith(b"\r\n", start):
        return start, start + 2
    if raw.startswith(b"\n", start):
        return start, start + 1
    match = _BLANK_LINE.search(raw, start, end)
    if match is None:
        return end, end
    second = 2 if raw[match.end() - 2 : match.end()] == b"\r\n" else 1
    return match.end() - second, match.end()


@dataclass(frozen=True, slots=True)
class MultipartLayout:
    """Where the parts of a multipart body sit; everything else is kept verbatim."""

    parts: tuple[tuple[int, int], ...]  # (start, end) of each part's entity
    closed: bool  # whether the close delimiter was found


def split_multipart(raw: bytes, start: int, end: int, boundary: str) -> MultipartLayout:
    """Find the parts of raw[start:end] (RFC 2046 section 5.1.1).

    The line end before a delimiter belongs to the delimiter, so part bytes exclude it.
    Raises BodyUnparseableError for an invalid boundary or a body without any delimiter.
    """
    if not boundary or len(boundary) > 200:
        raise BodyUnparseableError("invalid multipart boundary")
    try:
        token = boundary.encode("ascii")
    except UnicodeEncodeError:
        raise BodyUnparseableError("invalid multipart boundary") from None
    delimiter = re.compile(
        # A close delimiter may be followed by anything (the epilogue); others end the line.
        rb"(?:\A|\r?\n)--" + re.escape(token) + rb"(?:(--)|[ \t]*(?:\r?\n|\Z))",
    )
    parts: list[tuple[int, int]] = []
    part_start: int | None = None
    closed = False
    region = raw[start:end]
    for match in delimiter.finditer(region):
        # Counted as found: 150,000 tiny parts are refused at the limit, not after the walk.
        count_parts()
        if part_start is not None:
            parts.append((start + part_start, start + match.start()))
        if match.group(1):
            closed = True
            break
        part_start = match.end()
    else:
        if part_start is not None:
            # No close delimiter (a truncated message): the last part runs to the end.
            parts.append((start + part_start, end))
    if not parts:
        raise BodyUnparseableError("multipart body has no parts")
    return MultipartLayout(tuple(parts), closed)


# --- transfer encodings ------------------------------------------------------------------------

_IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})


def decode_transfer(raw: bytes, encoding: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding. Raises BodyUnparseableError for bad data or encodings."""
    name = (encoding or "").strip().lower()
    if name in _IDENTITY_ENCODINGS:
        return raw
    if name == "quoted-printable":
        # a2b_qp joins soft line breaks (`=` CRLF), so a PAN split across lines reads whole.
        return binascii.a2b_qp(raw)
    if name == "base64":
        try:
            return base64.b64decode(raw)
        except (binascii.Error, ValueError):
            raise BodyUnparseableError("invalid base64 content") from None
    raise BodyUnparseableError("unknown content transfer encoding")


def _line_end_of(raw: bytes) -> bytes:
    return b"\r\n" if b"\r\n" in raw or b"\n" not in raw else b"\n"


def encode_transfer(data: bytes, encoding: str | None, original: bytes) -> bytes:
    """Re-apply a Content-Transfer-Encoding in the style of `original` (line ends, line length)."""
    name = (encoding or "").strip().lower()
    if name in _IDENTITY_ENCODINGS:
        return data
    line_end = _line_end_of(original)
    trailing = original[len(original.rstrip(b"\r\n")) :]
    if name == "quoted-printable":
        encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
        if line_end == b"\r\n":
            encoded = re.sub(rb"(?<!\r)\n", b"\r\n", encoded)
        # b2a_qp keeps the data's own line ends; only the final one needs matching, and a
        # final soft break (`=` at the very end) is kept so no hard newline is added.
        body = encoded.rstrip(b"\r\n")
        soft = b"=" if original.rstrip(b"\r\n").endswith(b"=") and not body.endswith(b"=") else b""
        return body + soft + trailing if trailing else encoded
    # base64: keep the original line length (76 per RFC 2045 unless the sender chose less).
    lines = original.strip().split(b"\n")
    first_line = lines[0].rstrip(b"\r")
    # Only a wrapped original tells us its width; a one-line original does not.
    chosen = len(lines) > 1 and 4 <= len(first_line) <= 76 and len(first_line) % 4 == 0
    width = len(first_line) if chosen else 76
    flat = base64.b64encode(data)
    wrapped = [flat[i : i + width] for i in range(0, len(flat), width)] or [b""]
    return line_end.join(wrapped) + trailing


class EncodedWordsView:
    """One segment: a header-like value with its RFC 2047 encoded words decoded (a TextView).

    For values outside a header block (an HTTP header, a JSON string in Mailgun's
    `message-headers`, a form field): a changed value is written back whole as encoded words
    in its first word's charset (UTF-8 when that cannot hold it), on one line: a folded line
    break would end an HTTP header or corrupt a JSON string.
    """

    __slots__ = ("_charset", "_source_len", "segments")

    def __init__(self, source: str, field_name: str | None, kind: str = "encoded_words") -> None:
        """Decode `source`. Raises BodyUnparseableError for an invalid encoded word."""
        self._source_len = len(source)
        text, self._charset = _decode_words(source)
        self.segments: tuple[Segment, ...] = (Segment(0, text, field_name, kind),)

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """One edit replacing the whole source. Raises ValueError for invalid edits."""
        if set(edits) - {0}:
            raise ValueError("edit for an unknown segment")
        local = edits.get(0, ())
        if not local:
            return []
        new_text = apply_edits(self.segments[0].text, local)
        for candidate in (self._charset, "utf-8"):
            if candidate is None:
                continue
            try:
                encoded = email.header.Header(new_text, candidate).encode(maxlinelen=0)
            except (LookupError, UnicodeError):
                continue
            return [Edit(0, self._source_len, encoded)]
        raise ValueError("value cannot be encoded")  # unreachable: UTF-8 encodes any text


def has_encoded_words(text: str) -> bool:
    """True when `text` holds something shaped like an RFC 2047 encoded word."""
    return _ENCODED_WORD.search(text) is not None


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


# --- parameters as segments (multipart filenames) ----------------------------------------------

_PCT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


@dataclass(frozen=True, slots=True)
class ParamSpan:
    """One parameter value of a header field: where its raw spelling sits, decoded."""

    name: str  # lower case, without a trailing `*`
    start: int  # raw value span in the header block, quotes included
    end: int
    text: str  # decoded: quoted pairs, RFC 2231, RFC 2047 or RFC 7578 percent escapes
    style: str  # "extended", "encoded_words", "percent", "quoted" or "token"


def param_spans(block: str, start: int, end: int) -> list[ParamSpan]:
    """The parameters of the field value block[start:end] (after its first `;`).

    Raises BodyUnparseableError for an undecodable extended or encoded-word value.
    """
    semicolon = block.find(";", start, end)
    spans: list[ParamSpan] = []
    pos = semicolon if semicolon >= 0 else end
    while pos < end:
        match = _PARAM.match(block, pos, end)
        if match is None:
            skipped = _BAD_PARAM.match(block, pos, end)
            pos = skipped.end() if skipped and skipped.end() > pos else pos + 1
            continue
        name = match.group(1).lower()
        raw = match.group(2)
        value_start = match.start(2)
        value_end = value_start + len(raw.rstrip())
        raw = raw.rstrip()
        pos = match.end()
        if name.endswith("*"):
            charset, _, rest = raw.strip('"').partition("'")
            _language, _, encoded = rest.partition("'")
            _stem, star, number = name[:-1].rpartition("*")
            if star and number.isdigit() and number != "0":
                # A later piece of a continuation: percent-encoded, no charset of its own.
                charset, encoded = "utf-8", raw.strip('"')
            try:
                text = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                raise BodyUnparseableError("invalid extended parameter") from None
            spans.append(ParamSpan(name[:-1], value_start, value_end, text, "extended"))
            continue
        quoted = raw.startswith('"') and raw.endswith('"') and len(raw) >= 2
        text = _QUOTED_PAIR.sub(r"\1", raw[1:-1]) if quoted else raw
        style = "quoted" if quoted else "token"
        if has_encoded_words(text):
            text, _charset = _decode_words(text)
            style = "encoded_words"
        elif _PCT_ESCAPE.search(text):
            # RFC 7578 section 4.2 lets senders percent-encode a file name.
            text = unquote(text, encoding="utf-8", errors="surrogateescape")
            style = "percent"
        spans.append(ParamSpan(name, value_start, value_end, text, style))
    return _join_continuation_spans(spans)


def _join_continuation_spans(spans: list[ParamSpan]) -> list[ParamSpan]:
    """RFC 2231 continuations (`filename*0*=...; filename*1*=...`) as one span over all their
    pieces, its text the joined value, so a value split over pieces is scanned whole; a
    change rewrites the range as a single piece 0. Pieces out of order or apart: refused."""
    out: list[ParamSpan] = []
    index = 0
    while index < len(spans):
        stem, star, number = spans[index].name.rpartition("*")
        if not (star and number.isdigit()):
            out.append(spans[index])
            index += 1
            continue
        run = [spans[index]]
        while index + len(run) < len(spans) and spans[index + len(run)].name.startswith(stem + "*"):
            run.append(spans[index + len(run)])
        if [s.name for s in run] != [f"{stem}*{n}" for n in range(len(run))]:
            raise BodyUnparseableError("parameter continuations out of order")
        # A later extended piece is percent-encoded in the first piece's charset, which
        # param_spans already decoded; joining the decoded texts is the value.
        text = "".join(s.text for s in run)
        out.append(ParamSpan(stem, run[0].start, run[-1].end, text, run[0].style))
        index += len(run)
    return out


def encode_param(span: ParamSpan, text: str) -> str:
    """A parameter value spelling `text` the way `span` was spelt."""
    if span.style == "extended":
        return "utf-8''" + quote(text.encode("utf-8", "surrogateescape"), safe="")
    if span.style == "encoded_words":
        return '"' + email.header.Header(text, "utf-8").encode(maxlinelen=0) + '"'
    if span.style == "percent":
        return '"' + quote(text.encode("utf-8", "surrogateescape"), safe=" ._-") + '"'
    # Quoted-string (RFC 7578 form-data uses one): escape what would end it.
    return (
        '"'
        + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
        + '"'
    )
