"""The text screen is sharp (phones, dates with times, order ids are "clean") and still never
says "clean" where detection would weigh a candidate, let alone find a value.

Texts are drawn from what values and their look-alikes are made of: digit groups of every
length, every separator detection joins groups with and many it does not, labels (card, SSN,
order, phone...), quotes, line breaks with `>` markers, Luhn-valid PANs of known IINs and
valid SSNs grouped every way, letters of other scripts, invisible characters. Whenever the
screen says "clean", the detector finds nothing, weighs no candidate (a candidate is what the
screen must see: `run_may_give_candidate`), and with `every_run` reads no run at all.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from redactor.detection import Detector
from redactor.detection.iin import IIN_RANGES
from redactor.detection.recognizers import find_all_candidates
from redactor.detection.screen import as_plain, may_hold_value
from redactor.detection.textview import view_of
from tests.factories import group, luhn_break_last, make_pan, make_ssn

EXAMPLES = int(os.environ.get("SCREEN_EXAMPLES", "1500"))

# Separators detection joins digit groups with (digit_runs.py), and some it reads as line
# breaks (VT, FF, a lone CR).
KNOWN_SEPARATORS = [
    " ", "  ", "   ", "-", " - ", "- ", " -", "  -  ", ".", ". ", " .", "\n", "\n> ",
    "\n>> ", " \n > ", "\r\n", "\r\n> ", "\t", " \t", "\x0b", "\x0c", "\r", "\u00a0",
    "\u2013", "\u3000",
]  # fmt: skip
# ... and characters it does not join them with (some of them break a stretch only here).
OTHER_SEPARATORS = [
    "    ", ":", "/", ",", "(", ")", ") ", "_", "#", "--", "..", "+", "$", "'", '"', "x",
    "—", "é", "£", "’", "€", "\u200b", "\u00ad", "\\n", "\\u0020", "\\", "  \n\n", "\n\n",
]  # fmt: skip
LABELS = [
    "card", "card number: ", "cc", "cc#", "visa ", "amex", "Mastercard", "SSN", "ssn: ",
    "social security number ", "SS#", "order", "order #", "Order No. ", "phone ", "tel: ",
    "call me at ", "tracking ", "acct ", "account number ", "invoice ", "exp ", "cvv ",
    "ref ", "id ", "no.", "Nr.", "ORD-", "INV.", "pan=", "https://x.test/tickets/", "/cards/",
    "Hi, ", " thanks", "please use ", " on ", " at ", "Dec ", "wrote:\n> ", "\n> > ",
]  # fmt: skip
PREFIXES = sorted({r.low for r in IIN_RANGES} | {r.high for r in IIN_RANGES})
SIZES = [
    (4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 3), (4, 4, 4), (6, 10),
    (8, 8), (2, 2, 2, 2, 2, 2, 2, 2), (1,) * 16, (4, 12), (3, 3, 4, 3, 3), (5, 5, 6),
]  # fmt: skip


@st.composite
def digit_groups(draw: st.DrawFn) -> str:
    return draw(st.text(alphabet="0123456789", min_size=1, max_size=20))


@st.composite
def values(draw: st.DrawFn) -> str:
    """A PAN of a known IIN (Luhn-valid, or one digit off) or a valid SSN, grouped any way."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    if draw(st.booleans()):
        prefix = draw(st.sampled_from(PREFIXES))
        length = draw(st.integers(max(12, len(prefix) + 1), 19))
        digits = make_pan(prefix, length, rng)
        if draw(st.integers(0, 4)) == 0:
            digits = luhn_break_last(digits)
        sizes = draw(st.sampled_from([s for s in SIZES if sum(s) == length] or [(length,)]))
    else:
        digits = make_ssn(rng)
        sizes = draw(st.sampled_from([(9,), (3, 2, 4), (3, 6), (5, 4), (3, 3, 3)]))
    if draw(st.booleans()):
        seps: str | list[str] = draw(st.sampled_from(KNOWN_SEPARATORS))
    else:
        seps = draw(
            st.lists(
                st.sampled_from(KNOWN_SEPARATORS + OTHER_SEPARATORS),
                min_size=len(sizes) - 1,
                max_size=len(sizes) - 1,
            )
        )
    return group(digits, sizes, seps)


LOOK_ALIKES = [
    "(555) 123-4567", "555-123-4567", "+1 555 123 4567", "1-800-555-0199", "555.123.4567",
    "2025-04-28 10:32:05", "Dec 20, 2025 at 8:58", "28.04.2025 10:32", "2025-12345",
    "9400 1068 5898 0673 4846 97", "1Z999AA10123456784", "360123456789", "12/27", "$1,234.56",
]  # fmt: skip

parts = st.one_of(
    digit_groups(),
    digit_groups(),
    values(),
    st.sampled_from(KNOWN_SEPARATORS),
    st.sampled_from(OTHER_SEPARATORS),
    st.sampled_from(LABELS),
    st.sampled_from(LOOK_ALIKES),
)
texts = st.lists(parts, min_size=1, max_size=14).map("".join)
FIELDS = [None, "body", "card_number", "ssn", "order_id", "phone"]


def _candidates(text: str, runs: set[str] | None = None) -> list[object]:
    view = view_of(text)
    return list(find_all_candidates(view.text, ascii_digits=view.ascii_digits, runs=runs))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.sampled_from(FIELDS))
@example("card 4111 1111 1111 1111", None)
@example("ssn 536-90-4399", "ssn")
@example("4111111111111112 is my card", None)  # Luhn fails: a weak candidate all the same
@example("call 555-123-4567 or 4111\n> 1111\n> 1111\n> 1111", None)
@example("Total: £4111 1111 1111 1111", None)
def test_detection_weighs_no_candidate_in_text_the_screen_clears(
    detector: Detector, text: str, field: str | None
) -> None:
    if may_hold_value(text):
        return
    assert _candidates(text) == []
    assert detector.find(text, field_name=field) == []


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_with_every_run_the_screen_clears_only_text_without_a_run(
    detector: Detector, text: str
) -> None:
    # The egress verifier asks for every run the detector reads: a text with one reaches it.
    if may_hold_value(text, every_run=True):
        return
    runs: set[str] = set()
    assert _candidates(text, runs) == []
    assert runs == set()
    considered: set[str] = set()
    assert detector.find(text, considered=considered, runs=runs) == []
    assert runs == set()
    assert considered == set()


@pytest.mark.parametrize(
    "text",
    [
        "Call me at (555) 123-4567 or 555-123-4567, +1 555 123 4567 after 5:15 pm.",
        "On 2025-04-28 10:32:05 Dana wrote:\n> Sent Dec 20, 2025 at 8:58",
        "Order 2025-12345 and RMA915718 shipped; total $1,234.56 on 28.04.2025.",
        "Tracking 9400 1000 0000 0000 0000 00, zendesk id 360123456789.",
        "Prix: 1 234,56 € | réf. 2025-12345 | tél. 555-123-4567",
    ],
)
def test_support_text_with_phones_dates_and_order_numbers_is_clean(text: str) -> None:
    assert may_hold_value(text) is False


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1111",
        "ssn 536-90-4399",
        "536904399",
        "4111\n> 1111\n> 1111 1111",
        "cc4111111111111111exp0627",
        "4111111111111112",  # Luhn fails: may still be a typo'd card next to a card word
        "€ 4111 1111 1111 1111",
        # Beyond what the screen reads exactly: passed on to detection.
        "4111\u200b1111\u200b1111\u200b1111",
        "card:\\n4111 1111 1111 1111",
    ],
)
def test_text_that_may_hold_a_value_still_goes_on(text: str) -> None:
    assert may_hold_value(text) is True


def test_with_every_run_any_long_run_goes_on() -> None:
    assert may_hold_value("call 555-123-4567", every_run=True) is True
    assert may_hold_value("call (555) 123-4567", every_run=True) is False


def test_letters_of_other_scripts_read_as_letters_and_look_alikes_of_digits_do_not() -> None:
    assert as_plain("£12 é’") == "#12 ##"
    for char in ("\u00a0", "\u2013", "\u200b", "\u0664", "\uff14", "\u00b2", "\u0301"):
        assert as_plain(f"12{char}34") is None, repr(char)


def test_a_text_scanned_in_windows_goes_on_with_any_long_run() -> None:
    from redactor.redaction.scanning import WINDOW_CHARS

    # A window's edge may cut a long run into a part that is a candidate on its own: past
    # the window, the screen does not ask for parts.
    phone = " call 555-123-4567 "
    assert may_hold_value(phone) is False
    assert may_hold_value(phone + "a" * WINDOW_CHARS) is True
    assert may_hold_value(phone + "a" * (WINDOW_CHARS - len(phone))) is False
