"""Masked renderings of card numbers and SSNs for the `masked` reveal level. Pure functions.

What a masked value may show is set by standards, not taste: PCI DSS 4.0 req. 3.4.1 allows at
most the BIN (first six) and the last four digits of a PAN to be displayed; for an SSN the last
four is the industry convention (and all the SSA itself prints on notices).
"""

from __future__ import annotations

import re

BULLET = "•"
# Separators a stored value may still carry; anything else is not a card number or an SSN.
_SEPARATORS = re.compile(r"[ \-]")
_PAN_LENGTHS = range(12, 20)  # ISO/IEC 7812: 8..19 digits; issued card PANs are 12..19.
# With first six and last four shown, at least five digits must stay hidden: with fewer, the
# Luhn check digit narrows the hidden part to a few hundred candidates (a 13-digit PAN would
# leave three unknown digits, 100 valid numbers). Shorter PANs fall back to last four only.
_MIN_HIDDEN_WITH_BIN = 5


def _digits(value: str) -> str:
    digits = _SEPARATORS.sub("", value)
    if not digits.isascii() or not digits.isdigit():
        # Fixed message: the value is the secret we are masking.
        raise ValueError("value to mask is not a digit string")
    return digits


def mask_card(digits: str, show_first_six: bool = False) -> str:
    """Render a PAN as `•••• 4242`, or `411111 •••• 4242` when the BIN may be shown.

    Raises ValueError (value-free message) if `digits` is not a 12..19 digit PAN.
    """
    pan = _digits(digits)
    if len(pan) not in _PAN_LENGTHS:
        raise ValueError("value to mask is not a card number")
    last_four = pan[-4:]
    if show_first_six and len(pan) - 10 >= _MIN_HIDDEN_WITH_BIN:
        return f"{pan[:6]} {BULLET * 4} {last_four}"
    return f"{BULLET * 4} {last_four}"


def mask_ssn(digits: str) -> str:
    """Render an SSN as `•••-••-6789`.

    Raises ValueError (value-free message) if `digits` is not nine digits.
    """
    ssn = _digits(digits)
    if len(ssn) != 9:
        raise ValueError("value to mask is not an SSN")
    return f"{BULLET * 3}-{BULLET * 2}-{ssn[-4:]}"
