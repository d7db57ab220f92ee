"""Where a backfill of an API stopped: the cursor kept in the vault's database.

The vault's store (`vault/cursors.py`, schema step 8) holds one cursor per source kind and
scope; this side only reads it at the start of a run and moves it after each page it
finished. A dry run neither reads nor moves it.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["CursorStore", "SavedCursor"]


class CursorStore(Protocol):
    """The vault store's cursor methods (SqliteStore, PostgresStore)."""

    async def read_cursor(self, source: str, scope: str) -> str | None: ...

    async def save_cursor(self, source: str, scope: str, cursor: str, now: int) -> None: ...


class SavedCursor:
    """One (source, scope) cursor of a run; `None` store (a dry run) reads and keeps nothing."""

    def __init__(self, store: CursorStore | None, source: str, scope: str) -> None:
        self._store = store
        self.source = source
        self.scope = scope

    async def load(self) -> str | None:
        """The saved cursor, or None (none saved, or a dry run). Raises the store's errors."""
        if self._store is None:
            return None
        return await self._store.read_cursor(self.source, self.scope)

    async def save(self, cursor: str) -> None:
        """Move the cursor (nothing in a dry run). Raises the store's errors."""
        if self._store is not None:
            await self._store.save_cursor(self.source, self.scope, cursor, int(time.time()))
