"""Property: a valid card placed in any field, key, header, filename or path is tokenised.

The pipeline runs with the real detector and rewriter and a vault that hands out tokens; the
generated card (Luhn-valid, any of the common spellings) must be gone from every part of the
message and a token must stand in its place."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from email.header import Header
from urllib.parse import unquote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redactor.bodies.http_parts import HeaderValues, UrlPath, UrlQuery
from redactor.bodies.limits import BodyLimits
from redactor.detection import Detector
from redactor.ingress.pipeline import Pipeline
from redactor.redaction.rewrite import Rewriter
from redactor.settings import DEFAULT_UNSCANNED_HEADERS
from tests.factories import luhn_check_digit

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _Vault:
    async def tokenize_many(self, tenant, items):
        return [f"tok_v1_card_abcdefghijklmnopqrst_{value[-4:]}" for _entity, value in items]


_PIPELINE = Pipeline(Detector(), Rewriter(), _Vault(), 5.0)


@st.composite
def cards(draw) -> tuple[str, str]:
    """(digits, spelling) of a Luhn-valid 16-digit Visa or Mastercard number."""
    prefix = draw(st.sampled_from(["4", "51", "55", "2221"]))
    rest = draw(st.text("0123456789", min_size=15 - len(prefix), max_size=15 - len(prefix)))
    digits = prefix + rest + luhn_check_digit(prefix + rest)
    sep = draw(st.sampled_from(["", " ", "-"]))
    spelled = sep.join(digits[i : i + 4] for i in range(0, 16, 4))
    return digits, spelled


# Each placement: (spelled card) -> (body, content type, raw path, headers); the checker gets
# everything the upstream would see, decoded, as one text.
Placement = Callable[[str], tuple[bytes, str, str, list[tuple[str, str]]]]


def _json_value(card: str):
    return (
        json.dumps({"ticket": {"comment": f"my card is {card} thanks"}}).encode(),
        "application/json",
        "/t",
        [],
    )


def _json_key(card: str):
    return json.dumps({"cards": {card: "primary"}}).encode(), "application/json", "/t", []


def _json_in_json(card: str):
    inner = json.dumps({"note": f"card:\n{card}"})
    return json.dumps({"data": inner}).encode(), "application/json", "/t", []


def _form_value(card: str):
    return (
        urlencode({"body-plain": f"card {card}"}).encode(),
        "application/x-www-form-urlencoded",
        "/t",
        [],
    )


def _form_json_field(card: str):
    payload = json.dumps({"actions": [{"value": f"card\n{card}"}]})
    return urlencode({"payload": payload}).encode(), "application/x-www-form-urlencoded", "/t", []


def _multipart(card: str, where: str):
    filename = f"card {card}.txt" if where == "filename" else "a.txt"
    extra = f"X-Note: card {card}\r\n" if where == "part_header" else ""
    value = f"card {card}" if where == "value" else "hello"
    body = (
        "--b\r\n"
        f'Content-Disposition: form-data; name="text"\r\n{extra}\r\n{value}\r\n'
        "--b\r\n"
        f'Content-Disposition: form-data; name="f"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\nbinary\r\n--b--\r\n"
    )
    return body.encode(), "multipart/form-data; boundary=b", "/t", []


def _email_header(card: str):
    subject = Header(f"card {card}", "utf-8").encode()
    return (
        f"Subject: {subject}\r\nFrom: a@b.c\r\n\r\nhello\r\n".encode(),
        "message/rfc822",
        "/t",
        [],
    )


def _path(card: str):
    encoded = "".join(f"%{ord(c):02X}" for c in card)
    return b"", "text/plain", f"/customers/{encoded}/tickets", []


def _query(card: str):
    return b"", "text/plain", "/search?" + urlencode({"q": card}), []


def _header(card: str):
    return b"", "text/plain", "/t", [("X-Customer-Note", f"card {card}")]


def _encoded_header(card: str):
    return b"", "text/plain", "/t", [("X-Subject", Header(f"card {card}", "utf-8").encode())]


PLACEMENTS: dict[str, Placement] = {
    "json_value": _json_value,
    "json_key": _json_key,
    "json_in_json_string": _json_in_json,
    "form_value": _form_value,
    "form_json_field": _form_json_field,
    "multipart_value": lambda c: _multipart(c, "value"),
    "multipart_filename": lambda c: _multipart(c, "filename"),
    "multipart_part_header": lambda c: _multipart(c, "part_header"),
    "email_encoded_subject": _email_header,
    "percent_encoded_path": _path,
    "query": _query,
    "header": _header,
    "encoded_word_header": _encoded_header,
}

_ENCODED_WORD = re.compile(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=")


def _decoded_view(body: bytes, path: str, headers: list[tuple[str, str]]) -> str:
    """Everything the upstream gets, with escapes undone, as one text."""
    from email.header import decode_header, make_header

    text = body.decode("utf-8", "replace") + "\n" + unquote(path) + "\n"
    text += "\n".join(f"{k}: {v}" for k, v in headers)
    with_words = _ENCODED_WORD.sub(lambda m: str(make_header(decode_header(m.group()))), text)
    return unquote(with_words.replace("+", " ")).replace("\\n", "\n")


@FAST
@given(cards(), st.sampled_from(sorted(PLACEMENTS)))
def test_a_card_anywhere_in_a_message_is_tokenised(card: tuple[str, str], where: str) -> None:
    digits, spelled = card
    body, content_type, raw_path, headers = PLACEMENTS[where](spelled)
    path, _, query = raw_path.partition("?")
    extras = (UrlPath(path), UrlQuery(query), HeaderValues(headers, DEFAULT_UNSCANNED_HEADERS))

    async def run():
        return await _PIPELINE.redact(
            body,
            content_type=content_type,
            content_encoding=None,
            tenant="t",
            limits=BodyLimits(),
            extras=extras,
        )

    redaction = asyncio.run(run())
    assert redaction.counts == {"CREDIT_CARD": 1}, where
    new_path, new_query, new_headers = redaction.extras
    out_path = (new_path if new_path is not None else path) + (
        "?" + (new_query if new_query is not None else query) if query else ""
    )
    out_headers = [(k, (new_headers or {}).get(i, v)) for i, (k, v) in enumerate(headers)]
    seen = _decoded_view(redaction.body, out_path, out_headers)
    assert "tok_v1_card_" in seen
    assert spelled not in seen
    assert digits not in seen.replace(" ", "").replace("-", "")


nested_texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested_texts, st.integers(min_value=0, max_value=400), st.data())
def test_mutated_documents_inside_fields_raise_only_typed_errors(filler, cut, data) -> None:
    """JSON in a form field and in a JSON string, cut or mutated anywhere: a result or a
    BodyError, never another exception."""
    from redactor.bodies import parse_body
    from redactor.errors import BodyError

    inner = json.dumps({"a": [filler, {"b": "=?utf-8?q?x?="}], "c": filler})
    bodies = [
        (urlencode({"payload": inner}).encode(), "application/x-www-form-urlencoded"),
        (json.dumps({"data": inner, filler: 1}).encode(), "application/json"),
    ]
    for raw, content_type in bodies:
        position = min(cut, len(raw))
        byte = data.draw(st.integers(min_value=0, max_value=255))
        for mutated in (raw[:position], raw[:position] + bytes([byte]) + raw[position + 1 :]):
            try:
                parsed = parse_body(mutated, content_type, limits=BodyLimits())
            except BodyError:
                continue
            assert parsed.rebuild({}) == mutated
