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

from redactor.detection.digit_runs import NON_ASCII as _NON_ASCII

# Unicode 14 category Cf, as ranges (tests check them against `unicodedata`).
FORMAT_CHAR_RANGES = (
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip
_FORMAT_CHAR = re.compile(
    "[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in FORMAT_CHAR_RANGES) + "]"
)
_FORMAT_CHARS = frozenset(chr(c) for lo, hi in FORMAT_CHAR_RANGES for c in range(lo, hi + 1))
_UNICODE_ESCAPE = re.compile(r"\\u[0-9A-Fa-f]{4}")
# `\n`, `\r`, `\t` written out: the line break or space they stand for, same length.
_CONTROL_ESCAPE = re.compile(r"\\[nrt]")
_CONTROL_FILL = {"\\n": " \n", "\\r": "  ", "\\t": "  "}
# What a `\uXXXX` escape reads as: six characters that are neither digit, letter nor separator.
_ESCAPE_FILL = "\x00" * 6


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
    """The text detection reads for `text` (itself, unless it holds escapes or Cf chars)."""
    if "\\" in text:
        text = _UNICODE_ESCAPE.sub(_ESCAPE_FILL, text)
        text = _CONTROL_ESCAPE.sub(lambda m: _CONTROL_FILL[m.group()], text)
    if text.isascii():
        return TextView(text)
    # Its few non-ASCII characters, once: both questions below are asked of them only.
    non_ascii = _NON_ASCII.findall(text)
    ascii_digits = not any(map(str.isdecimal, non_ascii))
    if _FORMAT_CHARS.isdisjoint(non_ascii):
        return TextView(text, None, ascii_digits)
    origin: list[int] = []
    pieces: list[str] = []
    pos = 0
    for m in _FORMAT_CHAR.finditer(text):
        s = m.start()
        pieces.append(text[pos:s])
        origin.extend(range(pos, s))
        pos = m.end()
    pieces.append(text[pos:])
    origin.extend(range(pos, len(text)))
    return TextView("".join(pieces), tuple(origin), ascii_digits)
