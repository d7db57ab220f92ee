"""Offset maps from a decoded text back to the raw source text it was decoded from.

JSON escapes and HTML character references make decoded offsets differ from raw ones. A map
records the decoded *units* (one escape, one reference, one tag shown as nothing or as a
newline); everything between units is copied 1:1. Edits are widened to whole units, so an
escape is either kept byte for byte or re-escaped as a whole, never cut in half.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redactor.bodies.segments import Edit, apply_edits, check_edits

# (text_start, text_end, raw_start, raw_end, is_literal)
_Piece = tuple[int, int, int, int, bool]


@dataclass(frozen=True, slots=True)
class TextMap:
    """Where each character of a decoded text came from in the raw source."""

    raw_start: int
    raw_end: int
    text_len: int
    pieces: tuple[_Piece, ...]  # only pieces with text, in order
    starts: tuple[int, ...]  # text_start of each piece, for bisect


class TextMapBuilder:
    """Accumulates decoded text and its map while a codec scans a raw source."""

    __slots__ = ("_chunks", "_pieces", "_raw_cursor", "_raw_start", "_text_len")

    def __init__(self, raw_start: int) -> None:
        self._raw_start = raw_start
        self._raw_cursor = raw_start
        self._text_len = 0
        self._chunks: list[str] = []
        self._pieces: list[_Piece] = []

    def literal(self, raw_text: str, raw_start: int) -> None:
        """Append raw text that is its own decoding (no escapes in it)."""
        if not raw_text:
            return
        end = raw_start + len(raw_text)
        t0 = self._text_len
        last = self._pieces[-1] if self._pieces else None
        if last is not None and last[4] and last[3] == raw_start:
            # Merge with the previous literal run: fewer pieces, faster lookups.
            self._pieces[-1] = (last[0], t0 + len(raw_text), last[2], end, True)
        else:
            self._pieces.append((t0, t0 + len(raw_text), raw_start, end, True))
        self._chunks.append(raw_text)
        self._text_len += len(raw_text)
        self._raw_cursor = end

    def unit(self, decoded: str, raw_start: int, raw_end: int) -> None:
        """Append a raw span that decodes to `decoded` (possibly empty: markup shown as nothing)."""
        t0 = self._text_len
        if decoded:
            self._pieces.append((t0, t0 + len(decoded), raw_start, raw_end, False))
            self._chunks.append(decoded)
            self._text_len += len(decoded)
        self._raw_cursor = raw_end

    @property
    def text_len(self) -> int:
        """Length of the decoded text so far."""
        return self._text_len

    def build(self, raw_end: int | None = None) -> tuple[str, TextMap]:
        """Return the decoded text and its map."""
        end = self._raw_cursor if raw_end is None else raw_end
        pieces = tuple(self._pieces)
        text_map = TextMap(
            self._raw_start, end, self._text_len, pieces, tuple(p[0] for p in pieces)
        )
        return "".join(self._chunks), text_map


def _start_of(text_map: TextMap, offset: int) -> tuple[int, int]:
    """Widen a start offset to the start of its unit: (text offset, raw offset)."""
    if offset >= text_map.text_len:
        return text_map.text_len, text_map.raw_end
    t0, _t1, r0, _r1, literal = text_map.pieces[bisect_right(text_map.starts, offset) - 1]
    return (offset, r0 + offset - t0) if literal else (t0, r0)


def _end_of(text_map: TextMap, offset: int) -> tuple[int, int]:
    """Widen an end offset (> 0) to the end of the unit holding the character before it."""
    t0, t1, r0, r1, literal = text_map.pieces[bisect_right(text_map.starts, offset - 1) - 1]
    return (offset, r0 + offset - t0) if literal else (t1, r1)


@dataclass(slots=True)
class _Group:
    """Edits that were widened into the same stretch of raw source."""

    text_lo: int
    text_hi: int
    raw_lo: int
    raw_hi: int
    edits: list[Edit]


def map_edits(
    text: str,
    text_map: TextMap,
    edits: Sequence[Edit],
    escape: Callable[[str], str],
) -> list[Edit]:
    """Turn edits on a decoded text into edits on its raw source.

    The replacement, plus whatever part of a widened unit it did not cover, is passed through
    `escape`; raw text outside the widened ranges keeps its original escaping.
    Raises ValueError for out-of-range or overlapping edits.
    """
    groups: list[_Group] = []
    for edit in check_edits(len(text), edits):
        text_lo, raw_lo = _start_of(text_map, edit.start)
        if edit.end > text_lo:
            text_hi, raw_hi = _end_of(text_map, edit.end)
        else:
            text_hi, raw_hi = text_lo, raw_lo
        if groups and text_lo < groups[-1].text_hi:
            # Two edits widened into the same unit: rewrite that stretch once.
            group = groups[-1]
            group.text_hi = max(group.text_hi, text_hi)
            group.raw_hi = max(group.raw_hi, raw_hi)
            group.edits.append(edit)
        else:
            groups.append(_Group(text_lo, text_hi, raw_lo, raw_hi, [edit]))
    result: list[Edit] = []
    for group in groups:
        shifted = [
            Edit(e.start - group.text_lo, e.end - group.text_lo, e.replacement) for e in group.edits
        ]
        new_text = apply_edits(text[group.text_lo : group.text_hi], shifted)
        result.append(Edit(group.raw_lo, group.raw_hi, escape(new_text)))
    return result
