"""JWKS from a URL: a local aiohttp IdP on 127.0.0.1 serves the key set; we check refresh on an
unknown kid (key rotation), the refresh rate limit, the cache TTL, and failing closed at start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from redactor.agent.auth import AuthSettings, TokenVerifier
from redactor.errors import AuthError, ConfigError

from .conftest import (
    AUDIENCE,
    ISSUER,
    SUBJECT,
    T0,
    Clock,
    assert_nothing_leaks,
    claims,
    jwks_of,
    public_jwk,
    sign,
)

MIN_INTERVAL_S = 30.0
TTL_S = 300.0


@dataclass
class FakeIdp:
    """What the IdP serves, and how often it was asked."""

    body: Any
    status: int = 200
    delay_s: float = 0.0
    hits: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def idp(rsa_key: rsa.RSAPrivateKey) -> FakeIdp:
    return FakeIdp(body=jwks_of(public_jwk(rsa_key, "k1")))


@pytest.fixture
async def idp_url(aiohttp_server: Callable[..., Any], idp: FakeIdp) -> str:
    async def jwks(_request: web.Request) -> web.StreamResponse:
        idp.hits += 1
        if idp.delay_s:
            await asyncio.sleep(idp.delay_s)
        text = idp.body if isinstance(idp.body, str) else json.dumps(idp.body)
        return web.Response(
            text=text, status=idp.status, content_type="application/json", headers=idp.headers
        )

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("/.well-known/jwks.json"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def make_verifier(
    idp_url: str, session: aiohttp.ClientSession, clock: Clock
) -> Callable[..., TokenVerifier]:
    def build(**overrides: Any) -> TokenVerifier:
        values: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwks_url": idp_url,
            "allowed_algorithms": ("RS256",),
            "jwks_cache_ttl_s": TTL_S,
            "jwks_timeout_s": 2.0,
            "jwks_min_refresh_interval_s": MIN_INTERVAL_S,
        }
        values.update(overrides)
        return TokenVerifier(AuthSettings(**values), session=session, now=clock)

    return build


def bearer(key: rsa.RSAPrivateKey, kid: str, clock: Clock) -> str:
    return f"Bearer {sign(key, claims(now=clock.now), kid=kid)}"


async def test_start_fetches_and_tokens_verify(
    make_verifier: Callable[..., TokenVerifier],
    idp: FakeIdp,
    rsa_key: rsa.RSAPrivateKey,
    clock: Clock,
) -> None:
    verifier = make_verifier()
    await verifier.start()
    assert idp.hits == 1
    for _ in range(5):
        assert (await verifier.verify(bearer(rsa_key, "k1", clock))).subject == SUBJECT
    assert idp.hits == 1  # served from the cache


async def test_unknown_kid_refreshes_and_picks_up_the_rotated_key(
    make_verifier: Callable[..., TokenVerifier],
    idp: FakeIdp,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key_rotated: rsa.RSAPrivateKey,
    clock: Clock,
) -> None:
    verifier = make_verifier()
    await verifier.start()
    clock.now += MIN_INTERVAL_S
    # The IdP rotates: the new key k2 is published and starts signing.
    idp.body = jwks_of(public_jwk(rsa_key, "k1"), public_jwk(rsa_key_rotated, "k2"))
    principal = await verifier.verify(bearer(rsa_key_rotated, "k2", clock))
    assert principal.subject == SUBJECT
    assert idp.hits == 2
    assert (await verifier.verify(bearer(rsa_key, "k1", clock))).subject == SUBJECT
    assert idp.hits == 2


async def test_unknown_kid_refresh_is_rate_limited(
    make_verifier: Callable[..., TokenVerifier],
    idp: FakeIdp,
    attacker_rsa_key: rsa.RSAPrivateKey,
    clock: Clock,
) -> None:
    verifier = make_verifier()
    await verifier.start()
    clock.now += MIN_INTERVAL_S
    # An attacker sprays random kids: one fetch per interval, whatever the volume.
    for i in range(50):
        header = bearer(attacker_rsa_key, f"random-{i}", clock)
        with capture_logs() as logs, pytest.raises(AuthError) as excinfo:
            await verifier.verify(header)
        assert excinfo.value.code == "unknown_key"
        # Neither the token nor its attacker-chosen kid reaches the error or the logs.
        assert_nothing_leaks(header.split()[-1], [str(excinfo.value), json.dumps(logs)])
        assert f"random-{i}" not in json.dumps(logs) + str(excinfo.value)
    assert idp.hits == 2
    clock.now += MIN_INTERVAL_S - 1
    with pytest.raises(AuthError):
        await verifier.verify(bearer(attacker_rsa_key, "random-x", clock))
    assert idp.hits == 2
    clock.now += 1
    with pytest.raises(AuthError):
        await verifier.verify(bearer(attacker_rsa_key, "random-y", clock))
    assert idp.hits == 3


async def test_concurrent_unknown_kids_share_one_fetch(
    make_verifier: Callable[..., TokenVerifier],
    idp: FakeIdp,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key_rotated: rsa.RSAPrivateKey,
    clock: Clock,
) -> None:
    verifier = make_verifier()
    await verifier.start()
    clock.now += MIN_INTERVAL_S
    idp.body = jwks_of(public_jwk(rsa_key_rotated, "k2"))
    idp.delay_s = 0.05
    token = bearer(rsa_key_rotated, "k2", clock)
    principals = await asyncio.gather(*(verifier.verify(token) for _ in range(20)))
    assert {p.subject for p in principals} == {SUBJECT}
    assert idp.hits == 2


async def test_expired_cache_is_refetched_and_drops_retired_keys(
    make_verifier: Callable[..., TokenVerifier],
    idp: FakeIdp,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key_rotated: rsa.RSAPrivateKey,
    clock: Clock,
) -> None:
    verifier = make_verifier()
    await verifier.start()
    idp.body = jwks_of(public_jwk(rsa_key_rotated, "k2"))  # k1 retired
    clock.now += TTL_S - 1
    assert await verifier.verify(bearer(rsa_key, "k1", clock))
    assert idp.hits == 1
    clock.now += 1
    with pytest.raises(AuthError) as excinfo:
        await verifier.verify(bearer(rsa_key, "k1", clock))
    assert excinfo.value.code == "unknown_key"
    assert idp.hits == 2


async def test_idp_outage_keeps_the_last_good_keys(
    make_verifier: Callable[..., TokenVerifier],
    idp: FakeIdp,
    rsa_key: rsa.RSAPrivateKey,
    clock: Clock,
) -> None:
    verifier = make_verifier()
    await verifier.start()
    idp.status = 503
    clock.now += TTL_S + 1
    with capture_logs() as logs:
        assert (await verifier.verify(bearer(rsa_key, "k1", clock))).subject == SUBJECT
    assert idp.hits == 2
    failures = [e for e in logs if e["event"] == "jwks_refresh_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "error"


@pytest.mark.parametrize(
    ("body", "status", "headers"),
    [
        ({"keys": []}, 200, {}),
        ("<html>sign in</html>", 200, {}),
        ({"error": "nope"}, 500, {}),
        ("", 302, {"Location": "http://evil.example.test/jwks.json"}),  # redirects not followed
    ],
)
async def test_bad_jwks_url_at_start_is_a_config_error(
    make_verifier: Callable[..., TokenVerifier],
    idp: FakeIdp,
    body: Any,
    status: int,
    headers: dict[str, str],
) -> None:
    idp.body, idp.status, idp.headers = body, status, headers
    with pytest.raises(ConfigError) as excinfo:
        await make_verifier().start()
    assert "auth.jwks_url" in str(excinfo.value)


async def test_slow_idp_at_start_times_out_as_config_error(
    make_verifier: Callable[..., TokenVerifier], idp: FakeIdp
) -> None:
    idp.delay_s = 1.0
    with pytest.raises(ConfigError):
        await make_verifier(jwks_timeout_s=0.1).start()


async def test_unreachable_idp_at_start_is_a_config_error(
    session: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    settings = AuthSettings(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url=f"http://127.0.0.1:{unused_tcp_port}/jwks.json",
        jwks_timeout_s=1.0,
    )
    with pytest.raises(ConfigError):
        await TokenVerifier(settings, session=session, now=Clock(T0)).start()


async def test_oversized_key_set_is_refused(
    make_verifier: Callable[..., TokenVerifier], idp: FakeIdp, rsa_key: rsa.RSAPrivateKey
) -> None:
    idp.body = {"keys": [public_jwk(rsa_key, "k1")], "padding": "x" * 300_000}
    with pytest.raises(ConfigError):
        await make_verifier().start()
