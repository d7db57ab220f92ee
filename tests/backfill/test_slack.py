"""`backfill slack` against the local stand-in: values tokenised before the message changes,
only values rewritten (text, blocks, attachments), 429 honoured, messages Slack will not edit
listed with their links, a run killed midway resumed from the vault's cursor without
updating anything twice, a dry run that touches nothing, and a token never taken from a flag."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import sys
from typing import Any

import pytest
from structlog.testing import capture_logs

from redactor.audit import AuditSink
from redactor.backfill.slack import (
    SlackCredentials,
    SlackRequest,
    SlackResult,
    backfill_slack,
    credentials_from,
    rewrite_parts,
)
from redactor.detection import DetectionOptions, Detector
from redactor.runtime.entities import VaultAdapter
from tests.backfill.conftest import CARD, CARD_2, DIGITS, SSN, TENANT, Store
from tests.backfill.slack_standin import BOT_USER, TEAM_ID, TOKEN, SlackStandin
from vault.startup import open_vault

CHANNEL = "C0SUPPORT"
CREDENTIALS = SlackCredentials(TOKEN)
SCOPE = f"{TEAM_ID}/{CHANNEL}"

M1, M2, M3, M4 = "1700000001.000100", "1700000002.000200", "1700000003.000300", "1700000004.000400"
R1, R2 = "1700000004.000500", "1700000004.000600"
M5, M6, M7, M8 = "1700000005.000500", "1700000006.000600", "1700000007.000700", "1700000008.000800"


def _rich(*elements: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "type": "rich_text",
            "block_id": "b1",
            "elements": [{"type": "rich_text_section", "elements": list(elements)}],
        }
    ]


def _msg(ts: str, text: str, user: str = BOT_USER, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "user": user, "ts": ts, "text": text, **extra}


def _standin() -> SlackStandin:
    messages = [
        _msg(
            M1,
            f"card {CARD} thanks",
            blocks=_rich(
                {"type": "text", "text": "card "},
                {"type": "text", "text": CARD, "style": {"bold": True}},
                {"type": "text", "text": " thanks"},
            ),
        ),
        _msg(M2, "order 5521, call at 3pm", blocks=_rich({"type": "text", "text": "order 5521"})),
        _msg(M3, f"my ssn is {SSN}", user="U0HUMAN"),
        _msg(M4, "see thread", thread_ts=M4, reply_count=2),
        _msg(R1, f"new card: {CARD_2}", thread_ts=M4),
        _msg(R2, "thanks, done", thread_ts=M4),
        # The value is split by formatting: only the joined text shows it.
        _msg(
            M5,
            f"ssn {SSN}",
            blocks=_rich(
                {"type": "text", "text": "ssn " + SSN[:7]},
                {"type": "text", "text": SSN[7:], "style": {"italic": True}},
            ),
        ),
        _msg(
            M6,
            "",
            attachments=[
                {"fallback": f"card {CARD_2}", "text": f"card {CARD_2}", "color": "#36a64f"}
            ],
        ),
        _msg(M7, f"card {CARD}"),
        _msg(M8, "plain text, nothing here"),
    ]
    return SlackStandin(CHANNEL, {m["ts"]: m for m in messages})


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


async def _run(
    store: Store, url: str, *, sleep: Any = None, **options: Any
) -> tuple[SlackResult, str]:
    out = io.StringIO()
    sink = AuditSink(store.audit.path, store.audit.key, checkpoint_interval_s=0)
    await sink.open()
    vault = await open_vault(store.config, create=False)
    dry = bool(options.get("dry_run"))
    request = SlackRequest(
        channel=CHANNEL, tenant=TENANT, base_url=url + "api", page_size=2, **options
    )
    try:
        result = await backfill_slack(
            request,
            CREDENTIALS,
            detector=Detector(DetectionOptions()),
            tokens=None if dry else VaultAdapter(vault),
            audit=sink,
            out=out,
            cursors=None if dry else vault.store,
            sleep=sleep or Sleeps(),
        )
    finally:
        await vault.close()
        await sink.close()
    return result, out.getvalue()


async def _tokens(store: Store) -> dict[str, str | None]:
    vault = await open_vault(store.config, create=False)
    try:
        return {
            span: await vault.find_token(TENANT, "ssn" if span == SSN else "card", DIGITS[span])
            for span in (CARD, CARD_2, SSN)
        }
    finally:
        await vault.close()


async def _cursor(store: Store) -> dict[str, Any] | None:
    vault = await open_vault(store.config, create=False)
    try:
        saved = await vault.store.read_cursor("slack", SCOPE)
    finally:
        await vault.close()
    return None if saved is None else json.loads(saved)


async def _registered_commands(store: Store) -> list[str | None]:
    from redactor.audit.registration import StoreChainRegistry

    vault = await open_vault(store.config, create=False)
    try:
        chains = await StoreChainRegistry(vault.store).chains()
    finally:
        await vault.close()
    return [chain.genesis.command for chain in chains]


def _with_tokens(node: Any, tokens: dict[str, str | None]) -> Any:
    text = json.dumps(node)
    for span, token in tokens.items():
        assert token is not None
        text = text.replace(span, token)
    return json.loads(text)


def _no_value(text: str) -> None:
    for span, digits in DIGITS.items():
        assert span not in text
        assert digits not in text


async def test_values_are_tokenised_then_rewritten_and_nothing_else_changes(
    store: Store, aiohttp_server
) -> None:
    standin = _standin()
    standin.rate_limit_once.add("chat.update")
    standin.retry_after = "3"
    standin.edit_window_closed.add(M7)
    server = await aiohttp_server(standin.app())
    sleeps = Sleeps()
    with capture_logs() as logs:
        result, out = await _run(store, str(server.make_url("/")), sleep=sleeps)
    _no_value(repr(logs))

    assert sleeps.seconds == [3.0]  # Retry-After honoured, then the same update again
    assert result.rate_limited == 1
    assert standin.updates == {M1: 1, R1: 1, M5: 1, M6: 1}  # each once
    assert (result.messages, result.threads, result.messages_changed) == (10, 1, 4)
    link = "https://acme.slack.com/archives/C0SUPPORT/p"
    assert sorted(result.for_review) == [
        (link + "1700000003000300", "cant_update_message"),
        (link + "1700000007000700", "edit_window_closed"),
    ]
    tokens = await _tokens(store)
    assert all(tokens.values())  # every value found is in the vault, the proxy's tenant
    # Only the values changed, each to its token, in text, blocks and attachments.
    for ts in (M1, R1, M6):
        for part in ("text", "blocks", "attachments"):
            assert standin.messages[ts].get(part) == _with_tokens(
                standin.original[ts].get(part), tokens
            )
    # A value split by formatting: that run of elements becomes one, formatting dropped.
    assert standin.messages[M5]["text"] == f"ssn {tokens[SSN]}"
    assert standin.messages[M5]["blocks"][0]["elements"][0]["elements"] == [
        {"type": "text", "text": f"ssn {tokens[SSN]}"}
    ]
    for ts in (M2, M3, M4, R2, M7, M8):
        assert standin.messages[ts] == standin.original[ts]
    for ts in standin.updates:
        _no_value(json.dumps(standin.messages[ts]))
    # The audit trail names channel, message and tokens before each update; never a value.
    records = [json.loads(line) for line in store.audit_text().splitlines()]
    redacted = [r for r in records if r.get("event") == "slack_message_redacted"]
    assert sorted(r["ts"] for r in redacted) == sorted([M1, R1, M3, M5, M6, M7])
    assert [r["thread_ts"] for r in redacted if r["ts"] == R1] == [M4]
    # What stays in Slack is listed as it is met and kept in the trail: a run killed later
    # (its cursor past these messages) does not lose it.
    review = [r for r in records if r.get("event") == "slack_message_for_review"]
    assert sorted((r["ts"], r["reason"], r["permalink"]) for r in review) == [
        (M3, "cant_update_message", link + "1700000003000300"),
        (M7, "edit_window_closed", link + "1700000007000700"),
    ]
    assert f"review: {link}1700000007000700: edit_window_closed\n" in out
    _no_value(store.audit_text())
    _no_value(out)
    assert f"{link}1700000004000500?thread_ts={M4}&cid={CHANNEL}: redacted CREDIT_CARD 1" in out
    assert await _cursor(store) == {"done_through": M8}


async def test_a_run_killed_midway_resumes_from_the_vault_cursor_and_updates_nothing_twice(
    store: Store, aiohttp_server
) -> None:
    standin = _standin()
    standin.edit_window_closed.add(M7)
    third = asyncio.Event()
    standin.on_update = lambda ts: third.set() if len(standin.updates) == 3 else None
    server = await aiohttp_server(standin.app())
    task = asyncio.create_task(_run(store, str(server.make_url("/"))))
    await third.wait()
    task.cancel()  # killed while the third update (in the thread of M4) was answered
    with pytest.raises(asyncio.CancelledError):
        await task
    assert set(standin.updates) == {M6, M5, R1}
    # Two history pages (M8 M7, M6 M5) were finished: the cursor says so.
    assert await _cursor(store) == {"latest": M5, "oldest": None, "top": M8}

    before = len(standin.history_queries)
    result, _ = await _run(store, str(server.make_url("/")))
    assert standin.history_queries[before]["latest"] == M5  # resumed, not started over
    assert standin.updates == {M6: 1, M5: 1, R1: 1, M1: 1}
    assert result.messages_changed == 1
    assert await _cursor(store) == {"done_through": M8}

    # A later run asks only for what is newer than the last pass; nothing changes.
    before = len(standin.history_queries)
    result, _ = await _run(store, str(server.make_url("/")))
    assert standin.history_queries[before]["oldest"] == M8
    assert (result.messages, result.messages_changed) == (0, 0)


async def test_dry_run_lists_what_would_change_and_touches_nothing(
    store: Store, aiohttp_server
) -> None:
    standin = _standin()
    server = await aiohttp_server(standin.app())
    result, out = await _run(store, str(server.make_url("/")), dry_run=True, since=1700000004.9)
    assert standin.messages == standin.original
    assert standin.updates == {}
    assert "chat.update" not in standin.requests
    assert standin.history_queries[0]["oldest"] == "1700000004.900000"
    assert result.messages_changed == 3  # M5, M6, M7; M1 is older than --since
    assert "p1700000006000600: would redact CREDIT_CARD 1" in out
    assert await _tokens(store) == {CARD: None, CARD_2: None, SSN: None}
    assert await _cursor(store) is None
    _no_value(out)


def test_a_value_split_by_formatting_or_in_a_link_is_rewritten_and_the_rest_kept() -> None:
    detector = Detector(DetectionOptions())
    parts = {
        "text": f"see <https://pay.test/?c={CARD_2}|link> and {CARD}",
        "blocks": _rich(
            {"type": "link", "url": f"https://pay.test/?c={CARD_2}", "text": "link"},
            {"type": "text", "text": " and 4111 1111 "},
            {"type": "text", "text": "1111 1111", "style": {"code": True}},
            {"type": "emoji", "name": "ok"},
        ),
    }
    new = rewrite_parts(detector, copy.deepcopy(parts), lambda f, span: "TOKEN")
    assert new["text"] == "see <https://pay.test/?c=TOKEN|link> and TOKEN"
    assert new["blocks"][0]["elements"][0]["elements"] == [
        {"type": "link", "url": "https://pay.test/?c=TOKEN", "text": "link"},
        {"type": "text", "text": " and TOKEN"},
        {"type": "emoji", "name": "ok"},
    ]
    clean = {"text": "order 5521", "blocks": _rich({"type": "text", "text": "order 5521"})}
    assert rewrite_parts(detector, clean, lambda f, span: "TOKEN") == clean


def test_the_token_comes_from_the_environment_only() -> None:
    assert credentials_from({}) is None
    creds = credentials_from({"REDACTOR_SLACK_TOKEN": TOKEN})
    assert creds == CREDENTIALS
    assert TOKEN not in repr(creds)


async def test_the_command_takes_the_token_from_the_environment_and_refuses_a_flag(
    store: Store, aiohttp_server
) -> None:
    from tests.backfill.test_cli import _env

    standin = _standin()
    server = await aiohttp_server(standin.app())
    env = {**_env(store), "REDACTOR_SLACK_TOKEN": TOKEN}
    argv = [sys.executable, "-m", "redactor", "backfill", "slack", "--channel", CHANNEL]
    argv += ["--base-url", str(server.make_url("/api")), "--tenant", TENANT]

    async def run(args: list[str], environ: dict[str, str]) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *args, env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        return proc.returncode or 0, out.decode(), err.decode()

    code, out, err = await run([*argv, "--token", TOKEN], env)
    assert code == 2
    assert "REDACTOR_SLACK_TOKEN" in err
    assert TOKEN not in out + err
    no_token = {k: v for k, v in env.items() if k != "REDACTOR_SLACK_TOKEN"}
    code, _, err = await run(argv, no_token)
    assert code == 2
    assert "REDACTOR_SLACK_TOKEN" in err
    assert standin.requests == []  # neither run reached Slack

    code, out, err = await run(argv, env)
    assert code == 0, err
    assert "review: https://acme.slack.com/archives/C0SUPPORT/p1700000003000300: " in out
    assert "5 messages changed" in err
    assert TOKEN not in out + err
    _no_value(out + err)
    trail = (store.root / "audit-cli.jsonl").read_text()
    assert trail.count('"event":"backfill_slack"') == 2
    _no_value(trail)
    assert await _cursor(store) == {"done_through": M8}
    # The run's chain is in the vault's chain registry, so deleting it from the trail is seen.
    assert "backfill slack" in await _registered_commands(store)


async def test_a_ratelimited_error_in_the_envelope_is_waited_out_not_fatal(
    store: Store, aiohttp_server
) -> None:
    # Slack may say `{"ok": false, "error": "ratelimited"}` with Retry-After: the same call is
    # made again after the wait, for reads and for chat.update alike.
    standin = _standin()
    standin.ratelimited_in_body_once |= {"conversations.history", "chat.update"}
    standin.retry_after = "7"
    server = await aiohttp_server(standin.app())
    sleeps = Sleeps()
    result, _ = await _run(store, str(server.make_url("/")), sleep=sleeps)
    assert sleeps.seconds == [7.0, 7.0]
    assert result.rate_limited == 2
    assert standin.updates == {M1: 1, R1: 1, M5: 1, M6: 1, M7: 1}
    assert await _cursor(store) == {"done_through": M8}


async def test_a_value_in_a_shared_file_is_listed_for_a_human(store: Store, aiohttp_server) -> None:
    # chat.update rewrites text, blocks and attachments; a file's name, title or preview
    # (`files`) it cannot change: the message is listed, its text still redacted.
    standin = _standin()
    shared = {
        "id": "F0FILE",
        "name": "receipt.txt",
        "title": "receipt",
        "preview": f"paid with {CARD_2}",
        "mimetype": "text/plain",
    }
    standin.messages[M8]["files"] = [shared]
    standin.messages[M8]["text"] = f"see file, card {CARD}"
    standin.original[M8] = copy.deepcopy(standin.messages[M8])
    server = await aiohttp_server(standin.app())
    result, out = await _run(store, str(server.make_url("/")))
    link = "https://acme.slack.com/archives/C0SUPPORT/p1700000008000800"
    assert (link, "value in a shared file's text") in result.for_review
    assert f"review: {link}: value in a shared file's text\n" in out
    assert standin.updates[M8] == 1  # the text is still redacted
    _no_value(standin.messages[M8]["text"])
    _no_value(out)
    _no_value(store.audit_text())
