"""JWKS: parse key sets, load them from a file at start, or fetch and cache them from a URL.

A remote set is refetched when its TTL runs out or a token names a `kid` we do not have (the
IdP rotated keys), but never more often than `min_refresh_interval_s`: `kid` is attacker
input, and random kids must not turn us into a load generator against the IdP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import structlog
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from redactor.errors import ConfigError, file_problem

log = structlog.get_logger(__name__)

MAX_JWKS_BYTES = 256 * 1024  # real sets are a few KiB; a bigger answer is not a key set
MIN_RSA_BITS = 2048  # NIST SP 800-131A: RSA below 2048 bits is disallowed for signatures

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
# RFC 7518 3.4 binds each ES algorithm to one curve.
EC_ALGORITHM_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
OKP_ALGORITHMS = frozenset({"EdDSA"})
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHM_CURVES) | OKP_ALGORITHMS

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


class JwksError(ConfigError):
    """A key set could not be fetched or parsed; `reason` is a fixed, value-free string.

    Fatal at start; at run time a refetch failure is logged and the last good set kept.
    """

    code = "jwks_invalid"
    message = "JWKS is invalid or unavailable"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public signing key from a JWKS."""

    kid: str | None
    key: PublicKey
    alg: str | None = None  # the JWK's own `alg`: when set, the only algorithm it verifies

    def accepts(self, alg: str) -> bool:
        """True when `alg` belongs to this key's family (and curve), and matches a pinned `alg`.

        This is the key-confusion guard: an RSA or EC key never verifies an HMAC or a foreign
        algorithm, whatever the token header says.
        """
        if self.alg is not None and self.alg != alg:
            return False
        if isinstance(self.key, rsa.RSAPublicKey):
            return alg in RSA_ALGORITHMS
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            return EC_ALGORITHM_CURVES.get(alg) == self.key.curve.name
        if isinstance(self.key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            return alg in OKP_ALGORITHMS
        return False


@dataclass(frozen=True, slots=True)
class KeySet:
    """Usable keys of a JWKS; `skipped` counts entries we refused (encryption keys, HMAC
    secrets, short RSA keys, unknown types, duplicate kids)."""

    keys: tuple[VerificationKey, ...]
    skipped: int = 0

    def find(self, kid: str | None) -> VerificationKey | None:
        """The key with this `kid`; a token without `kid` only matches a set of one key."""
        if kid is None:
            return self.keys[0] if len(self.keys) == 1 else None
        for key in self.keys:
            if key.kid == kid:
                return key
        return None


def _public_key(jwk: dict[str, Any]) -> PublicKey | None:
    kty = jwk.get("kty")
    text = json.dumps(jwk)
    if kty == "RSA":
        key: Any = RSAAlgorithm.from_jwk(text)
    elif kty == "EC":
        key = ECAlgorithm.from_jwk(text)
    elif kty == "OKP":
        key = OKPAlgorithm.from_jwk(text)
    else:
        # "oct" included: a symmetric secret never comes from a key set, only from explicit
        # configuration (a JWKS URL is public; an HMAC key in it would be everyone's key).
        return None
    if hasattr(key, "public_key"):
        # A set that (wrongly) publishes private parts still only verifies with the public half.
        key = key.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return None
    return key


def parse_jwks(raw: bytes) -> KeySet:
    """Parse a JWKS document (RFC 7517) into its usable signing keys.

    Raises JwksError if it is not a JWKS or holds no usable signing key.
    """
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise JwksError("not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise JwksError("not a JWKS: no 'keys' list")
    keys: list[VerificationKey] = []
    seen: set[str | None] = set()
    skipped = 0
    for jwk in doc["keys"]:
        if not isinstance(jwk, dict):
            skipped += 1
            continue
        kid, alg, use, ops = jwk.get("kid"), jwk.get("alg"), jwk.get("use"), jwk.get("key_ops")
        unusable = (
            (kid is not None and not isinstance(kid, str))
            or (alg is not None and alg not in ASYMMETRIC_ALGORITHMS)
            # RFC 7517 4.2/4.3: an encryption key must not be used to verify signatures.
            or (use is not None and use != "sig")
            or (ops is not None and (not isinstance(ops, list) or "verify" not in ops))
            # Two keys under one kid would let a set silently shadow a key.
            or kid in seen
        )
        key = None
        if not unusable:
            try:
                key = _public_key(jwk)
            except (InvalidKeyError, UnsupportedAlgorithm, ValueError, TypeError, KeyError):
                # Malformed members are skipped, not fatal: one bad entry must not take down a
                # set that also carries the key in use (the errors may quote the key: dropped).
                key = None
        if key is None:
            skipped += 1
            continue
        seen.add(kid)
        keys.append(VerificationKey(kid=kid, key=key, alg=alg))
    if not keys:
        raise JwksError("no usable signing key")
    return KeySet(keys=tuple(keys), skipped=skipped)


def load_jwks_file(path: Path) -> KeySet:
    """Read and parse a JWKS file (sync: at start only).

    Raises ConfigError naming the file when it cannot be read or holds no usable key.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"agent.jwks: {file_problem(path, exc)}") from None
    try:
        keyset = parse_jwks(raw)
    except JwksError as exc:
        raise ConfigError(f"agent.jwks: {path}: {exc.reason}") from None
    log.info("jwks_loaded", source=str(path), keys=len(keyset.keys), skipped=keyset.skipped)
    return keyset


def is_https_or_loopback_http(url: str) -> bool:
    """True for an https URL, or plain http to a loopback address (tests, sidecars)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return True
    if parts.scheme != "http" or not host:
        return False
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_jwks_url(url: str) -> None:
    """Raises ConfigError unless `url` is https, or http to a loopback address.

    Plain http anywhere else would let anyone on the path swap in their own keys.
    """
    if not is_https_or_loopback_http(url):
        raise ConfigError("auth.jwks_url: must be an https URL (http only to a loopback address)")


class KeySource(Protocol):
    """Where a verifier finds the public key for a token's `kid`."""

    async def find(self, kid: str | None) -> VerificationKey | None: ...


class StaticKeys:
    """A key set loaded once, from a file at start."""

    def __init__(self, keyset: KeySet) -> None:
        self._keyset = keyset

    async def find(self, kid: str | None) -> VerificationKey | None:
        return self._keyset.find(kid)


class RemoteKeys:
    """A key set fetched from a JWKS URL with the app's ClientSession, cached for `ttl_s`.

    On an unknown `kid` or an expired cache it refetches, at most once per
    `min_refresh_interval_s` (concurrent callers share one fetch). A failed refetch keeps the
    last good set: an IdP outage must not log every agent out.
    """

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        ttl_s: float,
        timeout_s: float,
        min_refresh_interval_s: float,
        now: Callable[[], float],
    ) -> None:
        """Raises ConfigError if `url` is not an acceptable JWKS URL."""
        check_jwks_url(url)
        self._url = url
        self._session = session
        self._ttl_s = ttl_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._min_interval_s = min_refresh_interval_s
        self._now = now
        self._keyset: KeySet | None = None
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Fetch the set once. Raises ConfigError if the IdP does not serve a usable set."""
        try:
            keyset = await self._fetch()
        except JwksError as exc:
            raise ConfigError(f"auth.jwks_url: {exc.reason}") from None
        now = self._now()
        self._keyset, self._fetched_at, self._attempted_at = keyset, now, now
        log.info("jwks_fetched", url=self._url, keys=len(keyset.keys), skipped=keyset.skipped)

    async def find(self, kid: str | None) -> VerificationKey | None:
        """The key for `kid`, refetching the set when stale or when `kid` is unknown."""
        if self._fetched_at is None or self._now() - self._fetched_at >= self._ttl_s:
            await self._refresh()
        key = self._keyset.find(kid) if self._keyset is not None else None
        if key is None:
            await self._refresh()
            key = self._keyset.find(kid) if self._keyset is not None else None
        return key

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._now()
            if self._attempted_at is not None and now - self._attempted_at < self._min_interval_s:
                # Covers both "someone just refreshed while we waited" and the kid flood.
                return
            self._attempted_at = now
            try:
                keyset = await self._fetch()
            except JwksError as exc:
                # Our own fixed reason says it all; a traceback would only add noise.
                log.error("jwks_refresh_failed", url=self._url, reason=exc.reason)  # noqa: TRY400
                return
            self._keyset, self._fetched_at = keyset, self._now()
            log.info("jwks_fetched", url=self._url, keys=len(keyset.keys), skipped=keyset.skipped)

    async def _fetch(self) -> KeySet:
        try:
            # No redirects: a redirect could lead off the configured https origin.
            async with self._session.get(
                self._url,
                timeout=self._timeout,
                allow_redirects=False,
                headers={"Accept": "application/jwk-set+json, application/json"},
            ) as response:
                if response.status != 200:
                    raise JwksError(f"IdP answered HTTP {response.status}")
                if (response.content_length or 0) > MAX_JWKS_BYTES:
                    raise JwksError("key set too large")
                body = bytearray()
                while chunk := await response.content.read(64 * 1024):
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksError("key set too large")
        except (aiohttp.ClientError, TimeoutError):
            raise JwksError("IdP unreachable or timed out") from None
        return parse_jwks(bytes(body))
