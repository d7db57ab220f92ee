"""Readers cut an input into items and gaps whose bytes, joined, are the input exactly, at
any block size, and resume from any piece boundary with the state they recorded there."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redactor.backfill import formats
from redactor.backfill.formats import InputFormatError, detect_format, read_pieces

# Text without digits (no accidental values) but with what each format must get right:
# quotes, commas, backslashes, newlines, non-ASCII, an mbox separator inside a value.
TEXT = st.lists(
    st.sampled_from([*'ab ,;"\\\n\r\t{}[]<>&é€😀:', "From ", "\nFrom "]), max_size=20
).map("".join)


def _join(pieces: list[formats.Piece]) -> bytes:
    return b"".join(p.raw for p in pieces)


def _inputs(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(["jsonl", "json", "csv", "text", "mbox"]))
    rows = draw(st.lists(st.tuples(TEXT, TEXT), max_size=6))
    if fmt == "jsonl":
        end = draw(st.sampled_from(["\n", "\r\n"]))
        lines = [json.dumps({"a": a, "b": [b]}, ensure_ascii=draw(st.booleans())) for a, b in rows]
        return fmt, (end.join(lines) + draw(st.sampled_from(["", end]))).encode()
    if fmt == "json":
        indent = draw(st.sampled_from([None, 0, 2]))
        doc = json.dumps([{"a": a, "n": 1.5e3} for a, _ in rows] + [7], indent=indent)
        return fmt, (draw(st.sampled_from(["", " \n"])) + doc + "\n").encode()
    if fmt == "csv":
        import csv

        out = io.StringIO()
        writer = csv.writer(out, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
        writer.writerow(["id", "body"])
        writer.writerows(rows)
        return fmt, out.getvalue().encode()
    if fmt == "mbox":
        return fmt, "".join(f"From x@y\nSubject: s\n\n{a}\n" for a, _ in rows).encode()
    return fmt, "\n".join(a + b for a, b in rows).encode()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), block=st.integers(min_value=1, max_value=64))
def test_pieces_join_to_the_input_at_any_block_size(
    monkeypatch: pytest.MonkeyPatch, data: st.DataObject, block: int
) -> None:
    monkeypatch.setattr(formats, "BLOCK_BYTES", block)
    fmt, raw = data.draw(st.composite(_inputs)())
    pieces = list(read_pieces(fmt, io.BytesIO(raw)))
    assert _join(pieces) == raw
    # Resuming after any piece yields the rest, byte for byte.
    at = data.draw(st.integers(min_value=0, max_value=len(pieces)))
    offset = sum(len(p.raw) for p in pieces[:at])
    state = pieces[at - 1].state if at else ""
    assert _join(list(read_pieces(fmt, io.BytesIO(raw), offset, state))) == raw[offset:]


def test_json_array_elements_are_the_items_and_the_punctuation_is_a_gap() -> None:
    raw = b'\xef\xbb\xbf[ {"a": "x"} ,\n  "s", 12 ]\n'
    pieces = list(read_pieces("json", io.BytesIO(raw)))
    assert [p.raw for p in pieces if p.kind] == [b'{"a": "x"}', b'"s"', b"12"]
    assert _join(pieces) == raw


def test_csv_records_span_lines_inside_quotes_and_carry_the_header_names() -> None:
    raw = b'id,body\r\n1,"two\r\nlines"\r\n2,plain\r\n'
    pieces = list(read_pieces("csv", io.BytesIO(raw)))
    assert [p.raw for p in pieces] == [b"id,body\r\n", b'1,"two\r\nlines"\r\n', b"2,plain\r\n"]
    kinds = [p.kind for p in pieces]
    assert [k.columns if k else "gap" for k in kinds] == [None, ("id", "body"), ("id", "body")]


def test_a_truncated_json_array_is_refused() -> None:
    with pytest.raises(InputFormatError):
        list(read_pieces("json", io.BytesIO(b'[{"a": 1}, {"b": ')))


def test_an_item_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "MAX_ITEM_BYTES", 100)
    monkeypatch.setattr(formats, "BLOCK_BYTES", 16)
    with pytest.raises(formats.ItemTooLargeError):
        list(read_pieces("jsonl", io.BytesIO(b'{"a": "' + b"x" * 200 + b'"}\n')))


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("export.jsonl", b"", "jsonl"),
        ("tickets.json", b"", "json"),
        ("rows.CSV", b"", "csv"),
        ("Inbox.mbox", b"", "mbox"),
        ("page.htm", b"", "html"),
        ("-", b'{"a": 1}\n{"a": 2}\n', "jsonl"),
        ("-", b'{\n  "a": 1\n}\n', "json"),
        ("-", b" [1, 2]", "json"),
        ("-", b"From someone Mon Jan  1\nSubject: x\n", "mbox"),
        ("-", b"Received: from x\r\nSubject: y\r\n\r\nbody", "eml"),
        ("-", b"<!doctype html><p>x</p>", "html"),
        ("-", b"just some notes", "text"),
        ("export.txt", b'{"a": 1}\n[2]\n{"b": "x', "jsonl"),  # JSON Lines named .txt
        ("app.log", b'{"level": "info"}\n', "jsonl"),
        ("notes.txt", b'{"a": 1}\nthen prose\n', "text"),
        ("notes.txt", b"[2023-01-01] started\n", "text"),
        ("export", b'{"a": 1}\n{"a": 2}\n', "jsonl"),  # no extension: the content decides
    ],
)
def test_format_is_detected_from_the_name_then_the_content(
    name: str, head: bytes, expected: str
) -> None:
    assert detect_format(name, head) == expected


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(
        st.sampled_from([b"\n", b"x", b"ab", b"\r\n", b"{}", b"\xe2\x82\xac"]), max_size=60
    ),
    block=st.integers(min_value=1, max_value=9),
)
def test_lines_are_the_same_whatever_the_block_size(data: list[bytes], block: int) -> None:
    # Long lines span many blocks, short ones share a block: the items and their bytes must not
    # depend on where the blocks fall.
    raw = b"".join(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(formats, "BLOCK_BYTES", block)
        lines = list(formats._lines(io.BytesIO(raw)))
    *whole, last = raw.split(b"\n")
    assert lines == [line + b"\n" for line in whole] + ([last] if last else [])


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(
        st.recursive(
            st.none() | st.integers() | st.text(max_size=12),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=5), inner, max_size=4)
            ),
            max_leaves=12,
        ),
        max_size=6,
    ),
    block=st.integers(min_value=1, max_value=7),
    as_array=st.booleans(),
)
def test_json_elements_are_the_same_whatever_the_block_size(
    items: list[object], block: int, as_array: bool
) -> None:
    # An element longer than many blocks is retried only as the buffer doubles: the elements
    # found, and every byte between them, must not depend on where the blocks fall.
    # A sequence of documents starting with `[` reads as one array: there, each is an object.
    docs = [json.dumps(item if as_array else {"v": item}).encode() for item in items]
    raw = b"[" + b", ".join(docs) + b"]\n" if as_array else b"\n".join(docs) + b"\n"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(formats, "BLOCK_BYTES", block)
        pieces = list(read_pieces("json", io.BytesIO(raw)))
    assert b"".join(p.raw for p in pieces) == raw
    assert [p.raw for p in pieces if p.kind is not None] == docs
