"""The proxy end to end over HTTP: redaction, byte-exactness, errors that fail closed."""

from __future__ import annotations

import gzip
import json

import structlog

from tests.ingress.conftest import Proxy

PAN = "4111 1111 1111 1111"
SSN = "536-90-4399"
RAW_VALUES = ("4111111111111111", "4111 1111 1111 1111", "536904399", "536-90-4399")


def _assert_no_raw(blob: bytes | str) -> None:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    for raw in RAW_VALUES:
        assert raw not in text


async def test_json_webhook_reaches_upstream_with_tokens_and_other_bytes_intact(
    proxy: Proxy,
) -> None:
    body = (
        '{"id": 4584686769, "ticket":{"comment" : "card ' + PAN + ", ssn " + SSN + '",'
        '  "requester_id":20978392, "note":"caf\\u00e9"}}'
    ).encode()
    resp = await proxy.client.post(
        "/hooks/zendesk?x=1", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 200
    assert await resp.json() == {"ok": True}
    [got] = proxy.upstream.received
    assert got.path == "/hooks/zendesk?x=1"
    _assert_no_raw(got.body)
    doc = json.loads(got.body)
    comment = doc["ticket"]["comment"]
    card_token, ssn_token = comment.removeprefix("card ").split(", ssn ")
    assert card_token.startswith("tok_v1_card_")
    assert card_token.endswith("_1111")
    assert ssn_token.startswith("tok_v1_ssn_")
    # Everything around the changed string is byte-identical.
    prefix = b'{"id": 4584686769, "ticket":{"comment" : "card '
    assert got.body.startswith(prefix)
    assert got.body.endswith(b'",  "requester_id":20978392, "note":"caf\\u00e9"}}')
    assert int(got.headers["Content-Length"]) == len(got.body)


async def test_same_value_gets_the_same_token_on_retry(proxy: Proxy) -> None:
    body = json.dumps({"text": f"card {PAN}"}).encode()
    for _ in range(2):
        resp = await proxy.client.post(
            "/x", data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 200
    first, second = (r.body for r in proxy.upstream.received)
    assert first == second


async def test_message_without_values_is_forwarded_unchanged(proxy: Proxy) -> None:
    body = b'{"text": "order 12345 arrived on 2024-02-11, thanks!", "n": 1.50}'
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    assert proxy.upstream.received[0].body == body


async def test_malformed_json_is_refused_and_nothing_forwarded(proxy: Proxy) -> None:
    body = ('{"text": "card ' + PAN + '", ').encode()
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 422
    payload = await resp.json()
    assert payload["error"] == "body_unparseable"
    assert payload["request_id"]
    _assert_no_raw(await resp.read())
    assert proxy.upstream.received == []


async def test_body_over_the_limit_gets_413_and_nothing_forwarded(
    start_proxy, make_settings
) -> None:
    proxy = await start_proxy(make_settings(max_body_bytes=100))
    resp = await proxy.client.post("/x", data=b"a" * 101, headers={"Content-Type": "text/plain"})
    assert resp.status == 413
    assert (await resp.json())["error"] == "body_too_large"
    assert proxy.upstream.received == []


async def test_unknown_content_type_is_scanned_as_text(proxy: Proxy) -> None:
    resp = await proxy.client.post(
        "/x", data=f"card={PAN}".encode(), headers={"Content-Type": "application/x-custom"}
    )
    assert resp.status == 200
    _assert_no_raw(proxy.upstream.received[0].body)
    assert b"tok_v1_card_" in proxy.upstream.received[0].body


async def test_gzip_body_is_decoded_scanned_and_re_encoded(proxy: Proxy) -> None:
    raw = json.dumps({"text": f"ssn {SSN}"}).encode()
    resp = await proxy.client.post(
        "/x",
        data=gzip.compress(raw),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert resp.status == 200
    got = proxy.upstream.received[0]
    assert got.headers["Content-Encoding"] == "gzip"
    plain = gzip.decompress(got.body)
    _assert_no_raw(plain)
    assert b"tok_v1_ssn_" in plain


async def test_upstream_down_gives_502_and_the_retry_reuses_tokens(
    start_proxy, make_settings, upstream
) -> None:
    proxy = await start_proxy(make_settings())
    body = json.dumps({"text": f"card {PAN}"}).encode()
    await upstream.server.close()
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 502
    assert (await resp.json())["error"] == "upstream_unavailable"
    assert resp.headers["Retry-After"] == "5"
    # Redacted, then never sent: the trail says so, not "forwarded".
    records = [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]
    assert [r["event"] for r in records] == ["message_redacted", "message_not_sent"]
    assert (records[1]["status"], records[1]["code"]) == (502, "upstream_unavailable")
    # The vault kept the row: tokenising the value again gives the token issued before.
    first = await proxy.resources.vault.tokenize_many("acme", [("card", PAN.replace(" ", ""))])
    again = await proxy.resources.vault.tokenize_many("acme", [("card", PAN.replace(" ", ""))])
    assert first == again


async def test_vault_down_gives_503_with_retry_after_and_nothing_forwarded(proxy: Proxy) -> None:
    await proxy.resources.vault.close()
    body = json.dumps({"text": f"card {PAN}"}).encode()
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 503
    assert resp.headers["Retry-After"]
    assert (await resp.json())["error"] == "vault_unavailable"
    assert proxy.upstream.received == []


async def test_hop_by_hop_headers_dropped_forwarded_headers_added_request_id_kept(
    proxy: Proxy,
) -> None:
    resp = await proxy.client.post(
        "/x",
        data=b"hello",
        headers={
            "Content-Type": "text/plain",
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "secret-hop",
            "Keep-Alive": "timeout=5",
            "X-Request-ID": "req-123",
            "X-Custom": "kept",
        },
    )
    assert resp.status == 200
    assert resp.headers["X-Request-ID"] == "req-123"
    got = proxy.upstream.received[0].headers
    assert "X-Private-Hop" not in got
    assert "Keep-Alive" not in got
    assert got["X-Custom"] == "kept"
    assert got["X-Request-ID"] == "req-123"
    assert got["X-Forwarded-For"] == "127.0.0.1"
    assert got["Forwarded"].startswith("for=127.0.0.1;proto=http")


async def test_audit_record_and_logs_name_tokens_never_values(proxy: Proxy) -> None:
    body = json.dumps({"text": f"card {PAN} ssn {SSN}"}).encode()
    with structlog.testing.capture_logs() as logs:
        resp = await proxy.client.post(
            "/x", data=body, headers={"Content-Type": "application/json"}
        )
    assert resp.status == 200
    records = [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]
    record, delivered = records
    assert record["event"] == "message_redacted"
    # Then what became of it: forwarded, with the upstream's status, in the same chain.
    assert delivered["event"] == "message_delivered"
    assert (delivered["outcome"], delivered["status"]) == ("forwarded", 200)
    assert delivered["request_id"] == record["request_id"]
    assert delivered["seq"] == record["seq"] + 1
    assert record["counts"] == {"CREDIT_CARD": 1, "US_SSN": 1}
    assert record["route"] == "default"
    assert record["tenant"] == "acme"
    assert all(t.startswith("tok_v1_") for t in record["tokens"])
    _assert_no_raw(proxy.audit_path.read_text())
    _assert_no_raw(json.dumps(logs, default=str))
    metrics = await (await proxy.admin.get("/metrics")).text()
    assert 'redactor_findings_total{entity="CREDIT_CARD",route="default"} 1.0' in metrics
    _assert_no_raw(metrics)


async def test_no_access_log_line_per_message_unless_asked_for(start_proxy, make_settings) -> None:
    body = json.dumps({"text": f"card {PAN}"}).encode()
    for access_log, expected in ((None, []), (True, [1])):
        proxy = await start_proxy(make_settings(access_log=access_log))
        with structlog.testing.capture_logs() as logs:
            resp = await proxy.client.post(
                "/x", data=body, headers={"Content-Type": "application/json"}
            )
        assert resp.status == 200
        lines = [e for e in logs if e["event"] == "request_forwarded"]
        assert [e["findings"] for e in lines] == expected
        assert all(e["status"] == 200 for e in lines)
        _assert_no_raw(json.dumps(logs, default=str))


async def test_health_and_readiness_on_the_admin_listener(proxy: Proxy) -> None:
    assert (await proxy.admin.get("/healthz")).status == 200
    ready = await proxy.admin.get("/readyz")
    assert ready.status == 200
    metrics = await (await proxy.admin.get("/metrics")).text()
    assert "redactor_requests" in metrics
    await proxy.resources.vault.close()
    assert (await proxy.admin.get("/readyz")).status == 503


async def test_small_answers_are_sent_whole_and_large_ones_stream_unchanged(proxy: Proxy) -> None:
    for size in (100, 2 * 1024 * 1024):
        payload = bytes(range(256)) * (size // 256)
        proxy.upstream.reply = (
            201,
            {"Content-Type": "application/octet-stream", "X-Up": "1"},
            payload,
        )
        resp = await proxy.client.post("/x", data=b"hi", headers={"Content-Type": "text/plain"})
        assert resp.status == 201
        assert resp.headers["X-Up"] == "1"
        assert await resp.read() == payload


async def test_values_in_the_url_path_and_query_are_tokenised_too(proxy: Proxy) -> None:
    resp = await proxy.client.get(
        "/cards/4111111111111111/charges?q=4111+1111+1111+1111&ssn=536-90-4399&page=2&note=caf%C3%A9"
    )
    assert resp.status == 200
    got = proxy.upstream.received[0].path
    _assert_no_raw(got)
    path, query = got.split("?")
    assert path.startswith("/cards/tok_v1_card_")
    assert path.endswith("_1111/charges")
    assert "ssn=tok_v1_ssn_" in query
    assert query.endswith("&page=2&note=caf%C3%A9")
    record, _delivered = [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]
    assert record["counts"] == {"CREDIT_CARD": 2, "US_SSN": 1}
    assert len(record["tokens"]) == 2  # the same card twice is one token


async def test_urls_without_values_reach_the_upstream_byte_for_byte(proxy: Proxy) -> None:
    raw = "/a%2Fb/c%20d?x=1&y=%E2%9C%93&z=a+b&order=123456789012345678"
    resp = await proxy.client.get(raw)
    assert resp.status == 200
    assert proxy.upstream.received[0].path == raw


async def test_an_audit_record_that_cannot_be_written_stops_the_message(proxy: Proxy) -> None:
    await proxy.resources.audit.close()  # the audit file is gone from under the proxy
    body = json.dumps({"text": f"card {PAN}"}).encode()
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 503
    assert (await resp.json())["error"] == "audit_unavailable"
    assert resp.headers["Retry-After"]
    assert proxy.upstream.received == []


async def test_card_typed_with_invisible_characters_never_reaches_the_upstream(
    proxy: Proxy,
) -> None:
    # A zero-width space between groups and a soft hyphen inside one, as JSON escapes; a
    # helpdesk link whose id is a Luhn-valid 16-digit number stays a working link.
    comment = (
        "my card 4111\\u200b1111\\u200b11\\u00ad11\\u200b1111 thanks, "
        "see https://acme.zendesk.com/agent/tickets/4012888888881881"
    )
    body = ('{"comment": "' + comment + '"}').encode()
    resp = await proxy.client.post("/x", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    [got] = proxy.upstream.received
    forwarded = json.loads(got.body)["comment"]
    digits_left = "".join(c for c in forwarded.split(" thanks")[0] if c.isdigit())
    assert "41111111" not in digits_left
    assert "tok_v1_card_" in forwarded
    assert "\u200b" not in forwarded.split(" thanks")[0].split("tok_v1_card_")[1]
    assert forwarded.endswith("https://acme.zendesk.com/agent/tickets/4012888888881881")


async def test_every_request_id_in_the_logs_is_the_one_in_the_response_header(
    start_proxy, make_settings
) -> None:
    import io

    import structlog

    from redactor.ops.logconfig import configure_logging

    proxy = await start_proxy(make_settings(access_log=True))
    stream = io.StringIO()
    configure_logging(stream=stream)
    answered: list[str] = []
    try:
        for n in range(40):
            resp = await proxy.client.post(
                f"/t/{n}", json={"comment": f"card 4111 1111 1111 1111 n{n}"}
            )
            assert resp.status == 200
            answered.append(resp.headers["X-Request-ID"])
        # A card number sent as a request id: replaced, never logged, echoed or forwarded.
        resp = await proxy.client.post(
            "/t/x", json={"a": 1}, headers={"X-Request-ID": "4111111111111111"}
        )
        assert resp.status == 200
        replaced = resp.headers["X-Request-ID"]
        assert replaced != "4111111111111111"
        answered.append(replaced)
        resp = await proxy.client.post(
            "/t/y", json={"a": 1}, headers={"X-Request-ID": "order-12345"}
        )
        assert resp.headers["X-Request-ID"] == "order-12345"
        answered.append("order-12345")
    finally:
        structlog.reset_defaults()
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged_ids = [e["request_id"] for e in logged if "request_id" in e]
    assert logged_ids
    assert set(logged_ids) == set(answered)
    assert "4111111111111111" not in stream.getvalue()
    forwarded = [r.headers.get("X-Request-ID") for r in proxy.upstream.received]
    assert forwarded == answered


async def test_a_cookie_the_upstream_sets_goes_to_the_client_and_never_back_on_its_own(
    start_proxy, make_settings, upstream
) -> None:
    # A name, not an address: a cookie jar would keep a cookie from `localhost`.
    from dataclasses import replace

    from redactor.settings import with_routes

    named = upstream.url.replace("127.0.0.1", "localhost")
    settings = make_settings()
    routes = tuple(replace(route, upstream=named) for route in settings.routes)
    proxy = await start_proxy(with_routes(settings, routes))
    upstream.reply = (
        200,
        {"Content-Type": "application/json", "Set-Cookie": "session=s3cr3t; Path=/"},
        b'{"ok":true}',
    )
    for sender in ("a", "b"):
        resp = await proxy.client.post(
            f"/from/{sender}", data=b'{"n":1}', headers={"Content-Type": "application/json"}
        )
        assert resp.status == 200
        assert resp.headers["Set-Cookie"] == "session=s3cr3t; Path=/"
        # Each sender is another client: the test client's own jar must not send it back.
        proxy.client.session.cookie_jar.clear()
    # The proxy is not a browser: one sender's session cookie is never sent for another.
    assert [r.headers.get("Cookie") for r in upstream.received] == [None, None]
    # A cookie the sender sends itself goes on as any header does.
    resp = await proxy.client.post(
        "/from/c", data=b'{"n":1}', headers={"Content-Type": "application/json", "Cookie": "k=v"}
    )
    assert resp.status == 200
    assert upstream.received[-1].headers.get("Cookie") == "k=v"
