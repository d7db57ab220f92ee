"""Plain text bodies, and the charset handling every codec shares.

Decoding rule (fail closed), in the WHATWG order:
- a byte order mark decides (UTF-8, UTF-16BE, UTF-16LE), whatever is declared: that is what a
  browser does; the mark stays in the text (U+FEFF), so encoding back gives it back;
- else a *declared* charset is decoded strictly, so undecodable bytes raise
  BodyUnparseableError instead of slipping through unscanned;
- else ISO-2022 escape sequences make it ISO-2022-JP-2 text (its full-width digits are `#4`
  in the raw bytes), and NUL bytes (UTF-16/32 without a mark) are refused with 415;
- else UTF-8 with `surrogateescape`: stray bytes of an ASCII-compatible charset become lone
  surrogates, digits stay digits, and encoding back gives the exact input bytes.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence

from redactor.bodies.folding import UnfoldedView
from redactor.bodies.segments import (
    Edit,
    PlainView,
    Segment,
    TextView,
    apply_edits,
    has_edits,
    neighbours_of,
)
from redactor.errors import BodyUnparseableError, RedactorError, UndeclaredCharsetError

# Python "text encodings" that are really transforms: a declared charset must never make
# `\u0034` or punycode decode to digits we then fail to find in the raw bytes.
_REFUSED_CODECS = frozenset(
    {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined"}
)


def resolve_charset(charset: str) -> str:
    """Return the Python codec name for a declared charset. Raises BodyUnparseableError."""
    try:
        info = codecs.lookup(charset.strip().strip('"').strip("'"))
    except (LookupError, ValueError):
        raise BodyUnparseableError("unknown charset") from None
    if info.name.replace("-", "_") in _REFUSED_CODECS:
        raise BodyUnparseableError("unknown charset")
    return info.name


def decode_text(raw: bytes, charset: str | None) -> tuple[str, str, str]:
    """Decode `raw`; return (text, codec, errors) for encoding it back.

    Raises BodyUnparseableError for an unknown charset or bytes invalid in a declared one.
    """
    bom_codec = next((codec for bom, codec in _BOMS if raw.startswith(bom)), None)
    if bom_codec is not None:
        charset = bom_codec
    elif charset is None or not charset.strip():
        return _undeclared(raw)
    codec = resolve_charset(charset)
    try:
        return raw.decode(codec), codec, "strict"
    except (UnicodeDecodeError, ValueError):
        raise BodyUnparseableError("bytes are invalid in the declared charset") from None


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
# ESC $ and ESC ( designations: ISO-2022-JP and its relatives switching character sets.
_ISO_2022_ESCAPES = (b"\x1b$", b"\x1b(", b"\x1b.")


def looks_like_utf16(raw: bytes) -> bool:
    """NUL bytes at every other position, as UTF-16 (or UTF-32) text of ASCII characters has
    them: most of one parity of the first 512 bytes, at least 8 of them."""
    head = raw[:512]
    if head.count(0) < 8:
        return False
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return max(even, odd) >= 0.8 * (len(head) // 2)


def looks_like_iso2022(raw: bytes) -> bool:
    """An ISO-2022 designation escape (ESC $, ESC (, ESC .) somewhere in the bytes."""
    return b"\x1b" in raw and any(e in raw for e in _ISO_2022_ESCAPES)


def _undeclared(raw: bytes) -> tuple[str, str, str]:
    if b"\x00" in raw and looks_like_utf16(raw):
        raise UndeclaredCharsetError()
    if looks_like_iso2022(raw):
        try:
            return raw.decode("iso2022_jp_2"), "iso2022_jp_2", "strict"
        except UnicodeDecodeError:
            raise UndeclaredCharsetError() from None
    return raw.decode("utf-8", "surrogateescape"), "utf-8", "surrogateescape"


def encode_text(text: str, codec: str, errors: str) -> bytes:
    """Encode rebuilt text. Raises RedactorError (500) if a replacement cannot be encoded."""
    try:
        return text.encode(codec, errors)
    except (UnicodeEncodeError, ValueError):
        # Only our replacements can be unencodable (the rest was decoded from this charset).
        raise RedactorError("replacement is not encodable in the body charset") from None


class TextBody:
    """A body that is one decoded string; a view over it supplies the segments."""

    __slots__ = ("_codec", "_errors", "_raw", "_text", "_view")

    def __init__(self, raw: bytes, text: str, codec: str, errors: str, view: TextView) -> None:
        self._raw = raw
        self._text = text
        self._codec = codec
        self._errors = errors
        self._view = view

    @property
    def segments(self) -> Sequence[Segment]:
        """The view's segments."""
        return self._view.segments

    @property
    def neighbours(self) -> Sequence[tuple[int, ...]]:
        """The view's runs of neighbouring pieces (segment indices)."""
        return neighbours_of(self._view)

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> bytes:
        """Return the input bytes with edits applied; exactly the input when there are none.

        Raises ValueError for invalid edits, RedactorError for an unencodable replacement.
        """
        if not has_edits(edits):
            return self._raw
        new_text = apply_edits(self._text, self._view.source_edits(edits))
        return encode_text(new_text, self._codec, self._errors)


def parse_text(
    body: bytes, charset: str | None = None, *, kind: str = "text", folded: bool = False
) -> TextBody:
    """Parse a text body as one segment (unfolded for iCalendar and vCard: `folded`).
    Raises BodyUnparseableError for a bad declared charset."""
    text, codec, errors = decode_text(body, charset)
    view = UnfoldedView(text, "body", kind) if folded else PlainView(text, "body", kind)
    return TextBody(body, text, codec, errors, view)
