"""Every byte that can carry a value is scanned: keys, headers, URLs, part headers, documents
inside fields. Each test goes through HTTP and checks what the upstream received."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from email.header import Header
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import FormData
from yarl import URL

from tests.ingress.conftest import Proxy

PAN = "4111 1111 1111 1111"
SSN = "536-90-4399"
RAW_VALUES = ("4111111111111111", "4111 1111 1111 1111", "536904399", "536-90-4399")


async def _get_raw(proxy: Proxy, raw_path: str) -> int:
    """GET with the path exactly as written (the test client would normalise `%34` to `4`)."""
    base = str(proxy.client.make_url("/")).rstrip("/")
    async with (
        aiohttp.ClientSession() as session,
        session.get(URL(base + raw_path, encoded=True)) as resp,
    ):
        return resp.status


def _assert_no_raw(blob: bytes | str) -> None:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    for raw in RAW_VALUES:
        assert raw not in text


async def test_a_card_as_a_json_key_is_tokenised_in_place(proxy: Proxy) -> None:
    body = json.dumps({"cards": {PAN: "primary"}, "n": 1}).encode()
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    [got] = proxy.upstream.received
    _assert_no_raw(got.body)
    doc = json.loads(got.body)
    [key] = doc["cards"]
    assert key.startswith("tok_v1_card_")
    assert doc["cards"][key] == "primary"
    assert doc["n"] == 1


async def test_two_keys_equal_after_redaction_stay_two_members(proxy: Proxy) -> None:
    body = b'{"4111 1111 1111 1111": "a", "4111111111111111": "b", "k": 1}'
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    got = proxy.upstream.received[0].body
    _assert_no_raw(got)
    pairs = json.loads(got, object_pairs_hook=list)
    names = [k for k, _ in pairs]
    assert len(set(names)) == 3
    token = names[0]
    assert token.startswith("tok_v1_card_")
    assert names[1] == f"{token}~2"
    assert [v for _, v in pairs] == ["a", "b", 1]


async def test_request_headers_are_scanned_except_structural_ones(proxy: Proxy) -> None:
    resp = await proxy.client.post(
        "/x",
        data=b"hello",
        headers={
            "Content-Type": "text/plain",
            "X-Customer-Note": f"card {PAN} ssn {SSN}",
            "X-Subject": Header(f"card {PAN}", "utf-8").encode(),
            "Authorization": "Bearer 4111111111111111",
        },
    )
    assert resp.status == 200
    [got] = proxy.upstream.received
    note = got.headers["X-Customer-Note"]
    _assert_no_raw(note)
    assert "tok_v1_card_" in note
    assert "tok_v1_ssn_" in note
    # RFC 2047 encoded words are decoded, scanned and written back encoded.
    subject = got.headers["X-Subject"]
    assert subject.startswith("=?utf-8?")
    from email.header import decode_header, make_header

    decoded = str(make_header(decode_header(subject)))
    assert decoded.startswith("card tok_v1_card_")
    # Authorization is structural: never rewritten.
    assert got.headers["Authorization"] == "Bearer 4111111111111111"
    assert got.body == b"hello"


async def test_a_route_can_name_its_own_unscanned_headers(start_proxy, make_settings) -> None:
    settings = make_settings()
    route = replace(settings.routes[0], unscanned_headers=frozenset({"x-opaque"}))
    proxy = await start_proxy(replace(settings, routes=(route,)))
    resp = await proxy.client.get("/x", headers={"X-Opaque": PAN, "X-Other": PAN})
    assert resp.status == 200
    [got] = proxy.upstream.received
    assert got.headers["X-Opaque"] == PAN
    assert got.headers["X-Other"].startswith("tok_v1_card_")


async def test_a_percent_encoded_card_in_the_path_is_tokenised(proxy: Proxy) -> None:
    encoded = "".join(f"%{ord(c):02X}" for c in PAN)
    assert await _get_raw(proxy, f"/customers/{encoded}/tickets?x=%41") == 200
    [got] = proxy.upstream.received
    _assert_no_raw(got.path)
    assert got.path.startswith("/customers/tok_v1_card_")
    assert got.path.endswith("/tickets?x=%41")


async def test_a_card_with_only_some_digits_percent_encoded_in_the_path_is_tokenised(
    proxy: Proxy,
) -> None:
    # Encoding a digit is never needed: a path that does is read as text, not as a link id.
    half = "".join(f"%{ord(c):02X}" if i % 2 else c for i, c in enumerate("4000000000000002"))
    assert await _get_raw(proxy, f"/customers/{half}/tickets") == 200
    [got] = proxy.upstream.received
    assert "4000000000000002" not in got.path
    assert "%30%30" not in got.path
    assert got.path.startswith("/customers/tok_v1_card_")


async def test_a_plain_numeric_id_in_the_path_is_a_link_not_a_card(proxy: Proxy) -> None:
    path = "/api/v2/help_center/articles/4000000000000002/comments"
    assert await _get_raw(proxy, path) == 200
    assert proxy.upstream.received[0].path == path


async def test_a_path_with_escapes_but_no_value_is_forwarded_byte_for_byte(proxy: Proxy) -> None:
    path = "/customers/caf%C3%A9%20123%34/tickets%2F9?q=a%2Bb%41"
    assert await _get_raw(proxy, path) == 200
    assert proxy.upstream.received[0].path == path


async def test_multipart_filename_and_part_headers_are_tokenised(proxy: Proxy) -> None:
    boundary = "XyZ"
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="attachment1"; filename="card {PAN}.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
        "%PDF-1.4 binary\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="note"\r\n'
        f"X-Note: ssn {SSN}\r\n\r\n"
        "hello\r\n"
        f"--{boundary}\r\n"
        "Content-Disposition: form-data; name=\"doc\"; filename*=utf-8''"
        + quote(f"card {PAN}.txt")
        + "\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
        "bytes\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    resp = await proxy.client.post(
        "/inbound", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert resp.status == 200
    got = proxy.upstream.received[0].body
    _assert_no_raw(got)
    assert b'filename="card tok_v1_card_' in got
    assert b"X-Note: ssn tok_v1_ssn_" in got
    assert b"filename*=utf-8''card%20tok_v1_card_" in got
    # The attachments' bytes are untouched.
    assert b"%PDF-1.4 binary\r\n" in got
    assert b"\r\n\r\nbytes\r\n" in got


async def test_slack_interactive_payload_json_in_a_form_field_is_scanned(proxy: Proxy) -> None:
    payload = {
        "type": "view_submission",
        "view": {"state": {"values": {"b": {"a": {"value": f"my card:\n{PAN}"}}}}},
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    resp = await proxy.client.post(
        "/slack/actions",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 200
    got = proxy.upstream.received[0].body
    _assert_no_raw(got)
    from urllib.parse import parse_qs

    sent = json.loads(parse_qs(got.decode())["payload"][0])
    value = sent["view"]["state"]["values"]["b"]["a"]["value"]
    assert value.startswith("my card:\ntok_v1_card_")


async def test_mailgun_message_headers_with_escapes_and_encoded_words(proxy: Proxy) -> None:
    escaped_subject = "".join(f"\\u{ord(c):04x}" for c in f"card {PAN}")
    b64 = base64.b64encode(f"ssn {SSN}".encode()).decode()
    message_headers = (
        '[["Subject", "' + escaped_subject + '"], ["X-Note", "=?utf-8?b?' + b64 + '?="]]'
    )
    form = FormData()
    form.add_field("message-headers", message_headers)
    form.add_field("body-plain", "hello")
    resp = await proxy.client.post("/mailgun", data=form)
    assert resp.status == 200
    got = proxy.upstream.received[0].body
    _assert_no_raw(got)
    assert b64.encode() not in got
    from urllib.parse import parse_qs

    headers = json.loads(parse_qs(got.decode())["message-headers"][0])
    assert headers[0][1].startswith("card tok_v1_card_")
    from email.header import decode_header, make_header

    assert str(make_header(decode_header(headers[1][1]))).startswith("ssn tok_v1_ssn_")


async def test_json_inside_a_json_string_is_scanned_as_json(proxy: Proxy) -> None:
    inner = json.dumps({"note": f"card:\n{PAN}"})
    body = json.dumps({"event": "x", "data": inner}).encode()
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    got = proxy.upstream.received[0].body
    _assert_no_raw(got)
    sent = json.loads(json.loads(got)["data"])
    assert sent["note"].startswith("card:\ntok_v1_card_")


async def test_documents_nested_past_the_limit_are_refused(proxy: Proxy) -> None:
    doc: object = {"v": f"card {PAN}"}
    for _ in range(8):
        doc = {"d": json.dumps(doc)}
    resp = await proxy.client.post(
        "/x", data=json.dumps(doc).encode(), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 422
    assert (await resp.json())["error"] == "nesting_too_deep"
    assert proxy.upstream.received == []


async def test_a_large_body_is_scanned_in_the_worker_with_its_headers(proxy: Proxy) -> None:
    # Over the offload size: parsed, scanned and rebuilt in the scan worker process; the
    # headers are scanned here, and both share one vault call and one audit record.
    comments = [{"id": i, "body": f"order {i} shipped"} for i in range(2000)]
    body = json.dumps({"comments": comments, "cards": {PAN: "primary"}}).encode()
    assert len(body) > 16 * 1024
    resp = await proxy.client.post(
        "/x",
        data=body,
        headers={"Content-Type": "application/json", "X-Note": f"ssn {SSN}"},
    )
    assert resp.status == 200
    [got] = proxy.upstream.received
    _assert_no_raw(got.body)
    _assert_no_raw(got.headers["X-Note"])
    doc = json.loads(got.body)
    assert doc["comments"] == comments
    [key] = doc["cards"]
    assert key.startswith("tok_v1_card_")
    records = [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]
    [record] = [r for r in records if r["event"] in ("message_redacted", "message_scanned")]
    assert record["counts"] == {"CREDIT_CARD": 1, "US_SSN": 1}


async def test_a_dead_scan_worker_fails_the_message_closed_and_is_replaced(proxy: Proxy) -> None:
    import os
    import signal

    body = json.dumps({"pad": "x" * 20_000, "note": f"card {PAN}"}).encode()
    headers = {"Content-Type": "application/json"}
    assert (await proxy.client.post("/x", data=body, headers=headers)).status == 200
    pool = proxy.resources.ingress.scan_pool
    assert pool is not None
    [pid] = pool.worker_pids()["medium"]  # the worker of this body's lane
    os.kill(pid, signal.SIGKILL)
    resp = await proxy.client.post("/x", data=body, headers=headers)
    assert resp.status == 503
    assert (await resp.json())["error"] == "scan_unavailable"
    again = await proxy.client.post("/x", data=body, headers=headers)
    assert again.status == 200
    assert len(proxy.upstream.received) == 2
    for got in proxy.upstream.received:
        _assert_no_raw(got.body)


async def test_values_in_keys_headers_and_paths_never_reach_logs_audit_or_errors(
    proxy: Proxy,
) -> None:
    import structlog

    encoded = "".join(f"%{ord(c):02X}" for c in PAN)
    with structlog.testing.capture_logs() as logs:
        ok = await proxy.client.post(
            f"/customers/{PAN.replace(' ', '-')}/x",
            data=json.dumps({PAN: SSN}).encode(),
            headers={"Content-Type": "application/json", "X-Note": f"ssn {SSN}"},
        )
        refused = await proxy.client.post(
            f"/x/{encoded}",
            data=b"&".join(b"f=" + PAN.encode() for _ in range(200_001)),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Note": PAN},
        )
    assert ok.status == 200
    assert refused.status == 413
    _assert_no_raw(await refused.read())
    _assert_no_raw(repr(logs))
    _assert_no_raw(proxy.audit_path.read_text())
    [got] = proxy.upstream.received
    _assert_no_raw(got.path)
    _assert_no_raw(got.body)
    _assert_no_raw(got.headers["X-Note"])


async def test_a_card_in_the_first_of_two_members_with_one_name_is_tokenised(
    proxy: Proxy,
) -> None:
    # json.loads keeps only the last "note"; the upstream's parser may keep the first.
    body = f'{{"note": "card {PAN}", "note": "thanks"}}'.encode()
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    [got] = proxy.upstream.received
    _assert_no_raw(got.body)
    assert b'"note": "card tok_v1_card_' in got.body
    assert b'"note": "thanks"' in got.body
