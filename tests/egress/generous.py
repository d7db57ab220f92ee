"""A generous reader of what the upstream (or a client) received, written for the tests apart
from redactor's code (neither its views nor its verifier): the oracle of the hostile-request
tests. It decodes bytes every way some downstream reader might (a browser, a helpdesk's
full-text index, a mail client, a parser keeping the first of two JSON members) and asks
whether a value's digits can be read in any of those readings.

Bounded: a few levels of nesting, each text read once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.header
import email.parser
import email.policy
import gzip
import html
import io
import json
import quopri
import re
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import unquote_to_bytes

MAX_DEPTH = 6
MAX_TEXTS = 4000

# Hangul fillers and other invisible letters a renderer draws as nothing.
_INVISIBLE = {0x115F, 0x1160, 0x3164, 0xFFA0, 0x034F, 0x180E}


def _char_map(char: str) -> str:
    code = ord(char)
    if char.isascii():
        if char in "\x0b\x0c\r\t\n":
            return " "
        return char
    if code in _INVISIBLE:
        return ""
    category = unicodedata.category(char)
    if category in ("Cf", "Mn", "Me", "Cs", "Co"):
        return ""
    if category in ("Zs", "Zl", "Zp", "Cc"):
        return " "
    if category == "Pd" or code == 0x30FC:
        return "-"
    value = unicodedata.digit(char, None)
    if value is not None:
        return str(value)
    return char


def normalize(text: str) -> str:
    """Digits as a reader sees them: NFKC, every digit form of any script as ASCII, invisible
    characters gone, every space or line break one space."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        text = "".join(_char_map(c) for c in text)
    else:
        text = text.translate(_ASCII_SPACES)
    return re.sub(r" {2,}", " ", text)


_ASCII_SPACES = str.maketrans({"\x0b": " ", "\x0c": " ", "\r": " ", "\t": " ", "\n": " "})


def value_pattern(digits: str) -> re.Pattern[str]:
    """The value's digits in order, each pair parted by at most 3 characters that are neither
    a digit nor an ASCII letter (after `normalize`, any space run counts as one)."""
    return re.compile(r"(?<![0-9])" + r"[^0-9A-Za-z]{0,3}".join(digits) + r"(?![0-9])")


# --- bytes -------------------------------------------------------------------------------------

_CHARSET = re.compile(rb"(?i)charset\s*=\s*\"?([A-Za-z0-9_.:-]{2,40})")


def _decompressions(data: bytes) -> Iterator[tuple[str, bytes]]:
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError, zlib.error):
            yield "gzip", gzip.decompress(data)
    for label, wbits in (("zlib", zlib.MAX_WBITS), ("deflate", -zlib.MAX_WBITS)):
        try:
            out = zlib.decompressobj(wbits).decompress(data, 4 << 20)
        except zlib.error:
            continue
        if out:
            yield label, out
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist()[:20]:
                    yield "zip", archive.read(info)[: 4 << 20]
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
            pass
    if len(data) > 262 and data[257:262] == b"ustar":
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                for member in archive.getmembers()[:20]:
                    handle = archive.extractfile(member)
                    if handle is not None:
                        yield "tar", handle.read(4 << 20)
        except (tarfile.TarError, OSError, EOFError):
            pass
    if b"%PDF" in data[:1024]:
        for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.DOTALL):
            with contextlib.suppress(zlib.error):
                yield "pdf-stream", zlib.decompress(match.group(1).strip())
        try:
            import pypdf

            reader = pypdf.PdfReader(io.BytesIO(data))
            yield "pdf-text", "\n".join(p.extract_text() or "" for p in reader.pages).encode()
        except Exception:  # noqa: BLE001, S110 - any parse failure: the other readings stand
            pass


def _charsets(data: bytes, declared: set[str]) -> Iterator[tuple[str, str]]:
    boms = (
        (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
    )  # fmt: skip
    for bom, codec in boms:
        if data.startswith(bom):
            yield codec, data[len(bom) :].decode(codec, "replace")
            break
    yield "utf-8", data.decode("utf-8", "replace")
    yield "latin-1", data.decode("latin-1")
    if b"\x00" in data:
        for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            for skip in (0, 1):
                yield codec, data[skip:].decode(codec, "replace")
    if b"\x1b" in data:
        for codec in ("iso2022_jp", "iso2022_jp_2", "iso2022_kr"):
            yield codec, data.decode(codec, "replace")
    if any(b > 0x7F for b in data[:4096]):
        for codec in ("shift_jis", "euc_jp", "gb18030", "big5", "cp1252"):
            yield codec, data.decode(codec, "replace")
    for name in declared:
        with contextlib.suppress(LookupError, ValueError):
            yield name, data.decode(name, "replace")


class Reader:
    """Every text a generous downstream may read in a message."""

    def __init__(self, declared: set[str] | None = None) -> None:
        self.declared = set(declared or ())
        self.seen: set[int] = set()
        self.texts: list[tuple[str, str]] = []

    def _add(self, label: str, text: str) -> bool:
        key = hash(text)
        if key in self.seen or len(self.texts) >= MAX_TEXTS:
            return False
        self.seen.add(key)
        self.texts.append((label, normalize(text)))
        return True

    def read_bytes(self, data: bytes, label: str, depth: int = 0, content_type: str = "") -> None:
        if depth > MAX_DEPTH or len(data) < 9:
            return
        for name in _CHARSET.findall(data[:65536] + content_type.encode("latin-1", "replace")):
            self.declared.add(name.decode("ascii").lower())
        for how, out in _decompressions(data):
            self.read_bytes(out, f"{label}>{how}", depth + 1)
        self._mime(data, label, depth, content_type)
        for codec, text in _charsets(data, self.declared):
            self.read_text(text, f"{label}>{codec}", depth + 1)

    def _mime(self, data: bytes, label: str, depth: int, content_type: str) -> None:
        heads: list[bytes] = []
        if "multipart" in content_type.lower():
            heads.append(
                b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
            )
        first = re.search(rb"(?m)^--([^\s]{1,200})\r?$", data[:8192])
        if first:
            heads.append(
                b'Content-Type: multipart/mixed; boundary="' + first.group(1) + b'"\r\n\r\n'
            )
        if re.match(rb"[A-Za-z-]{2,40}:", data):
            heads.append(b"")  # a message with its own header block (message/rfc822)
        for head in heads:
            try:
                message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
                    head + data
                )
            except Exception:  # noqa: BLE001, S112 - the stdlib parser is lenient
                continue
            payloads: list[str] = []
            for part in message.walk():
                for name, value in part.items():
                    self.read_text(f"{name}: {value}", f"{label}>mime-header", depth + 1)
                    for param in part.get_params(header=name) or []:
                        self._param(param, label, depth)
                if part.is_multipart():
                    continue
                try:
                    payload = part.get_payload(decode=True)
                except Exception:  # noqa: BLE001
                    payload = None
                if isinstance(payload, bytes):
                    payloads.append(payload.decode("utf-8", "replace"))
                    self.read_bytes(
                        payload, f"{label}>mime", depth + 1, part.get("Content-Type", "")
                    )
            if len(payloads) > 1:
                # Neighbouring fields read together (`cc1`..`cc4`).
                self.read_text(" ".join(payloads), f"{label}>mime-joined", depth + 1)

    def _param(self, param: object, label: str, depth: int) -> None:
        if not isinstance(param, tuple):
            return
        _name, value = param
        if isinstance(value, tuple):
            charset, _lang, raw = value
            raw_bytes = raw.encode("latin-1", "replace")
            for codec in {charset or "utf-8", "utf-8", "utf-16-le", "utf-16-be"}:
                with contextlib.suppress(LookupError):
                    self.read_text(raw_bytes.decode(codec, "replace"), f"{label}>rfc2231", depth)

    # --- text ----------------------------------------------------------------------------------

    def read_text(self, text: str, label: str, depth: int = 0) -> None:
        if depth > MAX_DEPTH or len(text) < 9 or not self._add(label, text):
            return
        nd = depth + 1
        if _RTL.search(text):
            # As displayed: a right-to-left override (or `<bdo dir=rtl>`, CSS bidi-override)
            # shows its run reversed.
            self.read_text(_RTL.sub(lambda m: m.group(1)[::-1], text), label + ">bidi", nd)
        if "\n " in text or "\n\t" in text:
            self.read_text(re.sub(r"\r?\n[ \t]", "", text), label + ">unfold", nd)
        if "&" in text:
            self.read_text(_unescape_html(text), label + ">entities", nd)
        if "<" in text:
            if _HIDDEN_ELEMENT.search(text):
                shown = _HIDDEN_ELEMENT.sub("", text)
                self.read_text(_unescape_html(re.sub(r"<[^>]*>?", "", shown)), label + ">shown", nd)
            stripped = re.sub(r"<[^>]*>?", "", text)
            self.read_text(_unescape_html(stripped), label + ">tags", nd)
            self.read_text(
                _unescape_html(re.sub(r"<[^>]*>?", " ", text)), label + ">tags-spaced", nd
            )
        if "\\" in text:
            self.read_text(_unescape_backslashes(text), label + ">escapes", nd)
            if _STYLE.search(text):
                # CSS escapes mean something in a style sheet or a style attribute only.
                self.read_text(_unescape_css(text), label + ">css", nd)
        if "%" in text:
            self.read_bytes(unquote_to_bytes(text.replace("+", " ")), label + ">percent", nd)
        if "=" in text and re.search(r"=[0-9A-Fa-f]{2}|=\r?\n", text):
            self.read_bytes(quopri.decodestring(text.encode("utf-8", "replace")), label + ">qp", nd)
        if "=?" in text:
            self.read_text(_encoded_words(text), label + ">rfc2047", nd)
        if "+" in text and "-" in text:
            with contextlib.suppress(UnicodeError, ValueError):
                self.read_text(
                    text.encode("latin-1").decode("utf-7", "replace"), label + ">utf-7", nd
                )
        for strings in _json_readings(text):
            self.read_text("\n".join(strings), label + ">json", nd)
            self.read_text(" ".join(strings), label + ">json-joined", nd)
        if "=" in text and ("&" in text or ";" in text):
            values = [
                unquote_to_bytes(v.replace("+", " ")).decode("utf-8", "replace")
                for v in re.findall(r"=([^&;\s]*)", text)
            ]
            self.read_text(" ".join(values), label + ">form-joined", nd)
        for blob in _base64_blobs(text):
            self.read_bytes(blob, label + ">base64", nd)


def _unescape_html(text: str) -> str:
    # Numeric references with any number of leading zeros and no `;` are what browsers read.
    text = re.sub(r"&#[xX]0*([0-9A-Fa-f]{1,6});?", lambda m: _chr(int(m.group(1), 16)), text)
    text = re.sub(r"&#0*([0-9]{1,7});?", lambda m: _chr(int(m.group(1))), text)
    return html.unescape(text)


def _chr(code: int) -> str:
    try:
        return chr(code)
    except (ValueError, OverflowError):
        return "\ufffd"


def _unescape_backslashes(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if len(body) == 1:
            return {"n": "\n", "r": "\r", "t": "\t", "b": "", "f": " "}.get(body, body)
        if body[0] in "uU" and body[1:2] == "{":
            return _chr(int(body[2:-1], 16))
        return _chr(int(body[1:], 16))

    out = re.sub(
        r"\\(u\{[0-9A-Fa-f]{1,6}\}|U[0-9A-Fa-f]{8}|u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2}|.)",
        one,
        text,
        flags=re.DOTALL,
    )
    # UTF-16 surrogate pairs from `\ud835\udfd2` become one character.
    return out.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


_RTL = re.compile(
    r"(?is)(?:\u202e|<bdo[^>]*rtl[^>]*>|<[a-z]+[^>]*bidi-override[^>]*>)([^\u202c\u2069<\n]*)"
)
# An element a browser does not show, up to its closing tag (no nesting: enough here).
_HIDDEN_ELEMENT = re.compile(
    r"(?is)<(\w+)[^>]*(?:none|hidden|font-size:\s*0|opacity:\s*0)[^>]*>.*?</\1\s*>"
)
_STYLE = re.compile(r"(?i)<style|style\s*=|content\s*:")


def _unescape_css(text: str) -> str:
    return re.sub(r"\\([0-9A-Fa-f]{1,6})[ \t\n]?", lambda m: _chr(int(m.group(1), 16)), text)


def _encoded_words(text: str) -> str:
    try:
        parts = email.header.decode_header(text)
    except Exception:  # noqa: BLE001
        return text
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                out.append(chunk.decode(charset or "latin-1", "replace"))
            except LookupError:
                out.append(chunk.decode("latin-1"))
        else:
            out.append(chunk)
    return "".join(out)


def _scalars(doc: object, out: list[str], keys: bool = True) -> None:
    if isinstance(doc, str):
        out.append(doc)
    elif isinstance(doc, list):
        for item in doc:
            _scalars(item, out, keys)
    elif isinstance(doc, tuple):  # (key, value) pairs of an object, duplicates kept
        for key, value in doc:
            if keys:
                out.append(key)
            _scalars(value, out, keys)
    elif isinstance(doc, Decimal):
        if not doc.is_finite() or doc.adjusted() > 40:
            return
        out.append(format(doc, "f"))
        if doc == doc.to_integral_value():
            out.append(str(int(doc)))
    elif isinstance(doc, int) and not isinstance(doc, bool):
        out.append(str(doc))


def _loads(text: str) -> object:
    return json.loads(text, object_pairs_hook=tuple, parse_float=Decimal, parse_int=Decimal)


def _json_readings(text: str) -> Iterator[list[str]]:
    stripped = text.strip()
    if not stripped:
        return
    docs = []
    try:
        docs.append(_loads(stripped))
    except (ValueError, RecursionError):
        for line in stripped.splitlines():
            try:
                docs.append(_loads(line))
            except (ValueError, RecursionError):
                continue
    # A JSON number anywhere (a body that is only a number, a CSV of numbers): its value.
    for number in re.findall(r"-?[0-9][0-9.]*[eE][+-]?[0-9]+", text):
        try:
            value = Decimal(number)
            if value.is_finite() and value.adjusted() < 40 and value == value.to_integral_value():
                docs.append(value)
        except ArithmeticError:
            pass
    for doc in docs:
        for keys in (True, False):
            out: list[str] = []
            _scalars(doc, out, keys)
            if out:
                yield out


_B64 = re.compile(r"(?:[A-Za-z0-9+/_-]|\\n|\\r|\\/|\r?\n){12,}={0,2}")


def _base64_blobs(text: str) -> Iterator[bytes]:
    for match in _B64.finditer(text):
        blob = match.group().replace("\\n", "").replace("\\r", "").replace("\\/", "/")
        blob = re.sub(r"\s", "", blob)
        if blob.isdigit() or (blob.isalpha() and (blob.islower() or blob.isupper())):
            continue
        piece = blob.replace("-", "+").replace("_", "/").rstrip("=")
        # A blob glued to a word before it (`name=Y2Fy...` reads `nameY2Fy...`): every start.
        for start in range(4) if "=" not in blob[:-2] else (0,):
            try:
                out = base64.b64decode(piece[start:] + "=" * (-len(piece[start:]) % 4))
            except (binascii.Error, ValueError):
                continue
            if out:
                yield out


def read_message(
    body: bytes, *, path: str = "", headers: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """(reading label, normalized text) of every reading of a message as received."""
    headers = headers or []
    reader = Reader()
    content_type = ""
    lines: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() == "content-type":
            content_type = value
        reader.read_text(f"{name}: {value}", "header")
        reader.read_text(name, "header-name")
        lines.setdefault(name.lower(), []).append(value)
    for name, values in lines.items():
        if len(values) > 1:
            # Repeated lines of one name, joined as RFC 9110 allows.
            reader.read_text(f"{name}: {', '.join(values)}", "header-joined")
    reader.read_text(path, "path")
    reader.read_bytes(body, "body", 0, content_type)
    return reader.texts


def find(digits: str, texts: list[tuple[str, str]]) -> str | None:
    """The label of the first reading that holds `digits`, or None."""
    pattern = value_pattern(digits)
    for label, text in texts:
        if pattern.search(text):
            return label
    return None
