"""JSON codec: offsets, escapes, numbers, strictness."""

from __future__ import annotations

import json

import pytest

from redactor.bodies import Edit, parse_body
from redactor.errors import BodyUnparseableError

TOKEN = "tok_v1_card_abcdefghijklmnopqrst_4242"


def _parse(raw: bytes):
    return parse_body(raw, "application/json")


def _replace_all(raw: bytes, needle: str) -> bytes:
    parsed = _parse(raw)
    edits = {}
    for segment in parsed.segments:
        start = segment.text.find(needle)
        if start >= 0:
            edits[segment.index] = [Edit(start, start + len(needle), TOKEN)]
    return parsed.rebuild(edits)


@pytest.mark.parametrize(
    ("raw", "decoded", "rewritten"),
    [
        # plain
        (rb'"card 4111111111111111 ok"', "card 4111111111111111 ok", rb'"card TOK ok"'),
        # \uXXXX inside the value is decoded for detection and replaced as a whole unit
        (rb'"card \u00341111111111111111 ok"', "card 41111111111111111 ok", rb'"card TOK1 ok"'),
        # escapes outside the edit keep their spelling, \/ included
        (
            rb'"a\/b \u00e9 4111111111111111 \n"',
            "a/b \u00e9 4111111111111111 \n",
            rb'"a\/b \u00e9 TOK \n"',
        ),
        # a surrogate pair is one character
        (
            rb'"\ud83d\ude00 4111111111111111"',
            "\U0001f600 4111111111111111",
            rb'"\ud83d\ude00 TOK"',
        ),
        # raw non-ASCII stays raw
        ('"é 4111111111111111 é"'.encode(), "é 4111111111111111 é", '"é TOK é"'.encode()),
    ],
)
def test_json_body_decodes_escapes_and_keeps_untouched_ones(raw, decoded, rewritten) -> None:
    parsed = _parse(raw)
    (segment,) = parsed.segments
    assert segment.text == decoded
    start = decoded.index("4111111111111111")
    out = parsed.rebuild({0: [Edit(start, start + 16, "TOK")]})
    assert out == rewritten
    assert json.loads(out) == decoded.replace("4111111111111111", "TOK")


@pytest.mark.parametrize(
    "replacement",
    ['"quoted"', "back\\slash", "new\nline", "tab\t", "\x00nul", "\u2028", "é", "\ud800"],
)
def test_json_body_escapes_any_replacement_into_valid_json(replacement) -> None:
    raw = b'{"a": "x 4111111111111111 y"}'
    out = _parse(raw).rebuild({0: [Edit(2, 18, replacement)]})
    assert json.loads(out) == {"a": f"x {replacement} y"}


def test_json_body_edit_inside_an_escape_widens_to_the_whole_escape() -> None:
    parsed = _parse(rb'"ab\u0041cd"')
    assert parsed.segments[0].text == "abAcd"
    assert parsed.rebuild({0: [Edit(2, 3, "Z")]}) == b'"abZcd"'
    assert parsed.rebuild({0: [Edit(3, 3, "Z")]}) == rb'"ab\u0041Zcd"'


def test_json_body_keeps_key_order_spacing_and_numbers_after_rewrite() -> None:
    raw = b'{ "z" :1.50e+3 ,"a":[ 1,2 ], "id": 12345678901234567890, "t" : "4111111111111111","b":null}'
    out = _replace_all(raw, "4111111111111111")
    assert out == raw.replace(b'"4111111111111111"', f'"{TOKEN}"'.encode())


def test_json_body_long_integers_are_segments_and_become_strings() -> None:
    raw = b'{"id": 4111111111111111, "short": 12345, "float": 4111111111111111.0, "neg": -4111111111111111}'
    parsed = _parse(raw)
    kinds = [(s.field_name, s.kind, s.text) for s in parsed.segments]
    assert kinds == [
        ("id", "json_number", "4111111111111111"),
        ("float", "json_number", "4111111111111111"),
        ("neg", "json_number", "-4111111111111111"),
    ]
    out = parsed.rebuild(
        {0: [Edit(0, 16, TOKEN)], 1: [Edit(0, 16, TOKEN)], 2: [Edit(1, 17, TOKEN)]}
    )
    assert json.loads(out) == {"id": TOKEN, "short": 12345, "float": TOKEN, "neg": f"-{TOKEN}"}


@pytest.mark.parametrize(
    ("number", "digits"),
    [
        ("4111111111111111.0", "4111111111111111"),
        ("4.111111111111111e15", "4111111111111111"),
        ("4111111111111111E0", "4111111111111111"),
        ("41111111111111110e-1", "4111111111111111"),
        ("536904399", "536904399"),
        ("5.36904399E8", "536904399"),
    ],
)
def test_json_numbers_whole_after_their_exponent_are_read_as_their_digits(
    number: str, digits: str
) -> None:
    parsed = _parse(f'{{"n": {number}}}'.encode())

    assert [(s.field_name, s.text) for s in parsed.segments] == [("n", digits)]


@pytest.mark.parametrize(
    "number", ["12345678", "4111111111111111.5", "1e999999999", "0e30", "12345678901234567890"]
)
def test_numbers_that_cannot_hold_a_value_are_left_alone(number: str) -> None:
    # Too short, not whole, too long, zero; a huge exponent is never expanded.
    assert _parse(f'{{"n": {number}}}'.encode()).segments == []


def test_json_body_names_array_items_by_their_key() -> None:
    parsed = _parse(b'{"tags": ["a", {"text": "b"}, ["c"]], "x": "d"}')
    assert [(s.field_name, s.text) for s in parsed.segments] == [
        ("tags", "a"),
        ("text", "b"),
        ("tags", "c"),
        ("x", "d"),
    ]


def test_json_body_reads_html_strings_as_html() -> None:
    parsed = _parse(
        b'{"body": "<p>4111&#32;1111<br>1111 1111</p>", "slack": "<@U123> 4111 <https://x|y>"}'
    )
    texts = [(s.kind, s.text) for s in parsed.segments]
    assert ("html_text", "4111 1111\n1111 1111") in texts
    assert ("json_string", "<@U123> 4111 <https://x|y>") in texts


def test_json_body_accepts_bom_and_keeps_it() -> None:
    raw = '\ufeff{"a": "4111111111111111"}'.encode()
    out = _replace_all(raw, "4111111111111111")
    assert out.startswith(b"\xef\xbb\xbf")
    assert TOKEN.encode() in out


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"a" 1}',
        b'{"a": 1,}',
        b"[1 2]",
        b'"unterminated',
        b'"bad \\x escape"',
        b'"ctrl \x01"',
        b"NaN",
        b"[Infinity]",
        b"01",
        b"{} {}",
        b"\xff\xfe{}",
        b'{"a": "\xc3"}',
        b"[" * 300 + b"]" * 300,
        b"1" * 5000,
    ],
)
def test_json_body_rejects_invalid_json_with_typed_error(raw) -> None:
    with pytest.raises(BodyUnparseableError) as caught:
        _parse(raw)
    assert "4111" not in str(caught.value)


def test_json_body_error_message_never_quotes_the_body() -> None:
    with pytest.raises(BodyUnparseableError) as caught:
        _parse(b'{"card": "4111111111111111", oops}')
    assert "4111" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_json_body_rejects_overlapping_edits() -> None:
    parsed = _parse(b'"4111111111111111"')
    with pytest.raises(ValueError, match="overlap"):
        parsed.rebuild({0: [Edit(0, 5, "a"), Edit(4, 8, "b")]})
    with pytest.raises(ValueError, match="unknown segment"):
        parsed.rebuild({7: [Edit(0, 1, "a")]})


def test_segment_repr_never_shows_text() -> None:
    parsed = _parse(b'{"a": "4111111111111111"}')
    assert "4111" not in repr(parsed.segments[0])
    assert "4111" not in repr(Edit(0, 1, "4111111111111111"))
