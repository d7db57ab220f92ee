"""Folded text: iCalendar (RFC 5545) and vCard (RFC 6350) bodies, read unfolded.

Both fold long content lines with a line break followed by one space or tab, which a reader
removes. A card number folded mid-group (`4111 1111 11<CRLF> 11 1111 1111`) is one number to
the calendar app that shows it; here the segment is the unfolded text, and edits map back over
the folds (a fold inside a changed stretch is dropped with it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from redactor.bodies.segments import Edit, Segment
from redactor.bodies.textmap import TextMapBuilder, map_edits

FOLDED_TYPES = frozenset({"text/calendar", "text/vcard", "text/x-vcard", "text/directory"})
_FOLD = re.compile(r"\r?\n[ \t]")


class UnfoldedView:
    """One segment: the text with its folds removed."""

    __slots__ = ("_map", "segments")

    def __init__(self, text: str, field_name: str | None, kind: str) -> None:
        builder = TextMapBuilder(0)
        pos = 0
        for fold in _FOLD.finditer(text):
            builder.literal(text[pos : fold.start()], pos)
            builder.unit("", fold.start(), fold.end())
            pos = fold.end()
        builder.literal(text[pos:], pos)
        unfolded, self._map = builder.build(len(text))
        self.segments: tuple[Segment, ...] = (Segment(0, unfolded, field_name, kind),)

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Edits on the folded text. Raises ValueError for an unknown index or bad edits."""
        if set(edits) - {0}:
            raise ValueError("edit for an unknown segment")
        return map_edits(self.segments[0].text, self._map, edits.get(0, ()), _as_is)


def _as_is(text: str) -> str:
    return text
