"""Vault: tokenize_many, resolve_many, erasure, retention and re-wrapping.

Per message: normalise and de-duplicate values, compute lookup digests, seal each value
with the tenant's data key, then ONE store call inserts what is new and returns the token of
every value. Data keys are unwrapped once and kept in memory; nothing else is cached.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import structlog

from vault.crypto import KEY_BYTES, SealingKey, lookup_digest
from vault.errors import (
    KeyVersionMissingError,
    VaultError,
    VaultIntegrityError,
    VaultUnavailableError,
)
from vault.keyring import (
    KekProvider,
    LookupKeys,
    dek_associated_data,
    new_nonce,
    value_associated_data,
)
from vault.stores.base import DekRecord, KekUsage, NewRow, StoredValue, TokenStore
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


Resolution = Resolved | NotFound | Erased


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
    ) -> None:
        self._store = store
        self._keks = keks
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
        """Release the store's connections and forget unwrapped keys."""
        self._active.clear()
        self._unwrapped.clear()
        await self._store.close()

    async def check_ready(self) -> None:
        """Cheap readiness probe for /readyz.

        Raises VaultUnavailableError if the store is down, VaultSchemaError if not migrated.
        """
        await self._store.check_schema()

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
        generation = self._keks.active_version
        record = await self._store.get_active_dek(tenant, generation)
        if record is None:
            dek_id = self._random_bytes(12).hex()
            wrapped = await self._keks.wrap(
                generation,
                self._random_bytes(KEY_BYTES),
                dek_associated_data(tenant, dek_id, generation),
                new_nonce(),
            )
            candidate = DekRecord(dek_id, tenant, generation, generation, wrapped)
            record = await self._store.insert_dek(candidate, int(self._clock()))
            log.info("data_key_created", tenant=tenant, kek_version=record.kek_version)
        active = _ActiveDek(record.dek_id, await self._unwrap(record, token=None))
        self._active[tenant] = active
        return active

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
        """Resolution of each distinct token: Resolved, NotFound or Erased; one store call.

        A token of another tenant is NotFound. Raises TenantFormatError, TokenFormatError
        (a malformed token), VaultUnavailableError, VaultIntegrityError (a value or data
        key that fails to decrypt: never partial or wrong plaintext).
        """
        check_tenant(tenant)
        parsed = {token: parse_token(token) for token in tokens}
        if not parsed:
            return {}
        now = int(self._clock())
        rows = await self._store.resolve(tenant, list(parsed), now, now - RESOLVE_TOUCH_INTERVAL_S)
        results: dict[str, Resolution] = {token: NotFound(token) for token in parsed}
        for row in rows:
            results[row.token] = await self._open(tenant, row, parsed[row.token].entity_type)
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

    async def erase_tenant(self, tenant: str) -> int:
        """Crypto-shred a tenant: delete its data keys and ciphertexts; return tokens erased.

        Its tokens resolve as Erased afterwards; new values get new keys and new tokens.
        Raises TenantFormatError, VaultUnavailableError.
        """
        check_tenant(tenant)
        count = await self._store.erase_tenant(tenant)
        self._active.pop(tenant, None)
        # Forget its keys here; other processes never use theirs again (the rows that
        # needed them are gone) and drop them on restart.
        self._unwrapped = {k: v for k, v in self._unwrapped.items() if k[0] != tenant}
        log.warning("tenant_erased", tenant=tenant, tokens=count)
        return count

    async def purge(self, older_than_s: int) -> int:
        """Delete tokens not created, seen or resolved in the last `older_than_s` seconds.

        Purged tokens resolve as NotFound. Raises VaultUnavailableError.
        """
        if older_than_s <= 0:
            raise VaultError("retention must be positive")
        count = await self._store.purge(int(self._clock()) - older_than_s)
        log.info("tokens_purged", tokens=count, older_than_s=older_than_s)
        return count

    async def rewrap(self, *, batch_size: int = 100) -> RewrapReport:
        """Re-wrap every data key under the active KEK; values are not re-encrypted.

        Resumable (each key is committed on its own, a rerun picks up what is left) and safe
        while proxies serve (compare-and-set; the data key bytes never change, so cached
        keys stay valid). Keys whose KEK version is missing are reported, not fatal.
        Raises VaultUnavailableError.
        """
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
