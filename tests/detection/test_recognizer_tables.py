"""Recognizer tables: text, then the exact substrings that must be found (and nothing else)."""

import pytest

from redactor.detection import CREDIT_CARD, US_SSN, DetectionOptions, Detector


def found(detector: Detector, text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in detector.find(text)]


CARD = CREDIT_CARD
SSN = US_SSN

POSITIVES = [
    # groupings and separators
    ("card 4111 1111 1111 1111 please", [(CARD, "4111 1111 1111 1111")]),
    ("4111-1111-1111-1111", [(CARD, "4111-1111-1111-1111")]),
    ("4111.1111.1111.1111", [(CARD, "4111.1111.1111.1111")]),
    ("pay with 5555  5555  5555  4444 now", [(CARD, "5555  5555  5555  4444")]),
    ("amex 3714 496353 98431", [(CARD, "3714 496353 98431")]),
    ("diners 3056 930902 5904", [(CARD, "3056 930902 5904")]),
    ("4012.0000.0001.2011.004", [(CARD, "4012.0000.0001.2011.004")]),
    ("mixed 6304 0000-0000 0000 ok", [(CARD, "6304 0000-0000 0000")]),
    ("Card: 4000 0038\n0000 0446\nExpiry: 10/27", [(CARD, "4000 0038\n0000 0446")]),
    ("> My card is 4111 1111\n> 1111 1111 thanks", [(CARD, "4111 1111\n> 1111 1111")]),
    ("Mastercard 2-series 2223 0031 2200 3222", [(CARD, "2223 0031 2200 3222")]),
    ("no context at all: 4917300800000000", [(CARD, "4917300800000000")]),
    (
        "full width ４１１１ １１１１ １１１１ １１１１ ok",
        [(CARD, "４１１１ １１１１ １１１１ １１１１")],
    ),
    ("with expiry 4111 1111 1111 1111 12/27", [(CARD, "4111 1111 1111 1111")]),
    ("cc#4000 0000 0000 0036 exp0528", [(CARD, "4000 0000 0000 0036")]),
    ("Order 10877. 4111 1111 1111 1111 was charged", [(CARD, "4111 1111 1111 1111")]),
    ("in a url /pay?card=4111111111111111&x=1", [(CARD, "4111111111111111")]),
    (
        "two: 4111111111111111 and 5500000000000004",
        [(CARD, "4111111111111111"), (CARD, "5500000000000004")],
    ),
    (
        "list:\n4111111111111111\n5500000000000004",
        [(CARD, "4111111111111111"), (CARD, "5500000000000004")],
    ),
    ("credit card account 4111 1111 1111 1111", [(CARD, "4111 1111 1111 1111")]),
    # A label never drops a well-formed 15/16-digit PAN (fail closed); it does drop the rest.
    ("Tracking: 4111 1111 1111 1111", [(CARD, "4111 1111 1111 1111")]),
    ("Account 4111111111111111", [(CARD, "4111111111111111")]),
    # SSNs
    ("SSN: 536-90-4399", [(SSN, "536-90-4399")]),
    ("ssn 536 90 4399", [(SSN, "536 90 4399")]),
    ("social 536.90.4399", [(SSN, "536.90.4399")]),
    ("my ssn is 536904399", [(SSN, "536904399")]),
    ("here it is 536-90-4399 ok", [(SSN, "536-90-4399")]),
    (
        "SSN 536-90-4399 and card 4111111111111111",
        [(SSN, "536-90-4399"), (CARD, "4111111111111111")],
    ),
    (
        "ssn/card: 536-90-4399 4111 1111 1111 1111",
        [(SSN, "536-90-4399"), (CARD, "4111 1111 1111 1111")],
    ),
    ('{"ssn":"111-22-3333"}', [(SSN, "111-22-3333")]),
    # issue 10: expiry tails, glued words, any consistent grouping, unlisted IINs,
    # invisible characters, literal escapes, card-labelled or grouped URL segments
    ("card 4111 1111 1111 1111 03-2027", [(CARD, "4111 1111 1111 1111")]),
    ("card 6011 4520 0281 5766 3-27", [(CARD, "6011 4520 0281 5766")]),
    ("cc4111111111111111exp06/27", [(CARD, "4111111111111111")]),
    ("CREDIT CARD4111111111111111", [(CARD, "4111111111111111")]),
    ("card no.4111111111111111", [(CARD, "4111111111111111")]),
    ("pay with cc-4111111111111111", [(CARD, "4111111111111111")]),
    ("41 11 11 11 11 11 11 11", [(CARD, "41 11 11 11 11 11 11 11")]),
    ("37 144 9635398 431", [(CARD, "37 144 9635398 431")]),
    ("store card 7000 0000 0000 0005", [(CARD, "7000 0000 0000 0005")]),
    ("4111\u200b1111\u200b1111\u200b1111", [(CARD, "4111\u200b1111\u200b1111\u200b1111")]),
    ("card 41\u00ad11 1111 1111 1111\ufeff", [(CARD, "41\u00ad11 1111 1111 1111")]),
    ("card:\\n4111 1111 1111 1111", [(CARD, "4111 1111 1111 1111")]),
    ("card\\t5555555555554444", [(CARD, "5555555555554444")]),
    ("\\u0435 4111 1111 1111 1111", [(CARD, "4111 1111 1111 1111")]),
    ("4111\\n1111\\n1111\\n1111", [(CARD, "4111\\n1111\\n1111\\n1111")]),
    ("POST /v1/cards/4111111111111111/charge", [(CARD, "4111111111111111")]),
    ("https://x.io/lookup/4111 1111 1111 1111/", [(CARD, "4111 1111 1111 1111")]),
]

NEGATIVES = [
    # a window inside a longer run or identifier
    "Tracking 7112 3456 7891 2345 6787 is stuck",
    "IBAN: AL47 2121 1009 0000 0002 3569 8741",
    "IBAN GR16 0110 1250 0000 0001 2300 695.",
    "DE89370400440532013000",
    "trace 550e8400-e29b-41d4-a716-446655440000",
    "Tracking number 1Z410E7W0392751591",
    "order 4111111111111111111111 (22 digits)",
    "phone +86 135 3727 4136",
    "Slack ts 1355517523.000005",
    "Amazon order 483-3488972-0896720",
    # masked forms
    "card **** **** **** 4242",
    "card 424242******4242",
    # Luhn or IIN fails, with no card word; sample numbers
    "number 4111 1111 1111 1112",
    "ref 4111 1111 1111 1112",
    "card 1234 5678 9012 3456",
    "card 0000 0000 0000 0000",
    "My card 5000-0000-0000-0612 is not accepted on your site, why?",
    "invalid card 4111 1111 1111 1112",
    # labelled as something else
    "Tracking: 4111 1111 1111 1112",
    "Order 4012888818888 shipped",  # a 13-digit Visa shape, labelled as an order
    "routing number 121042882",
    "passport: 191280342",
    "USt-IdNr DE 123456789 ist gesetzt.",
    # SSN rules
    "SSN 000-12-3456",
    "SSN 666-12-3456",
    "SSN 900-12-3456",
    "SSN 123-00-4567",
    "SSN 123-45-0000",
    "SSN 123-45 6789",
    "SSN 123-45-678",
    "SSN 123-45-67890",
    "SSN 123-456-7890",
    "zip 94107-1234",
    "call 555-123-4567",
    "ISBN 978-3-16-148410-0",
    "FedEx says 7 9 0 5 3 5 3 1 2 3 1 7 is not found",
    "short 4111 1111 111",
    "date 2024-01-31 12:30:45",
    # issue 10: URL path ids, other identifiers' 9 digits, an SSN inside a longer number
    "https://acme.zendesk.com/agent/tickets/4111111111111111",
    "blah http://support.example.com/tickets/4111111111111111.json",
    "see acme.zendesk.com/agent/tickets/536904399 for details",
    '<a href=\\"/knowledge/articles/4402126792468/en-us\\">Edit</a>',
    "see /hc/en-us/articles/4408845965210-How-to-pay",
    "https://acme.my.salesforce.com/knowledge/articles/536904399/en-us",
    "CUSIP 037833100",
    "llámame al 612345678",
    "rappelez-moi au 536904399 svp",
    "Tel. 536904399",
    "注文番号 536904399",
    "Reference 064230 635073959 6909.",
    "IMEI: 352099001761481",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_detector_finds_exactly_these_values(detector: Detector, text: str, expected) -> None:
    assert found(detector, text) == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_detector_leaves_near_misses_alone(detector: Detector, text: str) -> None:
    assert found(detector, text) == []


def test_spans_point_into_the_original_text_with_full_width_digits(detector: Detector) -> None:
    text = "カード番号は４１１１－１１１１－１１１１－１１１１です"
    [finding] = detector.find(text)
    assert text[finding.start : finding.end] == "４１１１－１１１１－１１１１－１１１１"


def test_card_word_raises_the_score_but_its_absence_keeps_the_card(detector: Detector) -> None:
    [bare] = detector.find("here: 4111111111111111")
    [labelled] = detector.find("my visa card 4111111111111111")
    assert bare.score >= 0.8
    assert labelled.score > bare.score


def test_dummy_ssns_are_found_by_default_and_ignored_by_policy(detector: Detector) -> None:
    text = "SSN 078-05-1120 or 123-45-6789 or 536-90-4399"
    assert [v for _, v in found(detector, text)] == ["078-05-1120", "123-45-6789", "536-90-4399"]
    strict = Detector(DetectionOptions(ignore_dummy_ssns=True))
    assert [v for _, v in found(strict, text)] == ["536-90-4399"]


def test_bare_nine_digits_need_context_when_policy_says_so(detector: Detector) -> None:
    text = "here's the number you asked for: 536904399."
    assert found(detector, text) == [(SSN, "536904399")]
    strict = Detector(DetectionOptions(bare_ssn_needs_context=True))
    assert found(strict, text) == []
    assert found(strict, "my SSN is 536904399") == [(SSN, "536904399")]


def test_json_key_acts_as_a_label(detector: Detector) -> None:
    assert detector.find("536904399", field_name="order_id") == []
    assert [f.entity for f in detector.find("536904399", field_name="ssn")] == [SSN]


def test_empty_and_digitless_texts_have_no_findings(detector: Detector) -> None:
    assert detector.find("") == []
    assert detector.find("Hello, my order arrived damaged. Price was $49.99 on 12/03.") == []


def test_typod_card_numbers_after_a_card_word_are_reported_unless_policy_turns_it_off(
    detector: Detector,
) -> None:
    typo = "My credit card 4892 7634 1023 8756 has been lost"
    assert found(detector, typo) == [(CARD, "4892 7634 1023 8756")]
    assert found(detector, "mi tarjeta 4892763410238756") == [(CARD, "4892763410238756")]
    # Without a card word in the clause, or labelled as something else, it stays a number.
    assert found(detector, "Reference 4892 7634 1023 8756 attached") == []
    assert found(detector, "my card was fine. Tracking: 4892 7634 1023 8756") == []
    # Only card shapes: an odd grouping is not a typo'd card.
    assert found(detector, "my card 48 927 6341 023 8756") == []
    off = Detector(DetectionOptions(luhn_invalid_with_card_word=False))
    assert found(off, typo) == []
    # Luhn-valid cards are unaffected.
    assert found(off, "card 4111 1111 1111 1111") == [(CARD, "4111 1111 1111 1111")]


def test_format_character_table_is_unicode_category_cf() -> None:
    import sys
    import unicodedata

    from redactor.detection.textview import FORMAT_CHAR_RANGES

    table = {c for lo, hi in FORMAT_CHAR_RANGES for c in range(lo, hi + 1)}
    cf = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}
    assert table == cf


# Every row of the evidence table (evidence.py, README), reached by a text: the rule that
# decides and the decision, as `redactor detect --explain` reports them.
EVIDENCE_ROWS = [
    ("see https://acme.zendesk.com/agent/tickets/4111111111111111", "card.1", "keep"),
    ("IMEI: 378282246310005", "card.2", "keep"),
    ("call me at 60 12 34 56 78 90 12", "card.3", "keep"),
    ("here: 4111 1111 1111 1111", "card.4", "redact"),
    ("Tracking: 4111 1111 1111 1111", "card.4", "redact"),
    ("store card 7000000000000005", "card.5", "redact"),
    ("7000 0000 0000 0005", "card.5", "redact"),
    ("my credit card 4892 7634 1023 8756 was lost", "card.6", "redact"),
    ("I paid with 4111-1111-1111-1105 yesterday", "card.6", "redact"),
    ("invalid card 4111 1111 1111 1112", "card.7", "keep"),
    ("reference 7000000000000005", "card.2", "keep"),
    ("ref 4892 7634 1023 8756", "card.7", "keep"),
    ("https://acme.my.salesforce.com/knowledge/articles/536904399/en-us", "ssn.1", "keep"),
    ("routing number 536904399", "ssn.2", "keep"),
    ("account 536904399", "ssn.2", "keep"),
    ("here it is 536-90-4399", "ssn.3", "redact"),
    ("my social security number is 536904399", "ssn.4", "redact"),
    ("llámame al 536904399 mañana", "ssn.5", "keep"),
    ("the number you asked for: 536904399", "ssn.7", "redact"),
]


@pytest.mark.parametrize(("text", "rule", "decision"), EVIDENCE_ROWS)
def test_each_row_of_the_evidence_table_decides_its_case(
    detector: Detector, text: str, rule: str, decision: str
) -> None:
    [run] = detector.explain(text)
    [cand] = run.candidates
    assert cand.rule.split()[0] == rule
    assert ("redact" if cand.redacted else "keep") == decision
    assert bool(detector.find(text)) == cand.redacted


def test_bare_ssn_row_6_applies_when_policy_asks_for_an_ssn_word() -> None:
    strict = Detector(DetectionOptions(bare_ssn_needs_context=True))
    [run] = strict.explain("the number you asked for: 536904399")
    assert run.candidates[0].rule.startswith("ssn.6")
