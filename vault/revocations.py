"""The agent revocation list: JWT ids and subjects the agent API refuses until an expiry.

Kept in the vault's database (schema step 5) because every worker and replica already reads
it: `redactor agents revoke` writes an entry and bumps a version counter in one transaction,
and each server process polls the counter (one row) and reloads the entries when it moved
(redactor/agent/revocations.py). Deleting expired entries does not bump it: an expired entry
is ignored by every reader already.

A subject is stored as it must be matched (the configured subject claim's value), with its
tenant or "" for every tenant; a JWT id with tenant "" (an IdP's jti is unique on its own).
Nothing else of a token is kept: no claims, no signature, no token string.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from vault.errors import VaultError
from vault.values import check_tenant

RevocationKind = Literal["jti", "subject"]
KINDS: tuple[RevocationKind, ...] = ("jti", "subject")
# The tenant of an entry that holds in every tenant (a jti always; a subject without --tenant).
ANY_TENANT = ""
MAX_VALUE_CHARS = 256
MAX_REASON_CHARS = 500
# The promise every server process keeps (README, "Revoking agent tokens"): a revocation is
# refused everywhere within this many seconds, or the process refuses agent calls (503).
REVOCATION_DELAY_S = 5.0
# Expired entries stay this long (`agents list-revoked --all` shows what lapsed lately), then
# the servers and the commands delete them.
PURGE_AFTER_S = 86400


class RevocationInputError(VaultError):
    """A revocation command's arguments do not make an entry (the detail says which)."""

    status = 400
    code = "revocation_invalid"
    message = "invalid arguments"


@dataclass(frozen=True, slots=True)
class Revocation:
    """One entry: `value` (a jti or a subject) refused in `tenant` until `expires_at`."""

    kind: RevocationKind
    tenant: str
    value: str
    expires_at: int
    operator: str
    created_at: int
    reason: str | None = field(default=None)

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the entry (a second revoke of it replaces it)."""
        return (self.kind, self.tenant, self.value)


def check_entry(kind: str, tenant: str, value: str) -> None:
    """Raise RevocationInputError (TenantFormatError for a bad tenant) unless (kind, tenant, value) can be an entry: a known kind, a
    tenant in the vault's alphabet (or "" for every tenant; always "" for a jti), a value of
    printable characters of bounded length. The messages never quote the value."""
    if kind not in KINDS:
        raise RevocationInputError("a revocation is by jti or by subject")
    if not value or len(value) > MAX_VALUE_CHARS:
        raise RevocationInputError(f"the {kind} must be 1 to {MAX_VALUE_CHARS} characters")
    if not value.isprintable() or value != value.strip():
        raise RevocationInputError(f"the {kind} must be printable, without surrounding spaces")
    if kind == "jti" and tenant != ANY_TENANT:
        raise RevocationInputError("a jti is revoked in every tenant: --tenant goes with --subject")
    if tenant != ANY_TENANT:
        check_tenant(tenant)


@dataclass(frozen=True, slots=True)
class RevocationSet:
    """The entries a server process holds in memory, keyed for one dict lookup per check."""

    jtis: Mapping[str, int] = field(default_factory=dict)
    subjects: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[Revocation]) -> RevocationSet:
        """The set of `entries` (the latest expiry wins if one appears twice)."""
        jtis: dict[str, int] = {}
        subjects: dict[tuple[str, str], int] = {}
        for e in entries:
            if e.kind == "jti":
                jtis[e.value] = max(e.expires_at, jtis.get(e.value, 0))
            else:
                key = (e.tenant, e.value)
                subjects[key] = max(e.expires_at, subjects.get(key, 0))
        return cls(jtis, subjects)

    def __len__(self) -> int:
        return len(self.jtis) + len(self.subjects)

    def match(
        self, jti: str | None, tenant: str, subject: str, now: float
    ) -> RevocationKind | None:
        """Which entry refuses a token (`jti` first), or None; expired entries never do."""
        if jti is not None and self.jtis.get(jti, 0) > now:
            return "jti"
        if (
            self.subjects.get((tenant, subject), 0) > now
            or self.subjects.get((ANY_TENANT, subject), 0) > now
        ):
            return "subject"
        return None


# --- SQL, per backend (the stores' methods are thin wrappers around these) ---------------------

SQLITE_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE agent_revocations (
        kind TEXT NOT NULL CHECK (kind IN ('jti', 'subject')),
        tenant TEXT NOT NULL,
        value TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        operator TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        reason TEXT,
        PRIMARY KEY (kind, tenant, value)
    )""",
    "CREATE INDEX agent_revocations_expiry ON agent_revocations (expires_at)",
    # One row: bumped with every change, the one thing every server process polls.
    """CREATE TABLE agent_revocation_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    "INSERT INTO agent_revocation_state (id, version) VALUES (1, 0)",
)

POSTGRES_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE agent_revocations (
        kind text NOT NULL CHECK (kind IN ('jti', 'subject')),
        tenant text NOT NULL,
        value text NOT NULL,
        expires_at bigint NOT NULL,
        operator text NOT NULL,
        created_at bigint NOT NULL,
        reason text,
        PRIMARY KEY (kind, tenant, value)
    )""",
    "CREATE INDEX agent_revocations_expiry ON agent_revocations (expires_at)",
    """CREATE TABLE agent_revocation_state (
        id integer PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL
    )""",
    "INSERT INTO agent_revocation_state (id, version) VALUES (1, 0)",
)

COLUMNS = "kind, tenant, value, expires_at, operator, created_at, reason"
READ_VERSION = "SELECT version FROM agent_revocation_state"
BUMP_VERSION = "UPDATE agent_revocation_state SET version = version + 1"

SQLITE_SELECT_LIVE = (
    f"SELECT {COLUMNS} FROM agent_revocations WHERE expires_at > ? "  # noqa: S608 - constants
    "ORDER BY created_at, kind, tenant, value"
)
SQLITE_SELECT_ALL = (
    f"SELECT {COLUMNS} FROM agent_revocations "  # noqa: S608 - constants
    "ORDER BY created_at, kind, tenant, value"
)
SQLITE_UPSERT = (
    f"INSERT INTO agent_revocations ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "  # noqa: S608 - constants
    "ON CONFLICT (kind, tenant, value) DO UPDATE SET expires_at = excluded.expires_at, "
    "operator = excluded.operator, created_at = excluded.created_at, reason = excluded.reason"
)
SQLITE_EXISTS = "SELECT 1 FROM agent_revocations WHERE kind = ? AND tenant = ? AND value = ?"
SQLITE_DELETE = (
    "DELETE FROM agent_revocations WHERE kind = ? AND tenant = ? AND value = ? RETURNING kind"
)
SQLITE_PURGE = "DELETE FROM agent_revocations WHERE expires_at <= ? RETURNING kind"

PG_SELECT_LIVE = SQLITE_SELECT_LIVE.replace("?", "$1")
PG_SELECT_ALL = SQLITE_SELECT_ALL
PG_UPSERT = (
    f"INSERT INTO agent_revocations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) "  # noqa: S608 - constants
    "ON CONFLICT (kind, tenant, value) DO UPDATE SET expires_at = EXCLUDED.expires_at, "
    "operator = EXCLUDED.operator, created_at = EXCLUDED.created_at, reason = EXCLUDED.reason"
)
PG_EXISTS = "SELECT 1 FROM agent_revocations WHERE kind = $1 AND tenant = $2 AND value = $3"
PG_DELETE = (
    "DELETE FROM agent_revocations WHERE kind = $1 AND tenant = $2 AND value = $3 RETURNING kind"
)
PG_PURGE = "DELETE FROM agent_revocations WHERE expires_at <= $1 RETURNING kind"


def entry_params(entry: Revocation) -> tuple[object, ...]:
    """The entry's columns in COLUMNS order."""
    return (
        entry.kind,
        entry.tenant,
        entry.value,
        entry.expires_at,
        entry.operator,
        entry.created_at,
        entry.reason,
    )


def entry_of(row: Iterable[object]) -> Revocation:
    """An entry from a row in COLUMNS order."""
    kind, tenant, value, expires_at, operator, created_at, reason = tuple(row)
    return Revocation(
        kind="jti" if kind == "jti" else "subject",
        tenant=str(tenant),
        value=str(value),
        expires_at=int(str(expires_at)),
        operator=str(operator),
        created_at=int(str(created_at)),
        reason=None if reason is None else str(reason),
    )
