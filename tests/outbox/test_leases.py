"""N deliverers share one outbox: each item is delivered by one of them at a time, and the
lease of a deliverer that died runs out so another takes the item."""

from __future__ import annotations

import time

from tests.outbox.conftest import Site, eventually
from vault.outbox import NewItem, new_item_id


def _item(n: int, conversation: str | None = None) -> NewItem:
    return NewItem(
        id=new_item_id(),
        route="hook",
        tenant="acme",
        request_id=f"req-{n}",
        method="POST",
        target="/hook",
        headers=(("Content-Type", "application/json"),),
        body=b'{"n": %d}' % n,
        conversation=conversation,
        created_at=time.time(),
    )


async def test_two_deliverers_on_one_outbox_never_deliver_one_item_at_the_same_time(
    site: Site,
) -> None:
    # Two servers (two stores, as two processes or replicas have) deliver from one outbox;
    # the helpdesk holds each delivery a while, so overlapping claims would show.
    site.helpdesk.delay_s = 0.05
    first = await site.start()
    # Each process writes its own audit file, as each worker does.
    second = await site.start(site.settings(audit_log=str(site.root / "audit-w2.jsonl")))
    assert first.res.ingress.deliverer is not None
    assert second.res.ingress.deliverer is not None
    assert first.res.ingress.deliverer.owner != second.res.ingress.deliverer.owner
    ids = []
    for n in range(30):
        server = first if n % 2 else second
        resp = await server.client.post("/hook", json={"n": n})
        assert resp.status == 202
        ids.append((await resp.json())["outbox_id"])
    await site.helpdesk.wait_for(30)
    keys = [d.key for d in site.helpdesk.received]
    assert sorted(keys) == sorted(ids)  # each once: no item was claimed twice
    assert set(site.helpdesk.most_at_once.values()) == {1}

    def delivered() -> list[str]:
        return [r["outbox_id"] for r in site.audit_records() if r["event"] == "message_delivered"]

    # Audited after the helpdesk's answer: wait for the last records.
    await eventually(lambda: len(delivered()) >= len(ids))
    assert sorted(delivered()) == sorted(ids)


async def test_a_lease_holds_until_it_runs_out_and_only_its_holder_settles_the_item(
    site: Site,
) -> None:
    server = await site.start(deliver=False)
    outbox = server.res.vault.outbox
    await outbox.enqueue(_item(1))
    now = time.time()
    (claimed,) = await outbox.claim(["hook"], "a", now, 60.0, 10)
    assert (claimed.attempts, claimed.lease_owner) == (1, "a")
    assert await outbox.claim(["hook"], "b", now + 59, 60.0, 10) == []
    # A dies; its lease runs out and B takes the item, counting a second attempt.
    (taken,) = await outbox.claim(["hook"], "b", now + 61, 60.0, 10)
    assert (taken.id, taken.attempts, taken.lease_owner) == (claimed.id, 2, "b")
    # A (alive after all, its lease long gone) can no longer settle the item; B can.
    assert await outbox.finish(claimed.id, "a") is False
    assert await outbox.bury(claimed.id, "a", 500, None) is False
    assert await outbox.finish(claimed.id, "b") is True
    assert await outbox.depth() == []


async def test_an_item_leased_by_a_killed_deliverer_is_delivered_by_another(site: Site) -> None:
    server = await site.start(deliver=False)
    outbox = server.res.vault.outbox
    item = _item(7)
    await outbox.enqueue(item)
    # A deliverer claimed it and was killed (SIGKILL: nothing released its lease).
    (claimed,) = await outbox.claim(["hook"], "killed", time.time(), 0.3, 10)
    assert claimed.id == item.id
    await server.res.ingress.start_delivery()
    await site.helpdesk.wait_for(1)
    assert site.helpdesk.received[0].key == item.id
    await eventually(lambda: any(r["event"] == "message_delivered" for r in site.audit_records()))
    delivered = next(r for r in site.audit_records() if r["event"] == "message_delivered")
    assert (delivered["outbox_id"], delivered["attempt"]) == (item.id, 2)


async def test_a_clean_stop_ends_its_leases_at_once(site: Site) -> None:
    server = await site.start(deliver=False)
    outbox = server.res.vault.outbox
    await outbox.enqueue(_item(1))
    now = time.time()
    assert len(await outbox.claim(["hook"], "stopping", now, 600.0, 10)) == 1
    assert await outbox.release("stopping") == 1
    assert len(await outbox.claim(["hook"], "other", now, 600.0, 10)) == 1


async def test_an_older_pending_item_of_a_conversation_holds_back_the_newer_ones(
    site: Site,
) -> None:
    server = await site.start(deliver=False)
    outbox = server.res.vault.outbox
    a1, a2, b1 = _item(1, "A"), _item(2, "A"), _item(3, "B")
    for item in (a1, a2, b1):
        await outbox.enqueue(item)
    now = time.time()
    first = await outbox.claim(["hook"], "x", now, 60.0, 10)
    assert [i.id for i in first] == [a1.id, b1.id]
    # A1 fails and waits for its retry: A2 still waits behind it.
    assert await outbox.reschedule(a1.id, "x", now + 30, 500, None)
    assert await outbox.claim(["hook"], "y", now + 1, 60.0, 10) == []
    # A dead item no longer holds its conversation back.
    (again,) = await outbox.claim(["hook"], "x", now + 31, 60.0, 10)
    assert again.id == a1.id
    assert await outbox.bury(a1.id, "x", 500, "attempts_exhausted")
    (next_one,) = await outbox.claim(["hook"], "y", now + 32, 60.0, 10)
    assert next_one.id == a2.id


async def test_stopping_lets_an_attempt_in_flight_finish_and_leaves_no_lease(site: Site) -> None:
    site.helpdesk.delay_s = 0.3
    server = await site.start()
    resp = await server.client.post("/hook", json={"n": 1})
    outbox_id = (await resp.json())["outbox_id"]
    await eventually(lambda: site.helpdesk.in_flight.get(outbox_id) == 1)
    await server.res.ingress.stop_delivery(grace_s=10.0)
    assert [d.key for d in site.helpdesk.received] == [outbox_id]
    assert await server.res.vault.outbox.depth() == []
    assert any(r["event"] == "message_delivered" for r in site.audit_records())
