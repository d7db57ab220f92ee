"""Real identity providers: nested role claims (Keycloak's `realm_access.roles`,
`resource_access.<client>.roles`) and key rotation at the IdP, against a local IdP stand-in that
serves a rotating JWKS over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from redactor.agent.auth import DEFAULT_JWKS_MIN_REFRESH_INTERVAL_S, AuthSettings, TokenVerifier
from redactor.errors import AuthError

from .conftest import AUDIENCE, ISSUER, SUBJECT, TENANT, Clock, claims, public_jwk, sign


@dataclass
class RotatingIdp:
    """An IdP stand-in: publishes the keys in `published`, counts fetches of its JWKS."""

    published: list[tuple[rsa.RSAPrivateKey, str]] = field(default_factory=list)
    fetches: int = 0
    url: str = ""

    def rotate_to(self, key: rsa.RSAPrivateKey, kid: str) -> None:
        """Publish a new signing key; the previous one stays published (as IdPs do) until
        `retire` drops it."""
        self.published.append((key, kid))

    def retire(self, kid: str) -> None:
        self.published = [(k, i) for k, i in self.published if i != kid]


@pytest.fixture
async def idp(aiohttp_server: Callable[..., Any], rsa_key: rsa.RSAPrivateKey) -> RotatingIdp:
    state = RotatingIdp([(rsa_key, "k1")])

    async def jwks(_request: web.Request) -> web.Response:
        state.fetches += 1
        keys = [public_jwk(key, kid) for key, kid in state.published]
        return web.json_response({"keys": keys})

    app = web.Application()
    app.router.add_get("/realms/acme/protocol/openid-connect/certs", jwks)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.url = str(server.make_url("/realms/acme/protocol/openid-connect/certs"))
    return state


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _verifier(idp: RotatingIdp, session: aiohttp.ClientSession, clock: Clock, **extra: Any):
    settings = AuthSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url=idp.url,
        allowed_algorithms=("RS256",),
        **extra,
    )
    return TokenVerifier(settings, session=session, now=clock)


def _bearer(key: rsa.RSAPrivateKey, kid: str, clock: Clock, **claim: Any) -> str:
    return f"Bearer {sign(key, claims(now=clock.now, **claim), kid=kid)}"


async def test_a_rotation_at_the_idp_costs_no_401_when_the_set_is_older_than_the_interval(
    idp: RotatingIdp,
    session: aiohttp.ClientSession,
    clock: Clock,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key_rotated: rsa.RSAPrivateKey,
) -> None:
    verifier = _verifier(idp, session, clock)
    await verifier.start()
    assert (await verifier.verify(_bearer(rsa_key, "k1", clock))).subject == SUBJECT
    # Well inside the 300 s cache: before issue 21 the new kid got 401 for up to 30 s here.
    clock.now += 5
    idp.rotate_to(rsa_key_rotated, "k2")
    # The first token signed with the new key triggers one immediate refetch, and passes.
    assert (await verifier.verify(_bearer(rsa_key_rotated, "k2", clock))).subject == SUBJECT
    assert idp.fetches == 2
    assert (await verifier.verify(_bearer(rsa_key_rotated, "k2", clock))).subject == SUBJECT
    assert (await verifier.verify(_bearer(rsa_key, "k1", clock))).subject == SUBJECT
    assert idp.fetches == 2


async def test_a_rotation_right_after_a_fetch_costs_at_most_one_401(
    idp: RotatingIdp,
    session: aiohttp.ClientSession,
    clock: Clock,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key_rotated: rsa.RSAPrivateKey,
    attacker_rsa_key: rsa.RSAPrivateKey,
) -> None:
    verifier = _verifier(idp, session, clock)
    await verifier.start()
    clock.now += 5
    # Someone sprays unknown kids: one refetch, then none for the interval.
    for i in range(20):
        with pytest.raises(AuthError) as excinfo:
            await verifier.verify(_bearer(attacker_rsa_key, f"random-{i}", clock))
        assert excinfo.value.code == "unknown_key"
    assert idp.fetches == 2
    # The IdP rotates within the interval: the caller's first call is refused ...
    idp.rotate_to(rsa_key_rotated, "k2")
    with pytest.raises(AuthError) as excinfo:
        await verifier.verify(_bearer(rsa_key_rotated, "k2", clock))
    assert excinfo.value.code == "unknown_key"
    assert idp.fetches == 2
    # ... and its retry a few seconds later passes (one fetch, not one per call).
    clock.now += DEFAULT_JWKS_MIN_REFRESH_INTERVAL_S
    assert (await verifier.verify(_bearer(rsa_key_rotated, "k2", clock))).subject == SUBJECT
    assert idp.fetches == 3
    idp.retire("k1")
    clock.now += 300
    with pytest.raises(AuthError) as excinfo:
        await verifier.verify(_bearer(rsa_key, "k1", clock))
    assert excinfo.value.code == "unknown_key"


def test_the_refetch_interval_is_a_few_seconds() -> None:
    settings = AuthSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url="https://idp.example/k")
    assert 1 <= settings.jwks_min_refresh_interval_s <= 10


@pytest.mark.parametrize(
    ("roles_claim", "payload"),
    [
        ("realm_access.roles", {"realm_access": {"roles": ["offline_access", "supervisor"]}}),
        (
            "resource_access.redactor-agents.roles",
            {
                "resource_access": {
                    "account": {"roles": ["manage-account"]},
                    "redactor-agents": {"roles": ["supervisor"]},
                }
            },
        ),
        # A namespaced top-level claim whose name has dots is read as it is (Auth0, Okta).
        ("https://acme.example/roles", {"https://acme.example/roles": ["supervisor"]}),
    ],
)
async def test_roles_are_read_from_a_dotted_claim_path(
    idp: RotatingIdp,
    session: aiohttp.ClientSession,
    clock: Clock,
    rsa_key: rsa.RSAPrivateKey,
    roles_claim: str,
    payload: dict[str, Any],
) -> None:
    verifier = _verifier(
        idp,
        session,
        clock,
        roles_claim=roles_claim,
        tenant_claim="org.tenant",
        subject_claim="preferred_username",
    )
    await verifier.start()
    token = _bearer(
        rsa_key,
        "k1",
        clock,
        roles=None,
        org={"tenant": TENANT},
        preferred_username="agent-7",
        **payload,
    )
    principal = await verifier.verify(token)
    assert principal.roles[-1] == "supervisor"
    assert principal.tenant == TENANT
    assert principal.subject == "agent-7"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "claim_missing"),
        ({"realm_access": None}, "claim_missing"),
        ({"realm_access": ["supervisor"]}, "claim_missing"),  # not an object: no path into it
        ({"realm_access": {"roles": "supervisor admin"}}, None),  # a space-separated string
        ({"realm_access": {"roles": [1, 2]}}, "claim_invalid"),
        ({"realm_access": {"roles": {"supervisor": True}}}, "claim_invalid"),
    ],
)
async def test_a_dotted_roles_path_that_leads_nowhere_is_refused(
    idp: RotatingIdp,
    session: aiohttp.ClientSession,
    clock: Clock,
    rsa_key: rsa.RSAPrivateKey,
    payload: dict[str, Any],
    code: str | None,
) -> None:
    verifier = _verifier(idp, session, clock, roles_claim="realm_access.roles")
    await verifier.start()
    token = _bearer(rsa_key, "k1", clock, roles=None, **payload)
    if code is None:
        assert (await verifier.verify(token)).roles == ("supervisor", "admin")
        return
    with pytest.raises(AuthError) as excinfo:
        await verifier.verify(token)
    assert excinfo.value.code == code
    assert json.dumps(payload) not in str(excinfo.value)
