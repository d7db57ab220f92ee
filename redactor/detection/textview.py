"""The text detection reads, and how its offsets map back to the text it was given.

Two things hide a number from a scan that reads characters as typed:
- invisible format characters (Unicode category Cf: zero-width space, (non-)joiners, word
  joiner, soft hyphen, BOM, direction marks) typed or pasted between digits
  (`4111<U+200B>1111...`): they are left out of the view, and a span found in the view is
  widened back over them, so it still covers every character of the original number;
- escapes written out literally, as when a form field carries a JSON document or a log line is
  pasted: a `\\uXXXX` escape is an escaped character, never four digits of a run, so it reads
  as one opaque non-letter; `\\n`, `\\r` and `\\t` read as the line break or spaces they
  stand for, so `4111\\n1111\\n...` is one number split over lines (same lengths: offsets
  unchanged).
"""

from __future__ import annotations

import re
import unicodedata

from redactor.detection.digit_runs import NON_ASCII as _NON_ASCII
from redactor.detection.digit_runs import SEPARATOR_PATTERN
from redactor.detection.unicode_tables import (
    DASH_NEXT_TO_DIGIT,
    IGNORABLE_RANGES,
    char_class,
    chars,
    view_table,
)

# Unicode 14 category Cf, as ranges (tests check them against `unicodedata`).
FORMAT_CHAR_RANGES = (
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip
_FORMAT_CHARS = frozenset(chr(c) for lo, hi in FORMAT_CHAR_RANGES for c in range(lo, hi + 1))
_UNICODE_ESCAPE = re.compile(r"\\u[0-9A-Fa-f]{4}")
# `\n`, `\r`, `\t` written out: the line break or space they stand for, same length.
_CONTROL_ESCAPE = re.compile(r"\\[nrt]")
_CONTROL_FILL = {"\\n": " \n", "\\r": "  ", "\\t": "  "}
# What a `\uXXXX` escape reads as: six characters that are neither digit, letter nor separator.
_ESCAPE_FILL = "\x00" * 6
# VT, FF and a CR not followed by LF are line breaks too (a lone CR is the old Mac's newline).
_ODD_BREAK = re.compile("\r(?!\n)|[\x0b\x0c]")
_LONE_CR = re.compile("\r(?!\n)")
_VIEW_TABLE = view_table()
_MAPPED = frozenset(map(chr, _VIEW_TABLE))
_KANA_DASHES = frozenset(DASH_NEXT_TO_DIGIT)
_KANA_DASH = re.compile(f"(?<=\\d)[{DASH_NEXT_TO_DIGIT}]|[{DASH_NEXT_TO_DIGIT}](?=\\d)")
# Read as nothing: format characters (Cf) and every other default-ignorable code point.
_INVISIBLE = _FORMAT_CHARS | chars(IGNORABLE_RANGES)
_INVISIBLE_RUN = re.compile(char_class(FORMAT_CHAR_RANGES + IGNORABLE_RANGES) + "+")
_DIGIT_THEN_NON_ASCII = re.compile(r"\d([^\x00-\x7f]+)")
_MARK_OR_INVISIBLE: dict[str, bool] = {}
_MARK_CACHE_MAX = 1 << 16
# A character a digit run may hold: a digit, or one of its separators' characters.
_RUN_CHARACTER = re.compile(f"\\d|{SEPARATOR_PATTERN}")


class TextView:
    """`text` as detection reads it; `origin[i]` is where view character i sits in the source.

    Built for every non-ASCII message: a plain slotted class (a frozen dataclass costs three
    times as much to build). Treat it as immutable all the same.
    """

    __slots__ = ("ascii_digits", "origin", "text")

    def __init__(
        self, text: str, origin: tuple[int, ...] | None = None, ascii_digits: bool = True
    ) -> None:
        self.text = text
        self.origin = origin
        # Every digit of `text` is ASCII: digit_runs.py can scan it with a byte class.
        self.ascii_digits = ascii_digits

    def span_in_source(self, start: int, end: int) -> tuple[int, int]:
        """The source span of view span [start, end): it covers the invisible characters
        between, never those outside."""
        if self.origin is None:
            return start, end
        return self.origin[start], self.origin[end - 1] + 1


def view_of(text: str) -> TextView:
    """The text detection reads for `text`: the same text unless it holds escapes, line breaks
    other than LF, Unicode spaces, dashes or digit forms (read as their ASCII kin, one for
    one), or invisible characters (left out, `origin` maps back)."""
    if "\\" in text:
        text = _UNICODE_ESCAPE.sub(_ESCAPE_FILL, text)
        text = _CONTROL_ESCAPE.sub(lambda m: _CONTROL_FILL[m.group()], text)
    if text.isascii():
        if has_odd_breaks(text):
            text = _ODD_BREAK.sub("\n", text)
        return TextView(text)
    # Its few non-ASCII characters, once: the questions below are asked of them only.
    non_ascii = set(_NON_ASCII.findall(text))
    if not _MAPPED.isdisjoint(non_ascii):
        text = text.translate(_VIEW_TABLE)
        non_ascii = set(_NON_ASCII.findall(text))
    if not _KANA_DASHES.isdisjoint(non_ascii):
        text = _KANA_DASH.sub("-", text)
    if has_odd_breaks(text):
        text = _ODD_BREAK.sub("\n", text)
    ascii_digits = not any(map(str.isdecimal, non_ascii))
    cut = _removed_spans(text) if not _INVISIBLE.isdisjoint(non_ascii) else []
    if any(map(_mark_or_invisible, non_ascii)):
        cut += _marks_after_digits(text)
    if not cut:
        return TextView(text, None, ascii_digits)
    origin: list[int] = []
    pieces: list[str] = []
    pos = 0
    for start, end in sorted(cut):
        if end <= pos:
            continue
        start = max(start, pos)
        pieces.append(text[pos:start])
        origin.extend(range(pos, start))
        pos = end
    pieces.append(text[pos:])
    origin.extend(range(pos, len(text)))
    return TextView("".join(pieces), tuple(origin), ascii_digits)


_ENDS_EVERY_RUN: dict[str, bool] = {}


def ends_every_run(char: str) -> bool:
    """True for a non-ASCII character that `view_of` keeps as it is, in place, and that no
    digit run may hold (digit_runs.py): a letter, a symbol or a punctuation mark that is not
    a digit, a digit form, a space, a dash, a line break, invisible or a combining mark. In
    the view of a text whose non-ASCII characters all are such, each reads as any other
    character that ends runs (the text screen reads it as `#`: screen.py)."""
    found = _ENDS_EVERY_RUN.get(char)
    if found is None:
        found = (
            unicodedata.category(char)[0] in "LSP"
            and not char.isdigit()
            and not char.isnumeric()
            and not char.isspace()
            and char not in _MAPPED
            and char not in _KANA_DASHES
            and char not in _INVISIBLE
            and _RUN_CHARACTER.match(char) is None
        )
        if len(_ENDS_EVERY_RUN) < _MARK_CACHE_MAX:
            _ENDS_EVERY_RUN[char] = found
    return found


def has_odd_breaks(text: str) -> bool:
    """VT, FF or a CR that is not part of CRLF: each reads as a line break."""
    return "\x0b" in text or "\x0c" in text or ("\r" in text and _LONE_CR.search(text) is not None)


def _removed_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _INVISIBLE_RUN.finditer(text)]


def _mark_or_invisible(char: str) -> bool:
    found = _MARK_OR_INVISIBLE.get(char)
    if found is None:
        found = char in _INVISIBLE or unicodedata.category(char)[0] == "M"
        # Asked once per distinct character (a text's few non-ASCII characters recur); the
        # cache is bounded so a body of every code point cannot grow it without end.
        if len(_MARK_OR_INVISIBLE) < _MARK_CACHE_MAX:
            _MARK_OR_INVISIBLE[char] = found
    return found


def _marks_after_digits(text: str) -> list[tuple[int, int]]:
    """Combining marks (and invisibles) right after a digit: a keycap `1<VS16><U+20E3>` or an
    accent typed on a digit reads as the digit."""
    spans: list[tuple[int, int]] = []
    for m in _DIGIT_THEN_NON_ASCII.finditer(text):
        start = end = m.start(1)
        for char in m.group(1):
            if not _mark_or_invisible(char):
                break
            end += 1
        if end > start:
            spans.append((start, end))
    return spans
