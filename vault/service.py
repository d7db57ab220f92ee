"""Vault: tokenize_many, resolve_many, erasure, retention and re-wrapping.

Per message: normalise and de-duplicate values, compute lookup digests, seal each value
with the tenant's data key, then ONE store call inserts what is new and returns the token of
every value. Data keys are unwrapped once and kept in memory; nothing else is cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import structlog

from vault.crypto import KEY_BYTES, SealingKey, lookup_digest
from vault.errors import (
    KeyRingMismatchError,
    KeyRingStaleError,
    KeyVersionMissingError,
    VaultBehindError,
    VaultError,
    VaultGoneError,
    VaultIntegrityError,
    VaultSchemaError,
    VaultUnavailableError,
)
from vault.keyring import (
    KekProvider,
    KeyMaterial,
    LocalKekProvider,
    LookupKeys,
    dek_associated_data,
    new_nonce,
    value_associated_data,
)
from vault.keystate import initial_key_state, key_ring_problems
from vault.mark import VaultMark, advance_mark, behind, highest, read_mark
from vault.outbox import OutboxStore
from vault.retention import PurgePlan
from vault.stores.base import (
    DekRecord,
    Heartbeat,
    KekUsage,
    KeyState,
    NewRow,
    RevealBudget,
    StoredValue,
    TokenStore,
)
from vault.tokens import EntityType, Token, format_token, new_token_id, parse_token
from vault.values import check_tenant, normalise_value, parse_entity_type

log = structlog.get_logger("vault")

# Retention is counted in days, so a token's last-resolved time needs refreshing at most
# hourly; resolves in between stay read-only.
RESOLVE_TOUCH_INTERVAL_S = 3600
# Unwrapped data keys kept per process; one per tenant per key generation in practice.
_DEK_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Resolved:
    """A token that resolved to its value (normalised ASCII digits)."""

    status: ClassVar[Literal["resolved"]] = "resolved"
    token: str
    entity_type: EntityType
    value: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class NotFound:
    """No such token in this tenant (never created, purged, or another tenant's)."""

    status: ClassVar[Literal["not_found"]] = "not_found"
    token: str


@dataclass(frozen=True, slots=True)
class Erased:
    """The token existed but its value was erased (token or tenant erasure)."""

    status: ClassVar[Literal["erased"]] = "erased"
    token: str


@dataclass(frozen=True, slots=True)
class KeyMissing:
    """The token's data key is wrapped by a KEK version this process's key ring lacks."""

    status: ClassVar[Literal["key_missing"]] = "key_missing"
    token: str
    key_version: int


@dataclass(frozen=True, slots=True)
class Corrupt:
    """The token's value or data key failed its integrity check (never a wrong value)."""

    status: ClassVar[Literal["corrupt"]] = "corrupt"
    token: str


Resolution = Resolved | NotFound | Erased | KeyMissing | Corrupt

# Check-ins expire after this many check intervals: a process that missed two is gone.
_HEARTBEAT_INTERVALS = 3
# What the watcher keeps failing on until it clears: the store's file or schema changed.
_LASTING_FAULTS = (VaultGoneError, VaultSchemaError, KeyRingMismatchError, VaultBehindError)


@dataclass(frozen=True, slots=True)
class RewrapReport:
    """What `Vault.rewrap` did: keys re-wrapped, skipped (changed meanwhile), failed."""

    rewrapped: int
    skipped: int
    failed_versions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _ActiveDek:
    dek_id: str
    key: SealingKey = field(repr=False)


class Vault:
    """The vault service. Build it with `vault.startup.open_vault`; close it with `close()`."""

    def __init__(
        self,
        store: TokenStore,
        keks: KekProvider,
        lookup_keys: LookupKeys,
        *,
        card_last4: bool = True,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        key_source: Callable[[], Awaitable[KeyMaterial]] | None = None,
        key_check_interval_s: float = 2.0,
        mark_file: Path | None = None,
    ) -> None:
        self._store = store
        # The high-water mark outside the vault (vault/mark.py); None: not kept (tests).
        self._mark_file = mark_file
        # The highest counters this process saw in the vault, and the last copied to the file.
        self._mark_seen: VaultMark | None = None
        self._mark_written: VaultMark | None = None
        self._keks = keks
        # Re-reads the key ring (the key file) when the vault says the keys changed.
        self._key_source = key_source
        self._key_check_interval_s = key_check_interval_s
        self._process_id = random_bytes(8).hex()
        # The key-state counter last seen, and the active version the vault recorded then.
        self._epoch: int | None = None
        self._vault_active: int | None = None
        # True while the vault's active KEK is not in our ring: no new data key is wrapped.
        self._stale = False
        self._fault: VaultError | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._lookup_keys = lookup_keys
        self._card_last4 = card_last4
        self._clock = clock
        self._random_bytes = random_bytes
        self._active: dict[str, _ActiveDek] = {}
        # Keyed by (tenant, dek_id): re-wrapping never changes a data key's bytes, so a key
        # unwrapped once stays valid through rotation, even in a process whose key ring
        # predates it. The tenant is in the key so erasure can forget its entries.
        self._unwrapped: dict[tuple[str, str], SealingKey] = {}

    async def __aenter__(self) -> Vault:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the key watch, copy the vault's counters to the mark file, check out, release
        the store's connections, forget keys."""
        self._active.clear()
        self._unwrapped.clear()
        try:
            if self._mark_seen is not None:
                try:
                    # What this process saw is history even if the vault went back since.
                    await self.record_mark()
                    await self.check_mark()
                    await self.record_mark()
                except VaultError as exc:
                    # The last interval's mark is in the file already; stopping goes on.
                    log.warning("vault_mark_not_recorded", error=exc.code)
            if self._watch_task is not None:
                self._watch_task.cancel()
                # Our own task, cancelled just above: gather collects its CancelledError.
                await asyncio.gather(self._watch_task, return_exceptions=True)
                self._watch_task = None
                try:
                    await self._store.drop_heartbeat(self._process_id)
                except VaultError:
                    # The row expires on its own; stopping must not fail on a dead store.
                    log.warning("heartbeat_not_dropped")
        finally:
            await self._store.close()

    @property
    def process_id(self) -> str:
        """The id this process checks in with (the heartbeat table's key)."""
        return self._process_id

    @property
    def outbox(self) -> OutboxStore:
        """The outbox of queued routes, in the vault's database (vault/outbox.py)."""
        return self._store.outbox()

    async def check_ready(self) -> None:
        """Readiness for /readyz: the store, its schema and file, and the key ring's fit.

        Raises VaultUnavailableError (store down), VaultGoneError (SQLite file removed or
        replaced), VaultSchemaError, KeyRingStaleError (the vault's active KEK is not in our
        ring) or KeyRingMismatchError (the same check as at start).
        """
        await self._store.check_schema()
        await self.check_mark()
        await self._sync_keys()
        if self._stale:
            raise KeyRingStaleError()
        await self._check_ring()

    async def check_mark(self) -> VaultMark:
        """The vault's counters, checked against the mark file and against what this process
        saw: a vault restored from an older copy is refused (at start, on /readyz, and by the
        key watch while serving). Returns the vault's mark.

        Raises VaultBehindError naming both marks and the runbook step, VaultGoneError if
        the vault's id changed under this process, VaultConfigError if the mark file cannot
        be read, VaultUnavailableError.
        """
        current = await self._store.read_mark()
        if self._mark_seen is not None and self._mark_seen.vault_id != current.vault_id:
            raise VaultGoneError("the vault's id changed")
        recorded = self._mark_seen
        if self._mark_file is not None:
            in_file = await asyncio.to_thread(read_mark, self._mark_file, current.vault_id)
            recorded = highest(recorded, in_file)
        problem = behind(current, recorded)
        if problem is not None and recorded is not None:
            log.error(
                "vault_behind",
                vault_minted=current.minted,
                vault_epoch=current.epoch,
                mark_minted=recorded.minted,
                mark_epoch=recorded.epoch,
            )
            raise VaultBehindError(problem)
        self._mark_seen = highest(self._mark_seen, current)
        return current

    async def record_mark(self) -> None:
        """Copy the highest counters seen to the mark file, when they moved since the last copy.

        Raises VaultConfigError if the file cannot be written.
        """
        seen = self._mark_seen
        if self._mark_file is None or seen is None or seen == self._mark_written:
            return
        self._mark_written = await asyncio.to_thread(advance_mark, self._mark_file, seen)

    async def bind_keys(self, *, record: bool = True) -> None:
        """Check the key ring against the vault's key records, once at start.

        A vault with no records yet (fresh, or made before they existed) records this ring
        when `record` is set, after proving the ring opens one data key of every KEK version
        in use. Raises KeyRingMismatchError naming the versions that do not fit.
        """
        state = await self._store.read_key_state()
        if state is None:
            if not record:
                raise KeyRingMismatchError("the vault records no key ring yet")
            await self._record_first_ring()
        state = await self._check_ring()
        self._epoch = state.epoch
        self._vault_active = state.active_version

    async def _record_first_ring(self) -> None:
        unopened: set[int] = set()
        for dek in await self._store.sample_deks():
            try:
                await self._unwrap(dek, token=None)
            except VaultIntegrityError:
                unopened.add(dek.kek_version)
        if unopened:
            versions = ", ".join(str(v) for v in sorted(unopened))
            raise KeyRingMismatchError(
                f"data keys wrapped by kek versions {versions} do not open with this key ring"
            )
        state = initial_key_state(
            self._keks.check_values,
            self._keks.active_version,
            self._lookup_keys.check_value,
            int(self._clock()),
        )
        if await self._store.init_key_state(state, int(self._clock())):
            log.info("key_ring_recorded", kek_versions=sorted(self._keks.check_values))

    async def _check_ring(self) -> KeyState:
        state = await self._store.read_key_state()
        if state is None:
            raise KeyRingMismatchError("the vault records no key ring yet")
        wrapping = {u.kek_version: u.deks for u in await self._store.kek_usage()}
        problems = key_ring_problems(
            state,
            self._keks.check_values,
            self._keks.active_version,
            self._lookup_keys.check_value,
            wrapping,
        )
        if problems:
            log.error("key_ring_mismatch", problems=problems)
            raise KeyRingMismatchError("; ".join(problems))
        return state

    async def _sync_keys(self) -> None:
        """Learn of rotations and retirements from the vault (one read when nothing changed).

        When the vault's active KEK is not ours, re-read the key ring from its source; if
        it is still not there, this process stops wrapping new data keys (stale) until it is.
        """
        epoch = await self._store.read_epoch()
        if epoch is None or epoch == self._epoch:
            return
        state = await self._store.read_key_state()
        if state is None:
            return
        active = state.active_version
        if active is not None and active != self._keks.active_version:
            await self._reload_ring(state)
        fits = active is not None and active == self._keks.active_version
        if fits and active != self._vault_active:
            # A rotation: new messages get data keys of the new generation.
            self._active.clear()
        if fits and self._stale:
            log.info("key_ring_current", kek_active_version=active)
        elif not fits and not self._stale:
            log.error(
                "key_ring_stale",
                vault_active_version=active,
                ring_active_version=self._keks.active_version,
            )
        self._stale = not fits
        self._epoch = state.epoch
        self._vault_active = active

    async def _reload_ring(self, state: KeyState) -> None:
        if self._key_source is None:
            return
        try:
            material = await self._key_source()
        except VaultError as exc:
            log.error("key_ring_reload_failed", error=exc.code)  # noqa: TRY400 - typed, opaque
            return
        if LookupKeys(material.index_key).check_value != self._lookup_keys.check_value:
            log.error("key_ring_reload_refused", reason="index key differs")
            return
        provider = LocalKekProvider(material)
        problems = key_ring_problems(
            state,
            provider.check_values,
            provider.active_version,
            self._lookup_keys.check_value,
            {},
        )
        if problems:
            log.error("key_ring_reload_refused", problems=problems)
            return
        self._keks = provider
        log.info("key_ring_reloaded", kek_active_version=provider.active_version)

    def start_key_watch(self) -> None:
        """Check in and follow the vault's key state every key-check interval (serving only)."""
        if self._watch_task is None:
            self._watch_task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            try:
                await self._store.check_schema()
                try:
                    await self.check_mark()
                finally:
                    # Also when it is behind: the highest counters seen go to the file, so a
                    # restart is refused too.
                    await self.record_mark()
                await self._sync_keys()
                await self.record_mark()
                now = int(self._clock())
                expires = now + math.ceil(self._key_check_interval_s * _HEARTBEAT_INTERVALS) + 1
                await self._store.heartbeat(
                    Heartbeat(self._process_id, self._keks.active_version, now, expires)
                )
                if self._fault is not None:
                    log.info("vault_recovered")
                self._fault = None
            except _LASTING_FAULTS as exc:
                if self._fault is None:
                    log.error("vault_not_usable", error=exc.code)  # noqa: TRY400 - typed, opaque
                self._fault = exc
            except VaultError as exc:
                # Down for a moment: calls fail on their own; nothing to remember.
                log.warning("vault_check_failed", error=exc.code)
            await asyncio.sleep(self._key_check_interval_s)

    def _raise_fault(self) -> None:
        if self._fault is not None:
            fault = self._fault
            raise type(fault)(fault.detail)

    async def tokenize_many(
        self, tenant: str, items: Sequence[tuple[EntityType | str, str]]
    ) -> list[Token]:
        """Tokens for (entity_type, raw_value) pairs, in order; one store transaction.

        The same value (after normalisation) gets the same token within a tenant, in this
        call and across calls. Raises TenantFormatError, ValueFormatError,
        VaultUnavailableError, VaultIntegrityError.
        """
        check_tenant(tenant)
        if not items:
            return []
        self._raise_fault()
        keys: list[tuple[EntityType, str]] = []
        unique: dict[tuple[EntityType, str], bytes] = {}
        subkey = self._lookup_keys.for_tenant(tenant)
        for entity_name, raw in items:
            entity_type = parse_entity_type(entity_name)
            key = (entity_type, normalise_value(entity_type, raw))
            keys.append(key)
            if key not in unique:
                unique[key] = lookup_digest(subkey, entity_type.value, key[1])

        for _attempt in range(2):
            dek = await self._active_dek(tenant)
            rows = [
                self._new_row(tenant, dek, et, digits, unique[(et, digits)])
                for et, digits in unique
            ]
            found = await self._store.tokenize(tenant, dek.dek_id, rows, int(self._clock()))
            if found is not None:
                break
            # The tenant was erased (its keys deleted) after we cached its data key.
            self._active.pop(tenant, None)
        else:
            raise VaultUnavailableError("tenant keys changed during tokenize")
        log.debug("values_tokenized", tenant=tenant, values=len(items), unique=len(unique))
        return [Token(found[unique[key]], key[0]) for key in keys]

    def _new_row(
        self, tenant: str, dek: _ActiveDek, entity_type: EntityType, digits: str, lookup: bytes
    ) -> NewRow:
        last4 = digits[-4:] if entity_type is EntityType.CARD and self._card_last4 else None
        token = format_token(entity_type, new_token_id(self._random_bytes), last4)
        ad = value_associated_data(tenant, token, entity_type.value, dek.dek_id)
        return NewRow(
            lookup, token, entity_type.value, dek.key.seal(digits.encode(), ad, new_nonce())
        )

    async def _active_dek(self, tenant: str) -> _ActiveDek:
        cached = self._active.get(tenant)
        if cached is not None:
            return cached
        for _attempt in range(2):
            # Always ask the vault before wrapping: a rotation or retirement another process
            # made is seen here even between two key checks.
            await self._sync_keys()
            if self._stale:
                raise KeyRingStaleError()
            record = await self._dek_of_generation(tenant, self._keks.active_version)
            if record is not None:
                break
            # The vault stopped recording our version as active between the read and the
            # insert: read the key state again.
            self._epoch = None
        else:
            raise KeyRingStaleError()
        active = _ActiveDek(record.dek_id, await self._unwrap(record, token=None))
        self._active[tenant] = active
        return active

    async def _dek_of_generation(self, tenant: str, generation: int) -> DekRecord | None:
        record = await self._store.get_active_dek(tenant, generation)
        if record is not None:
            return record
        dek_id = self._random_bytes(12).hex()
        wrapped = await self._keks.wrap(
            generation,
            self._random_bytes(KEY_BYTES),
            dek_associated_data(tenant, dek_id, generation),
            new_nonce(),
        )
        candidate = DekRecord(dek_id, tenant, generation, generation, wrapped)
        record = await self._store.insert_dek(candidate, int(self._clock()))
        # Concurrent first messages of a tenant race to insert; the store keeps one key and
        # returns it to all, so only the winner logs a new key.
        if record is not None and record.dek_id == dek_id:
            log.info("data_key_created", tenant=tenant, kek_version=record.kek_version)
        return record

    async def _unwrap(self, record: DekRecord, *, token: str | None) -> SealingKey:
        cache_key = (record.tenant, record.dek_id)
        key = self._unwrapped.get(cache_key)
        if key is not None:
            return key
        ad = dek_associated_data(record.tenant, record.dek_id, record.kek_version)
        try:
            raw = await self._keks.unwrap(record.kek_version, record.wrapped, ad)
        except KeyVersionMissingError:
            # error, not exception: the cause is opaque on purpose, a traceback adds nothing.
            log.error("key_version_missing", token=token, key_version=record.kek_version)  # noqa: TRY400
            raise KeyVersionMissingError(token=token, key_version=record.kek_version) from None
        except VaultIntegrityError:
            log.error("data_key_integrity_failed", token=token, key_version=record.kek_version)  # noqa: TRY400
            raise VaultIntegrityError(token=token, key_version=record.kek_version) from None
        key = SealingKey(raw)
        if len(self._unwrapped) >= _DEK_CACHE_SIZE:
            self._unwrapped.pop(next(iter(self._unwrapped)))
        self._unwrapped[cache_key] = key
        return key

    async def resolve_many(self, tenant: str, tokens: Sequence[str]) -> dict[str, Resolution]:
        """Resolution of each distinct token; one store call.

        Resolved, NotFound (also another tenant's token), Erased, KeyMissing (its KEK
        version is not in our ring) or Corrupt (value or data key fails to decrypt: never a
        wrong plaintext): one token that cannot be read never hides the others. Raises
        TenantFormatError, TokenFormatError (a malformed token), VaultUnavailableError.
        """
        check_tenant(tenant)
        parsed = {token: parse_token(token) for token in tokens}
        if not parsed:
            return {}
        self._raise_fault()
        now = int(self._clock())
        rows = await self._store.resolve(tenant, list(parsed), now, now - RESOLVE_TOUCH_INTERVAL_S)
        results: dict[str, Resolution] = {token: NotFound(token) for token in parsed}
        for row in rows:
            try:
                results[row.token] = await self._open(tenant, row, parsed[row.token].entity_type)
            except KeyVersionMissingError as exc:
                results[row.token] = KeyMissing(row.token, exc.key_version or 0)
            except VaultIntegrityError:
                results[row.token] = Corrupt(row.token)
        missing = [token for token, result in results.items() if isinstance(result, NotFound)]
        if missing:
            # Tokens `vault reconcile --record` found in the audit trail but not in the vault:
            # the answer stays not_found, and someone is told. One read, only for not-found
            # tokens; the trail itself is never read per request.
            for token in sorted(await self._store.lost_tokens(tenant, missing)):
                log.error("token_lost", tenant=tenant, token=token)
        return results

    async def _open(self, tenant: str, row: StoredValue, entity_type: EntityType) -> Resolution:
        if row.sealed is None:
            return Erased(row.token)
        if row.dek is None or row.entity_type != entity_type.value:
            log.error("value_integrity_failed", token=row.token, key_version=None)
            raise VaultIntegrityError(token=row.token, key_version=None)
        key = await self._unwrap(row.dek, token=row.token)
        ad = value_associated_data(tenant, row.token, row.entity_type, row.dek.dek_id)
        try:
            value = key.unseal(row.sealed, ad).decode("ascii")
        except (VaultIntegrityError, UnicodeDecodeError):
            log.error("value_integrity_failed", token=row.token, key_version=row.dek.kek_version)  # noqa: TRY400
            raise VaultIntegrityError(token=row.token, key_version=row.dek.kek_version) from None
        return Resolved(row.token, entity_type, value)

    async def find_token(self, tenant: str, entity_type: EntityType | str, raw: str) -> str | None:
        """The token `tokenize_many` gave (or would give back) for this value, or None if the
        vault never tokenised it; stores nothing (`redactor audit find`).

        Raises TenantFormatError, ValueFormatError, VaultUnavailableError.
        """
        check_tenant(tenant)
        et = parse_entity_type(entity_type)
        digest = lookup_digest(
            self._lookup_keys.for_tenant(tenant), et.value, normalise_value(et, raw)
        )
        return await self._store.find_token(tenant, digest)

    async def erase_token(self, tenant: str, token: str) -> bool:
        """Erase one token's value; afterwards it resolves as Erased. False if unknown.

        Raises TenantFormatError, TokenFormatError, VaultUnavailableError.
        """
        check_tenant(tenant)
        parse_token(token)
        erased = await self._store.erase_token(tenant, token)
        log.info("token_erased", tenant=tenant, token=token, found=erased)
        return erased

    async def erase_tenant(self, tenant: str) -> int | None:
        """Crypto-shred a tenant: delete its data keys and ciphertexts; return tokens erased.

        None if the vault holds nothing of `tenant` (nothing was erased). Its tokens resolve
        as Erased afterwards; new values get new keys and new tokens.
        Raises TenantFormatError, VaultUnavailableError.
        """
        check_tenant(tenant)
        count = await self._store.erase_tenant(tenant)
        self._active.pop(tenant, None)
        if count is None:
            log.info("tenant_unknown", tenant=tenant)
            return None
        # Forget its keys here; other processes never use theirs again (the rows that
        # needed them are gone) and drop them on restart.
        self._unwrapped = {k: v for k, v in self._unwrapped.items() if k[0] != tenant}
        log.warning("tenant_erased", tenant=tenant, tokens=count)
        return count

    async def take_reveals(
        self, tenant: str, subject: str, count: int, *, limit: int, window_s: float, now: float
    ) -> RevealBudget:
        """Count up to `count` full reveals of (`tenant`, `subject`) against `limit` per
        `window_s` seconds, shared by every process and replica on this vault.

        The subject is stored as a digest. Raises VaultUnavailableError.
        """
        self._raise_fault()
        if count <= 0:
            return RevealBudget(0, None)
        key = hashlib.sha256(f"{tenant}\x00{subject}".encode()).hexdigest()
        return await self._store.take_reveals(key, count, limit=limit, window_s=window_s, now=now)

    async def plan_purge(self, older_than_s: int, *, local_now: int | None = None) -> PurgePlan:
        """What `purge(older_than_s)` would delete, counted from the store's clock where it
        has one (PostgreSQL `now()`), and the clocks to judge it by (`purge_refusals`).

        Raises VaultError for a retention that is not positive, VaultUnavailableError.
        """
        if older_than_s <= 0:
            raise VaultError("retention must be positive")
        local_now = int(self._clock()) if local_now is None else local_now
        store_now = await self._store.clock_now()
        now = local_now if store_now is None else store_now
        clock = "this host's clock" if store_now is None else "the database's now()"
        cutoff = now - older_than_s
        beats = await self._store.live_heartbeats(now)
        return PurgePlan(
            older_than_s,
            now,
            clock,
            cutoff,
            await self._store.count_purgeable(cutoff),
            await self._store.newest_activity(),
            local_now,
            tuple(b for b in beats if b.process_id != self._process_id),
        )

    async def purge(self, older_than_s: int) -> int:
        """Delete tokens not created, seen or resolved in the last `older_than_s` seconds by
        this vault's clock (the one passed in). Purged tokens resolve as NotFound.

        `redactor vault purge` counts from the store's clock instead and checks the clocks
        first (`plan_purge`, `purge_before`). Raises VaultUnavailableError.
        """
        if older_than_s <= 0:
            raise VaultError("retention must be positive")
        return await self.purge_before(int(self._clock()) - older_than_s)

    async def purge_before(self, cutoff: int) -> int:
        """Delete tokens idle since before `cutoff` (epoch seconds). Raises
        VaultUnavailableError."""
        count = await self._store.purge(cutoff)
        log.info("tokens_purged", tokens=count, cutoff=cutoff)
        return count

    async def rewrap(self, *, batch_size: int = 100) -> RewrapReport:
        """Re-wrap every data key under the active KEK; values are not re-encrypted.

        Resumable (each key is committed on its own, a rerun picks up what is left) and safe
        while proxies serve (compare-and-set; the data key bytes never change, so cached
        keys stay valid). Keys whose KEK version is missing are reported, not fatal.
        Raises VaultUnavailableError, KeyRingStaleError (the vault's active KEK is not the
        ring's: nothing is wrapped under a version the vault does not record as active).
        """
        await self._sync_keys()
        if self._stale:
            raise KeyRingStaleError()
        active = self._keks.active_version
        rewrapped = skipped = 0
        failed: set[int] = set()
        after = ""
        while True:
            batch = await self._store.list_deks_to_rewrap(active, after, batch_size)
            if not batch:
                break
            for record in batch:
                after = record.dek_id
                try:
                    raw = await self._keks.unwrap(
                        record.kek_version,
                        record.wrapped,
                        dek_associated_data(record.tenant, record.dek_id, record.kek_version),
                    )
                except VaultIntegrityError:
                    failed.add(record.kek_version)
                    continue
                wrapped = await self._keks.wrap(
                    active,
                    raw,
                    dek_associated_data(record.tenant, record.dek_id, active),
                    new_nonce(),
                )
                if await self._store.replace_wrapped(record, active, wrapped):
                    rewrapped += 1
                else:
                    skipped += 1
        log.info("data_keys_rewrapped", rewrapped=rewrapped, skipped=skipped, kek_version=active)
        return RewrapReport(rewrapped, skipped, tuple(sorted(failed)))

    async def kek_usage(self) -> list[KekUsage]:
        """Live data keys per KEK version. Raises VaultUnavailableError."""
        return await self._store.kek_usage()

    @property
    def store(self) -> TokenStore:
        """The store (admin commands record key-state changes through it)."""
        return self._store
