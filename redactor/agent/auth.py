"""JWT verification (PyJWT) -> Principal. Nothing else reads the Authorization header.

Every failure is an AuthError subclass whose `code` is a stable reason for logs and audit.
Messages are fixed: no token, claim or key text ever reaches an error, a log line or a
traceback (PyJWT's exceptions are dropped with `from None`; some of them quote input).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from jwt import exceptions as jwt_errors

from redactor.agent.jwks import (
    ASYMMETRIC_ALGORITHMS,
    KeySource,
    RemoteKeys,
    StaticKeys,
    check_jwks_url,
    load_jwks_file,
)
from redactor.errors import AuthError, ConfigError
from vault.config import Secret

# --- errors: one class per reason code ----------------------------------------------------------


class TokenMissingError(AuthError):
    code = "token_missing"
    message = "bearer token missing"


class TokenMalformedError(AuthError):
    code = "token_malformed"
    message = "bearer token is malformed"


class TokenExpiredError(AuthError):
    code = "token_expired"
    message = "token has expired"


class TokenNotYetValidError(AuthError):
    code = "token_not_yet_valid"
    message = "token is not valid yet"


class BadSignatureError(AuthError):
    code = "bad_signature"
    message = "token signature does not verify"


class WrongIssuerError(AuthError):
    code = "wrong_issuer"
    message = "token issuer is not accepted"


class WrongAudienceError(AuthError):
    code = "wrong_audience"
    message = "token audience is not accepted"


class AlgorithmNotAllowedError(AuthError):
    code = "algorithm_not_allowed"
    message = "token algorithm is not allowed"


class UnknownKeyError(AuthError):
    code = "unknown_key"
    message = "token signing key is unknown"


class ClaimMissingError(AuthError):
    code = "claim_missing"
    message = "a required claim is missing"


class ClaimInvalidError(AuthError):
    code = "claim_invalid"
    message = "a claim has the wrong type"


class TokenRevokedError(AuthError):
    """A token whose signature verified is revoked (its jti is listed): the caller is told so
    (401 token_revoked), since only the holder of a genuine token can get this far."""

    code = "token_revoked"
    message = "token has been revoked"


class KeyRevokedError(TokenRevokedError):
    """A token of a revoked signing key: refused before its signature is checked, so it gets
    the opaque 401 like any unverified token (audited as token_revoked)."""

    message = "token signing key has been revoked"


# --- settings and output -------------------------------------------------------------------------


SUPPORTED_ALGORITHMS = ASYMMETRIC_ALGORITHMS | {"HS256"}
# RFC 7518 3.2: an HS256 key must be at least as long as the hash output (256 bits).
MIN_HS256_SECRET_BYTES = 32
MAX_LEEWAY_S = 300.0  # beyond five minutes "leeway" is a different expiry policy
DEFAULT_JWKS_MIN_REFRESH_INTERVAL_S = 5.0
MAX_TOKEN_CHARS = 8192  # aiohttp's header limit; a longer "token" is not one of ours
_BEARER = re.compile(r"Bearer[ ]+(\S+)[ ]*", re.IGNORECASE)
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Everything the verifier needs, validated on construction (ConfigError names the field).

    Exactly one JWKS source (`jwks_path` or `jwks_url`) serves the asymmetric algorithms;
    `hs256_secret` enables HS256 and only when "HS256" is also listed in `allowed_algorithms`.
    """

    issuer: str
    audience: str
    jwks_path: Path | None = None
    jwks_url: str | None = None
    hs256_secret: Secret | None = None
    allowed_algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_s: float = 30.0
    subject_claim: str = "sub"
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    require_nbf: bool = False
    revoked_jtis: frozenset[str] = field(default_factory=frozenset)
    revoked_kids: frozenset[str] = field(default_factory=frozenset)
    jwks_cache_ttl_s: float = 300.0
    jwks_timeout_s: float = 5.0
    # An unknown kid refetches the set at once (an IdP rotated its keys), but never within
    # this long of the last fetch: kids are attacker input. A few seconds: a rotation costs a
    # caller at most one 401, and a flood of random kids one fetch per interval.
    jwks_min_refresh_interval_s: float = DEFAULT_JWKS_MIN_REFRESH_INTERVAL_S

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"auth.{name}: {why}")

        if not self.issuer:
            raise bad("issuer", "must be set")
        if not self.audience:
            raise bad("audience", "must be set")
        algorithms = set(self.allowed_algorithms)
        if not algorithms:
            raise bad("allowed_algorithms", "must list at least one algorithm")
        if not algorithms <= SUPPORTED_ALGORITHMS:
            # Catches "none" too: an unsigned token is never acceptable.
            raise bad("allowed_algorithms", f"supported: {', '.join(sorted(SUPPORTED_ALGORITHMS))}")
        if self.jwks_path is not None and self.jwks_url is not None:
            raise bad("jwks_path", "set jwks_path or jwks_url, not both")
        has_jwks = self.jwks_path is not None or self.jwks_url is not None
        if algorithms & ASYMMETRIC_ALGORITHMS and not has_jwks:
            raise bad("allowed_algorithms", "asymmetric algorithms need jwks_path or jwks_url")
        if has_jwks and not algorithms & ASYMMETRIC_ALGORITHMS:
            raise bad("allowed_algorithms", "a JWKS is configured but no asymmetric algorithm")
        if ("HS256" in algorithms) != (self.hs256_secret is not None):
            raise bad("hs256_secret", "HS256 needs a secret, and a secret needs HS256 allowed")
        if (
            self.hs256_secret is not None
            and len(self.hs256_secret.reveal().encode()) < MIN_HS256_SECRET_BYTES
        ):
            raise bad("hs256_secret", f"must be at least {MIN_HS256_SECRET_BYTES} bytes")
        if self.jwks_url is not None:
            check_jwks_url(self.jwks_url)
        if not 0 <= self.leeway_s <= MAX_LEEWAY_S:
            raise bad("leeway_s", f"must be between 0 and {MAX_LEEWAY_S:g}")
        for name in ("jwks_cache_ttl_s", "jwks_timeout_s", "jwks_min_refresh_interval_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise bad(name, "must be a positive number of seconds")
        for name in ("subject_claim", "tenant_claim", "roles_claim"):
            if not getattr(self, name):
                raise bad(name, "must name a claim")


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. `token_id` is the JWT's `jti` when it has one (for audit)."""

    subject: str
    tenant: str
    roles: tuple[str, ...]
    token_id: str | None


# --- the verifier --------------------------------------------------------------------------------


def _parse_bearer(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise TokenMissingError
    if len(authorization) > MAX_TOKEN_CHARS:
        raise TokenMalformedError
    match = _BEARER.fullmatch(authorization.strip())
    if match is None:
        # Another scheme (Basic, Digest) or a bare "Bearer": no bearer token was presented.
        if authorization.strip().lower().startswith("bearer "):
            raise TokenMalformedError
        raise TokenMissingError
    token = match.group(1)
    if _COMPACT_JWS.fullmatch(token) is None:
        # JWE (five parts), JSON serialization or junk: we only accept compact JWS.
        raise TokenMalformedError
    return token


def _number(payload: dict[str, Any], claim: str) -> float | None:
    value = payload.get(claim)
    if value is None:
        return None
    # bool is an int in Python; `"exp": true` is not a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenMalformedError
    try:
        seconds = float(value)  # a 400-digit JSON integer overflows here
    except OverflowError:
        raise TokenMalformedError from None
    if not math.isfinite(seconds):
        raise TokenMalformedError
    return seconds


def claim_value(payload: dict[str, Any], path: str) -> Any:
    """The claim `path` names: a top-level claim of that exact name first (namespaced claims
    such as `https://example.com/roles` contain dots), else a dotted path into nested objects
    (`realm_access.roles`, `resource_access.my-client.roles`, as Keycloak sends them).
    None when any step is missing or not an object."""
    if path in payload:
        return payload[path]
    value: Any = payload
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _text_claim(payload: dict[str, Any], claim: str) -> str:
    value = claim_value(payload, claim)
    if value is None or value == "":
        raise ClaimMissingError
    if not isinstance(value, str):
        raise ClaimInvalidError
    return value


def _roles_claim(payload: dict[str, Any], claim: str) -> tuple[str, ...]:
    value = claim_value(payload, claim)
    if value is None:
        raise ClaimMissingError
    # RFC 8693 / RFC 9068 use a space-separated string (`scope`); most IdPs send a list.
    if isinstance(value, str):
        items: list[Any] = value.split()
    elif isinstance(value, list):
        items = value
    else:
        raise ClaimInvalidError
    if not all(isinstance(item, str) for item in items):
        raise ClaimInvalidError
    return tuple(dict.fromkeys(item for item in items if item))


VERIFIED_TTL_S = 60.0
VERIFIED_MAX_ENTRIES = 4096


class TokenVerifier:
    """Verifies `Authorization: Bearer <jwt>` values into Principals.

    Build it once at start (in a cleanup_ctx) with the app's ClientSession when a JWKS URL is
    configured, `await start()` it, and share it on the Application.
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        """Load a JWKS file now. Raises ConfigError for a bad file, or a URL without a session."""
        self._settings = settings
        self._now = now
        # Verified tokens, by SHA-256 of the token string: an agent sends the same JWT on every
        # call for its lifetime, and checking its signature again each time is the largest
        # cost of a resolve (benchmarks/README.md, Resolve). An entry lives until the token's
        # exp or VERIFIED_TTL_S, whichever comes first, so a key removed from the JWKS stops
        # working within that bound; the config file's revocation lists are checked before
        # anything is cached, the vault's on every call after it (resolve.authenticate).
        self._verified: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self._keys: KeySource | None = None
        self._remote: RemoteKeys | None = None
        if settings.jwks_path is not None:
            self._keys = StaticKeys(load_jwks_file(settings.jwks_path))
        elif settings.jwks_url is not None:
            if session is None:
                raise ConfigError("auth.jwks_url: needs the application's client session")
            self._remote = RemoteKeys(
                settings.jwks_url,
                session,
                ttl_s=settings.jwks_cache_ttl_s,
                timeout_s=settings.jwks_timeout_s,
                min_refresh_interval_s=settings.jwks_min_refresh_interval_s,
                now=now,
            )
            self._keys = self._remote
        self._hs256_key = (
            settings.hs256_secret.reveal().encode() if settings.hs256_secret is not None else None
        )
        self._allowed = frozenset(settings.allowed_algorithms)

    async def start(self) -> None:
        """Fetch a remote JWKS once. Raises ConfigError if the IdP serves no usable key set."""
        if self._remote is not None:
            await self._remote.start()

    async def verify(self, authorization: str | None) -> Principal:
        """Verify an Authorization header value and return its Principal.

        Raises an AuthError subclass; its `code` says why (token_missing, token_malformed,
        algorithm_not_allowed, unknown_key, token_revoked, bad_signature, wrong_issuer,
        wrong_audience, claim_missing, claim_invalid, token_expired, token_not_yet_valid).
        """
        token = _parse_bearer(authorization)
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            principal, valid_until = cached
            if self._now() < valid_until:
                self._verified.move_to_end(digest)
                return principal
            del self._verified[digest]
        principal, exp = await self._verify_uncached(token)
        self._verified[digest] = (principal, min(exp, self._now() + VERIFIED_TTL_S))
        if len(self._verified) > VERIFIED_MAX_ENTRIES:
            self._verified.popitem(last=False)
        return principal

    async def _verify_uncached(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt_errors.InvalidTokenError:
            raise TokenMalformedError from None
        alg = header.get("alg")
        kid = header.get("kid")
        if not isinstance(alg, str) or alg not in self._allowed:
            # "none", "HS256" without a configured secret, anything off the allow-list.
            raise AlgorithmNotAllowedError
        if kid is not None and not isinstance(kid, str):
            raise TokenMalformedError
        if kid is not None and kid in self._settings.revoked_kids:
            # Checked before any key lookup: a revoked key's tokens must not even cost a fetch.
            raise KeyRevokedError
        key = await self._key_for(alg, kid)
        payload = self._decode(token, key, alg)
        self._check_times(payload)
        jti = payload.get("jti")
        if jti is not None and not isinstance(jti, str):
            raise ClaimInvalidError
        if jti is not None and jti in self._settings.revoked_jtis:
            raise TokenRevokedError
        settings = self._settings
        principal = Principal(
            subject=_text_claim(payload, settings.subject_claim),
            tenant=_text_claim(payload, settings.tenant_claim),
            roles=_roles_claim(payload, settings.roles_claim),
            token_id=jti,
        )
        return principal, float(payload["exp"])

    async def _key_for(self, alg: str, kid: str | None) -> Any:
        if alg == "HS256":
            # Only the explicitly configured secret: never a JWKS entry, never a public key
            # (signing HS256 with the RSA public key as secret is the classic confusion attack).
            return self._hs256_key
        if self._keys is None:
            raise UnknownKeyError
        key = await self._keys.find(kid)
        if key is None:
            raise UnknownKeyError
        if not key.accepts(alg):
            # Key type and algorithm family must agree (RSA key -> RS/PS, P-256 -> ES256 ...).
            raise AlgorithmNotAllowedError
        return key.key

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        settings = self._settings
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=settings.audience,
                issuer=settings.issuer,
                options={
                    # Times are checked in `_check_times` against the injected clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_sub": False,
                    "verify_jti": False,
                    "require": ["iss", "aud", "exp"],
                },
            )
        except jwt_errors.InvalidSignatureError:
            raise BadSignatureError from None
        except jwt_errors.MissingRequiredClaimError:
            raise ClaimMissingError from None
        except jwt_errors.InvalidAudienceError:
            raise WrongAudienceError from None
        except jwt_errors.InvalidIssuerError:
            raise WrongIssuerError from None
        except (jwt_errors.InvalidAlgorithmError, jwt_errors.InvalidKeyError):
            raise AlgorithmNotAllowedError from None
        except jwt_errors.InvalidTokenError:
            raise TokenMalformedError from None

    def _check_times(self, payload: dict[str, Any]) -> None:
        now = self._now()
        leeway = self._settings.leeway_s
        exp = _number(payload, "exp")
        nbf = _number(payload, "nbf")
        iat = _number(payload, "iat")
        if exp is None or (nbf is None and self._settings.require_nbf):
            raise ClaimMissingError
        if exp + leeway <= now:
            raise TokenExpiredError
        if (nbf is not None and nbf - leeway > now) or (iat is not None and iat - leeway > now):
            raise TokenNotYetValidError
