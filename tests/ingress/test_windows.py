"""Long segments are scanned in overlapping windows: no value is lost or split at an edge."""

from __future__ import annotations

import pytest

from redactor.detection import Detector
from redactor.ingress.pipeline import WINDOW_CHARS, WINDOW_OVERLAP, find_windowed

CARD = "4111 1111 1111 1111"
STEP = WINDOW_CHARS - WINDOW_OVERLAP


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def _text_with_cards_at(positions: list[int], length: int) -> str:
    filler = list(("lorem ipsum dolor sit amet " * (length // 27 + 1))[:length])
    for pos in positions:
        # Spaces around it: a number glued to a word is part of that word, not a card.
        filler[pos - 1 : pos + len(CARD) + 1] = f" {CARD} "
    return "".join(filler)


@pytest.mark.parametrize(
    "offset", [-len(CARD), -10, -1, 0, 1, WINDOW_OVERLAP // 2 - 5, WINDOW_OVERLAP - 3]
)
def test_a_card_across_any_window_edge_is_found_once(detector: Detector, offset: int) -> None:
    # Cards straddling the first window's end, the second window's start and its core edge.
    positions = [WINDOW_CHARS + offset, STEP + offset + 40_000, 2 * STEP + offset]
    text = _text_with_cards_at(positions, 3 * WINDOW_CHARS)
    findings = find_windowed(detector, text, None)
    assert [text[f.start : f.end] for f in findings] == [CARD] * 3
    assert sorted(f.start for f in findings) == sorted(positions)


def test_windowed_and_whole_text_scans_agree_on_a_long_text(detector: Detector) -> None:
    positions = list(range(1000, 3 * WINDOW_CHARS - 100, 9_973))
    text = _text_with_cards_at(positions, 3 * WINDOW_CHARS)
    whole = [(f.start, f.end) for f in detector.find(text)]
    assert [(f.start, f.end) for f in find_windowed(detector, text, None)] == whole
