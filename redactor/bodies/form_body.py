"""application/x-www-form-urlencoded bodies (Mailgun routes): each field value is a segment.

Fields of 2-17 digits that follow each other (`cc1=4111&cc2=1111&...`) are named as a run of
neighbours: a reader may take them for one number (`redaction/neighbours.py`).

Unchanged fields keep their bytes. A changed field is percent-encoded again in the style it
came in: `+` for spaces when the sender used `+` (or used neither form), `%20` otherwise, and
the same hex case. The charset is the declared one (Content-Type `charset`, else the
`_charset_` field browsers add), decoded strictly; undeclared input is UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote_to_bytes

from redactor.bodies.email_body import EmailBody, looks_like_email
from redactor.bodies.limits import count_fields
from redactor.bodies.mime import HeaderBlockView
from redactor.bodies.segments import (
    Edit,
    PlainView,
    Segment,
    SegmentTable,
    TextView,
    apply_edits,
    has_edits,
    is_piece,
    neighbours_of,
    splice_bytes,
)
from redactor.bodies.text_body import decode_text, encode_text
from redactor.detection.context import names_kind
from redactor.detection.digits import digit_count
from redactor.errors import BodyUnparseableError

__all__ = ["EMAIL_FIELD_NAMES", "FormBody", "PieceRun", "field_view", "parse_form"]

# Fields that carry a whole raw message: SendGrid Inbound Parse in raw mode (`email`) and
# Mailgun routes whose URL ends in `mime` (`body-mime`).
EMAIL_FIELD_NAMES = frozenset({"email", "body-mime"})
# SendGrid's `headers` field is a raw header block: a Subject in it may be an RFC 2047 word
# whose base64 hides the digits, so it is read as headers, not as flat text.
HEADER_BLOCK_FIELD_NAMES = frozenset({"headers"})

# No PAN or SSN has fewer digits: shorter field names are not scanned.
_MIN_NAME_DIGITS = 9
_LOWER_HEX = re.compile(rb"%[0-9a-f][a-f]|%[a-f][0-9a-f]")
_UPPER_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def field_view(name: str | None, text: str) -> TextView:
    """The view for a text field: header block, HTML or plain text, by name and content."""
    if name in HEADER_BLOCK_FIELD_NAMES and text.strip():
        try:
            return HeaderBlockView(text)
        except BodyUnparseableError:
            pass  # not a header block after all: scanned as plain text below
    from redactor.bodies.nested import value_view

    return value_view(text, name, "form_field")


def email_child(name: str | None, value: bytes) -> EmailBody | None:
    """A nested e-mail for a raw-message field, None when the field is not one.

    Raises BodyUnparseableError when it looks like a message but does not parse as one.
    """
    if name in EMAIL_FIELD_NAMES and looks_like_email(value):
        return EmailBody(value)
    return None


class PieceRun:
    """Collects the segment indices of neighbouring fields that are pieces (`is_piece`)."""

    __slots__ = ("_run", "_table")

    def __init__(self, table: SegmentTable) -> None:
        self._table = table
        self._run: list[int] = []

    def add(self, text: str, view: TextView, first_index: int) -> None:
        """A field just added at `first_index`: a piece extends the run, anything else ends it."""
        if isinstance(view, PlainView) and is_piece(text):
            self._run.append(first_index)
        else:
            self.end()

    def end(self) -> None:
        """Close the run: two or more pieces, one under a name that names a card or an SSN
        (`cc1`, `ssn_area`), are a neighbour run."""
        segments = self._table.segments
        if len(self._run) >= 2 and any(
            names_kind(segments[i].field_name) is not None for i in self._run
        ):
            self._table.neighbours.append(tuple(self._run))
        self._run = []


@dataclass(frozen=True, slots=True)
class _Field:
    value_start: int
    value_end: int
    raw_value: bytes
    codec: str
    errors: str
    text: str
    view: TextView | None
    child: EmailBody | None


def _percent_encode(value: bytes, original: bytes) -> bytes:
    plus = b"+" in original or b"%20" not in original
    encoded = quote_plus(value, safe="") if plus else quote(value, safe="")
    if _LOWER_HEX.search(original):
        encoded = _UPPER_HEX_ESCAPE.sub(lambda m: m.group().lower(), encoded)
    return encoded.encode("ascii")


class FormBody:
    """A parsed urlencoded form; field values (or the messages in them) are the segments."""

    __slots__ = ("_fields", "_raw", "_table", "neighbours", "segments")

    def __init__(self, raw: bytes, charset: str | None) -> None:
        """Parse the form. Raises BodyUnparseableError for undecodable values or bad charsets."""
        self._raw = raw
        self._fields: list[_Field] = []
        self._table = SegmentTable()
        pairs: list[tuple[bytes, int, int]] = []
        cursor = 0
        # Counted before splitting: 500,000 fields are refused before 500,000 objects exist.
        count_fields(raw.count(b"&") + 1)
        for chunk in raw.split(b"&"):
            name, equals, _value = chunk.partition(b"=")
            value_start = cursor + len(name) + len(equals)
            pairs.append((name, value_start, cursor + len(chunk)))
            cursor += len(chunk) + 1
        names = [unquote_to_bytes(n.replace(b"+", b" ")) for n, _s, _e in pairs]
        if charset is None and b"_charset_" in names:
            # The HTML form-submission rule: a `_charset_` field names the encoding used.
            start, end = pairs[names.index(b"_charset_")][1:]
            charset = unquote_to_bytes(raw[start:end]).decode("ascii", "replace")
        pieces = PieceRun(self._table)
        for (raw_name, start, end), name_bytes in zip(pairs, names, strict=True):
            raw_value = raw[start:end]
            value = unquote_to_bytes(raw_value.replace(b"+", b" "))
            name, name_codec, name_errors = decode_text(name_bytes, charset)
            if digit_count(name) >= _MIN_NAME_DIGITS:
                # A field *name* can carry a value too (`card_4111...=1`): scanned like a value.
                name_start = start - len(raw_name) - (1 if raw[start - 1 : start] == b"=" else 0)
                name_view = PlainView(name, None, "form_name")
                pieces.end()
                self._table.add(len(self._fields), name_view.segments)
                self._fields.append(
                    _Field(
                        name_start, name_start + len(raw_name), raw_name, name_codec,
                        name_errors, name, name_view, None,
                    )
                )  # fmt: skip
            child = email_child(name, value)
            index = len(self._fields)
            if child is not None:
                pieces.end()
                self._fields.append(_Field(start, end, raw_value, "", "", "", None, child))
                self._table.add(index, child.segments)
                continue
            text, codec, errors = decode_text(value, charset)
            view = field_view(name, text)
            self._fields.append(_Field(start, end, raw_value, codec, errors, text, view, None))
            pieces.add(text, view, len(self._table.segments))
            self._table.add(index, view.segments, neighbours=neighbours_of(view))
        pieces.end()
        self.segments: Sequence[Segment] = self._table.segments
        self.neighbours: Sequence[tuple[int, ...]] = self._table.neighbours

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> bytes:
        """The form with edits applied; the input bytes exactly when there are none.

        Raises ValueError for invalid edits, RedactorError for an unencodable replacement.
        """
        if not has_edits(edits):
            return self._raw
        replacements: list[tuple[int, int, bytes]] = []
        for index, local_edits in self._table.route(edits).items():
            field = self._fields[index]  # type: ignore[index]
            if field.child is not None:
                new_value = field.child.rebuild(local_edits)
            else:
                view = field.view
                if view is None:  # pragma: no cover -- every non-message field has a view
                    raise ValueError("form field has no view")
                new_text = apply_edits(field.text, view.source_edits(local_edits))
                new_value = encode_text(new_text, field.codec, field.errors)
            encoded = _percent_encode(new_value, field.raw_value)
            replacements.append((field.value_start, field.value_end, encoded))
        return splice_bytes(self._raw, replacements)


def parse_form(body: bytes, charset: str | None = None) -> FormBody:
    """Parse an urlencoded form. Raises BodyUnparseableError for undecodable values."""
    return FormBody(body, charset)
