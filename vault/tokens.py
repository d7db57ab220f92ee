"""Token format: `tok_v1_card_<id>[_<last4>]` and `tok_v1_ssn_<id>`; pure functions only.

`<id>` is 20 lowercase ASCII letters (26**20 ~ 2**94 ids). Letters only, on purpose: a token
then holds no digit run longer than the four a policy may show, so no detector can mistake
it for a card number or an SSN, and the log leak guard never masks it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from vault.errors import TokenFormatError

TOKEN_VERSION = 1
TOKEN_ID_LENGTH = 20
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_ALPHABET_SET = frozenset(_ALPHABET)
# Bytes at or above this are rejected so every letter is equally likely (234 = 9 * 26).
_REJECT_FROM = 256 - 256 % len(_ALPHABET)
_BYTE_TO_LETTER = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(256))
_REJECTED = bytes(range(_REJECT_FROM, 256))


class EntityType(enum.StrEnum):
    """What a token stands for; its value is the name used inside the token."""

    CARD = "card"
    SSN = "ssn"


# Word-ish boundaries on both sides so a token glued to other identifier characters or to
# further digits (`..._11112`) is not taken for a token. ASCII classes only: `\d` would accept
# Unicode digits.
TOKEN_PATTERN = re.compile(
    r"(?<![A-Za-z0-9_])tok_v1_(?:"
    r"card_(?P<card_id>[a-z]{20})(?:_(?P<last4>[0-9]{4}))?"
    r"|ssn_(?P<ssn_id>[a-z]{20})"
    r")(?![A-Za-z0-9_])"
)


@dataclass(frozen=True, slots=True)
class Token:
    """A token as it appears in a rewritten message."""

    text: str
    entity_type: EntityType

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """The parts of a well-formed token."""

    version: int
    entity_type: EntityType
    token_id: str
    last4: str | None


def format_token(entity_type: EntityType, token_id: str, last4: str | None = None) -> str:
    """Build a token string.

    Raises TokenFormatError if the id is not 20 lowercase letters, `last4` is not four ASCII
    digits, or `last4` is given for an SSN (policy never shows any part of an SSN).
    """
    if len(token_id) != TOKEN_ID_LENGTH or not _ALPHABET_SET.issuperset(token_id):
        raise TokenFormatError("token id must be 20 lowercase letters")
    if entity_type is EntityType.SSN:
        if last4 is not None:
            raise TokenFormatError("an ssn token carries no digits")
        return f"tok_v{TOKEN_VERSION}_ssn_{token_id}"
    if last4 is None:
        return f"tok_v{TOKEN_VERSION}_card_{token_id}"
    if len(last4) != 4 or not (last4.isascii() and last4.isdigit()):
        raise TokenFormatError("last4 must be four ASCII digits")
    return f"tok_v{TOKEN_VERSION}_card_{token_id}_{last4}"


def parse_token(text: str) -> ParsedToken:
    """Split a token string into its parts.

    Raises TokenFormatError if `text` is not exactly one well-formed token.
    """
    match = TOKEN_PATTERN.fullmatch(text)
    if match is None:
        raise TokenFormatError
    if match["ssn_id"] is not None:
        return ParsedToken(TOKEN_VERSION, EntityType.SSN, match["ssn_id"], None)
    return ParsedToken(TOKEN_VERSION, EntityType.CARD, match["card_id"], match["last4"])


def find_tokens(text: str) -> list[str]:
    """Every token string in `text`, in order of appearance (possibly repeated)."""
    return [m.group(0) for m in TOKEN_PATTERN.finditer(text)]


def new_token_id(random_bytes: Callable[[int], bytes]) -> str:
    """A uniformly random token id drawn from `random_bytes` (pass `secrets.token_bytes`)."""
    letters = b""
    while len(letters) < TOKEN_ID_LENGTH:
        # Rejection sampling in C: bytes >= 234 are deleted, the rest map to a letter each.
        letters += random_bytes(32).translate(_BYTE_TO_LETTER, _REJECTED)
    return letters[:TOKEN_ID_LENGTH].decode("ascii")
