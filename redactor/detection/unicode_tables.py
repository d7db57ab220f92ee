"""Characters that read as a space, a dash, a line break or a digit, or as nothing, between the
digits of a number: taken from Unicode's properties, not from a hand list.

The tables are literal ranges so that importing detection stays cheap;
`tests/detection/test_unicode_tables.py` derives them again from `unicodedata` (and from the
`regex` module for Default_Ignorable_Code_Point, which `unicodedata` does not expose) over every
code point, so a Python with a newer Unicode fails the test instead of drifting silently.
"""

from __future__ import annotations

# Unicode 14. Non-ASCII space separators (Zs): read as a space.
SPACE_RANGES = (
    (0x00A0, 0x00A0), (0x1680, 0x1680), (0x2000, 0x200A), (0x202F, 0x202F), (0x205F, 0x205F),
    (0x3000, 0x3000),
)  # fmt: skip
# Dash punctuation (Pd), non-ASCII: read as a hyphen.
DASH_RANGES = (
    (0x058A, 0x058A), (0x05BE, 0x05BE), (0x1400, 0x1400), (0x1806, 0x1806), (0x2010, 0x2015),
    (0x2E17, 0x2E17), (0x2E1A, 0x2E1A), (0x2E3A, 0x2E3B), (0x2E40, 0x2E40), (0x2E5D, 0x2E5D),
    (0x301C, 0x301C), (0x3030, 0x3030), (0x30A0, 0x30A0), (0xFE31, 0xFE32), (0xFE58, 0xFE58),
    (0xFE63, 0xFE63), (0xFF0D, 0xFF0D), (0x10EAD, 0x10EAD),
)  # fmt: skip
# Typed as dashes though Unicode files them elsewhere: the minus sign (Sm) always; the katakana
# prolonged sound mark, full and half width (Lm), which Japanese keyboards give for "-", only
# next to a digit (elsewhere it lengthens a vowel: カード, the card word itself).
DASH_LIKE = (0x2212,)
DASH_NEXT_TO_DIGIT = "\u30fc\uff70"
# Line and paragraph separators (Zl, Zp) and NEL: read as a line break.
LINE_BREAK_RANGES = ((0x0085, 0x0085), (0x2028, 0x2029))
# Digits that are not decimal digits (No) but whose NFKC form is one ASCII digit: superscripts,
# subscripts, circled digits. Read as that digit.
DIGIT_FORM_RANGES = (
    (0x00B2, 0x00B3), (0x00B9, 0x00B9), (0x2070, 0x2070), (0x2074, 0x2079), (0x2080, 0x2089),
    (0x2460, 0x2468), (0x24EA, 0x24EA),
)  # fmt: skip
# Default_Ignorable_Code_Point: invisible, read as nothing.
IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip


def chars(ranges: tuple[tuple[int, int], ...]) -> frozenset[str]:
    return frozenset(chr(c) for lo, hi in ranges for c in range(lo, hi + 1))


def char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    """A regular-expression character class of the ranges."""
    return "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges) + "]"


def view_table() -> dict[int, str]:
    """One character for one: spaces, dashes, line breaks and digit forms as ASCII, so every
    offset of the view is the offset in the text."""
    import unicodedata

    table: dict[int, str] = {}
    for lo, hi in SPACE_RANGES:
        table.update(dict.fromkeys(range(lo, hi + 1), " "))
    for lo, hi in DASH_RANGES:
        table.update(dict.fromkeys(range(lo, hi + 1), "-"))
    table.update(dict.fromkeys(DASH_LIKE, "-"))
    for lo, hi in LINE_BREAK_RANGES:
        table.update(dict.fromkeys(range(lo, hi + 1), "\n"))
    for lo, hi in DIGIT_FORM_RANGES:
        table.update({c: unicodedata.normalize("NFKC", chr(c)) for c in range(lo, hi + 1)})
    return table
