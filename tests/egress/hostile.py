"""A seeded generator of hostile requests: a card number or an SSN hidden where some downstream
reader (a browser, a helpdesk, a parser) reads more than a naive proxy does. One list of
builders per class of issue 18, plus nested combinations of encodings. Values are generated
from published IIN ranges (Luhn-valid), never fixed strings."""

from __future__ import annotations

import base64
import gzip
import io
import json
import quopri
import random
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from tests.bodies.documents import pdf_with_text, zip_of
from tests.factories import CARD_SPECS, make_pan, make_ssn

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Value:
    kind: str  # "card" or "ssn"
    digits: str
    groups: tuple[str, ...]
    word: str

    def written(self, sep: str = " ") -> str:
        return f"{self.word} {sep.join(self.groups)}"

    def spelt(self, sep: str, digit: Callable[[str], str] = str) -> str:
        """The groups with every digit passed through `digit`, parted by `sep`."""
        return sep.join("".join(digit(d) for d in g) for g in self.groups)


@dataclass
class Req:
    cls: str
    name: str
    value: Value
    method: str = "POST"
    path: str = "/hook"
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    raw: bytes | None = None  # sent on the wire as it is (HTTP framing tricks)
    # An upstream answer on a `redact_responses` route: (status, headers, body).
    answer: tuple[int, Headers, bytes] | None = None


_CARD_WORDS = ("card", "card number", "credit card", "cc#", "Visa", "card no.")
_SSN_WORDS = ("SSN", "social security number", "SSN#", "soc. sec.", "social security no")
_SPECS = [s for s in CARD_SPECS if s[2] >= 13 and s[0] not in ("UATP",)]


def _sizes(length: int) -> tuple[int, ...]:
    return {15: (4, 6, 5), 14: (4, 6, 4), 13: (4, 4, 5), 19: (4, 4, 4, 4, 3)}.get(
        length, (4,) * (length // 4) + ((length % 4,) if length % 4 else ())
    )


def _split(digits: str, sizes: tuple[int, ...]) -> tuple[str, ...]:
    out, at = [], 0
    for size in sizes:
        out.append(digits[at : at + size])
        at += size
    return tuple(out)


def make_value(rng: random.Random, kind: str | None = None, spec: tuple | None = None) -> Value:
    kind = kind or rng.choice(("card", "card", "ssn"))
    if kind == "card":
        _scheme, prefix, length = spec or rng.choice(_SPECS)
        digits = make_pan(prefix, length, rng)
        return Value("card", digits, _split(digits, _sizes(length)), rng.choice(_CARD_WORDS))
    digits = make_ssn(rng)
    return Value("ssn", digits, _split(digits, (3, 2, 4)), rng.choice(_SSN_WORDS))


# --- small encoders ---------------------------------------------------------------------------


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def pct(text: str, every: bool = True) -> str:
    if every:
        return "".join(f"%{b:02X}" for b in text.encode())
    return quote(text, safe="")


def dec_entities(text: str, zeros: int = 0) -> str:
    return "".join(f"&#{'0' * zeros}{ord(c)};" for c in text)


def hex_entities(text: str, zeros: int = 0, semi: bool = True) -> str:
    return "".join(f"&#x{'0' * zeros}{ord(c):x}{';' if semi else ''}" for c in text)


def json_escape_all(text: str) -> str:
    out = []
    for ch in text:
        data = ch.encode("utf-16-be")
        for i in range(0, len(data), 2):
            out.append(f"\\u{int.from_bytes(data[i : i + 2], 'big'):04x}")
    return "".join(out)


def qp_soft(text: str, every: int = 2) -> str:
    return "=\r\n".join(text[i : i + every] for i in range(0, len(text), every))


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def utf7(text: str) -> bytes:
    # Python's codec leaves digits direct; a sender may base64 them all (RFC 2152 allows it).
    return b"+" + base64.b64encode(text.encode("utf-16-be")).rstrip(b"=") + b"-"


def css_escape(text: str) -> str:
    return "".join(f"\\{ord(c):x} " if c.isdigit() else c for c in text)


def multipart(parts: list[tuple[str, bytes]], boundary: str = "hzB0und") -> tuple[Headers, bytes]:
    """parts: (header block without the final CRLF, content)."""
    body = b""
    for head, content in parts:
        body += f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return [("Content-Type", f"multipart/form-data; boundary={boundary}")], body


def email_message(inner: bytes, ctype: str, cte: str = "7bit", boundary: str = "m1x") -> bytes:
    return (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: receipt\r\nMIME-Version: 1.0\r\n"
        + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode()
        + f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nsee below\r\n".encode()
        + f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode()
        + inner
        + f"\r\n--{boundary}--\r\n".encode()
    )


JSON = [("Content-Type", "application/json")]
FORM = [("Content-Type", "application/x-www-form-urlencoded")]
HTML = [("Content-Type", "text/html; charset=utf-8")]
TEXT = [("Content-Type", "text/plain; charset=utf-8")]


def _req(cls: str, name: str, v: Value, headers: Headers, body: bytes | str, **kw) -> Req:
    data = body.encode() if isinstance(body, str) else body
    return Req(cls, name, v, headers=list(headers), body=data, **kw)


Builder = Callable[[Value, random.Random], Req]
CLASSES: dict[str, list[tuple[str, Builder]]] = {}


def builder(cls: str, name: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        CLASSES.setdefault(cls, []).append((name, fn))
        return fn

    return register


# --- 1. JSON numbers --------------------------------------------------------------------------

C1 = "json-numbers"


@builder(C1, "float .0")
def _(v, rng):
    return _req(C1, "float .0", v, JSON, f'{{"{v.word}": {v.digits}.0}}')


@builder(C1, "exponent")
def _(v, rng):
    d = v.digits
    return _req(C1, "exponent", v, JSON, f'{{"n": {d[0]}.{d[1:]}e{len(d) - 1}, "k": "{v.kind}"}}')


@builder(C1, "exponent with trailing zeros")
def _(v, rng):
    d = v.digits
    return _req(C1, "exponent0", v, JSON, f'{{"{v.word}": {d[0]}.{d[1:]}000E+{len(d) - 1}}}')


@builder(C1, "bare integer under a word key")
def _(v, rng):
    return _req(C1, "int", v, JSON, f'{{"{v.kind}": {v.digits}}}')


@builder(C1, "number in an array")
def _(v, rng):
    return _req(C1, "array", v, JSON, f'{{"{v.word}": [{v.digits}]}}')


@builder(C1, "number divided by 10 scaled")
def _(v, rng):
    d = v.digits
    return _req(C1, "scaled", v, JSON, f'{{"{v.word}": {d}0e-1}}')


@builder(C1, "body is a bare number")
def _(v, rng):
    return _req(C1, "bare", v, JSON, f"{v.digits}.00")


@builder(C1, "number in an answer")
def _(v, rng):
    return _req(
        C1,
        "answer",
        v,
        [],
        b"",
        method="GET",
        path="/tickets/1",
        answer=(200, JSON, f'{{"{v.kind}": {v.digits}.0}}'.encode()),
    )


# --- 2. split values ------------------------------------------------------------------------

C2 = "split"


@builder(C2, "JSON array of groups")
def _(v, rng):
    return _req(C2, "array", v, JSON, json.dumps({v.kind: list(v.groups)}))


@builder(C2, "JSON array of int groups")
def _(v, rng):
    groups = list(v.groups)
    if any(g.startswith("0") for g in groups):
        return _req(C2, "array", v, JSON, json.dumps({v.kind: groups}))
    return _req(C2, "intarray", v, JSON, '{{"{}": [{}]}}'.format(v.kind, ", ".join(groups)))


@builder(C2, "two members")
def _(v, rng):
    h = len(v.digits) // 2
    first, last = ("cc_first8", "cc_last8") if v.kind == "card" else ("ssn_first", "ssn_last")
    return _req(C2, "halves", v, JSON, json.dumps({first: v.digits[:h], last: v.digits[h:]}))


def _piece_name(v: Value, i: int) -> str:
    """The names forms give the pieces of a split value (`cc1`..`cc4`, `ssn_area`...)."""
    if v.kind == "card":
        return f"cc{i + 1}"
    return ("ssn_area", "ssn_group", "ssn_serial")[i]


@builder(C2, "form fields cc1..")
def _(v, rng):
    body = "&".join(f"{_piece_name(v, i)}={g}" for i, g in enumerate(v.groups))
    return _req(C2, "form", v, FORM, body)


@builder(C2, "form fields with ; separators")
def _(v, rng):
    # Rack 2 (Rails) and older Python split fields on `;` too.
    body = ";".join(f"{_piece_name(v, i)}={g}" for i, g in enumerate(v.groups))
    return _req(C2, "form;", v, FORM, "note=hello;" + body)


@builder(C2, "multipart fields")
def _(v, rng):
    headers, body = multipart(
        [
            (f'Content-Disposition: form-data; name="{v.kind}{i}"', g.encode())
            for i, g in enumerate(v.groups)
        ]
    )
    return _req(C2, "multipart", v, headers, body)


@builder(C2, "one div per line")
def _(v, rng):
    return _req(
        C2, "divs", v, HTML, f"<div>{v.word}</div>" + "".join(f"<div>{g}</div>" for g in v.groups)
    )


@builder(C2, "table cells")
def _(v, rng):
    cells = "".join(f"<td>{g}</td>" for g in v.groups)
    return _req(C2, "cells", v, HTML, f"<table><tr><th>{v.word}</th>{cells}</tr></table>")


@builder(C2, "spans per digit")
def _(v, rng):
    spans = "".join(f"<span>{d}</span>" for d in v.digits)
    return _req(C2, "spans", v, HTML, f"<p>{v.word} {spans}</p>")


@builder(C2, "JSON strings in a list of objects")
def _(v, rng):
    rows = [{_piece_name(v, i): g} for i, g in enumerate(v.groups)]
    return _req(C2, "objs", v, JSON, json.dumps({"rows": rows}))


@builder(C2, "CSV row")
def _(v, rng):
    return _req(
        C2,
        "csv",
        v,
        [("Content-Type", "text/csv")],
        f'name,{v.kind}\r\nann,"{" ".join(v.groups[:2])}\n{" ".join(v.groups[2:])}"\r\n',
    )


# --- 3. HTML and XML as shown -----------------------------------------------------------------

C3 = "html"


def _html(name, v, body, headers=HTML):
    return _req(C3, name, v, headers, body)


@builder(C3, "comment between groups")
def _(v, rng):
    return _html("comment", v, f"<p>{v.word} " + "<!-- x -->".join(v.groups) + "</p>")


@builder(C3, "unknown inline tags")
def _(v, rng):
    tag = rng.choice(
        ["<big></big>", "<o:p></o:p>", "<img src=x>", "<wbr>", "<x-a></x-a>", "<font>"]
    )
    return _html("inline", v, f"<p>{v.word} " + tag.join(v.groups) + "</p>")


@builder(C3, "display:none decoy")
def _(v, rng):
    hide = rng.choice(
        ["display:none", "display: none !important", "visibility:hidden", "font-size:0"]
    )
    return _html(
        "decoy", v, f"<p>{v.word} " + f"<span style='{hide}'>zz</span>".join(v.groups) + "</p>"
    )


@builder(C3, "named spaces")
def _(v, rng):
    ent = rng.choice(["&ensp;", "&emsp;", "&nbsp;", "&thinsp;", "&#8199;", "&numsp;", "&puncsp;"])
    return _html("spaces", v, f"<p>{v.word} {ent.join(v.groups)}</p>")


@builder(C3, "decimal references with zeros")
def _(v, rng):
    return _html("dec0", v, f"<p>{v.word} {dec_entities(v.spelt(' '), rng.randint(0, 6))}</p>")


@builder(C3, "hex references without ;")
def _(v, rng):
    return _html(
        "hex", v, f"<p>{v.word} {hex_entities(v.spelt(' '), rng.randint(0, 4), False)} x</p>"
    )


@builder(C3, "references in an attribute")
def _(v, rng):
    attr = rng.choice(["title", "alt", "value", "data-x", "placeholder", "content"])
    return _html("attr", v, f'<p><input {attr}="{v.word} {hex_entities(v.spelt(" "))}">hello</p>')


@builder(C3, "CSS content string")
def _(v, rng):
    return _html("css", v, f'<style>p::after{{content:"{v.word} {v.spelt(" ")}"}}</style><p>x</p>')


@builder(C3, "CSS content escapes")
def _(v, rng):
    return _html(
        "css-esc", v, f'<style>p::after{{content:"{css_escape(v.written())}"}}</style><p>x</p>'
    )


@builder(C3, "hidden-ish elements")
def _(v, rng):
    tag = rng.choice(
        [
            "template",
            "noscript",
            "textarea",
            "title",
            "xmp",
            "script",
            "option",
            "noembed",
            "noframes",
        ]
    )
    inner = v.written()
    if tag == "script":
        inner = f'var c = "{v.word} {json_escape_all(v.spelt(" "))}";'
    return _html(tag, v, f"<html><head></head><body><{tag}>{inner}</{tag}><p>hi</p></body></html>")


@builder(C3, "iframe srcdoc")
def _(v, rng):
    inner = f"&lt;p&gt;{v.word} {dec_entities(v.spelt(' '))}&lt;/p&gt;"
    return _html("srcdoc", v, f'<iframe srcdoc="{inner}"></iframe>')


@builder(C3, "soft hyphens between digits")
def _(v, rng):
    return _html("shy", v, f"<p>{v.word} {v.spelt(' ', lambda d: d + '&shy;')}</p>")


@builder(C3, "XML character references")
def _(v, rng):
    ct = rng.choice(["application/xml", "text/xml", "application/atom+xml"])
    return _html(
        "xml",
        v,
        f'<?xml version="1.0"?><m><n>{v.word} {dec_entities(v.spelt("-"))}</n></m>',
        [("Content-Type", ct)],
    )


@builder(C3, "XML CDATA")
def _(v, rng):
    return _html(
        "cdata",
        v,
        f"<m><n><![CDATA[{v.written()}]]></n></m>",
        [("Content-Type", "application/xml")],
    )


@builder(C3, "XML internal entity")
def _(v, rng):
    body = (
        f'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY c "{v.spelt(" ")}">]>'
        f"<m><n>{v.word} &c;</n></m>"
    )
    return _html("dtd", v, body, [("Content-Type", "application/xml")])


@builder(C3, "HTML in a JSON string")
def _(v, rng):
    html_text = f"<p>{v.word} " + "<!-- -->".join(v.groups) + "</p>"
    return _req(C3, "json-html", v, JSON, json.dumps({"html_body": html_text}))


@builder(C3, "svg text")
def _(v, rng):
    parts = "".join(f"<tspan>{g}</tspan>" for g in v.groups)
    return _html("svg", v, f"<svg><text>{v.word} {parts}</text></svg>")


@builder(C3, "tel link")
def _(v, rng):
    return _html("mailto", v, f'<a href="mailto:x@example.com?body={pct(v.written())}">mail</a>')


# --- 4. Unicode separators and digit forms ----------------------------------------------------

C4 = "unicode"
_SEPS = [
    "\u2007",
    "\u202f",
    "\u3000",
    "\u2011",
    "\u2012",
    "\u2013",
    "\u2212",
    "\u30fc",
    "\uff0d",
    "\u2028",
    "\u2029",
    "\x85",
    "\x0b",
    "\x0c",
    "\r",
    "\u200d",
    "\u2060",
    "\ufe0f",
    "\u180e",
    "\u1680",
    "\u00b7",
    "\u2024",
    "\uff0e",
    "\u205f",
    "\u00a0",
    "\u200b\u200b",
    "\u2063",
    "\u115f",
    "\u3164",
    "\U000e0020",
]


def _digit_form(rng: random.Random) -> Callable[[str], str]:
    form = rng.choice(
        [
            "fullwidth",
            "math-bold",
            "math-mono",
            "arabic",
            "devanagari",
            "superscript",
            "keycap",
            "combining",
            "thai",
            "bengali",
        ]
    )
    if form == "fullwidth":
        return lambda d: chr(0xFF10 + int(d))
    if form == "math-bold":
        return lambda d: chr(0x1D7CE + int(d))
    if form == "math-mono":
        return lambda d: chr(0x1D7F6 + int(d))
    if form == "arabic":
        return lambda d: chr(0x0660 + int(d))
    if form == "devanagari":
        return lambda d: chr(0x0966 + int(d))
    if form == "thai":
        return lambda d: chr(0x0E50 + int(d))
    if form == "bengali":
        return lambda d: chr(0x09E6 + int(d))
    if form == "superscript":
        return lambda d: "⁰¹²³⁴⁵⁶⁷⁸⁹"[int(d)]
    if form == "keycap":
        return lambda d: d + "\ufe0f\u20e3"
    return lambda d: d + "\u0301"


def _uni(v: Value, rng: random.Random) -> str:
    sep = rng.choice(_SEPS)
    digit = _digit_form(rng) if rng.random() < 0.5 else str
    return f"{v.word} {v.spelt(sep, digit)}"


@builder(C4, "raw UTF-8 in JSON")
def _(v, rng):
    return _req(C4, "json", v, JSON, json.dumps({"note": _uni(v, rng)}, ensure_ascii=False))


@builder(C4, "JSON \\u escapes with surrogates")
def _(v, rng):
    return _req(C4, "json-esc", v, JSON, f'{{"note": "{json_escape_all(_uni(v, rng))}"}}')


@builder(C4, "form field")
def _(v, rng):
    return _req(C4, "form", v, FORM, "note=" + pct(_uni(v, rng), every=rng.random() < 0.5))


@builder(C4, "text/plain")
def _(v, rng):
    return _req(C4, "text", v, TEXT, _uni(v, rng))


@builder(C4, "HTML references of separators")
def _(v, rng):
    sep = dec_entities(rng.choice(_SEPS))
    return _req(C4, "html", v, HTML, f"<p>{v.word} {v.spelt(sep)}</p>")


@builder(C4, "zero-width joiners between digits")
def _(v, rng):
    zw = rng.choice(["\u200d", "\u200c", "\u2060", "\ufeff", "\u00ad", "\u034f"])
    return _req(
        C4,
        "zwj",
        v,
        JSON,
        json.dumps({"note": v.word + " " + zw.join(v.digits)}, ensure_ascii=rng.random() < 0.5),
    )


@builder(C4, "fullwidth digits in a form")
def _(v, rng):
    return _req(
        C4,
        "fw-form",
        v,
        FORM,
        "note=" + quote(v.word + " " + v.spelt(" ", lambda d: chr(0xFF10 + int(d)))),
    )


# --- 5. content behind the label ----------------------------------------------------------------

C5 = "behind-label"


@builder(C5, "octet-stream part holding text")
def _(v, rng):
    name = rng.choice(["a.log", "data.csv", "x.json", "noext", "p.bin"])
    headers, body = multipart(
        [
            (
                f'Content-Disposition: form-data; name="f"; filename="{name}"\r\nContent-Type: application/octet-stream',
                f"line 1\n{v.written()}\n".encode(),
            )
        ]
    )
    return _req(C5, "octet", v, headers, body)


@builder(C5, "part with no type")
def _(v, rng):
    headers, body = multipart(
        [
            (
                'Content-Disposition: form-data; name="f"; filename="x"',
                json.dumps({"n": json_escape_all(v.written())}).encode(),
            )
        ]
    )
    return _req(C5, "untyped", v, headers, body)


@builder(C5, "base64 attachment in JSON")
def _(v, rng):
    doc = {"attachments": [{"filename": "a.txt", "content": b64(v.written())}]}
    return _req(C5, "b64json", v, JSON, json.dumps(doc))


@builder(C5, "data: URI in JSON")
def _(v, rng):
    ctype = rng.choice(["text/plain", "application/octet-stream", "image/png", ""])
    return _req(
        C5, "datauri", v, JSON, json.dumps({"img": f"data:{ctype};base64,{b64(v.written())}"})
    )


@builder(C5, "percent-encoded URL in text")
def _(v, rng):
    return _req(
        C5, "url", v, JSON, json.dumps({"text": f"see https://x.example/?q={pct(v.written())}"})
    )


@builder(C5, "JSON in a JSON string")
def _(v, rng):
    inner = json.dumps({"note": json_escape_all(v.written())})
    return _req(C5, "jsonjson", v, JSON, json.dumps({"payload": inner}))


@builder(C5, "JSON sent as text/plain")
def _(v, rng):
    return _req(C5, "json-as-text", v, TEXT, f'{{"n": "{json_escape_all(v.written())}"}}')


@builder(C5, "NDJSON")
def _(v, rng):
    lines = ['{"a": 1}', f'{{"n": "{json_escape_all(v.written())}"}}', '{"b": 2}']
    return _req(C5, "ndjson", v, [("Content-Type", "application/x-ndjson")], "\n".join(lines))


@builder(C5, "form sent as text/plain")
def _(v, rng):
    return _req(C5, "form-as-text", v, TEXT, "a=1&note=" + pct(v.written()))


@builder(C5, "no content type at all")
def _(v, rng):
    return _req(C5, "none", v, [], f'{{"n": "{json_escape_all(v.written())}"}}')


@builder(C5, "JSON duplicate keys, first wins")
def _(v, rng):
    return _req(
        C5, "dupkey", v, JSON, f'{{"note": "{json_escape_all(v.written())}", "note": "thanks"}}'
    )


@builder(C5, "form duplicate fields")
def _(v, rng):
    return _req(C5, "dupform", v, FORM, f"note={pct(v.written())}&note=thanks")


# --- 6. charsets and content codings ------------------------------------------------------------

C6 = "charsets"


@builder(C6, "UTF-16 by BOM")
def _(v, rng):
    codec = rng.choice(["utf-16", "utf-16-be", "utf-32"])
    data = v.written().encode(codec)
    if codec == "utf-16-be":
        data = b"\xfe\xff" + data
    return _req(C6, codec, v, [("Content-Type", "text/plain")], data)


@builder(C6, "UTF-16 declared, no BOM")
def _(v, rng):
    codec = rng.choice(["utf-16-le", "utf-16-be"])
    return _req(
        C6,
        "utf16nobom",
        v,
        [("Content-Type", f"text/plain; charset={codec}")],
        v.written().encode(codec),
    )


@builder(C6, "UTF-7 declared")
def _(v, rng):
    return _req(
        C6,
        "utf7",
        v,
        [("Content-Type", "text/plain; charset=utf-7")],
        f"{v.word} ".encode() + utf7(v.spelt(" ")),
    )


@builder(C6, "EBCDIC declared")
def _(v, rng):
    codec = rng.choice(["cp500", "cp037", "cp1140"])
    return _req(
        C6,
        "ebcdic",
        v,
        [("Content-Type", f"text/plain; charset={codec}")],
        v.written().encode(codec),
    )


@builder(C6, "ISO-2022-JP fullwidth digits")
def _(v, rng):
    text = v.word + " " + v.spelt(" ", lambda d: chr(0xFF10 + int(d)))
    return _req(
        C6,
        "2022",
        v,
        [("Content-Type", "text/plain; charset=iso-2022-jp")],
        text.encode("iso2022_jp"),
    )


@builder(C6, "Shift_JIS undeclared fullwidth")
def _(v, rng):
    text = v.word + " " + v.spelt(" ", lambda d: chr(0xFF10 + int(d)))
    codec = rng.choice(["shift_jis", "gb18030", "euc_kr", "big5"])
    return _req(C6, "sjis", v, [("Content-Type", "text/plain")], text.encode(codec))


@builder(C6, "gzip and friends")
def _(v, rng):
    data = json.dumps({"note": v.written()}).encode()
    coding = rng.choice(
        [
            "gzip",
            "x-gzip",
            "deflate",
            "deflate-raw",
            "gzip, gzip",
            "GZIP",
            "identity, gzip",
            "gzip-2members",
        ]
    )
    if coding == "deflate":
        body = zlib.compress(data)
    elif coding == "deflate-raw":
        body, coding = raw_deflate(data), "deflate"
    elif coding == "gzip, gzip":
        body = gz(gz(data))
    elif coding == "gzip-2members":
        body, coding = gz(data[:10]) + gz(data[10:]), "gzip"
    else:
        body = gz(data)
    return _req(C6, "coding:" + coding, v, [*JSON, ("Content-Encoding", coding)], body)


@builder(C6, "two Content-Encoding lines")
def _(v, rng):
    data = gz(gz(json.dumps({"note": v.written()}).encode()))
    return _req(
        C6, "2lines", v, [*JSON, ("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")], data
    )


@builder(C6, "charset declared twice")
def _(v, rng):
    return _req(
        C6,
        "2charset",
        v,
        [("Content-Type", "text/plain; charset=utf-8; charset=utf-16")],
        v.written().encode("utf-16"),
    )


@builder(C6, "UTF-8 BOM then JSON")
def _(v, rng):
    return _req(C6, "bomjson", v, JSON, b"\xef\xbb\xbf" + json.dumps({"n": v.written()}).encode())


@builder(C6, "chunked with a trailer")
def _(v, rng):
    body = json.dumps({"note": "hello"}).encode()
    raw = (
        b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nTrailer: X-Note\r\nConnection: close\r\n\r\n"
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n"
        + f"X-Note: {v.written()}\r\n\r\n".encode()
    )
    return Req(C6, "trailer", v, raw=raw)


@builder(C6, "chunked body with chunk extensions")
def _(v, rng):
    body = json.dumps({"note": v.written()}).encode()
    mid = len(body) // 2
    raw = (
        b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{mid:x};ext=1\r\n".encode()
        + body[:mid]
        + b"\r\n"
        + f"{len(body) - mid:x}\r\n".encode()
        + body[mid:]
        + b"\r\n0\r\n\r\n"
    )
    return Req(C6, "chunked", v, raw=raw)


@builder(C6, "answer in x-gzip twice")
def _(v, rng):
    data = gz(gz(json.dumps({"note": v.written()}).encode()))
    return _req(
        C6,
        "answer-gz",
        v,
        [],
        b"",
        method="GET",
        path="/tickets/1",
        answer=(200, [*JSON, ("Content-Encoding", "gzip, x-gzip")], data),
    )


# --- 7. parameters and request parts -----------------------------------------------------------

C7 = "params"


@builder(C7, "RFC 2231 filename continuations")
def _(v, rng):
    enc = pct(v.written())
    h = len(enc) // 2
    head = (
        f"Content-Disposition: form-data; name=\"f\"; filename*0*=utf-8''{enc[:h]}; "
        f"filename*1*={enc[h:]}\r\nContent-Type: text/plain"
    )
    headers, body = multipart([(head, b"hello")])
    return _req(C7, "2231", v, headers, body)


@builder(C7, "RFC 2231 in UTF-16")
def _(v, rng):
    enc = (
        pct(v.written().encode("utf-16-le").decode("latin-1"))
        if False
        else "".join(f"%{b:02X}" for b in v.written().encode("utf-16-le"))
    )
    head = f"Content-Disposition: form-data; name=\"f\"; filename*=utf-16le''{enc}\r\nContent-Type: text/plain"
    headers, body = multipart([(head, b"hello")])
    return _req(C7, "2231-16", v, headers, body)


@builder(C7, "encoded word in a filename")
def _(v, rng):
    word = f"=?utf-8?b?{b64(v.written())}?="
    headers, body = multipart(
        [(f'Content-Disposition: form-data; name="f"; filename="{word}"', b"hello")]
    )
    return _req(C7, "2047", v, headers, body)


@builder(C7, "header name")
def _(v, rng):
    return _req(C7, "hname", v, [*JSON, (f"X-{v.kind}-{v.spelt('-')}", "1")], b"{}")


@builder(C7, "header value split over two lines of one name")
def _(v, rng):
    h = len(v.groups) // 2
    return _req(
        C7,
        "hsplit",
        v,
        [
            *JSON,
            ("X-Note", f"{v.word} {' '.join(v.groups[:h])}"),
            ("X-Note", " ".join(v.groups[h:])),
        ],
        b"{}",
    )


@builder(C7, "underscores")
def _(v, rng):
    return _req(C7, "underscore", v, JSON, json.dumps({"n": f"{v.word}_{v.spelt('_')}"}))


@builder(C7, "boundary given twice")
def _(v, rng):
    _, body = multipart(
        [('Content-Disposition: form-data; name="n"', v.written().encode())], "bbb2"
    )
    return _req(
        C7,
        "2boundary",
        v,
        [("Content-Type", "multipart/form-data; boundary=aaa1; boundary=bbb2")],
        body,
    )


@builder(C7, "query string")
def _(v, rng):
    return _req(C7, "query", v, JSON, b"{}", path="/hook?q=" + pct(v.written(), rng.random() < 0.5))


@builder(C7, "credential-ish headers")
def _(v, rng):
    name = rng.choice(
        ["Cookie", "X-Request-ID", "Authorization", "Referer", "User-Agent", "Forwarded"]
    )
    value = {
        "Cookie": f"note={pct(v.written())}",
        "Authorization": "Basic " + b64("u:" + v.written()),
        "Referer": f"https://x.example/?{pct(v.written())}",
    }.get(name, v.written())
    return _req(C7, "h:" + name, v, [*JSON, (name, value)], b"{}")


@builder(C7, "answer headers")
def _(v, rng):
    name = rng.choice(
        ["Location", "Content-Disposition", "Set-Cookie", "Link", "X-Note", "Refresh"]
    )
    value = {
        "Location": f"https://x.example/c/{pct(v.written())}",
        "Content-Disposition": f"attachment; filename*=utf-8''{pct(v.written())}",
        "Set-Cookie": f"n={pct(v.written())}; Path=/",
        "Link": f'<https://x.example/{pct(v.written())}>; rel="x"',
        "Refresh": f"0; url=/c?{pct(v.written())}",
    }.get(name, f"=?utf-8?q?{v.written().replace(' ', '_')}?=")
    return _req(
        C7,
        "ah:" + name,
        v,
        [],
        b"",
        method="GET",
        path="/tickets/1",
        answer=(200, [*JSON, (name, value)], b'{"ok": true}'),
    )


# --- 8. line folding ----------------------------------------------------------------------------

C8 = "folding"


@builder(C8, "iCalendar DESCRIPTION folded inside digits")
def _(v, rng):
    text = f"DESCRIPTION:{v.written()}"
    at = rng.randint(14, len(text) - 2)
    body = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"
        + text[:at]
        + "\r\n "
        + text[at:]
        + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return _req(C8, "ics", v, [("Content-Type", "text/calendar")], body)


@builder(C8, "vCard NOTE folded")
def _(v, rng):
    text = f"NOTE:{v.word} {v.spelt('')}"
    fold = rng.choice(["\r\n ", "\r\n\t", "\n "])
    body = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\n"
        + fold.join(text[i : i + 7] for i in range(0, len(text), 7))
        + "\r\nEND:VCARD\r\n"
    )
    return _req(
        C8,
        "vcf",
        v,
        [("Content-Type", rng.choice(["text/vcard", "text/x-vcard", "text/plain"]))],
        body,
    )


@builder(C8, "quoted-printable soft breaks inside digits")
def _(v, rng):
    inner = qp_soft(v.written(), rng.randint(1, 3)).encode()
    return _req(
        C8,
        "qp",
        v,
        [("Content-Type", "message/rfc822")],
        email_message(inner, "text/plain", "quoted-printable"),
    )


@builder(C8, "QP part in multipart/form-data")
def _(v, rng):
    head = 'Content-Disposition: form-data; name="n"\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain'
    headers, body = multipart([(head, qp_soft(v.written(), 2).encode())])
    return _req(C8, "qp-form", v, headers, body)


@builder(C8, "long space runs before a newline")
def _(v, rng):
    gap = " " * rng.choice([40, 150, 300, 1000]) + "\n"
    return _req(C8, "gap", v, TEXT, f"{v.word} " + gap.join(v.groups))


@builder(C8, "obs-folded part header")
def _(v, rng):
    h = len(v.groups) // 2
    head = (
        f'Content-Disposition: form-data; name="n";\r\n filename="{v.word} {" ".join(v.groups[:h])}\r\n'
        f' {" ".join(v.groups[h:])}"'
    )
    headers, body = multipart([(head, b"hello")])
    return _req(C8, "obsfold", v, headers, body)


# --- 9. parts redactor cannot read ------------------------------------------------------------------

C9 = "unread"


def _stored_zip(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(name, text)
    return buf.getvalue()


def _tar(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    data = text.encode()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _png_text(text: str) -> bytes:
    from tests.bodies.documents import PNG

    chunk = b"Comment\x00" + text.encode("latin-1")
    crc = zlib.crc32(b"tEXt" + chunk).to_bytes(4, "big")
    block = len(chunk).to_bytes(4, "big") + b"tEXt" + chunk + crc
    return PNG[:33] + block + PNG[33:]


def _unread_doc(v: Value, rng: random.Random) -> tuple[str, str, bytes]:
    kind = rng.choice(["pdf", "zip", "zip-stored", "tar", "png-text", "gzip-txt", "docx"])
    text = v.written()
    if kind == "pdf":
        return kind, "application/pdf", pdf_with_text(text)
    if kind == "zip":
        return kind, "application/zip", zip_of({"note.txt": text})
    if kind == "zip-stored":
        return kind, "application/zip", _stored_zip("note.txt", text)
    if kind == "tar":
        return kind, "application/x-tar", _tar("note.txt", text)
    if kind == "png-text":
        return kind, "image/png", _png_text(text)
    if kind == "gzip-txt":
        return kind, "application/gzip", gz(text.encode())
    xml = f"<w:document><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    return (
        kind,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        zip_of({"word/document.xml": xml}),
    )


@builder(C9, "multipart file")
def _(v, rng):
    kind, ctype, data = _unread_doc(v, rng)
    headers, body = multipart(
        [
            (
                f'Content-Disposition: form-data; name="f"; filename="f.{kind}"\r\nContent-Type: {ctype}',
                data,
            )
        ]
    )
    return _req(C9, "mp:" + kind, v, headers, body)


@builder(C9, "e-mail attachment")
def _(v, rng):
    kind, ctype, data = _unread_doc(v, rng)
    return _req(
        C9,
        "mail:" + kind,
        v,
        [("Content-Type", "message/rfc822")],
        email_message(base64.encodebytes(data), ctype, "base64"),
    )


@builder(C9, "base64 in a JSON attachment")
def _(v, rng):
    kind, ctype, data = _unread_doc(v, rng)
    return _req(
        C9,
        "json:" + kind,
        v,
        JSON,
        json.dumps({"attachments": [{"type": ctype, "content": b64(data)}]}),
    )


@builder(C9, "body itself")
def _(v, rng):
    kind, ctype, data = _unread_doc(v, rng)
    return _req(C9, "body:" + kind, v, [("Content-Type", ctype)], data)


# --- 10. redactor's own output ----------------------------------------------------------------------

C10 = "own-output"


@builder(C10, "X-Request-ID with a value")
def _(v, rng):
    return _req(
        C10, "reqid", v, [*JSON, ("X-Request-ID", v.spelt(rng.choice(["-", ".", ""])))], b'{"a": 1}'
    )


@builder(C10, "malformed JSON around a value")
def _(v, rng):
    return _req(C10, "badjson", v, JSON, f'{{"n": "{v.written()}", ')


@builder(C10, "bad percent escape in a form")
def _(v, rng):
    return _req(C10, "badform", v, FORM, f"n={pct(v.written())}&%zz=%")


# --- 11. vetoes ------------------------------------------------------------------------------------

C11 = "vetoes"


@builder(C11, "card in the request path")
def _(v, rng):
    if v.kind != "card":
        v = make_value(rng, "card")
    sep = rng.choice(["", "-", "%20"])
    return _req(C11, "path", v, JSON, b"{}", path=f"/hook/cards/{v.spelt(sep)}")


@builder(C11, "generic label on a 15-16 digit card")
def _(v, rng):
    while v.kind != "card" or len(v.digits) not in (15, 16):
        v = make_value(rng, "card")
    label = rng.choice(
        ["order", "ticket", "invoice", "reference", "transaction", "id", "order #", "ticket no."]
    )
    return _req(
        C11,
        "label",
        v,
        JSON,
        json.dumps({"note": f"{label} {v.spelt(rng.choice([' ', '', '-']))}"}),
    )


# --- 12. the number before "over the phone" -------------------------------------------------------

C12 = "phone"


@builder(C12, "read over the phone")
def _(v, rng):
    if v.kind != "card":
        v = make_value(rng, "card")
    phrase = rng.choice(
        [
            "the customer read the card number over the phone: {}",
            "called on the phone and gave the card {} to confirm",
            "phone call, card number is {}",
            "over the phone: {} (card)",
            "Phone: 555-0100. Card: {}",
        ]
    )
    return _req(
        C12,
        "phone",
        v,
        JSON,
        json.dumps({"note": phrase.format(v.spelt(rng.choice([" ", "-", ""])))}),
    )


# --- 13. legacy ranges --------------------------------------------------------------------------------

C13 = "legacy"
_LEGACY = [s for s in CARD_SPECS if s[1] in ("2131", "1800", "2014", "2149")]


@builder(C13, "legacy range in JSON")
def _(v, rng):
    v = make_value(rng, "card", rng.choice(_LEGACY))
    return _req(C13, "json", v, JSON, json.dumps({"note": v.written(rng.choice([" ", "-", ""]))}))


@builder(C13, "legacy range in base64")
def _(v, rng):
    v = make_value(rng, "card", rng.choice(_LEGACY))
    return _req(C13, "b64", v, JSON, json.dumps({"att": b64(v.written())}))


@builder(C13, "legacy range in a header")
def _(v, rng):
    v = make_value(rng, "card", rng.choice(_LEGACY))
    return _req(C13, "header", v, [*JSON, ("X-Note", v.written())], b"{}")


# --- more readers: bidi, markup that draws attributes, links, rarer codings ---------------------

C15 = "more-readers"


def _rtl(text: str) -> str:
    return text[::-1]


@builder(C15, "right-to-left override in JSON text")
def _(v, rng):
    start, end = rng.choice([("\u202e", "\u202c"), ("\u202e", ""), ("\u2067\u202e", "\u2069")])
    note = f"{v.word} {start}{_rtl(v.spelt(rng.choice([' ', '-'])))}{end} thanks"
    return _req(C15, "rlo", v, JSON, json.dumps({"note": note}, ensure_ascii=rng.random() < 0.5))


@builder(C15, "bdo dir=rtl")
def _(v, rng):
    return _req(C15, "bdo", v, HTML, f"<p>{v.word} <bdo dir=rtl>{_rtl(v.spelt(' '))}</bdo></p>")


@builder(C15, "CSS bidi-override")
def _(v, rng):
    style = "unicode-bidi:bidi-override;direction:rtl"
    return _req(
        C15,
        "css-rtl",
        v,
        HTML,
        f"<p>{v.word} <span style='{style}'>{_rtl(v.spelt(' '))}</span></p>",
    )


@builder(C15, "ordered list start")
def _(v, rng):
    return _req(C15, "ol-start", v, HTML, f"<p>{v.word}</p><ol start={v.digits}><li>x</li></ol>")


@builder(C15, "CSS attr() content")
def _(v, rng):
    body = (
        f"<style>.n::after{{content:attr(data-n)}}</style>"
        f'<p class=n data-n="{v.spelt(" ")}">{v.word}</p>'
    )
    return _req(C15, "attr()", v, HTML, body)


@builder(C15, "hidden input value")
def _(v, rng):
    return _req(
        C15, "input", v, HTML, f'<form><input type=hidden name=cc value="{v.written()}"></form>'
    )


@builder(C15, "link path in text")
def _(v, rng):
    return _req(
        C15,
        "link-path",
        v,
        JSON,
        json.dumps({"text": f"{v.word} on file, see https://pay.example/c/{v.spelt('-')}"}),
    )


@builder(C15, "link query naming the value")
def _(v, rng):
    name = "cc" if v.kind == "card" else "ssn"
    return _req(
        C15,
        "link-query",
        v,
        JSON,
        json.dumps({"text": f"see https://pay.example/?{name}={v.spelt('')}"}),
    )


@builder(C15, "uuencoded e-mail part")
def _(v, rng):
    import binascii

    data = v.written().encode()
    uu = b"begin 644 note.txt\r\n" + binascii.b2a_uu(data) + b"`\r\nend\r\n"
    return _req(
        C15,
        "uuencode",
        v,
        [("Content-Type", "message/rfc822")],
        email_message(uu, "text/plain", "x-uuencode"),
    )


@builder(C15, "unknown content codings")
def _(v, rng):
    coding = rng.choice(["compress", "zstd", "br", "exi", "pack200-gzip", "aes128gcm"])
    return _req(
        C15,
        "coding:" + coding,
        v,
        [*JSON, ("Content-Encoding", coding)],
        gz(json.dumps({"n": v.written()}).encode()),
    )


@builder(C15, "JSON5-ish single quotes and hex escapes")
def _(v, rng):
    esc = "".join(f"\\x{ord(c):02x}" for c in v.spelt(" "))
    return _req(C15, "json5", v, JSON, "{note: '" + v.word + " " + esc + "'}")


@builder(C15, "Q-encoded word in JSON")
def _(v, rng):
    q = "".join(f"={b:02X}" if not chr(b).isalpha() else chr(b) for b in v.written().encode())
    return _req(C15, "q-word", v, JSON, json.dumps({"subject": f"=?utf-8?q?{q}?="}))


@builder(C15, "digit per line in HTML")
def _(v, rng):
    return _req(C15, "br-digits", v, HTML, f"<p>{v.word}<br>" + "<br>".join(v.spelt(" ")) + "</p>")


# --- combinations: nested encodings -----------------------------------------------------------

C14 = "nested"

# Text -> text layers, each a way a reader decodes.
LAYERS: dict[str, Callable[[str, random.Random], str]] = {
    "percent": lambda t, r: pct(t, r.random() < 0.5),
    "html-dec": lambda t, r: dec_entities(t, r.randint(0, 3)),
    "html-hex": lambda t, r: hex_entities(t, r.randint(0, 3), r.random() < 0.5),
    "html-attr": lambda t, r: f'<a title="{t.replace(chr(34), "&quot;")}">x</a>',
    "html-comment": lambda t, r: f"<p>hi</p><!-- {t} -->",
    "base64": lambda t, r: b64(t),
    "b64-gzip": lambda t, r: b64(gz(t.encode())),
    "b64-utf16": lambda t, r: b64(t.encode("utf-16")),
    "json-esc": lambda t, r: json_escape_all(t),
    "json-doc": lambda t, r: json.dumps({"n": t}),
    "qp": lambda t, r: (
        quopri.encodestring(t.encode(), quotetabs=True).decode().replace("=\n", "=\r\n")
    ),
    "css": lambda t, r: css_escape(t),
    "data-uri": lambda t, r: f"data:text/plain;base64,{b64(t)}",
    "rfc2047": lambda t, r: f"=?utf-8?b?{b64(t)}?=",
    "fullwidth": lambda t, r: "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in t),
}

# Containers: text -> (headers, body, path).
CONTAINERS: dict[str, Callable[[str, random.Random], tuple[Headers, bytes, str]]] = {
    "json": lambda t, r: (JSON, json.dumps({"note": t}).encode(), "/hook"),
    "form": lambda t, r: (FORM, ("note=" + quote(t, safe="")).encode(), "/hook"),
    "html": lambda t, r: (HTML, f"<p>{t}</p>".encode(), "/hook"),
    "text": lambda t, r: (TEXT, t.encode(), "/hook"),
    "xml": lambda t, r: (
        [("Content-Type", "application/xml")],
        f"<m>{t.replace('&', '&amp;').replace('<', '&lt;')}</m>".encode(),
        "/hook",
    ),
    "mp-b64-part": lambda t, r: (
        (
            *multipart(
                [
                    (
                        'Content-Disposition: form-data; name="f"; filename="x.html"\r\nContent-Type: text/html\r\n'
                        "Content-Transfer-Encoding: base64",
                        base64.encodebytes(t.encode()).strip(),
                    )
                ]
            ),
            "/hook",
        )
    ),
    "mp-gzip-part": lambda t, r: (
        (
            *multipart(
                [
                    (
                        'Content-Disposition: form-data; name="f"; filename="x.txt.gz"\r\nContent-Type: text/plain\r\n'
                        "Content-Encoding: gzip",
                        gz(t.encode()),
                    )
                ]
            ),
            "/hook",
        )
    ),
    "mp-octet": lambda t, r: (
        (
            *multipart(
                [
                    (
                        'Content-Disposition: form-data; name="f"; filename="x"\r\nContent-Type: application/octet-stream',
                        t.encode(),
                    )
                ]
            ),
            "/hook",
        )
    ),
    "mp-preamble": lambda t, r: (
        [("Content-Type", "multipart/form-data; boundary=pr3")],
        (
            f'{t}\r\n--pr3\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--pr3--\r\n'
            f"epilogue {t}\r\n"
        ).encode(),
        "/hook",
    ),
    "rfc822": lambda t, r: (
        [("Content-Type", "message/rfc822")],
        email_message(
            email_message(t.encode(), "text/html", "8bit", "in2"), "message/rfc822", "8bit"
        ),
        "/hook",
    ),
    "mail-b64": lambda t, r: (
        [("Content-Type", "message/rfc822")],
        email_message(base64.encodebytes(t.encode()), "text/html", "base64"),
        "/hook",
    ),
    "header": lambda t, r: ([*JSON, ("X-Note", t[:4000])], b"{}", "/hook"),
    "query": lambda t, r: (JSON, b"{}", "/hook?q=" + quote(t, safe="")),
    "json-gzip": lambda t, r: (
        [*JSON, ("Content-Encoding", "gzip")],
        gz(json.dumps({"n": t}).encode()),
        "/hook",
    ),
    "answer-json": lambda t, r: ([("X-Answer", "1")], json.dumps({"note": t}).encode(), "ANSWER"),
}


def _nested(v: Value, rng: random.Random) -> Req:
    text = v.written(rng.choice([" ", "-", ""]))
    names = rng.sample(sorted(LAYERS), rng.randint(1, 3))
    for name in names:
        text = LAYERS[name](text, rng)
    container = rng.choice(sorted(CONTAINERS))
    headers, body, path = CONTAINERS[container](text, rng)
    label = "+".join(names) + " in " + container
    if path == "ANSWER":
        return _req(
            C14, label, v, [], b"", method="GET", path="/tickets/1", answer=(200, JSON, body)
        )
    return _req(C14, label, v, headers, body, path=path)


CLASSES[C14] = [("nested", _nested)]


def generate(cls: str, count: int, seed: int) -> list[Req]:
    """`count` requests of one class, cycling over its builders with fresh values."""
    rng = random.Random(f"{cls}:{seed}")
    builders = CLASSES[cls]
    out = []
    for i in range(count):
        _name, fn = builders[i % len(builders)]
        out.append(fn(make_value(rng), rng))
    return out
