"""JSON bodies: every string (values and object keys) and every long integer is a segment.

The stdlib `json` module gives no offsets, so a small scanner records where each token sits.
Only changed strings are rewritten, and inside a changed string only the edited stretch:
escapes elsewhere (`\\u00e9`, `\\/`) keep their original spelling. The document is also run
through `json.loads`, so anything the scanner accepts is JSON that upstreams can read.

Object keys are rewritten in place like values. When two keys of one object become equal
after redaction (the same card written two ways, or a key that already was that token), the
second and later ones get a suffix `~2`, `~3`, ... in document order: the body stays valid
JSON and no member silently replaces another in the upstream's parser.

A string that holds a document of its own (JSON in a JSON string, RFC 2047 encoded words, HTML)
is scanned as that document and re-encoded in place (`bodies/nested.py`).

Strings and integers of 2-17 digits that follow each other in one array or object (`["4111",
"1111", "1111", "1111"]`, `[4111, 1111, 1111, 1111]`, `{"cc_first8": "41111111", "cc_last8":
"11111111"}`, `{"cc_first10": "4111111111", ...}`) are segments too, named as a run of
neighbours: a reader may take them for one number (`redaction/neighbours.py`). A piece that
is a token's first piece becomes a JSON string, like a long number (a token is no number).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from redactor.bodies.hidden import raw_may_hide_text
from redactor.bodies.limits import check_depth, count_entities, count_fields
from redactor.bodies.segments import (
    Edit,
    PlainView,
    Segment,
    SegmentTable,
    TextView,
    apply_edits,
    is_piece,
    neighbours_of,
)
from redactor.bodies.text_body import TextBody, decode_text
from redactor.bodies.textmap import TextMap, TextMapBuilder, map_edits
from redactor.detection.context import names_kind
from redactor.detection.digits import digit_count
from redactor.errors import BodyUnparseableError

__all__ = ["JsonView", "ValueViews", "parse_json"]

# How a string value or key is read: (decoded text, field name, kind) -> its view.
ValueViews = Callable[[str, "str | None", str], TextView]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_STRING_RUN = re.compile(r'[^"\\\x00-\x1f]+')
_LITERALS = ("true", "false", "null")
_SIMPLE_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
# A string with no escape: the common case, taken whole by one regex match.
_PLAIN_STRING = re.compile(r'"([^"\\\x00-\x1f]*)"')


# A JSON number whose value is a whole number of 9-19 digits may be an SSN (9) or a PAN
# (12-19), however it is written: `4111111111111111`, `4111111111111111.0`,
# `4.111111111111111e15`. It is a segment (its digits, under its key), and detection decides
# (Luhn, IIN, the key as a label). Other numbers cannot hold a value and are left alone.
_VALUE_DIGITS = range(9, 20)


def integral_digits(match: re.Match[str]) -> str | None:
    """The digits of a JSON number (a `_NUMBER` match) when its value is a whole number of
    9-19 digits, else None. Never builds a huge integer from a huge exponent."""
    text = match.group()
    if match.group(1) is None and match.group(2) is None:
        return text if len(text.lstrip("-")) in _VALUE_DIGITS else None
    number = Decimal(text)
    # adjusted(): the power of ten of the leading digit, read off the exponent (cheap).
    if number.is_zero() or number.adjusted() + 1 not in _VALUE_DIGITS:
        return None
    if number != number.to_integral_value():
        return None
    return str(int(number))


# No SSN (9) or PAN (12+) has fewer digits.
_MIN_KEY_DIGITS = 9
# Object members are counted against the body's budget this many at a time.
_FIELD_BATCH = 256

# Deeper nesting than any webhook we front; bounds the scanner and json.loads' recursion.
MAX_JSON_DEPTH = 256


def _escape_json(text: str) -> str:
    # ensure_ascii: lone surrogates or odd characters in a replacement still give valid JSON.
    return json.dumps(text)[1:-1]


@dataclass(frozen=True, slots=True)
class _StringSlot:
    raw_start: int  # after the opening quote
    raw_end: int  # at the closing quote
    text: str
    text_map: TextMap
    view: TextView


@dataclass(frozen=True, slots=True)
class _KeySlot:
    raw_start: int
    raw_end: int
    text: str
    text_map: TextMap
    view: TextView
    object_start: int  # the object's `{`: its members are read again to resolve collisions
    member: int  # this key's position among the object's members


@dataclass(frozen=True, slots=True)
class _NumberSlot:
    raw_start: int
    raw_end: int
    text: str


def _scan_string(source: str, pos: int) -> tuple[str, TextMap, int]:
    """Decode the string whose opening quote is at `pos`; return (text, map, index after it)."""
    builder = TextMapBuilder(pos + 1)
    cursor = pos + 1
    length = len(source)
    while True:
        run = _STRING_RUN.match(source, cursor)
        if run is not None:
            builder.literal(run.group(), cursor)
            cursor = run.end()
        if cursor >= length:
            raise BodyUnparseableError("unterminated JSON string")
        char = source[cursor]
        if char == '"':
            text, text_map = builder.build(cursor)
            return text, text_map, cursor + 1
        if char != "\\":
            raise BodyUnparseableError("control character in JSON string")
        kind = source[cursor + 1 : cursor + 2]
        if kind in _SIMPLE_ESCAPES:
            builder.unit(_SIMPLE_ESCAPES[kind], cursor, cursor + 2)
            cursor += 2
            continue
        if kind != "u" or _HEX4.fullmatch(source, cursor + 2, cursor + 6) is None:
            raise BodyUnparseableError("invalid JSON escape")
        count_entities()
        code = int(source[cursor + 2 : cursor + 6], 16)
        end = cursor + 6
        if 0xD800 <= code < 0xDC00 and source.startswith("\\u", end):
            low_hex = _HEX4.fullmatch(source, end + 2, end + 6)
            low = int(low_hex.group(), 16) if low_hex else 0
            if 0xDC00 <= low < 0xE000:
                # A surrogate pair is one character, so it is one unit: never split in half.
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                end += 6
        builder.unit(chr(code), cursor, end)
        cursor = end


class JsonView:
    """Segments for the string values and long integers of a JSON text (a TextView)."""

    __slots__ = (
        "_members",
        "_min_digits",
        "_object_ends",
        "_piece_container",
        "_pieces",
        "_slots",
        "_source",
        "_table",
        "_value_view",
        "neighbours",
        "segments",
    )

    def __init__(
        self,
        source: str,
        start: int = 0,
        *,
        value_view: ValueViews,
        min_segment_digits: int = 0,
    ) -> None:
        """Scan `source[start:]`. Raises BodyUnparseableError if it is not exactly one JSON value.

        `value_view` reads each string (a document in a string, HTML, encoded words: the
        caller's choice, so this module needs no import of the readings that contain it).
        Strings with fewer than `min_segment_digits` digit characters are not segments: a
        caller looking for 9+ digit values skips every key-like and short field that way, and
        decoding (JSON escapes, HTML references) only ever removes digits, never adds them.
        """
        self._value_view = value_view
        self._min_digits = min_segment_digits
        self._members = 0
        self._source = source
        self._slots: list[_StringSlot | _NumberSlot | _KeySlot] = []
        # object start -> index after its `}`, for objects with a key segment.
        self._object_ends: dict[int, int] = {}
        self._table = SegmentTable()
        # The run of neighbouring pieces being read: (position, key, end of an integer's
        # literal or -1 for a string), and its container.
        self._pieces: list[tuple[int, str | None, int]] = []
        self._piece_container = -1
        self._scan(source, start)
        self._end_pieces()
        count_fields(self._members % _FIELD_BATCH)
        self.segments: Sequence[Segment] = self._table.segments
        self.neighbours: Sequence[tuple[int, ...]] = self._table.neighbours

    def _too_few_digits(self, raw: str, minimum: int | None = None) -> bool:
        # Encoded words hide digits in base64: never skipped for want of digits (an encoded
        # word shorter than the minimum has no room for a value).
        minimum = self._min_digits if minimum is None else minimum
        if not minimum:
            return False
        if len(raw) < minimum:
            return True
        # Base64, percent escapes and `data:` URIs hide digits too (bodies.hidden).
        return digit_count(raw) < minimum and "=?" not in raw and not raw_may_hide_text(raw)

    def _add_string(
        self, source: str, pos: int, field_name: str | None, container: int = -1
    ) -> int:
        plain = _PLAIN_STRING.match(source, pos)
        if plain is not None:
            if is_piece(plain.group(1)):
                self._add_piece(pos, field_name, container, -1)
                return plain.end()
            self._end_pieces()
            if self._min_digits and self._too_few_digits(plain.group(1)):
                return plain.end()
        text, text_map, end = _scan_string(source, pos)
        if plain is None:
            if is_piece(text):
                self._add_piece(pos, field_name, container, -1)
                return end
            self._end_pieces()
        if self._too_few_digits(source[pos + 1 : end - 1]):
            return end
        view = self._value_view(text, field_name, "json_string")
        slot_id = len(self._slots)
        self._slots.append(_StringSlot(pos + 1, end - 1, text, text_map, view))
        self._table.add(slot_id, view.segments, neighbours=neighbours_of(view))
        return end

    def _add_piece(self, pos: int, field_name: str | None, container: int, number_end: int) -> None:
        """A digit string or integer (`is_piece`): it continues the run of the value before
        it in its container. `number_end`: where an integer's literal ends (-1: a string)."""
        if self._pieces and self._piece_container != container:
            self._end_pieces()
        self._pieces.append((pos, field_name, number_end))
        self._piece_container = container

    def _end_pieces(self) -> None:
        """Close the run of pieces: two or more, one of them under a name that names a card
        or an SSN, become segments and one neighbour run. Other pieces are what they would be
        alone: strings are segments when every string is (ids side by side, `"actor_id":
        "2097", "brand_id": "123"`) or when they have enough digits, integers when they have
        9 or more digits."""
        run, self._pieces = self._pieces, []
        if not run:
            return
        named = len(run) >= 2 and any(names_kind(key) is not None for _, key, _ in run)
        indices: list[int] = []
        for pos, field_name, number_end in run:
            if number_end >= 0:
                text = self._source[pos:number_end]
                if not named and len(text) < _MIN_KEY_DIGITS:
                    continue  # a short integer alone is no value
                slot_id = len(self._slots)
                self._slots.append(_NumberSlot(pos, number_end, text))
                indices.append(len(self._table.segments))
                self._table.add(slot_id, (Segment(0, text, field_name, "json_number"),))
                continue
            text, text_map, end = _scan_string(self._source, pos)
            if not named and self._min_digits and len(text) < self._min_digits:
                continue
            view = PlainView(text, field_name, "json_string")
            slot_id = len(self._slots)
            self._slots.append(_StringSlot(pos + 1, end - 1, text, text_map, view))
            indices.append(len(self._table.segments))
            self._table.add(slot_id, view.segments)
        if named:
            self._table.neighbours.append(tuple(indices))

    def _add_key(
        self, source: str, pos: int, field_name: str | None, object_start: int, member: int
    ) -> int:
        """Scan the key string at `pos` (one that may hold a value) and make it a segment."""
        minimum = max(self._min_digits, _MIN_KEY_DIGITS)
        text, text_map, end = _scan_string(source, pos)
        if self._too_few_digits(source[pos + 1 : end - 1], minimum):
            return end
        view = self._value_view(text, field_name, "json_key")
        slot_id = len(self._slots)
        self._slots.append(_KeySlot(pos + 1, end - 1, text, text_map, view, object_start, member))
        self._object_ends.setdefault(object_start, -1)
        self._table.add(slot_id, view.segments)
        return end

    def _add_number(
        self, source: str, pos: int, field_name: str | None, container: int = -1
    ) -> int:
        match = _NUMBER.match(source, pos)
        if match is None or match.end() == pos:
            raise BodyUnparseableError("invalid JSON value")
        if match.lastindex is None and is_piece(match.group()):
            # An integer of 2-17 digits may be one piece of a value split over neighbours.
            self._add_piece(pos, field_name, container, match.end())
            return match.end()
        self._end_pieces()
        text = integral_digits(match)
        if text is not None:
            slot_id = len(self._slots)
            self._slots.append(_NumberSlot(pos, match.end(), text))
            self._table.add(slot_id, (Segment(0, text, field_name, "json_number"),))
        return match.end()

    def _scan(self, source: str, start: int) -> None:
        # Iterative, so a deeply nested document cannot exhaust the Python stack.
        # ("{" or "[", key the container sits under, where it starts, members so far)
        stack: list[list] = []
        key: str | None = None
        pos = _WHITESPACE.match(source, start).end()  # type: ignore[union-attr]
        expect_value = True
        length = len(source)
        while True:
            if expect_value:
                if pos >= length:
                    raise BodyUnparseableError("truncated JSON")
                char = source[pos]
                if char == '"':
                    pos = self._add_string(source, pos, key, stack[-1][2] if stack else -1)
                    expect_value = False
                    continue
                if char == "-" or char.isdigit():
                    pos = self._add_number(source, pos, key, stack[-1][2] if stack else -1)
                    expect_value = False
                    continue
                self._end_pieces()
                if char in "{[":
                    if len(stack) >= MAX_JSON_DEPTH:
                        raise BodyUnparseableError("JSON nested too deeply")
                    check_depth(len(stack) + 1)
                    stack.append([char, key, pos, 0])
                    pos = _WHITESPACE.match(source, pos + 1).end()  # type: ignore[union-attr]
                    closer = "}" if char == "{" else "]"
                    if source.startswith(closer, pos):
                        stack.pop()
                        pos += 1
                    elif char == "{":
                        pos, key = self._scan_key(source, pos, stack[-1])
                        continue
                    else:
                        continue
                else:
                    literal = next((w for w in _LITERALS if source.startswith(w, pos)), None)
                    if literal is None:
                        raise BodyUnparseableError("invalid JSON value")
                    pos += len(literal)
                expect_value = False
            pos = _WHITESPACE.match(source, pos).end()  # type: ignore[union-attr]
            if not stack:
                if pos != length:
                    raise BodyUnparseableError("trailing data after JSON value")
                return
            container, outer_key, container_start, _members = stack[-1]
            char = source[pos : pos + 1]
            if char == ",":
                pos = _WHITESPACE.match(source, pos + 1).end()  # type: ignore[union-attr]
                if container == "{":
                    pos, key = self._scan_key(source, pos, stack[-1])
                else:
                    key = outer_key
                expect_value = True
            elif char == ("}" if container == "{" else "]"):
                stack.pop()
                if container_start in self._object_ends:
                    self._object_ends[container_start] = pos + 1
                key = stack[-1][1] if stack and stack[-1][0] == "[" else outer_key
                pos += 1
            else:
                raise BodyUnparseableError("invalid JSON structure")

    def _scan_key(self, source: str, pos: int, container: list) -> tuple[int, str]:
        if not source.startswith('"', pos):
            raise BodyUnparseableError("invalid JSON object key")
        self._members += 1
        if self._members % _FIELD_BATCH == 0:
            count_fields(_FIELD_BATCH)  # the budget is a context variable: ask it in batches
        member = container[3]
        container[3] = member + 1
        plain = _PLAIN_STRING.match(source, pos)
        if plain is not None:
            key, end = plain.group(1), plain.end()
            # Keys are names: one with fewer digits than the shortest value is no segment.
            if self._too_few_digits(key, max(self._min_digits, _MIN_KEY_DIGITS)):
                pos = end
            else:
                pos = self._add_key(source, pos, container[1], container[2], member)
        else:
            key, _map, _end = _scan_string(source, pos)
            # The key's field name is the key its object sits under (`"cards": {"4111...": 1}`).
            pos = self._add_key(source, pos, container[1], container[2], member)
        pos = _WHITESPACE.match(source, pos).end()  # type: ignore[union-attr]
        if not source.startswith(":", pos):
            raise BodyUnparseableError("invalid JSON object")
        return _WHITESPACE.match(source, pos + 1).end(), key  # type: ignore[union-attr]

    def source_edits(self, edits: Mapping[int, Sequence[Edit]]) -> list[Edit]:
        """Edits on the JSON source. Raises ValueError for invalid edits."""
        result: list[Edit] = []
        new_keys: dict[int, dict[int, tuple[_KeySlot, str]]] = {}
        for slot_id, local_edits in self._table.route(edits).items():
            slot = self._slots[slot_id]  # type: ignore[index]
            if isinstance(slot, _NumberSlot):
                # A token is not a number: the value becomes a JSON string (documented).
                new_text = apply_edits(slot.text, local_edits[0])
                result.append(Edit(slot.raw_start, slot.raw_end, json.dumps(new_text)))
            elif isinstance(slot, _KeySlot):
                new_text = apply_edits(slot.text, slot.view.source_edits(local_edits))
                new_keys.setdefault(slot.object_start, {})[slot.member] = (slot, new_text)
            else:
                on_string = slot.view.source_edits(local_edits)
                result.extend(map_edits(slot.text, slot.text_map, on_string, _escape_json))
        for object_start, changed in new_keys.items():
            result.extend(self._key_edits(object_start, changed))
        return sorted(result, key=lambda e: e.start)

    def _key_edits(self, object_start: int, changed: dict[int, tuple[_KeySlot, str]]) -> list[Edit]:
        """Whole-key edits for one object, with colliding new keys made unique (`~2`, ...)."""
        members: list[list[tuple[str, object]]] = []
        end = self._object_ends[object_start]
        # The last pairs hook call is the outermost object: its keys in document order.
        json.loads(self._source[object_start:end], object_pairs_hook=members.append)
        names = [k for k, _v in members[-1]]
        for member, (_slot, new_text) in changed.items():
            names[member] = new_text
        taken: dict[str, int] = {}
        unchanged = {n for i, n in enumerate(names) if i not in changed}
        result: list[Edit] = []
        for member, name in enumerate(names):
            if member not in changed:
                continue
            slot = changed[member][0]
            unique = name
            seen = taken.get(name, 0)
            if name in unchanged or seen:
                n = max(seen, 1)
                while True:
                    n += 1
                    unique = f"{name}~{n}"
                    if unique not in unchanged and unique not in taken:
                        break
                taken[name] = n
            else:
                taken[name] = 1
            taken.setdefault(unique, 1)
            result.append(Edit(slot.raw_start, slot.raw_end, _escape_json(unique)))
        return result


def _reject_constant(_name: str) -> None:
    raise ValueError("NaN and Infinity are not JSON")


def parse_json(
    body: bytes,
    charset: str | None = None,
    *,
    value_view: ValueViews,
    min_segment_digits: int = 0,
) -> TextBody:
    """Parse a JSON body (RFC 8259, UTF-8 unless declared otherwise); `value_view` reads each
    string value and key (`bodies.nested.value_view`).

    Raises BodyUnparseableError for invalid JSON, bad bytes or an unknown charset.
    """
    # JSON text exchanged between systems must be UTF-8 (RFC 8259 section 8.1): decode strictly.
    text, codec, errors = decode_text(body, charset or "utf-8")
    # A UTF-8 byte order mark is tolerated on input and kept on output.
    start = 1 if text.startswith("\ufeff") else 0
    view = JsonView(text, start, value_view=value_view, min_segment_digits=min_segment_digits)
    try:
        json.loads(text[start:], parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise BodyUnparseableError("invalid JSON") from None
    return TextBody(body, text, codec, errors, view)
