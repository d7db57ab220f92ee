"""E-mail, form, multipart and content-encoding codecs: the edge cases the shapes do not hit."""

from __future__ import annotations

import base64
import codecs
import email
import gzip
import zlib
from email import policy
from urllib.parse import parse_qs

import pytest

from redactor.bodies import Edit, UnsupportedContentEncodingError, parse_body
from redactor.errors import (
    BodyTooLargeError,
    BodyUnparseableError,
    UndeclaredCharsetError,
    UnsupportedMediaTypeError,
)

CARD = "4111 1111 1111 1111"
TOKEN = "tok_v1_card_abcdefghijklmnopqrst_4242"


def _redact_card(parsed, card: str = CARD) -> bytes:
    edits = {}
    for segment in parsed.segments:
        start = segment.text.find(card)
        if start >= 0:
            edits[segment.index] = [Edit(start, start + len(card), TOKEN)]
    assert edits
    return parsed.rebuild(edits)


# --- e-mail --------------------------------------------------------------------------------------

NESTED = (
    b"From: a@example.com\r\n"
    b"Subject: =?iso-8859-1?q?caf=E9_4111_1111_1111_1111?=\r\n"
    b"Content-Type: multipart/mixed; boundary=outer\r\n"
    b"\r\n"
    b"preamble\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"caf=E9 4111 1111 1111 11=\r\n"
    b"11 end\r\n"
    b"--outer\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + base64.encodebytes(b"\x89PNG 4111 1111 1111 1111").replace(b"\n", b"\r\n")
    + b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b'Content-Type: multipart/alternative; boundary="in ner"\r\n'
    b"\r\n"
    b"--in ner\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"inner 4111 1111 1111 1111\r\n"
    b"--in ner--\r\n"
    b"\r\n"
    b"--outer--\r\n"
    b"epilogue\r\n"
)


def test_email_body_walks_nested_multiparts_and_attached_messages() -> None:
    parsed = parse_body(NESTED, "message/rfc822")
    assert parsed.rebuild({}) == NESTED
    texts = [(s.field_name, s.kind, s.text) for s in parsed.segments]
    assert ("Subject", "header", f"café {CARD}") in texts
    # The QP soft break is joined; the CRLF before a delimiter belongs to the delimiter.
    assert ("body", "mime_text", f"café {CARD} end") in texts
    assert ("body", "mime_text", f"inner {CARD}") in texts
    assert not any("PNG" in t for _f, _k, t in texts)  # images are never decoded


def test_email_body_reencodes_only_changed_parts_in_their_own_encoding_and_charset() -> None:
    out = _redact_card(parse_body(NESTED, "message/rfc822"))
    message = email.message_from_bytes(out, policy=policy.default)
    assert str(message["subject"]) == f"café {TOKEN}"
    assert b"=?iso-8859-1?" in out.split(b"\r\n\r\n")[0]
    parts = [p for p in message.walk() if not p.is_multipart()]
    assert parts[0].get_content() == f"café {TOKEN} end"
    assert b"caf=E9" in out  # still QP in iso-8859-1
    assert parts[1].get_content() == b"\x89PNG 4111 1111 1111 1111"
    assert parts[2].get_content() == f"inner {TOKEN}"
    assert out.startswith(b"From: a@example.com\r\n")
    assert out.endswith(b"--outer--\r\nepilogue\r\n")
    assert b"preamble\r\n--outer\r\n" in out


def test_email_body_base64_part_keeps_its_line_length() -> None:
    text = ("word " * 40 + CARD).encode()
    b64 = base64.encodebytes(text).replace(b"\n", b"\r\n")
    raw = (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b64
    )
    out = _redact_card(parse_body(raw, "message/rfc822"))
    body = out.split(b"\r\n\r\n", 1)[1]
    assert {len(line) for line in body.split(b"\r\n")[:-2]} == {76}
    assert base64.b64decode(body) == text.replace(CARD.encode(), TOKEN.encode())


def test_email_body_lf_only_message_keeps_lf() -> None:
    raw = (
        b"Subject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
        + b"a" * 80
        + b" 4111 1111 1111 1111\n"
    )
    out = _redact_card(parse_body(raw, "message/rfc822"))
    assert b"\r" not in out
    assert email.message_from_bytes(out, policy=policy.default).get_content().endswith(TOKEN + "\n")


def test_email_body_header_replacement_cannot_inject_headers() -> None:
    raw = b"Subject: 4111 1111 1111 1111\r\n\r\nbody"
    parsed = parse_body(raw, "message/rfc822")
    out = parsed.rebuild({0: [Edit(0, 19, "x\r\nBcc: evil@example.com")]})
    message = email.message_from_bytes(out, policy=policy.default)
    assert message["bcc"] is None
    assert "Bcc: evil" in str(message["subject"])


@pytest.mark.parametrize(
    "raw",
    [
        b"not a message at all",
        b"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\x28",
        b"Subject: x\r\nContent-Type: text/plain; charset=x-unknown-9\r\n\r\nhi",
        b"Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nhi",
        b"Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD=Q",
        b"Subject: x\r\nContent-Type: multipart/mixed\r\n\r\nno boundary",
        b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\nno delimiter",
        b"Subject: =?utf-8?b?/w==?=\r\n\r\nbad encoded word",
        b"Subject: x\r\nthis is not a header\r\n\r\n",
    ],
)
def test_email_body_fails_closed_on_undecodable_input(raw) -> None:
    with pytest.raises(BodyUnparseableError):
        parse_body(raw, "message/rfc822")


def test_email_body_bounds_nesting_depth() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 40 + b"Subject: x\r\n\r\nhi"
    with pytest.raises(BodyUnparseableError):
        parse_body(raw, "message/rfc822")


# --- urlencoded forms ---------------------------------------------------------------------------


def test_form_body_reencodes_changed_field_in_the_same_style() -> None:
    raw = b"a=keep%20me&b=card+4111+1111+1111+1111+%c3%a9&c=x%2fy"
    out = _redact_card(parse_body(raw, "application/x-www-form-urlencoded"))
    assert out == b"a=keep%20me&b=card+" + TOKEN.encode() + b"+%c3%a9&c=x%2fy"


def test_form_body_percent20_style_is_kept() -> None:
    raw = b"b=card%204111%201111%201111%201111"
    out = _redact_card(parse_body(raw, "application/x-www-form-urlencoded"))
    assert out == b"b=card%20" + TOKEN.encode()


def test_form_body_honours_declared_charsets() -> None:
    raw = b"_charset_=iso-8859-1&b=caf%E9+4111+1111+1111+1111"
    parsed = parse_body(raw, "application/x-www-form-urlencoded")
    assert parsed.segments[1].text == f"café {CARD}"
    out = _redact_card(parsed)
    assert parse_qs(out.decode(), encoding="iso-8859-1")["b"] == [f"café {TOKEN}"]
    with pytest.raises(BodyUnparseableError):
        parse_body(b"b=caf%E9", "application/x-www-form-urlencoded; charset=utf-8")


def test_form_body_email_field_that_is_an_address_stays_text() -> None:
    parsed = parse_body(b"email=ada%40example.com", "application/x-www-form-urlencoded")
    assert [(s.field_name, s.kind, s.text) for s in parsed.segments] == [
        ("email", "form_field", "ada@example.com")
    ]


# --- multipart/form-data ------------------------------------------------------------------------


def _multipart(*parts: bytes) -> bytes:
    return b"".join(b"--BND\r\n" + p + b"\r\n" for p in parts) + b"--BND--\r\n"


def test_multipart_body_honours_part_charset_and_sendgrid_charsets() -> None:
    raw = _multipart(
        b'Content-Disposition: form-data; name="charsets"\r\n\r\n{"text":"iso-8859-1"}',
        b'Content-Disposition: form-data; name="text"\r\n\r\ncaf\xe9 4111 1111 1111 1111',
        b'Content-Disposition: form-data; name="html"\r\nContent-Type: text/html; charset=utf-16-le\r\n\r\n'
        + "<p>4111 1111 1111 1111</p>".encode("utf-16-le"),
    )
    parsed = parse_body(raw, "multipart/form-data; boundary=BND")
    texts = {s.field_name: s.text for s in parsed.segments}
    assert texts["text"] == f"café {CARD}"
    assert texts["html"] == CARD
    out = parsed.rebuild(
        {
            s.index: [Edit(s.text.index(CARD), s.text.index(CARD) + len(CARD), TOKEN)]
            for s in parsed.segments
            if CARD in s.text
        }
    )
    assert f"caf\xe9 {TOKEN}".encode("latin-1") in out
    assert f"<p>{TOKEN}</p>".encode("utf-16-le") in out


def test_multipart_body_keeps_binary_attachments_unscanned() -> None:
    raw = _multipart(
        b'Content-Disposition: form-data; name="f"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n\xff4111 1111 1111 1111',
        b'Content-Disposition: form-data; name="g"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\n4111 1111 1111 1111',
    )
    parsed = parse_body(raw, "multipart/form-data; boundary=BND")
    assert [(s.field_name, s.text) for s in parsed.segments] == [("g", CARD)]


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (
            _multipart(b'Content-Disposition: form-data; name="a"\r\n\r\nx')[:-9],
            "multipart/form-data; boundary=BND",
        ),
        (_multipart(b'Content-Disposition: form-data; name="a"\r\n\r\nx'), "multipart/form-data"),
        (b"no delimiters here", "multipart/form-data; boundary=BND"),
        (
            _multipart(
                b'Content-Disposition: form-data; name="a"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xff'
            ),
            "multipart/form-data; boundary=BND",
        ),
        (
            _multipart(b'Content-Disposition: form-data; name="charsets"\r\n\r\n{not json'),
            "multipart/form-data; boundary=BND",
        ),
    ],
)
def test_multipart_body_fails_closed(raw, content_type) -> None:
    with pytest.raises(BodyUnparseableError):
        parse_body(raw, content_type)


# --- content encoding ---------------------------------------------------------------------------

JSON = b'{"a": "card 4111 1111 1111 1111", "id": 12}'


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some senders do
        ("identity", lambda d: d),
        ("gzip, identity", gzip.compress),
        ("deflate, gzip", lambda d: gzip.compress(zlib.compress(d))),
    ],
)
def test_content_encoding_round_trips_and_reencodes(encoding, compress) -> None:
    raw = compress(JSON)
    parsed = parse_body(raw, "application/json", content_encoding=encoding)
    assert parsed.rebuild({}) == raw
    out = _redact_card(parsed)
    again = parse_body(out, "application/json", content_encoding=encoding)
    assert again.segments[0].text == f"card {TOKEN}"


def test_content_encoding_rejects_unknown_and_corrupt_streams() -> None:
    with pytest.raises(UnsupportedContentEncodingError) as caught:
        parse_body(JSON, "application/json", content_encoding="br")
    assert caught.value.status == 415
    assert caught.value.code == "unsupported_content_encoding"
    with pytest.raises(BodyUnparseableError):
        parse_body(b"\x1f\x8b garbage", "application/json", content_encoding="gzip")
    with pytest.raises(BodyUnparseableError):
        parse_body(gzip.compress(JSON)[:-10], "application/json", content_encoding="gzip")
    with pytest.raises(BodyUnparseableError):
        parse_body(gzip.compress(JSON) + b"junk", "application/json", content_encoding="gzip")


def test_content_encoding_stops_decompression_bombs() -> None:
    bomb = gzip.compress(b"0" * (20 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(BodyTooLargeError):
        parse_body(bomb, "text/plain", content_encoding="gzip")
    with pytest.raises(BodyTooLargeError):
        parse_body(
            gzip.compress(b"x" * 2000),
            "text/plain",
            content_encoding="gzip",
            max_decoded_bytes=1000,
        )
    with pytest.raises(BodyTooLargeError):
        parse_body(b"x" * 2000, "text/plain", max_decoded_bytes=1000)


# --- registry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json; charset=utf-8", "json_string"),
        ("application/vnd.api+json", "json_string"),
        ("text/plain; charset=us-ascii", "text"),
        ("text/csv", "text"),
        ("application/octet-stream", "text"),
        ("application/xml", "html_text"),
        ("application/atom+xml", "html_text"),
        (None, "text"),
        ("garbage", "text"),
    ],
)
def test_registry_dispatches_by_content_type(content_type, kind) -> None:
    parsed = parse_body(b'"4111 1111 1111 1111"', content_type)
    assert [s.kind for s in parsed.segments] == [kind]


@pytest.mark.parametrize("content_type", ["application/octet-stream", "image/png", None])
def test_registry_refuses_unknown_types_when_asked(content_type) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        parse_body(b"x", content_type, unknown_types="refuse")


def test_registry_unknown_types_round_trip_arbitrary_bytes() -> None:
    raw = b"\x00\xfe\xff 4111 1111 1111 1111 \xc3"
    parsed = parse_body(raw, "application/octet-stream")
    assert parsed.rebuild({}) == raw
    assert parsed.rebuild({0: [Edit(4, 23, "T")]}) == b"\x00\xfe\xff T \xc3"


def test_registry_declared_text_charset_is_strict() -> None:
    with pytest.raises(BodyUnparseableError):
        parse_body(b"\xff", "text/plain; charset=utf-8")
    with pytest.raises(BodyUnparseableError):
        parse_body(b"x", "text/plain; charset=unicode_escape")


def test_registry_bare_multipart_mixed_is_walked_like_mail() -> None:
    raw = (
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(CARD.encode())
        + b"\r\n--b--\r\n"
    )
    parsed = parse_body(raw, "multipart/mixed; boundary=b")
    assert [s.text for s in parsed.segments] == [CARD]
    assert parsed.rebuild({}) == raw
    out = _redact_card(parsed)
    assert base64.b64encode(TOKEN.encode()) in out


def test_an_encoded_word_with_a_non_ascii_charset_name_is_a_typed_error() -> None:
    from redactor.bodies.mime import EncodedWordsView
    from redactor.errors import BodyUnparseableError

    # A mutated body decoded with surrogateescape can carry such a charset name.
    with pytest.raises(BodyUnparseableError):
        EncodedWordsView("=?\udc80?q?4111?=", "subject")


@pytest.mark.parametrize(
    ("raw", "declared"),
    [
        (codecs.BOM_UTF16_LE + "card 4111 1111 1111 1111".encode("utf-16-le"), None),
        (codecs.BOM_UTF16_BE + "card 4111 1111 1111 1111".encode("utf-16-be"), "iso-8859-1"),
        (codecs.BOM_UTF8 + b"card 4111 1111 1111 1111", "utf-16"),
    ],
)
def test_a_byte_order_mark_decides_the_charset_as_a_browser_does(
    raw: bytes, declared: str | None
) -> None:
    content_type = "text/plain" + (f"; charset={declared}" if declared else "")
    parsed = parse_body(raw, content_type)

    assert any("4111 1111 1111 1111" in s.text for s in parsed.segments)
    # The mark stays: encoding back gives the same bytes.
    assert parsed.rebuild({}) == raw


def test_iso_2022_text_is_read_with_its_full_width_digits() -> None:
    raw = "カード番号 ４１１１ １１１１ １１１１ １１１１".encode("iso2022_jp_2")
    assert b"\x1b$B" in raw

    parsed = parse_body(raw, "text/plain")

    assert any("４１１１ １１１１" in s.text for s in parsed.segments)


def test_utf16_without_a_mark_or_charset_is_refused() -> None:
    with pytest.raises(UndeclaredCharsetError):
        parse_body("card 4111 1111 1111 1111".encode("utf-16-le"), "text/plain")


def test_a_filename_split_over_rfc_2231_continuations_is_read_whole_and_rewritten() -> None:
    raw = (
        b"--b\r\n"
        b"Content-Disposition: form-data; name=\"file\"; filename*0*=utf-8''card%204111%201111;"
        b" filename*1*=%201111%201111.txt\r\n"
        b"Content-Type: application/octet-stream\r\n\r\nhello\r\n--b--\r\n"
    )
    parsed = parse_body(raw, "multipart/form-data; boundary=b")
    [segment] = [s for s in parsed.segments if "4111" in s.text]
    assert segment.text == "card 4111 1111 1111 1111.txt"
    start = segment.text.index("4111")

    out = parsed.rebuild({segment.index: [Edit(start, start + 19, "TOKEN")]})

    assert b"4111" not in out
    assert b"filename*0*=utf-8''card%20TOKEN.txt" in out
    assert b"filename*1" not in out


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=a; boundary=b",
        "text/plain; charset=utf-8; charset=iso-8859-1",
    ],
)
def test_a_parameter_given_twice_is_refused(content_type: str) -> None:
    with pytest.raises(BodyUnparseableError):
        parse_body(b"--a\r\n\r\nx\r\n--a--\r\n", content_type)


@pytest.mark.parametrize("media_type", ["text/calendar", "text/vcard"])
def test_a_card_folded_across_lines_is_read_unfolded_and_rewritten(media_type: str) -> None:
    raw = (
        b"BEGIN:VEVENT\r\nDESCRIPTION:Customer card 4111 1111 11\r\n 11 1111 call back\r\n"
        b"END:VEVENT\r\n"
    )
    parsed = parse_body(raw, f"{media_type}; charset=utf-8")
    [segment] = parsed.segments
    assert "card 4111 1111 1111 1111 call" in segment.text
    start = segment.text.index("4111")

    out = parsed.rebuild({0: [Edit(start, start + 19, "TOKEN")]})

    assert out == raw.replace(b"4111 1111 11\r\n 11 1111", b"TOKEN")
    # Folds elsewhere and every other byte stay as they were.
    assert parsed.rebuild({}) == raw


@pytest.mark.parametrize("content_type", ["application/octet-stream", "text/plain", None])
def test_compressed_bytes_under_a_label_that_does_not_say_so_are_refused(
    content_type: str | None,
) -> None:
    raw = gzip.compress(b"card 4111 1111 1111 1111")
    with pytest.raises(UnsupportedMediaTypeError) as refused:
        parse_body(raw, content_type)
    assert refused.value.code == "compressed_without_encoding"
    # Declared, the same bytes are inflated and read.
    parsed = parse_body(raw, "text/plain", content_encoding="gzip")
    assert any("4111 1111 1111 1111" in s.text for s in parsed.segments)


def test_a_header_without_encoded_words_keeps_its_own_bytes_around_the_value() -> None:
    # Raw UTF-8 (RFC 6532), its spacing and its folds: only the value's characters change.
    raw = (
        "From: ada@example.com\r\n"
        "Subject:  café order\r\n\tcard 4111 1111\r\n 1111 1111  (urgent)\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
    ).encode()
    parsed = parse_body(raw, "message/rfc822")
    subject = next(s for s in parsed.segments if s.field_name == "Subject")
    start = subject.text.index("4111")
    out = parsed.rebuild({subject.index: [Edit(start, start + 19, TOKEN)]})
    assert out == raw.replace(b"4111 1111\r\n 1111 1111", TOKEN.encode())
    header = email.message_from_bytes(out, policy=policy.default)["subject"]
    assert TOKEN in str(header)
    assert "café" in str(header)
