"""POST /v1/resolve and /v1/reveal-text over HTTP: levels, denials, batches and the audit."""

from __future__ import annotations

import secrets

import asyncpg
import pytest
import structlog

from tests.agent.conftest import (
    CARD,
    CARD_DIGITS,
    OTHER_TENANT,
    SSN,
    SSN_DIGITS,
    Stack,
    assert_no_raw,
)
from tests.vault.conftest import PG_DSN

GUESSED = "tok_v1_card_abcdefghijklmnopqrst_4242"
PURPOSE = "customer disputes a charge, ticket SUP-1234"


async def _resolve(stack: Stack, body: dict, **claim) -> tuple[int, dict]:
    resp = await stack.agent.post("/v1/resolve", json=body, headers=stack.auth(**claim))
    return resp.status, await resp.json()


async def test_masked_agent_sees_last_four_of_card_and_ssn(stack: Stack) -> None:
    card, ssn = await stack.tokenize(f"card {CARD} ssn {SSN}")
    status, doc = await _resolve(stack, {"tokens": [card, ssn]})
    assert status == 200
    assert doc["results"] == [
        {"token": card, "level": "masked", "value": "•••• 4242"},
        {"token": ssn, "level": "masked", "value": "•••-••-4399"},
    ]
    assert_no_raw(str(doc))


async def test_supervisor_with_purpose_sees_full_number(stack: Stack) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    status, doc = await _resolve(
        stack, {"tokens": [card], "purpose": PURPOSE}, roles=["supervisor"]
    )
    assert status == 200
    assert doc["results"] == [{"token": card, "level": "full", "value": CARD_DIGITS}]


async def test_full_reveal_without_purpose_is_denied_with_reason(stack: Stack) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    status, doc = await _resolve(stack, {"tokens": [card]}, roles=["supervisor"])
    assert status == 200
    assert doc["results"] == [{"token": card, "level": "none", "denied": "purpose_required"}]


async def test_supervisor_may_ask_for_masked_without_purpose(stack: Stack) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    status, doc = await _resolve(stack, {"tokens": [card], "level": "masked"}, roles=["supervisor"])
    assert status == 200
    assert doc["results"][0]["value"] == "•••• 4242"


async def test_use_level_shows_the_masked_form_only(stack: Stack) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    _, doc = await _resolve(stack, {"tokens": [card]}, roles=["billing_tool"])
    assert doc["results"] == [{"token": card, "level": "use", "value": "•••• 4242"}]


async def test_batch_answers_each_token_with_one_vault_call(stack: Stack, monkeypatch) -> None:
    card, ssn = await stack.tokenize(f"card {CARD} ssn {SSN}")
    vault = stack.resources.vault
    calls: list[list[str]] = []
    original = vault.resolve_many

    async def counting(tenant, tokens):
        calls.append(list(tokens))
        return await original(tenant, tokens)

    monkeypatch.setattr(vault, "resolve_many", counting)
    status, doc = await _resolve(
        stack, {"tokens": [card, GUESSED, ssn, "not a token", card]}, roles=["card_only"]
    )
    assert status == 200
    assert [r.get("denied") or r["value"] for r in doc["results"]] == [
        "•••• 4242",
        "not_found",
        "no_permission",
        "invalid_format",
        "•••• 4242",
    ]
    # Only the tokens policy grants go to the vault, de-duplicated, in one call.
    assert calls == [[card, GUESSED]]


async def test_other_tenants_token_and_guessed_token_get_the_same_answer(stack: Stack) -> None:
    [foreign] = await stack.tokenize(f"card {CARD}", tenant=OTHER_TENANT)
    status, doc = await _resolve(stack, {"tokens": [foreign, GUESSED]})
    assert status == 200
    foreign_result, guessed_result = doc["results"]
    assert foreign_result == {"token": foreign, "level": "none", "denied": "not_found"}
    assert guessed_result == {"token": GUESSED, "level": "none", "denied": "not_found"}


async def test_denial_without_permission_does_not_say_whether_the_token_exists(
    stack: Stack,
) -> None:
    [ssn] = await stack.tokenize(f"ssn {SSN}")
    guessed_ssn = "tok_v1_ssn_zyxwvutsrqponmlkjihg"
    _, doc = await _resolve(stack, {"tokens": [ssn, guessed_ssn]}, roles=["card_only"])
    assert [r["denied"] for r in doc["results"]] == ["no_permission", "no_permission"]


async def test_erased_token_answers_erased(stack: Stack) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    assert await stack.resources.vault.erase_token("acme", card)
    _, doc = await _resolve(stack, {"tokens": [card]})
    assert doc["results"] == [{"token": card, "level": "none", "denied": "erased"}]


async def test_rate_limited_full_reveals_get_429_with_retry_after(stack: Stack) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    headers = stack.auth(roles=["supervisor"], sub="sup-1")
    body = {"tokens": [card], "purpose": "CHARGEBACK_DISPUTE"}
    for _ in range(3):
        resp = await stack.agent.post("/v1/resolve", json=body, headers=headers)
        assert resp.status == 200
    resp = await stack.agent.post("/v1/resolve", json=body, headers=headers)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "600"
    assert (await resp.json())["error"] == "rate_limited"
    assert_no_raw(await resp.read())


async def test_every_decision_is_audited_without_values(stack: Stack) -> None:
    card, ssn = await stack.tokenize(f"card {CARD} ssn {SSN}")
    resp = await stack.agent.post(
        "/v1/resolve",
        json={"tokens": [card, ssn], "purpose": PURPOSE, "ticket": "SUP-1234"},
        headers={**stack.auth(roles=["supervisor"], sub="sup-7"), "X-Request-ID": "req-audit-1"},
    )
    assert resp.status == 200
    events = [e for e in stack.audit() if e["request_id"] == "req-audit-1"]
    assert {(e["event"], e["token"], e["level"], e["reason"]) for e in events} == {
        ("token_revealed", card, "full", "granted"),
        ("token_revealed", ssn, "full", "granted"),
    }
    for event in events:
        assert event["subject"] == "sup-7"
        assert event["tenant"] == "acme"
        assert event["purpose"] == PURPOSE
        assert event["ticket"] == "SUP-1234"
        assert event["token_id"]
    assert_no_raw(stack.audit_path.read_text())


async def test_card_number_in_a_purpose_never_reaches_the_audit_log(stack: Stack) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    purpose = f"customer read out {CARD} and 4242-4242-4242-4243 on the phone"
    _, doc = await _resolve(stack, {"tokens": [card], "purpose": purpose}, roles=["supervisor"])
    assert doc["results"][0]["value"] == CARD_DIGITS
    [event] = [e for e in stack.audit() if e.get("purpose")]
    assert "[CREDIT_CARD]" in event["purpose"]
    assert "4242-4242-4242-4243" not in event["purpose"]
    assert_no_raw(stack.audit_path.read_text())


async def test_reveal_text_replaces_only_what_the_caller_may_see(stack: Stack) -> None:
    card, ssn = await stack.tokenize(f"card {CARD} ssn {SSN}")
    text = f"Customer card {card}, SSN {ssn}, old {card}; unknown tok_v1_ssn_zyxwvutsrqponmlkjihg."
    resp = await stack.agent.post(
        "/v1/reveal-text", json={"text": text}, headers=stack.auth(roles=["card_only"])
    )
    assert resp.status == 200
    doc = await resp.json()
    assert doc["text"] == (
        f"Customer card •••• 4242, SSN {ssn}, old •••• 4242; unknown tok_v1_ssn_zyxwvutsrqponmlkjihg."
    )
    assert {t["token"]: t.get("denied", t["level"]) for t in doc["tokens"]} == {
        card: "masked",
        ssn: "no_permission",
        "tok_v1_ssn_zyxwvutsrqponmlkjihg": "no_permission",
    }


async def test_reveal_text_full_for_supervisor_with_purpose(stack: Stack) -> None:
    [ssn] = await stack.tokenize(f"ssn {SSN}")
    resp = await stack.agent.post(
        "/v1/reveal-text",
        json={"text": f"SSN: {ssn}", "purpose": "CHARGEBACK_DISPUTE"},
        headers=stack.auth(roles=["supervisor"]),
    )
    assert (await resp.json())["text"] == f"SSN: {SSN_DIGITS}"


async def test_malformed_requests_get_400_with_a_code(stack: Stack) -> None:
    for body in (
        b"{",
        b"[]",
        b'{"tokens": []}',
        b'{"tokens": [1]}',
        b'{"tokens": ["a"], "x": 1}',
        b'{"tokens": ["a"], "level": "root"}',
        b'{"tokens": ["a"], "purpose": 5}',
    ):
        resp = await stack.agent.post(
            "/v1/resolve", data=body, headers={**stack.auth(), "Content-Type": "application/json"}
        )
        assert resp.status == 400
        assert (await resp.json())["error"] == "request_invalid"


async def test_too_many_tokens_is_refused(stack: Stack) -> None:
    tokens = [f"tok_v1_ssn_{chr(97 + i % 26) * 19}{chr(97 + i // 26)}" for i in range(101)]
    status, doc = await _resolve(stack, {"tokens": tokens})
    assert status == 400
    assert doc["error"] == "too_many_tokens"


async def test_no_value_in_any_log_line(stack: Stack) -> None:
    card, ssn = await stack.tokenize(f"card {CARD} ssn {SSN}")
    with structlog.testing.capture_logs() as logs:
        await _resolve(
            stack, {"tokens": [card, ssn], "purpose": f"verify {CARD}"}, roles=["supervisor"]
        )
    assert logs
    assert_no_raw(repr(logs))


async def test_a_reveal_that_cannot_be_audited_is_refused_and_shows_no_value(
    stack: Stack,
) -> None:
    [card] = await stack.tokenize(f"card {CARD}")
    await stack.resources.audit.close()  # the trail is gone from under the server
    status, doc = await _resolve(
        stack, {"tokens": [card], "purpose": PURPOSE}, roles=["supervisor"]
    )
    assert status == 503
    assert doc["error"] == "audit_unavailable"
    assert_no_raw(str(doc))
    assert "4242" not in str(doc)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_stack(request: pytest.FixtureRequest, start_stack, tmp_path):
    """The agent stack on a SQLite vault and on a PostgreSQL one (a random schema)."""
    if request.param == "sqlite":
        stack = await start_stack()
        yield stack, f"sqlite:///{tmp_path / 'data' / 'vault.db'}", None
        return
    schema = "agent_test_" + secrets.token_hex(6)
    try:
        yield await start_stack(vault_url=f"{PG_DSN}?schema={schema}"), PG_DSN, schema
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def _swap_sealed(url: str, schema: str | None, source: str, target: str) -> None:
    """Put `source`'s ciphertext under `target` directly in the store (tampering)."""
    if schema is None:
        import aiosqlite

        async with aiosqlite.connect(url.removeprefix("sqlite:///"), isolation_level=None) as db:
            rows = await db.execute_fetchall("SELECT sealed FROM tokens WHERE token = ?", (source,))
            sealed = next(iter(rows))[0]
            await db.execute("UPDATE tokens SET sealed = ? WHERE token = ?", (sealed, target))
        return
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        sealed = await conn.fetchval("SELECT sealed FROM tokens WHERE token = $1", source)
        await conn.execute("UPDATE tokens SET sealed = $1 WHERE token = $2", sealed, target)
    finally:
        await conn.close()


async def test_unreadable_tokens_get_their_own_result_and_audit_record(store_stack) -> None:
    """A corrupt row, an erased and an unknown token among good ones: 200, one result each."""
    stack, url, schema = store_stack
    card, ssn = await stack.tokenize(f"card {CARD} ssn {SSN}")
    [other] = await stack.tokenize("card 5555 5555 5555 4444")
    [erased] = await stack.tokenize("card 4000 0566 5566 5556")
    await stack.resources.vault.erase_token("acme", erased)
    # The other card's ciphertext under this token: it must fail, never show 5555.
    await _swap_sealed(url, schema, other, card)
    body = {"tokens": [card, ssn, erased, GUESSED]}
    status, doc = await _resolve(stack, body)
    assert status == 200
    assert doc["results"] == [
        {"token": card, "level": "none", "denied": "corrupt"},
        {"token": ssn, "level": "masked", "value": "•••-••-4399"},
        {"token": erased, "level": "none", "denied": "erased"},
        {"token": GUESSED, "level": "none", "denied": "not_found"},
    ]
    reasons = {r["token"]: r["reason"] for r in stack.audit() if r.get("route") == "resolve"}
    # One audit record per token, each with its own outcome.
    assert reasons == {card: "corrupt", ssn: "granted", erased: "erased", GUESSED: "not_found"}

    resp = await stack.agent.post(
        "/v1/reveal-text", json={"text": f"cards {card} and {ssn}"}, headers=stack.auth()
    )
    assert resp.status == 200
    text = await resp.json()
    assert text["text"] == f"cards {card} and •••-••-4399"
    assert {"token": card, "level": "none", "denied": "corrupt"} in text["tokens"]
    assert_no_raw(str(doc) + str(text) + str(stack.audit()))
    assert "5555555555554444" not in str(doc) + str(text)
    # Every other token still resolves; the same value still gets the same token.
    assert await stack.tokenize(f"card {CARD} ssn {SSN}") == [card, ssn]
    assert await stack.tokenize("card 5555 5555 5555 4444") == [other]
