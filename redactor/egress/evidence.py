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
from bisect import bisect_left, bisect_right

from redactor.detection.iin import scheme_for

__all__ = ["CARD", "SSN", "could_hold", "find_strong", "normalize", "normalize_encoded"]

CARD = "card"
# Off only in tests: every screen below that only saves work is skipped, and each answer is
# computed the long way (tests/egress/test_shortcuts.py compares the two).
SHORTCUTS = True
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
_DELETE_WIDE = _DELETE + bytes(range(128, 256))
_NINE = b"1" * MIN_DIGITS
_NON_ALNUM = re.compile(r"[\W_]+")
_NINE_DIGITS = re.compile(r"[0-9]{9}")

# A chain: digits each parted from the next by 0-3 non-alphanumeric characters (`_` is a
# separator too). Run on normalized text, where every digit is ASCII.
_CHAIN = re.compile(r"[0-9](?:[\W_]{0,3}[0-9]){8,}")
# The same chains found in a class copy of the text, one byte a character (`encode("ascii",
# "replace")`): digits "1", ASCII letters "a", every other ASCII character " " (the chain's
# separators `[\W_]`) and every non-ASCII character " " too (broader: a letter of another
# script is taken for a separator). The pattern starts with a literal, which sre skips to in
# C; `_CHAIN` starts with a class and is tried at every character (~500 us on a 20 KB thread
# holding one phone number). Over ASCII text the two find the same spans; otherwise `_CHAIN`
# runs inside each span found here. The lookahead is implied by the rest (8 more characters
# of the chain follow its first digit) and fails most digits of prose at once; the
# quantifiers are possessive (a separator is never a digit: giving one back never helps).
_CHAIN_CLASSES = (
    bytes(
        ord("1") if 48 <= b <= 57 else ord("a") if chr(b).isalpha() else ord(" ")
        for b in range(128)
    )
    + b" " * 128
)
_CHAIN_IN_CLASSES = re.compile(rb"1(?=[1 ]{8})(?: {0,3}+1){8,}+")
_GROUP = re.compile(r"[0-9]+")
# Words that name an SSN, before or after nine digits (`SSN: 536904399`, `536904399 (ssn)`).
_SSN_WORD = re.compile(
    r"(?i)(?<![a-z])(?:ssns?|ss#|ssa|itin|social\s*security|soc\.?\s*sec)(?![a-z])"
)
_SSN_WORD_REACH = 24
# `_SSN_WORD` over a whole text, led by literals: every word it names starts with `s` or
# `itin`, and sre skips to a literal in C where a case-blind pattern led by a lookbehind is
# tried at every character (~4 ms on a 20 KB thread). Run on `text.lower()`: for every
# character but four, `(?i)` matches a letter exactly when its lowercase is that letter, and
# lowercasing keeps every position. The four (dotted and dotless i, long s, the Kelvin sign)
# send the text the long way.
_SSN_WORD_S = re.compile(r"s(?<![a-z]s)(?:sns?|s#|sa|ocial\s*security|oc\.?\s*sec)(?![a-z])")
_SSN_WORD_ITIN = re.compile(r"itin(?<![a-z]itin)(?![a-z])")
# The characters `(?i)` matches to an ASCII letter that `str.lower` does not lower to it.
CASE_SPECIAL = ("\u0130", "\u0131", "\u017f", "\u212a")


def _has_ssn_word(text: str) -> bool:
    """`_SSN_WORD.search(text) is not None`."""
    if not SHORTCUTS or (not text.isascii() and any(c in text for c in CASE_SPECIAL)):
        return _SSN_WORD.search(text) is not None
    low = text.lower()
    return _SSN_WORD_ITIN.search(low) is not None or _SSN_WORD_S.search(low) is not None


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


# Every ASCII byte: deleted from a text's UTF-8 bytes, it leaves the text's other characters
# whole and in order (a UTF-8 sequence is never split by deleting bytes < 0x80).
_ASCII_BYTES = bytes(range(128))


def _non_ascii(data: bytes) -> str:
    """The characters that are not ASCII of the text whose UTF-8 bytes are `data`, in order,
    in two C passes. Both patterns `normalize` substitutes match non-ASCII characters only,
    and a class-led pattern is tried at every character (an e-mail thread of 20 KB with one
    curly apostrophe: ~1 ms each); over these few characters they answer whether the text
    holds any match at all."""
    return data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")


def normalize(text: str) -> str:
    """`text` as a reader sees its digits: NFKC (fullwidth, superscript, circled forms),
    every decimal digit of any script as ASCII, Default_Ignorable characters removed."""
    return normalize_encoded(text)[0]


def normalize_encoded(text: str) -> tuple[str, bytes]:
    """`normalize(text)` and its UTF-8 bytes (surrogates passed), encoded once."""
    if text.isascii():
        return text, text.encode("ascii")
    text = unicodedata.normalize("NFKC", text)
    data = text.encode("utf-8", "surrogatepass")
    # Each step runs only when its characters are there (the same text either way).
    rest = _non_ascii(data) if SHORTCUTS else text
    changed = False
    if _IGNORABLE.search(rest) is not None:
        text = _IGNORABLE.sub("", text)
        changed = True
    # The katakana prolonged sound mark (a letter by category) typed as a dash: `2149ー1386`.
    if "\u30fc" in rest:
        text = text.replace("\u30fc", "-")
        changed = True
    if _NON_ASCII_DIGIT.search(rest) is not None:
        text = _NON_ASCII_DIGIT.sub(_ascii_digit, text)
        changed = True
    return text, text.encode("utf-8", "surrogatepass") if changed else data


def could_hold(text: str, raw: bytes | None = None) -> bool:
    """False only when normalized `text` certainly holds no strong value (one C pass).
    `raw`: its UTF-8 bytes (surrogates passed), when the caller has them."""
    if len(text) < MIN_DIGITS:
        return False
    if raw is None:
        raw = text.encode("utf-8", "surrogatepass")
    if text.isascii():
        return _NINE in raw.translate(_TABLE, _DELETE)
    # Non-ASCII separators (`·`, a medium mathematical space, `‧`) are separators to the
    # chain rule too: deleted below, so they cannot hide a stretch the translation breaks
    # at their UTF-8 bytes. First with every non-ASCII character deleted (broader than both
    # tests below: letters too), in C; the class-led regex costs ~1 ms on a 20 KB thread.
    if SHORTCUTS and _NINE not in raw.translate(_TABLE, _DELETE_WIDE):
        return False
    if _NINE in raw.translate(_TABLE, _DELETE):
        return True
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
    # Whether any SSN word is there at all, asked once and only when a window needs it:
    # most texts have none, and then no window needs a look around it.
    ssn_word: bool | None = None
    near_looks = 0
    for chain in _chains(text):
        chain_text = chain.group()
        base = chain.start()
        spans = [(m.start(), m.end()) for m in _GROUP.finditer(chain_text)]
        groups = [chain_text[a:b] for a, b in spans]
        seps = [
            _separator_class(chain_text[spans[k][1] : spans[k + 1][0]])
            for k in range(len(spans) - 1)
        ]
        # The Luhn sum of any window of the chain's digits in O(1), from prefix sums per
        # position parity: a chain of 8,000 one-digit groups (`4\n4\n...`, 16 KB) has
        # 50,000 windows, and a Luhn loop over each cost a second on the event loop.
        offsets = [0]
        for g in groups:
            offsets.append(offsets[-1] + len(g))
        n = len(groups)
        # Prefix sums pay off past a few dozen windows; a chain of a few groups (the common
        # case: a phone number, a date) is checked window by window.
        luhn: _LuhnSums | _LuhnDirect = (
            _LuhnSums("".join(groups)) if n > _SUMS_FROM_GROUPS else _LuhnDirect("".join(groups))
        )
        # reach[i]: the last group a window starting at i may end at (its separators all of
        # one kind), found backwards in one pass.
        reach = [n - 1] * n
        for k in range(n - 2, -1, -1):
            reach[k] = reach[k + 1] if k + 1 < n - 1 and seps[k + 1] == seps[k] else k + 1
        for i in range(n):
            first = offsets[i]
            # Only windows of 9 or 13-19 digits are weighed: found by bisection.
            lo = bisect_left(offsets, first + MIN_DIGITS, i + 1) - 1
            hi = min(reach[i], bisect_right(offsets, first + 19, i + 1) - 2)
            for j in range(lo, hi + 1):
                end = offsets[j + 1]
                size = end - first
                if size >= 13:
                    sep = seps[i] if j > i else ""
                    if luhn.valid(first, end) and _card_grouping(_sizes(groups, i, j), sep):
                        digits = luhn.digits[first:end]
                        if scheme_for(digits) is not None:
                            found.append((CARD, digits, i > 0 or j < n - 1))
                elif size == MIN_DIGITS:
                    digits = luhn.digits[first:end]
                    if _ssn_valid(digits):
                        start_at, end_at = spans[i][0] + base, spans[j][1] + base
                        grouped = j - i == 2 and _sizes(groups, i, j) == (3, 2, 4)
                        if grouped:
                            found.append((SSN, digits, i > 0 or j < n - 1))
                            continue
                        # An SSN word anywhere in the text and one near the window. The
                        # whole-text search is a case-blind alternation tried at every
                        # character (~4 ms on a 20 KB thread): asked only once a window has
                        # a word near it, or past a few windows (a text dense with digits).
                        if ssn_word is None and (not SHORTCUTS or near_looks >= _NEAR_LOOKS):
                            ssn_word = _has_ssn_word(text)
                        if ssn_word is False:
                            continue
                        near_looks += 1
                        if _near_ssn_word(text, start_at, end_at):
                            if ssn_word is None:
                                ssn_word = _has_ssn_word(text)
                            if ssn_word:
                                found.append((SSN, digits, i > 0 or j < n - 1))
    return found


# Windows looked at one by one before the whole text is searched for an SSN word once.
_NEAR_LOOKS = 16


def _chains(text: str) -> list[re.Match[str]]:
    """`_CHAIN.finditer(text)`, the same matches, found in a class copy of the text."""
    if not SHORTCUTS:
        return list(_CHAIN.finditer(text))
    classes = text.encode("ascii", "replace").translate(_CHAIN_CLASSES)
    spans = [m.span() for m in _CHAIN_IN_CLASSES.finditer(classes)]
    # Inside a span `_CHAIN` finds the same chain (ASCII) or the chains that non-ASCII
    # letters part (a chain never crosses a span's end: what could extend it is in the span).
    return [m for start, end in spans for m in _CHAIN.finditer(text, start, end)]


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _sizes(groups: list[str], i: int, j: int) -> tuple[int, ...]:
    return tuple(len(g) for g in groups[i : j + 1])


_SUMS_FROM_GROUPS = 24


class _LuhnDirect:
    """`_LuhnSums`' interface, computed per window (cheaper for a short chain)."""

    __slots__ = ("digits",)

    def __init__(self, digits: str) -> None:
        self.digits = digits

    def valid(self, start: int, end: int) -> bool:
        return _luhn(self.digits[start:end])


class _LuhnSums:
    """Prefix sums of a digit string's digits, plain and doubled, per position parity."""

    __slots__ = ("_doubled", "_plain", "digits")

    def __init__(self, digits: str) -> None:
        self.digits = digits
        plain: tuple[list[int], list[int]] = ([0], [0])
        doubled: tuple[list[int], list[int]] = ([0], [0])
        for p, char in enumerate(digits):
            d = ord(char) - 48
            for parity in (0, 1):
                own = p % 2 == parity
                plain[parity].append(plain[parity][-1] + (d if own else 0))
                doubled[parity].append(doubled[parity][-1] + (_DOUBLED[d] if own else 0))
        self._plain = plain
        self._doubled = doubled

    def valid(self, start: int, end: int) -> bool:
        """The Luhn check of digits[start:end]: from the right, every second digit doubled
        (those with the parity of `end`)."""
        par = end % 2
        doubled = self._doubled[par][end] - self._doubled[par][start]
        plain = self._plain[1 - par][end] - self._plain[1 - par][start]
        return (doubled + plain) % 10 == 0
