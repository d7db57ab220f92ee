"""Every way a plausible reader may read outgoing bytes, walked with bounds.

A reading is bytes or text plus the path of decodings that produced it (`body>gzip>json>base64`).
Each text reading is normalized and searched for strong evidence; then each decoding whose
marker is present opens a deeper reading. Markers are tested with `in` and one-pass C
translations first, so the common message (ASCII JSON, no long digit stretch, no escape that
could hide one) costs a few passes over its bytes.

The readings, deliberately more generous than any one reader:
- bytes: gzip and zlib by magic whatever the headers say; raw deflate (and brotli, when a
  module for it is installed) on bytes that are not text; MIME parts through the stdlib
  `email` parser whatever their declared type (payloads decoded by their transfer encoding);
  charset by BOM (UTF-8/16/32), UTF-16/32 by the NUL pattern, UTF-8, latin-1 as the fallback;
- text: NFKC with every decimal digit mapped and Default_Ignorable characters removed; JSON
  (strings and keys of a document or JSON lines) whatever the content type; percent- and
  `+`-decoding (forms, URLs); HTML as a browser renders it; base64 and quoted-printable blobs;
  `data:` URIs.

Paths are built from the labels in this module only, never from the message.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.parser
import email.policy
import html
import io
import json
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote_to_bytes

from redactor.egress import evidence
from redactor.egress.evidence import could_hold, find_strong, normalize_encoded
from redactor.errors import UnverifiableMessageError

try:  # brotli is optional: without it a body declared `br` cannot be verified (refused)
    import brotli  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

__all__ = ["Check", "EgressLimits", "Reader"]

# (kind, digits, reading path, inside a longer chain): raises when the value may not leave.
Check = Callable[[str, str, str, bool], None]


@dataclass(frozen=True, slots=True)
class EgressLimits:
    """Bounds on the work of verifying one message; past any of them it is refused."""

    max_depth: int = 8
    # An answer listing thousands of mixed-case ids (`cus_NffrFeUfNV2Hib`) decodes each as a
    # base64 candidate: readings are many and cheap, the decoded size is what bounds the work.
    max_readings: int = 50_000
    # Every byte and character read, over all readings: a zip bomb or a base64 nest past this
    # is refused rather than read. `for_message` scales it to the message.
    max_decoded_bytes: int = 64 * 1024 * 1024

    @classmethod
    def for_message(cls, size: int) -> EgressLimits:
        """Limits for a message of `size` bytes: a large HTML e-mail with escapes is read a
        few times over (raw, percent, HTML, quoted-printable), so the bound grows with it."""
        if 8 * size <= _DEFAULT_MAX_DECODED:
            return _DEFAULT_LIMITS  # frozen: one instance serves every message up to 8 MiB
        return cls(max_decoded_bytes=8 * size)


_DEFAULT_LIMITS = EgressLimits()
_DEFAULT_MAX_DECODED = _DEFAULT_LIMITS.max_decoded_bytes


# --- markers --------------------------------------------------------------------------------

_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# A form field whose value holds a `+` (no space, `&` or `=` in the value: form-encoded).
_FORM_PLUS = re.compile(r"[A-Za-z0-9_.\-\[\]]+=[^\s&=]*\+")
_QP = re.compile(r"=(?:[0-9A-Fa-f]{2}|\r?\n)")
_TAG = re.compile(r"<[A-Za-z!/?]")
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]{1,31});?")
_MARKUP = re.compile(r"<!--.*?(?:-->|\Z)|<[A-Za-z!/?][^>]*(?:>|\Z)", re.DOTALL)
# Markup that hides content (its text is dropped by a browser, so the digits around it join).
_HIDING = re.compile(
    r"(?i)hidden|display|visibility|opacity|font-size|<script|<style|<template|<noscript"
    r"|<head|<title|<object|<iframe"
)
# Base64 blobs are found in C passes: a translation to classes ("U" upper, "l" lower, "d"
# digits and the rest of both alphabets, with `\\` and line breaks so a blob goes on over
# JSON's `\/` and `\n` and over MIME's line breaks; " " for everything else), then a literal
# search for a lowercase letter before an uppercase one, which base64 of text always holds
# (`NDExMTEx`) and prose, dates and ids seldom do. Only the run around such a step, when 16+
# long (12 bytes, fewer than any strong value with its separators), is decoded. A regex over
# the text itself costs five times more. The search starts at the uppercase letter and looks
# back: sre skips ahead to its first literal, and lowercase letters are most of any prose,
# uppercase ones a few percent (a 20 KB e-mail thread: 68 -> 26 us for this search).
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
_B64_CLASSES = bytes(
    ord("U") if 65 <= b <= 90
    else ord("l") if 97 <= b <= 122
    else ord("d") if b in _B64_ALPHABET or b in b"\\\r\n"
    else ord(" ")
    for b in range(256)
)  # fmt: skip
_B64_STEP = re.compile(rb"U(?<=lU)")  # matches at the "U": the step starts one byte before
_B64_MIN_RUN = 16
_B64_STRIP = bytes.maketrans(b"-_", b"+/")
# JSON's short escapes: their letters stand for separators (`4111\n1111`), so the marker test
# deletes them like separators; broader than the decoding, never narrower.
_JSON_TABLE = bytes(
    ord("1") if chr(b).isdigit() else ord("\n") if chr(b).isalpha() else b for b in range(128)
) + bytes(range(128, 256))
_JSON_DELETE = bytes(b for b in range(128) if not chr(b).isalnum()) + b"nrtbf"
_JSON_DELETE_WIDE = _JSON_DELETE + bytes(range(128, 256))
_NINE = b"1" * 9
# No reading of fewer characters can spell nine digits (no decoding here expands short input:
# the smallest gzip stream is 18 bytes).
_MIN_CHARS = 9
_MIN_DIGITS = 9
_LATIN1_DIGITS = b"0123456789\xb2\xb3\xb9"
_MAX_ZIP_MEMBERS = 500
_ANY_DIGIT = re.compile(r"\d")
# The fullwidth digits ０-９ in Shift_JIS, in the EUC family (EUC-JP, EUC-KR, GB 2312 and
# GB18030) and in Big5; the charsets that read them.
_LEGACY_DIGIT = re.compile(rb"\x82[\x4f-\x58]|\xa3[\xb0-\xb9]|\xa2[\xaf-\xb8]")
_LEGACY_LEADS = b"\x82\xa2\xa3"
_LEGACY_CHARSETS = ("shift_jis", "euc_jp", "gb18030", "big5", "euc_kr")
# Between JSON strings: a letter, so no chain runs from one into the next.
_JOIN = "\n|j|\n"
_UNICODE_ESCAPE_BYTES = re.compile(rb"\\u")
_ESCAPE_START_BYTES = re.compile(rb"\\[ux]")
_FIRST_BOUNDARY = re.compile(rb"(?m)^--([^\s]{1,200})\r?$")

_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd details dialog div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table "
    "tbody td tfoot th thead tr ul caption option".split()
)
_STYLE_SHEET = re.compile(r"(?i)<style|<link[^>]+stylesheet")
_HIDDEN_TAGS = frozenset("script style template noscript head title object iframe".split())
_VOID_TAGS = frozenset("area base br col embed hr img input link meta source track wbr".split())
_HIDING_STYLE = re.compile(
    r"(?i)display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|opacity\s*:\s*0(?:\.0*)?\s*(?:;|$)"
    r"|font-size\s*:\s*0(?:px|pt|em|rem|%)?\s*(?:;|$)"
)


class _Renderer(HTMLParser):
    """Text as a browser shows it: hidden elements and comments dropped, block tags as line
    breaks, other tags as nothing, character references decoded."""

    def __init__(self, *, styled_hidden: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._hidden: list[str] = []
        # No CSS engine here: a style sheet may hide any element with a class or an id. The
        # second rendering takes every such element for hidden, the way a sheet could.
        self._styled_hidden = styled_hidden

    def _hides(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in _HIDDEN_TAGS:
            return True
        for name, value in attrs:
            if self._styled_hidden and name in ("class", "id"):
                return True
            if name == "hidden" or (name == "aria-hidden" and value == "true"):
                return True
            if name == "style" and value and _HIDING_STYLE.search(value):
                return True
            if name == "type" and value == "hidden":
                return True
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._hidden:
            if tag not in _VOID_TAGS:
                self._hidden.append(tag)
            return
        if tag not in _VOID_TAGS and self._hides(tag, attrs):
            self._hidden.append(tag)
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._hidden and tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._hidden:
            # Close up to the matching open tag (browsers tolerate unclosed inner tags).
            if tag in self._hidden:
                while self._hidden and self._hidden.pop() != tag:
                    pass
            return
        if tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.out.append(data)


def _render_html(text: str, *, styled_hidden: bool = False) -> str:
    parser = _Renderer(styled_hidden=styled_hidden)
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError):
        # html.parser gives up on some malformed markup; what it rendered so far stands,
        # and the raw text is read too.
        pass
    return "".join(parser.out)


def _json_strings(doc: Any) -> list[str]:
    out: list[str] = []
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                out.append(key)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, int | float) and not isinstance(item, bool):
            # A number as a reader writes it (`4.111111111111111e15` is a card too).
            out.append(
                str(int(item)) if isinstance(item, float) and item.is_integer() else str(item)
            )
    return out


def _charset_readings(data: bytes) -> list[tuple[str, str]]:
    """(label, text) for each charset a reader may pick for these bytes."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        codec = "utf-32-le" if data[0] == 0xFF else "utf-32-be"
        return [(">" + codec, data[4:].decode(codec, "replace"))]
    if data.startswith(b"\xef\xbb\xbf"):
        return [(">utf-8", data[3:].decode("utf-8", "replace"))]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16-le" if data[0] == 0xFF else "utf-16-be"
        return [(">" + codec, data[2:].decode(codec, "replace"))]
    readings: list[tuple[str, str]] = []
    if b"\x00" in data:
        # No BOM, but NULs: UTF-16 or UTF-32 text has them in a pattern (every second or
        # fourth byte of ASCII). Read every layout that fits; latin-1 below reads the rest.
        sample = data[:4096]
        for codec, step, offset in (
            ("utf-16-le", 2, 1), ("utf-16-be", 2, 0), ("utf-32-le", 4, 3), ("utf-32-be", 4, 0),
        ):  # fmt: skip
            lane = sample[offset::step]
            if lane and lane.count(0) * 2 >= len(lane):
                readings.append((">" + codec, data.decode(codec, "replace")))
    try:
        readings.append(("", data.decode("utf-8")))
    except UnicodeDecodeError:
        readings.append((">latin-1", data.decode("latin-1")))
        readings.append((">utf-8", data.decode("utf-8", "replace")))
    return readings


def _legacy_digits(data: bytes) -> bool:
    """Nine or more fullwidth digits in a double-byte charset. Each starts with one of three
    lead bytes: counted first in one C pass (`_LEGACY_DIGIT` starts with a class, tried at
    every byte: ~0.6 ms on a 20 KB UTF-8 thread)."""
    if evidence.SHORTCUTS and len(data) - len(data.translate(None, _LEGACY_LEADS)) < _MIN_DIGITS:
        return False
    return len(_LEGACY_DIGIT.findall(data)) >= _MIN_DIGITS


def _may_be_mime(data: bytes) -> bool:
    # `b"\n" in` is one memchr; a JSON body has no raw line break and skips the slower search.
    return data.startswith(b"--") or (b"\n" in data and b"\n--" in data)


def _all_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return _has_text_layout(data)
    return True


def _has_text_layout(data: bytes) -> bool:
    """A BOM or the NUL pattern of UTF-16/32 text."""
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return True
    sample = data[:4096]
    return any(
        lane and lane.count(0) * 2 >= len(lane)
        for lane in (sample[1::2], sample[0::2], sample[3::4], sample[0::4])
    ) and sample.count(0) * 4 >= len(sample)


def _looks_like_text(data: bytes) -> bool:
    sample = data[:512]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        return exc.start >= len(sample) - 3
    return b"\x00" not in sample


class Reader:
    """Reads one outgoing message every way; `check` is called for each strong value."""

    __slots__ = ("_check", "_decoded", "_done", "_limits", "_readings")

    def __init__(self, check: Check, limits: EgressLimits | None = None) -> None:
        self._check = check
        self._limits = limits or EgressLimits()
        self._readings = 0
        self._decoded = 0
        # Texts already read: two decodings in either order often give the same text.
        self._done: set[int] = set()

    def _enter(self, path: str, depth: int, size: int) -> None:
        self._readings += 1
        self._decoded += size
        limits = self._limits
        if (
            depth > limits.max_depth
            or self._readings > limits.max_readings
            or self._decoded > limits.max_decoded_bytes
        ):
            raise UnverifiableMessageError(path)

    def _room(self) -> int:
        return max(0, self._limits.max_decoded_bytes - self._decoded)

    # --- bytes ------------------------------------------------------------------------------

    def read_bytes(
        self,
        data: bytes,
        path: str,
        depth: int = 0,
        *,
        boundary: bytes | None = None,
        binary_part: bool = False,
    ) -> None:
        """Read bytes: compressed layers, MIME parts, then every plausible charset.

        `binary_part`: a MIME part declared with a non-text type. When its bytes are not text
        either (a PDF, an image, an archive), only its compressed layers are read: what such a
        part holds is for the route's policy on parts redactor cannot read (issue 18, item 9),
        not for this reader. Its bytes are read as text when they are text.
        """
        if len(data) < _MIN_CHARS:
            return
        self._enter(path, depth, len(data))
        # UTF-16/32 text of ASCII characters is ASCII bytes too, with NULs: such bytes take
        # the charset readings below (the NUL pattern), not the ASCII shortcut.
        if data.isascii() and b"\x00" not in data:
            # Parts first: a value in a part is then named by the part's reading.
            if boundary is not None or _may_be_mime(data):
                self._read_mime(data, path, depth, boundary)
            self.read_text(data.decode("ascii"), path, depth, counted=True)
            return
        if data.startswith(b"\x1f\x8b"):
            self._inflate(data, path + ">gzip", depth, 16 + zlib.MAX_WBITS)
        elif len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
            self._inflate(data, path + ">zlib", depth, zlib.MAX_WBITS)
        elif data.startswith(b"PK\x03\x04"):
            self._unzip(data, path + ">zip", depth)
        text_like = _looks_like_text(data)
        if not text_like:
            # Compressed bytes need not carry a magic number: raw deflate, brotli.
            self._inflate(data, path + ">deflate", depth, -zlib.MAX_WBITS, quiet=True)
            if brotli is not None:
                self._unbrotli(data, path + ">br", depth, quiet=True)
        mime = boundary is not None or _may_be_mime(data)
        if mime and self._read_mime(data, path, depth, boundary) and not _all_text(data):
            # A multipart body with binary parts: each part was read on its own terms.
            return
        if _legacy_digits(data):
            # Fullwidth digits in a double-byte charset a mail client or an editor sniffs when
            # none is declared: as UTF-8 or latin-1 they are no digits at all. Read whatever
            # the part's declared type (an attachment opened in a text editor).
            for codec in _LEGACY_CHARSETS:
                self.read_text(data.decode(codec, "replace"), f"{path}>{codec}", depth)
        if not text_like and not _has_text_layout(data):
            if binary_part:
                return
            # Bytes that are no text in any charset (decoded base64 of an id, an image): as
            # latin-1 their digits are their ASCII digit bytes (and three superscripts), as
            # UTF-8 those and other scripts' digits; with fewer than nine, no reading spells
            # a value.
            if len(data) - len(data.translate(None, _LATIN1_DIGITS)) < _MIN_DIGITS and (
                len(_ANY_DIGIT.findall(data.decode("utf-8", "replace"))) < _MIN_DIGITS
            ):
                return
        for label, text in _charset_readings(data):
            self.read_text(text, path + label, depth)

    def decode_layer(self, data: bytes, coding: str, path: str, depth: int) -> bytes:
        """One declared Content-Encoding layer undone, bounded; raises when it cannot be."""
        coding = coding.strip().lower()
        if coding in ("", "identity"):
            return data
        try:
            if coding in ("gzip", "x-gzip"):
                return self._decompress(data, 16 + zlib.MAX_WBITS, path)
            if coding == "deflate":
                try:
                    return self._decompress(data, zlib.MAX_WBITS, path)
                except zlib.error:
                    return self._decompress(data, -zlib.MAX_WBITS, path)
            if coding == "br" and brotli is not None:
                return self._brotli(data, path)
        except (zlib.error, OSError, ValueError):
            raise UnverifiableMessageError(path) from None
        except Exception:  # noqa: BLE001 - brotli's own error type: cannot be verified
            raise UnverifiableMessageError(path) from None
        raise UnverifiableMessageError(path)

    def _decompress(self, data: bytes, wbits: int, path: str) -> bytes:
        out: list[bytes] = []
        room = self._room()
        while data:
            inflater = zlib.decompressobj(wbits)
            chunk = inflater.decompress(data, room + 1)
            out.append(chunk)
            room -= len(chunk)
            if room < 0 or inflater.unconsumed_tail:
                raise UnverifiableMessageError(path)
            # gzip allows several members one after the other; readers join them.
            data = inflater.unused_data if wbits > 16 else b""
        return b"".join(out)

    def _brotli(self, data: bytes, path: str) -> bytes:
        out = brotli.decompress(data)
        if len(out) > self._room():
            raise UnverifiableMessageError(path)
        return out  # type: ignore[no-any-return]

    def _inflate(
        self, data: bytes, path: str, depth: int, wbits: int, *, quiet: bool = False
    ) -> None:
        try:
            out = self._decompress(data, wbits, path)
        except zlib.error:
            return  # not compressed after all: the charset readings read it
        if out or not quiet:
            self.read_bytes(out, path, depth + 1)

    def _unzip(self, data: bytes, path: str, depth: int) -> None:
        """The members of a zip archive (an office document is one: its text is XML in
        deflated members), each read like any bytes; bounded by the decoded budget."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = archive.infolist()
        except Exception:  # noqa: BLE001 - not an archive after all, or a corrupt one
            return
        for info in members[:_MAX_ZIP_MEMBERS]:
            if info.is_dir():
                continue
            if info.file_size > self._room():
                raise UnverifiableMessageError(path)
            try:
                with archive.open(info) as member:
                    content = member.read(self._room() + 1)
            except Exception:  # noqa: BLE001, S112 - encrypted or corrupt member: nothing to read
                continue
            if len(content) > self._room():
                raise UnverifiableMessageError(path)
            self.read_bytes(content, path, depth + 1, binary_part=True)

    def _unbrotli(self, data: bytes, path: str, depth: int, *, quiet: bool) -> None:
        try:
            out = self._brotli(data, path)
        except UnverifiableMessageError:
            raise
        except Exception:  # noqa: BLE001 - brotli's error type: not brotli, nothing to read
            return
        if out or not quiet:
            self.read_bytes(out, path, depth + 1)

    def _read_mime(self, data: bytes, path: str, depth: int, boundary: bytes | None) -> bool:
        """Read the parts of a multipart body; False when it is not one."""
        if boundary is None:
            match = _FIRST_BOUNDARY.search(data[:8192])
            if match is None:
                return False
            boundary = match.group(1)
        if b"--" + boundary not in data:
            return False
        boundary = boundary.replace(b'"', b"")
        head = b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
        self._read_message(head + data, path + ">mime", depth + 1)
        return True

    def _read_message(self, data: bytes, path: str, depth: int) -> None:
        try:
            message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
        except Exception:  # noqa: BLE001 - the stdlib parser is lenient; a crash: nothing more
            return
        for part in message.walk():
            if part.is_multipart():
                continue
            self._enter(path, depth, 0)
            for name, value in part.items():
                self.read_text(f"{name}: {value}", path + ">header", depth + 1)
                if "*" in value:
                    self._read_extended_params(part, name, path, depth + 1)
            # Whatever the declared type: the transfer encoding undone, the bytes read (as
            # text when they are text, see read_bytes).
            try:
                payload = part.get_payload(decode=True)
            except Exception:  # noqa: BLE001 - a broken transfer encoding: the raw text is read
                payload = None
            declared = part.get_content_type()
            binary = not (
                declared.startswith(("text/", "message/"))
                or declared.endswith(("json", "xml", "urlencoded", "javascript", "csv"))
            )
            if isinstance(payload, bytes):
                self.read_bytes(payload, path, depth + 1, binary_part=binary)
            encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
            raw = part.get_payload(decode=False)
            if encoding in ("base64", "quoted-printable") and isinstance(raw, str) and raw:
                # The encoded text itself, in case the decoder above was stricter than a reader.
                self.read_text(raw, path + ">raw", depth + 1)

    def _read_extended_params(
        self, part: email.message.Message, name: str, path: str, depth: int
    ) -> None:
        """RFC 2231 parameters (`filename*0*=utf-8''...; filename*1*=...`) as a mail client
        reads them: continuations joined before the escapes are decoded (a cut inside `%20`
        hides the value from a reading of each piece), in the charset they name."""
        try:
            params = part.get_params(header=name) or []
        except Exception:  # noqa: BLE001 - a malformed header: its raw text was read above
            return
        for _key, value in params:
            if isinstance(value, tuple):
                charset, _language, raw = value
                data = unquote_to_bytes(raw)
                for label, codec in (("", charset or "utf-8"), (">latin-1", "latin-1")):
                    try:
                        text = data.decode(codec, "replace")
                    except LookupError:
                        continue
                    self.read_text(text, path + ">rfc2231" + label, depth)

    # --- text -------------------------------------------------------------------------------

    def read_text(self, text: str, path: str, depth: int = 0, *, counted: bool = False) -> None:
        """Read text: strong evidence in it, then every decoding whose marker it holds."""
        if len(text) < _MIN_CHARS:
            return
        if not counted:
            self._enter(path, depth, len(text))
        # Single-character tests first: a substring search costs tens of microseconds on a
        # 20 KB thread, `isascii` and `in` of one character almost nothing.
        if (not text.isascii() or "<" in text) and _has_bidi(text):
            # Shown reversed: a right-to-left override (U+202E, an RLI isolate, `<bdo
            # dir=rtl>`, CSS `unicode-bidi: bidi-override`) draws `1269 27 393` as `393 72
            # 9621`. Read before normalizing, which deletes the override.
            self.read_text(_BIDI.sub(_reversed, text), path + ">bidi", depth + 1)
        text, encoded = normalize_encoded(text)
        if depth:
            # Two decodings in either order often give the same text: read it once.
            key = hash(text)
            if key in self._done:
                return
            self._done.add(key)
        unicode_escape = escape = False
        if "\\" in text:
            # On the UTF-8 bytes (the same matches: a multi-byte character holds no ASCII
            # byte), one byte a character where the text's are two or four.
            escape = _ESCAPE_START_BYTES.search(encoded) is not None
            unicode_escape = escape and _UNICODE_ESCAPE_BYTES.search(encoded) is not None
            # With every short escape's letter read as a separator: broader than the text
            # itself and than its JSON decoding, so one C pass screens both. Non-ASCII
            # characters are deleted too (broader again): `·` or a thin space between
            # digits is a separator to the chain rule, and their UTF-8 bytes would break
            # the stretch here (`x\\n 4111·1111·1111·1111` went unread before).
            deleted = _JSON_DELETE if text.isascii() else _JSON_DELETE_WIDE
            stretch = _NINE in encoded.translate(_JSON_TABLE, deleted)
        else:
            stretch = could_hold(text, encoded)
        if stretch:
            for kind, digits, inside in find_strong(text):
                self._check(kind, digits, path, inside)
        next_depth = depth + 1
        if unicode_escape or ("\\" in text and stretch):
            # Short escapes only move separators; `\uXXXX` may spell anything.
            self._read_json(text, path + ">json", next_depth)
        if escape or ("\\" in text and "<" in text):
            self._read_escapes(text, path, next_depth)
        # A form reader takes `+` for a space with no `%XX` in sight either: `a=411111+1111111111`
        # is `a=411111 1111111111` to it, a grouping `+` does not make; `social+security` an
        # SSN word. Read when a stretch and a `key=value` with a `+` in its value are there (a
        # phone number's `+1` in a mail, or `=` of quoted-printable beside a `+`, is not sent
        # through a second reading: mail nests QP, HTML and MIME deep enough as it is).
        if ("%" in text and _PERCENT.search(text)) or (
            "+" in text and stretch and "=" in text and _FORM_PLUS.search(text)
        ):
            raw = unquote_to_bytes(text.replace("+", " "))
            self.read_bytes(raw, path + ">percent", next_depth)
        if ("<" in text or "&" in text) and (_TAG.search(text) or _ENTITY.search(text)):
            self._read_html(text, path + ">html", next_depth)
        if "\n" in text and "BEGIN:V" in text and _FOLD.search(text):
            # vCard and iCalendar lines folded anywhere, a digit group included, whatever
            # type the body was sent as: a contacts or calendar client unfolds them.
            self.read_text(_FOLD.sub("", text), path + ">unfolded", next_depth)
        if "=" in text and _QP.search(text):
            raw = binascii.a2b_qp(encoded)
            self.read_bytes(raw, path + ">quoted-printable", next_depth)
        if len(encoded) >= _B64_MIN_RUN:
            # A shorter text holds no run long enough to decode (a header name, a type).
            self._read_base64(encoded, path, next_depth)

    def _read_escapes(self, text: str, path: str, depth: int) -> None:
        """Escapes written out in text that is no JSON document (a log line, a form field, a
        string that was escaped twice): `\\u0034`, `\\x34`, `\\u{34}` as a JavaScript or
        Python reader takes them; in a style sheet, CSS escapes (`\\34 `) as a browser shows
        a `content:` string."""
        # Honest encoders escape non-ASCII, quotes and `<>&` only: an escape that spells an
        # ASCII letter or digit, a decoding's marker or a digit of any script is a hiding
        # place, and only then is the whole text read again decoded (an e-mail thread full of
        # `\\u2019` is not).
        if _ESCAPE.search(text) and _spells_hiding(_ESCAPE, text, _escaped_char):
            decoded = _ESCAPE.sub(_escaped_char, text)
            # `\\ud835\\udfd2`: a surrogate pair read as the one character it spells.
            decoded = decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            self.read_text(decoded, path + ">escapes", depth)
        # The literal-led pattern first: a case-blind search for a style context costs
        # milliseconds on a 20 KB thread.
        if (
            "<" in text  # a style element or attribute: no style sheet without a tag
            and _CSS_ESCAPE.search(text)
            and _spells_hiding(_CSS_ESCAPE, text, _css_char)
            and _CSS_CONTEXT.search(text)
        ):
            self.read_text(_CSS_ESCAPE.sub(_css_char, text), path + ">css", depth)

    def _read_json(self, text: str, path: str, depth: int) -> None:
        docs: list[Any] = []
        try:
            docs.append(json.loads(text))
        except ValueError:
            for line in text.splitlines():
                if line.lstrip()[:1] in ("{", "[", '"'):
                    try:
                        docs.append(json.loads(line))
                    except ValueError:
                        continue
        except RecursionError:
            raise UnverifiableMessageError(path) from None
        if not docs:
            return
        strings = [s for doc in docs for s in _json_strings(doc)]
        joined = _JOIN.join(strings)
        if joined != text:
            self.read_text(joined, path, depth)
        for s in strings:
            # A JSON document inside a string, with its own escapes (`"{\"n\": \"\\u0034\"}"`).
            if "\\" in s and s.lstrip()[:1] in ("{", "[", '"'):
                self._read_json(s, path + ">json", depth + 1)

    def _read_html(self, text: str, path: str, depth: int) -> None:
        if "<!--" in text and "&" in text:
            # A comment's text is read raw (above) but its references are not decoded by any
            # rendering: a reader that unescapes before it strips tags shows them.
            for comment in _COMMENT.findall(text):
                if "&" in comment:
                    self.read_text(html.unescape(comment), path + ">comment", depth)
        if not _TAG.search(text):
            rendered = _unescape(text)[0]
        else:
            if not _has_hiding(text):
                # Without markup that hides content, the rendering can only join what the
                # markup parted: prove there is no stretch to join, in C, before parsing.
                # Unless references were decoded: `&#061;&#063;...` may spell an encoded
                # word, base64 or percent escapes that hold a value with no digit in sight.
                stripped = _MARKUP.sub("", text)
                bare, spelt = _unescape(stripped) if "&" in stripped else (stripped, "")
                if (
                    not could_hold(bare)
                    and bare.isascii()
                    and (bare == stripped or _spells_inert(bare, stripped, spelt))
                ):
                    return
            rendered = _render_html(text)
            if _STYLE_SHEET.search(text):
                self.read_text(_render_html(text, styled_hidden=True), path + "-styled", depth)
        if rendered != text:
            self.read_text(rendered, path, depth)

    def _read_base64(self, encoded: bytes, path: str, depth: int) -> None:
        classes = encoded.translate(_B64_CLASSES)
        end = 0
        for step in _B64_STEP.finditer(classes):
            at = step.start() - 1
            if at < end:
                continue  # in the run just read
            start = classes.rfind(b" ", 0, at) + 1
            end = classes.find(b" ", at)
            end = len(classes) if end == -1 else end
            if end - start >= _B64_MIN_RUN:
                blob = _unescape_blob(encoded[start:end])
                # Words and identifiers are one case, or lowercase with digits.
                if len(blob) >= _B64_MIN_RUN and not (blob.islower() or blob.isupper()):
                    decoded = _b64decode(blob)
                    if decoded:
                        # `data:text/plain;base64,...` (a percent-encoded data URI is read
                        # by the percent reading of the whole text).
                        uri = encoded[max(0, start - 8) : start] == b";base64,"
                        self.read_bytes(decoded, path + (">data-uri" if uri else ">base64"), depth)


_ESCAPE = re.compile(r"\\(?:u\{([0-9A-Fa-f]{1,6})\}|u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2}))")
_CSS_CONTEXT = re.compile(r"(?i)<style|style\s*=|content\s*:")
_CSS_ESCAPE = re.compile(r"\\([0-9A-Fa-f]{1,6})[ \t\n\f]?|\\\r\n")


# Characters a reference may spell (`&lt;`, `&gt;`, `&quot;`) that start no decoding: the
# markup shortcut still holds when references spell only these.
_INERT = frozenset(" \t\r\n\"'<>;:,.!?()[]{}*@$^|~`")
_COMMENT = re.compile(r"<!--(.*?)(?:-->|\Z)", re.DOTALL)
_FOLD = re.compile(r"\r?\n[ \t]")
# A run shown right to left: after an override or isolate up to its end (PDF, PDI, a line
# break or the next tag), or the content of an element that overrides the direction.
_BIDI = re.compile(
    r"(?is)(?:[\u202e\u2067]|<bdo\b[^>]*\brtl\b[^>]*>|<[a-z][^>]*bidi-override[^>]*>)"
    r"([^\u202a-\u202e\u2066-\u2069<\n]*)"
)


# `html`'s own pattern for a character reference (`html._charref`), copied.
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


_DISTINCT_REFERENCES = 32


def _unescape(text: str) -> tuple[str, str | None]:
    """`html.unescape(text)`, and the characters its references spelt (None: not known).

    `html.unescape` calls a Python function for every reference (a quoted thread in HTML
    holds thousands of `&gt;`: ~8 ms per 32 KB). Each reference's text alone decides what
    it spells, so each distinct one is unescaped once and written out with `replace`,
    longest first. Every reference starts with the only `&` it holds: no two overlap, a
    shorter one found inside a longer one's place is gone before it is looked for, and
    unless some reference spells an `&`, writing one out makes no new one."""
    if not evidence.SHORTCUTS:
        return html.unescape(text), None
    refs = set(_CHARREF.findall(text))
    # Each `replace` reads the whole text: past a few dozen distinct references (a hostile
    # text of thousands of different ones) one pass with a call per reference is cheaper.
    if len(refs) > _DISTINCT_REFERENCES:
        return html.unescape(text), None
    spelt = {"&" + ref: html.unescape("&" + ref) for ref in refs}
    if any("&" in char for char in spelt.values()):
        return html.unescape(text), None
    for ref in sorted(spelt, key=len, reverse=True):
        text = text.replace(ref, spelt[ref])
    return text, "".join(spelt.values())


def _spells_inert(bare: str, stripped: str, spelt: str | None) -> bool:
    """`set(bare).difference(stripped) <= _INERT`: what the references spelt is inert or
    was in the text already (every other character of `bare` is one of `stripped`'s)."""
    if spelt is None:
        return set(bare).difference(stripped) <= _INERT
    return all(char in _INERT or char in stripped for char in set(spelt))


# `_HIDING` asked of the lowercased text, led by literals: its tags by `<`, its words one
# substring test each. `_HIDING` is a case-blind alternation with no literal to skip to,
# tried at every character (~9 ms on a 32 KB HTML e-mail). For every character but four
# (`evidence.CASE_SPECIAL`), `(?i)` matches an ASCII letter exactly when the character's
# lowercase is that letter, and lowercasing keeps every position.
_HIDING_TAG = re.compile(r"<(?:script|style|template|noscript|head|title|object|iframe)")
_HIDING_WORDS = ("hidden", "display", "visibility", "opacity", "font-size")


def _has_hiding(text: str) -> bool:
    """`_HIDING.search(text) is not None`."""
    if not evidence.SHORTCUTS or (
        not text.isascii() and any(c in text for c in evidence.CASE_SPECIAL)
    ):
        return _HIDING.search(text) is not None
    low = text.lower()
    return any(word in low for word in _HIDING_WORDS) or _HIDING_TAG.search(low) is not None


# `_BIDI`'s tag alternatives alone: led by the literal `<`, which sre skips to in C. `_BIDI`
# starts with a class (its characters or `<`) and is tried at every character: ~0.2 ms on a
# 20 KB e-mail thread with one curly apostrophe in it (non-ASCII text is always asked).
_BIDI_TAG = re.compile(r"(?is)<(?:bdo\b[^>]*\brtl\b[^>]*>|[a-z][^>]*bidi-override[^>]*>)")


def _has_bidi(text: str) -> bool:
    """`_BIDI.search(text) is not None`, asked alternative by alternative."""
    if not evidence.SHORTCUTS:
        return _BIDI.search(text) is not None
    return (
        "\u202e" in text or "\u2067" in text or ("<" in text and _BIDI_TAG.search(text) is not None)
    )


def _reversed(match: re.Match[str]) -> str:
    return match.group(1)[::-1]


_HIDING_MARKS = frozenset("%=+&\\")


def _spells_hiding(
    pattern: re.Pattern[str], text: str, char: Callable[[re.Match[str]], str]
) -> bool:
    """True when some escape in `text` spells what honest escaping never does: an ASCII
    letter or digit, a decoding's marker, a digit of any script or half a surrogate pair."""
    for escape in {m.group(): m for m in pattern.finditer(text)}.values():
        spelt = char(escape)
        if not spelt:
            continue
        if (spelt.isascii() and (spelt.isalnum() or spelt in _HIDING_MARKS)) or (
            "\ud800" <= spelt <= "\udfff" or spelt.isdigit() or spelt.isdecimal()
        ):
            return True
        if unicodedata.digit(spelt, None) is not None or unicodedata.category(spelt) in (
            "Zs",
            "Pd",
            "Cf",
        ):
            return True
    return False


def _code_point(code: int) -> str:
    return chr(code) if code <= 0x10FFFF else "\ufffd"


def _escaped_char(match: re.Match[str]) -> str:
    return _code_point(int(match.group(1) or match.group(2) or match.group(3), 16))


def _css_char(match: re.Match[str]) -> str:
    return _code_point(int(match.group(1), 16)) if match.group(1) else ""


def _unescape_blob(blob: bytes) -> bytes:
    if b"\\" in blob:
        blob = blob.replace(b"\\/", b"/").replace(b"\\r", b"").replace(b"\\n", b"")
        blob = blob.replace(b"\\", b"")
    return blob.replace(b"\r", b"").replace(b"\n", b"")


def _b64decode(blob: bytes) -> bytes:
    cleaned = blob.translate(_B64_STRIP, b"=").decode("ascii", "replace")
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        return b""
