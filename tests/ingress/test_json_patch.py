"""A JSON body's strings that hold a value are patched in its raw bytes, with the same result
as the codec's rebuild, or the codec is used when the raw body does not show them plainly."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redactor.detection import Detector
from redactor.redaction.rewrite import Rewriter, value_digits
from redactor.redaction.scanning import JsonStringPatch, ScanRequest, rebuild_body, scan_body

PAN = "4111 1111 1111 1111"
SSN = "536-90-4399"


def _request(body: bytes) -> ScanRequest:
    return ScanRequest(body, "application/json", None, "text", 10 * 1024 * 1024, None)


def _both(detector: Detector, body: bytes) -> tuple[object, bytes, bytes]:
    """(what rebuilt the fast way, fast result, codec result) with the same tokens."""
    fast = scan_body(detector, _request(body), patch_in_place=True)
    slow = scan_body(detector, _request(body))
    token_of = {
        (
            f.entity,
            value_digits(text[f.start : f.end]),
        ): f"tok_v1_x_{value_digits(text[f.start : f.end])[-4:]}"
        for _, text, findings in slow.found
        for f in findings
    }
    if not slow.found:
        assert not fast.found
        return fast.parsed, body, body
    rewriter = Rewriter()
    return (
        fast.parsed,
        rebuild_body(rewriter, fast.parsed, fast.found, token_of),
        rebuild_body(rewriter, slow.parsed, slow.found, token_of),
    )


@pytest.mark.parametrize(
    "doc",
    [
        {"ticket": {"comment": f"my card is {PAN}", "id": 5}},
        {"a": [f"card {PAN}", "x", f"card {PAN}"], "b": {"c": f"ssn {SSN}"}},
        {"note": f"Café card {PAN} ✓", "other": "Ünïcode"},
    ],
)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_values_are_patched_in_place_like_the_codec(
    detector: Detector, doc: dict, ascii_only: bool
) -> None:
    body = json.dumps(doc, ensure_ascii=ascii_only, indent=1).encode()
    how, fast, slow = _both(detector, body)
    assert isinstance(how, JsonStringPatch)
    assert json.loads(fast) == json.loads(slow)
    assert b"4111" not in fast
    assert b"536-90" not in fast


@pytest.mark.parametrize(
    "body",
    [
        # A card as a key: the codec keeps colliding keys apart.
        json.dumps({PAN: "primary", "x": f"card {PAN}"}).encode(),
        # Digits spelled as escapes: the literal is not what json.dumps writes.
        b'{"note": "card \\u0034111 1111 1111 1111"}',
        # A solidus escaped the way some senders do.
        b'{"note": "card 4111 1111 1111 1111 see http:\\/\\/x"}',
    ],
)
def test_bodies_the_patch_cannot_read_plainly_go_to_the_codec(
    detector: Detector, body: bytes
) -> None:
    how, fast, slow = _both(detector, body)
    assert not isinstance(how, JsonStringPatch)
    assert fast == slow
    assert b"4111" not in fast


_PIECES = [*'ab é✓"\\/\n\t{}[],:', PAN, SSN, " 42 "]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=6).map("".join)
_JSON = st.recursive(
    st.none() | st.integers(-5, 5) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=int(os.environ.get("PATCH_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_JSON, st.booleans(), st.sampled_from([None, 1]))
def test_patched_or_not_the_result_is_the_codecs(
    detector: Detector, doc: object, ascii_only: bool, indent: int | None
) -> None:
    body = json.dumps(doc, ensure_ascii=ascii_only, indent=indent).encode()
    # What is a value is detection's to say ("a4111 ..." is an identifier); the patch only
    # has to give the codec's result.
    _, fast, slow = _both(detector, body)
    assert json.loads(fast) == json.loads(slow)


def test_a_body_that_is_one_string_goes_to_the_codec(detector: Detector) -> None:
    # No member or item around the literal: nothing before it, nothing after.
    how, fast, _ = _both(detector, json.dumps(f"card {PAN}").encode())
    assert not isinstance(how, JsonStringPatch)
    assert b"4111" not in fast
