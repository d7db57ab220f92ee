"""Recording a chain in the registry (`vault.chains`): the writer's side.

A sink records its chain's genesis when it opens, its checkpoints as it writes them, the
files it leaves behind when it rotates, and its final checkpoint at close: a few
transactions per chain, never one per record. `redactor.audit.registry` is the verifier's
side.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

from vault.chains import ChainUpdate, RegisteredChain
from vault.errors import VaultError


class ChainRegistryError(Exception):
    """The registry could not be written or read (the vault's database is down, missing, or
    not migrated to the registry's schema step). `code` is the vault's stable code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class ChainRegistry(Protocol):
    """Where a sink records its chain: at start, at each checkpoint, at close."""

    async def record(self, update: ChainUpdate) -> None:
        """Record `update` in one transaction. Raises ChainRegistryError."""
        ...


class _Store(Protocol):
    async def record_chain(self, update: ChainUpdate) -> None: ...

    async def list_chains(self) -> list[RegisteredChain]: ...

    async def close(self) -> None: ...


class StoreChainRegistry:
    """The registry in an open vault store (a serving process's: the one it tokenises with)."""

    def __init__(self, store: _Store) -> None:
        self._store = store

    async def record(self, update: ChainUpdate) -> None:
        """Record `update`. Raises ChainRegistryError."""
        try:
            await self._store.record_chain(update)
        except VaultError as exc:
            raise ChainRegistryError(exc.code) from None

    async def chains(self) -> list[RegisteredChain]:
        """Every registered chain, oldest first. Raises ChainRegistryError."""
        try:
            return await self._store.list_chains()
        except VaultError as exc:
            raise ChainRegistryError(exc.code) from None


class LazyStoreRegistry:
    """The registry in a store opened on first use (a command's: `vault init` creates the
    vault, `vault migrate` adds the registry's tables, so an early attempt may fail and a
    later one succeed). `close` closes what was opened."""

    def __init__(self, opener: Callable[[], Awaitable[_Store]]) -> None:
        self._opener = opener
        self._store: _Store | None = None

    async def record(self, update: ChainUpdate) -> None:
        """Open the store if need be, then record `update`. Raises ChainRegistryError."""
        try:
            if self._store is None:
                self._store = await self._opener()
            await self._store.record_chain(update)
        except VaultError as exc:
            # Opened on a schema without the registry (before `vault migrate`): open again
            # next time, so the migrated schema is seen.
            await self.close()
            raise ChainRegistryError(exc.code) from None

    async def close(self) -> None:
        """Close the store, if opened."""
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(VaultError):
                await store.close()
