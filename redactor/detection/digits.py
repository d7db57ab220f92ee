"""Counting digits fast: the cheapest test of "could this text hold a PAN or an SSN?".

A PAN has 12-19 digits and an SSN 9, so a text with fewer digit characters holds neither.
Several stages ask this on every message (the JSON fast path, the JSON codec, detection, the
URL check), so it is one C-level pass, not a Python loop.
"""

from __future__ import annotations

import re

_ASCII_DIGITS = b"0123456789"
_ANY_DIGIT = re.compile(r"\d")


def ascii_digit_count(text: str) -> int:
    """How many of `text`'s characters are the ASCII digits 0-9."""
    # In UTF-8 every non-ASCII character is encoded with bytes >= 0x80, so the bytes 0x30-0x39
    # are exactly the ASCII digits; deleting them is one C pass.
    raw = text.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, _ASCII_DIGITS))


def digit_count(text: str) -> int:
    """How many of `text`'s characters are decimal digits of any script (`４`, `٤`, `4`)."""
    if text.isascii():
        return ascii_digit_count(text)
    return len(_ANY_DIGIT.findall(text))
