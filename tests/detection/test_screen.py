"""The text screen never says "nothing here" where detection finds a value, and it does say
so for ordinary support text."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redactor.detection import Detector
from redactor.detection.screen import may_hold_value
from tests.detection.messages import generate
from tests.factories import group, make_pan, make_ssn, to_fullwidth

CARD = "4111 1111 1111 1111"


@pytest.mark.parametrize(
    "text",
    [
        "Hi Dana, my parcel is late, can you check?",
        "order 12345 and 6789 shipped on 2026-11-04T10:31:05Z",
        "call me at 555-0142 after 3:30pm",
        "On Tue, Nov 24, 2026 at 10:31 PM Dana wrote:\n> Order A-4821 left on Nov 20.",
        "ticket ab12345678c and ref X99887766Y",
        "",
    ],
)
def test_ordinary_support_text_is_screened_out(text: str) -> None:
    assert may_hold_value(text) is False


@pytest.mark.parametrize(
    "text",
    [
        f"card {CARD}",
        "ssn 536-90-4399",
        "536904399",
        "cc4111111111111111exp0627",
        "4111\n> 1111\n> 1111 1111",
        "4111 1111 1111 1111 03/27",
        # Beyond what the screen reads: passed on to detection.
        "4111\u200b1111\u200b1111\u200b1111",
        to_fullwidth(CARD),
        "card:\\n4111 1111 1111 1111",
    ],
)
def test_text_that_may_hold_a_value_goes_on_to_detection(text: str) -> None:
    assert may_hold_value(text) is True


# Text made of what values and their look-alikes are made of: digits of several scripts,
# separators, invisible characters, backslashes, letters.
_ALPHABET = st.sampled_from(
    list("0123456789" * 6)
    + list(" -.\n\t/>:_,#")
    + ["\u200b", "\u00ad", "\ufeff", "\u00a0", "\u3000", "４", "٣", "\\", "u"]
    + list("cardvisssnexpABZ")
)


@settings(
    max_examples=int(os.environ.get("SCREEN_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(_ALPHABET, min_size=9, max_size=60).map("".join))
def test_detection_never_finds_a_value_in_text_the_screen_let_through(
    detector: Detector, text: str
) -> None:
    if detector.find(text):
        assert may_hold_value(text)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(["4", "51", "2221", "34", "6011", "35", "62"]))
def test_generated_cards_and_ssns_in_chat_pass_the_screen(seed: int, prefix: str) -> None:
    rng = random.Random(seed)
    length = 15 if prefix == "34" else rng.choice([16, 16, 19])
    pan = make_pan(prefix, length, rng)
    sep = rng.choice([" ", "-", ".", "  ", "\u200b", "\u00a0", "\n", "\n> "])
    sizes = (
        (4, 6, 5) if length == 15 else (4,) * (length // 4) + ((length % 4,) if length % 4 else ())
    )
    value = rng.choice([group(pan, sizes, sep), pan, make_ssn(rng)])
    assert may_hold_value(f"Hi, please use {value} for the refund. Thanks")


def test_no_generated_message_with_a_value_is_screened_out(detector: Detector) -> None:
    messages = generate(5_000, seed=20261130)
    with_value = [m for m in messages if m.expected]
    assert with_value
    missed = [m for m in with_value if not may_hold_value(m.text)]
    assert missed == []
    # And what detection finds in the rest is found only where the screen said "maybe".
    for m in messages:
        if not may_hold_value(m.text):
            assert detector.find(m.text) == []
