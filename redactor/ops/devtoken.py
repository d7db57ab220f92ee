"""A development signing key for the agent API: `redactor demo` trusts its JWKS, and
`redactor dev-token` prints JWTs signed with it, so a newcomer resolves a token without an
identity provider or a hand-written script.

The key lives in the demo's data directory, next to the vault's development key, and is never
used outside development mode: `dev-token` refuses a configuration that holds production key
material or a PostgreSQL vault.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

import policies
from redactor.errors import ConfigError, file_problem
from vault.config import VaultConfig

DEV_ISSUER = "https://redactor.invalid/dev"  # .invalid (RFC 2606): no real IdP answers to it
DEV_AUDIENCE = "redactor-dev"
DEV_KID = "redactor-dev-1"
DEV_KEY_FILE = "dev-jwt-key.pem"
DEV_JWKS_FILE = "dev-jwks.json"
DEFAULT_TTL_S = 3600
MAX_TTL_S = 86_400  # a development token that outlives a day is a credential someone keeps
# The demo's reveal policy: the project's documented default (support_agent sees masked,
# fraud_investigator the full value with a purpose).
DEMO_POLICY = Path(policies.__file__).resolve().parent / "default.yaml"


def dev_jwks_path(data_dir: Path) -> Path:
    """Where the development JWKS lives in `data_dir`."""
    return data_dir / DEV_JWKS_FILE


def ensure_dev_signing_key(data_dir: Path) -> Path:
    """The development JWKS of `data_dir`, with its private key (0600) generated on first use.

    Raises ConfigError when the directory or the files cannot be written or read."""
    key_path = data_dir / DEV_KEY_FILE
    jwks_path = dev_jwks_path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if not key_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            # O_EXCL: two demos starting at once never overwrite each other's key.
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
        key = _load_private_key(key_path)
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk.update({"kid": DEV_KID, "use": "sig", "alg": "ES256"})
        jwks_path.write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"dev-token: {file_problem(key_path, exc)}") from None
    return jwks_path


def _load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"dev-token: {file_problem(path, exc)}") from None
    except ValueError:
        raise ConfigError(f"dev-token: {path}: not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"dev-token: {path}: not a P-256 key")
    return key


def refuse_production(vault: VaultConfig) -> None:
    """Raises ConfigError when the configuration in force (config file, REDACTOR_* environment)
    is a production one: a key file or inline keys, or a PostgreSQL vault, outside development
    mode. Tokens for those come from the identity provider, never from this command."""
    if vault.dev:
        return
    if vault.key_file is not None or vault.inline_keys is not None:
        raise ConfigError(
            "dev-token: the configuration in force has production key material; "
            "development tokens are only for `redactor demo` and --dev"
        )
    if vault.backend != "sqlite":
        raise ConfigError(
            "dev-token: the configuration in force uses a PostgreSQL vault; "
            "development tokens are only for `redactor demo` and --dev"
        )


def mint_dev_token(
    data_dir: Path,
    *,
    role: str,
    tenant: str,
    ttl_s: int = DEFAULT_TTL_S,
    subject: str = "dev-agent",
    now: Callable[[], float] = time.time,
) -> str:
    """A JWT for the demo's agent listener, signed with the development key of `data_dir`.

    Raises ConfigError when there is no development key (run `redactor demo` first) or a
    value is out of range."""
    if not role.strip() or not tenant.strip():
        raise ConfigError("dev-token: --role and --tenant must not be empty")
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ConfigError(f"dev-token: --ttl must be between 1 and {MAX_TTL_S} seconds")
    key_path = data_dir / DEV_KEY_FILE
    if not key_path.exists():
        raise ConfigError(
            f"dev-token: no development key in {data_dir}: start `redactor demo` "
            "(or give the --data-dir it uses)"
        )
    key = _load_private_key(key_path)
    issued = int(now())
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": subject,
        "tenant": tenant,
        "roles": [role],
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": DEV_KID})
