"""Revoking agent tokens: `redactor agents revoke | list-revoked | unrevoke` write the list in
the vault's database, and the agent API refuses a revoked token (401 token_revoked, audited)
once its process has polled the list; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import pytest

from redactor.agent.revocations import RevocationsUnavailableError, RevocationWatch
from redactor.cli import main
from tests.agent.conftest import CARD, RAW_VALUES, TENANT, Stack, assert_no_raw
from tests.vault.conftest import PG_DSN
from vault.errors import VaultUnavailableError
from vault.revocations import Revocation, RevocationSet


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def revoking(
    request: pytest.FixtureRequest, start_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A stack, and the environment `redactor agents ...` needs to reach its vault."""
    for name in ("REDACTOR_KEY_FILE", "REDACTOR_KEYS", "REDACTOR_CONFIG", "REDACTOR_OPERATOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDACTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REDACTOR_DEV", "1")
    monkeypatch.setenv("REDACTOR_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    if request.param == "sqlite":
        monkeypatch.delenv("REDACTOR_VAULT_URL", raising=False)
        yield await start_stack()
        return
    schema = "agent_rv_" + secrets.token_hex(6)
    url = f"{PG_DSN}?schema={schema}"
    monkeypatch.setenv("REDACTOR_VAULT_URL", url)
    try:
        yield await start_stack(vault_url=url)
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def agents(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`redactor agents ARGV` (in a thread: it runs event loops of its own)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["agents", *argv])
    out, err = capsys.readouterr()
    return code, out, err


async def seen(stack: Stack) -> None:
    """What the background poll does every second, now."""
    assert stack.resources.agent is not None
    await stack.resources.agent.revocations.poll()


async def resolve(stack: Stack, **claim: Any) -> tuple[int, dict[str, Any], str | None]:
    [card] = await stack.tokenize(f"card {CARD}", tenant=claim.get("tenant", TENANT))
    resp = await stack.agent.post(
        "/v1/resolve", json={"tokens": [card]}, headers=stack.auth(**claim)
    )
    return resp.status, await resp.json(), resp.headers.get("WWW-Authenticate")


def cli_records(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "audit-cli.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] != "audit_checkpoint"]


async def test_a_token_revoked_by_jti_is_refused_with_its_own_code_and_audited(
    revoking: Stack, capsys, tmp_path: Path
) -> None:
    stack = revoking
    assert (await resolve(stack, jti="stolen-1"))[0] == 200
    code, out, _ = await agents(
        capsys, "revoke", "--jti", "stolen-1", "--operator", "alice",
        "--reason", f"leaked in a ticket with card {CARD}",
    )  # fmt: skip
    assert code == 0
    assert "revoked jti stolen-1 in every tenant until" in out
    assert "within 5 s" in out
    await seen(stack)

    status, body, challenge = await resolve(stack, jti="stolen-1", sub="agent-7")
    assert (status, body["error"]) == (401, "token_revoked")
    assert challenge == 'Bearer realm="redactor", error="invalid_token"'
    # Another token of the same caller still works.
    assert (await resolve(stack, jti="fresh-2", sub="agent-7"))[0] == 200

    refusals = [e for e in stack.audit() if e["event"] == "agent_unauthenticated"]
    assert [(e["reason"], e["subject"], e["tenant"], e["token_id"]) for e in refusals] == [
        ("token_revoked", "agent-7", TENANT, "stolen-1")
    ]
    records = cli_records(tmp_path)
    assert [(r["event"], r["phase"]) for r in records] == [
        ("agent_revoke", "started"),
        ("agent_revoke", "finished"),
    ]
    assert {r["operator"] for r in records} == {"alice"}
    assert records[1]["jti"] == "stolen-1"
    assert records[1]["reason"] == "leaked in a ticket with card [DIGITS]"
    assert records[1]["expires_at"].endswith(" UTC")
    assert records[1]["replaced"] is False
    # The card number in the reason reached neither the trail, the list nor the output.
    assert_no_raw((tmp_path / "audit-cli.jsonl").read_text())
    code, listing, _ = await agents(capsys, "list-revoked")
    assert code == 0
    assert "stolen-1" in listing
    assert "[DIGITS]" in listing
    for raw in RAW_VALUES:
        assert raw not in listing + out
    metrics = stack.resources.metrics.exposition().decode()
    assert 'redactor_agent_revoked_refusals_total{by="jti"} 1.0' in metrics


async def test_a_subject_revoked_in_one_tenant_leaves_other_subjects_and_tenants_alone(
    revoking: Stack, capsys
) -> None:
    stack = revoking
    code, out, _ = await agents(
        capsys, "revoke", "--subject", "agent-9", "--tenant", TENANT, "--for", "2h"
    )
    assert code == 0
    assert "revoked subject agent-9 in tenant acme until" in out
    assert "(for 1h 59m" in out or "(for 2h 0m" in out
    await seen(stack)
    assert (await resolve(stack, sub="agent-9", jti="a"))[1].get("error") == "token_revoked"
    assert (await resolve(stack, sub="agent-9", jti="b"))[1].get("error") == "token_revoked"
    assert (await resolve(stack, sub="agent-10"))[0] == 200
    assert (await resolve(stack, sub="agent-9", tenant="globex"))[0] == 200

    # Without --tenant the subject is refused in every tenant.
    assert (await agents(capsys, "revoke", "--subject", "agent-10", "--for", "1h"))[0] == 0
    await seen(stack)
    assert (await resolve(stack, sub="agent-10"))[0] == 401
    assert (await resolve(stack, sub="agent-10", tenant="globex"))[0] == 401
    metrics = stack.resources.metrics.exposition().decode()
    assert 'redactor_agent_revoked_refusals_total{by="subject"} 4.0' in metrics


async def test_unrevoke_restores_access_and_is_audited(revoking: Stack, capsys, tmp_path) -> None:
    stack = revoking
    assert (await agents(capsys, "revoke", "--subject", "agent-3", "--for", "1d"))[0] == 0
    await seen(stack)
    assert (await resolve(stack, sub="agent-3"))[0] == 401
    code, out, _ = await agents(capsys, "unrevoke", "--subject", "agent-3", "--operator", "bob")
    assert code == 0
    assert "unrevoked subject agent-3 in every tenant" in out
    await seen(stack)
    assert (await resolve(stack, sub="agent-3"))[0] == 200
    assert (await agents(capsys, "list-revoked"))[1] == "no revocations in force\n"
    unrevokes = [r for r in cli_records(tmp_path) if r["event"] == "agent_unrevoke"]
    assert [(r["phase"], r["operator"], r["subject"]) for r in unrevokes] == [
        ("started", "bob", "agent-3"),
        ("finished", "bob", "agent-3"),
    ]
    assert unrevokes[1]["removed"] is True


async def test_a_revocation_lifts_when_it_expires(
    revoking: Stack, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = revoking
    assert stack.resources.agent is not None
    watch = stack.resources.agent.revocations
    until = int(time.time()) + 600
    assert (await agents(capsys, "revoke", "--jti", "short-1", "--until", str(until)))[0] == 0
    await seen(stack)
    assert (await resolve(stack, jti="short-1"))[0] == 401
    # Expiry needs no poll: every process compares it with its own clock (here moved on past
    # the expiry; waiting for a real one would race a loaded machine).
    monkeypatch.setattr(watch, "_now", lambda: until + 1.0)
    assert (await resolve(stack, jti="short-1"))[0] == 200

    # An entry past its expiry is left out of the list in force, kept a day for --all.
    store = stack.resources.vault.store
    gone = Revocation("jti", "", "lapsed-1", int(time.time()) - 60, "op", int(time.time()) - 120)
    await store.add_revocation(gone)
    _, listing, _ = await agents(capsys, "list-revoked", "--all")
    assert "lapsed-1" in listing
    assert "expired " in listing
    _, listing, _ = await agents(capsys, "list-revoked")
    assert "lapsed-1" not in listing
    assert "short-1" in listing


async def test_the_background_poll_picks_a_revocation_up_by_itself(revoking: Stack, capsys) -> None:
    stack = revoking
    assert (await agents(capsys, "revoke", "--jti", "polled-1"))[0] == 0
    # The promise is 5 s; 20 only bounds a broken test (no assertion of speed).
    for _ in range(100):
        if (await resolve(stack, jti="polled-1"))[0] == 401:
            break
        await asyncio.sleep(0.2)
    assert (await resolve(stack, jti="polled-1"))[0] == 401


async def test_revoke_commands_refuse_bad_arguments_clearly(revoking: Stack, capsys) -> None:
    code, _, err = await agents(capsys, "unrevoke", "--jti", "never-revoked")
    assert code == 1
    assert "error: not_revoked: no revocation of that jti" in err
    for argv, message in (
        (("revoke", "--jti", "j", "--subject", "s"), "not allowed with argument"),
        (("revoke", "--for", "1h"), "one of the arguments --jti --subject is required"),
        (("unrevoke",), "one of the arguments --jti --subject is required"),
    ):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            await asyncio.to_thread(main, ["agents", *argv])
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
    for argv, message in (
        (("--subject", "s"), "--subject needs --for DURATION or --until TIME"),
        (("--jti", "j", "--tenant", TENANT), "--tenant goes with --subject"),
        (("--jti", "j", "--until", "2020-01-01"), "--until is in the past"),
        (("--jti", "j", "--until", "next tuesday"), "--until takes a date and time"),
        (("--jti", "j", "--for", "3y"), "--for takes 90d, 12h, 30m or 45s"),
        (("--subject", "s", "--tenant", "../x", "--for", "1h"), "tenant_invalid"),
        (("--subject", " s", "--for", "1h"), "must be printable, without surrounding spaces"),
    ):
        code, _, err = await agents(capsys, "revoke", *argv)
        assert code == 2, argv
        assert message in err, (argv, err)
    assert (await agents(capsys, "list-revoked"))[1] == "no revocations in force\n"


async def test_revoking_again_replaces_the_entry(revoking: Stack, capsys, tmp_path) -> None:
    assert (await agents(capsys, "revoke", "--jti", "j-5", "--for", "1h"))[0] == 0
    code, out, _ = await agents(capsys, "revoke", "--jti", "j-5", "--for", "3d")
    assert code == 0
    assert "revoked again" in out
    _, listing, _ = await agents(capsys, "list-revoked")
    assert listing.count("j-5") == 1
    assert "in 2d 23h" in listing
    assert cli_records(tmp_path)[-1]["replaced"] is True


async def test_a_jti_without_for_lasts_the_configured_token_lifetime(
    start_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    stack = await start_stack(revocations={"jti_ttl": "2h", "poll_interval_s": 0.5})
    assert stack.resources.agent is not None
    assert stack.resources.agent.settings.revocations.poll_interval_s == 0.5
    monkeypatch.setenv("REDACTOR_DEV", "1")
    monkeypatch.delenv("REDACTOR_VAULT_URL", raising=False)
    config = tmp_path / "config.yaml"  # the file the stack was started with
    code, out, _ = await agents(
        capsys, "revoke", "--jti", "j-6", "--config", str(config),
        "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    assert code == 0, out
    assert "(for 1h 59m" in out or "(for 2h 0m" in out


async def test_a_jti_in_the_config_file_gets_the_same_answer(start_stack) -> None:
    stack = await start_stack(revoked_jtis=["cfg-1"])
    status, body, _ = await resolve(stack, jti="cfg-1")
    assert (status, body["error"]) == (401, "token_revoked")
    assert (await resolve(stack, jti="cfg-2"))[0] == 200


async def test_a_revoked_token_cannot_read_the_security_console(
    revoking: Stack, capsys, aiohttp_client
) -> None:
    from redactor.ops.admin import build_admin_app

    stack = revoking
    admin = await aiohttp_client(build_admin_app(stack.resources))
    headers = stack.auth(roles=["security"], sub="sec-1")
    assert (await admin.get("/security/api/summary", headers=headers)).status == 200
    assert (await agents(capsys, "revoke", "--subject", "sec-1", "--for", "1h"))[0] == 0
    await seen(stack)
    assert (await admin.get("/security/api/summary", headers=headers)).status == 401
    events = [(e["event"], e["reason"], e["subject"]) for e in stack.audit()]
    assert events[-1] == ("console_unauthenticated", "token_revoked", "sec-1")


def test_the_poll_interval_cannot_exceed_two_seconds(agent_settings) -> None:
    from redactor.errors import ConfigError

    with pytest.raises(ConfigError, match="poll_interval_s"):
        agent_settings("http://127.0.0.1:9/", None, revocations={"poll_interval_s": 3})


async def test_a_stale_revocation_list_fails_agent_calls_closed(stack: Stack, monkeypatch) -> None:
    assert stack.resources.agent is not None

    def stale(*_args: object) -> None:
        raise RevocationsUnavailableError()

    monkeypatch.setattr(stack.resources.agent.revocations, "check", stale)
    status, body, _ = await resolve(stack)
    assert (status, body["error"]) == (503, "revocations_unavailable")


async def test_the_openapi_document_lists_the_revocation_answers(revoking: Stack, capsys) -> None:
    stack = revoking
    doc = await (await stack.agent.get("/openapi.json")).json()
    responses = doc["paths"]["/v1/resolve"]["post"]["responses"]
    assert "token_revoked" in responses["401"]["description"]
    assert "revocations_unavailable" in responses["503"]["description"]
    assert (await agents(capsys, "revoke", "--jti", "doc-1"))[0] == 0
    await seen(stack)
    status, body, _ = await resolve(stack, jti="doc-1")
    assert status == 401
    jsonschema.validate(body, doc["components"]["schemas"]["Error"])


async def test_a_server_that_cannot_read_the_list_refuses_agent_calls_until_it_can(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stack.resources.vault.store
    real = store.revocation_version

    async def unreachable() -> int:
        raise VaultUnavailableError("test")

    assert (await resolve(stack))[0] == 200
    monkeypatch.setattr(store, "revocation_version", unreachable)
    # Refused from 5 s after the last good read (the bound only stops a broken test).
    statuses = []
    for _ in range(150):
        status, body, _ = await resolve(stack)
        statuses.append(status)
        if status == 503:
            assert body["error"] == "revocations_unavailable"
            break
        await asyncio.sleep(0.2)
    assert statuses[-1] == 503
    monkeypatch.setattr(store, "revocation_version", real)
    for _ in range(150):
        if (await resolve(stack))[0] == 200:
            break
        await asyncio.sleep(0.2)
    assert (await resolve(stack))[0] == 200


# --- one process's copy of the list, on its own ---------------------------------------------


class FlakyStore:
    """The three reads the watch makes; `down` makes them fail as an unreachable vault."""

    def __init__(self) -> None:
        self.version = 1
        self.entries = [Revocation("subject", "", "agent-1", 2_000_000_000, "op", 0)]
        self.down = False

    async def revocation_version(self) -> int:
        if self.down:
            raise VaultUnavailableError("test")
        return self.version

    async def read_revocations(self, now: int | None) -> list[Revocation]:
        return list(self.entries)

    async def purge_revocations(self, before: int) -> int:
        return 0


async def test_a_process_that_cannot_read_the_list_for_the_delay_refuses_every_call() -> None:
    store = FlakyStore()
    clock = [1000.0]
    watch = RevocationWatch(
        store,  # type: ignore[arg-type]
        poll_interval_s=1.0,
        timeout_s=2.0,
        monotonic=lambda: clock[0],
    )
    await watch.poll()
    assert watch.check("j", TENANT, "agent-1") == "subject"
    assert watch.check("j", TENANT, "agent-2") is None
    store.down = True
    clock[0] += 4.9
    with pytest.raises(VaultUnavailableError):
        await watch.poll()
    assert watch.check("j", TENANT, "agent-2") is None  # within the delay: the copy holds
    clock[0] += 0.2
    with pytest.raises(RevocationsUnavailableError):
        watch.check("j", TENANT, "agent-2")
    store.down = False
    store.entries = []
    store.version = 2
    await watch.poll()
    assert watch.check("j", TENANT, "agent-1") is None


def test_an_entry_refuses_until_its_expiry_and_only_its_tenant() -> None:
    entries = RevocationSet.of(
        [
            Revocation("jti", "", "j1", 100, "op", 0),
            Revocation("subject", "acme", "s1", 100, "op", 0),
            Revocation("subject", "", "s2", 100, "op", 0),
        ]
    )
    assert entries.match("j1", "globex", "x", 99.9) == "jti"
    assert entries.match("j1", "globex", "x", 100) is None
    assert entries.match(None, "acme", "s1", 50) == "subject"
    assert entries.match(None, "globex", "s1", 50) is None
    assert entries.match(None, "globex", "s2", 50) == "subject"
    assert entries.match("j2", "acme", "s3", 50) is None
