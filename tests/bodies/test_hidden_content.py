"""Content behind the label (issue 18, item 5), codec by codec: text in attachments of any type
or none, base64 in JSON strings, `data:` URIs, percent-escaped URLs, a JSON string that is a
JSON string literal, and JSON, JSON lines or a form sent as text. Each value is found where
the codec decodes it, and a rebuild changes only the bytes of the finding's encoding."""

from __future__ import annotations

import base64
import json
import random
from urllib.parse import quote

import pytest

from redactor.bodies import parse_body
from redactor.bodies.segments import Edit
from redactor.detection import default_detector
from tests.factories import group, make_pan, make_ssn

TOKEN = "tok_v1_card_" + "a" * 20 + "_0000"


def _values(seed: int) -> tuple[str, str]:
    rng = random.Random(seed)
    pan = group(make_pan("4", 16, rng), (4, 4, 4, 4), " ")
    ssn = make_ssn(rng)
    return pan, f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}"


def _replace(parsed, value: str) -> bytes:
    """Rebuild with every occurrence of `value` in a segment replaced by TOKEN; asserts it
    was found in at least one segment."""
    edits: dict[int, list[Edit]] = {}
    for seg in parsed.segments:
        at = seg.text.find(value)
        if at >= 0:
            edits[seg.index] = [Edit(at, at + len(value), TOKEN)]
    assert edits, "the value is in no segment"
    return parsed.rebuild(edits)


SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
def test_base64_in_a_json_string_is_decoded_and_encoded_again(seed: int) -> None:
    pan, _ssn = _values(seed)
    blob = base64.b64encode(f"Call log\nCustomer read {pan} twice.\n".encode()).decode()
    body = json.dumps({"subject": "log", "attachments": [{"name": "a.txt", "content": blob}]})
    parsed = parse_body(body.encode(), "application/json")
    out = json.loads(_replace(parsed, pan))
    assert out["subject"] == "log"
    decoded = base64.b64decode(out["attachments"][0]["content"]).decode()
    assert decoded == f"Call log\nCustomer read {TOKEN} twice.\n"


@pytest.mark.parametrize("seed", SEEDS)
def test_wrapped_base64_keeps_its_line_length(seed: int) -> None:
    _pan, ssn = _values(seed)
    text = ("x" * 70 + "\n") * 3 + f"ssn {ssn}\n"
    blob = base64.encodebytes(text.encode()).decode()  # 76-character lines
    body = json.dumps({"content": blob}).encode()
    out = json.loads(_replace(parse_body(body, "application/json"), ssn))["content"]
    assert {len(line) for line in out.splitlines()[:-1]} == {76}
    assert base64.b64decode(out).decode() == text.replace(ssn, TOKEN)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_data_uri_in_json_and_in_an_html_attribute(seed: int) -> None:
    pan, _ssn = _values(seed)
    payload = base64.b64encode(f"card {pan}".encode()).decode()
    uri = f"data:text/plain;base64,{payload}"
    body = json.dumps({"note": f"see {uri} ok"}).encode()
    out = json.loads(_replace(parse_body(body, "application/json"), pan))["note"]
    prefix, _, rest = out.partition("base64,")
    assert prefix == "see data:text/plain;"
    assert base64.b64decode(rest.split(" ")[0]).decode() == f"card {TOKEN}"
    html = f'<p>x</p><a href="{uri}">file</a>'.encode()
    rebuilt = _replace(parse_body(html, "text/html"), pan)
    assert rebuilt.startswith(b'<p>x</p><a href="data:text/plain;base64,')
    assert rebuilt.endswith(b'">file</a>')


@pytest.mark.parametrize("seed", SEEDS)
def test_a_percent_escaped_url_in_text_attributes_and_json(seed: int) -> None:
    pan, _ssn = _values(seed)
    url = "https://shop.example/search?q=" + quote(f"card {pan}") + "&page=2"
    text = f"Customer pasted {url} into chat"
    out = _replace(parse_body(text.encode(), "text/plain"), pan).decode()
    assert out == f"Customer pasted https://shop.example/search?q=card%20{TOKEN}&page=2 into chat"
    html = f'<a href="{url}">link</a>'.encode()
    assert _replace(parse_body(html, "text/html"), pan) == (
        f'<a href="https://shop.example/search?q=card%20{TOKEN}&page=2">link</a>'.encode()
    )
    body = json.dumps({"link": url}).encode()
    assert json.loads(_replace(parse_body(body, "application/json"), pan))["link"] == (
        f"https://shop.example/search?q=card%20{TOKEN}&page=2"
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_a_json_string_literal_inside_a_json_string_is_read_as_json(seed: int) -> None:
    pan, _ssn = _values(seed)
    hidden = pan.replace("4", "\\u0034", 1)  # a JSON escape only a second parse reads
    inner = f'"card {hidden}"'
    body = json.dumps({"payload": inner}).encode()
    out = json.loads(_replace(parse_body(body, "application/json"), pan))
    assert json.loads(out["payload"]) == f"card {TOKEN}"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("content_type", ["text/plain", None])
def test_json_json_lines_and_forms_sent_as_text_are_read_as_such(
    seed: int, content_type: str | None
) -> None:
    pan, ssn = _values(seed)
    escaped = pan.replace("4", "\\u0034", 1)
    doc = ('{"id": 7, "msg": "card ' + escaped + '"}').encode()
    assert json.loads(_replace(parse_body(doc, content_type), pan)) == {
        "id": 7,
        "msg": f"card {TOKEN}",
    }
    lines = ('{"a": 1}\n{"msg": "ssn ' + ssn.replace("-", "\\u002d") + '"}\n').encode()
    out = _replace(parse_body(lines, content_type), ssn)
    assert out.startswith(b'{"a": 1}\n')
    assert json.loads(out.splitlines()[1]) == {"msg": f"ssn {TOKEN}"}
    form = ("a=1&msg=card+" + quote(pan.replace(" ", "+"), safe="+")).encode()
    assert _replace(parse_body(form, content_type), pan) == f"a=1&msg=card+{TOKEN}".encode()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("filename", "ctype"),
    [
        ("call.log", "application/octet-stream"),
        ("export.csv", None),
        ("data.json", "application/x-unknown"),
    ],
)
def test_a_text_file_under_any_label_is_read(seed: int, filename: str, ctype: str | None) -> None:
    pan, _ssn = _values(seed)
    content = f"id,card\n1,{pan}\n".encode()
    head = f'--B\r\nContent-Disposition: form-data; name="f"; filename="{filename}"\r\n'
    head += f"Content-Type: {ctype}\r\n" if ctype else ""
    body = head.encode() + b"\r\n" + content + b"\r\n--B--\r\n"
    out = _replace(parse_body(body, "multipart/form-data; boundary=B"), pan)
    assert out == body.replace(pan.encode(), TOKEN.encode())


@pytest.mark.parametrize("seed", SEEDS)
def test_an_e_mail_attachment_of_text_under_a_binary_label_is_read(seed: int) -> None:
    _pan, ssn = _values(seed)
    message = (
        b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="notes.txt"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(f"SSN {ssn}\n".encode())
        + b"--b--\r\n"
    )
    out = _replace(parse_body(message, "message/rfc822"), ssn)
    head = message.split(b"Content-Transfer-Encoding: base64\r\n\r\n")[0]
    assert out.startswith(head)
    blob = out[len(head) :].split(b"\r\n\r\n", 1)[1].split(b"--b--")[0]
    assert base64.b64decode(blob).decode() == f"SSN {TOKEN}\n"


def test_ids_hashes_and_plain_words_are_not_read_as_base64() -> None:
    body = json.dumps(
        {"sha": "9f" * 32, "ulid": "01J84G7ZWYRD6Z1RV0WHE6M111", "word": "Supercalifragilistic"}
    ).encode()
    parsed = parse_body(body, "application/json")
    assert {seg.kind for seg in parsed.segments} <= {"json_string"}
    assert parsed.rebuild({}) == body


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16"])
def test_utf16_text_with_or_without_a_byte_order_mark_is_read(seed: int, codec: str) -> None:
    # Without a mark it is known by its NUL bytes at every other position and its validity.
    pan, _ssn = _values(seed)
    text = f"card {pan}\n"
    body = json.dumps({"a": base64.b64encode(text.encode(codec)).decode()}).encode()
    out = json.loads(_replace(parse_body(body, "application/json"), pan))["a"]
    assert base64.b64decode(out).decode(codec) == text.replace(pan, TOKEN)
    form = (
        b'--B\r\nContent-Disposition: form-data; name="f"; filename="n.txt"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + text.encode(codec) + b"\r\n--B--\r\n"
    )
    rebuilt = _replace(parse_body(form, "multipart/form-data; boundary=B"), pan)
    assert rebuilt == form.replace(text.encode(codec), text.replace(pan, TOKEN).encode(codec))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_json_fast_path_never_proves_a_hidden_value_clean(seed: int) -> None:
    from redactor.bodies.json_prescan import plain_json_texts

    pan, _ssn = _values(seed)
    blob = base64.b64encode(f"card {pan}".encode()).decode()
    for doc in (
        {"content": blob},
        {"content": base64.encodebytes(("x" * 80 + f" card {pan}").encode()).decode()},
        {"img": f"data:text/plain;base64,{blob}"},
        {"link": "https://x.example/?q=" + quote(pan)},
    ):
        body = json.dumps(doc).encode()
        texts = plain_json_texts(body, "application/json", None)
        assert texts is None, doc  # the codec reads it


@pytest.mark.parametrize("seed", SEEDS)
def test_the_json_fast_path_never_proves_html_hiding_a_value_clean(seed: int) -> None:
    # The fast path reads HTML strings itself (its screens, then HtmlView); a value behind
    # base64 in an attribute or in a text run split by tags is never proved clean: the fast
    # path hands on HtmlView's decoded segment (or leaves the body to the codec), and the
    # rebuilt HTML carries the token there.
    from redactor.bodies.json_prescan import plain_json_texts

    pan, _ssn = _values(seed)
    blob = base64.b64encode(f"card {pan}".encode()).decode()
    half = len(blob) // 2
    for html_text in (
        f'<p>Hi <span title="{blob}">there</span></p>',
        f"<div><b>{blob[:half]}</b>{blob[half:]}</div>",
        f"<p>{blob[:4]}&#{ord(blob[4])};{blob[5:]}</p>",
    ):
        body = json.dumps({"ticket": {"html_body": html_text}}).encode()
        texts = plain_json_texts(body, "application/json", None)
        detector = default_detector()
        assert texts is None or any(detector.find(t, field_name=k) for t, k in texts), html_text
        parsed = parse_body(body, "application/json")
        out = json.loads(_replace(parsed, pan))["ticket"]["html_body"]
        assert blob[8:] not in out
        assert out.startswith("<")


def test_the_json_fast_path_leaves_html_with_many_tags_to_the_codec() -> None:
    from redactor.bodies.json_prescan import plain_json_texts
    from redactor.bodies.limits import BodyLimits

    body = json.dumps({"html": "<p>" + "<i>1</i>" * 100}).encode()
    assert plain_json_texts(body, "application/json", None, BodyLimits()) is not None
    assert plain_json_texts(body, "application/json", None, BodyLimits(max_tags=100)) is None


def test_the_json_fast_path_still_proves_ids_and_prose_clean() -> None:
    from redactor.bodies.json_prescan import plain_json_texts

    doc = {"id": "01JRT2GZSKYPD8J86G9K64NY6P", "sha": "9f" * 32, "body": "Order 1234 shipped."}
    assert plain_json_texts(json.dumps(doc).encode(), "application/json", None) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_a_percent_escaped_url_in_an_e_mail_text_part(seed: int) -> None:
    pan, _ssn = _values(seed)
    url = "https://shop.example/s?q=" + quote(f"card {pan}")
    message = f"From: a@example.com\r\nContent-Type: text/plain\r\n\r\nsee {url}\r\n".encode()
    out = _replace(parse_body(message, "message/rfc822"), pan)
    assert out == message.replace(quote(f"card {pan}").encode(), f"card%20{TOKEN}".encode())


def test_base64_blocks_are_lines_of_base64_inside_longer_text() -> None:
    from redactor.bodies.hidden import base64_blocks

    blob = base64.b64encode(b"the card is 4111 1111 1111 1111, thanks").decode()
    lines = "\n".join(blob[i : i + 20] for i in range(0, len(blob), 20))
    text = f"Hello Sam,\nsee below:\n{lines}\nRegards\nJo"
    [(start, end, (decoded, _codec, _style))] = base64_blocks(text)
    assert text[start:end] == lines
    assert decoded == "the card is 4111 1111 1111 1111, thanks"
    # Words on lines of their own, a blob that is the whole text, one line: no block here.
    assert base64_blocks("Hello\nThanks\nRegards\nAbcdEfghIjkl") == []
    assert base64_blocks(lines) == []
    assert base64_blocks(f"see {blob} ok") == []
