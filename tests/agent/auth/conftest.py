"""Keys, tokens and settings for the auth tests. Keys are generated per session with
`cryptography`; time is a settable clock, so no test depends on the wall clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from redactor.agent.auth import AuthSettings

T0 = 1_700_000_000.0
ISSUER = "https://idp.example.test/"
AUDIENCE = "redactor-resolve"
# Distinctive claim values, so leak checks can look for them in errors and logs.
SUBJECT = "agent-Zq81x"
TENANT = "tenant-Xw77k"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class Clock:
    """A settable clock: `now` is what the verifier sees."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_key_rotated() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def attacker_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def public_jwk(key: PrivateKey, kid: str | None, **extra: Any) -> dict[str, Any]:
    """The public JWK of `key`, as an IdP would publish it."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    jwk.update(extra)
    return jwk


def jwks_of(*jwks: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(jwks)}


def claims(now: float = T0, **overrides: Any) -> dict[str, Any]:
    """A valid claim set; pass `name=None`-free overrides, drop claims with `drop_claims`."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "tenant": TENANT,
        "roles": ["support_agent"],
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return base


def sign(
    key: PrivateKey | bytes,
    payload: dict[str, Any],
    *,
    alg: str = "RS256",
    kid: str | None = "k1",
    headers: dict[str, Any] | None = None,
    drop_claims: Iterable[str] = (),
) -> str:
    body = {k: v for k, v in payload.items() if k not in set(drop_claims)}
    all_headers = {"kid": kid} if kid is not None else {}
    all_headers.update(headers or {})
    return jwt.encode(body, key, algorithm=alg, headers=all_headers or None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any], payload: dict[str, Any], sign_with: Callable[[bytes], bytes]
) -> str:
    """A token built by hand, the way an attacker would (PyJWT refuses to build some)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign_with(signing_input.encode()))}"


def hs256_with(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


@pytest.fixture
def jwks_file(
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> Path:
    path = tmp_path / "jwks.json"
    doc = jwks_of(public_jwk(rsa_key, "k1"), public_jwk(ec_key, "ec1"), public_jwk(ed_key, "ed1"))
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def make_settings(jwks_file: Path) -> Callable[..., AuthSettings]:
    def build(**overrides: Any) -> AuthSettings:
        values: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwks_path": jwks_file,
            "allowed_algorithms": ("RS256", "PS256", "ES256", "EdDSA"),
        }
        values.update(overrides)
        return AuthSettings(**values)

    return build


def assert_nothing_leaks(token: str, texts: Iterable[str]) -> None:
    """No part of the token and none of its claim values appear in any of `texts`."""
    secrets = [part for part in token.split(".") if len(part) >= 8]
    secrets += [token[:20], token[-20:], SUBJECT, TENANT]
    for text in texts:
        for secret in secrets:
            assert secret not in text
