"""The CPU half of a backfill: find the values in a batch of items, rebuild an item with tokens.

Plain functions of their inputs, so they run the same in the main process (`--jobs 1`) and in
a worker process (`--jobs N`). A media-type item goes through the proxy's own functions
(`redaction.scanning.scan_body` and `rebuild_body`: the JSON fast path, the codecs, windowed
detection); a CSV record through the CSV codec. An item that does not parse as its format
(a malformed JSON line) is scanned as text, as the proxy scans a body of an unknown type: it is
never passed through unscanned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redactor.backfill.formats import JSON, TEXT, ItemKind, read_jsonl
from redactor.bodies.csv_body import parse_csv_record
from redactor.detection import DetectionOptions, Detector, Finding
from redactor.errors import BodyError
from redactor.redaction.rewrite import Rewriter, TokenKey
from redactor.redaction.scanning import (
    ScanRequest,
    find_windowed,
    parse_request,
    rebuild_body,
    scan_body,
)

__all__ = [
    "ItemFound",
    "RangeFound",
    "parse_item",
    "rebuild_item",
    "scan_items",
    "scan_jsonl_range",
]

# The proxy's default decoded-body limit is 10 MiB; a stored item is bounded by the reader.
_MAX_DECODED_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ItemFound:
    """The values in one item of a batch. Crosses a process pipe, never a disk or a log."""

    number: int  # the item's position among the batch's items
    kind: ItemKind  # as parsed: text/plain when the item's own format did not parse
    # (segment index, findings, each finding's span text)
    found: list[tuple[int, list[Finding], list[str]]] = field(repr=False)


def _request(raw: bytes, kind: ItemKind) -> ScanRequest:
    return ScanRequest(raw, kind.content_type, None, "text", _MAX_DECODED_BYTES, None)


def _is_csv(kind: ItemKind) -> bool:
    return kind.content_type == "text/csv"


def parse_item(raw: bytes, kind: ItemKind) -> Any:
    """The parsed item (ParsedBody). Raises BodyError when it does not parse as `kind`."""
    if _is_csv(kind):
        return parse_csv_record(raw, kind.columns)
    return parse_request(_request(raw, kind))


def _scan_one(
    detector: Detector, raw: bytes, kind: ItemKind
) -> list[tuple[int, str, list[Finding]]]:
    if _is_csv(kind):
        parsed = parse_csv_record(raw, kind.columns)
        found = []
        for seg in parsed.segments:
            findings = find_windowed(detector, seg.text, seg.field_name)
            if findings:
                found.append((seg.index, seg.text, findings))
        return found
    return scan_body(detector, _request(raw, kind)).found


def scan_item(
    detector: Detector, number: int, raw: bytes, kind: ItemKind
) -> tuple[ItemFound | None, bool]:
    """The values in one item (None when it holds none), and whether it was scanned as text
    because it did not parse as its format. Raises DetectionError."""
    as_text = False
    try:
        found = _scan_one(detector, raw, kind)
    except BodyError:
        kind, as_text = TEXT, True
        found = _scan_one(detector, raw, kind)
    if not found:
        return None, as_text
    spans = [
        (index, findings, [text[f.start : f.end] for f in findings])
        for index, text, findings in found
    ]
    return ItemFound(number, kind, spans), as_text


# Built once per process, on its first batch (a worker is a fresh interpreter).
_DETECTORS: dict[DetectionOptions, Detector] = {}


def detector_for(options: DetectionOptions) -> Detector:
    """This process's detector for `options`."""
    detector = _DETECTORS.get(options)
    if detector is None:
        detector = _DETECTORS[options] = Detector(options)
    return detector


def scan_items(
    options: DetectionOptions, items: Sequence[tuple[bytes, ItemKind]]
) -> tuple[list[ItemFound], int]:
    """The items of a batch that hold values, in order, and how many items were scanned as
    text. Raises DetectionError."""
    detector = detector_for(options)
    result = []
    as_text = 0
    for number, (raw, kind) in enumerate(items):
        item, fell_back = scan_item(detector, number, raw, kind)
        as_text += fell_back
        if item is not None:
            result.append(item)
    return result, as_text


@dataclass(frozen=True, slots=True)
class RangeFound:
    """What a worker found in its byte range of a JSON Lines file: the lines that start in
    the range, as [start, end) of the file, and the items among them that hold values (each
    with its offset from `start` and its length). Crosses a process pipe, never a disk."""

    start: int
    end: int
    items: int
    as_text: int
    found: list[tuple[int, int, ItemFound]] = field(repr=False)


def _first_line_start(stream: Any, at: int) -> int:
    """The offset of the first line that starts at or after `at` (`at` > 0)."""
    stream.seek(at - 1)
    pos = at - 1
    while True:
        block = stream.read(64 * 1024)
        if not block:
            return pos
        cut = block.find(b"\n")
        if cut >= 0:
            return pos + cut + 1
        pos += len(block)


def scan_jsonl_range(
    options: DetectionOptions, path: str, start: int, end: int, aligned: bool
) -> RangeFound:
    """Scan the lines of a JSON Lines file that start in [start, end): a worker reads its own
    range (`redact --jobs N`), so no item crosses a pipe. `aligned`: a line starts at `start`
    (the run's first range); otherwise the range begins at the first line after `start - 1`.
    The ranges of consecutive calls tile the file. Raises ItemTooLargeError, DetectionError."""
    detector = detector_for(options)
    found: list[tuple[int, int, ItemFound]] = []
    items = as_text = 0
    with Path(path).open("rb") as stream:
        first = start if aligned or start == 0 else _first_line_start(stream, start)
        pos = first
        if first < end:
            for piece in read_jsonl(stream, first):
                if pos >= end:
                    break
                length = len(piece.raw)
                if piece.kind is not None:
                    item, fell_back = scan_item(detector, items, piece.raw, JSON)
                    items += 1
                    as_text += fell_back
                    if item is not None:
                        found.append((pos - first, length, item))
                pos += length
    return RangeFound(first, max(pos, first), items, as_text, found)


def rebuild_item(
    rewriter: Rewriter,
    raw: bytes,
    item: ItemFound,
    token_of: Mapping[TokenKey, str],
) -> bytes:
    """The item with each finding replaced by its token: parsed again (parsing is
    deterministic, so the segment indices of the scan address the same segments)."""
    parsed = parse_item(raw, item.kind)
    segments = parsed.segments
    with_text = [(index, segments[index].text, findings) for index, findings, _ in item.found]
    return rebuild_body(rewriter, parsed, with_text, token_of)
