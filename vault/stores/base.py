"""The TokenStore Protocol and the records it exchanges with the vault service.

A store holds only what the service hands it: lookup digests (keyed HMACs), tokens,
ciphertexts and wrapped data keys. It never sees a raw value or an unwrapped key, so
nothing a store logs, raises or writes to disk can contain one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

SCHEMA_VERSION = 1


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
        """Cheap readiness probe. Raises VaultSchemaError if not migrated to our version."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def get_active_dek(self, tenant: str, generation: int) -> DekRecord | None:
        """The tenant's live data key of this generation, if any."""
        ...

    async def insert_dek(self, candidate: DekRecord, now: int) -> DekRecord:
        """Insert `candidate` unless the tenant already has a key of that generation.

        Returns whichever key won, so concurrent creators agree on one.
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

    async def erase_tenant(self, tenant: str) -> int:
        """Delete the tenant's data keys and ciphertexts (crypto-shredding).

        Returns the number of tokens that now resolve as erased.
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
        """Swap a key's wrapping if it is still `old` (compare-and-set); False otherwise."""
        ...

    async def kek_usage(self) -> list[KekUsage]:
        """Live data keys per KEK version."""
        ...
