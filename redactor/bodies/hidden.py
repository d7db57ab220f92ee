"""Text behind an encoding inside a value: base64, `data:` URIs and percent-escaped URLs.

Inbound-mail webhooks carry attachments as base64 in JSON strings; a chat message links
`https://shop.example/s?q=4111%201111%20...`; an HTML mail embeds `data:text/plain;base64,...`.
A reader decodes each of them (the egress verifier does too), so redaction reads them the same
way: a value found in the decoded text is replaced there and the value encoded again in its
own style (alphabet, padding, line length; percent escapes), every other byte unchanged.
Decoded bytes are read only when they are text (attachments.is_text): binary content is left
as it is (a PDF in base64 is the unread-parts policy's business, not a text's).

Each view keeps the plain reading of its text as well, so a value written plainly beside an
encoded one is found too.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from typing import AnyStr
from urllib.parse import quote

from redactor.bodies.attachments import text_charset
from redactor.bodies.segments import Edit, PlainView, Segment, SegmentTable, TextView, apply_edits
from redactor.bodies.textmap import TextMapBuilder, map_edits
from redactor.detection.digits import digit_count

__all__ = [
    "Base64View",
    "DataUriView",
    "PercentView",
    "base64_blocks",
    "base64_text",
    "has_data_scheme",
    "hidden_view",
    "may_hide_text",
    "raw_may_hide_text",
]

# No PAN or SSN has fewer digits.
_MIN_DIGITS = 9
# Base64 of 9 digits is 12 characters; shorter runs are words, not blobs.
_MIN_BASE64 = 16
_BASE64 = re.compile(r"[A-Za-z0-9+/\-_]+={0,2}")
_BASE64_LINES = re.compile(r"(?:[A-Za-z0-9+/\-_]+={0,2}\r?\n)+[A-Za-z0-9+/\-_]*={0,2}\r?\n?")
_DATA_URI = re.compile(
    r"data:(?P<type>[A-Za-z0-9.+/-]*(?:;[A-Za-z0-9.+-]+=[A-Za-z0-9.+%-]+)*)"
    r"(?P<b64>;base64)?,(?P<payload>[A-Za-z0-9+/=%._~!$&'()*;:@-]*)",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# The scheme of a `data:` URI is read in any case: browsers read `DATA:` and `Data:` alike
# (RFC 3986 schemes are case-insensitive), and so does the egress verifier.
_DATA_SCHEME = re.compile(r"(?i)data:")
_DATA_SCHEME_BYTES = re.compile(rb"(?i)data:")
# A stretch without spaces, quotes or angle brackets: a URL as it stands in text or markup.
_URL_RUN = re.compile(r"[^\s\"'<>]*%[0-9A-Fa-f]{2}[^\s\"'<>]*")
_URL_SHAPE = ("://", "?", "=", "/", "&", "www.")


def has_data_scheme(text: AnyStr) -> bool:
    """True when `text` (str or bytes) may hold a `data:` URI that hides text, whatever the
    case of its scheme: a base64 payload (`;base64,` in any case) or a percent-escaped one.
    A plain payload hides nothing. Found from each `;` and `%` (memchr; a substring or
    case-insensitive search over a long text costs ten to twenty times more)."""
    semicolon, marker = (";", ";base64,") if isinstance(text, str) else (b";", b";base64,")
    at = text.find(semicolon)  # type: ignore[arg-type]
    while at >= 0:
        if text[at : at + 8].lower() == marker:
            return True
        at = text.find(semicolon, at + 1)  # type: ignore[arg-type]
    if isinstance(text, str):
        return "%" in text and _DATA_SCHEME.search(text) is not None
    return b"%" in text and _DATA_SCHEME_BYTES.search(text) is not None


def raw_may_hide_text(raw: str) -> bool:
    """A cheap first test on a value as written (escapes and all): True when it may hide
    text behind percent escapes, a `data:` URI or base64 (a long stretch without a space)."""
    if "%" in raw or has_data_scheme(raw):
        return True
    return len(raw) >= _MIN_BASE64 and " " not in raw


def may_hide_text(text: str) -> bool:
    """True when `text` may hold text behind base64, a `data:` URI or percent escapes (a
    cheap test: the views below decide)."""
    if "%" in text and _PERCENT.search(text) is not None:
        return True
    if has_data_scheme(text) and _DATA_URI.search(text) is not None:
        return True
    return base64_text(text) is not None or bool(base64_blocks(text))


# --- base64 ------------------------------------------------------------------------------------


class _Base64Style:
    """How a blob was written, so it is written again the same way."""

    __slots__ = ("eol", "final_eol", "line", "padded", "urlsafe")

    def __init__(self, text: str) -> None:
        self.urlsafe = "-" in text or "_" in text
        self.padded = "=" in text
        first = text.find("\n")
        self.eol = "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"
        self.line = (first - (1 if self.eol == "\r\n" else 0)) if first >= 0 else 0
        self.final_eol = text.endswith("\n")

    def encode(self, data: bytes) -> str:
        out = base64.b64encode(data).decode("ascii")
        if self.urlsafe:
            out = out.replace("+", "-").replace("/", "_")
        if not self.padded:
            out = out.rstrip("=")
        if self.line > 0:
            lines = [out[i : i + self.line] for i in range(0, len(out), self.line)]
            out = self.eol.join(lines) + (self.eol if self.final_eol else "")
        return out


def base64_text(text: str) -> tuple[str, str, _Base64Style] | None:
    """(decoded text, its codec, the style) when all of `text` is base64 of text that could
    hold a value; None otherwise."""
    if len(text) < _MIN_BASE64:
        return None
    if _BASE64.fullmatch(text) is None and (
        "\n" not in text or _BASE64_LINES.fullmatch(text) is None
    ):
        return None
    compact = text.replace("\r", "").replace("\n", "")
    # Base64 of text mixes cases; an id, a hex digest or a card number written plainly does not.
    if compact.isdigit() or compact.lower() == compact or compact.upper() == compact:
        return None
    if len(compact.rstrip("=")) % 4 == 1:
        return None
    urlsafe = "-" in compact or "_" in compact
    try:
        padded = compact + "=" * (-len(compact) % 4)
        raw = (
            base64.urlsafe_b64decode(padded) if urlsafe else base64.b64decode(padded, validate=True)
        )
    except (binascii.Error, ValueError):
        return None
    charset = text_charset(raw) if raw else None
    if charset is None:
        return None
    decoded, codec = _decode(raw, charset)
    if digit_count(decoded) < _MIN_DIGITS and not may_hide_text(decoded):
        return None
    return decoded, codec, _Base64Style(text)


def _decode(raw: bytes, charset: str) -> tuple[str, str]:
    if charset:
        return raw.decode(charset), charset  # UTF-16 without a byte order mark
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw.decode("utf-8"), "utf-8"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    return raw.decode("utf-8"), "utf-8"


def _encode(text: str, codec: str) -> bytes:
    # utf-16 writes its BOM again, utf-8 keeps the one the text holds (U+FEFF).
    return text.encode(codec)


class _Readings:
    """The plain reading of a text plus readings of stretches of it: segments of all, and
    edits back on the text (an edit of a stretch's reading replaces that stretch)."""

    __slots__ = ("_plain", "_stretches", "_table", "segments")

    def __init__(self, text: str, field_name: str | None, kind: str) -> None:
        self._table = SegmentTable()
        self._plain = PlainView(text, field_name, kind)
        self._table.add("plain", self._plain.segments)
        # (start, end, view, encode): `encode` turns the view's new text into the stretch.
        self._stretches: list[tuple[int, int, TextView, str, Callable[[str], str]]] = []
        self.segments: Sequence[Segment] = self._table.segments

    def add(
        self, start: int, end: int, view: TextView, decoded: str, encode: Callable[[str], str]
    ) -> None:
        self._table.add(len(self._stretches), view.segments)
        self._stretches.append((start, end, view, decoded, encode))
        self.segments = self._table.segments

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Edits on the text. A stretch that changed is written again whole; a plain edit
        inside such a stretch is dropped (the stretch's new text replaces it)."""
        routed = self._table.route(edits)
        result: list[Edit] = []
        for key, local in routed.items():
            if key == "plain":
                continue
            start, end, view, decoded, encode = self._stretches[key]  # type: ignore[index]
            new_text = apply_edits(decoded, view.source_edits(local))
            result.append(Edit(start, end, encode(new_text)))
        for edit in self._plain.source_edits(routed.get("plain", {})):
            if not any(e.start < edit.end and edit.start < e.end for e in result):
                result.append(edit)
        return sorted(result, key=lambda e: e.start)


class Base64View(_Readings):
    """A text that is all base64 of text: its plain reading and the decoded text's."""

    __slots__ = ()

    def __init__(
        self,
        text: str,
        field_name: str | None,
        kind: str,
        decoded: tuple[str, str, _Base64Style],
        inner: Callable[[str, str | None, str], TextView],
    ) -> None:
        super().__init__(text, field_name, kind)
        content, codec, style = decoded
        view = inner(content, field_name, "base64_text")
        self.add(0, len(text), view, content, lambda new: style.encode(_encode(new, codec)))


class DataUriView(_Readings):
    """A text holding `data:` URIs or blocks of base64 lines: its plain reading and each
    text payload's."""

    __slots__ = ()

    def __init__(
        self,
        text: str,
        field_name: str | None,
        kind: str,
        inner: Callable[[str, str | None, str], TextView],
        blocks: Sequence[tuple[int, int, tuple[str, str, _Base64Style]]] = (),
    ) -> None:
        super().__init__(text, field_name, kind)
        for start, end, (content, codec, style) in blocks:
            self.add(
                start, end, inner(content, field_name, "base64_text"), content,
                lambda new, s=style, c=codec: s.encode(_encode(new, c)),
            )  # fmt: skip
        if not has_data_scheme(text):
            return
        for match in _DATA_URI.finditer(text):
            payload = match.group("payload")
            start, end = match.span("payload")
            if match.group("b64"):
                decoded = base64_text(payload) if len(payload) >= _MIN_BASE64 else None
                if decoded is None:
                    decoded = _short_base64(payload)
                if decoded is None:
                    continue
                content, codec, style = decoded
                self.add(
                    start, end, inner(content, field_name, "data_uri"), content,
                    lambda new, s=style, c=codec: s.encode(_encode(new, c)),
                )  # fmt: skip
            elif "%" in payload:
                view = PercentView(payload, field_name, "data_uri", whole=True)
                self.add(start, end, view, payload, lambda new: new)


# Lines that are all base64, one after the other: a blob wrapped at any line length (60, 64,
# 76) standing on lines of its own inside longer text (an HTML mail's `<pre>` after a
# greeting, one line per `<br>` or `<div>`). Each line has 4+ characters; only the last may
# have padding.
_BASE64_BLOCK = re.compile(
    r"(?m)^[A-Za-z0-9+/\-_]{4,}={0,2}\r?$(?:\n[A-Za-z0-9+/\-_]{4,}={0,2}\r?$)*"
)
_BLOCK_LINE = re.compile(r"[A-Za-z0-9+/\-_]+={0,2}")


def base64_blocks(text: str) -> list[tuple[int, int, tuple[str, str, _Base64Style]]]:
    """(start, end, decoded) of each block of base64 lines inside `text` that decodes to
    text which could hold a value (`base64_text`), when `text` has more than one line.

    A wrapped blob's lines have one length but the last, which may be shorter: so a word on a
    line of its own before or after it (`Regards`) is not taken for part of it."""
    if "\n" not in text:
        return []
    out: list[tuple[int, int, tuple[str, str, _Base64Style]]] = []
    for match in _BASE64_BLOCK.finditer(text):
        lines = [(m.start(), m.end()) for m in _BLOCK_LINE.finditer(text, *match.span())]
        i = 0
        while i < len(lines):
            width = lines[i][1] - lines[i][0]
            j = i + 1
            while j < len(lines) and lines[j][1] - lines[j][0] == width:
                j += 1
            # With the shorter last line after the full ones, else without it.
            ends = [j + 1, j] if j < len(lines) and lines[j][1] - lines[j][0] < width else [j]
            for stop in ends:
                start, end = lines[i][0], lines[stop - 1][1]
                if start == 0 and end == len(text):
                    break  # the whole text: `base64_text` reads it (or it is no blob)
                if end - start < _MIN_BASE64:
                    continue
                decoded = base64_text(text[start:end])
                if decoded is not None:
                    out.append((start, end, decoded))
                    j = stop
                    break
            i = j
    return out


def _short_base64(payload: str) -> tuple[str, str, _Base64Style] | None:
    # A data: URI says it is base64: a short or single-case payload is still decoded.
    try:
        raw = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    charset = text_charset(raw) if raw else None
    if charset is None:
        return None
    decoded, codec = _decode(raw, charset)
    return decoded, codec, _Base64Style(payload)


# --- percent escapes ---------------------------------------------------------------------------


def _percent_unit(escape: str) -> str | None:
    """The character a `%XX` escape stands for when it is printable ASCII (a digit, a space,
    a separator); None for the bytes of a longer UTF-8 sequence, which stay as written."""
    code = int(escape[1:], 16)
    return chr(code) if 0x20 <= code < 0x7F else None


def _quote(text: str) -> str:
    return quote(text, safe="/?:@&=+$,;!~*'()#[]%")


class PercentView:
    """Text whose URL-shaped stretches have percent escapes, read decoded (`%34%31` as `41`,
    `+` in a query as a space); a changed stretch is written back with the escapes it had
    wherever the edit did not reach, and the replacement percent-encoded."""

    __slots__ = ("_map", "_text", "segments")

    def __init__(
        self, text: str, field_name: str | None, kind: str, *, whole: bool = False
    ) -> None:
        builder = TextMapBuilder(0)
        cursor = 0
        runs = [(0, len(text))] if whole else [m.span() for m in _URL_RUN.finditer(text)]
        for run_start, run_end in runs:
            run = text[run_start:run_end]
            if not whole and not any(mark in run for mark in _URL_SHAPE):
                continue
            query = run.find("?")
            for match in re.finditer(r"%[0-9A-Fa-f]{2}|\+", run):
                at = run_start + match.start()
                if match.group() == "+":
                    if query < 0 or match.start() < query:
                        continue
                    decoded: str | None = " "
                else:
                    decoded = _percent_unit(match.group())
                if decoded is None:
                    continue
                builder.literal(text[cursor:at], cursor)
                builder.unit(decoded, at, at + len(match.group()))
                cursor = at + len(match.group())
        builder.literal(text[cursor:], cursor)
        decoded_text, self._map = builder.build(len(text))
        self._text = decoded_text
        self.segments: tuple[Segment, ...] = (Segment(0, decoded_text, field_name, kind),)

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Edits on the text. Raises ValueError for an unknown index or bad edits."""
        if set(edits) - {0}:
            raise ValueError("edit for an unknown segment")
        return map_edits(self._text, self._map, edits.get(0, ()), _quote)


def hidden_view(
    text: str,
    field_name: str | None,
    kind: str,
    inner: Callable[[str, str | None, str], TextView],
) -> TextView | None:
    """The view that reads what `text` hides behind base64, `data:` URIs or percent escapes,
    or None when it hides nothing. `inner` reads a decoded text (a document in it too)."""
    decoded = base64_text(text)
    if decoded is not None:
        return Base64View(text, field_name, kind, decoded, inner)
    blocks = base64_blocks(text)
    if blocks or (has_data_scheme(text) and _DATA_URI.search(text) is not None):
        view = DataUriView(text, field_name, kind, inner, blocks)
        if len(view.segments) > 1:
            return view
    if "%" in text and _PERCENT.search(text) is not None:
        percent = PercentView(text, field_name, kind)
        if percent.segments[0].text != text:
            return percent
    return None
