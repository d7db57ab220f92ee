"""Strong evidence of a card number or an SSN in one reading of a message, found by the egress
verifier's own code (not the detector's): one bug must not blind both.

Strong means a reader would take it for the value with no context: a 13-19 digit number that
passes the Luhn check and belongs to a known IIN range (ISO/IEC 7812-1), its digits parted by
at most 3 non-alphanumeric characters each; or an SSN grouped AAA-GG-SSSS (any separators),
or nine digits next to an SSN word, in ranges the SSA issues. Digit sequences are returned as
ASCII digits and never leave the process (no log, no error, no audit record).
"""

from __future__ import annotations

import re
import unicodedata

from redactor.detection.iin import scheme_for

__all__ = ["CARD", "SSN", "could_hold", "find_strong", "normalize"]

CARD = "card"
SSN = "ssn"
MIN_DIGITS = 9

# bytes.translate: a digit becomes "1", a letter a line break (it ends a stretch) and every
# other ASCII byte is deleted, so digits that only separators part become neighbours. Bytes
# >= 0x80 are kept as they are (they are never "1"). Nine "1"s in a row: a stretch that may
# hold a value. Broader than the chain rule below (any number of separators), never narrower.
_TABLE = bytes(
    ord("1") if chr(b).isdigit() else ord("\n") if chr(b).isalpha() else b for b in range(128)
) + bytes(range(128, 256))
_DELETE = bytes(b for b in range(128) if not chr(b).isalnum())
_NINE = b"1" * MIN_DIGITS
_NON_ALNUM = re.compile(r"[\W_]+")
_NINE_DIGITS = re.compile(r"[0-9]{9}")

# A chain: digits each parted from the next by 0-3 non-alphanumeric characters (`_` is a
# separator too). Run on normalized text, where every digit is ASCII.
_CHAIN = re.compile(r"[0-9](?:[\W_]{0,3}[0-9]){8,}")
_GROUP = re.compile(r"[0-9]+")
# Words that name an SSN, before or after nine digits (`SSN: 536904399`, `536904399 (ssn)`).
_SSN_WORD = re.compile(
    r"(?i)(?<![a-z])(?:ssns?|ss#|ssa|itin|social\s*security|soc\.?\s*sec)(?![a-z])"
)
_SSN_WORD_REACH = 24

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt): invisible in every
# renderer, so a reader joins the digits around them.
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# Decimal digits of other scripts (Arabic-Indic, Devanagari, ...) that NFKC leaves as they are.
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")


def _ascii_digit(match: re.Match[str]) -> str:
    char = match.group()
    value = unicodedata.decimal(char, None)
    if value is None:
        value = unicodedata.digit(char, None)
    return char if value is None else str(value)


def normalize(text: str) -> str:
    """`text` as a reader sees its digits: NFKC (fullwidth, superscript, circled forms),
    every decimal digit of any script as ASCII, Default_Ignorable characters removed."""
    if text.isascii():
        return text
    text = _IGNORABLE.sub("", unicodedata.normalize("NFKC", text))
    # The katakana prolonged sound mark (a letter by category) typed as a dash: `2149ー1386`.
    text = text.replace("\u30fc", "-")
    return _NON_ASCII_DIGIT.sub(_ascii_digit, text)


def could_hold(text: str) -> bool:
    """False only when normalized `text` certainly holds no strong value (one C pass)."""
    if len(text) < MIN_DIGITS:
        return False
    raw = text.encode("utf-8", "surrogatepass")
    if _NINE in raw.translate(_TABLE, _DELETE):
        return True
    if text.isascii():
        return False
    # Non-ASCII separators (`·`, a medium mathematical space, `‧`) are separators to the
    # chain rule too: deleted here, so they cannot hide a stretch the translation above
    # breaks at their UTF-8 bytes.
    return _NINE_DIGITS.search(_NON_ALNUM.sub("", text)) is not None


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = ord(char) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _ssn_valid(digits: str) -> bool:
    # The SSA never issues area 000, 666 or 9xx, group 00 or serial 0000.
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _near_ssn_word(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - _SSN_WORD_REACH) : start]
    after = text[end : end + _SSN_WORD_REACH]
    return _SSN_WORD.search(before) is not None or _SSN_WORD.search(after) is not None


def _separator_class(sep: str) -> str:
    # Whitespace of any width is one separator to a reader (an HTML comment dropped between
    # groups leaves two spaces); other characters count, whitespace around them does not.
    stripped = "".join(sep.split())
    return stripped if stripped else " "


def _card_grouping(sizes: tuple[int, ...], sep_class: str) -> bool:
    """Groups a reader joins into one number: one number; digits one by one (UTF-16 read
    as bytes, `4 1 1 1 ...`); the groupings schemes print (4-4-4-4, 4-6-5, 4-4-4-4-3); or,
    with a separator numbers are written with, groups of 3+ digits but the last."""
    if len(sizes) == 1 or all(size == 1 for size in sizes):
        return True
    if all(size == 4 for size in sizes[:-1]) or sizes in _PRINTED:
        return True
    return sep_class in _NUMBER_SEPARATORS and all(size >= 3 for size in sizes[:-1])


# Amex and Diners print 4-6-5 and 4-6-4; some 19-digit cards 6-13 and 4-4-4-4-3 (covered).
_PRINTED = frozenset({(4, 6, 5), (4, 6, 4), (6, 13), (4, 6, 6), (4, 6, 9)})
_NUMBER_SEPARATORS = frozenset({" ", "-", ".", "/", "_", "\x00"})


def find_strong(text: str) -> list[tuple[str, str, bool]]:
    """(kind, ASCII digits, inside) of each strong value in normalized `text`, in order;
    `inside` is True when more digits of the same chain stand beside it (a window of a longer
    grouped number), False when the value is the whole chain.

    A window of a chain's groups is one number when its separators are all of one kind
    (lists mix them: `757-490-8708, 420-781-6711`, `$350.39, $8609.44`, `22:39:27, 09:24:56`
    are a list to any reader, yet spell a Luhn-valid number with a known IIN one time in five)
    and its grouping is one a reader joins (`_card_grouping`; an SSN is grouped 3-2-4, or
    stands next to an SSN word).
    """
    if not could_hold(text):
        return []
    found: list[tuple[str, str, bool]] = []
    for chain in _CHAIN.finditer(text):
        chain_text = chain.group()
        base = chain.start()
        spans = [(m.start(), m.end()) for m in _GROUP.finditer(chain_text)]
        groups = [chain_text[a:b] for a, b in spans]
        seps = [
            _separator_class(chain_text[spans[k][1] : spans[k + 1][0]])
            for k in range(len(spans) - 1)
        ]
        n = len(groups)
        for i in range(n):
            digits = ""
            for j in range(i, n):
                if j > i and seps[j - 1] != seps[i]:
                    break  # separators of two kinds: a list, not one number
                digits += groups[j]
                size = len(digits)
                if size > 19:
                    break
                sizes = tuple(len(g) for g in groups[i : j + 1])
                sep = seps[i] if j > i else ""
                inside = i > 0 or j < n - 1
                if size >= 13:
                    if (
                        _card_grouping(sizes, sep)
                        and _luhn(digits)
                        and scheme_for(digits) is not None
                    ):
                        found.append((CARD, digits, inside))
                elif size == 9 and _ssn_valid(digits):
                    start, end = spans[i][0] + base, spans[j][1] + base
                    if sizes == (3, 2, 4) or _near_ssn_word(text, start, end):
                        found.append((SSN, digits, inside))
    return found
