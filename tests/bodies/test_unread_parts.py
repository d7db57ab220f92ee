"""Codecs list the parts they cannot read and replace exactly those on request."""

from __future__ import annotations

import base64
import gzip
import zlib

import pytest

from redactor.bodies import parse_body
from redactor.bodies.attachments import is_text
from redactor.bodies.segments import rebuild_stripped, unread_parts_of
from tests.bodies.documents import (
    PNG,
    gif_with_comment,
    jpeg_with_comment,
    pdf_with_text,
    png_with_text,
)


def _message(attachment: bytes, ctype: str) -> bytes:
    return (
        b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b1\r\nContent-Type: " + ctype.encode() + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(attachment)
        + b"--b1--\r\n"
    )


def _form_with_message(message: bytes) -> bytes:
    return (
        b'--B\r\nContent-Disposition: form-data; name="email"\r\n\r\n' + message + b"\r\n"
        b'--B\r\nContent-Disposition: form-data; name="f"; filename="p.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n--B--\r\n"
    )


def test_a_form_lists_its_files_and_those_of_a_message_in_a_field() -> None:
    pdf = pdf_with_text("hello")
    body = _form_with_message(_message(pdf, "application/pdf"))
    parsed = parse_body(body, "multipart/form-data; boundary=B")
    kinds = [(p.kind, p.size) for p in unread_parts_of(parsed)]
    assert kinds == [("pdf", len(pdf)), ("image", len(PNG))]
    assert parsed.rebuild({}) == body
    # Strip only the PDF inside the message: the image part stays byte for byte.
    stripped = rebuild_stripped(parsed, {}, frozenset({0}))
    assert PNG in stripped
    assert base64.encodebytes(pdf)[:30] not in stripped
    assert b"application/pdf, " + str(len(pdf)).encode() + b" bytes]" in stripped
    # Strip only the image.
    only_image = rebuild_stripped(parsed, {}, frozenset({1}))
    assert PNG not in only_image
    assert base64.encodebytes(pdf)[:30] in only_image


def test_a_compressed_message_is_stripped_and_compressed_again() -> None:
    message = _message(PNG, "image/png")
    parsed = parse_body(gzip.compress(message), "message/rfc822", content_encoding="gzip")
    assert [p.kind for p in unread_parts_of(parsed)] == ["image"]
    out = gzip.decompress(rebuild_stripped(parsed, {}, frozenset({0})))
    assert out.startswith(message.split(b"--b1\r\nContent-Type: image/png")[0])
    assert b"image/png, 66 bytes]" in out


def test_text_is_known_by_its_bytes() -> None:
    assert is_text(b"plain ascii, a log line\n")
    assert is_text("caf\u00e9".encode())
    assert is_text(b"\xff\xfe" + "x".encode("utf-16-le"))
    assert not is_text(PNG)
    assert not is_text(b"abc\x00def")
    assert not is_text(b"\xe9t\xe9 latin-1")


# An image's text layer: what its viewers show as a caption, a comment or a description.
def _layer(data: bytes) -> str | None:
    from redactor.bodies.attachments import UnreadPart, text_layer

    return text_layer(UnreadPart("image/png", len(data), "image", data))


@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt"])
def test_a_png_text_chunk_is_its_text_layer(kind: str) -> None:
    layer = _layer(png_with_text("Description", "card 4000 0566 5566 5556", kind))
    assert layer is not None
    assert "4000 0566 5566 5556" in layer


def test_jpeg_and_gif_comments_are_their_text_layer() -> None:
    assert "4000 0566 5566 5556" in (_layer(jpeg_with_comment("card 4000 0566 5566 5556")) or "")
    assert "4000 0566 5566 5556" in (_layer(gif_with_comment("card 4000 0566 5566 5556")) or "")


def test_an_image_without_text_has_no_layer_and_a_damaged_one_raises_nothing() -> None:
    assert _layer(PNG) is None
    damaged = png_with_text("Comment", "hello", "zTXt")
    for cut in range(8, len(damaged), 3):
        _layer(damaged[:cut])  # no exception whatever is missing
    assert _layer(b"\x89PNG\r\n\x1a\n" + b"\xff" * 40) is None


def test_a_png_chunk_that_inflates_to_gigabytes_is_read_only_up_to_the_bound() -> None:
    from redactor.bodies.attachments import _MAX_LAYER_CHARS

    bomb = png_with_text("Comment", "x", "zTXt").replace(
        zlib.compress(b"x"), zlib.compress(b"0" * (64 * 1024 * 1024), 9)
    )
    layer = _layer(bomb)
    assert layer is not None
    assert len(layer) <= _MAX_LAYER_CHARS + 100
