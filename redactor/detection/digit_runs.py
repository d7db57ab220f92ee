"""Tokenising text into digit runs: maximal chains of digit groups joined by separators.

Everything card- or SSN-shaped is a chain of digit groups: `4111 1111 1111 1111`,
`3714-496353-98431`, `123.45.6789`, `4000 0038\\n> 0000 0446`. This module finds those chains
once per text, records how each group is separated from the next, and marks groups that are
glued to something that makes them part of another token (a letter: IBAN `AL47`, UUID `a716`,
tracking `1Z..W0392`; a date or time: `12/27`, `10:30`). It knows nothing of cards or SSNs.

Any Unicode decimal digit counts (`\\d`), so full-width digits typed on CJK keyboards
(`４１１１`) are digits; spans always point into the original text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from enum import IntEnum

from redactor.detection.digits import ascii_digit_count
from redactor.detection.words import CARD, GLUED, NUMBER_ABBREVIATIONS

# Horizontal spaces people (and word processors) put between digit groups: space, tab, NBSP,
# figure space, thin space, narrow NBSP, ideographic (full-width) space.
_SPACE = "[ \\t\\u00a0\\u2007\\u2009\\u202f\\u3000]"
# Dashes and dots: ASCII, Unicode hyphens/dashes, minus, full-width hyphen-minus and full stop.
_PUNCT = "[\\-.\\u2010-\\u2015\\u2212\\uff0d\\uff0e]"
# A line break, optionally followed by e-mail quote markers (`> `, `>> `) of the next line.
_NEWLINE = f"{_SPACE}*\\r?\\n(?:{_SPACE}*>)*{_SPACE}*"
_SEPARATOR = f"(?:{_NEWLINE}|{_SPACE}{{0,2}}{_PUNCT}{_SPACE}{{0,2}}|{_SPACE}{{1,3}})"
# Possessive quantifiers: a chain never needs to give characters back, and this keeps the scan
# linear on long digit-and-space texts.
_DIGIT_RUN_PATTERN = f"\\d++(?:{_SEPARATOR}\\d++)*+"
DIGIT_RUN = re.compile(_DIGIT_RUN_PATTERN)
# Most messages are ASCII: there `\d` can be the byte class [0-9], which the regex engine scans
# about 1.5x faster than the Unicode digit category (benchmarks/README.md).
_DIGIT_RUN_ASCII = re.compile(_DIGIT_RUN_PATTERN.replace("\\d", "[0-9]"))
# For the text screen (screen.py), which must join digits exactly as runs do.
SEPARATOR_PATTERN = _SEPARATOR
DIGIT_RUN_ASCII = _DIGIT_RUN_ASCII
# Texts with an accent or an emoji but no digit outside ASCII (full-width, Arabic-Indic, ...)
# can take the ASCII path too: their few non-ASCII characters are checked one by one.
NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _ascii_digits_only(text: str) -> bool:
    return text.isascii() or not any(map(str.isdecimal, NON_ASCII.findall(text)))


_GROUP_SPLIT = re.compile(r"(\d+)")

_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d")
_DOTS = frozenset(".\uff0e")
_DASHES_AND_DOTS = _DASHES | _DOTS


# An IntEnum: separators are hashed into sets for every candidate part, and an int hashes in C
# where a plain Enum member hashes in Python.
class SepKind(IntEnum):
    SPACE = 1
    DASH = 2
    DOT = 3
    NEWLINE = 4


# Group and DigitRun are built for every long digit run of every message: plain slotted classes
# (not frozen) because frozen dataclass construction costs three times as much. Treat them as
# immutable all the same.
@dataclass(slots=True)
class Group:
    """A maximal run of digits: [start, end) in the text, `digits` as ASCII."""

    start: int
    end: int
    digits: str
    # Glued to a letter, or to the other half of a date/time: part of another token.
    tainted: bool = False


@dataclass(slots=True)
class DigitRun:
    groups: tuple[Group, ...]
    # seps[i] joins groups[i] and groups[i + 1].
    seps: tuple[SepKind, ...]
    # Exact separator text, to tell `123-45-6789` (uniform) from `123-45 6789` (mixed).
    sep_texts: tuple[str, ...]
    # A card or expiry word glued to the digits (`cc4111...`, `...1111exp06/27`).
    glued_card_word: bool = False
    # One unseparated number that is a whole path segment of a URL or link
    # (`/agent/tickets/4111111111111111`, `/articles/360001234567-How-to`).
    url_path: bool = False
    # ... whose previous segment is a card word (`/cards/4111111111111111/charge`).
    url_card_label: bool = False

    @property
    def start(self) -> int:
        return self.groups[0].start

    @property
    def end(self) -> int:
        return self.groups[-1].end

    @property
    def digit_count(self) -> int:
        return sum(len(g.digits) for g in self.groups)


def _ascii_digits(s: str) -> str:
    if s.isascii():
        return s
    return "".join(str(unicodedata.digit(c)) for c in s)


@functools.lru_cache(maxsize=256)
def _sep_kind(sep: str) -> SepKind:
    # Cached: the same few separators (" ", "-", ".", "\n> ") recur in every message.
    if "\n" in sep:
        return SepKind.NEWLINE
    if any(c in _DASHES for c in sep):
        return SepKind.DASH
    if any(c in _DOTS for c in sep):
        return SepKind.DOT
    return SepKind.SPACE


# The separators nearly every run uses, looked up without a function call.
_COMMON_SEPS = {sep: _sep_kind(sep) for sep in (" ", "  ", "-", ".", "\n", "\n> ", " - ")}


def _glued_to_word(c: str) -> bool:
    # Identifiers that swallow digits (IBAN, UUID, courier codes) are ASCII. CJK text has no
    # spaces between words, so a kana or ideograph next to a number does not glue to it.
    return c.isascii() and (c.isalpha() or c == "_")


_LETTERS_BEFORE = re.compile(r"[A-Za-z]+\Z")
_LETTERS_AFTER = re.compile(r"[A-Za-z]+")
# Characters that end a URL or link in running text.
_URL_STOP = re.compile(r"[\s<>\"'()\[\]]")
# What may follow a path segment: the next segment, the query, the fragment, a slug, the end.
_SEGMENT_END = frozenset("/?#->)]\"'")
_ESCAPE_LETTERS = frozenset("ntrfbv")
# A link written without its scheme: a host name (`acme.zendesk.com`, `help.acme.io:8443`)
# and a path.
_HOST_PATH = re.compile(r"(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?::[0-9]+)?/")


def _glue_word_before(text: str, s: int) -> tuple[bool, bool]:
    """(tainted, glued card word) for digits at `s` right after an ASCII letter."""
    if s >= 2 and text[s - 2] == "\\" and text[s - 1] in _ESCAPE_LETTERS:
        return False, False  # a literal escape (`card:\\n4111`) is a separator
    m = _LETTERS_BEFORE.search(text, max(0, s - 24), s)
    if m is not None and m.group().lower() in GLUED:
        return False, True
    return True, False


def _code_prefix(text: str, p: int) -> tuple[bool, bool]:
    """(tainted, glued card word) for digits after letters and the dash or dot at `p`."""
    m = _LETTERS_BEFORE.search(text, max(0, p - 24), p)
    word = m.group().lower() if m is not None else ""
    if word in GLUED:
        return False, True
    # `no.4111...`, `Nr.4111...`: "number", abbreviated. `INV.4111`, `ORD-4111` stay codes.
    return not (text[p] in _DOTS and word in NUMBER_ABBREVIATIONS), False


def _glue_word_after(text: str, e: int) -> tuple[bool, bool]:
    """(tainted, glued card word) for digits ending at `e` right before an ASCII letter."""
    m = _LETTERS_AFTER.match(text, e)
    if m is not None and m.group().lower() in GLUED:
        return False, True
    return True, False


def _url_segment(text: str, s: int, e: int) -> tuple[bool, bool]:
    """(whole path segment of a URL or link, labelled by a card word) for digits at [s, e)
    right after `/`."""
    if e < len(text):
        after = text[e]
        sentence_end = after in ".,;:!" and (e + 1 == len(text) or text[e + 1].isspace())
        # `/tickets/4111111111111111.json`: the segment's file extension.
        extension = (
            after == "." and e + 1 < len(text) and text[e + 1].isascii() and (text[e + 1].isalpha())
        )
        if not (after in _SEGMENT_END or after.isspace() or sentence_end or extension):
            return False, False
    lo = max(0, s - 512)
    stops = list(_URL_STOP.finditer(text, lo, s))
    token = text[stops[-1].end() if stops else lo : s]
    if not (token.startswith(("/", "www.")) or "://" in token or _HOST_PATH.match(token)):
        return False, False
    if "?" in token or "#" in token or "=" in token:
        return False, False  # in the query or fragment: a value, still scanned
    previous = token[:-1].rsplit("/", 1)[-1].lower()
    return True, previous in CARD


def find_digit_runs(
    text: str, *, min_digits: int = 9, ascii_digits: bool | None = None
) -> list[DigitRun]:
    """Every digit run in `text` with at least `min_digits` digits, in order.

    A run that starts right after `+` is a phone number in E.164 form and is left out whole.
    """
    runs: list[DigitRun] = []
    n = len(text)
    if ascii_digits is None:
        ascii_digits = _ascii_digits_only(text)
    if ascii_digits:
        # Cheapest gate first: ten C-level counts tell most messages apart from anything with
        # enough digits to be a PAN or SSN.
        if ascii_digit_count(text) < min_digits:
            return runs
        pattern = _DIGIT_RUN_ASCII
    else:
        pattern = DIGIT_RUN
    for m in pattern.finditer(text):
        s, e = m.span()
        if e - s < min_digits:
            continue
        raw = m.group()
        before = text[s - 1] if s else ""
        if before == "+":
            continue
        # One C-level split: ["", group, sep, group, ..., group, ""].
        parts = _GROUP_SPLIT.split(raw)
        digit_parts = parts[1::2]
        if sum(map(len, digit_parts)) < min_digits:
            continue
        sep_texts = parts[2:-1:2]
        groups: list[Group] = []
        pos = s
        ascii_run = raw.isascii()
        for i, digits in enumerate(digit_parts):
            if i:
                pos += len(sep_texts[i - 1])
            end = pos + len(digits)
            groups.append(Group(pos, end, digits if ascii_run else _ascii_digits(digits)))
            pos = end
        seps = [_COMMON_SEPS.get(sep) or _sep_kind(sep) for sep in sep_texts]
        after = text[e] if e < n else ""
        first = groups[0]
        # A letter on either side makes the edge group part of an identifier (IBAN `AL47`,
        # UUID, courier codes). `/` or `:` with a digit beyond it makes it half of a date or
        # time (`12/27`, `10:30`), while `/4111...` in a URL path still counts as a boundary.
        # `ORD-123456789012`, `INV.4111...`: a code prefix joined by a dash or dot makes the
        # digits the tail of one identifier.
        prefixed = before in _DASHES_AND_DOTS and s >= 2 and _glued_to_word(text[s - 2])
        glued = False
        if _glued_to_word(before):
            first.tainted, glued = _glue_word_before(text, s)
        elif prefixed:
            # ... unless the letters are a card word or an abbreviated label (`card.4111...`,
            # `cc-4111...`, `no.4111...`): then the dot or dash is punctuation.
            first.tainted, glued = _code_prefix(text, s - 1)
        elif before in "/:" and s >= 2 and text[s - 2].isdigit():
            first.tainted = True
        if _glued_to_word(after):
            tainted, glued_after = _glue_word_after(text, e)
            groups[-1].tainted = groups[-1].tainted or tainted
            glued = glued or glued_after
        elif after in "/:" and e + 1 < n and text[e + 1].isdigit():
            groups[-1].tainted = True
        url_path = url_card = False
        if before == "/" and len(groups) == 1:
            url_path, url_card = _url_segment(text, s, e)
        runs.append(
            DigitRun(tuple(groups), tuple(seps), tuple(sep_texts), glued, url_path, url_card)
        )
    return runs
