"""The user story end to end: a webhook with a card goes through the proxy, agents at each
level see what policy allows, and a tool refunds through the processor without seeing it."""

from __future__ import annotations

import json

from tests.agent.conftest import CARD, CARD_DIGITS, Processor, Stack, assert_no_raw
from vault import find_tokens


async def test_card_from_a_webhook_to_a_refund(stack: Stack, processor: Processor) -> None:
    # 1. A customer's message with a card number arrives as a webhook: it leaves tokenised.
    resp = await stack.proxy.post(
        "/hooks/acme",
        json={"ticket": {"comment": f"Please refund my card {CARD}, thanks"}},
    )
    assert resp.status == 200
    forwarded = stack.upstream_received[-1]
    assert_no_raw(forwarded)
    [card] = find_tokens(forwarded.decode())
    assert card.endswith("_4242")

    # 2. The support agent (masked) sees the last four digits.
    resp = await stack.agent.post(
        "/v1/resolve", json={"tokens": [card]}, headers=stack.auth(roles=["support_agent"])
    )
    assert (await resp.json())["results"] == [
        {"token": card, "level": "masked", "value": "•••• 4242"}
    ]

    # 3. A supervisor (full) with a purpose sees the number; the call is in the audit log.
    resp = await stack.agent.post(
        "/v1/resolve",
        json={"tokens": [card], "purpose": "CHARGEBACK_DISPUTE", "ticket": "SUP-42"},
        headers={**stack.auth(roles=["supervisor"], sub="sup-anna"), "X-Request-ID": "story-3"},
    )
    assert (await resp.json())["results"] == [
        {"token": card, "level": "full", "value": CARD_DIGITS}
    ]
    [event] = [e for e in stack.audit() if e["request_id"] == "story-3"]
    assert event["event"] == "token_revealed"
    assert (event["subject"], event["tenant"], event["token"], event["level"]) == (
        "sup-anna",
        "acme",
        card,
        "full",
    )
    assert event["purpose"] == "CHARGEBACK_DISPUTE"

    # 4. The billing tool (use) posts a refund with the token; the processor gets the number
    #    and its answer, which echoes the card, comes back tokenised.
    resp = await stack.agent.post(
        "/out/processor/v1/refunds",
        json={"card": card, "amount": 4200, "currency": "usd"},
        headers=stack.auth(roles=["billing_tool"], sub="billing-bot"),
    )
    assert resp.status == 200
    [(_method, _path, _headers, sent)] = processor.received
    assert json.loads(sent)["card"] == CARD_DIGITS
    answer = await resp.read()
    assert_no_raw(answer)
    assert json.loads(answer)["card"] == card

    # Nothing but the supervisor's answer and the processor's request ever held the digits.
    assert_no_raw(stack.audit_path.read_text())
