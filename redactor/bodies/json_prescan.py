"""A fast first look at JSON bodies: the texts that could hold a value, or "use the codec".

Most webhooks carry no card number. Proving that costs one `orjson.loads` and either a look
at the raw bytes (plain ASCII JSON without a letter-free stretch of 9 digits: nothing to find)
or a detector call on the few strings with enough digits, instead of the position-preserving
scan that rewriting needs (benchmarks/README.md, Proxy: the scan was a third of a message's
CPU).

It answers only where the answer is certain to match the full codec (json_body.py): a plain
string is that codec's segment text exactly, under the same field name; a 9-19 digit integer
is the codec's segment of its digits (the literal, as `str` writes a JSON integer); an HTML
string is either proved clean by `html_may_hold_value` or read into the very segments the
codec would make of it (`HtmlView`, the view the codec picks for it). Anything else the codec
treats specially (a large float, a charset other than UTF-8, a BOM, invalid JSON, a string
that holds a document of its own: JSON or encoded words) sends the body to the codec
instead. Object keys are texts too, under the key their object sits
under. Bodies over `MAX_PRESCAN_BYTES` go to the codec directly: its limits (fields,
nesting) stop a hostile document before it is built, where `json.loads` would build it whole.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import json
import re
from typing import Any

import orjson

from redactor.bodies.attachments import text_charset
from redactor.bodies.hidden import has_data_scheme, may_hide_text
from redactor.bodies.html_body import (
    HtmlView,
    looks_like_html,
    marked_text_runs,
)
from redactor.bodies.limits import BodyLimits
from redactor.bodies.mime import parse_content_type
from redactor.detection.context import names_kind
from redactor.detection.digits import digit_count
from redactor.detection.screen import (
    WINDOW_CHARS,
    as_plain,
    marked_may_hold_value,
    may_hold_value,
    plain_may_hold_value,
    raw_json_may_hold_value,
    stretch_may_hold_value,
)
from redactor.errors import NestingTooDeepError, RedactorError, TooManyFieldsError

__all__ = ["html_may_hold_value", "plain_json_texts"]

# Fewer digits than this cannot hold a PAN (12+) or an SSN (9).
MIN_DIGITS = 9
MAX_PRESCAN_BYTES = 1024 * 1024
_JSON_TYPES = frozenset({"application/json", "text/json"})
_ENCODINGS_WE_SKIP = (None, "", "identity")


@functools.lru_cache(maxsize=64)
def _utf8_json(content_type: str | None) -> bool:
    # A route sees a handful of Content-Type spellings: each is parsed once.
    parsed = parse_content_type(content_type)
    if parsed is None:
        return False
    media_type = parsed.media_type
    if not (media_type in _JSON_TYPES or media_type.endswith("+json")):
        return False
    return (parsed.params.get("charset") or "utf-8").lower() in ("utf-8", "utf8")


def _reject_constant(_name: str) -> Any:
    raise ValueError("NaN/Infinity")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps only the last of two members with one name: a value in the first would
    # never be looked at here, while the upstream may read it. Such a body goes to the codec,
    # which scans every member where it stands.
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member name")
    return members


def _looks_like_document(text: str) -> bool:
    stripped = text.strip()
    if stripped[:1] == '"' and stripped[-1:] == '"' and len(stripped) >= 2:
        return True  # a JSON string literal: the codec reads its escapes
    return stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]")


def _may_hide_text(body: bytes) -> bool:
    """True when a string of the body may hide text behind percent escapes, a `data:` URI
    (in any case, in prose too) or base64 (a blob in a string without a space that decodes
    to text): the glance at the raw bytes cannot vouch for it, the walk looks at each string
    (bodies.hidden)."""
    if b"%" in body:
        return True
    if has_data_scheme(body):
        return True
    # Strings of 16 or more bytes without a space (prose has one early, so the search is a
    # memchr for each quote and a few steps). An id (a ULID, a hex digest) is no blob.
    return any(_base64_of_text(m) for m in _SPACELESS_STRING.findall(body))


_SPACELESS_STRING = re.compile(rb'"([^" ]{16,})"')
# A data: URI's `;base64,`, in any case (`;BASE64,` is one to a browser).
_BASE64_MARKER = re.compile(rb"(?i);base64,")


def _base64_of_text(run: bytes) -> bool:
    marker = _BASE64_MARKER.search(run) if b";" in run else None
    if marker is not None:
        run = run[marker.end() :]  # a data: URI: its payload (up to the closing quote or backslash)
        run = run.split(b"\\", 1)[0] if run.count(b"\\") and b"\\n" not in run else run
    # JSON's `\n` between the lines of a wrapped blob; the first whole groups decide.
    whole = run.replace(b"\\n", b"").replace(b"\\r", b"")
    whole = whole[: len(whole) // 4 * 4]
    if len(whole) < 12 or whole.isupper() or whole.islower() or whole.isdigit():
        return False
    try:
        if b"-" in whole or b"_" in whole:
            raw = base64.urlsafe_b64decode(whole)
        else:
            raw = base64.b64decode(whole, validate=True)
    except (binascii.Error, ValueError):
        return False
    return text_charset(raw) is not None


# Base64 of 9 digits is 12 characters; a shorter string is no blob.
_MIN_BASE64 = 16


def plain_json_texts(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    limits: BodyLimits | None = None,
    *,
    every_run: bool = False,
) -> list[tuple[str, str | None]] | None:
    """(text, field name) of every string in a JSON body that has enough digits to hold a
    value, when each is plain text; None when the body needs the full codec.

    With `limits`, raises TooManyFieldsError or NestingTooDeepError as the codec would; a
    body longer than the digit limit goes to the codec, which counts digits as it scans.
    `every_run`: a plain text with any digit run of 9+ digits is handed on, candidate or not
    (the detector records every run it reads for the egress verifier: screen.py).
    """
    if (content_encoding or "").strip().lower() not in _ENCODINGS_WE_SKIP:
        return None
    if len(body) > MAX_PRESCAN_BYTES:
        return None
    if not _utf8_json(content_type) or body.startswith(b"\xef\xbb\xbf"):
        return None
    if limits is not None and len(body) > limits.max_digits:
        # It may hold more digits than the limit allows: the codec counts them as it scans.
        return None
    if limits is not None and _may_hold_too_many_tags(body, limits.max_tags):
        # HTML in its strings may hold more tags than the limit allows: HtmlView, in the
        # codec, counts them as it scans (413 too_many_tags), even where no digit is near.
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # the codec raises the proper error
    if _named_pieces(body):
        return None  # short digit strings side by side under a card's or an SSN's name
    plain_ascii = _plain_ascii(body)
    if plain_ascii and not _may_hide_text(body) and _clean_at_a_glance(body, doc, limits):
        return []
    if not _all_members_kept(body, doc):
        # A value in the first of two members with one name would never be looked at here,
        # while the upstream may read it: the stdlib reads the body again, with a check.
        try:
            doc = json.loads(
                body.decode("utf-8"),
                parse_constant=_reject_constant,
                object_pairs_hook=_unique_members,
            )
        except (ValueError, RecursionError):
            return None
    walk = _Walk(limits, plain_ascii=plain_ascii, every_run=every_run)
    try:
        walk.value(doc, None, 0)
    except (_NeedsCodec, RecursionError):
        return None
    return walk.texts


# Strings of 2-17 digits side by side, digits escaped or not, or integers of 2-17 digits, in
# an array under a key or as adjacent members (`"card": ["4111", "1111", ...]`, `"card": [4111,
# 1111, ...]`, `"cc_first8": "41111111", "cc_last8": ...`): under a name that names a card or
# an SSN, the codec reads them as a run of neighbours (json_body.py, redaction/neighbours.py);
# this path does not. Every adjacent pair is tried (the second member is a lookahead), so a
# named piece anywhere in a run is seen. Webhooks carry ids as digit strings side by side
# (`"actor_id": "20978392", "assignee_id": ...`): their names are looked up once (cached) and
# they stay on this path.
_WS = rb"[ \t\r\n]*"
# A piece: a string of digits (or `\u003X` escapes), or an integer (no fraction, exponent or
# sign; JSON writes none with a leading zero).
_PIECE = rb'(?:"[0-9\\u]{2,108}"|[0-9]{2,17}(?![0-9.eE]))'
# A string piece followed by another piece, as the next array item or the next member's
# value: one C pass over the body with single-character repeats only (sre's fast path; an
# alternation repeated costs ten times more), found from its opening quote (a literal).
_NEXT = (
    rb"(?="
    + _WS
    + rb","
    + _WS
    + rb'(?:"([^"\\]{1,128})"'
    + _WS
    + rb":"
    + _WS
    + rb")?"
    + _PIECE
    + rb")"
)
_STRING_THEN_COMMA = re.compile(rb'"[0-9\\u]{2,108}"' + _NEXT)
# An integer piece as a member's value or the first item of a member's array, found from the
# `":` after the key (a literal): a pass that tries every digit (`[0-9]` first) costs ten
# times more on an e-mail thread full of dates. Only a named key is looked at further.
_INTEGER_MEMBER = re.compile(rb'":' + _WS + rb"(?:\[" + _WS + rb")?[0-9]{2,17}(?![0-9.eE])")
# A piece at the end of a window that ends at a member's key: `4111, "cc2": 1111`.
_PIECE_BEFORE = re.compile(
    rb'(?:"[0-9\\u]{2,108}"|(?<![0-9.eE+\-])[0-9]{2,17})' + _WS + rb"," + _WS + rb"\Z"
)
# From after such a piece: the comma, the next member's key (captured) or nothing, a piece.
# (A key with an escape is not matched: no card's field is named that way.)
_NEXT_PIECE = re.compile(
    _WS + rb"," + _WS + rb'(?:"([^"\\]{1,128})"' + _WS + rb":" + _WS + rb")?" + _PIECE
)
_ESCAPED_DIGIT = re.compile(rb"\\u003([0-9])")
_JSON_SPACE = b" \t\r\n"
_OPEN_BRACKET, _COLON, _QUOTE = ord("["), ord(":"), ord('"')


def _is_piece(literal: bytes) -> bool:
    if literal[:1] != b'"':
        return True  # an integer the pattern matched: 2-17 digits
    digits = _ESCAPED_DIGIT.sub(rb"\1", literal[1:-1]) if b"\\" in literal else literal[1:-1]
    return 2 <= len(digits) <= 17 and digits.isdigit()


def _key_before(body: bytes, at: int) -> bytes | None:
    """The key of the member whose value starts at `at` (a string, or an array holding it
    first): `"key": "4111"`, `"key": ["4111"`; None when there is none. Walks back from `at`
    (no copy of the body: this runs per candidate on every webhook)."""
    i = _skip_space_back(body, at - 1)
    if i >= 0 and body[i] == _OPEN_BRACKET:
        i = _skip_space_back(body, i - 1)
    if i < 0 or body[i] != _COLON:
        return None
    i = _skip_space_back(body, i - 1)
    if i < 0 or body[i] != _QUOTE:
        return None
    start = body.rfind(b'"', max(0, i - 129), i)
    return body[start + 1 : i] if start >= 0 else None


def _skip_space_back(body: bytes, i: int) -> int:
    while i >= 0 and body[i] in _JSON_SPACE:
        i -= 1
    return i


@functools.lru_cache(maxsize=1024)
def _named(key: bytes | None) -> bool:
    # Cached on the raw bytes: a route's webhooks carry the same few keys in every message.
    return key is not None and names_kind(key.decode("utf-8", "replace")) is not None


def _named_pieces(body: bytes) -> bool:
    """Two short digit strings side by side where a key names a card or an SSN (every
    adjacent pair is tried, so a named piece anywhere in a run is seen)."""
    for match in _STRING_THEN_COMMA.finditer(body):
        after = _NEXT_PIECE.match(body, match.end())
        if after is None:
            continue
        if (_named(after.group(1)) or _named(_key_before(body, match.start()))) and _is_piece(
            match.group()
        ):
            return True
    # Integer pieces: under a named key, with a piece after them or before the key.
    for match in _INTEGER_MEMBER.finditer(body):
        key_start = body.rfind(b'"', max(0, match.start() - 129), match.start())
        if key_start < 0 or not _named(body[key_start + 1 : match.start()]):
            continue
        if _NEXT_PIECE.match(body, match.end()) is not None:
            return True
        window = body[max(0, match.start() - 160) : match.start()]
        if _PIECE_BEFORE.search(window) is not None:
            return True
    return False


# From 9 digits a JSON number could be an SSN; past 19 digits the codec makes no segment of it.
_SSN_SIZED = 10**8
_PAN_DIGITS_END = 10**19
# An escape other than the short ones for a separator (`\n`, `\t`, `\"`, ...): `\uXXXX` can
# spell a digit or an invisible character, and `\\` puts a backslash in the text, which
# detection reads as the start of a literal escape.
_UNREAD_ESCAPE = re.compile(rb'\\[^nrtbf"/]')


def _plain_ascii(body: bytes) -> bool:
    """True when every string and key of the document stands in `body` as it reads, but for
    JSON's short escapes, and none is HTML or encoded words: ASCII, no `&`, `<` or `=?`, and
    no escape but `\\n`, `\\t`, `\\"` and their kind."""
    if not body.isascii() or b"&" in body or b"<" in body:
        return False
    if b"=" in body and b"=?" in body:
        return False
    return b"\\" not in body or _UNREAD_ESCAPE.search(body) is None


def _clean_at_a_glance(body: bytes, doc: Any, limits: BodyLimits | None) -> bool:
    """For a `_plain_ascii` body: True when its raw bytes prove that no text of the (valid)
    document holds a value and that no limit can be reached, so the walk is not needed
    (issue 14: a chat webhook, an e-mail thread of dates and order numbers).

    Every string and key stands in the body as it reads (a member that a parser would drop for
    a later one of the same name too), between quotes. `raw_json_may_hold_value` reads an
    escape's backslash and letter as the separator it may stand for, so a text with a stretch
    of 9 digits that only characters of digit runs part (screen.py) leaves one in the body.
    """
    if raw_json_may_hold_value(body):
        return False
    return limits is None or not _may_reach_a_limit(body, doc, limits)


def _may_reach_a_limit(body: bytes, doc: Any, limits: BodyLimits) -> bool:
    # Nesting and fields from the document's containers when they are few (a webhook: a few
    # dozen values), else bounded from the raw bytes (a member has a `:`, a container a
    # bracket) and walked in full only if a bound does not settle it. Each pass over a 20 KB
    # body costs ~6 us, the small walk ~2 us. (Digits: longer bodies went to the codec.)
    size = len(body)
    if size <= limits.max_nesting and size <= limits.max_fields:
        return False
    exceeded = _containers_exceed(doc, limits, budget=_SMALL_WALK_VALUES)
    if exceeded is not None:
        return exceeded
    if size <= limits.max_fields and body.count(b"{") + body.count(b"[") <= limits.max_nesting:
        return False
    return bool(_containers_exceed(doc, limits, budget=None))


# Values a walk of the containers may visit before the raw-byte bounds are asked instead.
_SMALL_WALK_VALUES = 512


def _containers_exceed(doc: Any, limits: BodyLimits, budget: int | None) -> bool | None:
    """Whether the document nests deeper or has more members than `limits` allow; None when
    it has more than `budget` values (the walk stops there)."""
    fields = 0
    visited = 0
    stack: list[tuple[Any, int]] = [(doc, 1)] if type(doc) is dict or type(doc) is list else []
    while stack:
        value, depth = stack.pop()
        if depth > limits.max_nesting:
            return True
        if type(value) is dict:
            fields += len(value)
            if fields > limits.max_fields:
                return True
            value = value.values()
        visited += len(value)
        if budget is not None and visited > budget:
            return None
        stack.extend((v, depth + 1) for v in value if type(v) is dict or type(v) is list)
    return False


def _all_members_kept(body: bytes, doc: Any) -> bool:
    # orjson keeps the last of two members with one name, silently. Each member has one `:`
    # outside strings, and string contents come back out of orjson.dumps as they went in (no
    # escape writes a colon except `\u003a`, which takes the slow way), so equal colon counts
    # before and after mean no member was dropped.
    return b"\\u003" not in body and body.count(b":") == orjson.dumps(doc).count(b":")


class _NeedsCodec(Exception):
    """A string the fast path cannot vouch for: the codec reads the body."""


class _Walk:
    """Collects the texts that could hold a value, depth first, checking the codec's limits.

    Strings are texts under the key of the member they are (array items under the key the
    array sits under, as the codec does); object keys are texts too, under the key their
    object sits under. A string shorter than MIN_DIGITS holds no value and is not looked at.
    """

    __slots__ = ("every_run", "fields", "limits", "plain_ascii", "texts")

    def __init__(
        self, limits: BodyLimits | None, *, plain_ascii: bool = False, every_run: bool = False
    ) -> None:
        self.limits = limits
        self.every_run = every_run
        # Every text is ASCII without `\\`, `&`, `<` or `=?` (`_plain_ascii`): the screen
        # alone decides.
        self.plain_ascii = plain_ascii
        self.texts: list[tuple[str, str | None]] = []
        self.fields = 0

    def value(self, value: Any, key: str | None, depth: int) -> None:
        kind = type(value)
        if kind is dict:
            self._enter(depth, len(value))
            for k, v in value.items():
                if len(k) >= MIN_DIGITS:
                    self.text(k, key, is_key=True)
                # Most members are short strings: skipped here, without a call.
                if type(v) is not str or len(v) >= MIN_DIGITS:
                    self.value(v, k, depth + 1)
        elif kind is list:
            self._enter(depth, 0)
            for v in value:
                if type(v) is not str or len(v) >= MIN_DIGITS:
                    self.value(v, key, depth + 1)
        elif kind is str:
            if len(value) >= MIN_DIGITS:
                self.text(value, key)
        elif kind is int:
            if _SSN_SIZED <= abs(value) < _PAN_DIGITS_END:
                # 9-19 digits: an SSN, a PAN or an id (Zendesk's are 12 digits). The codec's
                # segment is the literal, which `str` gives back exactly (a JSON integer has no
                # leading zero or `+`). One with a finding is rewritten by the codec, as
                # JsonStringPatch only patches strings.
                self.text(str(value), key)
        elif kind is float and not abs(value) < _SSN_SIZED:
            raise _NeedsCodec  # `4111111111111111.0`, `4.1e15`: the codec reads it exactly

    def _enter(self, depth: int, members: int) -> None:
        limits = self.limits
        if limits is None:
            return
        if depth + 1 > limits.max_nesting:
            raise NestingTooDeepError()
        self.fields += members
        if self.fields > limits.max_fields:
            raise TooManyFieldsError()

    def text(self, text: str, key: str | None, *, is_key: bool = False) -> None:
        if (
            "%" in text or has_data_scheme(text) or (len(text) >= _MIN_BASE64 and " " not in text)
        ) and may_hide_text(text):
            raise _NeedsCodec  # base64, a data: URI, percent escapes: the codec decodes
        if "<" in text and looks_like_html(text):
            self._html(text, key)
            return
        if self.plain_ascii:
            if plain_may_hold_value(text, every_run=self.every_run):
                self._maybe(text, key)
            return
        if "=" in text and "=?" in text:
            raise _NeedsCodec  # maybe encoded words, whose base64 hides digits: the codec decodes
        if text.isascii() and "\\" not in text and "&" not in text and "<" not in text:
            # Plain ASCII that is its own reading: the screen's answer is final, and a text it
            # clears is not handed on (issue 14: a 20 KB e-mail thread of dates and numbers).
            if plain_may_hold_value(text, every_run=self.every_run):
                self._maybe(text, key)
        elif digit_count(text) >= MIN_DIGITS:
            self._maybe(text, key)

    def _maybe(self, text: str, key: str | None) -> None:
        # A text that may hold a value: the fast path hands it on, unless the codec would read
        # it as a document of its own.
        if _looks_like_document(text):
            raise _NeedsCodec
        self.texts.append((text, key))

    def _html(self, text: str, key: str | None) -> None:
        # Zendesk's and Intercom's `html_body`: dates and order numbers give most of them 9
        # digits. The codec reads such a string with HtmlView(text, key) (`nested.value_view`:
        # not a document, no encoded words, so HTML): the same view here gives its segments
        # exactly. It is spared only where no segment can hold a value (the digit screen) and
        # no attribute value or text run may hide text behind base64, a `data:` URI or percent
        # escapes (HtmlView reads those through a decoding view, whatever digits the string
        # shows). Either screen saying "maybe" is enough, so the second runs only when the
        # first clears the string (issue 24: both cost as much as HtmlView on an html_body,
        # and a table's `ItemQtyPrice` looked like base64 to the second, which sent a fifth of
        # Zendesk's html_bodies to the whole codec while it was the codec's cue).
        if "=" in text and "=?" in text:
            raise _NeedsCodec  # maybe encoded words, whose base64 hides digits: the codec decodes
        digits = digit_count(text) >= MIN_DIGITS
        if _looks_like_document(text) and (digits or _html_may_hide_text(text)):
            raise _NeedsCodec  # a document of its own: nested.value_view reads it so
        # Both screens read the same runs and values, walked once (and only when needed).
        walked: _Walked | bool | None = False
        if digits:
            walked = marked_text_runs(text, _MARK)
            if _walked_may_hold_value(text, walked, self.every_run):
                self._html_segments(text, key)
                return
        if _html_may_hide_text(text, walked):
            self._html_segments(text, key)

    def _html_segments(self, text: str, key: str | None) -> None:
        try:
            view = HtmlView(text, key)
        except RedactorError:
            raise _NeedsCodec from None  # a limit: the codec raises it properly
        for seg in view.segments:
            if digit_count(seg.text) >= MIN_DIGITS:
                self.texts.append((seg.text, seg.field_name))


def _may_hold_too_many_tags(body: bytes, max_tags: int) -> bool:
    # HtmlView counts at most one tag per `<` (written as is or as a JSON escape).
    if len(body) <= max_tags:
        return False
    return body.count(b"<") + body.count(b"\\u003c") + body.count(b"\\u003C") > max_tags


# A stretch that may be base64 (bodies.hidden reads a slot that is all base64 of 16 or more
# characters, lines allowed): mixed case, as base64 of text is.
_BASE64_STRETCH = re.compile(r"[A-Za-z0-9+/\-_=\r\n]{16,}")
_TAG = re.compile(r"<[^>]*>")


def _html_may_hide_text(text: str, walked: _Walked | bool | None = False) -> bool:
    """True when an HTML string may hold text behind base64, a `data:` URI or percent escapes
    in a text run (tags read as nothing) or an attribute value, references decoded. Broader
    than HtmlView's decoding views, never narrower.

    `walked`: `marked_text_runs(text, _MARK)` when the caller has it (False: not yet)."""
    readings = [text, _TAG.sub("", text)]
    if "&" in text:
        readings = [html.unescape(reading) for reading in readings]
    if any("%" in reading for reading in readings):
        # HtmlView reads a percent escape (`%34`, bodies.hidden), not a `25% discount`: in its
        # runs, exact between tags, the escape's three characters stand with at most tags
        # between them (one that reads as a line break only breaks it); in an attribute value
        # as they are.
        if walked is False:
            walked = marked_text_runs(text, _MARK)
        if not isinstance(walked, tuple) or _holds_percent_escape(walked):
            return True
    for reading in readings:
        if "ata:" in reading.lower():
            return True
        for match in _BASE64_STRETCH.finditer(reading):
            stretch = match.group()
            if not (stretch.islower() or stretch.isupper() or stretch.isdigit()):
                return True
    return False


# Any character outside ASCII read as a digit: whether it is a digit of another script, a
# separator or a letter, a digit is at least what it adds to a stretch, and never ends one.
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


_Walked = tuple[str, list[str]]
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_PERCENT_ACROSS_MARKS = re.compile("%\x00*[0-9A-Fa-f]\x00*[0-9A-Fa-f]")


def _holds_percent_escape(walked: _Walked) -> bool:
    runs, values = walked
    if "%" in runs and _PERCENT_ACROSS_MARKS.search(runs) is not None:
        return True
    return any("%" in value and _PERCENT_ESCAPE.search(value) is not None for value in values)


def html_may_hold_value(text: str, *, every_run: bool = False) -> bool:
    """False only when no segment HtmlView makes of `text` can hold a card number or SSN.

    HtmlView's segments are comments and scripts read as written, attribute values and
    textareas with references decoded, and text runs with references decoded in which inline
    tags read as nothing and `<br>` and blocks as a line break. HTML whose runs no comment,
    raw or hidden content interrupts (`marked_text_runs`; else "maybe") is read exactly as
    those segments: each attribute value, and the text runs with each tag marked, as the
    detector's screen reads them (screen.py: a digit run of 9+ digits with a part that could
    be a candidate; with `every_run`, any run of 9+ digits), "maybe" where a tag stands
    between the digits of a long stretch. Non-ASCII characters that detection reads as
    letters are read so (`as_plain`); where others stand (`&nbsp;`, a Unicode dash) the text
    runs are read approximately: each such character made a digit, each mark deleted, the
    stretch screen alone (it holds for readings that only add digits). A backslash (written,
    or decoded from `&#92;`) is "maybe".
    """
    if len(text) < MIN_DIGITS:
        return False
    if "\\" in text:
        return True  # a literal escape (`\\u200b`) that detection reads as a separator
    return _walked_may_hold_value(text, marked_text_runs(text, _MARK), every_run)


def _walked_may_hold_value(text: str, walked: _Walked | None, every_run: bool) -> bool:
    # `html_may_hold_value` past its first checks, on `marked_text_runs(text, _MARK)`.
    if len(text) < MIN_DIGITS:
        return False
    if "\\" in text:
        return True
    if walked is None:
        return True  # a comment, a script, a hidden element, an unterminated tag
    # A segment is no longer than the string: past the window, any long run goes on.
    every_run = every_run or len(text) > WINDOW_CHARS
    runs, values = walked
    if "\\" in runs:
        return True  # `&#92;`: a backslash, which detection may read as an escape
    plain = runs if runs.isascii() else as_plain(runs)
    if plain is not None:
        if marked_may_hold_value(plain, every_run=every_run):
            return True
    else:
        # A mark reads as a soft character or as nothing: deleted, it joins what it may join.
        approximate = _NON_ASCII.sub("1", runs.replace(_MARK, ""))
        if stretch_may_hold_value(approximate.encode("ascii")):
            return True
    return any(may_hold_value(value, every_run=every_run) for value in values)


# What stands for a tag in the text runs `marked_text_runs` gives (screen.marked_may_hold_value).
_MARK = "\x00"
