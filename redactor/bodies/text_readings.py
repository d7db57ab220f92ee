"""A text body read the way its reader may read it: a `text/plain` (or untyped) body that is
JSON, JSON lines or an urlencoded form is scanned as that (issue 18, item 5).

A webhook sender that labels JSON `text/plain` (or sends no type) still has a JSON reader at
the other end: `\\u0034111...` is a digit to it. So such a body is read as the document it is,
and rewritten in that document's own escaping; the Content-Type stays as the sender sent it
(redactor never adds one). Other text is read plain, with what it hides behind percent
escapes or `data:` URIs (bodies.hidden).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from redactor.bodies.form_body import parse_form
from redactor.bodies.hidden import hidden_view
from redactor.bodies.json_body import JsonView, parse_json
from redactor.bodies.nested import value_view
from redactor.bodies.segments import Edit, ParsedBody, PlainView, Segment, SegmentTable, TextView
from redactor.bodies.text_body import TextBody, decode_text
from redactor.errors import BodyUnparseableError

__all__ = ["parse_text_readings"]

# No PAN or SSN has fewer digits: shorter JSON strings are not segments.
_MIN_DIGITS = 9
# name=value&name=value with nothing a form cannot hold (no space, no line break).
_FORM = re.compile(r"[^=&\s]+=[^&\s]*(?:&[^=&\s]+=[^&\s]*)*&?")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


class JsonLinesView:
    """JSON lines: one JSON value per line, each read as JSON; blank lines kept."""

    __slots__ = ("_lines", "_table", "segments")

    def __init__(self, text: str) -> None:
        self._table = SegmentTable()
        self._lines: list[tuple[int, JsonView]] = []
        for match in _LINE.finditer(text):
            line = match.group()
            if not line.strip():
                continue
            view = JsonView(line, value_view=value_view, min_segment_digits=_MIN_DIGITS)
            self._table.add(len(self._lines), view.segments)
            self._lines.append((match.start(), view))
        self.segments: Sequence[Segment] = self._table.segments

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Edits on the whole text. Raises ValueError for invalid edits."""
        result: list[Edit] = []
        for key, local in self._table.route(edits).items():
            offset, view = self._lines[key]  # type: ignore[index]
            result.extend(
                Edit(e.start + offset, e.end + offset, e.replacement)
                for e in view.source_edits(local)
            )
        return sorted(result, key=lambda e: e.start)


def _json_lines(text: str) -> JsonLinesView | None:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not all(line.lstrip()[:1] in ("{", "[") for line in lines):
        return None
    try:
        for line in lines:
            json.loads(line)
    except (ValueError, RecursionError):
        return None
    try:
        return JsonLinesView(text)
    except BodyUnparseableError:
        return None


def parse_text_readings(body: bytes, charset: str | None) -> ParsedBody:
    """Parse a text (or untyped) body in the richest reading it has: JSON, JSON lines, an
    urlencoded form, else text with its percent escapes and `data:` URIs decoded.

    Raises BodyUnparseableError for a bad declared charset (and the readings' limit errors).
    """
    text, codec, errors = decode_text(body, charset)
    stripped = text.strip().lstrip("\ufeff")
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        try:
            return parse_json(body, charset, value_view=value_view, min_segment_digits=_MIN_DIGITS)
        except BodyUnparseableError:
            pass  # not one JSON document: maybe JSON lines
        lines = _json_lines(text)
        if lines is not None:
            return TextBody(body, text, codec, errors, lines)
    if "=" in stripped and _FORM.fullmatch(stripped) is not None:
        try:
            return parse_form(body, charset)
        except BodyUnparseableError:
            pass  # escapes that do not decode: read as text
    view: TextView | None = hidden_view(text, "body", "text", value_view)
    if view is None:
        view = PlainView(text, "body", "text")
    return TextBody(body, text, codec, errors, view)
