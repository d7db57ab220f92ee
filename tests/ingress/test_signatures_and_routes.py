"""Webhook signatures per route, response redaction, refusing unknown content types."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace

from redactor.ingress.signatures import SignatureConfig
from redactor.settings import RouteSettings

PAN = "4111 1111 1111 1111"
SENDER = b"sender-secret"
UPSTREAM = b"upstream-secret"


def _route(upstream_url: str, scheme: str, **kw) -> RouteSettings:
    return RouteSettings(
        name=scheme,
        path_prefix=f"/{scheme}/",
        upstream=upstream_url,
        tenant="acme",
        strip_prefix=True,
        signature=SignatureConfig(scheme, SENDER, UPSTREAM, 300),
        **kw,
    )


def _slack_sig(secret: bytes, ts: str, body: bytes) -> str:
    return "v0=" + hmac.new(secret, f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()


async def test_slack_signature_verified_then_rewritten_body_re_signed(
    start_proxy, make_settings, upstream
) -> None:
    proxy = await start_proxy(make_settings(_route(upstream.url, "slack")))
    body = json.dumps({"event": {"text": f"my card {PAN}"}}).encode()
    ts = str(int(time.time()))
    resp = await proxy.client.post(
        "/slack/events",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": _slack_sig(SENDER, ts, body),
        },
    )
    assert resp.status == 200
    got = upstream.received[0]
    assert got.path == "/events"
    assert b"tok_v1_card_" in got.body
    # The upstream's own verification, with the secret it shares with redactor, passes.
    assert got.headers["X-Slack-Signature"] == _slack_sig(UPSTREAM, ts, got.body)
    assert got.headers["X-Slack-Request-Timestamp"] == ts


async def test_slack_wrong_missing_or_stale_signature_gets_401(
    start_proxy, make_settings, upstream
) -> None:
    proxy = await start_proxy(make_settings(_route(upstream.url, "slack")))
    body = b'{"event": {"text": "hi"}}'
    now = str(int(time.time()))
    old = str(int(time.time()) - 3600)
    cases = {
        "signature_invalid": {
            "X-Slack-Request-Timestamp": now,
            "X-Slack-Signature": _slack_sig(b"wrong", now, body),
        },
        "signature_missing": {"X-Slack-Request-Timestamp": now},
        "signature_stale": {
            "X-Slack-Request-Timestamp": old,
            "X-Slack-Signature": _slack_sig(SENDER, old, body),
        },
    }
    for code, headers in cases.items():
        resp = await proxy.client.post(
            "/slack/x", data=body, headers={"Content-Type": "application/json", **headers}
        )
        assert resp.status == 401
        assert (await resp.json())["error"] == code
    assert upstream.received == []


async def test_zendesk_and_intercom_schemes_re_sign_for_the_upstream(
    start_proxy, make_settings, upstream
) -> None:
    proxy = await start_proxy(
        make_settings(_route(upstream.url, "zendesk"), _route(upstream.url, "intercom"))
    )
    body = json.dumps({"detail": {"description": f"card {PAN}"}}).encode()
    ts = "2026-11-24T10:00:00Z"
    zd_sig = base64.b64encode(
        hmac.new(SENDER, ts.encode() + body, hashlib.sha256).digest()
    ).decode()
    # A fixed ISO timestamp is stale: give the route a window that covers it for this test.
    resp = await proxy.client.post(
        "/zendesk/hook",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature-Timestamp": ts,
            "X-Zendesk-Webhook-Signature": zd_sig,
        },
    )
    assert resp.status == 401  # outside the 300 s window
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    zd_sig = base64.b64encode(
        hmac.new(SENDER, ts.encode() + body, hashlib.sha256).digest()
    ).decode()
    resp = await proxy.client.post(
        "/zendesk/hook",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature-Timestamp": ts,
            "X-Zendesk-Webhook-Signature": zd_sig,
        },
    )
    assert resp.status == 200
    got = upstream.received[-1]
    expect = base64.b64encode(
        hmac.new(UPSTREAM, ts.encode() + got.body, hashlib.sha256).digest()
    ).decode()
    assert got.headers["X-Zendesk-Webhook-Signature"] == expect

    ic_sig = "sha1=" + hmac.new(SENDER, body, hashlib.sha1).hexdigest()
    resp = await proxy.client.post(
        "/intercom/hook",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature": ic_sig},
    )
    assert resp.status == 200
    got = upstream.received[-1]
    assert (
        got.headers["X-Hub-Signature"]
        == "sha1=" + hmac.new(UPSTREAM, got.body, hashlib.sha1).hexdigest()
    )
    assert b"tok_v1_card_" in got.body


async def test_responses_are_redacted_on_routes_that_ask_for_it(
    start_proxy, make_settings, upstream
) -> None:
    route = replace(
        _route(upstream.url, "none"), name="agent", path_prefix="/api/", redact_responses=True
    )
    proxy = await start_proxy(make_settings(route))
    upstream.reply = (
        200,
        {"Content-Type": "application/json"},
        json.dumps({"comment": f"card {PAN}"}).encode(),
    )
    resp = await proxy.client.get("/api/tickets/1")
    assert resp.status == 200
    body = await resp.json()
    assert "tok_v1_card_" in body["comment"]
    assert "4111" not in json.dumps(body).replace("_1111", "")
    events = [json.loads(line)["event"] for line in proxy.audit_path.read_text().splitlines()]
    assert events == ["message_scanned", "response_redacted", "message_delivered"]


async def test_route_can_refuse_unknown_content_types_with_415(
    start_proxy, make_settings, upstream
) -> None:
    route = replace(
        _route(upstream.url, "none"),
        name="mail",
        path_prefix="/mail/",
        unknown_content_types="refuse",
    )
    proxy = await start_proxy(make_settings(route))
    resp = await proxy.client.post(
        "/mail/x", data=b"card " + PAN.encode(), headers={"Content-Type": "application/x-custom"}
    )
    assert resp.status == 415
    assert upstream.received == []
    # The refusal is on the trail, with our status and code, and no value.
    [refused] = [json.loads(line) for line in proxy.audit_path.read_text().splitlines()]
    assert (refused["event"], refused["outcome"]) == ("message_refused", "refused")
    assert (refused["status"], refused["route"]) == (415, "mail")
    assert PAN not in proxy.audit_path.read_text()
