"""The `use` level: /out/<name>/... swaps tokens for values on the way out, redacts the answer."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import structlog
from yarl import URL

from tests.agent.conftest import CARD, CARD_DIGITS, Processor, Stack, assert_no_raw
from vault import find_tokens


async def test_tool_with_use_sends_the_real_number_and_gets_tokens_back(
    stack: Stack, processor: Processor
) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    resp = await stack.agent.post(
        "/out/processor/v1/refunds?expand=card",
        json={"card": card, "amount": 1200},
        headers=stack.auth(roles=["billing_tool"]),
    )
    assert resp.status == 200
    [(method, path, headers, body)] = processor.received
    assert (method, path) == ("POST", "/v1/refunds?expand=card")
    assert json.loads(body) == {"card": CARD_DIGITS, "amount": 1200}
    # The agent's credential is for redactor, never for the processor.
    assert "Authorization" not in headers
    answer = await resp.read()
    assert_no_raw(answer)
    doc = json.loads(answer)
    assert doc["card"] == card  # the same value gives the same token in the tenant
    assert doc["message"] == f"refunded {card}"


async def test_form_bodies_are_filled_in_too(stack: Stack, processor: Processor) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    resp = await stack.agent.post(
        "/out/processor/v1/refunds",
        data={"card": card, "amount": "5"},
        headers=stack.auth(roles=["billing_tool"]),
    )
    assert resp.status == 200
    assert parse_qs(processor.received[0][3].decode()) == {"card": [CARD_DIGITS], "amount": ["5"]}


async def test_caller_with_masked_only_gets_403_and_nothing_is_sent(
    stack: Stack, processor: Processor
) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    resp = await stack.agent.post(
        "/out/processor/v1/refunds",
        json={"card": card},
        headers=stack.auth(roles=["support_agent"]),
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "no_permission"
    assert processor.received == []
    [event] = [e for e in stack.audit() if e["event"] == "token_use_denied"]
    assert (event["token"], event["reason"]) == (card, "no_permission")


async def test_unknown_token_stops_the_request(stack: Stack, processor: Processor) -> None:
    resp = await stack.agent.post(
        "/out/processor/v1/refunds",
        json={"card": "tok_v1_card_abcdefghijklmnopqrst_4242"},
        headers=stack.auth(roles=["billing_tool"]),
    )
    assert resp.status == 422
    assert (await resp.json())["error"] == "token_unresolvable"
    assert processor.received == []


async def test_destination_not_on_the_allow_list_is_refused(
    stack: Stack, processor: Processor
) -> None:
    resp = await stack.agent.post(
        "/out/evil/v1/refunds", json={}, headers=stack.auth(roles=["billing_tool"])
    )
    assert resp.status == 404
    assert (await resp.json())["error"] == "destination_not_allowed"
    assert processor.received == []


async def test_path_cannot_climb_out_of_the_destination(stack: Stack, processor: Processor) -> None:
    for path in (
        "/out/processor/%2e%2e/admin",
        "/out/processor/a/%2E%2E/%2e%2e/x",
        "/out/processor/a%5c..%5cb",
    ):
        # encoded=True: the client must send the dot segments as they are, not normalise them.
        url = URL(str(stack.agent.make_url("/")).rstrip("/") + path, encoded=True)
        resp = await stack.agent.session.post(
            url, json={}, headers=stack.auth(roles=["billing_tool"])
        )
        assert resp.status == 400, path
        assert (await resp.json())["error"] == "path_invalid"
    assert processor.received == []


async def test_unauthenticated_tool_is_refused_and_nothing_sent(
    stack: Stack, processor: Processor
) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    resp = await stack.agent.post("/out/processor/v1/refunds", json={"card": card})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert processor.received == []


async def test_body_without_tokens_is_forwarded_unchanged(
    stack: Stack, processor: Processor
) -> None:
    body = b'{"refund": "re_1", "note": "ok"}'
    resp = await stack.agent.post(
        "/out/processor/v1/status",
        data=body,
        headers={**stack.auth(roles=["billing_tool"]), "Content-Type": "application/json"},
    )
    assert resp.status == 200
    assert processor.received[0][3] == body


async def test_outbound_logs_and_audit_hold_no_value(stack: Stack, processor: Processor) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    with structlog.testing.capture_logs() as logs:
        resp = await stack.agent.post(
            "/out/processor/v1/refunds",
            json={"card": card},
            headers=stack.auth(roles=["billing_tool"]),
        )
    assert resp.status == 200
    assert_no_raw(repr(logs))
    assert_no_raw(stack.audit_path.read_text())
    events = stack.audit()
    assert [e["event"] for e in events if e.get("route") == "out:processor"] == [
        "token_used",
        "response_redacted",
    ]
    assert find_tokens(json.dumps(events[-1]["tokens"])) == [card]
