"""Inputs found by benchmarks/fuzz_codecs.py (atheris), kept so they stay handled."""

from __future__ import annotations

import pytest

from redactor.bodies.http_parts import HeaderValues, UrlPath, UrlQuery
from redactor.errors import BodyError


def test_a_query_whose_email_field_is_a_malformed_message_is_a_typed_refusal() -> None:
    # Found in a mutated Mailgun form used as a query: `email=` holds a raw message (as in
    # SendGrid's form) and its second line is not a header. A typed 422, never a crash.
    with pytest.raises(BodyError):
        UrlQuery("recipient=a&email=From%3A+a%40b.c%0Anot+a+header+line%0A%0Abody")


@pytest.mark.parametrize(
    "text",
    ["%", "%%34", "%E2%82", "/a/%FF%FE/4111%201111%201111%201111", "%3D%3Futf-8%3Fb%3F%3F%3D"],
)
def test_odd_percent_escapes_in_a_path_round_trip(text: str) -> None:
    assert UrlPath(text).rebuild({}) == text


def test_a_header_with_a_broken_encoded_word_still_has_its_text_scanned() -> None:
    # email.header reads the garbage word as empty: the rest is still one scanned segment.
    values = HeaderValues([("X-A", "=?utf-8?b?!!!?= 4111 1111 1111 1111")], frozenset())
    [segment] = values.segments
    assert segment.text.strip() == "4111 1111 1111 1111"


def test_an_encoded_word_whose_charset_is_not_ascii_is_read_as_plain_text() -> None:
    # Found by hypothesis (a mutated Mailgun `message-headers`): email.header raised
    # CharsetError, which is not a BodyError; the value is now scanned as the text it is.
    from redactor.bodies.nested import value_view

    view = value_view("=?\udc80utf-8?q?x?= 4111 1111 1111 1111", "X-A", "json_string")
    assert "4111 1111 1111 1111" in view.segments[0].text
