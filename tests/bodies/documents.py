"""Attachments built in the tests: a PDF with a text layer, a zip of text files, an image."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib


def pdf_with_text(text: str) -> bytes:
    """A one-page PDF whose content stream shows `text` in Helvetica (hand-built, with a
    correct cross-reference table, so pypdf reads it without repairs)."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# A 1x1 PNG: an image with no text layer.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_text(keyword: str, text: str, kind: str = "tEXt") -> bytes:
    """The 1x1 PNG with one text chunk after its header: `tEXt` (Latin-1), `zTXt` (deflated)
    or `iTXt` (UTF-8, deflated), as image tools write a caption or a description."""
    key = keyword.encode("latin-1") + b"\0"
    if kind == "tEXt":
        chunk = _png_chunk(b"tEXt", key + text.encode("latin-1"))
    elif kind == "zTXt":
        chunk = _png_chunk(b"zTXt", key + b"\0" + zlib.compress(text.encode("latin-1")))
    else:
        chunk = _png_chunk(b"iTXt", key + b"\1\0en\0" + b"\0" + zlib.compress(text.encode()))
    header_end = 8 + 25  # signature, then IHDR's 13 bytes with length, type and CRC
    return PNG[:header_end] + chunk + PNG[header_end:]


def jpeg_with_comment(text: str) -> bytes:
    """A minimal JPEG stream head: SOI, a COM segment holding `text`, EOI."""
    body = text.encode()
    return b"\xff\xd8\xff\xfe" + struct.pack(">H", len(body) + 2) + body + b"\xff\xd9"


def gif_with_comment(text: str) -> bytes:
    """A 1x1 GIF89a with a comment extension holding `text` in sub-blocks."""
    data = text.encode("latin-1")
    blocks = b"".join(
        bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255)
    )
    return (
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00"
        + b"\x21\xfe" + blocks + b"\x00"
        + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b"
    )
