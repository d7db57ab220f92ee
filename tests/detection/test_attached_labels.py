"""A label rules a number out only when it is attached to it, or when no card (SSN) word in the
clause outweighs it: `the customer read the card number over the phone: 4111...` is a card,
`Phone: 536904399` is not an SSN (issue 18, item 12). Generated values, not the dev strings."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redactor.detection import CREDIT_CARD, US_SSN, Detector
from tests.factories import CARD_SPECS, group, make_pan, make_ssn

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COMMON = [spec for spec in CARD_SPECS if spec[2] in (15, 16)]

# A card word earlier in the clause, then a phone word naming how the number was given.
CARD_OVER_THE_PHONE = (
    "the customer read the card number over the phone: {}",
    "Customer gave his credit card by phone - {}",
    "she confirmed the visa on the phone, {}",
    "el cliente dictó la tarjeta por teléfono: {}",
    "le client a donné sa carte par téléphone : {}",
    "Kunde hat die Kreditkarte am Telefon durchgegeben: {}",
)
SSN_OVER_THE_PHONE = (
    "caller read her SSN over the phone: {}",
    "social security number given by phone: {}",
)
# Labels attached to the number: they still rule it out.
ATTACHED_OTHER = (
    "Phone: {}",
    "phone number is {}",
    "Tel. {}",
    "fax # {}",
    "my card is fine, call my mobile: {}",
)


def _digits(text: str, start: int, end: int) -> str:
    return "".join(c for c in text[start:end] if c.isdigit())


@st.composite
def plain_or_odd_pan(draw):
    _scheme, prefix, length = draw(st.sampled_from(COMMON))
    pan = make_pan(prefix, length, random.Random(draw(st.integers(0, 2**32))))
    # Plain, or grouped the way no scheme prints (a label in front rules such a number out).
    return pan if draw(st.booleans()) else group(pan, (3, 3, 4, length - 10), " ")


@SETTINGS
@given(template=st.sampled_from(CARD_OVER_THE_PHONE), written=plain_or_odd_pan())
def test_card_word_outweighs_a_phone_word_naming_the_channel(
    detector: Detector, template: str, written: str
) -> None:
    text = template.format(written)
    found = detector.find(text)
    assert [f.entity for f in found] == [CREDIT_CARD]
    assert _digits(text, found[0].start, found[0].end) == written.replace(" ", "")


@SETTINGS
@given(template=st.sampled_from(SSN_OVER_THE_PHONE), seed=st.integers(0, 2**32))
def test_ssn_word_outweighs_a_phone_word_naming_the_channel(
    detector: Detector, template: str, seed: int
) -> None:
    ssn = make_ssn(random.Random(seed))
    found = detector.find(template.format(ssn))
    assert [(f.entity, f.end - f.start) for f in found] == [(US_SSN, 9)]


@SETTINGS
@given(template=st.sampled_from(ATTACHED_OTHER), seed=st.integers(0, 2**32))
def test_an_attached_label_still_rules_out_a_bare_ssn(
    detector: Detector, template: str, seed: int
) -> None:
    assert detector.find(template.format(make_ssn(random.Random(seed)))) == []


@SETTINGS
@given(written=plain_or_odd_pan())
def test_an_unattached_label_without_a_card_word_still_rules_out_an_odd_number(
    detector: Detector, written: str
) -> None:
    if " " not in written:
        return  # a plain Luhn-and-IIN-valid number needs no card word: not this rule
    assert detector.find(f"I read it out over the phone: {written}") == []


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("the customer read the card number over the phone: 4111111111111111", "card.4"),
        # Issue 18, item 11: no phone number has 16 digits; a 15-digit one may be a phone's.
        ("I read it over the phone: 4111111111111111", "card.4"),
        ("I read it over the phone: 378282246310005", "card.2"),
        ("card on file, order ending in 4111111111111111", "card.4"),
        ("tracking number: 4111111111111111 for the card", "card.4"),
        ("IMEI: 4111111111111111", "card.2"),
        ("IBAN 4111111111111111", "card.4"),
    ],
)
def test_explain_names_the_row_that_decided(detector: Detector, text: str, rule: str) -> None:
    (run,) = detector.explain(text)
    assert run.candidates[0].rule.startswith(rule)


# Generic labels: identifiers with no structure an all-digit 15-16 digit number could not fit.
GENERIC_LABELS = (
    "Order #{}",
    "order number {}",
    "Ticket {}",
    "invoice: {}",
    "Reference {}",
    "transaction id {}",
    "ID {}",
    "Tracking: {}",
    "customer number {}",
    "Bestellnummer {}",
    "pedido {}",
    "注文番号 {}",
)
# Structured labels whose identifier a 15-16 digit number fits: they still keep it.
FITTING_LABELS = ("IMEI: {}", "imei {}", "MEID {}")


@SETTINGS
@given(
    template=st.sampled_from(GENERIC_LABELS),
    spec=st.sampled_from(COMMON),
    seed=st.integers(0, 2**32),
)
def test_a_generic_label_never_keeps_a_luhn_and_iin_valid_15_or_16_digit_number(
    detector: Detector, template: str, spec: tuple[str, str, int], seed: int
) -> None:
    # Issue 18, item 11: "order 4111..." was kept, so a card pasted after an order number's
    # label reached the helpdesk in clear.
    _scheme, prefix, length = spec
    pan = make_pan(prefix, length, random.Random(seed))
    text = template.format(pan)
    found = detector.find(text)
    assert [f.entity for f in found] == [CREDIT_CARD]
    assert _digits(text, found[0].start, found[0].end) == pan


@SETTINGS
@given(
    template=st.sampled_from(FITTING_LABELS),
    spec=st.sampled_from(COMMON),
    seed=st.integers(0, 2**32),
)
def test_a_label_whose_identifier_the_number_fits_still_keeps_it(
    detector: Detector, template: str, spec: tuple[str, str, int], seed: int
) -> None:
    _scheme, prefix, length = spec
    assert detector.find(template.format(make_pan(prefix, length, random.Random(seed)))) == []


@SETTINGS
@given(
    template=st.sampled_from(("Phone: {}", "call my mobile {}", "fax {}")),
    spec=st.sampled_from(COMMON),
    seed=st.integers(0, 2**32),
)
def test_a_phone_label_keeps_15_digits_but_not_16(
    detector: Detector, template: str, spec: tuple[str, str, int], seed: int
) -> None:
    # E.164 numbers have at most 15 digits.
    _scheme, prefix, length = spec
    found = detector.find(template.format(make_pan(prefix, length, random.Random(seed))))
    assert [f.entity for f in found] == ([] if length == 15 else [CREDIT_CARD])
