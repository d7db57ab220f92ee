"""JSON object keys are segments: rewritten in place, and never merged with another key."""

from __future__ import annotations

import json

from redactor.bodies import Edit, parse_body

PAN = "4111111111111111"


def _rewrite_keys(raw: bytes, new: str) -> bytes:
    parsed = parse_body(raw, "application/json", min_segment_digits=9)
    keys = [s for s in parsed.segments if s.kind == "json_key"]
    return parsed.rebuild({s.index: [Edit(0, len(s.text), new)] for s in keys})


def test_a_key_that_could_hold_a_value_is_a_segment_named_after_its_object() -> None:
    parsed = parse_body(b'{"cards": {"' + PAN.encode() + b'": 1, "id": 2}}', "application/json")
    keys = [(s.text, s.field_name, s.kind) for s in parsed.segments if s.kind == "json_key"]
    assert keys == [(PAN, "cards", "json_key")]


def test_short_keys_are_never_segments() -> None:
    parsed = parse_body(b'{"a1": "x", "12345678": 1}', "application/json")
    assert [s.kind for s in parsed.segments] == ["json_string"]


def test_a_new_key_equal_to_an_existing_one_gets_a_suffix() -> None:
    raw = b'{"tok": 1, "' + PAN.encode() + b'": 2, "tok~2": 3}'
    out = _rewrite_keys(raw, "tok")
    assert json.loads(out, object_pairs_hook=list) == [("tok", 1), ("tok~3", 2), ("tok~2", 3)]


def test_two_new_keys_that_collide_stay_two_members_in_document_order() -> None:
    raw = b'{"a": {"4111 1111 1111 1111": 1, "' + PAN.encode() + b'": 2}}'
    out = _rewrite_keys(raw, "tok")
    assert json.loads(out, object_pairs_hook=list) == [("a", [("tok", 1), ("tok~2", 2)])]


def test_an_escaped_key_is_decoded_for_scanning_and_written_back_escaped() -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in PAN)
    out = _rewrite_keys(b'{"' + escaped.encode() + b'": "x"}', 'to"k')
    assert json.loads(out) == {'to"k': "x"}
