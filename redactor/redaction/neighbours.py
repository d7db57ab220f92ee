"""Values split over neighbouring fields, read joined: a card typed into four boxes
(`["4111", "1111", "1111", "1111"]`, form fields `cc1`..`cc4`), two halves
(`{"cc_first8": ..., "cc_last8": ...}`), an SSN as 3-2-4.

The codecs name runs of neighbouring pieces (strings or JSON integers of 2-17 digits, one after the other in an
array, an object or a form: `bodies/segments.py`). Each run is scanned as its pieces joined by
a space, under the first piece's field name, and a finding must meet the evidence an unsplit
value meets (Luhn and a known IIN for a card, the SSA ranges and a 3-2-4 grouping for an SSN)
plus one more: a piece's field name (or the array's key) names its kind (`cc1`, `card`,
`cc_first8`, `pan`; `ssn1`, `social_security_area`). Short digit strings side by side are
common (years, codes, quantities): four random 4-digit strings make a Luhn-valid number with
a known prefix about one time in ten, and two adjacent dates (`"20240115", "20240220"`) have a
Mastercard prefix; the name keeps them what they are.

Every piece of a finding is rewritten: the first becomes the token of the whole value, the
others become empty strings (`["tok_...", "", "", ""]`, `cc1=tok_...&cc2=&cc3=&cc4=`), so the
document stays valid and a permitted agent resolves the token to all the digits.
"""

from __future__ import annotations

from collections.abc import Sequence, Set

from redactor.bodies.segments import Segment
from redactor.detection import CREDIT_CARD, Detector, Finding
from redactor.detection.context import CARD_LABEL, SSN_LABEL, names_kind
from redactor.egress import SeenValues

__all__ = ["find_split_values"]

# A value has at most 19 digits, so it spans at most 9 pieces of 2+: a long run is read in
# chunks of CHUNK pieces overlapping by 9, each value owned by the chunk where it starts.
CHUNK = 40
_REACH = 9


def _findings_of_run(
    detector: Detector,
    pieces: Sequence[Segment],
    owned: int,
    seen: SeenValues | None,
    found_alone: Set[int],
) -> list[tuple[int, Finding]]:
    """(segment index, piece finding) for each value the joined run holds that starts in
    its first `owned` pieces."""
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    at = 0
    for k, piece in enumerate(pieces):
        starts[at] = k
        at += len(piece.text)
        ends[at] = k
        at += 1
    joined = " ".join(p.text for p in pieces)
    out: list[tuple[int, Finding]] = []
    found = detector.find(
        joined,
        field_name=pieces[0].field_name,
        considered=seen.considered if seen is not None else None,
        runs=seen.runs if seen is not None else None,
    )
    for f in found:
        first, last = starts.get(f.start), ends.get(f.end)
        if first is None or last is None or last <= first or first >= owned:
            continue  # inside one piece (never: pieces are shorter than any value)
        covered = pieces[first : last + 1]
        kind = CARD_LABEL if f.entity == CREDIT_CARD else SSN_LABEL
        if not any(names_kind(p.field_name) == kind for p in covered):
            continue
        if any(p.index in found_alone for p in covered):
            continue  # a piece of 9+ digits holds a value of its own: that one is rewritten
        digits = "".join(p.text for p in covered)
        out.extend(
            (p.index, Finding(f.entity, 0, len(p.text), f.score, digits, k == 0))
            for k, p in enumerate(covered)
        )
    return out


def find_split_values(
    detector: Detector,
    segments: Sequence[Segment],
    runs: Sequence[tuple[int, ...]],
    seen: SeenValues | None = None,
    found_alone: Set[int] = frozenset(),
) -> dict[int, list[Finding]]:
    """Segment index -> findings for the pieces of split values in the neighbour `runs`.

    `seen` receives the joined digits the detector weighed (the egress verifier's rule).
    `found_alone`: segments with findings of their own; a split value over one is left out.
    Raises DetectionError if detection fails.
    """
    out: dict[int, list[Finding]] = {}
    for run in runs:
        start = 0
        while start < len(run) - 1:
            chunk = [segments[i] for i in run[start : start + CHUNK]]
            last_chunk = start + CHUNK >= len(run)
            owned = len(chunk) if last_chunk else CHUNK - _REACH
            for index, finding in _findings_of_run(detector, chunk, owned, seen, found_alone):
                out.setdefault(index, []).append(finding)
            if last_chunk:
                break
            start += owned
    return out
