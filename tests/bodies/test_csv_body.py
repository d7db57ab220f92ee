"""The CSV record codec: fields as segments named by their column, rebuilt byte for byte."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redactor.bodies.csv_body import parse_csv_record
from redactor.bodies.segments import Edit
from redactor.errors import BodyUnparseableError

FIELDS = st.text(alphabet=st.sampled_from(list('ab ,"\r\n\tx1é€')), max_size=12)


@given(
    st.lists(FIELDS, min_size=1, max_size=5),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
)
def test_a_record_rebuilds_to_its_bytes_and_its_fields_read_as_csv_reads_them(
    row: list[str], quoting: int
) -> None:
    # With its default "\r\n" line end the csv module quotes every field holding a line break
    # (with "\n" alone it leaves a "\r" unquoted: no longer one RFC 4180 record).
    out = io.StringIO()
    csv.writer(out, quoting=quoting).writerow(row)
    raw = out.getvalue().encode()
    record = parse_csv_record(raw, None)
    assert record.rebuild({}) == raw
    texts = [s.text for s in record.segments if s.kind == "csv_field"]
    expected = next(csv.reader(io.StringIO(out.getvalue(), newline="")), [])
    if all(s.kind == "csv_field" for s in record.segments):
        assert texts == expected


def test_fields_are_named_by_the_header_and_edits_keep_the_quoting() -> None:
    raw = b'7,"she said ""hi"" 4111",plain x\r\n'
    record = parse_csv_record(raw, ("id", "body", "note"))
    assert [(s.field_name, s.text) for s in record.segments] == [
        ("id", "7"),
        ("body", 'she said "hi" 4111'),
        ("note", "plain x"),
    ]
    rebuilt = record.rebuild({1: [Edit(14, 18, "TOKEN")], 2: [Edit(6, 7, "a,b")]})
    assert rebuilt == b'7,"she said ""hi"" TOKEN","plain a,b"\r\n'


def test_a_json_document_in_a_field_is_scanned_as_json() -> None:
    record = parse_csv_record(b'1,"{""card"": ""4111 1111 1111 1111""}"\n', ("id", "payload"))
    assert ("card", "4111 1111 1111 1111") in [(s.field_name, s.text) for s in record.segments]


@pytest.mark.parametrize("raw", [b'a,b"c\n', b'"a"b,c\n', b'"open\n'])
def test_a_record_that_is_not_rfc_4180_is_refused(raw: bytes) -> None:
    with pytest.raises(BodyUnparseableError):
        parse_csv_record(raw, None)
