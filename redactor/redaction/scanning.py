"""The CPU half of the pipeline: parse a body, find values, and later rebuild it with tokens.

Plain functions of their inputs, so they run the same in the server process (small bodies)
and in a scan worker process (large ones, see pipeline.py): a worker is a separate
interpreter, so a scan there holds no lock the event loop needs, however long one C call
(`json.loads`, a regex over 9 MB) takes. A worker parses the body again for the rebuild
rather than keeping state between the two calls: parsing is deterministic, so the segment
indices of the first call address the same segments in the second.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redactor.bodies import parse_body
from redactor.bodies.attachments import UnreadSummary, text_layer
from redactor.bodies.json_prescan import plain_json_texts
from redactor.bodies.limits import BodyLimits
from redactor.bodies.segments import (
    Edit,
    apply_edits,
    neighbours_of,
    rebuild_stripped,
    unread_parts_of,
)
from redactor.detection import DetectionOptions, Detector, Finding
from redactor.detection.screen import WINDOW_CHARS, may_hold_value
from redactor.egress import SeenValues
from redactor.redaction.neighbours import find_split_values
from redactor.redaction.rewrite import Rewriter, TokenKey

__all__ = [
    "WINDOW_CHARS",
    "WINDOW_OVERLAP",
    "BodyScan",
    "ScanRequest",
    "find_windowed",
    "parse_request",
    "rebuild_body",
    "rebuild_in_worker",
    "scan_body",
    "scan_in_worker",
]

# Segments longer than this are scanned in windows of this many characters, each overlapping
# the next by WINDOW_OVERLAP. A value (19 digits with separators as wide as `\n> ` is under
# 80 characters) is owned by the window whose core holds its start, and lies whole inside it
# with at least WINDOW_OVERLAP / 2 characters of context before it: never split at an edge.
# (The screen knows the window too: a window can cut a long run into a candidate.)
WINDOW_OVERLAP = 512


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """Everything a scan of one body depends on (picklable: it may go to a worker)."""

    body: bytes = dataclasses.field(repr=False)
    content_type: str | None
    content_encoding: str | None
    unknown_types: Literal["text", "refuse"]
    max_decoded_bytes: int
    limits: BodyLimits | None


@dataclass(slots=True)
class BodyScan:
    parsed: Any  # ParsedBody, or None when the fast path proved the body clean
    # (segment index, segment text, findings) for each segment with findings.
    found: list[tuple[int, str, list[Finding]]]
    # The parts that are not text (PDFs, images, archives), in order.
    unread: list[UnreadSummary] = dataclasses.field(default_factory=list)


def summarise_unread(detector: Detector, parsed: Any) -> list[UnreadSummary]:
    """Each unread part of `parsed` by type and size, with whether its text layer (a PDF's
    text, a zip's text members) holds a value."""
    summaries: list[UnreadSummary] = []
    for part in unread_parts_of(parsed):
        layer = text_layer(part)
        found = bool(layer) and bool(find_windowed(detector, layer or "", None))
        summaries.append(UnreadSummary(part.media_type, part.size, part.kind, found))
    return summaries


def find_windowed(
    detector: Detector, text: str, field_name: str | None, seen: SeenValues | None = None
) -> list[Finding]:
    """Findings in `text`; a long text is scanned in bounded, overlapping windows.

    `seen` receives the digits of every candidate and run the detector weighs (egress).
    """
    considered = seen.considered if seen is not None else None
    runs = seen.runs if seen is not None else None
    if len(text) <= WINDOW_CHARS:
        return detector.find(text, field_name=field_name, considered=considered, runs=runs)
    half = WINDOW_OVERLAP // 2
    step = WINDOW_CHARS - WINDOW_OVERLAP
    kept: list[Finding] = []
    start = 0
    while True:
        end = min(start + WINDOW_CHARS, len(text))
        core_lo = 0 if start == 0 else start + half
        core_hi = len(text) if end == len(text) else end - half
        window = text[start:end]
        for f in detector.find(window, field_name=field_name, considered=considered, runs=runs):
            absolute = f.start + start
            if core_lo <= absolute < core_hi:
                kept.append(dataclasses.replace(f, start=absolute, end=f.end + start))
        if end == len(text):
            break
        start += step
    # A finding reaching past its window's core may overlap the next window's: keep the first.
    result: list[Finding] = []
    for f in sorted(kept, key=lambda f: (f.start, -f.end)):
        if result and f.start < result[-1].end:
            continue
        result.append(f)
    return result


def parse_request(request: ScanRequest) -> Any:
    """The body parsed as the proxy parses it (ParsedBody). Raises BodyError."""
    return parse_body(
        request.body,
        request.content_type,
        content_encoding=request.content_encoding,
        unknown_types=request.unknown_types,
        max_decoded_bytes=request.max_decoded_bytes,
        # No PAN or SSN has fewer than 9 digits: short strings need no segment.
        min_segment_digits=9,
        limits=request.limits,
    )


class JsonStringPatch:
    """Rewrites a JSON body by replacing, in its raw bytes, the few string values that hold a
    finding: no position map of the whole document (issue 14: the codec's scan was a fifth
    of a message's CPU). `build` accepts a body only when every such string is found where
    it must be and nowhere else; otherwise the caller uses the codec.
    """

    __slots__ = ("_body", "_items", "found")

    def __init__(
        self,
        body: bytes,
        items: list[tuple[str, bool, list[int]]],
        found: list[tuple[int, str, list[Finding]]],
    ) -> None:
        self._body = body
        self._items = items  # per index: (text, ensure_ascii style, start offsets of its literal)
        self.found = found

    @classmethod
    def build(
        cls,
        body: bytes,
        plain: list[tuple[str, str | None]],
        known: Mapping[tuple[str, str | None], list[Finding]],
    ) -> JsonStringPatch | None:
        """The patch, or None when the raw body does not show each string plainly."""
        findings_of: dict[str, list[Finding]] = {}
        for (text, _key), findings in known.items():
            if findings:
                if text in findings_of and findings_of[text] != findings:
                    return None  # one text read two ways (by field name): the codec decides
                findings_of[text] = findings
        if any(not findings and text in findings_of for (text, _key), findings in known.items()):
            # One text with a value under one key and none under another (`ssn` vs `order_id`):
            # patching every literal would rewrite the one the codec leaves alone.
            return None
        expected = dict.fromkeys(findings_of, 0)
        for text, _key in plain:
            if text in expected:
                expected[text] += 1
        items: list[tuple[str, bool, list[int]]] = []
        found: list[tuple[int, str, list[Finding]]] = []
        for text, findings in findings_of.items():
            located = _locate_literal(body, text, expected[text])
            if located is None:
                return None
            items.append((text, located[0], located[1]))
            found.append((len(found), text, findings))
        return cls(body, items, found)

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> bytes:
        """The body with each edited string's literal replaced."""
        replacements: list[tuple[int, int, bytes]] = []
        for index, (text, ascii_only, starts) in enumerate(self._items):
            if not edits.get(index):
                continue
            old = json.dumps(text, ensure_ascii=ascii_only).encode("utf-8")
            new = json.dumps(apply_edits(text, edits[index]), ensure_ascii=ascii_only)
            replacements.extend((start, start + len(old), new.encode("utf-8")) for start in starts)
        out: list[bytes] = []
        cursor = 0
        for start, end, new_bytes in sorted(replacements):
            out.append(self._body[cursor:start])
            out.append(new_bytes)
            cursor = end
        out.append(self._body[cursor:])
        return b"".join(out)


_JSON_SPACE = b" \t\r\n"


def _neighbour(body: bytes, at: int, step: int) -> int:
    """The first byte from `at` in direction `step` that is not JSON whitespace; 0 at an end
    (no copy of the body: this runs per located literal on the request path)."""
    while 0 <= at < len(body):
        if body[at] not in _JSON_SPACE:
            return body[at]
        at += step
    return 0


def _locate_literal(body: bytes, text: str, count: int) -> tuple[bool, list[int]] | None:
    """(ensure_ascii style, offsets) of `text`'s JSON literal in `body` when it occurs exactly
    `count` times in one style, each time as a value (after `:`, `,` or `[`; before `,`, `}`
    or `]`); None otherwise."""
    styles = {json.dumps(text, ensure_ascii=False): False, json.dumps(text): True}
    hits: list[tuple[bool, list[int]]] = []
    for literal, ascii_only in styles.items():
        needle = literal.encode("utf-8")
        starts: list[int] = []
        at = body.find(needle)
        while at != -1:
            starts.append(at)
            at = body.find(needle, at + 1)
        if starts:
            hits.append((ascii_only, starts))
        for start in starts:
            before = _neighbour(body, start - 1, -1)
            after = _neighbour(body, start + len(needle), 1)
            if before not in b":,[" or after not in b",}]":
                return None  # a key, or inside something else: the codec decides
    if len(hits) != 1 or len(hits[0][1]) != count:
        return None
    return hits[0]


def scan_body(
    detector: Detector,
    request: ScanRequest,
    *,
    patch_in_place: bool = False,
    seen: SeenValues | None = None,
) -> BodyScan:
    """Parse the body and find its values. Raises BodyError (4xx) or DetectionError.

    With `patch_in_place` (only where the rebuild happens in this process), a JSON body whose
    values were found by the fast path is rebuilt by a JsonStringPatch instead of the codec.
    """
    if not request.body:
        return BodyScan(None, [])
    # Fast path for the common case, a JSON webhook with no value in it: when every string
    # that could hold one is plain text and none does, the body goes on as it came.
    plain = plain_json_texts(
        request.body,
        request.content_type,
        request.content_encoding,
        request.limits,
        every_run=seen is not None,
    )
    # What the fast path found is reused below: a plain string is its codec segment.
    known: dict[tuple[str, str | None], list[Finding]] = {}
    if plain is not None:
        known = {(t, k): find_windowed(detector, t, k, seen) for t, k in plain}
        if not any(known.values()):
            return BodyScan(None, [])
        # Past the segment limit the codec refuses the body (413): let it.
        within = request.limits is None or len(plain) <= request.limits.max_segments
        if patch_in_place and within:
            patch = JsonStringPatch.build(request.body, plain, known)
            if patch is not None:
                return BodyScan(patch, patch.found)
    parsed = parse_request(request)
    found: list[tuple[int, str, list[Finding]]] = []
    for seg in parsed.segments:
        findings = known.get((seg.text, seg.field_name))
        if findings is None:
            findings = find_windowed(detector, seg.text, seg.field_name, seen)
        if findings:
            found.append((seg.index, seg.text, findings))
    runs = neighbours_of(parsed)
    if runs:
        # Values split over neighbouring fields, read joined (redaction/neighbours.py).
        have = {index for index, _, _ in found}
        split = find_split_values(detector, parsed.segments, runs, seen, have)
        for index, findings in split.items():
            found.append((index, parsed.segments[index].text, findings))
        found.sort(key=lambda item: item[0])
    return BodyScan(parsed, found, summarise_unread(detector, parsed))


def proves_clean(
    detector: Detector, request: ScanRequest, budget_chars: int, seen: SeenValues | None = None
) -> bool:
    """True when the JSON fast path proves the body holds no value, having sent at most
    `budget_chars` of text to the recognizers; False when it cannot tell within that budget.

    A large webhook is mostly text that the screen clears in C: proving it clean this way on
    the event loop costs less than handing it to a scan worker (issue 14: a 20 KB e-mail thread).
    """
    every_run = seen is not None
    plain = plain_json_texts(
        request.body,
        request.content_type,
        request.content_encoding,
        request.limits,
        every_run=every_run,
    )
    if plain is None:
        return False
    maybe = [(t, k) for t, k in plain if may_hold_value(t, every_run=every_run)]
    if sum(len(t) for t, _ in maybe) > budget_chars:
        return False
    return not any(find_windowed(detector, t, k, seen) for t, k in maybe)


def rebuild_body(
    rewriter: Rewriter,
    parsed: Any,
    found: list[tuple[int, str, list[Finding]]],
    token_of: Mapping[TokenKey, str],
    strip: frozenset[int] = frozenset(),
) -> bytes:
    """The body with each finding replaced by its token, and the unread parts numbered in
    `strip` replaced by a placeholder part."""
    edits: dict[int, list[Edit]] = {
        index: rewriter.token_edits(text, findings, token_of) for index, text, findings in found
    }
    return rebuild_stripped(parsed, edits, strip)


# --- in a worker process -----------------------------------------------------------------------

# Built once per worker process, on its first job (a worker is a fresh interpreter).
_WORKER_DETECTORS: dict[DetectionOptions, Detector] = {}
_WORKER_REWRITER: list[Rewriter] = []


def _worker_detector(options: DetectionOptions) -> Detector:
    detector = _WORKER_DETECTORS.get(options)
    if detector is None:
        detector = _WORKER_DETECTORS[options] = Detector(options)
    return detector


def warm_worker(options: DetectionOptions) -> None:
    """Build the worker's detector and rewriter before the first body needs them."""
    _worker_detector(options)
    if not _WORKER_REWRITER:
        _WORKER_REWRITER.append(Rewriter())


def scan_in_worker(
    options: DetectionOptions, request: ScanRequest
) -> tuple[
    list[tuple[int, list[Finding], list[str]]],
    tuple[frozenset[str], frozenset[str]],
    list[UnreadSummary],
]:
    """`scan_body` in a worker: (segment index, findings, each finding's span text), the
    strong values of the texts it read (for the egress verifier, back over the pool's pipe),
    and the unread parts."""
    seen = SeenValues()
    scan = scan_body(_worker_detector(options), request, seen=seen)
    found = [
        (index, findings, [text[f.start : f.end] for f in findings])
        for index, text, findings in scan.found
    ]
    return found, seen.read_digits(), scan.unread


def rebuild_in_worker(
    request: ScanRequest,
    found: list[tuple[int, list[Finding]]],
    token_of: Mapping[TokenKey, str],
    strip: frozenset[int] = frozenset(),
) -> bytes:
    """Parse the body again (same segments, same unread parts) and rebuild it with tokens."""
    if not _WORKER_REWRITER:
        _WORKER_REWRITER.append(Rewriter())
    parsed = parse_request(request)
    segments = parsed.segments
    with_text = [(index, segments[index].text, findings) for index, findings in found]
    return rebuild_body(_WORKER_REWRITER[0], parsed, with_text, token_of, strip)
