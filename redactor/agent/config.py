"""The agent side's settings: its listener, how callers are verified, the reveal policy and
the allow-listed routes out. Built by `redactor.settings`; the agent side sees only these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redactor.agent.auth import AuthSettings
from redactor.agent.jwks import is_https_or_loopback_http
from redactor.config.listen import Listen
from redactor.errors import ConfigError
from vault.config import parse_duration_s
from vault.errors import VaultConfigError

# Agent requests are small JSON documents; a megabyte is far above any real one.
DEFAULT_AGENT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_TOKENS_PER_REQUEST = 100
# Clock skew allowed on `exp`, `nbf` and `iat` (README, "Agent API").
DEFAULT_JWT_LEEWAY_S = 30.0
# The revocation list (README, "Revoking agent tokens"): each process polls it this often, and
# refuses agent calls (503) once its copy is older than REVOCATION_DELAY_S (vault/revocations.py),
# so a revocation holds on every worker and replica within that delay.
DEFAULT_REVOCATION_POLL_S = 1.0
MAX_REVOCATION_POLL_S = 2.0
# How long `agents revoke --jti` refuses a token when neither --for nor --until is given: set
# it to the longest lifetime of your IdP's access tokens (a token outliving it works again).
DEFAULT_REVOKED_JTI_TTL = "24h"


@dataclass(frozen=True, slots=True)
class RevocationSettings:
    """How a server process follows the revocation list, and the default life of a jti entry."""

    poll_interval_s: float = DEFAULT_REVOCATION_POLL_S
    jti_ttl_s: int = 86400


def parse_revocations(raw: Mapping[str, Any]) -> RevocationSettings:
    """The `agent.revocations` section (already schema-checked). Raises ConfigError."""
    poll = float(raw.get("poll_interval_s", DEFAULT_REVOCATION_POLL_S))
    if not 0 < poll <= MAX_REVOCATION_POLL_S:
        raise ConfigError(
            f"agent.revocations.poll_interval_s must be above 0 and at most {MAX_REVOCATION_POLL_S:g}"
        )
    try:
        ttl = parse_duration_s(str(raw.get("jti_ttl", DEFAULT_REVOKED_JTI_TTL)))
    except VaultConfigError as exc:
        raise ConfigError(f"agent.revocations.jti_ttl: {exc}") from None
    return RevocationSettings(poll_interval_s=poll, jti_ttl_s=ttl)


@dataclass(frozen=True, slots=True)
class OutboundRoute:
    """An allow-listed destination for `/out/<name>/...` (the `use` level)."""

    name: str
    destination: str
    max_body_bytes: int = DEFAULT_AGENT_MAX_BODY_BYTES


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """The agent API: its listener, how callers are verified, the reveal policy, the routes out."""

    listen: Listen
    auth: AuthSettings
    policy_path: Path
    max_body_bytes: int = DEFAULT_AGENT_MAX_BODY_BYTES
    max_tokens_per_request: int = DEFAULT_MAX_TOKENS_PER_REQUEST
    outbound: tuple[OutboundRoute, ...] = ()
    revocations: RevocationSettings = RevocationSettings()

    def outbound_route(self, name: str) -> OutboundRoute | None:
        """The allow-listed route called `name`, or None."""
        return next((r for r in self.outbound if r.name == name), None)


def check_destination(value: str, name: str) -> str:
    # Card numbers leave in this request: plain http only to this host (a local sidecar or a
    # test double), https everywhere else.
    parts = urlsplit(value)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{name} must be a plain base URL (no query, fragment or user)")
    if not is_https_or_loopback_http(value):
        raise ConfigError(f"{name} must be an https URL (http only to a loopback address)")
    return value


def parse_agent(
    raw: Mapping[str, Any],
    *,
    listen: Listen,
    jwks: str,
    issuer: str,
    audience: str,
    policy_path: Path,
) -> AgentSettings:
    """The agent settings from the file's `agent` section and the values already picked from
    flags, environment and file (paths already resolved). Raises ConfigError; files are
    checked by `check_agent_files`."""
    remote = jwks.startswith(("http://", "https://"))
    claims = raw.get("claims", {})
    auth = AuthSettings(
        issuer=issuer,
        audience=audience,
        jwks_path=None if remote else Path(jwks),
        jwks_url=jwks if remote else None,
        allowed_algorithms=tuple(raw.get("algorithms", ("RS256", "ES256"))),
        leeway_s=float(raw.get("leeway_s", DEFAULT_JWT_LEEWAY_S)),
        subject_claim=claims.get("subject", "sub"),
        tenant_claim=claims.get("tenant", "tenant"),
        roles_claim=claims.get("roles", "roles"),
        require_nbf=raw.get("require_nbf", False),
        revoked_kids=frozenset(raw.get("revoked_kids", ())),
        revoked_jtis=frozenset(raw.get("revoked_jtis", ())),
    )
    outbound = tuple(
        OutboundRoute(
            name=r["name"],
            destination=check_destination(r["destination"], f"agent.outbound.{r['name']}"),
            max_body_bytes=r.get("max_body_bytes", DEFAULT_AGENT_MAX_BODY_BYTES),
        )
        for r in raw.get("outbound", ())
    )
    names = [r.name for r in outbound]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"agent.outbound names must be unique: {', '.join(repr(n) for n in repeated)}"
        )
    return AgentSettings(
        listen=listen,
        auth=auth,
        policy_path=policy_path,
        max_body_bytes=raw.get("max_body_bytes", DEFAULT_AGENT_MAX_BODY_BYTES),
        max_tokens_per_request=raw.get("max_tokens_per_request", DEFAULT_MAX_TOKENS_PER_REQUEST),
        outbound=outbound,
        revocations=parse_revocations(raw.get("revocations", {})),
    )
