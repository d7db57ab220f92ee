"""Separators and digits from Unicode's properties (issue 18, item 4).

The tables in `detection/unicode_tables.py` are derived again here over every code point, and
each kind of character is shown to join the digits of a card number or SSN where people type
it, with the span still covering the original characters.
"""

from __future__ import annotations

import unicodedata

import pytest
import regex

from redactor.detection import CREDIT_CARD, US_SSN, DetectionOptions, Detector
from redactor.detection import unicode_tables as tables


def _ranges(pred) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    start = prev = None
    for cp in range(0x110000):
        if pred(cp):
            start = cp if start is None else start
            prev = cp
        elif start is not None:
            out.append((start, prev))
            start = None
    return tuple(out)


def _category(cp: int) -> str:
    return unicodedata.category(chr(cp))


def _digit_form(cp: int) -> bool:
    nfkc = unicodedata.normalize("NFKC", chr(cp))
    return _category(cp) != "Nd" and len(nfkc) == 1 and nfkc.isascii() and nfkc.isdigit()


_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")


@pytest.mark.parametrize(
    ("table", "derived"),
    [
        ("SPACE_RANGES", lambda: _ranges(lambda cp: cp > 0x7F and _category(cp) == "Zs")),
        ("DASH_RANGES", lambda: _ranges(lambda cp: cp > 0x7F and _category(cp) == "Pd")),
        ("DIGIT_FORM_RANGES", lambda: _ranges(_digit_form)),
        (
            "IGNORABLE_RANGES",
            lambda: _ranges(lambda cp: _IGNORABLE.fullmatch(chr(cp)) is not None),
        ),
        (
            "LINE_BREAK_RANGES",
            lambda: _ranges(lambda cp: cp == 0x85 or _category(cp) in ("Zl", "Zp")),
        ),
    ],
)
def test_each_table_is_what_unicode_says(table: str, derived) -> None:
    assert getattr(tables, table) == derived()


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DetectionOptions())


PAN = "4111111111111111"


def _grouped(sep: str) -> str:
    return sep.join(PAN[i : i + 4] for i in range(0, 16, 4))


@pytest.mark.parametrize(
    "sep",
    [
        "\u2002", "\u2003", "\u205f", "\u1680", "\u2013", "\u2014", "\u2e3a", "\ufe63",
        "\u30fc", "\uff70", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\r",
        "\u200b", "\u034f", "\u2060", "\ufe0f", "\u180e",
    ],
)  # fmt: skip
def test_a_card_split_by_any_unicode_space_dash_break_or_invisible_is_found(
    detector: Detector, sep: str
) -> None:
    text = f"my card is {_grouped(sep)} thanks"
    start = text.index("4111")

    [finding] = detector.find(text)

    assert finding.entity == CREDIT_CARD
    assert (finding.start, finding.end) == (start, start + len(_grouped(sep)))


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("\u00b9\u00b2\u00b3", "123"),  # superscripts
        ("\u2081\u2082\u2083", "123"),  # subscripts
        ("\u2460\u2461\u2462", "123"),  # circled
        ("1\ufe0f\u20e32\ufe0f\u20e33\ufe0f\u20e3", "123"),  # keycaps
    ],
)
def test_digit_forms_read_as_digits(detector: Detector, written: str, digits: str) -> None:
    assert digits == "123"
    text = f"ssn {written}-45-6789 please"

    [finding] = detector.find(text)

    assert finding.entity == US_SSN
    assert text[finding.start : finding.end] == f"{written}-45-6789"


def test_marks_on_letters_are_left_alone(detector: Detector) -> None:
    # An accent after a letter is part of the word; only marks after a digit are read away.
    assert detector.find("re\u0301sume\u0301 and cafe\u0301") == []
