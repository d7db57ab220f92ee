"""`redactor outbox`: operators list, show, retry and drop queued messages; every action is an
audit record naming the operator."""

from __future__ import annotations

import asyncio
import json
import sys

from tests.outbox.conftest import Site, eventually, queued_route
from tests.vault.conftest import CARD, CARD_DIGITS
from vault import find_tokens


async def _cli(site: Site, *argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", "outbox", *argv, "--operator", "alice",
        env=site.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _dead(site: Site, count: int) -> None:
    await eventually(
        lambda: len([r for r in site.audit_records() if r["event"] == "message_dead"]) >= count
    )


async def test_operators_list_show_retry_and_drop_dead_messages_and_each_action_is_audited(
    site: Site,
) -> None:
    site.helpdesk.default = (500, {})
    server = await site.start(site.settings(queued_route(site.helpdesk.url, max_attempts=1)))
    ids = []
    for n in range(2):
        resp = await server.client.post(
            "/hook",
            json={"comment": f"card {CARD}", "n": n},
            headers={"Authorization": "Bearer sender-credential"},
        )
        ids.append((await resp.json())["outbox_id"])
    await _dead(site, 2)

    code, out, _ = await _cli(site, "list", "--dead", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == ids
    assert {(r["state"], r["attempts"], r["last_status"]) for r in rows} == {("dead", 1, 500)}
    code, out, _ = await _cli(site, "list")
    assert (code, out.splitlines()[0]) == (0, "0 pending message(s)")

    code, out, _ = await _cli(site, "show", ids[0])
    assert code == 0
    assert "POST /hook" in out
    assert '"n":0' in out.replace(" ", "")
    assert CARD_DIGITS not in out.replace(" ", "")
    assert len(find_tokens(out)) == 1
    # A credential the sender passed on is kept for delivery, never printed.
    assert "sender-credential" not in out
    assert "Authorization: [hidden: 24 characters]" in out
    code, _, err = await _cli(site, "show", "ob_nosuch")
    assert code == 1
    assert "no outbox message" in err

    site.helpdesk.default = (200, {})
    code, out, _ = await _cli(site, "retry", ids[0])
    assert (code, out.strip()) == (0, "1 message(s) due now")
    await site.helpdesk.wait_for(3)
    assert site.helpdesk.received[-1].key == ids[0]

    code, out, _ = await _cli(site, "drop", "--dead")
    assert (code, out.strip()) == (0, "1 message(s) dropped")
    code, out, _ = await _cli(site, "list", "--dead")
    assert out.splitlines()[0] == "0 dead message(s)"
    code, _, err = await _cli(site, "retry")
    assert code == 2
    assert "ID or --dead" in err

    records = [r for r in site.audit_records() if r["event"].startswith("outbox_")]
    finished = [(r["event"], r.get("outbox_id")) for r in records if r["phase"] == "finished"]
    assert ("outbox_show", ids[0]) in finished
    assert ("outbox_retry", ids[0]) in finished
    assert ("outbox_drop", None) in finished
    assert {r["operator"] for r in records} == {"alice"}
    assert all(CARD_DIGITS not in json.dumps(r) for r in site.audit_records())
