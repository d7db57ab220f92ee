"""SQLite token store (aiosqlite): embedded default, WAL, safe for several processes on one host.

Every hot-path operation is a single SQL statement in autocommit mode, so it is atomic by
itself and costs one hop to aiosqlite's thread; concurrent `tokenize` and `resolve` calls are
combined (`combiner.Combiner`) so that one statement and one hop serve all of them. WAL lets
readers run beside the one writer; `busy_timeout` makes writers of other processes wait for
the lock instead of failing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from vault.errors import (
    KeyRingMismatchError,
    KeyStateChangedError,
    VaultConfigError,
    VaultGoneError,
    VaultMissingError,
    VaultSchemaError,
    VaultUnavailableError,
)
from vault.mark import VaultMark, acquire_lock, release_lock
from vault.stores.base import (
    SCHEMA_VERSION,
    DekRecord,
    Heartbeat,
    KekRecord,
    KekUsage,
    KeyState,
    NewRow,
    RevealBudget,
    StoredValue,
    retire_refusal,
)
from vault.stores.combiner import (
    Combiner,
    ResolveCall,
    TokenizeCall,
    UniqueRow,
    resolve_answers,
    resolve_keys,
    tokenize_answers,
    unique_rows,
)
from vault.stores.outbox_sqlite import MIGRATION as OUTBOX_MIGRATION
from vault.stores.outbox_sqlite import SqliteOutbox

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE deks (
            dek_id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            generation INTEGER NOT NULL,
            kek_version INTEGER NOT NULL,
            wrapped BLOB NOT NULL,
            created_at INTEGER NOT NULL
        )""",
        "CREATE UNIQUE INDEX deks_tenant_generation ON deks (tenant, generation)",
        "CREATE INDEX deks_kek_version ON deks (kek_version)",
        # lookup and sealed become NULL when a token is erased; dek_id when its key is shredded.
        """CREATE TABLE tokens (
            tenant TEXT NOT NULL,
            token TEXT NOT NULL,
            entity_type TEXT NOT NULL,
            lookup BLOB,
            dek_id TEXT REFERENCES deks (dek_id) ON DELETE SET NULL,
            sealed BLOB,
            created_at INTEGER NOT NULL,
            last_seen_at INTEGER NOT NULL,
            last_resolved_at INTEGER,
            PRIMARY KEY (tenant, token)
        )""",
        "CREATE UNIQUE INDEX tokens_lookup ON tokens (tenant, lookup)",
        "CREATE INDEX tokens_dek ON tokens (dek_id)",
    ),
    2: (
        # One row: the key-state counter every process polls, and the index key's check value.
        """CREATE TABLE vault_keys (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            epoch INTEGER NOT NULL,
            index_check BLOB NOT NULL,
            created_at INTEGER NOT NULL
        )""",
        """CREATE TABLE kek_versions (
            version INTEGER PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('active', 'decrypt-only', 'retired')),
            check_value BLOB NOT NULL,
            active_at INTEGER NOT NULL,
            decrypt_only_at INTEGER,
            retired_at INTEGER
        )""",
        """CREATE TABLE heartbeats (
            process_id TEXT PRIMARY KEY,
            active_version INTEGER NOT NULL,
            seen_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        )""",
    ),
    3: (
        "ALTER TABLE vault_keys ADD COLUMN pending_version INTEGER",
        "ALTER TABLE vault_keys ADD COLUMN pending_check BLOB",
        # One row: the vault's id (a restored copy keeps it) and its minted counter.
        """CREATE TABLE vault_mark (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            vault_id TEXT NOT NULL,
            minted INTEGER NOT NULL
        )""",
        "INSERT INTO vault_mark (id, vault_id, minted) "
        "SELECT 1, lower(hex(randomblob(16))), COUNT(*) FROM tokens",
        # Counts inserted rows only: an upsert that finds the value (DO UPDATE) fires no
        # INSERT trigger, so sending a value again never moves the mark. Inside the insert's
        # own statement: no extra statement or hop on the hot path, and SQLite has one
        # writer, so the counter row costs no contention.
        "CREATE TRIGGER tokens_minted AFTER INSERT ON tokens "
        "BEGIN UPDATE vault_mark SET minted = minted + 1; END",
        """CREATE TABLE lost_tokens (
            tenant TEXT NOT NULL,
            token TEXT NOT NULL,
            recorded_at INTEGER NOT NULL,
            PRIMARY KEY (tenant, token)
        )""",
    ),
    4: (
        # One row per full reveal counted by the reveal rate limit; `subject_key` is a digest
        # of (tenant, subject), never the subject itself.
        """CREATE TABLE reveal_events (
            subject_key TEXT NOT NULL,
            at REAL NOT NULL
        )""",
        "CREATE INDEX reveal_events_subject ON reveal_events (subject_key, at)",
        "CREATE INDEX reveal_events_at ON reveal_events (at)",
    ),
    # The outbox of queued routes (vault/outbox.py).
    6: OUTBOX_MIGRATION,
}

# Expired check-ins are kept this long (for `keys list`), then deleted by the next check-in.
_STALE_BEAT_S = 3600
# 7 parameters per row: far below SQLite's 32766-variable limit (3.32+).
GROUP_COMMIT_MAX_ROWS = 500
# 4 parameters per token in the combined resolve.
RESOLVE_MAX_TOKENS = 500


_RESOLVE_COLUMNS = (
    "t.token, t.entity_type, t.sealed, d.dek_id, d.tenant, d.generation, d.kek_version, d.wrapped"
)


def _stored_value(row: Sequence[Any]) -> StoredValue:
    dek = None if row[3] is None else DekRecord(row[3], row[4], row[5], row[6], bytes(row[7]))
    sealed = None if row[2] is None else bytes(row[2])
    return StoredValue(row[0], row[1], sealed, dek)


class SqliteStore:
    """TokenStore on one aiosqlite connection; open with `SqliteStore.open`."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        statement_timeout_s: float,
        path: Path | None = None,
        identity: tuple[int, int] | None = None,
    ) -> None:
        self._conn = conn
        self._timeout_s = statement_timeout_s
        # (device, inode) of the file opened: if the path stops naming that file (deleted,
        # replaced by a restore or a fresh empty vault), every call fails instead of writing
        # tokens into an unlinked file nobody will ever read again.
        self._path = path
        self._identity = identity
        # One connection: a multi-statement transaction must not interleave with other
        # coroutines' statements, which would otherwise run inside it.
        self._lock = asyncio.Lock()
        # Owned by the store: started in open(), cancelled and awaited in close().
        self._tokenizer = Combiner(
            self._tokenize_batch,
            name="sqlite tokenize",
            size=lambda call: len(call.rows),
            max_size=GROUP_COMMIT_MAX_ROWS,
            wait_timeout_s=statement_timeout_s,
        )
        self._resolver = Combiner(
            self._resolve_batch,
            name="sqlite resolve",
            size=lambda call: len(call.tokens),
            max_size=RESOLVE_MAX_TOKENS,
            wait_timeout_s=statement_timeout_s,
        )
        self._outbox: SqliteOutbox | None = None
        self._statement_timeout_s = statement_timeout_s

    def outbox(self) -> SqliteOutbox:
        """The outbox in this vault's file, on this connection (made on first use)."""
        if self._outbox is None:
            self._outbox = SqliteOutbox(self._conn, self._guard, self._statement_timeout_s)
        return self._outbox

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        statement_timeout_s: float,
        synchronous: str = "FULL",
        create: bool = False,
    ) -> SqliteStore:
        """Open the database at `path`; create the file only when `create` is set.

        Raises VaultConfigError for an unknown `synchronous` mode, VaultMissingError if the
        file does not exist and `create` is not set, VaultUnavailableError if it cannot be
        opened.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise VaultConfigError("sqlite synchronous must be FULL or NORMAL")
        try:
            if create:
                await asyncio.to_thread(_prepare_file, path)
            elif not await asyncio.to_thread(path.is_file):
                raise VaultMissingError("no sqlite vault file at the configured path")
            uri = await asyncio.to_thread(_uri, path)
            conn = await aiosqlite.connect(
                uri, uri=True, isolation_level=None, timeout=statement_timeout_s
            )
            identity = await asyncio.to_thread(_identity, path)
        except (OSError, sqlite3.Error):
            raise VaultUnavailableError("sqlite database cannot be opened") from None
        store = cls(conn, statement_timeout_s, path, identity)
        try:
            async with store._guard():
                await conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a token handed out is on disk before the message leaves with it; the
                # vault is the only copy of the value, so losing a commit loses data for good.
                await conn.execute(f"PRAGMA synchronous={synchronous}")
                await conn.execute("PRAGMA foreign_keys=ON")
        except VaultUnavailableError:
            await conn.close()
            raise
        store._tokenizer.start()
        store._resolver.start()
        return store

    def _verify_identity(self) -> None:
        """Raises VaultGoneError when the file opened is no longer at its path."""
        if self._path is None:
            return
        try:
            # On the loop: a stat of a local file is a microsecond from the inode cache, where
            # a thread hop per batch cost tens of microseconds of CPU (issue 14).
            current = _identity(self._path)
        except OSError:
            current = None
        if current != self._identity:
            raise VaultGoneError()

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Serialise on the connection, bound the time, map failures to VaultUnavailableError."""
        try:
            async with self._lock, asyncio.timeout(self._timeout_s):
                yield
        except (sqlite3.Error, TimeoutError, ValueError):
            # sqlite3 errors can quote SQL but never our values (they travel as parameters);
            # dropped anyway with `from None`, as every third-party error at this boundary.
            raise VaultUnavailableError("sqlite") from None

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._guard():
            # IMMEDIATE takes the write lock up front: no deadlock-prone lock upgrade later.
            await self._conn.execute("BEGIN IMMEDIATE")
            committed = False
            try:
                yield self._conn
                await self._conn.execute("COMMIT")
                committed = True
            finally:
                # Also on cancellation: the connection is shared, an open transaction on it
                # would swallow every later statement of every coroutine.
                if not committed:
                    await self._conn.execute("ROLLBACK")

    async def close(self) -> None:
        """Stop the combiners (failing queued calls), then close the connection."""
        try:
            await self._tokenizer.close()
            await self._resolver.close()
            if self._outbox is not None:
                await self._outbox.close()
        finally:
            await self._conn.close()

    async def migrate(self) -> int:
        """Create or upgrade the schema. Raises VaultSchemaError, VaultUnavailableError."""
        async with self._transaction() as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS vault_schema "
                "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
            )
            rows = list(await conn.execute_fetchall("SELECT version FROM vault_schema"))
            current = int(rows[0][0]) if rows else 0
            if current > SCHEMA_VERSION:
                raise VaultSchemaError("store schema is newer than this redactor")
            # Steps are numbered by feature; a number may be unused, so walk the ones defined.
            for version in sorted(v for v in _MIGRATIONS if current < v <= SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO vault_schema (id, version) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                (SCHEMA_VERSION,),
            )
        return SCHEMA_VERSION

    async def check_schema(self) -> None:
        """Raises VaultGoneError if the file opened is no longer at its path, VaultSchemaError
        unless migrated to our version; VaultUnavailableError."""
        self._verify_identity()
        async with self._guard():
            tables = list(
                await self._conn.execute_fetchall(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'vault_schema'"
                )
            )
            rows = (
                list(await self._conn.execute_fetchall("SELECT version FROM vault_schema"))
                if tables
                else []
            )
        if not rows or int(rows[0][0]) != SCHEMA_VERSION:
            raise VaultSchemaError("run `redactor vault migrate`")

    async def exists(self) -> bool:
        """Whether the schema table is there (the vault was created, not just the file)."""
        async with self._guard():
            tables = await self._conn.execute_fetchall(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vault_schema'"
            )
        return bool(list(tables))

    async def read_epoch(self) -> int | None:
        """The key-state counter; None before keys are recorded."""
        async with self._guard():
            rows = list(await self._conn.execute_fetchall("SELECT epoch FROM vault_keys"))
        return int(rows[0][0]) if rows else None

    async def take_reveals(
        self, subject_key: str, count: int, *, limit: int, window_s: float, now: float
    ) -> RevealBudget:
        # BEGIN IMMEDIATE takes the write lock first: the count and the inserts of two
        # processes cannot interleave.
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM reveal_events WHERE at <= ?", (now - window_s,))
            rows = list(
                await conn.execute_fetchall(
                    "SELECT COUNT(*), MIN(at) FROM reveal_events WHERE subject_key = ?",
                    (subject_key,),
                )
            )
            counted, oldest = int(rows[0][0]), rows[0][1]
            granted = max(0, min(count, limit - counted))
            if granted:
                await conn.executemany(
                    "INSERT INTO reveal_events (subject_key, at) VALUES (?, ?)",
                    [(subject_key, now)] * granted,
                )
        if oldest is None and granted:
            oldest = now
        return RevealBudget(granted, None if oldest is None else float(oldest))

    async def read_key_state(self) -> KeyState | None:
        """The key records, or None if none were ever recorded."""
        async with self._guard():
            head = list(
                await self._conn.execute_fetchall(
                    "SELECT epoch, index_check, pending_version, pending_check FROM vault_keys"
                )
            )
            rows = await self._conn.execute_fetchall(
                "SELECT version, state, check_value, active_at, decrypt_only_at, retired_at "
                "FROM kek_versions ORDER BY version"
            )
        if not head:
            return None
        keks = tuple(KekRecord(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows)
        epoch, index_check, pending, pending_check = head[0]
        return KeyState(
            int(epoch),
            bytes(index_check),
            keks,
            pending,
            None if pending_check is None else bytes(pending_check),
        )

    async def init_key_state(self, state: KeyState, now: int) -> bool:
        """Record a first key ring unless one is recorded already."""
        async with self._transaction() as conn:
            if list(await conn.execute_fetchall("SELECT 1 FROM vault_keys")):
                return False
            await conn.execute(
                "INSERT INTO vault_keys (id, epoch, index_check, created_at) VALUES (1, ?, ?, ?)",
                (state.epoch, state.index_check, now),
            )
            await conn.executemany(
                "INSERT INTO kek_versions (version, state, check_value, active_at, "
                "decrypt_only_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        k.version,
                        k.state,
                        k.check_value,
                        k.active_at,
                        k.decrypt_only_at,
                        k.retired_at,
                    )
                    for k in state.keks
                ],
            )
        return True

    async def record_rotation(
        self, new: KekRecord, now: int, *, expected_epoch: int | None = None
    ) -> None:
        """The active version becomes decrypt-only, `new` active, the epoch grows.

        With `expected_epoch`: only the pending version claimed at that epoch (CAS).
        """
        async with self._transaction() as conn:
            if expected_epoch is not None:
                await self._expect(conn, expected_epoch, pending=new)
            known = list(
                await conn.execute_fetchall(
                    "SELECT 1 FROM kek_versions WHERE version = ?", (new.version,)
                )
            )
            if known:
                raise KeyRingMismatchError(f"kek version {new.version} is already recorded")
            await conn.execute(
                "UPDATE kek_versions SET state = 'decrypt-only', decrypt_only_at = ? "
                "WHERE state = 'active'",
                (now,),
            )
            await conn.execute(
                "INSERT INTO kek_versions (version, state, check_value, active_at) "
                "VALUES (?, 'active', ?, ?)",
                (new.version, new.check_value, now),
            )
            await conn.execute(
                "UPDATE vault_keys SET epoch = epoch + 1, pending_version = NULL, "
                "pending_check = NULL"
            )

    @staticmethod
    async def _expect(conn: aiosqlite.Connection, epoch: int, *, pending: KekRecord | None) -> None:
        """Raises KeyStateChangedError unless the epoch (and the pending version) are these."""
        rows = list(
            await conn.execute_fetchall(
                "SELECT epoch, pending_version, pending_check FROM vault_keys"
            )
        )
        if not rows or rows[0][0] != epoch:
            raise KeyStateChangedError(f"expected key epoch {epoch}")
        _, version, check = rows[0]
        if pending is None and version is not None:
            raise KeyStateChangedError(f"kek version {version} is pending")
        if pending is not None and (
            version != pending.version or check is None or bytes(check) != pending.check_value
        ):
            raise KeyStateChangedError(f"kek version {pending.version} is not the pending one")

    async def claim_rotation(self, new: KekRecord, expected_epoch: int) -> int:
        """Record `new` as pending if the epoch is `expected_epoch` and nothing is pending."""
        async with self._transaction() as conn:
            await self._expect(conn, expected_epoch, pending=None)
            known = list(
                await conn.execute_fetchall(
                    "SELECT 1 FROM kek_versions WHERE version = ?", (new.version,)
                )
            )
            if known:
                raise KeyStateChangedError(f"kek version {new.version} is already recorded")
            rows = list(
                await conn.execute_fetchall(
                    "UPDATE vault_keys SET epoch = epoch + 1, pending_version = ?, "
                    "pending_check = ? RETURNING epoch",
                    (new.version, new.check_value),
                )
            )
        return int(rows[0][0])

    async def clear_pending(self, expected_epoch: int) -> int:
        """Forget a pending rotation; the epoch grows. Returns the new epoch."""
        async with self._transaction() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "UPDATE vault_keys SET epoch = epoch + 1, pending_version = NULL, "
                    "pending_check = NULL WHERE epoch = ? RETURNING epoch",
                    (expected_epoch,),
                )
            )
            if not rows:
                raise KeyStateChangedError(f"expected key epoch {expected_epoch}")
        return int(rows[0][0])

    @contextlib.asynccontextmanager
    async def key_command_lock(self) -> AsyncIterator[None]:
        """An flock on `<vault file>.keys.lock`: every process of this host that opens the
        vault file takes the same one (a SQLite vault lives on one host)."""
        if self._path is None:
            yield
            return
        path = self._path.with_name(self._path.name + ".keys.lock")
        try:
            fd = await asyncio.to_thread(acquire_lock, path, wait=False)
        except OSError:
            raise VaultUnavailableError("sqlite key lock") from None
        try:
            yield
        finally:
            release_lock(fd)

    async def read_mark(self) -> VaultMark:
        """The vault's id, minted counter and key epoch."""
        async with self._guard():
            rows = list(
                await self._conn.execute_fetchall(
                    "SELECT m.vault_id, m.minted, COALESCE(k.epoch, 0) FROM vault_mark m "
                    "LEFT JOIN vault_keys k ON k.id = 1"
                )
            )
        if not rows:
            raise VaultSchemaError("run `redactor vault migrate`")
        return VaultMark(str(rows[0][0]), int(rows[0][1]), int(rows[0][2]))

    async def accept_mark(self, mark: VaultMark) -> VaultMark:
        """Raise the counters past `mark`; the epoch grows so every process re-reads keys."""
        async with self._transaction() as conn:
            await conn.execute("UPDATE vault_mark SET minted = MAX(minted, ?)", (mark.minted,))
            await conn.execute("UPDATE vault_keys SET epoch = MAX(epoch, ?) + 1", (mark.epoch,))
        return await self.read_mark()

    async def clock_now(self) -> int | None:
        """None: an embedded store has no clock but the host's."""
        return None

    async def newest_activity(self) -> int | None:
        """The latest created, seen or resolved time of any token."""
        async with self._guard():
            rows = list(
                await self._conn.execute_fetchall(
                    "SELECT MAX(last_seen_at), MAX(last_resolved_at) FROM tokens"
                )
            )
        times = [t for t in rows[0] if t is not None]
        return max(times) if times else None

    async def count_purgeable(self, cutoff: int) -> int:
        """How many rows `purge(cutoff)` would delete."""
        async with self._guard():
            rows = list(
                await self._conn.execute_fetchall(
                    "SELECT COUNT(*) FROM tokens WHERE last_seen_at < ?1 "
                    "AND (last_resolved_at IS NULL OR last_resolved_at < ?1)",
                    (cutoff,),
                )
            )
        return int(rows[0][0])

    async def _tokens_in(self, table: str, tenant: str, tokens: Sequence[str]) -> set[str]:
        found: set[str] = set()
        async with self._guard():
            for start in range(0, len(tokens), RESOLVE_MAX_TOKENS):
                chunk = list(tokens[start : start + RESOLVE_MAX_TOKENS])
                marks = ", ".join("?" * len(chunk))
                rows = await self._conn.execute_fetchall(
                    f"SELECT token FROM {table} WHERE tenant = ? AND token IN ({marks})",  # noqa: S608 - a fixed table name and placeholders
                    [tenant, *chunk],
                )
                found.update(str(r[0]) for r in rows)
        return found

    async def present_tokens(self, tenant: str, tokens: Sequence[str]) -> set[str]:
        """Which of `tokens` have a row in `tenant` (erased ones too)."""
        return await self._tokens_in("tokens", tenant, tokens)

    async def record_lost(self, tenant: str, tokens: Sequence[str], now: int) -> int:
        """Record tokens as lost; returns how many were new."""
        async with self._transaction() as conn:
            before = conn.total_changes
            await conn.executemany(
                "INSERT INTO lost_tokens (tenant, token, recorded_at) VALUES (?, ?, ?) "
                "ON CONFLICT (tenant, token) DO NOTHING",
                [(tenant, token, now) for token in tokens],
            )
            added = conn.total_changes - before
        return added

    async def lost_tokens(self, tenant: str, tokens: Sequence[str]) -> set[str]:
        """Which of `tokens` are recorded as lost in `tenant`."""
        return await self._tokens_in("lost_tokens", tenant, tokens)

    async def record_retirement(
        self, version: int, now: int, *, expected_epoch: int | None = None
    ) -> None:
        """Mark `version` retired if nothing needs it; raises KeyRetireError otherwise."""
        async with self._transaction() as conn:
            if expected_epoch is not None:
                await self._expect(conn, expected_epoch, pending=None)
            rows = list(
                await conn.execute_fetchall(
                    "SELECT state FROM kek_versions WHERE version = ?", (version,)
                )
            )
            (deks,) = await conn.execute_fetchall(
                "SELECT COUNT(*), COUNT(DISTINCT tenant) FROM deks WHERE kek_version = ?",
                (version,),
            )
            ((holders,),) = await conn.execute_fetchall(
                "SELECT COUNT(*) FROM heartbeats WHERE active_version = ? AND expires_at >= ?",
                (version, now),
            )
            retire_refusal(version, rows[0][0] if rows else None, deks[0], deks[1], holders)
            await conn.execute(
                "UPDATE kek_versions SET state = 'retired', retired_at = ? "
                "WHERE version = ? AND state <> 'retired'",
                (now, version),
            )
            await conn.execute("UPDATE vault_keys SET epoch = epoch + 1")

    async def heartbeat(self, beat: Heartbeat) -> None:
        """Record or refresh a process's check-in."""
        async with self._guard():
            await self._conn.execute(
                "INSERT INTO heartbeats (process_id, active_version, seen_at, expires_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (process_id) DO UPDATE SET "
                "active_version = excluded.active_version, seen_at = excluded.seen_at, "
                "expires_at = excluded.expires_at",
                (beat.process_id, beat.active_version, beat.seen_at, beat.expires_at),
            )
            # Rows of processes that died without checking out: long expired, never read.
            await self._conn.execute(
                "DELETE FROM heartbeats WHERE expires_at < ?", (beat.seen_at - _STALE_BEAT_S,)
            )

    async def drop_heartbeat(self, process_id: str) -> None:
        """Forget a process that stops (expired rows of crashed ones go with it)."""
        async with self._guard():
            await self._conn.execute("DELETE FROM heartbeats WHERE process_id = ?", (process_id,))

    async def live_heartbeats(self, now: int) -> list[Heartbeat]:
        """Processes whose check-in has not expired."""
        async with self._guard():
            rows = await self._conn.execute_fetchall(
                "SELECT process_id, active_version, seen_at, expires_at FROM heartbeats "
                "WHERE expires_at >= ? ORDER BY process_id",
                (now,),
            )
        return [Heartbeat(r[0], r[1], r[2], r[3]) for r in rows]

    async def sample_deks(self) -> list[DekRecord]:
        """One live data key per KEK version."""
        async with self._guard():
            rows = await self._conn.execute_fetchall(
                "SELECT dek_id, tenant, generation, kek_version, wrapped FROM deks WHERE dek_id "
                "IN (SELECT MIN(dek_id) FROM deks GROUP BY kek_version) ORDER BY kek_version"
            )
        return [DekRecord(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    async def get_active_dek(self, tenant: str, generation: int) -> DekRecord | None:
        """The tenant's data key of `generation`, if any."""
        async with self._guard():
            rows = list(
                await self._conn.execute_fetchall(
                    "SELECT dek_id, tenant, generation, kek_version, wrapped FROM deks "
                    "WHERE tenant = ? AND generation = ?",
                    (tenant, generation),
                )
            )
        if not rows:
            return None
        row = rows[0]
        return DekRecord(row[0], row[1], row[2], row[3], bytes(row[4]))

    async def insert_dek(self, candidate: DekRecord, now: int) -> DekRecord | None:
        """Insert unless the tenant has a key of that generation; return the winner.

        None if the vault does not record the candidate's KEK version as active: one
        statement, so a rotation or retirement cannot slip in between check and insert.
        Raises VaultGoneError if the file opened is no longer at its path.
        """
        self._verify_identity()
        async with self._guard():
            inserted = list(
                await self._conn.execute_fetchall(
                    "INSERT INTO deks (dek_id, tenant, generation, kek_version, wrapped, "
                    "created_at) SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM "
                    "kek_versions WHERE version = ? AND state = 'active') "
                    "ON CONFLICT (tenant, generation) DO NOTHING RETURNING dek_id",
                    (
                        candidate.dek_id,
                        candidate.tenant,
                        candidate.generation,
                        candidate.kek_version,
                        candidate.wrapped,
                        now,
                        candidate.kek_version,
                    ),
                )
            )
            if not inserted:
                active = list(
                    await self._conn.execute_fetchall(
                        "SELECT 1 FROM kek_versions WHERE version = ? AND state = 'active'",
                        (candidate.kek_version,),
                    )
                )
                if not active:
                    return None
        winner = await self.get_active_dek(candidate.tenant, candidate.generation)
        if winner is None:
            # Erased between the insert and the read: the caller retries with a new key.
            raise VaultUnavailableError("data key vanished while being created")
        return winner

    async def tokenize(
        self, tenant: str, dek_id: str, rows: Sequence[NewRow], now: int
    ) -> dict[bytes, str] | None:
        """Insert new lookups, keep existing tokens; atomic. None if the key is gone.

        Concurrent calls are group-committed: the combiner folds every call queued while
        the previous statement ran into ONE upsert statement, so one fsync serves many
        messages (SQLite has one writer anyway; this only removes per-call overhead). If
        that statement fails, every call in it gets VaultUnavailableError.
        """
        return await self._tokenizer.submit(TokenizeCall(tenant, dek_id, rows, now))

    async def _tokenize_batch(self, batch: Sequence[TokenizeCall]) -> list[dict[bytes, str] | None]:
        found = await self._write_batch(batch)
        # Checked after the statement: if the file is gone the batch fails with
        # VaultGoneError, so no token written into an unlinked file is ever handed out.
        self._verify_identity()
        return tokenize_answers(batch, found)

    async def _write_batch(self, batch: Sequence[TokenizeCall]) -> dict[tuple[str, bytes], str]:
        rows = unique_rows(batch)
        if len(rows) <= GROUP_COMMIT_MAX_ROWS:
            # One statement: atomic by itself, no explicit transaction needed.
            async with self._guard():
                found = await self._upsert(self._conn, rows)
        else:
            # Only a single message larger than a statement gets here (the combiner never
            # adds a call past the limit): several statements, one transaction.
            found = {}
            async with self._transaction() as conn:
                for start in range(0, len(rows), GROUP_COMMIT_MAX_ROWS):
                    chunk = rows[start : start + GROUP_COMMIT_MAX_ROWS]
                    found.update(await self._upsert(conn, chunk))
        return found

    @staticmethod
    async def _upsert(
        conn: aiosqlite.Connection, rows: Sequence[UniqueRow]
    ) -> dict[tuple[str, bytes], str]:
        # One statement, so atomic by itself: the EXISTS guard keeps a row from pointing at
        # a data key a concurrent tenant erasure just deleted. DO UPDATE (rather than DO
        # NOTHING) makes RETURNING report existing rows too, and records that the value was
        # seen again, which retention needs.
        params: list[object] = []
        for u in rows:
            params.extend((u.tenant, u.row.lookup, u.row.token, u.row.entity_type, u.dek_id))
            params.extend((u.row.sealed, u.now))
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        sql = (
            "INSERT INTO tokens (tenant, token, entity_type, lookup, dek_id, sealed, "  # noqa: S608 - only placeholders are interpolated
            "created_at, last_seen_at) "
            "SELECT v.column1, v.column3, v.column4, v.column2, v.column5, v.column6, "
            "v.column7, v.column7 "
            f"FROM (VALUES {values}) AS v "
            "WHERE EXISTS (SELECT 1 FROM deks WHERE deks.dek_id = v.column5) "
            "ON CONFLICT (tenant, lookup) DO UPDATE SET last_seen_at = excluded.last_seen_at "
            "RETURNING tenant, lookup, token"
        )
        result = await conn.execute_fetchall(sql, params)
        return {(r[0], bytes(r[1])): r[2] for r in result}

    async def resolve(
        self, tenant: str, tokens: Sequence[str], now: int, touch_before: int
    ) -> list[StoredValue]:
        """Rows of `tokens` with their data keys; refreshes stale last-resolved times.

        Concurrent calls are combined into one query keyed by (tenant, token), so a call
        only ever gets rows of its own tenant. If it fails, every call in it gets
        VaultUnavailableError.
        """
        return await self._resolver.submit(ResolveCall(tenant, tokens, now, touch_before))

    async def _resolve_batch(self, batch: Sequence[ResolveCall]) -> list[list[StoredValue]]:
        keys = resolve_keys(batch)
        found: dict[tuple[str, str], StoredValue] = {}
        stale: list[object] = []
        async with self._guard():
            for start in range(0, len(keys), RESOLVE_MAX_TOKENS):
                chunk = keys[start : start + RESOLVE_MAX_TOKENS]
                params: list[object] = []
                for key in chunk:
                    params.extend((key.tenant, key.token, key.now, key.touch_before))
                values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                # A join on the primary key (tenant, token): SQLite plans `(a, b) IN (VALUES
                # ...)` as a full scan, the join as one index search per pair.
                rows = await self._conn.execute_fetchall(
                    f"SELECT {_RESOLVE_COLUMNS}, t.tenant, "  # noqa: S608 - placeholders
                    "t.last_resolved_at IS NULL OR t.last_resolved_at < k.column4, k.column3 "
                    f"FROM (VALUES {values}) AS k "
                    "JOIN tokens t ON t.tenant = k.column1 AND t.token = k.column2 "
                    "LEFT JOIN deks d ON d.dek_id = t.dek_id",
                    params,
                )
                for row in rows:
                    found[(row[8], row[0])] = _stored_value(row)
                    if row[9]:
                        stale.extend((row[8], row[0], row[10]))
            # Retention counts in days, so the timestamp is refreshed at most once per
            # touch interval: resolves stay read-only (one statement) almost always.
            step = RESOLVE_MAX_TOKENS * 3
            for start in range(0, len(stale), step):
                chunk_params = stale[start : start + step]
                values = ", ".join(["(?, ?, ?)"] * (len(chunk_params) // 3))
                await self._conn.execute(
                    "UPDATE tokens AS t SET last_resolved_at = k.column3 "  # noqa: S608 - placeholders
                    f"FROM (VALUES {values}) AS k "
                    "WHERE t.tenant = k.column1 AND t.token = k.column2",
                    chunk_params,
                )
        return resolve_answers(batch, found)

    async def find_token(self, tenant: str, lookup: bytes) -> str | None:
        """The token of the value with this lookup digest in `tenant`, or None; read-only."""
        async with self._guard():
            rows = list(
                await self._conn.execute_fetchall(
                    "SELECT token FROM tokens WHERE tenant = ? AND lookup = ?", (tenant, lookup)
                )
            )
        return str(rows[0][0]) if rows else None

    async def erase_token(self, tenant: str, token: str) -> bool:
        """Drop one token's ciphertext and lookup; False if there is no such token."""
        async with self._guard():
            rows = list(
                await self._conn.execute_fetchall(
                    "UPDATE tokens SET sealed = NULL, lookup = NULL "
                    "WHERE tenant = ? AND token = ? RETURNING token",
                    (tenant, token),
                )
            )
        return bool(rows)

    async def erase_tenant(self, tenant: str) -> int | None:
        """Delete the tenant's data keys and ciphertexts; tokens now erased, None if unknown."""
        async with self._transaction() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "UPDATE tokens SET sealed = NULL, lookup = NULL WHERE tenant = ? "
                    "RETURNING token",
                    (tenant,),
                )
            )
            keys = list(
                await conn.execute_fetchall(
                    "DELETE FROM deks WHERE tenant = ? RETURNING dek_id", (tenant,)
                )
            )
        return None if not rows and not keys else len(rows)

    async def purge(self, cutoff: int) -> int:
        """Delete rows idle since `cutoff`; return how many."""
        async with self._guard():
            rows = list(
                await self._conn.execute_fetchall(
                    "DELETE FROM tokens WHERE last_seen_at < ?1 "
                    "AND (last_resolved_at IS NULL OR last_resolved_at < ?1) RETURNING token",
                    (cutoff,),
                )
            )
        return len(rows)

    async def list_deks_to_rewrap(
        self, active_version: int, after_dek_id: str, limit: int
    ) -> list[DekRecord]:
        """Live data keys not wrapped by `active_version`, in id order after `after_dek_id`."""
        async with self._guard():
            rows = await self._conn.execute_fetchall(
                "SELECT dek_id, tenant, generation, kek_version, wrapped FROM deks "
                "WHERE kek_version <> ? AND dek_id > ? ORDER BY dek_id LIMIT ?",
                (active_version, after_dek_id, limit),
            )
        return [DekRecord(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    async def replace_wrapped(self, old: DekRecord, kek_version: int, wrapped: bytes) -> bool:
        """Compare-and-set a key's wrapping; False if it changed or was erased meanwhile."""
        async with self._guard():
            rows = list(
                await self._conn.execute_fetchall(
                    "UPDATE deks SET kek_version = ?1, wrapped = ?2 "
                    "WHERE dek_id = ?3 AND kek_version = ?4 AND wrapped = ?5 AND EXISTS "
                    "(SELECT 1 FROM kek_versions WHERE version = ?1 AND state = 'active') "
                    "RETURNING dek_id",
                    (kek_version, wrapped, old.dek_id, old.kek_version, old.wrapped),
                )
            )
        return bool(rows)

    async def kek_usage(self) -> list[KekUsage]:
        """Live data keys per KEK version."""
        async with self._guard():
            rows = await self._conn.execute_fetchall(
                "SELECT kek_version, COUNT(*), COUNT(DISTINCT tenant) FROM deks "
                "GROUP BY kek_version ORDER BY kek_version"
            )
        return [KekUsage(r[0], r[1], r[2]) for r in rows]


def _uri(path: Path) -> str:
    # mode=rw: SQLite opens an existing file only, never creating one behind our back.
    return path.resolve().as_uri() + "?mode=rw"


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return (stat.st_dev, stat.st_ino)


def _prepare_file(path: Path) -> None:
    """Create the directory and an owner-only database file before SQLite opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
