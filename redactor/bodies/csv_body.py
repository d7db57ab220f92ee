"""One CSV record (RFC 4180) -> one segment per field, named by the header's column.

Exports keep a ticket per row; a column name (`ssn`, `card_number`) is the context a bare
number needs, and a field may hold a document of its own (a JSON payload, an HTML comment),
scanned through `nested.value_view` like a form field. Only edited fields are re-encoded:
quoted fields stay quoted (inner quotes doubled again); an unquoted field is quoted only if its
new text needs it. Every other byte of the record is kept as it came.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import cast

from redactor.bodies.limits import budget_for, check_segments
from redactor.bodies.segments import Edit, SegmentTable, TextView, apply_edits, splice_bytes
from redactor.errors import BodyUnparseableError

__all__ = ["CsvRecord", "parse_csv_record"]

_FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,\r\n"]*)')
_LINE_END = re.compile(r"\r?\n?\Z")
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


class CsvRecord:
    """A parsed record: segments of every field, and a rebuild that re-encodes edited fields."""

    __slots__ = ("_fields", "_table", "_text", "_views", "segments")

    def __init__(self, raw: bytes, columns: Sequence[str] | None) -> None:
        from redactor.bodies.nested import value_view

        # Exports are UTF-8; surrogateescape keeps any other byte exact on the way back.
        self._text = text = raw.decode("utf-8", "surrogateescape")
        self._fields: list[tuple[int, int, bool, str]] = []
        pos = 0
        while True:
            match = _FIELD.match(text, pos)
            if match is None:  # pragma: no cover - the pattern matches the empty string
                raise BodyUnparseableError()
            quoted = match.group(1) is not None
            value = match.group(1).replace('""', '"') if quoted else match.group(2)
            self._fields.append((match.start(), match.end(), quoted, value))
            pos = match.end()
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            break
        if not _LINE_END.fullmatch(text, pos):
            # A quote inside an unquoted field, or text after a closing quote: not RFC 4180.
            raise BodyUnparseableError("not a CSV record")
        table = SegmentTable()
        self._views: list[TextView] = []
        for number, (*_, value) in enumerate(self._fields):
            name = columns[number] if columns is not None and number < len(columns) else None
            view = value_view(value, name, "csv_field")
            self._views.append(view)
            table.add(number, view.segments)
        self.segments = table.segments
        self._table = table

    def rebuild(self, edits: Mapping[int, Sequence[Edit]]) -> bytes:
        """The record with edited fields re-encoded. Raises ValueError for invalid edits."""
        replacements: list[tuple[int, int, bytes]] = []
        for key, field_edits in self._table.route(edits).items():
            number = cast(int, key)  # the field's number, as registered in __init__
            start, end, quoted, value = self._fields[number]
            new = apply_edits(value, self._views[number].source_edits(field_edits))
            if quoted or _NEEDS_QUOTES.search(new):
                new = '"' + new.replace('"', '""') + '"'
            replacements.append(
                (
                    len(self._text[:start].encode("utf-8", "surrogateescape")),
                    len(self._text[:end].encode("utf-8", "surrogateescape")),
                    new.encode("utf-8", "surrogateescape"),
                )
            )
        raw = self._text.encode("utf-8", "surrogateescape")
        return splice_bytes(raw, replacements)


def parse_csv_record(raw: bytes, columns: Sequence[str] | None = None) -> CsvRecord:
    """Parse one CSV record (its line end included). Raises BodyUnparseableError when it is
    not an RFC 4180 record, or a limit error when a field nests documents too deep."""
    with budget_for(None):
        record = CsvRecord(raw, columns)
        check_segments(record.segments)
    return record
