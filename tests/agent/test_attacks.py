"""Attacks on the agent API through HTTP. Every forged, stale or foreign credential gets the
same 401 (body, headers) whether or not the tokens it asks for exist; the reason is audited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.agent.conftest import Stack, assert_no_raw, claims

GUESSED = "tok_v1_card_abcdefghijklmnopqrst_4242"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict, payload: dict, signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}.{_b64(signature)}"


def _hs256_with_public_key(stack: Stack) -> str:
    # The classic key-confusion attack: HMAC "signed" with the RSA public key's PEM as secret.
    pem = (
        stack.keys["rsa1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa1"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims()).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _tampered(stack: Stack) -> str:
    # A genuine support_agent token whose payload is swapped for one that claims supervisor.
    header, _payload, signature = stack.token().split(".")
    forged = _b64(json.dumps(claims(roles=["supervisor"])).encode())
    return f"{header}.{forged}.{signature}"


def _attacker_signed(attacker_key) -> str:
    return jwt.encode(claims(), attacker_key, algorithm="RS256", headers={"kid": "rsa1"})


ATTACKS = {
    "expired": ("token_expired", lambda s, a: s.token(exp=int(time.time()) - 3600)),
    "not_yet_valid": ("token_not_yet_valid", lambda s, a: s.token(nbf=int(time.time()) + 3600)),
    "wrong_issuer": ("wrong_issuer", lambda s, a: s.token(iss="https://evil.example/")),
    "wrong_audience": ("wrong_audience", lambda s, a: s.token(aud="someone-else")),
    "alg_none": (
        "algorithm_not_allowed",
        lambda s, a: _forge({"alg": "none", "typ": "JWT"}, claims(roles=["supervisor"])),
    ),
    "hs256_with_rsa_public_key": ("algorithm_not_allowed", lambda s, a: _hs256_with_public_key(s)),
    "unknown_kid": (
        "unknown_key",
        lambda s, a: jwt.encode(claims(), a, algorithm="RS256", headers={"kid": "nope"}),
    ),
    "tampered_payload": ("bad_signature", lambda s, a: _tampered(s)),
    "signed_by_attacker_under_real_kid": ("bad_signature", lambda s, a: _attacker_signed(a)),
    "revoked_key_replayed": ("token_revoked", lambda s, a: s.token("old1")),
    "garbage": ("token_malformed", lambda s, a: "not.a.jwt!"),
}


async def _call(stack: Stack, authorization: str | None, tokens: list[str]):
    headers = {"X-Request-ID": "attack-1"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return await stack.agent.post("/v1/resolve", json={"tokens": tokens}, headers=headers)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_attack_gets_one_opaque_401_and_an_audited_reason(
    stack: Stack, attacker_key, attack: str
) -> None:
    reason, make = ATTACKS[attack]
    [card] = await stack.tokenize("card 4242 4242 4242 4242")
    bearer = f"Bearer {make(stack, attacker_key)}"

    answers = []
    for tokens in ([card], [GUESSED]):
        resp = await _call(stack, bearer, tokens)
        answers.append((resp.status, resp.headers.get("WWW-Authenticate"), await resp.json()))
        assert_no_raw(await resp.read())
    # Same status, header and body for an existing token and a guessed one: no existence hint.
    assert answers[0] == answers[1]
    status, challenge, body = answers[0]
    assert status == 401
    assert challenge == 'Bearer realm="redactor", error="invalid_token"'
    assert body == {"error": "unauthenticated", "request_id": "attack-1"}

    failures = [e for e in stack.audit() if e["event"] == "agent_unauthenticated"]
    assert [e["reason"] for e in failures] == [reason, reason]
    assert all(e["subject"] is None and e["token"] is None for e in failures)


async def test_missing_token_gets_a_bare_bearer_challenge(stack: Stack) -> None:
    resp = await _call(stack, None, [GUESSED])
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="redactor"'
    assert [e["reason"] for e in stack.audit()] == ["token_missing"]


async def test_basic_auth_is_not_a_bearer_token(stack: Stack) -> None:
    resp = await _call(stack, "Basic dXNlcjpwYXNz", [GUESSED])
    assert resp.status == 401


async def test_unauthenticated_caller_is_refused_before_the_body_is_read(stack: Stack) -> None:
    resp = await stack.agent.post(
        "/v1/resolve", data=b"{ not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 401


async def test_token_from_another_tenant_reads_as_not_found(stack: Stack) -> None:
    [card] = await stack.tokenize("card 4242 4242 4242 4242")
    resp = await stack.agent.post(
        "/v1/resolve",
        json={"tokens": [card], "purpose": "CHARGEBACK_DISPUTE"},
        headers=stack.auth(roles=["supervisor"], tenant="globex"),
    )
    assert resp.status == 200
    assert (await resp.json())["results"] == [
        {"token": card, "level": "none", "denied": "not_found"}
    ]


async def test_tenant_claim_outside_the_vault_alphabet_is_unauthenticated(stack: Stack) -> None:
    resp = await stack.agent.post(
        "/v1/resolve", json={"tokens": [GUESSED]}, headers=stack.auth(tenant="../acme")
    )
    assert resp.status == 401
    assert stack.audit()[-1]["reason"] == "claim_invalid"


async def test_es256_tokens_are_accepted(stack: Stack) -> None:
    [card] = await stack.tokenize("card 4242 4242 4242 4242")
    resp = await stack.agent.post(
        "/v1/resolve",
        json={"tokens": [card]},
        headers={"Authorization": f"Bearer {stack.token('ec1', roles=['support_agent'])}"},
    )
    assert resp.status == 200
    assert (await resp.json())["results"][0]["value"] == "•••• 4242"
