"""A queued route answers 202 once the redacted request is in the outbox, and delivers it
later, at least once, with the outbox id as Idempotency-Key."""

from __future__ import annotations

import asyncio
import time

from tests.outbox.conftest import Site, eventually, queued_route
from tests.vault.conftest import CARD, CARD_DIGITS, SSN, SSN_DIGITS
from vault import find_tokens


def _events(site: Site, outbox_id: str) -> list[str]:
    return [r["event"] for r in site.audit_records() if r.get("outbox_id") == outbox_id]


async def _wait_events(site: Site, outbox_id: str, last: str) -> None:
    await eventually(lambda: last in _events(site, outbox_id))


async def test_queued_route_answers_202_and_delivers_the_redacted_request_with_idempotency_key(
    site: Site,
) -> None:
    server = await site.start()
    resp = await server.client.post(
        "/hook/tickets?src=chat", json={"comment": f"card {CARD}, ssn {SSN}"}
    )
    assert resp.status == 202
    answer = await resp.json()
    assert answer["status"] == "queued"
    outbox_id = answer["outbox_id"]

    await site.helpdesk.wait_for(1)
    (delivery,) = site.helpdesk.received
    assert delivery.key == outbox_id
    assert delivery.method == "POST"
    assert delivery.path == "/hook/tickets?src=chat"
    assert CARD_DIGITS not in delivery.body.decode()
    assert SSN_DIGITS not in delivery.body.decode()
    assert len(find_tokens(delivery.body.decode())) == 2
    assert delivery.headers["X-Request-ID"] == resp.headers["X-Request-ID"]
    await _wait_events(site, outbox_id, "message_delivered")
    assert _events(site, outbox_id) == ["message_queued", "message_delivered"]
    delivered = next(r for r in site.audit_records() if r["event"] == "message_delivered")
    assert (delivered["outcome"], delivered["status"], delivered["attempt"]) == (
        "delivered",
        200,
        1,
    )
    # The redaction record comes first, with the tokens, under the same request id.
    redacted = next(r for r in site.audit_records() if r["event"] == "message_redacted")
    assert redacted["request_id"] == delivered["request_id"]
    assert await server.res.vault.outbox.depth() == []  # delivered items are removed


async def test_upstream_500_then_success_is_retrying_then_delivered(site: Site) -> None:
    site.helpdesk.script = [(500, {}), (503, {})]
    server = await site.start()
    resp = await server.client.post("/hook", json={"comment": "hello"})
    assert resp.status == 202
    outbox_id = (await resp.json())["outbox_id"]
    await _wait_events(site, outbox_id, "message_delivered")
    assert _events(site, outbox_id) == [
        "message_queued",
        "message_retrying",
        "message_retrying",
        "message_delivered",
    ]
    # Every attempt carried the same key: the helpdesk can drop what it already has.
    assert [d.key for d in site.helpdesk.received] == [outbox_id] * 3


async def test_retry_after_of_429_is_honoured(site: Site) -> None:
    site.helpdesk.script = [(429, {"Retry-After": "0"})]
    server = await site.start()
    resp = await server.client.post("/hook", json={"comment": "hello"})
    outbox_id = (await resp.json())["outbox_id"]
    await _wait_events(site, outbox_id, "message_delivered")
    retrying = next(r for r in site.audit_records() if r["event"] == "message_retrying")
    assert retrying["status"] == 429


async def test_attempts_exhausted_is_dead_and_a_retry_revives_it(site: Site) -> None:
    site.helpdesk.default = (500, {})
    route = queued_route(site.helpdesk.url, max_attempts=2)
    server = await site.start(site.settings(route))
    resp = await server.client.post("/hook", json={"comment": "hello"})
    outbox_id = (await resp.json())["outbox_id"]
    await _wait_events(site, outbox_id, "message_dead")
    dead = [r for r in site.audit_records() if r["event"] == "message_dead"]
    assert dead[0]["code"] == "attempts_exhausted"
    assert len(site.helpdesk.received) == 2
    (item,) = await server.res.vault.outbox.items("dead", None, 10)
    assert (item.id, item.attempts, item.last_status) == (outbox_id, 2, 500)

    site.helpdesk.default = (200, {})
    assert await server.res.vault.outbox.revive(None, "hook", time.time()) == 1
    await _wait_events(site, outbox_id, "message_delivered")
    assert await server.res.vault.outbox.items("dead", None, 10) == []


async def test_a_4xx_answer_is_dead_at_once(site: Site) -> None:
    site.helpdesk.default = (400, {})
    server = await site.start()
    resp = await server.client.post("/hook", json={"comment": "hello"})
    outbox_id = (await resp.json())["outbox_id"]
    await _wait_events(site, outbox_id, "message_dead")
    assert len(site.helpdesk.received) == 1
    dead = next(r for r in site.audit_records() if r["event"] == "message_dead")
    assert (dead["status"], dead["code"]) == (400, "upstream_rejected")


async def test_items_of_one_conversation_are_delivered_in_order(site: Site) -> None:
    # The first message of conversation A fails twice; A's later messages wait for it while
    # conversation B goes on.
    site.helpdesk.script = [(500, {}), (500, {})]
    route = queued_route(site.helpdesk.url, conversation="/ticket/id")
    server = await site.start(site.settings(route), deliver=False)
    sent = [("A", 1), ("A", 2), ("B", 1), ("A", 3), ("B", 2)]
    for conversation, n in sent:
        resp = await server.client.post("/hook", json={"ticket": {"id": conversation}, "n": n})
        assert resp.status == 202
    await server.res.ingress.start_delivery()
    await site.helpdesk.wait_for(len(sent) + 2)
    await asyncio.sleep(0.1)
    delivered = [(b["ticket"]["id"], b["n"]) for b in site.helpdesk.bodies()]
    assert len(delivered) == len(sent) + 2
    for conversation in ("A", "B"):
        mine = [n for c, n in delivered if c == conversation]
        # Retries repeat a message, never overtake it: A is 1, 1, 1, 2, 3.
        assert mine == sorted(mine)
        assert sorted(set(mine)) == [n for c, n in sent if c == conversation]


async def test_above_the_high_water_mark_the_route_answers_503_with_retry_after(
    site: Site,
) -> None:
    route = queued_route(site.helpdesk.url, high_water_items=2)
    server = await site.start(site.settings(route), deliver=False)
    for _ in range(2):
        assert (await server.client.post("/hook", json={"comment": "hi"})).status == 202
    resp = await server.client.post("/hook", json={"comment": "hi"})
    assert resp.status == 503
    assert (await resp.json())["error"] == "outbox_full"
    assert int(resp.headers["Retry-After"]) > 0
    ready = await (await server.admin.get("/readyz")).json()
    assert ready["outbox"]["hook"]["pending"] == 2
    assert ready["outbox"]["hook"]["accepting"] is False
    # Once delivered, the route takes messages again.
    await server.res.ingress.start_delivery()
    await site.helpdesk.wait_for(2)
    async with asyncio.timeout(10):
        while True:
            await server.res.ingress.deliverer.read_depth()
            if (await server.client.post("/hook", json={"comment": "hi"})).status == 202:
                break
            await asyncio.sleep(0.05)


async def test_what_was_queued_before_a_restart_is_delivered_after_it(site: Site) -> None:
    first = await site.start(deliver=False)
    ids = []
    for n in range(3):
        resp = await first.client.post("/hook", json={"n": n})
        ids.append((await resp.json())["outbox_id"])
    await site.close()  # the process stops with everything still queued
    assert site.helpdesk.received == []

    await site.start()
    await site.helpdesk.wait_for(3)
    assert sorted(d.key for d in site.helpdesk.received) == sorted(ids)


async def test_a_slack_url_verification_is_answered_synchronously(site: Site) -> None:
    site.helpdesk.default = (200, {})
    server = await site.start()
    resp = await server.client.post(
        "/hook", json={"type": "url_verification", "challenge": "abc123"}
    )
    assert resp.status == 200
    assert await resp.json() == {"status": 200}
    assert len(site.helpdesk.received) == 1
    assert site.helpdesk.received[0].key is None
    assert (await server.res.vault.outbox.depth()) == []


async def test_metrics_show_depth_attempts_and_delivery_latency(site: Site) -> None:
    site.helpdesk.script = [(500, {})]
    server = await site.start()
    resp = await server.client.post("/hook", json={"comment": "hello"})
    outbox_id = (await resp.json())["outbox_id"]
    await _wait_events(site, outbox_id, "message_delivered")
    await server.res.ingress.deliverer.read_depth()
    text = await (await server.admin.get("/metrics")).text()
    assert 'redactor_outbox_deliveries_total{outcome="retrying",route="hook"} 1.0' in text
    assert 'redactor_outbox_deliveries_total{outcome="delivered",route="hook"} 1.0' in text
    assert 'redactor_outbox_delivery_seconds_count{route="hook"} 1.0' in text
    assert 'redactor_outbox_depth{route="hook",state="pending"} 0.0' in text
    assert 'redactor_outbox_oldest_age_seconds{route="hook"} 0.0' in text
    assert 'redactor_upstream_calls_total{side="outbox",status_class="2xx"} 1.0' in text
    assert 'redactor_requests_total{route="hook",status="202"} 1.0' in text


async def test_an_outbox_that_cannot_take_the_message_is_a_503_and_a_refusal_record(
    site: Site,
) -> None:
    server = await site.start(deliver=False)
    await server.res.vault.outbox.close()  # as a database that stopped answering would
    resp = await server.client.post("/hook", json={"comment": f"card {CARD}"})
    assert resp.status == 503
    assert (await resp.json())["error"] == "outbox_unavailable"
    assert "Retry-After" in resp.headers
    events = [r["event"] for r in site.audit_records() if r.get("route") == "hook"]
    assert events == ["message_redacted", "message_refused"]
    refused = [r for r in site.audit_records() if r["event"] == "message_refused"]
    assert refused[0]["code"] == "outbox_unavailable"
