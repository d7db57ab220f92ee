"""A malformed agent request gets a 400 naming the field and what was expected, never echoing
what the caller sent."""

from __future__ import annotations

import pytest

from tests.agent.conftest import CARD_DIGITS, Stack, assert_no_raw


@pytest.mark.parametrize(
    ("path", "body", "field", "expected"),
    [
        ("/v1/resolve", b"not json", "body", "a JSON object (UTF-8)"),
        ("/v1/resolve", b"[1, 2]", "body", "a JSON object"),
        ("/v1/resolve", b"{}", "tokens", "present: a non-empty array of token strings"),
        ("/v1/resolve", b'{"tokens": []}', "tokens", "a non-empty array of token strings"),
        ("/v1/resolve", b'{"tokens": "tok"}', "tokens", "a non-empty array of token strings"),
        ("/v1/resolve", b'{"tokens": [1]}', "tokens", "a non-empty array of token strings"),
        (
            "/v1/resolve",
            b'{"tokens": ["t"], "level": "none"}',
            "level",
            "one of masked, use, full (or absent)",
        ),
        (
            "/v1/resolve",
            b'{"tokens": ["t"], "purpose": 5}',
            "purpose",
            "a string of at most 4000 characters",
        ),
        (
            "/v1/resolve",
            b'{"tokens": ["t"], "ticket": ["SUP-1"]}',
            "ticket",
            "a string of at most 4000 characters",
        ),
        (
            "/v1/resolve",
            b'{"tokens": ["t"], "4111111111111111": 1}',
            "body",
            "only the keys tokens, purpose, ticket, level",
        ),
        ("/v1/reveal-text", b'{"tokens": ["t"]}', "text", "present: a string holding tokens"),
        ("/v1/reveal-text", b'{"text": 42}', "text", "a string holding tokens"),
    ],
)
async def test_a_malformed_request_names_the_field_and_what_was_expected(
    stack: Stack, path: str, body: bytes, field: str, expected: str
) -> None:
    resp = await stack.agent.post(
        path, data=body, headers={**stack.auth(), "Content-Type": "application/json"}
    )
    assert resp.status == 400
    doc = await resp.json()
    assert doc == {
        "error": "request_invalid",
        "field": field,
        "expected": expected,
        "request_id": doc["request_id"],
    }
    assert CARD_DIGITS not in await resp.text()
    assert "4111111111111111" not in await resp.text()


async def test_too_many_tokens_says_how_many_are_allowed(stack: Stack) -> None:
    tokens = ["tok_v1_card_aaaaaaaaaaaaaaaaaaaa_4242"] * 101  # repeats count
    resp = await stack.agent.post("/v1/resolve", json={"tokens": tokens}, headers=stack.auth())
    assert resp.status == 400
    doc = await resp.json()
    assert (doc["error"], doc["field"], doc["expected"]) == (
        "too_many_tokens",
        "tokens",
        "at most 100 tokens",
    )
    assert_no_raw(await resp.text())
