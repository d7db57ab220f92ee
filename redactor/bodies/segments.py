"""The values the body codecs hand to detection and take back from rewrite.

A codec turns a body into `Segment`s (decoded, scannable text plus a context hint) and later
rebuilds the body from per-segment `Edit`s. A codec may also name *neighbours*: runs of
segments that stand next to each other in the body and are each a short string of digits
(`["4111", "1111", "1111", "1111"]`, form fields `cc1`..`cc4`), which a reader may take for
one number; redaction scans them joined (`redaction/neighbours.py`). Nested formats (HTML inside a JSON string, an
e-mail inside a form field) are composed from small *views*: a view exposes segments over a
source text and turns edits on its segments into edits on that source text.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "Edit",
    "ParsedBody",
    "PlainView",
    "Segment",
    "SegmentTable",
    "TextView",
    "apply_edits",
    "check_edits",
    "is_piece",
    "neighbours_of",
]

# A piece of a value split over neighbouring fields: a string of 2-17 ASCII digits (a card in
# four groups of 4, two halves of 8, 10 and 6, 12 and 4; an SSN as 3-2-4). A piece of 9 or
# more digits is also a segment of its own (it may hold a value alone); a value has at most 19
# digits, so no piece of a split one has more than 17.
MIN_PIECE_DIGITS = 2
MAX_PIECE_DIGITS = 17


def is_piece(text: str) -> bool:
    """True when `text` may be one piece of a value split over neighbouring fields."""
    return MIN_PIECE_DIGITS <= len(text) <= MAX_PIECE_DIGITS and text.isascii() and text.isdigit()


def neighbours_of(owner: object) -> Sequence[tuple[int, ...]]:
    """The neighbour runs a parsed body or view names (segment indices), if any."""
    return getattr(owner, "neighbours", ())


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of decoded, scannable text and a hint about where it lives in the body."""

    index: int  # position in ParsedBody.segments
    text: str = field(repr=False)  # may hold raw values: never log it
    field_name: str | None  # JSON key / form field / header name / "body"
    kind: str  # json_string, json_number, html_text, html_attr, form_field, mime_text, header, ...


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace `Segment.text[start:end]` with `replacement` (Python str offsets)."""

    start: int
    end: int
    replacement: str = field(repr=False)


class ParsedBody(Protocol):
    """A parsed request body: its segments, and a way back to bytes."""

    @property
    def segments(self) -> Sequence[Segment]: ...

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> bytes:
        """Return the body with `edits` (segment index -> non-overlapping edits) applied."""
        ...


class TextView(Protocol):
    """Segments over a source `str`; edits on them become edits on that source string."""

    @property
    def segments(self) -> Sequence[Segment]: ...

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Translate segment edits into sorted, non-overlapping edits on the source text."""
        ...


def check_edits(text_len: int, edits: Sequence[Edit]) -> list[Edit]:
    """Return `edits` sorted by start; raise ValueError if one is out of range or they overlap.

    Edits come from our own rewrite stage, so a bad one is our bug (a 500), never the caller's.
    The message is fixed: it must not quote the replacement or the text.
    """
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    previous_end = 0
    for edit in ordered:
        if not 0 <= edit.start <= edit.end <= text_len:
            raise ValueError("edit is outside its segment")
        if edit.start < previous_end:
            raise ValueError("edits overlap")
        previous_end = edit.end
    return ordered


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Return `text` with the edits applied. Raises ValueError for overlapping/out-of-range edits."""
    ordered = check_edits(len(text), edits)
    if not ordered:
        return text
    pieces: list[str] = []
    cursor = 0
    for edit in ordered:
        pieces.append(text[cursor : edit.start])
        pieces.append(edit.replacement)
        cursor = edit.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def splice_bytes(raw: bytes, replacements: Sequence[tuple[int, int, bytes]]) -> bytes:
    """Return `raw` with the sorted, non-overlapping (start, end, new) byte ranges replaced."""
    pieces: list[bytes] = []
    cursor = 0
    for start, end, new in sorted(replacements, key=lambda r: r[0]):
        if start < cursor:
            raise ValueError("byte replacements overlap")
        pieces.append(raw[cursor:start])
        pieces.append(new)
        cursor = end
    pieces.append(raw[cursor:])
    return b"".join(pieces)


class PlainView:
    """One segment that is the whole source text; edits map through unchanged."""

    __slots__ = ("segments",)

    def __init__(self, text: str, field_name: str | None, kind: str) -> None:
        self.segments: tuple[Segment, ...] = (Segment(0, text, field_name, kind),)

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Return the edits of segment 0. Raises ValueError for an unknown index or bad edits."""
        if set(edits) - {0}:
            raise ValueError("edit for an unknown segment")
        return check_edits(len(self.segments[0].text), edits.get(0, ()))


class SegmentTable:
    """Flattens the segments of several owners (views, nested bodies) into one indexed list.

    Codecs register each owner under a key of their choice and later get back, per key, the
    edits addressed to that owner's own (local) segment indices.
    """

    __slots__ = ("_routes", "neighbours", "segments")

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self._routes: list[tuple[Hashable, int]] = []
        # Runs of neighbouring pieces, as global segment indices (see `is_piece`).
        self.neighbours: list[tuple[int, ...]] = []

    def add(
        self,
        key: Hashable,
        segments: Sequence[Segment],
        rename: Callable[[Segment], str | None] | None = None,
        neighbours: Sequence[tuple[int, ...]] = (),
    ) -> None:
        """Append an owner's segments, renumbered; `rename` may replace their field_name.
        `neighbours`: the owner's neighbour runs, in its local indices."""
        global_of: dict[int, int] = {}
        for local in segments:
            global_of[local.index] = len(self.segments)
            # Built directly: dataclasses.replace costs ~2 us a call, and every attribute
            # value and text run of every HTML string comes through here.
            field_name = local.field_name if rename is None else rename(local)
            global_segment = Segment(len(self.segments), local.text, field_name, local.kind)
            self.segments.append(global_segment)
            self._routes.append((key, local.index))
        for run in neighbours:
            self.neighbours.append(tuple(global_of[i] for i in run))

    def route(self, edits: Mapping[int, Sequence[Edit]]) -> dict[Hashable, dict[int, list[Edit]]]:
        """Group non-empty edit lists by owner key. Raises ValueError for an unknown index."""
        routed: dict[Hashable, dict[int, list[Edit]]] = {}
        for index, segment_edits in edits.items():
            if not segment_edits:
                continue
            if not 0 <= index < len(self._routes):
                raise ValueError("edit for an unknown segment")
            key, local_index = self._routes[index]
            routed.setdefault(key, {})[local_index] = list(segment_edits)
        return routed


def unread_parts_of(parsed: object) -> Sequence[Any]:
    """The parts of a parsed body that are not text (attachments.UnreadPart), in order; a
    codec without attachments has none."""
    return getattr(parsed, "unread_parts", ())  # type: ignore[no-any-return]


def rebuild_stripped(
    parsed: ParsedBody, edits: Mapping[int, Sequence[Edit]], strip: frozenset[int]
) -> bytes:
    """`parsed.rebuild(edits)`, with the unread parts numbered in `strip` replaced by a
    placeholder (only codecs with attachments take `strip`)."""
    if not strip:
        return parsed.rebuild(edits)
    return parsed.rebuild(edits, strip)  # type: ignore[call-arg]


def has_edits(edits: Mapping[int, Sequence[Edit]]) -> bool:
    """True when at least one segment has at least one edit."""
    return any(edits.values())
