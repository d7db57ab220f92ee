"""`backfill zendesk` against the local stand-in: values tokenised before the comment changes,
only values redacted, 429 honoured, a refused redaction listed for review, a run killed
midway resumed from its cursor, a dry run that changes nothing, and no value in any output."""

from __future__ import annotations

import io
import json

import pytest

from redactor.audit import AuditSink
from redactor.backfill.zendesk import (
    ZendeskCredentials,
    ZendeskError,
    ZendeskRequest,
    backfill_zendesk,
    credentials_from,
)
from redactor.detection import DetectionOptions, Detector
from redactor.runtime.entities import VaultAdapter
from tests.backfill.conftest import CARD, CARD_2, DIGITS, SSN, TENANT, Store
from tests.backfill.zendesk_standin import API_TOKEN, EMAIL, Standin
from vault.startup import open_vault

CREDENTIALS = ZendeskCredentials(EMAIL, API_TOKEN)


def _comment(comment_id: int, markup: str) -> dict:
    return {
        "id": comment_id,
        "type": "Comment",
        "author_id": 361000000001,
        "public": True,
        "html_body": markup,
        "body": markup,
    }


def _standin() -> Standin:
    return Standin(
        {
            101: [
                _comment(1, f'<div class="zd-comment"><p>card {CARD} &amp; thanks</p></div>'),
                _comment(2, "<p>nothing to see, order 5521</p>"),
                _comment(3, f"<p>ssn <b>{SSN}</b></p><p>again {CARD}</p>"),
            ],
            102: [_comment(4, f"<p>new card: {CARD_2}</p>")],
            103: [_comment(5, f'<p><a href="https://x.test/?c={CARD_2}">link</a></p>')],
            104: [_comment(6, f"<p>card {CARD_2}</p>")],
            105: [_comment(7, "<p>plain</p>")],
        }
    )


def _request(store: Store, base_url: str, **options: object) -> ZendeskRequest:
    return ZendeskRequest(
        subdomain="acme",
        tenant=TENANT,
        state_dir=store.root,
        base_url=base_url,
        **options,  # type: ignore[arg-type]
    )


async def _run(store: Store, standin_url: str, **options: object):
    out = io.StringIO()
    sink = AuditSink(store.audit.path, store.audit.key, checkpoint_interval_s=0)
    await sink.open()
    vault = await open_vault(store.config, create=False)
    try:
        result = await backfill_zendesk(
            _request(store, standin_url, **options),
            CREDENTIALS,
            detector=Detector(DetectionOptions()),
            tokens=None if options.get("dry_run") else VaultAdapter(vault),
            audit=sink,
            out=out,
            cursors=None if options.get("dry_run") else vault.store,
        )
    finally:
        await vault.close()
        await sink.close()
    return result, out.getvalue()


def _texts(standin: Standin) -> str:
    return json.dumps(standin.tickets)


def _no_value(text: str) -> None:
    for span, digits in DIGITS.items():
        assert span not in text
        assert digits not in text


async def test_values_are_tokenised_then_redacted_and_nothing_else_changes(
    store: Store, aiohttp_server
) -> None:
    standin = _standin()
    standin.rate_limit_on.add("/api/v2/tickets/102/comments.json")
    standin.refuse_redaction_of.add(6)
    server = await aiohttp_server(standin.app())
    result, out = await _run(store, str(server.make_url("")))

    assert standin.rate_limited == 1
    assert result.rate_limited == 1
    assert (result.tickets, result.comments) == (5, 7)
    assert standin.redactions == {1: 1, 3: 1, 4: 1}  # each once; 6 refused, 5 for a human
    assert standin.comment(2)["html_body"] == standin.original[2]
    assert standin.comment(1)["html_body"] == (
        '<div class="zd-comment"><p>card ' + "▇" * len(CARD) + " &amp; thanks</p></div>"
    )
    assert standin.comment(3)["html_body"] == (
        f"<p>ssn <b>{'▇' * len(SSN)}</b></p><p>again {'▇' * len(CARD)}</p>"
    )
    assert sorted(result.for_review) == [
        (103, 5, "value in an HTML attribute"),
        (104, 6, "redaction refused (422)"),
    ]
    # Every value found has its token in the vault, under the tenant the proxy would use.
    vault = await open_vault(store.config, create=False)
    try:
        for entity, span in (("card", CARD), ("card", CARD_2), ("ssn", SSN)):
            assert await vault.find_token(TENANT, entity, DIGITS[span]) is not None
    finally:
        await vault.close()
    # The audit trail names ticket, comment and tokens of each redaction; never a value.
    records = [json.loads(line) for line in store.audit_text().splitlines()]
    redacted = [r for r in records if r.get("event") == "zendesk_comment_redacted"]
    assert sorted(r["comment_id"] for r in redacted) == [1, 3, 4, 6]  # written before the PUT
    assert all(r["tokens"] for r in redacted)
    # What stays in Zendesk is listed as it is met and kept in the trail: a run killed later
    # (its cursor past these comments) does not lose it.
    review = [r for r in records if r.get("event") == "zendesk_comment_for_review"]
    assert sorted((r["ticket_id"], r["comment_id"], r["reason"]) for r in review) == [
        (103, 5, "value in an HTML attribute"),
        (104, 6, "redaction refused (422)"),
    ]
    assert "review: ticket 104 comment 6: redaction refused (422)\n" in out
    _no_value(store.audit_text())
    _no_value(out)
    for comment_id in (1, 3, 4):
        _no_value(standin.comment(comment_id)["html_body"])


async def test_a_run_killed_midway_resumes_from_its_cursor_and_redacts_nothing_twice(
    store: Store, aiohttp_server
) -> None:
    standin = _standin()
    standin.fail_export_cursor_once = "c4"
    server = await aiohttp_server(standin.app())
    with pytest.raises(ZendeskError):
        await _run(store, str(server.make_url("")))
    assert await _saved_cursor(store) == "c4"  # in the vault's database, not a file
    assert not (store.root / "backfill-zendesk-acme.json").exists()
    assert set(standin.redactions) == {1, 3, 4, 6}  # tickets 101 to 104 were done

    result, _ = await _run(store, str(server.make_url("")))
    assert standin.export_queries[-2:] == ["cursor=c4", "cursor=c4"]
    assert result.tickets == 1  # only 105 was left after the page that failed
    assert all(times == 1 for times in standin.redactions.values())


async def test_dry_run_lists_what_would_change_and_changes_nothing(
    store: Store, aiohttp_server
) -> None:
    standin = _standin()
    before = _texts(standin)
    server = await aiohttp_server(standin.app())
    result, out = await _run(store, str(server.make_url("")), dry_run=True)
    assert _texts(standin) == before
    assert standin.redactions == {}
    assert result.comments_changed == 4
    assert "ticket 101 comment 1: would redact CREDIT_CARD 1" in out
    assert not (store.root / "backfill-zendesk-acme.json").exists()
    assert await _saved_cursor(store) is None
    _no_value(out)


async def _saved_cursor(store: Store) -> str | None:
    vault = await open_vault(store.config, create=False)
    try:
        return await vault.store.read_cursor("zendesk", "acme")
    finally:
        await vault.close()


async def test_an_old_cursor_file_is_moved_into_the_vault_once(
    store: Store, aiohttp_server
) -> None:
    from redactor.backfill.zendesk import adopt_legacy_cursor

    legacy = store.root / "backfill-zendesk-acme.json"
    legacy.write_text(json.dumps({"after_cursor": "c4"}))
    request = _request(store, "http://127.0.0.1:9")
    vault = await open_vault(store.config, create=False)
    try:
        assert await adopt_legacy_cursor(request, vault.store) is True
        assert not legacy.exists()
        assert await vault.store.read_cursor("zendesk", "acme") == "c4"
        assert await adopt_legacy_cursor(request, vault.store) is False
        # A file left behind by an old version never moves a newer database cursor back.
        await vault.store.save_cursor("zendesk", "acme", "c6", 2)
        legacy.write_text(json.dumps({"after_cursor": "c2"}))
        assert await adopt_legacy_cursor(request, vault.store) is True
        assert await vault.store.read_cursor("zendesk", "acme") == "c6"
    finally:
        await vault.close()
    # The run then resumes from the database's cursor: only ticket 105 is left after c4.
    standin = _standin()
    server = await aiohttp_server(standin.app())
    legacy.write_text(json.dumps({"after_cursor": "c4"}))
    vault = await open_vault(store.config, create=False)
    try:
        await vault.store.clear_cursor("zendesk", "acme")
        await adopt_legacy_cursor(_request(store, str(server.make_url(""))), vault.store)
    finally:
        await vault.close()
    result, _ = await _run(store, str(server.make_url("")))
    assert standin.export_queries[0] == "cursor=c4"
    assert result.tickets == 1


async def test_an_unreadable_old_cursor_file_stops_the_run_before_anything_changes(
    store: Store,
) -> None:
    from redactor.backfill.zendesk import adopt_legacy_cursor

    (store.root / "backfill-zendesk-acme.json").write_text("{not json")
    vault = await open_vault(store.config, create=False)
    try:
        with pytest.raises(ZendeskError, match="remove it to start over"):
            await adopt_legacy_cursor(_request(store, "http://127.0.0.1:9"), vault.store)
        assert await vault.store.read_cursor("zendesk", "acme") is None
    finally:
        await vault.close()


def test_credentials_come_from_the_environment_only() -> None:
    assert credentials_from({}) is None
    creds = credentials_from(
        {"REDACTOR_ZENDESK_EMAIL": EMAIL, "REDACTOR_ZENDESK_API_TOKEN": API_TOKEN}
    )
    assert creds == CREDENTIALS
    assert API_TOKEN not in repr(creds)


def test_the_stand_in_refuses_a_rewrite_that_is_not_a_redaction() -> None:
    # The check the redaction test relies on can fail: markup changed beyond <redact>.
    from tests.backfill.zendesk_standin import _REDACT

    stored = "<p>card 1</p>"
    assert _REDACT.sub(lambda m: m.group(1), "<p>card <redact>1</redact></p>") == stored
    assert _REDACT.sub(lambda m: m.group(1), "<p>card <redact>1</redact> </p>") != stored


async def test_the_command_runs_with_credentials_from_the_environment(
    store: Store, aiohttp_server
) -> None:
    import asyncio
    import sys

    from tests.backfill.test_cli import _env

    standin = _standin()
    server = await aiohttp_server(standin.app())
    env = {
        **_env(store),
        "REDACTOR_ZENDESK_EMAIL": EMAIL,
        "REDACTOR_ZENDESK_API_TOKEN": API_TOKEN,
    }
    argv = [sys.executable, "-m", "redactor", "backfill", "zendesk", "--subdomain", "acme"]
    argv += ["--base-url", str(server.make_url("")), "--tenant", TENANT]

    async def run(environ: dict[str, str]) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        return proc.returncode or 0, out.decode(), err.decode()

    no_creds = {k: v for k, v in env.items() if not k.startswith("REDACTOR_ZENDESK")}
    code, _, err = await run(no_creds)
    assert code == 2
    assert "REDACTOR_ZENDESK_API_TOKEN" in err
    code, out, err = await run(env)
    assert code == 0, err
    assert "review: ticket 103 comment 5: value in an HTML attribute" in out
    assert "4 comments changed" in err
    assert API_TOKEN not in out + err
    _no_value(out + err)
    trail = (store.root / "audit-cli.jsonl").read_text()
    assert trail.count('"event":"backfill_zendesk"') == 2
    _no_value(trail)
    assert not (store.config.data_dir / "backfill-zendesk-acme.json").exists()
    assert await _saved_cursor(store) == "c6"


async def test_cursors_and_next_page_links_are_followed_as_zendesk_gives_them(
    store: Store, aiohttp_server
) -> None:
    # A real after_cursor is base64 (`+`, `/`, `=`): sent unencoded, `+` reads as a space and
    # the walk breaks. A real next_page names Zendesk's own host even behind --base-url: the
    # credentials must still only go to the root given.
    standin = _standin()
    standin.cursor_tail = "+/=="
    standin.next_page_host = "acme.zendesk.invalid"
    server = await aiohttp_server(standin.app())
    result, _ = await _run(store, str(server.make_url("")))
    assert (result.tickets, result.comments) == (5, 7)  # ticket 101's second comment page too
    assert standin.redactions == {1: 1, 3: 1, 4: 1, 6: 1}
    assert standin.hosts_called == {f"{server.host}:{server.port}"}
    assert await _saved_cursor(store) == "c6+/=="

    again, _ = await _run(store, str(server.make_url("")))  # resumes from the saved cursor
    assert standin.export_queries[-1] == "cursor=c6%2B/%3D%3D"
    assert again.tickets == 0


async def test_a_value_in_an_attachment_name_is_listed_for_a_human(
    store: Store, aiohttp_server
) -> None:
    standin = _standin()
    comment = standin.comment(7)
    comment["attachments"] = [
        {"id": 9001, "file_name": f"card {CARD_2}.pdf", "content_type": "application/pdf"}
    ]
    server = await aiohttp_server(standin.app())
    result, out = await _run(store, str(server.make_url("")))
    assert (105, 7, "value in an attachment's file name") in result.for_review
    assert "review: ticket 105 comment 7: value in an attachment's file name\n" in out
    assert 7 not in standin.redactions  # its text holds no value: nothing to redact there
    _no_value(out)
    _no_value(store.audit_text())


async def test_an_agent_not_allowed_to_redact_stops_the_run_and_says_why(
    store: Store, aiohttp_server
) -> None:
    # 403 is about the account, not one comment: listing every comment for review would
    # bury the one thing to fix. The run stops before its first cursor, saying what to do.
    import asyncio
    import sys

    from tests.backfill.test_cli import _env

    standin = _standin()
    standin.forbid_redactions = True
    server = await aiohttp_server(standin.app())
    env = {**_env(store), "REDACTOR_ZENDESK_EMAIL": EMAIL, "REDACTOR_ZENDESK_API_TOKEN": API_TOKEN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redactor",
        "backfill",
        "zendesk",
        "--subdomain",
        "acme",
        "--base-url",
        str(server.make_url("")),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 1
    assert "Zendesk refused the redaction (403): the agent must be allowed to redact" in (
        err.decode()
    )
    assert b"review:" not in out
    assert standin.redactions == {}
    assert await _saved_cursor(store) is None  # the next run starts on the same page


async def test_a_value_in_a_ticket_subject_is_listed_for_a_human(
    store: Store, aiohttp_server
) -> None:
    standin = _standin()
    standin.subjects[105] = f"Refund to card {CARD}"
    server = await aiohttp_server(standin.app())
    result, out = await _run(store, str(server.make_url("")))
    assert (105, None, "value in the ticket's subject") in result.for_review
    assert "review: ticket 105: value in the ticket's subject\n" in out
    records = [json.loads(line) for line in store.audit_text().splitlines()]
    assert any(
        r.get("event") == "zendesk_comment_for_review"
        and r["ticket_id"] == 105
        and r["comment_id"] is None
        for r in records
    )
    _no_value(out)
    _no_value(store.audit_text())
