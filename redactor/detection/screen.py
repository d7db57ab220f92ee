"""A screen over decoded text: "no PAN or SSN can be here", proved mostly in C-level passes.

Most support text holds no value, yet a long e-mail thread has dozens of dates, times, phone
numbers and order numbers. The first screen asked: is there a stretch without a letter that
holds 9 or more digits? Phones (`(555) 123-4567`), dates (`Dec 20, 2025 at 8:58`,
`2025-04-28 10:32:05`) and order numbers all make one, so it said "maybe" to nearly every
support text, and the recognizers then found nothing (issues 18 and 24).

The screen now asks what detection asks, in three steps, each broader than the next:

1. A stretch (`stretch_may_hold_value`): every character that can never stand inside a digit
   run (digit_runs.py: only digits, spaces, tabs, `-`, `.`, line breaks and `>` do) ends a
   stretch, the others are deleted; fewer than 9 digits in every stretch, no run of 9 digits,
   nothing to find. One `bytes.translate` and one search, in C. Broader than a digit run
   however the text around is read, so it also serves readings that only approximate the
   text (the JSON fast path's HTML screens, raw JSON bytes).
2. The digit runs themselves: in each such stretch (found with its place, in C), detection's
   own run pattern (digit_runs.DIGIT_RUN); only the rare runs of 9+ digits reach Python.
3. Each such run: is any part of it a candidate at all (`run_may_give_candidate`,
   candidates.py: a 12-19 digit part that is Luhn-valid with a known IIN, a 9-digit group or
   a 3-2-4 grouping in the SSA's ranges, or a whole run of 13-19 digits that could be a weak
   card)? A phone `555-123-4567`, a date-and-time `2025-04-28 10`, an id `2025-12345` are not.

Steps 2 and 3 need the text exactly as detection reads it, so they answer only for plain ASCII
text without a backslash (detection's view of it is itself, but for odd line breaks, read as
detection reads them); anything else (digits of other scripts, invisible format characters,
literal escapes such as `\\u200b` that detection reads as separators) is passed on to detection
as "maybe". The screen works on text as the body codecs decoded it, never on raw bytes that
may hide text in an encoding.
"""

from __future__ import annotations

import re

from redactor.detection.candidates import run_may_give_candidate
from redactor.detection.digit_runs import DIGIT_RUN_ASCII
from redactor.detection.digit_runs import NON_ASCII as _NON_ASCII
from redactor.detection.textview import ends_every_run, has_odd_breaks, view_of

MIN_DIGITS = 9
# Texts longer than this are scanned in windows (redaction/scanning.py), and a window's edge
# can cut a long run into a part that is a candidate on its own: the screen reads such a
# text as with `every_run` (any run of 9+ digits goes on), which holds for every window.
WINDOW_CHARS = 64 * 1024

# What may stand between two digits of one run (digit_runs.py), in ASCII: spaces and tabs,
# `-` and `.`, line breaks and the `>` of quoted lines. VT, FF and a lone CR read as line
# breaks (textview.py). Every other ASCII character ends any run.
_SOFT = b" \t-.\r\n\x0b\x0c>"
# bytes.translate table: a digit becomes "1", a character that ends runs a line break, and
# the soft ones are deleted, so digits only soft characters part become neighbours. Bytes
# >= 0x80 are kept (never "1": callers make non-ASCII characters digits first, or say maybe).
_TABLE = bytes(
    ord("1") if chr(b).isdigit() else b if b in _SOFT else ord("\n") for b in range(128)
) + bytes(range(128, 256))
_NINE = b"1" * MIN_DIGITS

# The same characters, one for one: a digit "1", a soft character "s", any other "x".
_CLASSES = (
    bytes(
        ord("1") if chr(b).isdigit() else ord("s") if b in _SOFT else ord("x") for b in range(128)
    )
    + b"x" * 128
)
_LONG_STRETCH = re.compile(rb"1(?:s*1){%d}[1s]*" % (MIN_DIGITS - 1))
_DIGITS = re.compile("[0-9]+")
# Past this many groups a run is left to detection: the check below is per part, in Python.
_MAX_GROUPS = 256


def may_hold_value(text: str, *, every_run: bool = False) -> bool:
    """False only when `text` certainly holds no card number or SSN; True otherwise.

    `every_run`: True for any digit run of 9+ digits, candidate or not (step 3 left out):
    where the detector records every run it reads for the egress verifier (`Detector.find`'s
    `runs`), a text with such a run must reach it, or the verifier would find a value inside
    a long number that nobody read.
    """
    if len(text) < MIN_DIGITS:
        return False
    if "\\" in text:
        return True
    if not text.isascii():
        plain = as_plain(text)
        if plain is None:
            return True
        text = plain
    return plain_may_hold_value(text, every_run=every_run)


def as_plain(text: str) -> str | None:
    """`text` with each non-ASCII character as `#`, when each is one that detection's view
    keeps as it is and no digit run may hold (`ends_every_run`: `£`, `é`, `’`, `€`, a CJK
    ideograph): its digit runs are those of `text`. None when any other is there (a digit of
    another script, a Unicode space or dash, an invisible character, a combining mark)."""
    if all(map(ends_every_run, set(_NON_ASCII.findall(text)))):
        return _NON_ASCII.sub("#", text)
    return None


def plain_may_hold_value(text: str, *, every_run: bool = False) -> bool:
    """`may_hold_value` for ASCII text without a backslash that the caller vouches is the text
    itself, not an encoding of it (the digit runs are read as detection reads them)."""
    every_run = every_run or len(text) > WINDOW_CHARS
    if text.isdigit():
        # One group (an id, a JSON integer): the run is the text itself.
        if len(text) < MIN_DIGITS:
            return False
        return every_run or run_may_give_candidate((len(text),), text)
    raw = text.encode("ascii")
    if _NINE not in raw.translate(_TABLE, _SOFT):
        return False  # step 1, the cheapest pass: most texts end here
    if has_odd_breaks(text):
        text = view_of(text).text  # VT, FF, a lone CR: line breaks, one for one
        raw = text.encode("ascii")
    # Step 1 again, with positions kept: each stretch of 9+ digits, from its first digit to its last
    # (every run lies inside one stretch, and detection's tokens start afresh in each).
    classes = raw.translate(_CLASSES)
    for stretch in _LONG_STRETCH.finditer(classes):
        for run in DIGIT_RUN_ASCII.finditer(text, stretch.start(), stretch.end()):
            groups = _DIGITS.findall(run.group())
            if sum(map(len, groups)) < MIN_DIGITS:
                continue
            if every_run or len(groups) > _MAX_GROUPS:
                return True
            if run_may_give_candidate([len(g) for g in groups], "".join(groups)):
                return True
    return False


def stretch_may_hold_value(reading: bytes) -> bool:
    """Step 1 alone, for ASCII bytes without a backslash: False when no stretch of characters
    that may stand inside a digit run holds 9 digits. Monotone: it stays broader than
    detection for any reading that keeps every digit and soft character of the text (or
    turns them into digits) and adds only digits or soft characters."""
    return _NINE in reading.translate(_TABLE, _SOFT)


# A mark (NUL) where a reader sees a soft character or nothing (a tag in HTML): "m".
_MARKED_TABLE = bytes([ord("m")]) + _TABLE[1:]
# A stretch of 9+ digits, marks between them allowed: found from its first digit to its last.
_NINE_ACROSS_MARKS = re.compile(rb"1(?:m*1){8,}")


def marked_may_hold_value(text: str, *, every_run: bool = False) -> bool:
    """`plain_may_hold_value` for ASCII text without a backslash in which each NUL marks a
    place where the text as read holds a soft character or nothing, and between two marks is
    exactly the text as read (HTML's text runs with every tag marked: html_body.py).

    A stretch of 9+ digits with a mark between two of its digits is "maybe" (how the mark
    reads decides how its digits group). Every other stretch lies between two marks, where
    the text is exact: each piece is asked as plain text (all three steps)."""
    across = _NINE_ACROSS_MARKS.finditer(text.encode("ascii").translate(_MARKED_TABLE, _SOFT))
    long_stretch = False
    for stretch in across:
        if b"m" in stretch.group():
            return True
        long_stretch = True
    if not long_stretch:
        return False
    return any(
        plain_may_hold_value(piece, every_run=every_run)
        for piece in text.split("\x00")
        if len(piece) >= MIN_DIGITS
    )


# JSON's short escapes (`\n`, `\r`, `\t`, `\b`, `\f`) and `\"`, `\/`: in raw JSON the backslash
# and the escape letters are deleted like soft characters, so digits around an escape stay
# neighbours as they may be in the decoded text (`"` and `/` end a stretch there as in the
# text). In words the same letters then no longer end a stretch, which only makes the answer
# "maybe" more often.
_RAW_JSON_SOFT = _SOFT + b"\\nrtbf"


def raw_json_may_hold_value(raw: bytes) -> bool:
    """`stretch_may_hold_value` for the raw bytes of an ASCII JSON document whose only escapes
    are the short ones and `\\"`, `\\/` (the caller checks): True when any of its texts may
    hold a value."""
    return _NINE in raw.translate(_TABLE, _RAW_JSON_SOFT)
