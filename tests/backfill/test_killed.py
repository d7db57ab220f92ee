"""Both helpdesk backfills as an operator runs them, killed with SIGKILL in the middle of a
write to the stand-in (no handler, no finally block runs), then run again. After the second
run: every value found has its token in the vault, no value is left in the stand-in's stored
text but what is listed for review, nothing but the values changed, and no comment or message
was changed twice."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from typing import Any

from tests.backfill.conftest import CARD, CARD_2, DIGITS, SSN, TENANT, Store
from tests.backfill.slack_standin import TOKEN
from tests.backfill.test_cli import _env
from tests.backfill.test_slack import CHANNEL, M3, M7, R1, _tokens, _with_tokens
from tests.backfill.test_slack import _standin as _slack_standin
from tests.backfill.test_zendesk import _saved_cursor
from tests.backfill.test_zendesk import _standin as _zendesk_standin
from tests.backfill.zendesk_standin import API_TOKEN, EMAIL

VALUES = (CARD, CARD_2, SSN)


async def _command(argv: list[str], env: dict[str, str], killer: dict[str, Any]) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redactor",
        *argv,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    killer["pid"] = proc.pid
    try:
        return await asyncio.wait_for(proc.wait(), timeout=120)
    finally:
        killer["pid"] = None
        if proc.returncode is None:
            proc.kill()


def _kill(killer: dict[str, Any]) -> None:
    if killer.get("pid"):
        os.kill(killer["pid"], signal.SIGKILL)
        killer["pid"] = None


def _blanked(markup: str) -> str:
    """The markup as Zendesk stores it once each value in its text is redacted."""
    for value in VALUES:
        markup = markup.replace(value, "▇" * len(value))
    return markup


async def test_zendesk_killed_mid_redaction_then_run_again(store: Store, aiohttp_server) -> None:
    standin = _zendesk_standin()
    killer: dict[str, Any] = {}
    # Killed once comment 6 (ticket 104, the export's second page) is stored redacted and
    # before its answer: the first page's cursor is in the vault, the second page's is not.
    standin.on_redaction = lambda comment_id: _kill(killer) if comment_id == 6 else None
    server = await aiohttp_server(standin.app())
    env = {**_env(store), "REDACTOR_ZENDESK_EMAIL": EMAIL, "REDACTOR_ZENDESK_API_TOKEN": API_TOKEN}
    argv = ["backfill", "zendesk", "--subdomain", "acme", "--tenant", TENANT]
    argv += ["--base-url", str(server.make_url(""))]

    code = await _command(argv, env, killer)
    assert code == -signal.SIGKILL
    assert set(standin.redactions) == {1, 3, 4, 6}
    assert await _saved_cursor(store) == "c2"

    standin.on_redaction = None
    before = len(standin.export_queries)
    code = await _command(argv, env, killer)
    assert code == 0
    assert standin.export_queries[before:] == ["cursor=c2", "cursor=c4"]  # the vault's cursor
    assert all(times == 1 for times in standin.redactions.values())  # nothing twice
    await _assert_tokenised(store)
    for comments in standin.tickets.values():
        for comment in comments:
            if comment["id"] == 5:  # the value inside an href: listed for a human
                assert comment["html_body"] == standin.original[5]
                continue
            # Only the values changed, each character to ▇; nothing else.
            assert comment["html_body"] == _blanked(standin.original[comment["id"]])
    trail = (store.root / "audit-cli.jsonl").read_text()
    review = [json.loads(line) for line in trail.splitlines() if "_for_review" in line]
    assert [(r["ticket_id"], r["comment_id"]) for r in review] == [(103, 5), (103, 5)]
    _no_value(trail)


async def test_slack_killed_mid_update_then_run_again(store: Store, aiohttp_server) -> None:
    standin = _slack_standin()
    standin.edit_window_closed.add(M7)
    killer: dict[str, Any] = {}
    # Killed once the reply R1 (in M4's thread) is stored rewritten, before its answer.
    standin.on_update = lambda ts: _kill(killer) if ts == R1 else None
    server = await aiohttp_server(standin.app())
    env = {**_env(store), "REDACTOR_SLACK_TOKEN": TOKEN}
    argv = ["backfill", "slack", "--channel", CHANNEL, "--tenant", TENANT]
    argv += ["--base-url", str(server.make_url("/api"))]

    code = await _command(argv, env, killer)
    assert code == -signal.SIGKILL
    assert R1 in standin.updates
    updated_first = set(standin.updates)

    standin.on_update = None
    code = await _command(argv, env, killer)
    assert code == 0
    assert all(times == 1 for times in standin.updates.values())  # nothing twice
    assert set(standin.updates) > updated_first
    tokens = await _tokens(store)
    assert all(tokens.values())
    for ts, message in standin.messages.items():
        original = standin.original[ts]
        if ts not in standin.updates:
            assert message == original  # never touched (no value, or Slack would not edit)
            continue
        _no_value(json.dumps({k: message.get(k) for k in ("text", "blocks", "attachments")}))
        assert message["text"] == _with_tokens(original["text"], tokens)
    # A value is left only where Slack would not edit, and each such message is in the trail
    # for a human (the first run's too: it was killed before it could print its list).
    trail = (store.root / "audit-cli.jsonl").read_text()
    review = {
        json.loads(line)["ts"] for line in trail.splitlines() if "slack_message_for_review" in line
    }
    left = {
        ts
        for ts, message in standin.messages.items()
        if any(value in json.dumps(message) for value in VALUES)
    }
    assert left == review == {M3, M7}
    _no_value(trail)


async def _assert_tokenised(store: Store) -> None:
    from vault.startup import open_vault

    vault = await open_vault(store.config, create=False)
    try:
        for span in VALUES:
            entity = "ssn" if span == SSN else "card"
            assert await vault.find_token(TENANT, entity, DIGITS[span]) is not None
    finally:
        await vault.close()


def _no_value(text: str) -> None:
    for span, digits in DIGITS.items():
        assert span not in text
        assert not re.search(re.escape(digits), text)
