"""Token format: build, parse, find in text; tokens never look like a card number or SSN."""

from __future__ import annotations

import re
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redactor.ops.logconfig import leak_guard
from vault.errors import TokenFormatError
from vault.tokens import (
    TOKEN_PATTERN,
    EntityType,
    ParsedToken,
    find_tokens,
    format_token,
    new_token_id,
    parse_token,
)

ID = "abcdefghijklmnopqrst"
token_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=20, max_size=20)
last4s = st.none() | st.text(alphabet="0123456789", min_size=4, max_size=4)


def test_card_token_shows_last_four_and_ssn_token_shows_nothing() -> None:
    assert format_token(EntityType.CARD, ID, "1111") == f"tok_v1_card_{ID}_1111"
    assert format_token(EntityType.CARD, ID) == f"tok_v1_card_{ID}"
    assert format_token(EntityType.SSN, ID) == f"tok_v1_ssn_{ID}"


@pytest.mark.parametrize(
    ("entity_type", "token_id", "last4"),
    [
        (EntityType.SSN, ID, "6789"),
        (EntityType.CARD, ID[:-1], None),
        (EntityType.CARD, ID.upper(), None),
        (EntityType.CARD, ID[:-1] + "1", None),
        (EntityType.CARD, ID, "123"),
        (EntityType.CARD, ID, "１２３４"),
    ],
)
def test_format_token_refuses_malformed_parts(
    entity_type: EntityType, token_id: str, last4: str | None
) -> None:
    with pytest.raises(TokenFormatError):
        format_token(entity_type, token_id, last4)


@pytest.mark.parametrize(
    "text",
    [
        "",
        f"tok_v2_card_{ID}",
        f"tok_v1_card_{ID[:-1]}",
        f"tok_v1_ssn_{ID}_6789",
        f"tok_v1_card_{ID}_12345",
        f"tok_v1_card_{ID}_１２３４",
        f"tok_v1_CARD_{ID}",
        f"tok_v1_pan_{ID}",
        f" tok_v1_ssn_{ID}",
        "4111111111111111",
    ],
)
def test_parse_token_raises_typed_error_for_malformed_text(text: str) -> None:
    with pytest.raises(TokenFormatError) as info:
        parse_token(text)
    assert text.strip() not in str(info.value) or not text.strip()


@given(entity=st.sampled_from(EntityType), token_id=token_ids, last4=last4s)
def test_parse_inverts_format(entity: EntityType, token_id: str, last4: str | None) -> None:
    if entity is EntityType.SSN:
        last4 = None
    text = format_token(entity, token_id, last4)
    assert parse_token(text) == ParsedToken(1, entity, token_id, last4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"card tok_v1_card_{ID}_4242, ok", [f"tok_v1_card_{ID}_4242"]),
        (f'{{"ssn": "tok_v1_ssn_{ID}"}}', [f"tok_v1_ssn_{ID}"]),
        (f"> > tok_v1_ssn_{ID}\n> tok_v1_ssn_{ID}", [f"tok_v1_ssn_{ID}"] * 2),
        (f"xtok_v1_ssn_{ID}", []),
        (f"tok_v1_ssn_{ID}x", []),
        (f"tok_v1_card_{ID}_42425", []),
        (f"tok_v1_card_{ID}_42", []),
        ("tok_v1_card_", []),
    ],
)
def test_token_pattern_finds_tokens_in_text(text: str, expected: list[str]) -> None:
    assert find_tokens(text) == expected


@given(entity=st.sampled_from(EntityType), token_id=token_ids, last4=last4s)
def test_tokens_hold_no_digit_run_longer_than_four(
    entity: EntityType, token_id: str, last4: str | None
) -> None:
    text = format_token(entity, token_id, None if entity is EntityType.SSN else last4)
    assert max((len(run) for run in re.findall(r"\d+", text)), default=0) <= 4
    # The log leak guard (any 9+ digit run, grouped or not) never fires on a token.
    assert leak_guard(None, "info", {"event": text})["event"] == text
    assert TOKEN_PATTERN.fullmatch(text)


@given(seed=st.binary(min_size=64, max_size=64))
def test_new_token_id_is_twenty_lowercase_letters(seed: bytes) -> None:
    stream = iter(seed * 100)

    def random_bytes(n: int) -> bytes:
        return bytes(next(stream) for _ in range(n))

    token_id = new_token_id(random_bytes)
    assert re.fullmatch(r"[a-z]{20}", token_id)


def test_new_token_ids_differ() -> None:
    assert len({new_token_id(secrets.token_bytes) for _ in range(1000)}) == 1000


def test_the_lookup_index_is_hmac_sha256_of_type_and_value_under_the_tenant_subkey() -> None:
    # Existing vaults find their rows by this digest: it must never change its spelling.
    import hashlib
    import hmac

    from vault.crypto import lookup_digest

    subkey = bytes(range(32))
    expected = hmac.new(subkey, b"card\x004111111111111111", hashlib.sha256).digest()
    assert lookup_digest(subkey, "card", "4111111111111111") == expected
