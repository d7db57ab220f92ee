"""A screen over decoded text: "no PAN or SSN can be here", proved in two C-level passes.

Most support text holds no value, yet a long e-mail thread has dozens of dates, times and
order numbers, so "it has 9 or more digits" sends nearly every message through the
recognizers (issue 14: 20 KB of quoted history cost ~0.3 ms of detection). The screen asks a
sharper question that is still broader than detection: is there a stretch of text without a
letter that holds 9 or more digits? A PAN has 12-19 digits and an SSN 9, and detection never
joins digits across a word, so without such a stretch there is nothing to find.

It answers only for plain ASCII text without a backslash; anything else (digits of other
scripts, invisible format characters, literal escapes such as `\\u200b` that detection reads as
separators) is passed on to detection as "maybe". It works on text as the body codecs decoded
it, never on raw bytes that may hide text in an encoding.
"""

from __future__ import annotations

MIN_DIGITS = 9

# bytes.translate table: a digit becomes "1", a letter a line break (it ends a stretch), and
# every other ASCII character (space, punctuation, control) is deleted, so digits that only
# separators part become neighbours.
_TABLE = bytes(
    ord("1") if chr(b).isdigit() else ord("\n") if chr(b).isalpha() else b for b in range(128)
) + bytes(range(128, 256))
_SEPARATORS = bytes(b for b in range(128) if not chr(b).isalnum())
_NINE = b"1" * MIN_DIGITS


def may_hold_value(text: str) -> bool:
    """False only when `text` certainly holds no card number or SSN; True otherwise."""
    if len(text) < MIN_DIGITS:
        return False
    if not text.isascii() or "\\" in text:
        return True
    return ascii_may_hold_value(text.encode("ascii"))


def ascii_may_hold_value(text: bytes) -> bool:
    """`may_hold_value` for ASCII bytes without a backslash that the caller vouches are the
    text itself, not an encoding of it."""
    return _NINE in text.translate(_TABLE, _SEPARATORS)


# JSON's short escapes (`\n`, `\r`, `\t`, `\b`, `\f`) stand for separators: in raw JSON their
# letters are deleted like separators, so digits around an escape become neighbours as they
# are in the decoded text. In words the same letters then no longer end a stretch, which only
# makes the answer "maybe" more often.
_RAW_JSON_SEPARATORS = _SEPARATORS + b"nrtbf"


def raw_json_may_hold_value(raw: bytes) -> bool:
    """`may_hold_value` for the raw bytes of an ASCII JSON document whose only escapes are
    the short ones (the caller checks): True when any of its texts may hold a value."""
    return _NINE in raw.translate(_TABLE, _RAW_JSON_SEPARATORS)
