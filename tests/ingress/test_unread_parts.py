"""Parts redactor cannot read (issue 18, item 9): a PDF, an image or an archive attached to a
multipart post or an e-mail is passed and listed (`pass`), replaced by a placeholder text part
(`strip`) or refused with 415 (`reject`); a PDF or zip whose text layer holds a value is
stripped even under `pass`, since it cannot be rewritten in place."""

from __future__ import annotations

import base64
import json
import random
from dataclasses import replace

import pytest

from tests.bodies.documents import PNG, pdf_with_text, png_with_text, zip_of
from tests.ingress.conftest import Proxy

BOUNDARY = "xYzZY"


def _pan(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    digits.append((10 - total % 10) % 10)
    return "".join(map(str, digits))


def _spaced(pan: str) -> str:
    return " ".join(pan[i : i + 4] for i in range(0, 16, 4))


def _form(*parts: tuple[str, str | None, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, ctype, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


FORM = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def _email(attachment: bytes, ctype: str) -> bytes:
    encoded = base64.encodebytes(attachment)
    return (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: receipt\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b1\r\nContent-Type: " + ctype.encode() + b"\r\n"
        b'Content-Disposition: attachment; filename="f"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b1--\r\n"
    )


async def _with_policy(start_proxy, make_settings, policy: str) -> Proxy:
    settings = make_settings()
    route = replace(settings.routes[0], unreadable_parts=policy)
    return await start_proxy(replace(settings, routes=(route,)))


def _records(proxy: Proxy) -> list[dict]:
    return [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]


def _scanned_record(proxy: Proxy) -> dict:
    [record] = [r for r in _records(proxy) if r["event"] in ("message_scanned", "message_redacted")]
    return record


async def test_pass_forwards_an_image_and_lists_it_by_type_and_size(proxy: Proxy) -> None:
    pan = _spaced(_pan(random.Random(1)))
    body = _form(
        ("text", None, None, f"card {pan}".encode()), ("attachment1", "p.png", "image/png", PNG)
    )
    resp = await proxy.client.post("/x", data=body, headers=FORM)
    assert resp.status == 200
    [got] = proxy.upstream.received
    assert PNG in got.body  # the image goes on byte for byte
    assert pan.encode() not in got.body
    record = _scanned_record(proxy)
    assert record["event"] == "message_redacted"
    assert record["unread_parts"] == [
        {
            "type": "image/png",
            "size": len(PNG),
            "kind": "image",
            "action": "passed",
            "value_found": False,
        }
    ]
    metrics = await (await proxy.admin.get("/metrics")).text()
    assert (
        'redactor_unread_parts_total{action="passed",kind="image",route="default"} 1.0' in metrics
    )


async def test_a_message_with_no_unread_part_has_no_such_field(proxy: Proxy) -> None:
    resp = await proxy.client.post("/x", data=_form(("text", None, None, b"hello")), headers=FORM)
    assert resp.status == 200
    assert "unread_parts" not in _scanned_record(proxy)


async def test_strip_replaces_the_part_with_a_placeholder(start_proxy, make_settings) -> None:
    proxy = await _with_policy(start_proxy, make_settings, "strip")
    pdf = pdf_with_text("invoice 2026-11")
    body = _form(
        ("text", None, None, b"see attached"), ("attachment1", "i.pdf", "application/pdf", pdf)
    )
    resp = await proxy.client.post("/x", data=body, headers=FORM)
    assert resp.status == 200
    [got] = proxy.upstream.received
    assert b"%PDF" not in got.body
    assert (
        f"[redactor removed a part it cannot read: application/pdf, {len(pdf)} bytes]".encode()
        in got.body
    )
    assert got.body.startswith(
        _form(("text", None, None, b"see attached"))[: -len(f"--{BOUNDARY}--\r\n")]
    )
    assert got.body.endswith(f"--{BOUNDARY}--\r\n".encode())
    [part] = _scanned_record(proxy)["unread_parts"]
    assert (part["action"], part["kind"], part["size"]) == ("stripped", "pdf", len(pdf))


async def test_reject_refuses_with_415_and_forwards_nothing(start_proxy, make_settings) -> None:
    proxy = await _with_policy(start_proxy, make_settings, "reject")
    body = _form(("attachment1", "a.zip", "application/zip", zip_of({"a.txt": "hello"})))
    resp = await proxy.client.post("/x", data=body, headers=FORM)
    assert resp.status == 415
    assert (await resp.json())["error"] == "unreadable_part"
    assert proxy.upstream.received == []
    [refused] = [r for r in _records(proxy) if r["event"] == "message_refused"]
    assert refused["code"] == "unreadable_part"
    # A message with only text parts passes on the same route.
    ok = await proxy.client.post("/x", data=_form(("text", None, None, b"hi")), headers=FORM)
    assert ok.status == 200


@pytest.mark.parametrize("seed", range(3))
async def test_a_value_in_a_pdf_text_layer_strips_it_even_under_pass(
    proxy: Proxy, seed: int
) -> None:
    pan = _spaced(_pan(random.Random(seed)))
    pdf = pdf_with_text(f"Card number {pan} exp 12/29")
    body = _form(("attachment1", "card.pdf", "application/pdf", pdf))
    resp = await proxy.client.post("/x", data=body, headers=FORM)
    assert resp.status == 200
    [got] = proxy.upstream.received
    assert b"%PDF" not in got.body
    assert pan.encode() not in got.body
    [part] = _scanned_record(proxy)["unread_parts"]
    assert (part["action"], part["value_found"]) == ("stripped", True)
    assert pan not in proxy.audit_path.read_text()


async def test_a_value_in_a_zip_member_refuses_under_reject_and_strips_under_pass(
    start_proxy, make_settings
) -> None:
    rng = random.Random(7)
    pan = _pan(rng)
    archive = zip_of({"notes/call.log": f"customer card {pan}\n", "readme.txt": "hi"})
    body = _form(("attachment1", "logs.zip", "application/zip", archive))
    proxy = await _with_policy(start_proxy, make_settings, "pass")
    assert (await proxy.client.post("/x", data=body, headers=FORM)).status == 200
    [got] = proxy.upstream.received
    assert archive not in got.body
    assert b"application/zip" in got.body  # named in the placeholder


async def test_an_e_mail_attachment_is_listed_and_stripped_in_place(
    start_proxy, make_settings
) -> None:
    proxy = await _with_policy(start_proxy, make_settings, "strip")
    pdf = pdf_with_text("quarterly statement")
    message = _email(pdf, "application/pdf")
    resp = await proxy.client.post("/x", data=message, headers={"Content-Type": "message/rfc822"})
    assert resp.status == 200
    [got] = proxy.upstream.received
    head = message.split(b"--b1\r\nContent-Type: application/pdf")[0]
    assert got.body.startswith(head)  # everything before the attachment is byte-identical
    assert base64.encodebytes(pdf)[:40] not in got.body
    assert b"[redactor removed a part it cannot read: application/pdf" in got.body
    assert got.body.endswith(b"--b1--\r\n")


async def test_an_e_mail_image_passes_under_pass(proxy: Proxy) -> None:
    message = _email(PNG, "image/png")
    resp = await proxy.client.post("/x", data=message, headers={"Content-Type": "message/rfc822"})
    assert resp.status == 200
    [got] = proxy.upstream.received
    assert got.body == message
    [part] = _scanned_record(proxy)["unread_parts"]
    assert (part["type"], part["kind"], part["action"]) == ("image/png", "image", "passed")


async def test_a_sender_written_type_with_digits_is_not_repeated_in_the_audit(proxy: Proxy) -> None:
    pan = _pan(random.Random(3))
    body = _form(("attachment1", "x.bin", f"application/x-{pan}", b"\x00\x01\x02binary"))
    resp = await proxy.client.post("/x", data=body, headers=FORM)
    # The type itself is not a scanned place: the egress verifier refuses the message.
    assert (resp.status, (await resp.json())["error"]) == (422, "unreadable_value")
    assert pan not in proxy.audit_path.read_text()


async def test_an_answer_with_an_unreadable_part_on_a_reject_route_is_a_502(
    start_proxy, make_settings
) -> None:
    settings = make_settings()
    route = replace(settings.routes[0], unreadable_parts="reject", redact_responses=True)
    proxy = await start_proxy(replace(settings, routes=(route,)))
    proxy.upstream.reply = (200, FORM, _form(("f", "p.png", "image/png", PNG)))
    resp = await proxy.client.get("/files/1")
    assert resp.status == 502
    assert (await resp.json())["error"] == "unreadable_part"


async def test_a_broken_pdf_holding_a_value_leaks_it_to_no_log(
    proxy: Proxy, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from structlog.testing import capture_logs

    pan = _pan(random.Random(11))
    broken = pdf_with_text(f"card {pan}").replace(b"xref", b"xrfe").replace(b"/Root", b"/Rot")
    body = _form(("attachment1", "x.pdf", "application/pdf", broken + f" {pan} ".encode()))
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        resp = await proxy.client.post("/x", data=body, headers=FORM)
    assert resp.status in (200, 422)
    out = capsys.readouterr()
    for text in (caplog.text, repr(logs), out.out, out.err, proxy.audit_path.read_text()):
        assert pan not in text


@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt"])
async def test_a_value_in_an_image_caption_strips_the_image_even_under_pass(
    proxy: Proxy, kind: str
) -> None:
    # A screenshot whose description holds the card: any image viewer shows it.
    pan = _spaced(_pan(random.Random(kind)))
    image = png_with_text("Description", f"customer card {pan}", kind)
    body = _form(("text", None, None, b"see screenshot"), ("shot", "s.png", "image/png", image))
    resp = await proxy.client.post("/x", data=body, headers=FORM)
    assert resp.status == 200
    [got] = proxy.upstream.received
    assert image not in got.body
    assert b"[redactor removed a part it cannot read: image/png" in got.body
    [part] = _scanned_record(proxy)["unread_parts"]
    assert (part["action"], part["kind"], part["value_found"]) == ("stripped", "image", True)
    assert pan not in proxy.audit_path.read_text()


async def test_an_image_with_a_harmless_caption_passes_as_it_came(proxy: Proxy) -> None:
    image = png_with_text("Software", "Screenshot tool 2.4, order 31651809")
    body = _form(("shot", "s.png", "image/png", image))
    assert (await proxy.client.post("/x", data=body, headers=FORM)).status == 200
    [got] = proxy.upstream.received
    assert image in got.body
    [part] = _scanned_record(proxy)["unread_parts"]
    assert (part["action"], part["value_found"]) == ("passed", False)
