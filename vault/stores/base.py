"""The TokenStore Protocol and the records it exchanges with the vault service.

A store holds only what the service hands it: lookup digests (keyed HMACs), tokens,
ciphertexts and wrapped data keys. It never sees a raw value or an unwrapped key, so
nothing a store logs, raises or writes to disk can contain one.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

from vault.errors import KeyRetireError
from vault.mark import VaultMark
from vault.outbox import OutboxStore

# 1: tokens and data keys. 2: the key records (check values, states, an epoch counter) and the
# heartbeats of running processes. 3: the vault's id and minted counter (its high-water mark),
# a pending rotation, and tokens recorded as lost by `vault reconcile --record`. 4: full reveals
# counted for the reveal rate limit (reveal_events). 6: the outbox of queued routes (outbox).
SCHEMA_VERSION = 6

KekState = Literal["active", "decrypt-only", "retired"]


@dataclass(frozen=True, slots=True)
class DekRecord:
    """A data key as stored: wrapped by KEK `kek_version`."""

    dek_id: str
    tenant: str
    # The KEK version that was active when the key was made; one live DEK per tenant per
    # generation, so rotation starts a fresh DEK without touching older ones.
    generation: int
    kek_version: int
    wrapped: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class NewRow:
    """One value to insert if its lookup digest is not yet in the tenant's index."""

    lookup: bytes
    token: str
    entity_type: str
    sealed: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class StoredValue:
    """A token's row joined with its data key. `sealed is None` means erased."""

    token: str
    entity_type: str
    sealed: bytes | None = field(repr=False)
    dek: DekRecord | None


@dataclass(frozen=True, slots=True)
class KekUsage:
    """How many live data keys (of how many tenants) a KEK version still wraps."""

    kek_version: int
    deks: int
    tenants: int


@dataclass(frozen=True, slots=True)
class KekRecord:
    """What the vault records of one KEK version: a check value, never the key."""

    version: int
    state: KekState
    check_value: bytes = field(repr=False)
    active_at: int
    decrypt_only_at: int | None = None
    retired_at: int | None = None


@dataclass(frozen=True, slots=True)
class KeyState:
    """The vault's key records. `epoch` grows with every rotation or retirement."""

    epoch: int
    index_check: bytes = field(repr=False)
    keks: tuple[KekRecord, ...]
    # A `keys rotate` claimed this version (and wrote it to its key file, or was about to)
    # but has not recorded it as active yet.
    pending_version: int | None = None
    pending_check: bytes | None = field(default=None, repr=False)

    @property
    def active_version(self) -> int | None:
        """The version new data keys must be wrapped with."""
        return next((k.version for k in self.keks if k.state == "active"), None)

    def record(self, version: int) -> KekRecord | None:
        """The record of `version`, if the vault has one."""
        return next((k for k in self.keks if k.version == version), None)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A running process that checked in: the KEK version it wraps new data keys with."""

    process_id: str
    active_version: int
    seen_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class RevealBudget:
    """What `take_reveals` allowed: how many of the reveals asked for were counted, and when
    the oldest reveal still counted in the window happened (None: none is counted)."""

    granted: int
    oldest_at: float | None


class TokenStore(Protocol):
    """Persistence for tokens and data keys. Every method is one transaction.

    Every method raises VaultUnavailableError when the store is down or times out.
    """

    async def migrate(self) -> int:
        """Create or upgrade the schema (idempotent, safe from several processes at once).

        Returns the schema version. Raises VaultSchemaError if the store is newer than us.
        """
        ...

    async def check_schema(self) -> None:
        """Cheap readiness probe. Raises VaultSchemaError if not migrated to our version,
        VaultGoneError if the SQLite file was removed or replaced since it was opened."""
        ...

    async def exists(self) -> bool:
        """Whether the vault was ever created here (schema table present)."""
        ...

    async def read_epoch(self) -> int | None:
        """The key-state counter (one cheap read); None before keys are recorded."""
        ...

    async def take_reveals(
        self, subject_key: str, count: int, *, limit: int, window_s: float, now: float
    ) -> RevealBudget:
        """In one transaction serialised per subject across processes and replicas: forget
        reveals older than the window, count `subject_key`'s, and record up to `count` more
        at `now` without passing `limit`."""
        ...

    async def read_key_state(self) -> KeyState | None:
        """The key records; None if this vault has never recorded a key ring."""
        ...

    async def init_key_state(self, state: KeyState, now: int) -> bool:
        """Record a first key ring; False (nothing written) if one is already recorded."""
        ...

    async def record_rotation(
        self, new: KekRecord, now: int, *, expected_epoch: int | None = None
    ) -> None:
        """In one transaction: the active version becomes decrypt-only, `new` becomes active,
        the epoch grows, a pending rotation is cleared.

        With `expected_epoch`, only if the epoch is still that and `new` is the pending
        version (claimed with `claim_rotation`). Raises KeyRingMismatchError if `new.version`
        is already recorded, KeyStateChangedError if the epoch or the pending version differ.
        """
        ...

    async def claim_rotation(self, new: KekRecord, expected_epoch: int) -> int:
        """Record `new` as the pending version if the epoch is still `expected_epoch` and no
        rotation is pending; the epoch grows. Returns the new epoch.

        Raises KeyStateChangedError otherwise (another key command got there first).
        """
        ...

    async def clear_pending(self, expected_epoch: int) -> int:
        """Forget a pending rotation that never reached its key file; the epoch grows.

        Returns the new epoch. Raises KeyStateChangedError if the epoch is not `expected_epoch`.
        """
        ...

    async def record_retirement(
        self, version: int, now: int, *, expected_epoch: int | None = None
    ) -> None:
        """Mark `version` retired, in one transaction with the checks that allow it.

        Raises KeyRetireError naming what still needs it: it is active, data keys are
        wrapped by it, or a process that checked in recently still holds it as active;
        KeyStateChangedError if `expected_epoch` is given and the epoch is another.
        """
        ...

    def key_command_lock(self) -> AbstractAsyncContextManager[None]:
        """Held across a whole `keys rotate` or `keys retire`: one at a time per vault.

        Raises KeyCommandBusyError at once (never waits) if another command holds it.
        """
        ...

    async def read_mark(self) -> VaultMark:
        """The vault's id and counters (tokens minted, key epoch): its high-water mark."""
        ...

    async def accept_mark(self, mark: VaultMark) -> VaultMark:
        """Raise the vault's counters past `mark` (an operator accepts a restored vault).

        Returns the vault's mark afterwards.
        """
        ...

    async def clock_now(self) -> int | None:
        """The store's own clock in epoch seconds (PostgreSQL `now()`); None for SQLite, whose
        clock is the host's."""
        ...

    async def newest_activity(self) -> int | None:
        """The latest time a token was created, seen or resolved; None for an empty vault."""
        ...

    async def count_purgeable(self, cutoff: int) -> int:
        """How many rows `purge(cutoff)` would delete."""
        ...

    async def present_tokens(self, tenant: str, tokens: Sequence[str]) -> set[str]:
        """Which of `tokens` have a row in `tenant` (erased ones too); read-only."""
        ...

    async def record_lost(self, tenant: str, tokens: Sequence[str], now: int) -> int:
        """Record tokens the audit trail shows minted that the vault lacks; returns how many
        were new. A lost token that is resolved is logged at error level."""
        ...

    async def lost_tokens(self, tenant: str, tokens: Sequence[str]) -> set[str]:
        """Which of `tokens` are recorded as lost in `tenant`; read-only."""
        ...

    async def heartbeat(self, beat: Heartbeat) -> None:
        """Record (or refresh) a running process's check-in."""
        ...

    async def drop_heartbeat(self, process_id: str) -> None:
        """Forget a process that stops."""
        ...

    async def live_heartbeats(self, now: int) -> list[Heartbeat]:
        """Processes whose check-in has not expired at `now`."""
        ...

    async def sample_deks(self) -> list[DekRecord]:
        """One live data key per KEK version (to prove a key ring opens them)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    def outbox(self) -> OutboxStore:
        """The outbox of queued routes, in this store's database."""
        ...

    async def get_active_dek(self, tenant: str, generation: int) -> DekRecord | None:
        """The tenant's live data key of this generation, if any."""
        ...

    async def insert_dek(self, candidate: DekRecord, now: int) -> DekRecord | None:
        """Insert `candidate` unless the tenant already has a key of that generation.

        Returns whichever key won, so concurrent creators agree on one; None if the vault
        does not record `candidate.kek_version` as active (it never wraps under another).
        """
        ...

    async def tokenize(
        self, tenant: str, dek_id: str, rows: Sequence[NewRow], now: int
    ) -> dict[bytes, str] | None:
        """Insert rows whose lookup is new, keep existing ones; one transaction.

        Returns lookup -> token for every row (the existing token where there was one), or
        None if data key `dek_id` no longer exists (the tenant was erased meanwhile).
        """
        ...

    async def resolve(
        self, tenant: str, tokens: Sequence[str], now: int, touch_before: int
    ) -> list[StoredValue]:
        """Rows of `tokens` in `tenant` (absent ones are left out), with their data keys.

        Records `now` as last-resolved time on rows last resolved before `touch_before`.
        """
        ...

    async def find_token(self, tenant: str, lookup: bytes) -> str | None:
        """The token of the value with this lookup digest in `tenant`, or None; read-only."""
        ...

    async def erase_token(self, tenant: str, token: str) -> bool:
        """Drop one token's ciphertext and lookup digest; False if there is no such token."""
        ...

    async def erase_tenant(self, tenant: str) -> int | None:
        """Delete the tenant's data keys and ciphertexts (crypto-shredding).

        Returns the number of tokens that now resolve as erased; None if the vault holds
        nothing of this tenant (no data key, no token).
        """
        ...

    async def purge(self, cutoff: int) -> int:
        """Delete rows neither created, seen nor resolved since `cutoff`; return how many."""
        ...

    async def list_deks_to_rewrap(
        self, active_version: int, after_dek_id: str, limit: int
    ) -> list[DekRecord]:
        """Up to `limit` live data keys not wrapped by `active_version`, by id after `after_dek_id`."""
        ...

    async def replace_wrapped(self, old: DekRecord, kek_version: int, wrapped: bytes) -> bool:
        """Swap a key's wrapping if it is still `old` and `kek_version` is the active one
        (compare-and-set); False otherwise."""
        ...

    async def kek_usage(self) -> list[KekUsage]:
        """Live data keys per KEK version."""
        ...


def retire_refusal(version: int, state: str | None, deks: int, tenants: int, holders: int) -> None:
    """Raise KeyRetireError naming what still needs `version` (shared by both stores)."""
    if state is None:
        raise KeyRetireError(f"kek version {version} is not recorded in the vault")
    if state == "active":
        raise KeyRetireError(f"kek version {version} is active; rotate first")
    if deks:
        raise KeyRetireError(
            f"kek version {version} still wraps {deks} data keys of {tenants} tenants; "
            "run `redactor keys rewrap` first"
        )
    if holders:
        raise KeyRetireError(
            f"{holders} running processes still hold kek version {version} as active; "
            "let them load the rotated key file (or restart them) and try again"
        )
