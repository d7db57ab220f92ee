"""What a part's bytes are, whatever its label says: text, or a part redactor cannot read.

A MIME entity or a form-data part is read as text when its bytes are text (a byte order mark,
or valid UTF-8 without NUL bytes), whatever its declared type or none: a `.log` sent as
`application/octet-stream` is a text file to whoever opens it (issue 18, item 5). A PDF, an
image, an archive or any other binary part cannot be rewritten in place: it is an
`UnreadPart`, listed in the audit record, and the route's `unreadable_parts` policy passes,
strips or refuses it (item 9). Where a library reads a text layer cheaply (a PDF's text with
pypdf, the names and text members of a zip archive, the text an image carries for its viewers:
PNG text chunks, JPEG comments and XMP, GIF comments), that text is scanned: a value found in
it cannot be replaced, so the part is stripped or the message refused even under `pass`.
"""

from __future__ import annotations

import codecs
import io
import logging
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field

__all__ = [
    "UnreadPart",
    "UnreadSummary",
    "is_text",
    "placeholder_text",
    "sniff_kind",
    "text_charset",
    "text_layer",
    "unread_part",
]

_TEXT_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)
_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# A text layer is read up to these bounds; past them the rest stays unread (the scan worker's
# time budget bounds a slow parse).
_MAX_PDF_PAGES = 500
_MAX_LAYER_CHARS = 4 * 1024 * 1024
# pypdf's own bounds on what one stream may inflate to (its defaults are 75 MB each).
_PDF_LIMITS = {
    "maximum_declared_stream_length": 16 * 1024 * 1024,
    "zlib_maximum_output_length": 8 * 1024 * 1024,
    "lzw_maximum_output_length": 8 * 1024 * 1024,
    "run_length_maximum_output_length": 8 * 1024 * 1024,
    "array_based_stream_maximum_output_length": 8 * 1024 * 1024,
    "jbig2_maximum_output_length": 8 * 1024 * 1024,
}
_MAX_ZIP_MEMBERS = 200
_MAX_ZIP_MEMBER_BYTES = 1024 * 1024
_MAX_ZIP_TOTAL_BYTES = 8 * 1024 * 1024

# pypdf reports malformed files through its logger and warnings: never on our stderr (a
# message may quote bytes of the file, and the file may hold a value).
logging.getLogger("pypdf").disabled = True


@dataclass(frozen=True, slots=True)
class UnreadPart:
    """A part of a message whose bytes are not text: listed by type and size, never content."""

    media_type: str  # as declared (lower case), or application/octet-stream when none
    size: int  # decoded bytes
    kind: str  # pdf, image, archive, binary
    data: bytes = field(repr=False, compare=False)  # decoded bytes, for the text layer


@dataclass(frozen=True, slots=True)
class UnreadSummary:
    """What the audit record and the policy need of an unread part (picklable, no content)."""

    media_type: str
    size: int
    kind: str
    # A value was found in its text layer: it cannot be replaced in place, so the part is
    # stripped (or the message refused) whatever the policy.
    value_found: bool


def unread_part(data: bytes, declared: str | None) -> UnreadPart:
    """The record of a part that is not text. Its declared type is kept only when it names
    a type (a sender could write digits there: a type with a digit run is not repeated)."""
    media_type = (declared or "").lower()
    if not media_type or sum(c.isdigit() for c in media_type) > 4:
        media_type = "application/octet-stream"
    return UnreadPart(media_type, len(data), sniff_kind(data, media_type), data)


def text_charset(data: bytes) -> str | None:
    """How `data` reads as text, or None when it is not text: "" for a Unicode byte order
    mark or valid UTF-8 (ASCII included) without NUL bytes, the codec (`utf-16-le`,
    `utf-16-be`) for UTF-16 without a byte order mark, known by its NUL bytes at every other
    position and its validity, and (`utf-32-le`, `utf-32-be`) for UTF-32 with a mark or
    without one. An empty part is text (nothing to hide)."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        # Before UTF-16's: UTF-32LE's mark starts with it. The mark stays in the text (and
        # is written back), as UTF-8's does.
        return _utf32(data, "utf-32-le" if data[0] == 0xFF else "utf-32-be")
    if data.startswith(_TEXT_BOMS):
        return ""
    if b"\x00" in data:
        return _bomless_utf16(data) or _bomless_utf32(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return ""


def _bomless_utf16(data: bytes) -> str | None:
    if len(data) % 2:
        return None
    head = data[:4096]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    pairs = len(head) // 2
    if max(even, odd) < 0.8 * pairs or min(even, odd) > 0:
        return None
    codec = "utf-16-le" if odd > even else "utf-16-be"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    if any(c < " " and c not in "\t\n\r\f" for c in text[:4096]):
        return None
    return codec


def _bomless_utf32(data: bytes) -> str | None:
    # UTF-32 text is known by its NUL bytes: the two high bytes of every unit are zero.
    if len(data) % 4:
        return None
    head = data[:4096]
    if head[2::4].count(0) != len(head[2::4]):
        return None
    if head[3::4].count(0) == len(head[3::4]):
        codec = "utf-32-le"
    elif head[1::4].count(0) == len(head[1::4]) and head[0::4].count(0) == len(head[0::4]):
        codec = "utf-32-be"
    else:
        return None
    return _utf32(data, codec)


def _utf32(data: bytes, codec: str) -> str | None:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    if any(c < " " and c not in "\t\n\r\f\ufeff" for c in text[:4096]):
        return None
    return codec


def is_text(data: bytes) -> bool:
    """True when `data` is text a reader shows as such (`text_charset`)."""
    return text_charset(data) is not None


def sniff_kind(data: bytes, media_type: str) -> str:
    """pdf, image, archive or binary, by the bytes first and the label second."""
    head = data[:1024]
    if b"%PDF-" in head or media_type == "application/pdf":
        return "pdf"
    if data.startswith(_ZIP_MAGIC) or media_type in ("application/zip", "application/x-zip"):
        return "archive"
    if data.startswith(_IMAGE_MAGIC) or media_type.startswith("image/"):
        return "image"
    return "binary"


def is_pdf(data: bytes) -> bool:
    """A PDF, even one whose bytes are all ASCII (rewriting one would break its offsets)."""
    return b"%PDF-" in data[:1024]


def text_layer(part: UnreadPart) -> str | None:
    """The text a reader extracts from the part (a PDF's text, a zip's names and text
    members), or None when it has none redactor can read. Never raises for a bad file."""
    if part.kind == "pdf":
        return _pdf_text(part.data)
    if part.kind == "archive":
        return _zip_text(part.data)
    if part.kind == "image":
        return _image_text(part.data)
    return None


def _pdf_text(data: bytes) -> str | None:
    try:
        # Deferred: only a message with a PDF pays the import.
        from pypdf import PdfReader, apply_configuration

        with warnings.catch_warnings(), apply_configuration(**_PDF_LIMITS):
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data))
            texts: list[str] = []
            size = 0
            for number, page in enumerate(reader.pages):
                if number >= _MAX_PDF_PAGES or size > _MAX_LAYER_CHARS:
                    break
                text = page.extract_text() or ""
                texts.append(text)
                size += len(text)
    except Exception:  # noqa: BLE001 - any malformed PDF: no text layer, the policy decides
        return None
    joined = "\n".join(texts)
    return joined or None


def _zip_text(data: bytes) -> str | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        texts: list[str] = []
        total = 0
        for number, info in enumerate(archive.infolist()):
            if number >= _MAX_ZIP_MEMBERS:
                break
            texts.append(info.filename)
            if info.is_dir() or info.file_size > _MAX_ZIP_MEMBER_BYTES:
                continue
            total += info.file_size
            if total > _MAX_ZIP_TOTAL_BYTES:
                break
            with archive.open(info) as member:
                content = member.read(_MAX_ZIP_MEMBER_BYTES + 1)
            charset = text_charset(content) if len(content) <= _MAX_ZIP_MEMBER_BYTES else None
            if charset is not None:
                texts.append(_decode_text(content, charset))
    except Exception:  # noqa: BLE001 - a corrupt or encrypted archive: no text layer
        return None
    return "\n".join(texts) or None


def _image_text(data: bytes) -> str | None:
    # The text an image carries for whoever views its details (an image viewer's "comment" or
    # "description", exiftool, a helpdesk's preview): a card typed into a screenshot's caption.
    # Pixels are not read (no OCR).
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            texts = _png_texts(data)
        elif data.startswith(b"\xff\xd8\xff"):
            texts = _jpeg_texts(data)
        elif data.startswith((b"GIF87a", b"GIF89a")):
            texts = _gif_texts(data)
        else:
            return None
    except (ValueError, struct.error, zlib.error, IndexError):
        return None  # a damaged image: no text layer, the policy decides
    return "\n".join(texts) or None


def _inflate(data: bytes) -> bytes:
    # Bounded: a small chunk may inflate to gigabytes.
    return zlib.decompressobj().decompress(data, _MAX_LAYER_CHARS)


def _png_texts(data: bytes) -> list[str]:
    # Chunks: length, type, data, CRC (PNG spec 11.3.4: tEXt, zTXt, iTXt; keyword NUL text).
    texts: list[str] = []
    size = 0
    at = 8
    while at + 8 <= len(data) and size <= _MAX_LAYER_CHARS:
        length, kind = struct.unpack_from(">I4s", data, at)
        body = data[at + 8 : at + 8 + length]
        at += 12 + length
        if kind == b"IEND":
            break
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        keyword, _, rest = body.partition(b"\0")
        if kind == b"tEXt":
            text = rest.decode("latin-1")
        elif kind == b"zTXt":
            text = _inflate(rest[1:]).decode("latin-1")  # after the compression method byte
        else:
            # Compression flag and method, language tag, translated keyword, then the text.
            compressed = rest[:1] == b"\1"
            _language, _, rest = rest[2:].partition(b"\0")
            translated, _, raw = rest.partition(b"\0")
            raw = _inflate(raw) if compressed else raw
            text = translated.decode("utf-8", "replace") + " " + raw.decode("utf-8", "replace")
        texts.append(keyword.decode("latin-1") + ": " + text)
        size += len(texts[-1])
    return texts


def _jpeg_texts(data: bytes) -> list[str]:
    # Segments up to the scan: COM comments and APP1 XMP (an XML packet, as text).
    texts: list[str] = []
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more metadata
            break
        (length,) = struct.unpack_from(">H", data, at + 2)
        body = data[at + 4 : at + 2 + length]
        at += 2 + length
        if marker == 0xFE:
            texts.append(body.decode("utf-8", "replace"))
        elif marker == 0xE1 and body.startswith(b"http://ns.adobe.com/xap/1.0/\0"):
            texts.append(body.split(b"\0", 1)[1].decode("utf-8", "replace"))
    return texts


def _gif_texts(data: bytes) -> list[str]:
    # Comment extensions (0x21 0xFE) anywhere: their text is sub-blocks of up to 255 bytes.
    texts: list[str] = []
    at = data.find(b"\x21\xfe")
    while at != -1 and len(texts) < 64:
        pieces: list[bytes] = []
        i = at + 2
        while i < len(data) and data[i] != 0:
            pieces.append(data[i + 1 : i + 1 + data[i]])
            i += 1 + data[i]
        texts.append(b"".join(pieces).decode("latin-1"))
        at = data.find(b"\x21\xfe", i)
    return texts


def _decode_text(data: bytes, charset: str) -> str:
    if charset:
        return data.decode(charset, "replace")
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_BE, "utf-16"),
        (codecs.BOM_UTF16_LE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, "replace")
    return data.decode("utf-8", "replace")


def placeholder_text(part: UnreadPart) -> str:
    """The text that replaces a stripped part: its type and size, nothing of its content."""
    return f"[redactor removed a part it cannot read: {part.media_type}, {part.size} bytes]"
