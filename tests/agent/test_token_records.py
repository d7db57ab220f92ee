"""One true record per token: on /out/, /v1/resolve and /v1/reveal-text, every token a request
names gets exactly one audit record stating its own outcome and reason, whatever the other
tokens of the request came to."""

from __future__ import annotations

from itertools import combinations

import pytest

from tests.agent.conftest import CARD, SSN, Stack, assert_no_raw

UNKNOWN = "tok_v1_card_abcdefghijklmnopqrst_4242"  # well-formed, never issued
KINDS = ("granted", "denied", "unknown")
# Every mix of two or three kinds, and each kind alone.
MIXES = [m for n in (1, 2, 3) for m in combinations(KINDS, n)]
TOKEN_EVENTS = frozenset(
    {"token_revealed", "token_denied", "token_used", "token_use_denied", "token_not_used"}
)
# /v1/resolve and /v1/reveal-text answer per token: each token's outcome is its own.
# The card_only role may see cards masked and SSNs not at all.
PER_TOKEN = {
    "granted": ("token_revealed", "masked", "granted"),
    "denied": ("token_denied", "none", "no_permission"),
    "unknown": ("token_denied", "none", "not_found"),
}
NOT_USED = ("token_not_used", "none", "other_token_refused")


def _out_expected(mix: tuple[str, ...]) -> tuple[int, dict[str, tuple[str, str, str]]]:
    """/out/ is all or nothing (billing_tool may use cards, not SSNs): the answer's status and
    each token's record. A policy denial is decided before the vault is asked, so a token
    next to a denied one is not looked up: it was not used because of the other."""
    if "denied" in mix:
        status = 403
        records = dict.fromkeys(mix, NOT_USED)
        records["denied"] = ("token_use_denied", "none", "no_permission")
    elif "unknown" in mix:
        status = 422
        records = dict.fromkeys(mix, NOT_USED)
        records["unknown"] = ("token_use_denied", "none", "not_found")
    else:
        status = 200
        records = {"granted": ("token_used", "use", "granted")}
    return status, records


async def _tokens(stack: Stack) -> dict[str, str]:
    card, ssn = await stack.tokenize(f"card {CARD} ssn {SSN}")
    return {"granted": card, "denied": ssn, "unknown": UNKNOWN}


def _records(stack: Stack) -> list[dict]:
    return [e for e in stack.audit() if e["event"] in TOKEN_EVENTS]


@pytest.mark.parametrize("mix", MIXES, ids="+".join)
@pytest.mark.parametrize("endpoint", ["resolve", "reveal_text", "out"])
async def test_each_token_gets_one_record_with_its_own_outcome(
    stack: Stack, endpoint: str, mix: tuple[str, ...]
) -> None:
    tokens = await _tokens(stack)
    named = {kind: tokens[kind] for kind in mix}
    if endpoint == "out":
        status, expected = _out_expected(mix)
        resp = await stack.agent.post(
            "/out/processor/v1/refunds",
            json={f"field_{kind}": token for kind, token in named.items()},
            headers=stack.auth(roles=["billing_tool"]),
        )
    else:
        status, expected = 200, {kind: PER_TOKEN[kind] for kind in mix}
        path = "/v1/resolve" if endpoint == "resolve" else "/v1/reveal-text"
        body = (
            {"tokens": list(named.values())}
            if endpoint == "resolve"
            else {"text": " and ".join(named.values())}
        )
        resp = await stack.agent.post(path, json=body, headers=stack.auth(roles=["card_only"]))
    assert resp.status == status, await resp.text()
    assert_no_raw(await resp.read())

    records = _records(stack)
    by_token = {r["token"]: r for r in records}
    assert len(records) == len(by_token) == len(mix)  # one record per token, no more
    got = {
        kind: (by_token[token]["event"], by_token[token]["level"], by_token[token]["reason"])
        for kind, token in named.items()
    }
    assert got == expected
    request_id = resp.headers.get("X-Request-ID") or (await resp.json())["request_id"]
    assert {r["request_id"] for r in records} == {request_id}
    assert_no_raw(stack.audit_path.read_text())


async def test_a_refused_outbound_request_sends_nothing_for_the_permitted_token(
    stack: Stack, processor
) -> None:
    tokens = await _tokens(stack)
    resp = await stack.agent.post(
        "/out/processor/v1/refunds",
        json={"card": tokens["granted"], "ssn": tokens["denied"]},
        headers=stack.auth(roles=["billing_tool"]),
    )
    assert resp.status == 403
    assert processor.received == []
    # The report counts the refused SSN as a denial, and the card as neither used nor denied.
    from redactor.audit.report import build_report

    report = build_report(stack.audit())
    assert [(d.reason, d.attempts) for d in report.denials] == [("no_permission", 1)]
    assert report.reveals == []
