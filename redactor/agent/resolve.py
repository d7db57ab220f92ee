"""Token resolution on the agent API: verify JWT -> policy decision -> vault -> render -> audit.

Order matters for what a caller can learn. The policy decides on what the token string itself
says (its entity type) and the caller's verified tenant, before the vault is asked: a denial
then reads the same whether the token exists or not. Only granted tokens go to the vault, in
one `resolve_many` call scoped to the caller's tenant, so another tenant's token and a guessed
string both come back `not_found`. Every decision is audited before any value is answered.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import hdrs, web

from redactor.agent.auth import KeyRevokedError, Principal, TokenRevokedError
from redactor.agent.masking import mask_card, mask_ssn
from redactor.agent.policy import Decision, Level, Reason
from redactor.agent.resources import AGENT, AgentResources
from redactor.audit import AccessEvent
from redactor.detection import Detector
from redactor.errors import AuthError, RedactorError, VaultTimeoutError
from redactor.middleware import REQUEST_ID
from redactor.relay import read_bounded
from redactor.runtime.entities import DETECTION_ENTITY
from vault import (
    TOKEN_PATTERN,
    EntityType,
    NotFound,
    Resolution,
    Resolved,
    TenantFormatError,
    TokenFormatError,
    parse_token,
)
from vault.values import check_tenant

log = structlog.get_logger()

# Set by handlers for the challenge middleware (agent_app.py), which adds the headers.
CHALLENGE = web.RequestKey("www_authenticate", str)
RETRY_AFTER_S = web.RequestKey("retry_after_s", int)
# The level a caller asked for (a fixed word, never a value): a label of the call metric.
LEVEL_ASKED = web.RequestKey("level_asked", str)

MAX_TOKEN_CHARS = 64  # the longest token is 37 characters; longer strings are not tokens
MAX_FREE_TEXT_CHARS = 4000  # a purpose or ticket; the policy's own maximum is 2000
AUDIT_TEXT_CHARS = 500  # what of a free text the audit log keeps
# Same shape as the log leak guard: any run of 9+ digits, grouped or not (every PAN and SSN).
_DIGIT_RUN = re.compile(r"\d(?:[ \t.\-]{0,2}\d){8,}")
_REALM = 'Bearer realm="redactor"'


class UnauthenticatedError(AuthError):
    """One opaque 401 for every token failure; the reason goes to the audit log only."""

    code = "unauthenticated"
    message = "authentication failed"


class TokenRevokedAnswerError(AuthError):
    """A genuine token that is revoked (by jti or subject): told apart from other 401s so
    the holder stops retrying and gets a new token (README, "Revoking agent tokens")."""

    code = "token_revoked"
    message = "this token has been revoked"


class AgentRequestError(RedactorError):
    """A malformed agent request: the answer names the field and what it must be (both fixed
    texts of ours: never the caller's key or value, which may hold a card number)."""

    status = 400
    code = "request_invalid"
    message = "request body is not a valid agent request"

    def __init__(self, field: str = "body", expected: str = "a JSON object") -> None:
        super().__init__(field)
        self.field = field
        self.expected = expected

    def answer_fields(self) -> dict[str, str]:
        return {"field": self.field, "expected": self.expected}


class TooManyTokensError(RedactorError):
    status = 400
    code = "too_many_tokens"
    message = "too many tokens in one request"

    def __init__(self, max_tokens: int | None = None) -> None:
        super().__init__()
        self.max_tokens = max_tokens

    def answer_fields(self) -> dict[str, str]:
        if self.max_tokens is None:
            return {}
        return {"field": "tokens", "expected": f"at most {self.max_tokens} tokens"}


class RevealRateLimitedError(RedactorError):
    status = 429
    code = "rate_limited"
    message = "too many full reveals; try again later"


# --- pure parts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RevealRequest:
    """A parsed /v1/resolve or /v1/reveal-text body."""

    tokens: tuple[str, ...]
    purpose: str | None
    ticket: str | None
    level: Level | None
    text: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one token came to: the level delivered and why; `value` is the rendering."""

    token: str
    level: Level
    reason: str  # granted, a policy reason code, not_found, erased or invalid_format
    value: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, str]:
        if self.value is None:
            return {"token": self.token, "level": Level.NONE.value, "denied": self.reason}
        return {"token": self.token, "level": self.level.value, "value": self.value}


def _optional_text(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_FREE_TEXT_CHARS:
        raise AgentRequestError(key, f"a string of at most {MAX_FREE_TEXT_CHARS} characters")
    return value


_EXPECTED = {
    "tokens": "a non-empty array of token strings",
    "text": "a string holding tokens",
}


def parse_reveal_request(body: bytes, *, text: bool, max_tokens: int) -> RevealRequest:
    """Parse `{"tokens": [...]}` (or `{"text": ...}` when `text`) with purpose, ticket, level.

    Raises AgentRequestError (400, names the key) or TooManyTokensError.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AgentRequestError("body", "a JSON object (UTF-8)") from None
    main_key = "text" if text else "tokens"
    if not isinstance(doc, dict):
        raise AgentRequestError("body", "a JSON object")
    if main_key not in doc:
        raise AgentRequestError(main_key, "present: " + _EXPECTED[main_key])
    if set(doc) - {main_key, "purpose", "ticket", "level"}:
        # The unknown key itself is not named: it is caller input.
        raise AgentRequestError("body", f"only the keys {main_key}, purpose, ticket, level")
    level = doc.get("level")
    if level is not None and level not in (Level.MASKED, Level.USE, Level.FULL):
        raise AgentRequestError("level", "one of masked, use, full (or absent)")
    if text:
        body_text = doc["text"]
        if not isinstance(body_text, str):
            raise AgentRequestError("text", _EXPECTED["text"])
        tokens = tuple(dict.fromkeys(m.group(0) for m in TOKEN_PATTERN.finditer(body_text)))
    else:
        body_text = None
        raw = doc["tokens"]
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
            raise AgentRequestError("tokens", _EXPECTED["tokens"])
        tokens = tuple(raw)
    # A list counts every entry, repeats too (what the OpenAPI document's maxItems says); a
    # text counts the different tokens in it.
    if len(tokens) > max_tokens:
        raise TooManyTokensError(max_tokens)
    return RevealRequest(
        tokens=tokens,
        purpose=_optional_text(doc, "purpose"),
        ticket=_optional_text(doc, "ticket"),
        level=Level(level) if level is not None else None,
        text=body_text,
    )


def render(entity_type: EntityType, digits: str, level: Level, *, show_first_six: bool) -> str:
    """The value as `level` shows it: full digits, or the masked form (`use` shows masked:
    a tool acts on the value through an outbound route, it never sees it)."""
    if level is Level.FULL:
        return digits
    if entity_type is EntityType.CARD:
        return mask_card(digits, show_first_six=show_first_six)
    return mask_ssn(digits)


def scrub_free_text(text: str | None, detector: Detector) -> str | None:
    """A caller's free text (purpose, ticket) fit for the audit log: card numbers and SSNs the
    detector finds, and any other 9+ digit run, replaced; cut to AUDIT_TEXT_CHARS."""
    if text is None:
        return None
    text = text[:AUDIT_TEXT_CHARS]
    if not any(c.isdigit() for c in text):
        return text
    for finding in sorted(detector.find(text), key=lambda f: f.start, reverse=True):
        text = f"{text[: finding.start]}[{finding.entity}]{text[finding.end :]}"
    # The detector misses what fails Luhn or SSN rules; a typo'd card number is still one.
    return _DIGIT_RUN.sub("[DIGITS]", text)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --- I/O: authentication, decisions, the vault, the audit ----------------------------------------


def agent_of(request: web.Request) -> AgentResources:
    return request.app[AGENT]


async def authenticate(request: web.Request, route: str) -> Principal:
    """The verified caller, unless its token is revoked. Raises UnauthenticatedError (401,
    the reason audited only) or TokenRevokedAnswerError (401 token_revoked) after auditing,
    RevocationsUnavailableError (503) when this process's revocation list is too old."""
    agent = agent_of(request)
    authorization = request.headers.get(hdrs.AUTHORIZATION)
    principal: Principal | None = None
    try:
        verified = await agent.verifier.verify(authorization)
        # The tenant claim becomes a vault tenant id: it must fit the vault's alphabet.
        check_tenant(verified.tenant)
    except KeyRevokedError as exc:
        # Refused before its signature was checked: as opaque as any unverified token.
        reason, told = exc.code, False
    except TokenRevokedError as exc:
        reason, told = exc.code, True
        agent.metrics.revoked_refusal("jti")
    except AuthError as exc:
        reason, told = exc.code, False
    except TenantFormatError:
        reason, told = "claim_invalid", False
    else:
        # After the signature: only a genuine token's holder learns it is revoked.
        revoked_by = agent.revocations.check(verified.token_id, verified.tenant, verified.subject)
        if revoked_by is None:
            return verified
        principal = verified
        reason, told = TokenRevokedError.code, True
        agent.metrics.revoked_refusal(revoked_by)
    challenge = f'{_REALM}, error="invalid_token"'
    request[CHALLENGE] = _REALM if reason == "token_missing" else challenge
    log.info("agent_unauthenticated", reason=reason, route=route)
    await agent.audit.write(
        AccessEvent(
            event="agent_unauthenticated",
            time=now_iso(),
            request_id=request[REQUEST_ID],
            route=route,
            subject=principal.subject if principal else None,
            tenant=principal.tenant if principal else None,
            token=None,
            level=Level.NONE.value,
            reason=reason,
            token_id=principal.token_id if principal else None,
        )
    )
    if told:
        raise TokenRevokedAnswerError()
    raise UnauthenticatedError()


def decide_tokens(
    agent: AgentResources,
    principal: Principal,
    tokens: Sequence[str],
    *,
    purpose: str | None,
    ticket: str | None,
    requested: Level | None,
) -> dict[str, Decision | None]:
    """A decision per distinct token; None for a string that is not a well-formed token."""
    now = time.time()
    decisions: dict[str, Decision | None] = {}
    for token in dict.fromkeys(tokens):
        try:
            parsed = parse_token(token) if len(token) <= MAX_TOKEN_CHARS else None
        except TokenFormatError:
            parsed = None
        if parsed is None:
            decisions[token] = None
            continue
        # The vault is scoped to the caller's tenant, so the token's tenant is theirs: a
        # token of another tenant is simply not found there.
        decisions[token] = agent.policies.decide(
            principal,
            principal.tenant,
            DETECTION_ENTITY[parsed.entity_type],
            purpose,
            ticket,
            now,
            requested=requested,
        )
    return decisions


async def count_full_reveals(
    agent: AgentResources, principal: Principal, decisions: dict[str, Decision | None]
) -> int | None:
    """Count the granted full reveals in the vault's window for the subject; those past the
    policy's limit become `rate_limited` (in `decisions`, in order). Returns the seconds until
    the oldest counted reveal leaves the window when any was refused, else None.

    Raises VaultTimeoutError or a VaultError (503): an uncounted reveal is never granted."""
    limit = agent.policies.policy.full_rate_limit
    full = [t for t, d in decisions.items() if d is not None and d.granted_level is Level.FULL]
    if limit is None or not full:
        return None
    now = time.time()
    try:
        async with asyncio.timeout(agent.shared.vault_timeout_s):
            budget = await agent.vault.take_reveals(
                principal.tenant,
                principal.subject,
                len(full),
                limit=limit.max_reveals,
                window_s=limit.window_s,
                now=now,
            )
    except TimeoutError:
        raise VaultTimeoutError() from None
    for token in full[budget.granted :]:
        decision = decisions[token]
        assert decision is not None  # noqa: S101 - `full` holds granted decisions only
        decisions[token] = replace(
            decision, granted_level=Level.NONE, reason_code=Reason.RATE_LIMITED
        )
    if budget.granted == len(full):
        return None
    oldest = budget.oldest_at if budget.oldest_at is not None else now
    # RFC 9110 10.2.3: whole seconds; at least one, so a client never retries at once.
    return max(1, math.ceil(oldest + limit.window_s - now))


async def resolve_granted(
    agent: AgentResources, principal: Principal, tokens: Sequence[str]
) -> dict[str, Resolution]:
    """One `resolve_many` call for `tokens`: a result per token (`key_missing` and `corrupt`
    among them, so one unreadable token never fails the others). Raises VaultTimeoutError or
    a VaultError (503) when the vault itself cannot answer."""
    if not tokens:
        return {}
    try:
        async with (
            agent.metrics.vault_call("resolve"),
            asyncio.timeout(agent.shared.vault_timeout_s),
        ):
            return await agent.vault.resolve_many(principal.tenant, list(tokens))
    except TimeoutError:
        raise VaultTimeoutError() from None


def access_event(
    event: str,
    request_id: str,
    route: str,
    principal: Principal,
    token: str | None,
    level: Level,
    reason: str,
    purpose: str | None,
    ticket: str | None,
    policy_version: str | None = None,
) -> AccessEvent:
    """An audit record of one decision (purpose and ticket already scrubbed)."""
    return AccessEvent(
        event=event,
        time=now_iso(),
        request_id=request_id,
        route=route,
        subject=principal.subject,
        tenant=principal.tenant,
        token=token,
        level=level.value,
        reason=reason,
        purpose=purpose,
        ticket=ticket,
        token_id=principal.token_id,
        policy_version=policy_version,
    )


async def reveal(
    request: web.Request, route: str, principal: Principal, req: RevealRequest
) -> dict[str, Outcome]:
    """Decide, resolve and audit every token of `req` for a verified `principal`.

    Raises RevealRateLimitedError (every token rate limited), a vault error or
    AuditWriteError (503: then no value is answered).
    """
    agent = agent_of(request)
    request[LEVEL_ASKED] = req.level.value if req.level is not None else "default"
    policy_version = agent.policies.policy.version
    decisions = decide_tokens(
        agent, principal, req.tokens, purpose=req.purpose, ticket=req.ticket, requested=req.level
    )
    retry_after_s = await count_full_reveals(agent, principal, decisions)
    granted = [t for t, d in decisions.items() if d is not None and d.granted]
    found = await resolve_granted(agent, principal, granted)

    show_first_six = agent.policies.policy.card_show_first_six
    outcomes: dict[str, Outcome] = {}
    for token, decision in decisions.items():
        if decision is None:
            outcomes[token] = Outcome(token, Level.NONE, "invalid_format")
        elif not decision.granted:
            outcomes[token] = Outcome(token, Level.NONE, decision.reason_code.value)
        else:
            resolution = found.get(token, NotFound(token))
            if isinstance(resolution, Resolved):
                level = decision.granted_level
                value = render(
                    resolution.entity_type, resolution.value, level, show_first_six=show_first_six
                )
                outcomes[token] = Outcome(token, level, Reason.GRANTED.value, value)
            else:
                # not_found, erased, key_missing or corrupt: audited below like any outcome.
                outcomes[token] = Outcome(token, Level.NONE, resolution.status)

    purpose = scrub_free_text(req.purpose, agent.detector)
    ticket = scrub_free_text(req.ticket, agent.detector)
    request_id = request[REQUEST_ID]
    # Written before the answer: if the audit cannot be written, no value leaves (503).
    await agent.audit.write_many(
        [
            access_event(
                "token_revealed" if o.value is not None else "token_denied",
                request_id,
                route,
                principal,
                o.token,
                o.level,
                o.reason,
                purpose,
                ticket,
                policy_version,
            )
            for o in outcomes.values()
        ]
    )
    revealed = sum(1 for o in outcomes.values() if o.value is not None)
    log.info(
        "tokens_resolved",
        route=route,
        subject=principal.subject,
        tenant=principal.tenant,
        tokens=len(outcomes),
        revealed=revealed,
        denied=len(outcomes) - revealed,
    )
    if outcomes and all(o.reason == Reason.RATE_LIMITED for o in outcomes.values()):
        request[RETRY_AFTER_S] = retry_after_s if retry_after_s is not None else 60
        raise RevealRateLimitedError()
    return outcomes


# --- handlers -----------------------------------------------------------------------------------


async def handle_resolve(request: web.Request) -> web.Response:
    """POST /v1/resolve: per token, the level granted and the value at it, or why not."""
    agent = agent_of(request)
    # Who is asking comes first: an unauthenticated caller learns nothing, not even a 400.
    principal = await authenticate(request, "resolve")
    body = await read_bounded(request, agent.settings.max_body_bytes)
    req = parse_reveal_request(body, text=False, max_tokens=agent.settings.max_tokens_per_request)
    outcomes = await reveal(request, "resolve", principal, req)
    return web.json_response(
        {
            "results": [outcomes[t].to_dict() for t in req.tokens],
            "request_id": request[REQUEST_ID],
        }
    )


async def handle_reveal_text(request: web.Request) -> web.Response:
    """POST /v1/reveal-text: the text with each token shown as far as the caller may see it."""
    agent = agent_of(request)
    principal = await authenticate(request, "reveal_text")
    body = await read_bounded(request, agent.settings.max_body_bytes)
    req = parse_reveal_request(body, text=True, max_tokens=agent.settings.max_tokens_per_request)
    outcomes = await reveal(request, "reveal_text", principal, req)

    def replace(match: re.Match[str]) -> str:
        outcome = outcomes.get(match.group(0))
        return outcome.value if outcome is not None and outcome.value is not None else match[0]

    text = TOKEN_PATTERN.sub(replace, req.text or "")
    summary = [
        {"token": o.token, "level": o.level.value}
        if o.value is not None
        else {"token": o.token, "level": Level.NONE.value, "denied": o.reason}
        for o in outcomes.values()
    ]
    return web.json_response({"text": text, "tokens": summary, "request_id": request[REQUEST_ID]})
