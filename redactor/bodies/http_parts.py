"""The parts of an HTTP request around the body: URL path, query and header values.

A card number can ride in any of them (`/customers/%34%31%31%31.../tickets`,
`X-Customer-Note: card ...`), so each is scanned like a body, decoded first:
- the path with its percent escapes decoded (a run of `%XX` is one unit, so a UTF-8
  character spelled in three escapes stays whole); a changed stretch is percent-encoded
  again, everything else keeps its exact spelling, and an unchanged path is the same string;
- the query as an urlencoded form (`form_body.py`: `+` and `%20`, the sender's style kept);
- header values, except the route's structural headers, through `nested.value_view`
  (RFC 2047 encoded words, JSON, HTML), each written back on one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote, unquote_to_bytes

from redactor.bodies.form_body import FormBody
from redactor.bodies.limits import count_fields
from redactor.bodies.nested import value_view
from redactor.bodies.segments import Edit, Segment, SegmentTable, TextView, apply_edits, has_edits
from redactor.bodies.textmap import TextMap, TextMapBuilder, map_edits
from redactor.detection.digits import digit_count

__all__ = ["HeaderValues", "UrlPath", "UrlQuery"]

_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
# RFC 3986 pchar minus `%`, plus `/`: what may stay unescaped in a path we write.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
# No PAN or SSN has fewer digits; encoded words hide theirs in base64.
_MIN_DIGITS = 9


def _could_hold_value(text: str) -> bool:
    return digit_count(text) >= _MIN_DIGITS or "=?" in text


def _escape_path(text: str) -> str:
    return quote(text.encode("utf-8", "surrogateescape"), safe=_PATH_SAFE)


def _decode_path(raw_path: str) -> tuple[str, TextMap, bool]:
    # (decoded text, its map onto the raw path, whether an escape spelled a digit)
    builder = TextMapBuilder(0)
    cursor = 0
    escaped_digit = False
    for match in _ESCAPES.finditer(raw_path):
        builder.literal(raw_path[cursor : match.start()], cursor)
        decoded = unquote_to_bytes(match.group()).decode("utf-8", "surrogateescape")
        escaped_digit = escaped_digit or any(c.isdigit() for c in decoded)
        builder.unit(decoded, match.start(), match.end())
        cursor = match.end()
    builder.literal(raw_path[cursor:], cursor)
    text, text_map = builder.build(len(raw_path))
    return text, text_map, escaped_digit


class UrlPath:
    """The raw (percent-encoded) path as one decoded segment; rebuild gives the raw path."""

    __slots__ = ("_raw", "_text", "_text_map", "segments")

    def __init__(self, raw_path: str) -> None:
        self._raw = raw_path
        self._text = raw_path
        # Built when needed: most paths have no escape, and most never change.
        self._text_map: TextMap | None = None
        escaped_digit = False
        if "%" in raw_path:
            self._text, self._text_map, escaped_digit = _decode_path(raw_path)
        self.segments: tuple[Segment, ...] = ()
        if _could_hold_value(self._text):
            # Detection leaves a bare number that is a whole path segment alone: it is a
            # link's id (tickets/NNN). No client needs to percent-encode a digit, so a path
            # that does is hiding one: it is read as plain text, its slashes as spaces (the
            # same length, so spans still map onto the path).
            text = self._text.replace("/", " ") if escaped_digit else self._text
            self.segments = (Segment(0, text, "path", "url_path"),)

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> str:
        """The raw path with edits applied; the same string when there are none."""
        if not has_edits(edits):
            return self._raw
        if set(edits) - {0}:
            raise ValueError("edit for an unknown segment")
        if self._text_map is None:
            self._text, self._text_map, _ = _decode_path(self._raw)
        raw_edits = map_edits(self._text, self._text_map, edits[0], _escape_path)
        return apply_edits(self._raw, raw_edits)


class UrlQuery:
    """The raw query read as an urlencoded form; rebuild gives the raw query."""

    __slots__ = ("_form", "_raw", "segments")

    def __init__(self, raw_query: str) -> None:
        self._raw = raw_query
        self._form: FormBody | None = None
        self.segments: Sequence[Segment] = ()
        # Most webhook URLs have no query: nothing to parse. (A short query is still parsed:
        # a field can hold a whole message whose base64 part hides its digits.)
        if raw_query:
            self._form = FormBody(raw_query.encode("utf-8", "surrogateescape"), None)
            self.segments = self._form.segments

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> str:
        """The raw query with edits applied; the same string when there are none."""
        if not has_edits(edits):
            return self._raw
        if self._form is None:
            raise ValueError("edit for an unknown segment")
        return self._form.rebuild(edits).decode("utf-8", "surrogateescape")


class HeaderValues:
    """Header values as segments, the names in `unscanned` left alone.

    `rebuild` returns {position in `headers`: new value} for the values that changed.
    """

    __slots__ = ("_table", "_values", "segments")

    def __init__(self, headers: Iterable[tuple[str, str]], unscanned: frozenset[str]) -> None:
        self._table = SegmentTable()
        self._values: dict[int, tuple[str, TextView]] = {}
        items = list(headers)
        count_fields(len(items))
        for position, (name, value) in enumerate(items):
            # Shorter than 9 characters, a value holds neither 9 digits nor an encoded word
            # that could hide them: most headers end here.
            if len(value) < _MIN_DIGITS or name.lower() in unscanned:
                continue
            if not _could_hold_value(value):
                continue
            view = value_view(value, name, "http_header")
            self._values[position] = (value, view)
            self._table.add(position, view.segments)
        self.segments: Sequence[Segment] = self._table.segments

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> dict[int, str]:
        """The changed values by position. Raises ValueError for invalid edits."""
        changed: dict[int, str] = {}
        for position, local in self._table.route(edits).items():
            value, view = self._values[position]  # type: ignore[index]
            new = apply_edits(value, view.source_edits(local))
            # A header ends at a line break: whatever a view wrote, it stays one line.
            changed[position] = new.replace("\r", " ").replace("\n", " ")  # type: ignore[index]
        return changed
