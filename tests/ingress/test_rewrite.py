"""Rewrite: each finding's span becomes its own vault token, in the segment's coordinates."""

from __future__ import annotations

import pytest

from redactor.detection import Finding
from redactor.errors import RedactorError
from redactor.redaction.rewrite import Rewriter, value_digits


def test_two_cards_a_space_apart_stay_two_tokens_in_text_order() -> None:
    text = "cards 4111 1111 1111 1111 5555555555554444 and ssn ５３６-90-4399"
    findings = [
        Finding("US_SSN", 51, 62, 1.0),
        Finding("CREDIT_CARD", 6, 25, 1.0),
        Finding("CREDIT_CARD", 26, 42, 1.0),
    ]
    tokens = {
        ("CREDIT_CARD", "4111111111111111"): "tok_a",
        ("CREDIT_CARD", "5555555555554444"): "tok_b",
        ("US_SSN", "536904399"): "tok_c",
    }
    edits = Rewriter().token_edits(text, findings, tokens)
    assert [(e.start, e.end, e.replacement) for e in edits] == [
        (6, 25, "tok_a"),
        (26, 42, "tok_b"),
        (51, 62, "tok_c"),
    ]


def test_a_value_without_a_token_is_an_error_that_does_not_carry_the_value() -> None:
    with pytest.raises(RedactorError) as raised:
        Rewriter().token_edits("card 4111 1111 1111 1111", [Finding("CREDIT_CARD", 5, 24, 1.0)], {})
    assert "4111" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_the_vault_value_is_the_ascii_digits_of_the_span() -> None:
    assert value_digits("４１１１-1111 1111 1111") == "4111111111111111"
    assert value_digits("4111-1111\t1111 1111") == "4111111111111111"
