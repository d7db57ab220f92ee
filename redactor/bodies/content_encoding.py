"""HTTP Content-Encoding (RFC 9110 section 8.4): gzip, deflate, identity.

The body is decoded before parsing and encoded again only when it changed: with no edits the
exact input bytes go upstream. Decoding is bounded by `max_decoded_bytes`, so a small
compressed body cannot expand into gigabytes (a decompression bomb).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from redactor.bodies.segments import (
    Edit,
    ParsedBody,
    Segment,
    has_edits,
    neighbours_of,
    rebuild_stripped,
    unread_parts_of,
)
from redactor.errors import BodyTooLargeError, BodyUnparseableError, UnsupportedMediaTypeError

__all__ = [
    "DEFAULT_MAX_DECODED_BYTES",
    "EncodedBody",
    "UnsupportedContentEncodingError",
    "decode_content",
    "encode_content",
]

DEFAULT_MAX_DECODED_BYTES = 10 * 1024 * 1024

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
_ALIASES = {"x-gzip": "gzip"}


class UnsupportedContentEncodingError(UnsupportedMediaTypeError):
    """The body uses a Content-Encoding we cannot decode (415, RFC 9110 section 15.5.16).

    Lives here until errors.py gains it; it is a BodyError, so the middleware maps it already.
    """

    code = "unsupported_content_encoding"
    message = "content encoding is not supported"


def _codings(content_encoding: str | None) -> list[str]:
    if content_encoding is None:
        return []
    names = [
        _ALIASES.get(n.strip().lower(), n.strip().lower()) for n in content_encoding.split(",")
    ]
    codings = [n for n in names if n and n != "identity"]
    for name in codings:
        if name not in ("gzip", "deflate"):
            raise UnsupportedContentEncodingError()
    return codings


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """Decompress every member of `data`, never producing more than `limit` bytes."""
    output: list[bytes] = []
    produced = 0
    remaining = data
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(remaining, limit - produced + 1)
        except zlib.error:
            raise BodyUnparseableError("corrupt compressed body") from None
        produced += len(chunk)
        if produced > limit or inflater.unconsumed_tail:
            raise BodyTooLargeError("decoded body exceeds the limit")
        output.append(chunk)
        if not inflater.eof:
            raise BodyUnparseableError("truncated compressed body")
        remaining = inflater.unused_data
        # gzip allows concatenated members (RFC 1952 section 2.2); zlib/deflate do not.
        if not remaining or wbits != _GZIP_WBITS:
            if remaining:
                raise BodyUnparseableError("trailing data after compressed body")
            return b"".join(output)


def decode_content(
    body: bytes, content_encoding: str | None, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
) -> tuple[bytes, list[tuple[str, int]]]:
    """Undo the content codings; return (decoded, [(coding, wbits)] in the order applied).

    Raises UnsupportedContentEncodingError, BodyUnparseableError (corrupt or truncated data)
    or BodyTooLargeError (more than `max_decoded_bytes` after decoding).
    """
    applied: list[tuple[str, int]] = []
    data = body
    for coding in reversed(_codings(content_encoding)):
        if coding == "gzip":
            wbits = _GZIP_WBITS
        else:
            # "deflate" means the zlib format (RFC 9110 section 8.4.1.2), but some senders use
            # raw deflate; the first two bytes tell them apart, and we answer in kind.
            wbits = (
                _ZLIB_WBITS
                if len(data) >= 2 and (data[0] << 8 | data[1]) % 31 == 0
                else _RAW_DEFLATE_WBITS
            )
        data = _inflate(data, wbits, max_decoded_bytes)
        applied.insert(0, (coding, wbits))
    if len(data) > max_decoded_bytes:
        raise BodyTooLargeError("decoded body exceeds the limit")
    return data, applied


def encode_content(data: bytes, applied: Sequence[tuple[str, int]]) -> bytes:
    """Apply the codings again, in the order the sender applied them."""
    for _coding, wbits in applied:
        # gzip header mtime is 0 (no clock in a pure codec; RFC 1952 allows "no time stamp").
        deflater = zlib.compressobj(6, zlib.DEFLATED, wbits)
        data = deflater.compress(data) + deflater.flush()
    return data


class EncodedBody:
    """A content-encoded body: parse and edit the decoded form, re-encode only when changed."""

    __slots__ = ("_applied", "_inner", "_raw")

    def __init__(self, raw: bytes, applied: Sequence[tuple[str, int]], inner: ParsedBody) -> None:
        self._raw = raw
        self._applied = tuple(applied)
        self._inner = inner

    @property
    def segments(self) -> Sequence[Segment]:
        """The decoded body's segments."""
        return self._inner.segments

    @property
    def neighbours(self) -> Sequence[tuple[int, ...]]:
        """The decoded body's runs of neighbouring pieces (segment indices)."""
        return neighbours_of(self._inner)

    @property
    def unread_parts(self) -> Sequence[Any]:
        """The decoded body's parts that are not text (attachments.UnreadPart)."""
        return unread_parts_of(self._inner)

    def rebuild(
        self, edits: Mapping[int, Sequence[Edit]], strip: frozenset[int] = frozenset()
    ) -> bytes:
        """The input bytes when there are no edits and nothing to strip, else the re-encoded
        rebuilt body.

        Raises ValueError for invalid edits.
        """
        if not has_edits(edits) and not strip:
            return self._raw
        return encode_content(rebuild_stripped(self._inner, edits, strip), self._applied)
