"""Reveal policy: load policies/*.yaml, validate against the schema, answer "may X see Y".

Parsing and deciding are pure: text in, values out; `decide` takes `now` and a limiter. The
only I/O is `load_policy` reading one file, at start or on reload (SIGHUP), never per request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import jsonschema
import structlog

from redactor.config.yamlschema import node_at, parse_yaml
from redactor.errors import PermissionDeniedError, PolicyError, file_problem

log = structlog.get_logger(__name__)


class Level(StrEnum):
    """Reveal levels, lowest first; `rank` orders them."""

    NONE = "none"
    MASKED = "masked"
    USE = "use"
    FULL = "full"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Level.NONE: 0, Level.MASKED: 1, Level.USE: 2, Level.FULL: 3}


class EntityType(StrEnum):
    """Entity types the vault holds; the names are presidio's."""

    CREDIT_CARD = "CREDIT_CARD"
    US_SSN = "US_SSN"


class Reason(StrEnum):
    """Stable reason codes of a decision; they go into audit events as they are."""

    GRANTED = "granted"
    NO_PERMISSION = "no_permission"
    WRONG_TENANT = "wrong_tenant"
    PURPOSE_REQUIRED = "purpose_required"
    PURPOSE_TOO_SHORT = "purpose_too_short"
    PURPOSE_TOO_LONG = "purpose_too_long"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"
    TICKET_REQUIRED = "ticket_required"
    TICKET_INVALID = "ticket_invalid"
    RATE_LIMITED = "rate_limited"


# --- errors --------------------------------------------------------------------------------------


class PolicyFileError(PolicyError):
    """A policy file is unreadable, not YAML, or breaks the schema; names file, line and reason."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = source if line is None else f"{source} line {line}"
        super().__init__(f"{where}: {reason}")


class RevealDeniedError(PermissionDeniedError):
    """Base of the per-reason denials `raise_for_decision` raises (403 unless stated)."""


class NoPermissionError(RevealDeniedError):
    code = Reason.NO_PERMISSION.value
    message = "no role grants this level for this entity type"


class WrongTenantError(RevealDeniedError):
    code = Reason.WRONG_TENANT.value
    message = "token belongs to another tenant"


class PurposeRequiredError(RevealDeniedError):
    code = Reason.PURPOSE_REQUIRED.value
    message = "a full reveal needs a stated purpose"


class PurposeTooShortError(RevealDeniedError):
    code = Reason.PURPOSE_TOO_SHORT.value
    message = "purpose is too short"


class PurposeTooLongError(RevealDeniedError):
    code = Reason.PURPOSE_TOO_LONG.value
    message = "purpose is too long"


class PurposeNotAllowedError(RevealDeniedError):
    code = Reason.PURPOSE_NOT_ALLOWED.value
    message = "purpose is not one of the accepted codes"


class TicketRequiredError(RevealDeniedError):
    code = Reason.TICKET_REQUIRED.value
    message = "a full reveal needs a ticket reference"


class TicketInvalidError(RevealDeniedError):
    code = Reason.TICKET_INVALID.value
    message = "ticket reference does not match the required pattern"


class RateLimitedError(RevealDeniedError):
    status = 429
    code = Reason.RATE_LIMITED.value
    message = "too many full reveals; try again later"


_DENIALS: dict[Reason, type[RevealDeniedError]] = {
    Reason(cls.code): cls for cls in RevealDeniedError.__subclasses__()
}


# --- the policy model ----------------------------------------------------------------------------

RoleTable = Mapping[str, Mapping[EntityType, Level]]


@dataclass(frozen=True, slots=True)
class PurposeRule:
    min_length: int | None  # None: codes only, free text is refused
    max_length: int
    codes: frozenset[str]


@dataclass(frozen=True, slots=True)
class TicketRule:
    required: bool
    pattern: re.Pattern[str] | None


@dataclass(frozen=True, slots=True)
class RateLimit:
    max_reveals: int
    window_s: float


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """A validated policy file."""

    source: str
    card_show_first_six: bool
    purpose: PurposeRule
    ticket: TicketRule
    full_rate_limit: RateLimit | None
    default_roles: RoleTable
    tenant_roles: Mapping[str, RoleTable]
    # SHA-256 of the file's text (12 hex digits): audit records name the policy in force.
    version: str = ""

    def entitled_level(self, tenant: str, roles: tuple[str, ...], entity_type: str) -> Level:
        """The highest level any of `roles` grants in `tenant` for `entity_type`."""
        table = self.tenant_roles.get(tenant, self.default_roles)
        try:
            entity = EntityType(entity_type)
        except ValueError:
            return Level.NONE  # an entity type the policy cannot name is never revealed
        best = Level.NONE
        for role in roles:
            level = table.get(role, {}).get(entity, Level.NONE)
            if level.rank > best.rank:
                best = level
        return best


# --- parsing -------------------------------------------------------------------------------------


def _load_schema() -> dict[str, Any]:
    text = resources.files("policies").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


# Built once at import: the schema ships with the package and never changes at run time.
SCHEMA: dict[str, Any] = _load_schema()
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_TICKET_MAX_CHARS = 128  # bounds the regex work a caller's ticket reference can cause


def _role_table(raw: Mapping[str, Any]) -> RoleTable:
    return MappingProxyType(
        {
            role: MappingProxyType({EntityType(e): Level(v) for e, v in grants.items()})
            for role, grants in raw["roles"].items()
        }
    )


def parse_policy(text: str, source: str) -> Policy:
    """Parse and validate policy YAML; `source` names the file in errors.

    Raises PolicyFileError (file, line, reason) when it is not YAML or breaks the schema.
    """
    root, data = parse_yaml(text, _VALIDATOR, source, PolicyFileError)

    full = data["full_reveal"]
    purpose = full["purpose"]
    ticket = full.get("ticket", {})
    pattern = None
    if "pattern" in ticket:
        try:
            pattern = re.compile(ticket["pattern"])
        except re.error:
            line = node_at(root, ["full_reveal", "ticket", "pattern"]).start_mark.line + 1
            raise PolicyFileError(
                source, line, "full_reveal.ticket.pattern: not a valid regular expression"
            ) from None
    max_length = purpose.get("max_length", 500)
    if purpose.get("min_length", 0) > max_length:
        line = node_at(root, ["full_reveal", "purpose", "min_length"]).start_mark.line + 1
        raise PolicyFileError(
            source, line, "full_reveal.purpose.min_length: must not exceed max_length"
        )
    limit = full.get("rate_limit")
    return Policy(
        source=source,
        card_show_first_six=data.get("masking", {}).get("card_show_first_six", False),
        purpose=PurposeRule(
            min_length=purpose.get("min_length"),
            max_length=max_length,
            codes=frozenset(purpose.get("codes", ())),
        ),
        ticket=TicketRule(required=ticket.get("required", False), pattern=pattern),
        full_rate_limit=(
            RateLimit(max_reveals=limit["max_reveals"], window_s=float(limit["window_s"]))
            if limit
            else None
        ),
        default_roles=_role_table(data["default"]),
        tenant_roles=MappingProxyType(
            {name: _role_table(table) for name, table in data.get("tenants", {}).items()}
        ),
        version=hashlib.sha256(text.encode("utf-8")).hexdigest()[:12],
    )


def load_policy(path: Path) -> Policy:
    """Read and parse one policy file (sync I/O: call it at start or from an executor).

    Raises PolicyFileError naming the file when it cannot be read, is not YAML or breaks the schema.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(str(path), None, file_problem("file", exc).removeprefix("file ")) from None
    return parse_policy(text, str(path))


# --- the limiter ---------------------------------------------------------------------------------


class SlidingWindowLimiter:
    """Counts events per key over a sliding window. No clock and no I/O: callers pass `now`.

    Limits are passed per call, so a policy reload that changes them keeps the history.
    Not thread-safe: it lives on one event loop.
    """

    # Sweep idle keys once the table grows past this; keys are (tenant, subject) pairs of
    # verified principals, so the table is small unless subjects churn.
    _SWEEP_AT_KEYS = 10_000

    def __init__(self) -> None:
        self._events: dict[Hashable, deque[float]] = {}

    def try_acquire(self, key: Hashable, now: float, *, limit: int, window_s: float) -> bool:
        """Record one event for `key` at `now` and return True, or return False past `limit`."""
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - window_s:
            events.popleft()
        if len(events) >= limit:
            return False
        events.append(now)
        if len(self._events) > self._SWEEP_AT_KEYS:
            self.prune(now, window_s)
        return True

    def count(self, key: Hashable, now: float, *, window_s: float) -> int:
        """Events recorded for `key` within the window ending at `now`."""
        return sum(1 for t in self._events.get(key, ()) if t > now - window_s)

    def prune(self, now: float, window_s: float) -> None:
        """Forget keys with no event inside the window ending at `now`."""
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= now - window_s]:
            del self._events[key]


class RevealLimiter(Protocol):
    """What `decide` asks before granting a full reveal."""

    def try_acquire(self, key: Hashable, now: float, *, limit: int, window_s: float) -> bool: ...


class CountedElsewhere:
    """Grants every full reveal here: the caller counts the granted ones afterwards, in the
    vault's database, so the limit holds across workers and replicas (agent/resolve.py)."""

    def try_acquire(self, key: Hashable, now: float, *, limit: int, window_s: float) -> bool:
        return True


# --- deciding ------------------------------------------------------------------------------------


class Identity(Protocol):
    """What `decide` needs of a principal; `redactor.agent.auth.Principal` has it."""

    @property
    def subject(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def roles(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one reveal request: plain data, ready for an audit event. Holds no value."""

    granted_level: Level
    reason_code: Reason
    entitled_level: Level
    subject: str
    tenant: str
    token_tenant: str
    entity_type: str

    @property
    def granted(self) -> bool:
        return self.reason_code is Reason.GRANTED


def _check_purpose(rule: PurposeRule, purpose: str | None) -> Reason | None:
    # Collapse whitespace so padding cannot meet the minimum length.
    text = " ".join((purpose or "").split())
    if not text:
        return Reason.PURPOSE_REQUIRED
    if text in rule.codes:
        return None
    if len(text) > rule.max_length:
        return Reason.PURPOSE_TOO_LONG
    if rule.min_length is None:
        return Reason.PURPOSE_NOT_ALLOWED
    if len(text) < rule.min_length:
        return Reason.PURPOSE_TOO_SHORT
    return None


def _check_ticket(rule: TicketRule, ticket_ref: str | None) -> Reason | None:
    ref = (ticket_ref or "").strip()
    if not ref:
        return Reason.TICKET_REQUIRED if rule.required else None
    if len(ref) > _TICKET_MAX_CHARS:
        return Reason.TICKET_INVALID
    if rule.pattern is not None and rule.pattern.fullmatch(ref) is None:
        return Reason.TICKET_INVALID
    return None


def decide(
    policy: Policy,
    limiter: RevealLimiter,
    principal: Identity,
    token_tenant: str,
    entity_type: str,
    purpose: str | None,
    ticket_ref: str | None,
    now: float,
    *,
    requested: Level | None = None,
) -> Decision:
    """Decide the level `principal` may see a token of `token_tenant` at; pure but for `limiter`.

    `requested` asks for a lower level than the principal's highest (e.g. masked by a subject
    who may see full, without a purpose); by default the highest entitled level is asked for.
    A granted full reveal counts against the subject's rate limit; a denied one does not.
    Never raises for a denial: the Decision says why (see `raise_for_decision`).
    """

    def answer(reason: Reason, granted: Level, entitled: Level) -> Decision:
        return Decision(
            granted_level=granted,
            reason_code=reason,
            entitled_level=entitled,
            subject=principal.subject,
            tenant=principal.tenant,
            token_tenant=token_tenant,
            entity_type=entity_type,
        )

    # Tenants are walls: checked before roles, so no role of any name reaches across.
    if principal.tenant != token_tenant:
        return answer(Reason.WRONG_TENANT, Level.NONE, Level.NONE)
    entitled = policy.entitled_level(principal.tenant, principal.roles, entity_type)
    wanted = entitled if requested is None else requested
    if entitled is Level.NONE or wanted.rank > entitled.rank:
        return answer(Reason.NO_PERMISSION, Level.NONE, entitled)
    if wanted is Level.FULL:
        reason = _check_purpose(policy.purpose, purpose) or _check_ticket(policy.ticket, ticket_ref)
        if reason is not None:
            return answer(reason, Level.NONE, entitled)
        limit = policy.full_rate_limit
        # Checked last, so only reveals that would otherwise be granted use up the budget.
        if limit is not None and not limiter.try_acquire(
            (principal.tenant, principal.subject),
            now,
            limit=limit.max_reveals,
            window_s=limit.window_s,
        ):
            return answer(Reason.RATE_LIMITED, Level.NONE, entitled)
    return answer(Reason.GRANTED, wanted, entitled)


def raise_for_decision(decision: Decision) -> None:
    """Do nothing for a grant. Raises the RevealDeniedError subclass for the decision's reason."""
    if decision.granted:
        return
    raise _DENIALS[decision.reason_code]()


# --- the store -----------------------------------------------------------------------------------


class PolicyStore:
    """Holds the current policy and the full-reveal limiter; `reload` keeps the last good policy."""

    def __init__(self, path: Path, *, limiter: RevealLimiter | None = None) -> None:
        """Load `path` now. Raises PolicyFileError: a bad policy at start stops the start."""
        self._path = path
        self._policy = load_policy(path)
        self._limiter: RevealLimiter = limiter if limiter is not None else SlidingWindowLimiter()

    @property
    def policy(self) -> Policy:
        return self._policy

    def reload(self) -> PolicyFileError | None:
        """Re-read the file. On failure keep the current policy and return (and log) the error."""
        try:
            policy = load_policy(self._path)
        except PolicyFileError as exc:
            log.warning("policy_reload_failed", source=exc.source, line=exc.line, reason=exc.reason)
            return exc
        self._policy = policy
        log.info("policy_reloaded", source=policy.source)
        return None

    def decide(
        self,
        principal: Identity,
        token_tenant: str,
        entity_type: str,
        purpose: str | None,
        ticket_ref: str | None,
        now: float,
        *,
        requested: Level | None = None,
    ) -> Decision:
        """`decide` against the current policy and this store's limiter."""
        return decide(
            self._policy,
            self._limiter,
            principal,
            token_tenant,
            entity_type,
            purpose,
            ticket_ref,
            now,
            requested=requested,
        )
