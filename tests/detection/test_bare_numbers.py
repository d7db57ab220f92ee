"""The shortcut for bare numbers (ids, JSON integers) never disagrees with the detector."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from redactor.detection import default_detector
from redactor.detection.detector import bare_number_may_hold_value
from redactor.detection.iin import IIN_RANGES, scheme_for
from redactor.detection.recognizers import find_all_candidates
from tests.factories import make_pan

FIELDS = [None, "id", "author_id", "card_number", "pan", "ssn", "order_id", "tracking_number"]
PREFIXES = sorted({r.low for r in IIN_RANGES} | {r.high for r in IIN_RANGES} | {"36", "0", "9"})


@st.composite
def bare_numbers(draw: st.DrawFn) -> str:
    """Digit strings of 1-24 digits: random, and Luhn-valid after an IIN range's bound (so
    every length, scheme and check digit outcome is drawn often)."""
    length = draw(st.integers(1, 24))
    rng = random.Random(draw(st.integers(0, 2**32)))
    prefix = draw(st.sampled_from(PREFIXES))[: max(0, length - 1)]
    if draw(st.booleans()) and length >= 2:
        return make_pan(prefix, length, rng)
    return (prefix + "".join(rng.choice("0123456789") for _ in range(length)))[:length]


@settings(max_examples=3000, deadline=None)
@given(bare_numbers(), st.sampled_from(FIELDS))
def test_a_bare_number_the_shortcut_clears_gives_no_candidate_and_no_finding(
    digits: str, field: str | None
) -> None:
    if bare_number_may_hold_value(digits):
        return
    assert find_all_candidates(digits) == []
    detector = default_detector()
    assert detector.find(digits, field_name=field) == []
    # The egress verifier's reading (runs and candidates recorded) takes the long way.
    runs: set[str] = set()
    assert detector.find(digits, field_name=field, runs=runs) == []
    assert runs == ({digits} if len(digits) >= 9 else set())


def test_the_shortcut_leaves_cards_and_ssns_to_the_detector() -> None:
    rng = random.Random(24)
    detector = default_detector()
    for prefix, length in (("4", 16), ("50", 12), ("62", 19), ("37", 15), ("4", 13)):
        pan = make_pan(prefix, length, rng)
        assert bare_number_may_hold_value(pan)
        assert [f.entity for f in detector.find(pan, field_name="card")] == ["CREDIT_CARD"]
    assert bare_number_may_hold_value("536904399")
    assert [f.entity for f in detector.find("536904399", field_name="ssn")] == ["US_SSN"]
    # Zendesk's ids: 12 digits from 36, not a length Diners issues.
    assert not bare_number_may_hold_value(make_pan("36", 12, rng))


@settings(max_examples=2000, deadline=None)
@given(bare_numbers())
def test_the_cached_scheme_lookup_is_the_table_s_first_match(digits: str) -> None:
    expected = next(
        (
            r.scheme
            for width in sorted({len(r.low) for r in IIN_RANGES})
            for r in IIN_RANGES
            if len(r.low) == width
            and len(digits) in r.lengths
            and r.low <= digits[:width] <= r.high
        ),
        None,
    )
    assert scheme_for(digits) == expected
