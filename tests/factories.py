"""Builders of test data: Luhn-valid card numbers per scheme, SSNs, groupings, corpora paths."""

from __future__ import annotations

import random
from pathlib import Path

# Copied in (tests/data/README.md): a clone runs its tests with nothing beside it.
DATA = Path(__file__).resolve().parent / "data"
DEV_SET = DATA / "eval" / "dev.jsonl"
PAYLOAD_SHAPES = DATA / "payload_shapes"

# (scheme, IIN prefix, length): one row per scheme and length the detector must accept.
CARD_SPECS: tuple[tuple[str, str, int], ...] = (
    ("Visa", "4", 16),
    ("Visa", "4", 13),
    ("Visa", "4", 19),
    ("Mastercard", "51", 16),
    ("Mastercard", "55", 16),
    ("Mastercard 2-series", "2221", 16),
    ("Mastercard 2-series", "2720", 16),
    ("American Express", "34", 15),
    ("American Express", "37", 15),
    ("Discover", "6011", 16),
    ("Discover", "65", 19),
    ("Diners Club", "36", 14),
    ("Diners Club", "300", 14),
    ("JCB", "3528", 16),
    ("JCB", "3589", 19),
    ("UnionPay", "62", 16),
    ("UnionPay", "62", 19),
    ("UnionPay", "81", 16),
    ("Maestro", "6759", 12),
    ("Maestro", "5018", 18),
    ("Elo", "509000", 16),
    ("Hipercard", "606282", 16),
    ("RuPay", "508", 16),
    ("Mir", "2200", 16),
    ("Verve", "506099", 19),
    ("UATP", "1", 15),
    ("Troy", "9792", 16),
    ("JCB legacy", "2131", 15),
    ("JCB legacy", "1800", 15),
    ("Diners Club enRoute", "2014", 15),
    ("Diners Club enRoute", "2149", 15),
)

# Groupings people type, by length: (group sizes).
GROUPINGS: dict[int, tuple[tuple[int, ...], ...]] = {
    12: ((4, 4, 4),),
    13: ((4, 4, 5), (4, 4, 4, 1)),
    14: ((4, 6, 4), (4, 4, 4, 2)),
    15: ((4, 6, 5), (4, 4, 4, 3)),
    16: ((4, 4, 4, 4),),
    17: ((4, 4, 4, 5),),
    18: ((4, 4, 4, 6), (4, 4, 4, 4, 2)),
    19: ((4, 4, 4, 4, 3),),
}

SEPARATORS = (" ", "-", ".", "  ", "\n", "\n> ", "\u3000")


def luhn_check_digit(payload: str) -> str:
    """The digit that makes `payload + digit` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def make_pan(prefix: str, length: int, rng: random.Random) -> str:
    """A Luhn-valid PAN of `length` digits starting with `prefix`."""
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return body + luhn_check_digit(body)


def group(digits: str, sizes: tuple[int, ...], separators: str | list[str]) -> str:
    """`digits` split into `sizes`, joined by one separator or a list of them."""
    parts, pos = [], 0
    for size in sizes:
        parts.append(digits[pos : pos + size])
        pos += size
    if isinstance(separators, str):
        return separators.join(parts)
    out = parts[0]
    for sep, part in zip(separators, parts[1:], strict=True):
        out += sep + part
    return out


def to_fullwidth(s: str) -> str:
    return s.translate({ord(c): 0xFF10 + int(c) for c in "0123456789"})


def make_ssn(rng: random.Random) -> str:
    """Nine digits in SSA-issued ranges (area 001-899 but 666, group 01-99, serial 0001-9999)."""
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def luhn_fix_last(digits: str) -> str:
    return digits[:-1] + luhn_check_digit(digits[:-1])


def luhn_break_last(digits: str) -> str:
    good = luhn_check_digit(digits[:-1])
    return digits[:-1] + str((int(good) + 1) % 10)
