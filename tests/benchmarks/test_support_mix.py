"""The benchmark corpus generator: repeatable for a seed, and its planted values are detected."""

from __future__ import annotations

import pytest

from benchmarks.support_mix import generate_clean, generate_mix, luhn_complete
from redactor.detection import Detector, default_detector


@pytest.fixture(scope="module")
def detector() -> Detector:
    return default_detector()


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def test_support_mix_is_the_same_for_the_same_seed() -> None:
    first = generate_mix(seed=11, count=200)
    again = generate_mix(seed=11, count=200)
    other = generate_mix(seed=12, count=200)
    assert [(m.text, m.planted) for m in first] == [(m.text, m.planted) for m in again]
    assert [m.text for m in first] != [m.text for m in other]


def test_clean_corpus_is_the_same_for_the_same_seed() -> None:
    assert [m.text for m in generate_clean(5, 100)] == [m.text for m in generate_clean(5, 100)]


def test_support_mix_plants_cards_and_ssns_in_a_few_messages() -> None:
    messages = generate_mix(seed=3, count=400)
    planted = [p for m in messages for p in m.planted]
    entities = {p.entity for p in planted}
    assert entities == {"CREDIT_CARD", "US_SSN"}
    # "A few": most support messages hold no card and no SSN.
    assert len(planted) < len(messages) // 5
    assert all(p.value in m.text for m in messages for p in m.planted)


def test_detector_finds_every_planted_value(detector: Detector) -> None:
    for m in generate_mix(seed=3, count=400):
        found = {(f.entity, _digits(m.text[f.start : f.end])) for f in detector.find(m.text)}
        for p in m.planted:
            assert (p.entity, _digits(p.value)) in found, (m.shape, p.entity)


def test_clean_corpus_has_nothing_to_find(detector: Detector) -> None:
    for m in generate_clean(seed=3, count=400):
        assert detector.find(m.text) == [], m.shape


@pytest.mark.parametrize(
    ("partial", "complete"),
    [("411111111111111", "4111111111111111"), ("37828224631000", "378282246310005")],
)
def test_luhn_complete_appends_the_check_digit(partial: str, complete: str) -> None:
    assert luhn_complete(partial) == complete
