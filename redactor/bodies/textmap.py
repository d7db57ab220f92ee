"""Offset maps from a decoded text back to the raw source text it was decoded from.

JSON escapes and HTML character references make decoded offsets differ from raw ones. A map
records the decoded *units* (one escape, one reference, one tag shown as nothing or as a
newline); everything between units is copied 1:1. Edits are widened to whole units, so an
escape is either kept byte for byte or re-escaped as a whole, never cut in half.

Markup (a tag shown as nothing or as a line break) can be kept: `map_edits(keep_markup=True)`
replaces only the text on each side of it, so an edit over `4111 <b>1111</b> 1111 1111`
leaves the tags where they were and puts the replacement where the first digit was.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redactor.bodies.segments import Edit, apply_edits, check_edits

# (text_start, text_end, raw_start, raw_end, is_literal, is_markup)
_Piece = tuple[int, int, int, int, bool, bool]


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

    __slots__ = ("_chunks", "_pieces", "_raw_cursor", "_raw_start", "_text_len", "last_char")

    def __init__(self, raw_start: int) -> None:
        self._raw_start = raw_start
        self._raw_cursor = raw_start
        self._text_len = 0
        self._chunks: list[str] = []
        self._pieces: list[_Piece] = []
        # The last character of the text so far ("" before any).
        self.last_char = ""

    def literal(self, raw_text: str, raw_start: int) -> None:
        """Append raw text that is its own decoding (no escapes in it)."""
        if not raw_text:
            return
        end = raw_start + len(raw_text)
        t0 = self._text_len
        last = self._pieces[-1] if self._pieces else None
        if last is not None and last[4] and last[3] == raw_start:
            # Merge with the previous literal run: fewer pieces, faster lookups.
            self._pieces[-1] = (last[0], t0 + len(raw_text), last[2], end, True, False)
        else:
            self._pieces.append((t0, t0 + len(raw_text), raw_start, end, True, False))
        self._chunks.append(raw_text)
        self.last_char = raw_text[-1]
        self._text_len += len(raw_text)
        self._raw_cursor = end

    def unit(self, decoded: str, raw_start: int, raw_end: int, *, markup: bool = False) -> None:
        """Append a raw span that decodes to `decoded` (possibly empty: markup shown as nothing).
        `markup`: a tag read as `decoded`, which `map_edits(keep_markup=True)` keeps."""
        t0 = self._text_len
        if decoded:
            self._pieces.append((t0, t0 + len(decoded), raw_start, raw_end, False, markup))
            self._chunks.append(decoded)
            self._text_len += len(decoded)
            self.last_char = decoded[-1]
        self._raw_cursor = raw_end

    def drop_trailing_markup(self) -> None:
        """Forget markup read as text at the very end (a closing block's line break): no
        reader shows it. Its raw bytes stay in the source, outside every piece."""
        while self._pieces and self._pieces[-1][5]:
            t0 = self._pieces.pop()[0]
            self._chunks.pop()  # a markup unit is never merged: its own chunk
            self._text_len = t0

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
    t0, _t1, r0, _r1, literal, _m = text_map.pieces[bisect_right(text_map.starts, offset) - 1]
    return (offset, r0 + offset - t0) if literal else (t0, r0)


def _end_of(text_map: TextMap, offset: int) -> tuple[int, int]:
    """Widen an end offset (> 0) to the end of the unit holding the character before it."""
    t0, t1, r0, r1, literal, _m = text_map.pieces[bisect_right(text_map.starts, offset - 1) - 1]
    return (offset, r0 + offset - t0) if literal else (t1, r1)


@dataclass(slots=True)
class _Group:
    """Edits that were widened into the same stretch of raw source."""

    text_lo: int
    text_hi: int
    raw_lo: int
    raw_hi: int
    edits: list[Edit]


def _text_ranges(text_map: TextMap, group: _Group) -> list[tuple[int, int]]:
    """The raw ranges of the text (not markup) in a widened group, contiguous ones merged."""
    ranges: list[tuple[int, int]] = []
    first = max(0, bisect_right(text_map.starts, group.text_lo) - 1)
    for t0, t1, r0, r1, literal, markup in text_map.pieces[first:]:
        if t0 >= group.text_hi:
            break
        if t1 <= group.text_lo or markup:
            continue
        if literal:
            r0, r1 = r0 + max(t0, group.text_lo) - t0, r0 + min(t1, group.text_hi) - t0
        if ranges and ranges[-1][1] == r0:
            ranges[-1] = (ranges[-1][0], r1)
        else:
            ranges.append((r0, r1))
    return ranges


def map_edits(
    text: str,
    text_map: TextMap,
    edits: Sequence[Edit],
    escape: Callable[[str], str],
    *,
    keep_markup: bool = False,
) -> list[Edit]:
    """Turn edits on a decoded text into edits on its raw source.

    The replacement, plus whatever part of a widened unit it did not cover, is passed through
    `escape`; raw text outside the widened ranges keeps its original escaping. With
    `keep_markup`, markup inside a widened range stays: the new text goes where the range's
    first text was, and its other text is removed.
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
        ranges = _text_ranges(text_map, group) if keep_markup else []
        if ranges:
            result.append(Edit(ranges[0][0], ranges[0][1], escape(new_text)))
            result.extend(Edit(lo, hi, "") for lo, hi in ranges[1:])
        else:
            result.append(Edit(group.raw_lo, group.raw_hi, escape(new_text)))
    return result
