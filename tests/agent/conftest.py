"""A real proxy + agent API against a SQLite vault, a JWKS file and a policy file in tmp_path.

Keys are generated once per session; the agents' JWTs are signed with them. A fake payment
processor on 127.0.0.1 records what it receives and answers by echoing the card number.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from redactor.agent.app import build_agent_app
from redactor.ingress.app import build_proxy_app
from redactor.resources import Resources, open_resources
from redactor.settings import Overrides, Settings, load_settings

ISSUER = "https://idp.example.test/"
AUDIENCE = "redactor-agent"
TENANT = "acme"
OTHER_TENANT = "globex"
# Stripe's test card: it passes Luhn, it is never a real account.
CARD = "4242 4242 4242 4242"
CARD_DIGITS = "4242424242424242"
SSN = "536-90-4399"
SSN_DIGITS = "536904399"
RAW_VALUES = (CARD, CARD_DIGITS, SSN, SSN_DIGITS, "4242-4242-4242-4242")

POLICY = """\
version: 1
full_reveal:
  purpose:
    min_length: 20
    codes: [CHARGEBACK_DISPUTE]
  ticket:
    pattern: "[A-Z]{2,10}-[0-9]{1,9}"
  rate_limit:
    max_reveals: 3
    window_s: 600
default:
  roles:
    support_agent:
      CREDIT_CARD: masked
      US_SSN: masked
    billing_tool:
      CREDIT_CARD: use
    supervisor:
      CREDIT_CARD: full
      US_SSN: full
    card_only:
      CREDIT_CARD: masked
"""


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def revoked_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(public: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
    jwk = algorithm.to_jwk(public, as_dict=True)
    jwk["kid"] = kid
    return jwk


@pytest.fixture
def jwks_path(tmp_path: Path, rsa_key, ec_key, revoked_key) -> Path:
    path = tmp_path / "jwks.json"
    keys = [
        _jwk(rsa_key.public_key(), "rsa1"),
        _jwk(ec_key.public_key(), "ec1"),
        # Still published (the IdP has not caught up), but listed in revoked_kids.
        _jwk(revoked_key.public_key(), "old1"),
    ]
    path.write_text(json.dumps({"keys": keys}), encoding="utf-8")
    return path


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "agent-1",
        "tenant": TENANT,
        "roles": ["support_agent"],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return base


@dataclass
class Processor:
    """A fake payment processor: records requests, answers echoing the card it was sent."""

    server: TestServer
    received: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


@pytest.fixture
async def processor(aiohttp_server) -> Processor:
    holder: dict[str, Processor] = {}

    async def refund(request: web.Request) -> web.Response:
        body = await request.read()
        holder["p"].received.append((request.method, request.path_qs, dict(request.headers), body))
        card = ""
        if request.content_type == "application/json":
            card = json.loads(body).get("card", "")
        elif request.content_type == "application/x-www-form-urlencoded":
            card = (await request.post()).get("card", "")
        return web.json_response(
            {"id": "re_123", "status": "succeeded", "card": card, "message": f"refunded {card}"}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refund)
    holder["p"] = Processor(await aiohttp_server(app))
    return holder["p"]


@dataclass
class Stack:
    proxy: TestClient
    agent: TestClient
    resources: Resources
    audit_path: Path
    upstream_received: list[bytes]
    keys: dict[str, Any]

    def token(self, key: str = "rsa1", *, alg: str | None = None, **claim: Any) -> str:
        private = self.keys[key]
        algorithm = alg or ("ES256" if key == "ec1" else "RS256")
        return jwt.encode(claims(**claim), private, algorithm=algorithm, headers={"kid": key})

    def auth(self, roles: list[str] | None = None, **claim: Any) -> dict[str, str]:
        claim.setdefault("roles", roles or ["support_agent"])
        return {"Authorization": f"Bearer {self.token(**claim)}"}

    def audit(self) -> list[dict[str, Any]]:
        if not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]

    async def tokenize(self, text: str, tenant: str = TENANT) -> list[str]:
        """Send a webhook through the proxy of `tenant`; the tokens the upstream received."""
        from vault import find_tokens

        resp = await self.proxy.post(
            f"/hooks/{tenant}", json={"comment": text}, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 200
        return find_tokens(self.upstream_received[-1].decode())


@pytest.fixture
def agent_settings(tmp_path: Path, jwks_path: Path, policy_path: Path, processor: Processor):
    def make(upstream_url: str, vault_url: str | None = None, **extra_agent: Any) -> Settings:
        config = {
            "agent_listen": "127.0.0.1:8081",
            "routes": [
                {
                    "name": tenant,
                    "path_prefix": f"/hooks/{tenant}",
                    "upstream": upstream_url,
                    "tenant": tenant,
                }
                for tenant in (TENANT, OTHER_TENANT)
            ],
            "agent": {
                "revoked_kids": ["old1"],
                "outbound": [{"name": "processor", "destination": processor.url}],
                **extra_agent,
            },
        }
        config_path = tmp_path / "config.yaml"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        return load_settings(
            Overrides(
                config=str(config_path),
                data_dir=str(tmp_path / "data"),
                vault_url=vault_url,
                dev=True,
                audit_log=str(tmp_path / "audit.jsonl"),
                jwks=str(jwks_path),
                jwt_issuer=ISSUER,
                jwt_audience=AUDIENCE,
                policy=str(policy_path),
            ),
            {},
        )

    return make


@pytest.fixture
async def start_stack(
    aiohttp_client, aiohttp_server, tmp_path, agent_settings, rsa_key, ec_key, revoked_key
) -> Callable[..., Awaitable[Stack]]:
    contexts: list[Any] = []
    received: list[bytes] = []

    async def record(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"ok": True})

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", record)
    upstream = await aiohttp_server(upstream_app)

    async def start(vault_url: str | None = None, **extra_agent: Any) -> Stack:
        settings = agent_settings(str(upstream.make_url("/")), vault_url, **extra_agent)
        ctx = open_resources(settings)
        res = await ctx.__aenter__()
        contexts.append(ctx)
        return Stack(
            proxy=await aiohttp_client(build_proxy_app(res.ingress)),
            agent=await aiohttp_client(build_agent_app(res.agent)),
            resources=res,
            audit_path=tmp_path / "audit.jsonl",
            upstream_received=received,
            keys={"rsa1": rsa_key, "ec1": ec_key, "old1": revoked_key},
        )

    yield start
    for ctx in reversed(contexts):
        await ctx.__aexit__(None, None, None)


@pytest.fixture
async def stack(start_stack) -> Stack:
    return await start_stack()


def assert_no_raw(blob: bytes | str) -> None:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    for raw in RAW_VALUES:
        assert raw not in text
