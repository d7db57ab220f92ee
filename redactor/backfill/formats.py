"""Stored files -> a stream of pieces: items to redact, and the bytes between them, as they came.

A reader reads a binary stream in blocks and yields `Piece`s whose bytes, joined, are the input
exactly: an item is what the proxy would receive as one message (a JSON document, a CSV row, an
e-mail), a gap (`kind` None) is what lies between items (newlines, the commas and brackets of a
JSON array, an mbox `From ` line) and is written back untouched. Memory is bounded by the block
size and the largest item, never by the file.

Each piece carries the reader's state after it, so a run can stop after any piece and resume
there (`readers[format](stream, offset, state)` continues from that byte).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from redactor.errors import RedactorError

__all__ = [
    "FORMATS",
    "InputFormatError",
    "ItemKind",
    "ItemTooLargeError",
    "Piece",
    "binary_kind",
    "detect_format",
    "read_pieces",
]

FORMATS = ("jsonl", "json", "csv", "eml", "mbox", "html", "text")
BLOCK_BYTES = 1024 * 1024
# One item (a ticket, a row, an e-mail) larger than this is refused: the run stops before any
# output replaces its input (the proxy refuses bodies over 10 MiB by default).
MAX_ITEM_BYTES = 64 * 1024 * 1024
# Plain text is cut into items at a blank line once this long (at a line end past twice that):
# a value never spans a paragraph break, and a 1 GB log must not be one item.
TEXT_ITEM_BYTES = 256 * 1024


class InputFormatError(RedactorError):
    status = 422
    code = "input_unparseable"
    message = "the input does not have the structure of its format"


class ItemTooLargeError(RedactorError):
    status = 413
    code = "item_too_large"
    message = "an item of the input is larger than the item limit"


@dataclass(frozen=True, slots=True)
class ItemKind:
    """How an item is parsed: the media type the proxy would see, and a CSV header's names."""

    content_type: str
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Piece:
    raw: bytes = field(repr=False)  # may hold raw values: never log it
    kind: ItemKind | None  # None: passed through unchanged
    state: str = ""  # the reader's state after this piece, for a resume


JSON = ItemKind("application/json")
MESSAGE = ItemKind("message/rfc822")
HTML = ItemKind("text/html")
TEXT = ItemKind("text/plain")

Reader = Callable[[BinaryIO, int, str], Iterator[Piece]]


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    """The stream's lines, each with its `\\n` (the last one may lack it)."""
    # The blocks of a line longer than a block are kept apart and joined once, when its end
    # comes: joining them block by block copied a 64 MiB line 64 times.
    pending: list[bytes] = []
    pending_size = 0
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            if pending:
                yield b"".join(pending)
            return
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            pending_size += len(block)
            if pending_size > MAX_ITEM_BYTES:
                raise ItemTooLargeError()
            pending.append(block)
            continue
        if pending:
            pending.append(block[:cut])
            data = b"".join(pending)
        else:
            data = block[:cut]
        lines = data.split(b"\n")
        lines.pop()  # empty: the data ends after a newline
        for line in lines:
            yield line + b"\n"
        rest = block[cut:]
        pending, pending_size = ([rest], len(rest)) if rest else ([], 0)


def _seek(stream: BinaryIO, offset: int) -> None:
    if offset:
        stream.seek(offset)


def read_jsonl(stream: BinaryIO, offset: int = 0, state: str = "") -> Iterator[Piece]:
    """JSON Lines: each non-blank line (with its line end) is a JSON item."""
    _seek(stream, offset)
    for line in _lines(stream):
        yield Piece(line, JSON if line.strip() else None)


_JSON_SPACE = frozenset(" \t\r\n")


def read_json(stream: BinaryIO, offset: int = 0, state: str = "") -> Iterator[Piece]:
    """A JSON array (each element an item) or a sequence of JSON documents (each an item).

    Elements are delimited with the C decoder (`raw_decode`) over a bounded buffer; the bytes
    of an element go out as they came, the decoded object is thrown away. Raises
    InputFormatError when the input is neither.
    """
    decoder = json.JSONDecoder()
    _seek(stream, offset)
    mode = state  # "" at the start, "array" inside the top array, "values" for a sequence
    buf = bytearray()  # grows in place: `bytes +=` copied the whole buffer at every block
    # After an element was found cut by the buffer's end, it is tried again only once the buffer
    # has doubled (or the input ended): retrying at every block parsed a 64 MiB element 64 times.
    retry_at = 0
    while True:
        block = stream.read(BLOCK_BYTES)
        eof = not block
        buf += block
        if not eof and len(buf) < retry_at:
            continue
        # UTF-8 by RFC 8259; surrogateescape keeps any byte and a block cut inside a character.
        text = buf.decode("utf-8", "surrogateescape")
        i = 0
        consumed = 0  # bytes of buf already yielded
        while i < len(text):
            start = i
            while i < len(text) and (
                text[i] in _JSON_SPACE
                or (mode == "array" and text[i] == ",")
                or (mode == "" and text[i] == "\ufeff")
            ):
                i += 1
            if i > start:
                gap = text[start:i].encode("utf-8", "surrogateescape")
                consumed += len(gap)
                yield Piece(gap, None, mode)
            if i == len(text):
                break
            if mode == "":
                if text[i] == "[":
                    mode = "array"
                    consumed += 1
                    i += 1
                    yield Piece(b"[", None, mode)
                    continue
                mode = "values"
            if mode == "end" or (mode == "array" and text[i] == "]"):
                # The end of the array: what follows is passed through as it is.
                mode = "end"
                tail = text[i:].encode("utf-8", "surrogateescape")
                consumed += len(tail)
                yield Piece(tail, None, mode)
                break
            try:
                _obj, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                if eof:
                    raise InputFormatError() from None
                break  # the element goes on in the next block
            if end == len(text) and not eof:
                break  # a number at the end of the buffer may go on in the next block
            element = text[i:end].encode("utf-8", "surrogateescape")
            consumed += len(element)
            yield Piece(element, JSON, mode)
            i = end
        buf = buf[consumed:]
        if eof:
            if buf:
                raise InputFormatError()
            return
        if len(buf) > MAX_ITEM_BYTES:
            raise ItemTooLargeError()
        retry_at = min(2 * len(buf), MAX_ITEM_BYTES + 1)


def _record_lines(stream: BinaryIO) -> Iterator[bytes]:
    """CSV records: lines joined while a quoted field is open (an odd number of quotes)."""
    record: list[bytes] = []
    quotes = 0
    size = 0
    for line in _lines(stream):
        record.append(line)
        quotes += line.count(b'"')
        size += len(line)
        if quotes % 2 == 0:
            yield b"".join(record)
            record, quotes, size = [], 0, 0
        elif size > MAX_ITEM_BYTES:
            raise ItemTooLargeError()
    if record:
        yield b"".join(record)


def _columns(header: bytes) -> tuple[str, ...]:
    text = header.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    row = next(csv.reader([text.rstrip("\r\n")]), [])
    return tuple(name.strip() for name in row)


def read_csv(stream: BinaryIO, offset: int = 0, state: str = "") -> Iterator[Piece]:
    """CSV with a header: the header is scanned as a record without names, each later record
    is an item whose fields are named by the header (re-read from the start on a resume)."""
    records = _record_lines(stream)
    header = next(records, None)
    if header is None:
        return
    columns = _columns(header)
    if offset:
        stream.seek(offset)
        records = _record_lines(stream)
    else:
        yield Piece(header, ItemKind("text/csv"))
    kind = ItemKind("text/csv", columns)
    for record in records:
        yield Piece(record, kind if record.strip() else None)


_FROM_LINE = re.compile(rb"From ")


def read_mbox(stream: BinaryIO, offset: int = 0, state: str = "") -> Iterator[Piece]:
    """An mbox mailbox: each `From ` line passes through, the message after it is an item."""
    _seek(stream, offset)
    message: list[bytes] = []
    size = 0
    for line in _lines(stream):
        if line.startswith(b"From "):
            if message:
                yield Piece(b"".join(message), MESSAGE)
                message, size = [], 0
            yield Piece(line, None)
            continue
        message.append(line)
        size += len(line)
        if size > MAX_ITEM_BYTES:
            raise ItemTooLargeError()
    if message:
        yield Piece(b"".join(message), MESSAGE)


def _whole(kind: ItemKind) -> Reader:
    def read(stream: BinaryIO, offset: int = 0, state: str = "") -> Iterator[Piece]:
        _seek(stream, offset)
        data = stream.read(MAX_ITEM_BYTES + 1)
        if len(data) > MAX_ITEM_BYTES:
            raise ItemTooLargeError()
        if data:
            yield Piece(data, kind)

    read.__doc__ = f"The whole input as one {kind.content_type} item."
    return read


def read_text(stream: BinaryIO, offset: int = 0, state: str = "") -> Iterator[Piece]:
    """Plain text in items of whole lines, cut at a blank line (TEXT_ITEM_BYTES)."""
    _seek(stream, offset)
    item: list[bytes] = []
    size = 0
    for line in _lines(stream):
        item.append(line)
        size += len(line)
        blank = not line.strip()
        if (size >= TEXT_ITEM_BYTES and blank) or size >= 2 * TEXT_ITEM_BYTES:
            yield Piece(b"".join(item), TEXT)
            item, size = [], 0
    if item:
        yield Piece(b"".join(item), TEXT)


READERS: dict[str, Reader] = {
    "jsonl": read_jsonl,
    "json": read_json,
    "csv": read_csv,
    "eml": _whole(MESSAGE),
    "mbox": read_mbox,
    "html": _whole(HTML),
    "text": read_text,
}

_BY_SUFFIX = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".eml": "eml",
    ".mbox": "mbox",
    ".mbx": "mbox",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".log": "text",
}
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]")


# Files whose bytes are not text: redact cannot see the values inside, so it refuses them
# rather than copy them through with "no values found".
_NOT_TEXT = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip (or .xlsx, .docx)"),
    (b"PK\x05\x06", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"%PDF-", "PDF"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE (.xls, .doc, .msg)"),
)


def binary_kind(head: bytes) -> str | None:
    """What kind of non-text file `head` starts (compressed, archive, document), or None."""
    return next((kind for magic, kind in _NOT_TEXT if head.startswith(magic)), None)


# Names that say "text" without saying what is in it: the content decides if it is JSON Lines.
_GENERIC_TEXT = ("text",)


def _json_lines(head: bytes) -> bool:
    """True when every whole line of `head` (at least one) is a JSON object or array."""
    lines = [line for line in head[: head.rfind(b"\n") + 1].splitlines() if line.strip()]
    if not lines:
        return False
    for line in lines:
        if line.lstrip(b"\xef\xbb\xbf \t")[:1] not in (b"{", b"["):
            return False
        try:
            json.loads(line)
        except ValueError:
            return False
    return True


def detect_format(name: str, head: bytes) -> str:
    """The format of an input from its name, else from its first bytes (`head`); a `.txt`
    or `.log` whose lines are JSON documents is JSON Lines (each line an item)."""
    for suffix, fmt in _BY_SUFFIX.items():
        if name.lower().endswith(suffix):
            if fmt in _GENERIC_TEXT and _json_lines(head):
                return "jsonl"
            return fmt
    if name.lower().endswith("mbox"):
        return "mbox"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"From "):
        return "mbox"
    if stripped[:1] == b"[":
        return "json"
    if stripped[:1] == b"{":
        first = stripped.split(b"\n", 1)[0]
        try:
            json.loads(first)
        except ValueError:
            return "json"  # one document over several lines
        return "jsonl"
    if stripped[:1] == b"<":
        return "html"
    if _HEADER_LINE.match(stripped):
        return "eml"
    return "text"


def read_pieces(fmt: str, stream: BinaryIO, offset: int = 0, state: str = "") -> Iterator[Piece]:
    """The pieces of `stream` in format `fmt`, from `offset` in reader state `state`.

    Raises InputFormatError or ItemTooLargeError while iterating.
    """
    return READERS[fmt](stream, offset, state)
