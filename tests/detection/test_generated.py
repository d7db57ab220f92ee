"""Generated test sets: every scheme in every grouping inside chat text must be found; the
long digit strings of support traffic (couriers, IBANs, phones, UUIDs, timestamps, order ids)
must not be."""

import random
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redactor.detection import CREDIT_CARD, US_SSN, Detector
from tests.factories import (
    CARD_SPECS,
    GROUPINGS,
    SEPARATORS,
    group,
    luhn_check_digit,
    make_pan,
    make_ssn,
    to_fullwidth,
)

CHAT_BEFORE = [
    "",
    "hi, ",
    "Hello team,\n\n",
    "my card is ",
    "It's ",
    "Got it, thanks.\n\n> ",
    "pls charge ",
    "Number: ",
    "tarjeta ",
    "ok here it is -> ",
    "The one I used was (",
]
CHAT_AFTER = [
    "",
    ".",
    " thanks!",
    "\nexp 12/27",
    " exp 0528",
    ", can you check?",
    ")",
    "\n-- \nSam",
]

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _digits(text: str, start: int, end: int) -> str:
    return "".join(c for c in text[start:end] if c.isdigit())


@st.composite
def chat_with_card(draw):
    scheme, prefix, length = draw(st.sampled_from(CARD_SPECS))
    rng = random.Random(draw(st.integers(0, 2**32)))
    pan = make_pan(prefix, length, rng)
    form = draw(st.sampled_from(["plain", "grouped", "mixed"]))
    if form == "plain":
        written = pan
    else:
        sizes = draw(st.sampled_from(GROUPINGS[length]))
        if form == "grouped":
            written = group(pan, sizes, draw(st.sampled_from(SEPARATORS)))
        else:
            seps = [draw(st.sampled_from(SEPARATORS)) for _ in sizes[1:]]
            written = group(pan, sizes, seps)
    if draw(st.booleans()):
        written = to_fullwidth(written)
    text = draw(st.sampled_from(CHAT_BEFORE)) + written + draw(st.sampled_from(CHAT_AFTER))
    return scheme, pan, text


@SETTINGS
@given(chat_with_card())
def test_every_scheme_in_every_grouping_is_found(detector: Detector, case) -> None:
    scheme, pan, text = case
    cards = [f for f in detector.find(text) if f.entity == CREDIT_CARD]
    assert len(cards) == 1, scheme
    # Every digit of the PAN is inside the span: no digit left in clear.
    assert _digits(text, cards[0].start, cards[0].end).translate(_FW) == pan


_FW = {0xFF10 + d: str(d) for d in range(10)}


@st.composite
def chat_with_ssn(draw):
    ssn = make_ssn(random.Random(draw(st.integers(0, 2**32))))
    sep = draw(st.sampled_from(["-", " ", "."]))
    written = f"{ssn[:3]}{sep}{ssn[3:5]}{sep}{ssn[5:]}"
    before = draw(st.sampled_from(["SSN: ", "my social security number is ", "ssn ", "", "it's "]))
    return ssn, before + written + draw(st.sampled_from(CHAT_AFTER))


@SETTINGS
@given(chat_with_ssn())
def test_valid_ssns_with_separators_are_found_alone(detector: Detector, case) -> None:
    ssn, text = case
    found = [f for f in detector.find(text) if f.entity == US_SSN]
    assert len(found) == 1
    assert _digits(text, found[0].start, found[0].end) == ssn


@SETTINGS
@given(st.integers(0, 2**32), st.sampled_from(["SSN ", "social security number: ", "my ssn is "]))
def test_bare_ssns_with_context_are_found(detector: Detector, seed: int, before: str) -> None:
    ssn = make_ssn(random.Random(seed))
    found = detector.find(before + ssn)
    assert [(f.entity, f.start) for f in found] == [(US_SSN, len(before))]


# --- hard negatives ----------------------------------------------------------------------------


def _mod10_digits(rng: random.Random, n: int) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(n - 1))
    return body + luhn_check_digit(body)


def _usps(rng: random.Random) -> str:
    # USPS IMpb: 22 digits starting 92-95, often printed in groups of four.
    digits = rng.choice(["92", "93", "94", "95"]) + _mod10_digits(rng, 20)
    return group(digits, (4, 4, 4, 4, 4, 2), " ") if rng.random() < 0.5 else digits


def _ups(rng: random.Random) -> str:
    return (
        "1Z"
        + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(6))
        + ("".join(rng.choice("0123456789") for _ in range(10)))
    )


def _fedex(rng: random.Random) -> str:
    return _mod10_digits(rng, rng.choice([20, 22, 34]))


def _iban(rng: random.Random) -> str:
    country = rng.choice(["DE", "FR", "GB", "ES", "IT", "NL", "AL", "GR"])
    bban = "".join(rng.choice("0123456789") for _ in range(rng.choice([18, 20, 22, 24])))
    raw = f"{country}{rng.randint(10, 99)}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.7 else raw


def _e164(rng: random.Random) -> str:
    cc = rng.choice(["1", "44", "49", "86", "91", "33", "81"])
    national = "".join(rng.choice("0123456789") for _ in range(15 - len(cc)))
    if rng.random() < 0.5:
        return f"+{cc}{national}"
    return f"+{cc} {national[:3]} {national[3:7]} {national[7:]}"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _timestamp(rng: random.Random) -> str:
    return (
        f"20{rng.randint(10, 39)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        f".{rng.randint(0, 999999):06d}Z"
    )


def _epoch_ms(rng: random.Random) -> str:
    return str(rng.randint(1_000_000_000_000, 1_999_999_999_999))


def _order_id(rng: random.Random) -> str:
    return rng.choice(
        [
            f"{rng.randint(100, 999)}-{rng.randint(10**6, 10**7 - 1)}-{rng.randint(10**6, 10**7 - 1)}",
            f"ORD-{rng.randint(10**11, 10**12 - 1)}",
            f"#{rng.randint(10**5, 10**6 - 1)}",
        ]
    )


NEGATIVE_MAKERS = {
    "usps": (_usps, "Tracking number {}"),
    "ups": (_ups, "UPS tracking: {}"),
    "fedex": (_fedex, "the tracking # you sent ({}) doesn't work"),
    "iban": (_iban, "IBAN {}"),
    "e164": (_e164, "call me at {}"),
    "uuid": (_uuid, "trace id {}"),
    "timestamp": (_timestamp, "at {} the payment failed"),
    "epoch_ms": (_epoch_ms, "event_time {}"),
    "order": (_order_id, "My order {} arrived damaged"),
}


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(NEGATIVE_MAKERS)), st.integers(0, 2**32))
def test_long_digit_strings_of_support_traffic_are_not_cards_or_ssns(
    detector: Detector, kind: str, seed: int
) -> None:
    make, template = NEGATIVE_MAKERS[kind]
    text = template.format(make(random.Random(seed)))
    assert detector.find(text) == [], kind


@SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_findings_are_valid_spans_on_any_text(detector: Detector, text: str) -> None:
    previous_end = 0
    for f in detector.find(text):
        assert 0 <= previous_end <= f.start < f.end <= len(text)
        assert text[f.start].isdigit()
        assert text[f.end - 1].isdigit()
        previous_end = f.end
