"""The codecs name runs of neighbouring short digit strings (issue 18, item 2): which strings
are neighbours, and that the JSON fast path hands such bodies to the codec."""

from __future__ import annotations

import pytest

from redactor.bodies import parse_body
from redactor.bodies.json_prescan import plain_json_texts
from redactor.bodies.segments import neighbours_of


def _runs(body: bytes, content_type: str) -> list[list[str]]:
    parsed = parse_body(body, content_type, min_segment_digits=9)
    segments = parsed.segments
    return [[segments[i].text for i in run] for run in neighbours_of(parsed)]


@pytest.mark.parametrize(
    ("body", "runs"),
    [
        (b'{"card": ["4111", "1111", "1111", "1111"]}', [["4111", "1111", "1111", "1111"]]),
        (b'{"ssn_a": "12", "ssn_b": "345", "ssn_c": "6789"}', [["12", "345", "6789"]]),
        # One named member is enough; a JSON escape spelling a digit reads as the digit.
        (b'{"x": "\\u00341", "cc_last": "22"}', [["41", "22"]]),
        # Another value ends a run (a 1-digit integer too); a lone piece is none; one piece
        # is 2-17 digits (a card split 10 + 6, 12 + 4, 10 + 9: issue 18).
        (b'{"cc": ["11", "x", "22", "33", 4, "44"]}', [["22", "33"]]),
        (b'{"cc": ["1", "22", "123456789", "33"]}', [["22", "123456789", "33"]]),
        (b'{"cc": ["123456789012345678", "33"]}', []),
        (b'{"cc_first10": "4111111111", "cc_last6": "111111"}', [["4111111111", "111111"]]),
        # Neighbours share their container.
        (b'{"cc": [["11", "22"], "33", "44"]}', [["11", "22"], ["33", "44"]]),
        # Integers are pieces too (issue 18): in an array, as members, next to strings; a
        # fraction, an exponent or a sign is none.
        (b'{"cc": [4111, 1111, 1111, 1111]}', [["4111", "1111", "1111", "1111"]]),
        (b'{"cc1": 4111, "cc2": 1111, "cc3": "1111"}', [["4111", "1111", "1111"]]),
        (b'{"cc": [4111, 1111.0, 1111, 22, -1111, 11e2, 33]}', [["1111", "22"]]),
        # Ids side by side under names that name no card or SSN: no run (webhooks are full
        # of them: `"actor_id": "20978392", "brand_id": "123"`).
        (b'{"actor_id": "20978392", "assignee_id": "235324", "brand_id": "123"}', []),
        (b'["4111", "1111", "1111", "1111"]', []),
    ],
)
def test_json_names_adjacent_digit_strings_of_one_container(body: bytes, runs) -> None:
    assert _runs(body, "application/json") == runs


def test_a_form_names_adjacent_digit_fields() -> None:
    body = b"name=Sam&cc1=4111&cc2=1111&cc3=1111&cc4=1111&zip=&a=12&b=34&n=x&ssn_1=536&x=90"
    # `a`, `b`: adjacent pieces, but no name in the run names a card or an SSN.
    assert _runs(body, "application/x-www-form-urlencoded") == [
        ["4111", "1111", "1111", "1111"],
        ["536", "90"],
    ]


def test_a_multipart_form_names_adjacent_digit_fields_but_not_across_a_file() -> None:
    def part(name: str, value: str, extra: str = "") -> bytes:
        head = f'Content-Disposition: form-data; name="{name}"{extra}\r\n'
        return f"--b\r\n{head}\r\n{value}\r\n".encode()

    body = (
        part("cc1", "4111")
        + part("cc2", "1111")
        + part("f", "x", '; filename="a.bin"\r\nContent-Type: image/png')
        + part("cc3", "1111")
        + part("cc4", "1111")
        + b"--b--\r\n"
    )
    assert _runs(body, "multipart/form-data; boundary=b") == [["4111", "1111"], ["1111", "1111"]]


@pytest.mark.parametrize(
    "body",
    [
        b'{"card": ["4111", "1111", "1111", "1111"]}',
        b'{"cc_first8": "41111111", "cc_last8": "11111111"}',
        b'{"cc1": "\\u0034111", "cc2": "1111"}',
        b'{"x": "11", "y": "22", "card": "33"}',
        # Integers and pieces of 9-17 digits (issue 18).
        b'{"card": [4111, 1111, 1111, 1111]}',
        b'{"cc1":4111,"cc2":1111,"cc3":1111,"cc4":1111}',
        b'{"cc_first10": "4111111111", "cc_last6": "111111"}',
        b'{"card": [411111111111, 1111]}',
        b'{"ssn_area": 536, "ssn_group": "90", "ssn_serial": 4399}',
    ],
)
def test_the_fast_path_hands_neighbouring_pieces_to_the_codec(body: bytes) -> None:
    assert plain_json_texts(body, "application/json", None) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"qty": [1234, 5678], "zip": "94107", "note": "order 12 of 34"}',
        b'{"actor_id": "20978392", "assignee_id": "235324", "brand_id": "123"}',
        b'{"codes": ["4111", "1111", "1111", "1111"]}',
        b'{"items": [4111, 1111, 1111, 1111], "ids": [12345678, 12345679]}',
        b'{"price": 12.50, "qty": 3, "card": "visa", "total": 1250}',
        b'{"text": "card 4111, 1111"}',
    ],
)
def test_the_fast_path_keeps_bodies_without_named_neighbouring_pieces(body: bytes) -> None:
    assert plain_json_texts(body, "application/json", None) == []
