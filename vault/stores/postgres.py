"""PostgreSQL token store (asyncpg): a connection pool, one statement per hot-path batch.

Concurrent `tokenize` and `resolve` calls are combined (`combiner.Combiner`): every call
queued while the previous batch ran goes into ONE statement, so one round trip and one
commit serve them all. Arrays travel as parameters (`unnest`), so a batch of any size is one
prepared statement. Timeouts: pool acquire, client-side `command_timeout` and the server's
`statement_timeout`, all from config.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from vault.errors import (
    KeyCommandBusyError,
    KeyRingMismatchError,
    KeyStateChangedError,
    VaultSchemaError,
    VaultUnavailableError,
)
from vault.mark import VaultMark
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
    resolve_answers,
    resolve_keys,
    tokenize_answers,
    unique_rows,
)
from vault.stores.outbox_postgres import MIGRATION as OUTBOX_MIGRATION
from vault.stores.outbox_postgres import PostgresOutbox

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE deks (
            dek_id text PRIMARY KEY,
            tenant text NOT NULL,
            generation integer NOT NULL,
            kek_version integer NOT NULL,
            wrapped bytea NOT NULL,
            created_at bigint NOT NULL
        )""",
        "CREATE UNIQUE INDEX deks_tenant_generation ON deks (tenant, generation)",
        "CREATE INDEX deks_kek_version ON deks (kek_version)",
        # lookup and sealed become NULL when a token is erased; dek_id when its key is
        # shredded. No index on the timestamps: updating them then stays a HOT update.
        """CREATE TABLE tokens (
            tenant text NOT NULL,
            token text NOT NULL,
            entity_type text NOT NULL,
            lookup bytea,
            dek_id text REFERENCES deks (dek_id) ON DELETE SET NULL,
            sealed bytea,
            created_at bigint NOT NULL,
            last_seen_at bigint NOT NULL,
            last_resolved_at bigint,
            PRIMARY KEY (tenant, token)
        ) WITH (fillfactor = 90)""",
        "CREATE UNIQUE INDEX tokens_lookup ON tokens (tenant, lookup)",
        "CREATE INDEX tokens_dek ON tokens (dek_id)",
    ),
    2: (
        # One row: the key-state counter every process polls, and the index key's check value.
        """CREATE TABLE vault_keys (
            id integer PRIMARY KEY CHECK (id = 1),
            epoch bigint NOT NULL,
            index_check bytea NOT NULL,
            created_at bigint NOT NULL
        )""",
        """CREATE TABLE kek_versions (
            version integer PRIMARY KEY,
            state text NOT NULL CHECK (state IN ('active', 'decrypt-only', 'retired')),
            check_value bytea NOT NULL,
            active_at bigint NOT NULL,
            decrypt_only_at bigint,
            retired_at bigint
        )""",
        """CREATE TABLE heartbeats (
            process_id text PRIMARY KEY,
            active_version integer NOT NULL,
            seen_at bigint NOT NULL,
            expires_at bigint NOT NULL
        )""",
    ),
    3: (
        "ALTER TABLE vault_keys ADD COLUMN pending_version integer",
        "ALTER TABLE vault_keys ADD COLUMN pending_check bytea",
        # The minted counter is the highest mint_seq of a row: a sequence is never locked,
        # so concurrent inserts of several processes do not queue on a counter row (a row
        # updated by every insert would serialise their commits). A value sent again draws
        # a number too (the default is computed before the conflict), but its row keeps its
        # old one, so only inserted rows move the mark. Existing rows keep NULL: no rewrite.
        "CREATE SEQUENCE token_mint_seq",
        "ALTER TABLE tokens ADD COLUMN mint_seq bigint",
        "ALTER TABLE tokens ALTER COLUMN mint_seq SET DEFAULT nextval('token_mint_seq')",
        "CREATE INDEX tokens_mint_seq ON tokens (mint_seq)",
        # One row: the vault's id (a restored copy keeps it), and the counter's floor, which
        # purge raises before deleting (the newest row may be purged).
        """CREATE TABLE vault_mark (
            id integer PRIMARY KEY CHECK (id = 1),
            vault_id text NOT NULL,
            minted_floor bigint NOT NULL
        )""",
        "INSERT INTO vault_mark (id, vault_id, minted_floor) "
        "VALUES (1, md5(random()::text || clock_timestamp()::text), 0)",
        """CREATE TABLE lost_tokens (
            tenant text NOT NULL,
            token text NOT NULL,
            recorded_at bigint NOT NULL,
            PRIMARY KEY (tenant, token)
        )""",
    ),
    4: (
        # One row per full reveal counted by the reveal rate limit; `subject_key` is a digest
        # of (tenant, subject), never the subject itself.
        """CREATE TABLE reveal_events (
            subject_key text NOT NULL,
            at double precision NOT NULL
        )""",
        "CREATE INDEX reveal_events_subject ON reveal_events (subject_key, at)",
        "CREATE INDEX reveal_events_at ON reveal_events (at)",
    ),
    # The outbox of queued routes (vault/outbox.py).
    6: OUTBOX_MIGRATION,
}

_READ_MARK = (
    "SELECT m.vault_id, GREATEST(m.minted_floor, COALESCE((SELECT MAX(mint_seq) FROM tokens), 0)), "
    "COALESCE((SELECT epoch FROM vault_keys), 0) FROM vault_mark m"
)

# Rows of several calls (tenants, data keys) in one statement, one row per (tenant, lookup)
# (`unique_rows`): ON CONFLICT may not touch one row twice in a statement.
# `live` takes a KEY SHARE lock on each data key still there, as the foreign key would: a
# concurrent tenant erasure then either waits for us or has committed, and the rows of its
# (now missing) keys are left out instead of failing the whole batch; the call they belong
# to gets None. ORDER BY tenant, lookup: concurrent batches take row locks in one global
# order, so two batches sharing values cannot deadlock. DO UPDATE, not DO NOTHING: RETURNING
# then reports rows another writer committed after our snapshot, so concurrent writers of
# one value agree on one token in a single statement.
_TOKENIZE = """
WITH live AS MATERIALIZED (
    SELECT dek_id FROM deks WHERE dek_id = ANY($2::text[]) FOR KEY SHARE
)
INSERT INTO tokens (tenant, token, entity_type, lookup, dek_id, sealed, created_at, last_seen_at)
SELECT i.tenant, i.token, i.entity_type, i.lookup, i.dek_id, i.sealed, i.now, i.now
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bytea[],
            $7::bytea[]) AS i(tenant, dek_id, now, token, entity_type, lookup, sealed)
WHERE i.dek_id IN (SELECT dek_id FROM live)
ORDER BY i.tenant, i.lookup
ON CONFLICT (tenant, lookup) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
RETURNING tenant, lookup, token
"""

# The tenant travels with every token and the join is on (tenant, token): a row is only
# ever found for the tenant that asked for it. Retention counts in days: last_resolved_at is
# refreshed at most once per touch interval, in the same statement as the read. SKIP LOCKED:
# a row a concurrent tokenize is updating (which marks it seen, just as good for retention)
# is left for the next resolve, so a resolve never waits for a lock or joins a deadlock.
_RESOLVE = """
WITH k AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
        AS k(tenant, token, now, touch_before)
),
stale AS (
    SELECT t.tenant, t.token, k.now FROM tokens t
    JOIN k ON t.tenant = k.tenant AND t.token = k.token
    WHERE t.last_resolved_at IS NULL OR t.last_resolved_at < k.touch_before
    FOR NO KEY UPDATE OF t SKIP LOCKED
),
touched AS (
    UPDATE tokens t SET last_resolved_at = s.now FROM stale s
    WHERE t.tenant = s.tenant AND t.token = s.token
)
SELECT t.tenant, t.token, t.entity_type, t.sealed,
       d.dek_id, d.tenant, d.generation, d.kek_version, d.wrapped
FROM k JOIN tokens t ON t.tenant = k.tenant AND t.token = k.token
LEFT JOIN deks d ON d.dek_id = t.dek_id
"""

# Expired check-ins are kept this long, then deleted by the next check-in.
_STALE_BEAT_S = 3600

# Rows per combined tokenize statement and tokens per combined resolve: a single larger
# call still runs (alone); these only stop a batch from growing past them.
TOKENIZE_MAX_ROWS = 1000
RESOLVE_MAX_TOKENS = 1000

_SELECT_DEK = (
    "SELECT dek_id, tenant, generation, kek_version, wrapped FROM deks "
    "WHERE tenant = $1 AND generation = $2"
)
_SELECT_DEKS_TO_REWRAP = (
    "SELECT dek_id, tenant, generation, kek_version, wrapped FROM deks "
    "WHERE kek_version <> $1 AND dek_id > $2 ORDER BY dek_id LIMIT $3"
)


_PG_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def _dek(row: Any) -> DekRecord:
    return DekRecord(row[0], row[1], row[2], row[3], bytes(row[4]))


class PostgresStore:
    """TokenStore on an asyncpg pool; open with `PostgresStore.open`."""

    def __init__(
        self, pool: asyncpg.Pool, schema: str, acquire_timeout_s: float, statement_timeout_s: float
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._acquire_timeout_s = acquire_timeout_s
        # A caller waits at most for one batch: pool acquire plus statement.
        wait_timeout_s = acquire_timeout_s + statement_timeout_s
        # Owned by the store: started in open(), cancelled and awaited in close().
        self._tokenizer = Combiner(
            self._tokenize_batch,
            name="postgresql tokenize",
            size=lambda call: len(call.rows),
            max_size=TOKENIZE_MAX_ROWS,
            wait_timeout_s=wait_timeout_s,
        )
        self._resolver = Combiner(
            self._resolve_batch,
            name="postgresql resolve",
            size=lambda call: len(call.tokens),
            max_size=RESOLVE_MAX_TOKENS,
            wait_timeout_s=wait_timeout_s,
        )
        self._outbox: PostgresOutbox | None = None
        self._wait_timeout_s = wait_timeout_s

    def outbox(self) -> PostgresOutbox:
        """The outbox in this vault's schema, on this pool (made on first use)."""
        if self._outbox is None:
            self._outbox = PostgresOutbox(self._connection, self._wait_timeout_s)
        return self._outbox

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str,
        min_size: int,
        max_size: int,
        acquire_timeout_s: float,
        statement_timeout_s: float,
    ) -> PostgresStore:
        """Create the pool. Raises VaultUnavailableError if the server cannot be reached.

        `schema` must already be a validated lowercase identifier (VaultConfig checks it).
        """
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=acquire_timeout_s,
                command_timeout=statement_timeout_s,
                server_settings={
                    "search_path": schema,
                    "statement_timeout": str(int(statement_timeout_s * 1000)),
                    "application_name": "redactor-vault",
                },
            )
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            OSError,
            TimeoutError,
            ValueError,
        ) as exc:
            # asyncpg errors can quote the DSN (with its password): never chained; the
            # operator's message is built from the DSN's user, host and database alone.
            raise VaultUnavailableError(connect_failure(exc, dsn)) from None
        store = cls(pool, schema, acquire_timeout_s, statement_timeout_s)
        store._tokenizer.start()
        store._resolver.start()
        return store

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                yield conn
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            raise VaultUnavailableError("postgresql") from None

    async def close(self) -> None:
        """Stop the combiners (failing queued calls), then close the pool."""
        try:
            await self._tokenizer.close()
            await self._resolver.close()
            if self._outbox is not None:
                await self._outbox.close()
        finally:
            await self._pool.close()

    async def migrate(self) -> int:
        """Create or upgrade the schema under an advisory lock (several processes may start)."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", "vault:" + self._schema
            )
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            await conn.execute(f'SET LOCAL search_path TO "{self._schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS vault_schema "
                "(id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)"
            )
            current = await conn.fetchval("SELECT version FROM vault_schema") or 0
            if current > SCHEMA_VERSION:
                raise VaultSchemaError("store schema is newer than this redactor")
            # Steps are numbered by feature; a number may be unused, so walk the ones defined.
            for version in sorted(v for v in _MIGRATIONS if current < v <= SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO vault_schema (id, version) VALUES (1, $1) "
                "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
                SCHEMA_VERSION,
            )
        return SCHEMA_VERSION

    async def check_schema(self) -> None:
        """Raises VaultSchemaError unless migrated to our version; VaultUnavailableError."""
        async with self._connection() as conn:
            exists = await conn.fetchval("SELECT to_regclass('vault_schema') IS NOT NULL")
            version = await conn.fetchval("SELECT version FROM vault_schema") if exists else None
        if version != SCHEMA_VERSION:
            raise VaultSchemaError("run `redactor vault migrate`")

    async def exists(self) -> bool:
        """Whether the vault's schema and its version table are there."""
        async with self._connection() as conn:
            found = await conn.fetchval(
                "SELECT to_regclass(quote_ident($1) || '.vault_schema') IS NOT NULL", self._schema
            )
        return bool(found)

    async def read_epoch(self) -> int | None:
        """The key-state counter; None before keys are recorded."""
        async with self._connection() as conn:
            value = await conn.fetchval("SELECT epoch FROM vault_keys")
        return None if value is None else int(value)

    async def take_reveals(
        self, subject_key: str, count: int, *, limit: int, window_s: float, now: float
    ) -> RevealBudget:
        """Count and record reveals under a per-subject advisory lock: two replicas' count and
        insert for one subject never interleave (READ COMMITTED alone would let both pass)."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                f"reveal:{self._schema}:{subject_key}",
            )
            await conn.execute("DELETE FROM reveal_events WHERE at <= $1", now - window_s)
            row = await conn.fetchrow(
                "SELECT COUNT(*), MIN(at) FROM reveal_events WHERE subject_key = $1", subject_key
            )
            counted = int(row[0]) if row is not None else 0
            oldest = row[1] if row is not None else None
            granted = max(0, min(count, limit - counted))
            if granted:
                await conn.executemany(
                    "INSERT INTO reveal_events (subject_key, at) VALUES ($1, $2)",
                    [(subject_key, now)] * granted,
                )
        if oldest is None and granted:
            oldest = now
        return RevealBudget(granted, None if oldest is None else float(oldest))

    async def read_key_state(self) -> KeyState | None:
        """The key records, or None if none were ever recorded."""
        async with self._connection() as conn:
            head = await conn.fetchrow(
                "SELECT epoch, index_check, pending_version, pending_check FROM vault_keys"
            )
            rows = await conn.fetch(
                "SELECT version, state, check_value, active_at, decrypt_only_at, retired_at "
                "FROM kek_versions ORDER BY version"
            )
        if head is None:
            return None
        keks = tuple(KekRecord(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows)
        return KeyState(
            int(head[0]),
            bytes(head[1]),
            keks,
            head[2],
            None if head[3] is None else bytes(head[3]),
        )

    async def init_key_state(self, state: KeyState, now: int) -> bool:
        """Record a first key ring unless one is recorded already."""
        async with self._connection() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO vault_keys (id, epoch, index_check, created_at) "
                "VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING id",
                state.epoch,
                state.index_check,
                now,
            )
            if inserted is None:
                return False
            await conn.executemany(
                "INSERT INTO kek_versions (version, state, check_value, active_at, "
                "decrypt_only_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6)",
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
        async with self._connection() as conn, conn.transaction():
            # The state row lock serialises key-state changes of concurrent admin commands.
            await self._expect(conn, expected_epoch, pending=new)
            if await conn.fetchval("SELECT 1 FROM kek_versions WHERE version = $1", new.version):
                raise KeyRingMismatchError(f"kek version {new.version} is already recorded")
            await conn.execute(
                "UPDATE kek_versions SET state = 'decrypt-only', decrypt_only_at = $1 "
                "WHERE state = 'active'",
                now,
            )
            await conn.execute(
                "INSERT INTO kek_versions (version, state, check_value, active_at) "
                "VALUES ($1, 'active', $2, $3)",
                new.version,
                new.check_value,
                now,
            )
            await conn.execute(
                "UPDATE vault_keys SET epoch = epoch + 1, pending_version = NULL, "
                "pending_check = NULL"
            )

    @staticmethod
    async def _expect(
        conn: asyncpg.Connection, epoch: int | None, *, pending: KekRecord | None
    ) -> None:
        """Lock the state row; with `epoch`, raise KeyStateChangedError unless the epoch (and
        the pending version) are these."""
        row = await conn.fetchrow(
            "SELECT epoch, pending_version, pending_check FROM vault_keys FOR UPDATE"
        )
        if epoch is None:
            return
        if row is None or row[0] != epoch:
            raise KeyStateChangedError(f"expected key epoch {epoch}")
        if pending is None and row[1] is not None:
            raise KeyStateChangedError(f"kek version {row[1]} is pending")
        if pending is not None and (
            row[1] != pending.version or row[2] is None or bytes(row[2]) != pending.check_value
        ):
            raise KeyStateChangedError(f"kek version {pending.version} is not the pending one")

    async def claim_rotation(self, new: KekRecord, expected_epoch: int) -> int:
        """Record `new` as pending if the epoch is `expected_epoch` and nothing is pending."""
        async with self._connection() as conn, conn.transaction():
            await self._expect(conn, expected_epoch, pending=None)
            if await conn.fetchval("SELECT 1 FROM kek_versions WHERE version = $1", new.version):
                raise KeyStateChangedError(f"kek version {new.version} is already recorded")
            epoch = await conn.fetchval(
                "UPDATE vault_keys SET epoch = epoch + 1, pending_version = $1, "
                "pending_check = $2 RETURNING epoch",
                new.version,
                new.check_value,
            )
        return int(epoch)

    async def clear_pending(self, expected_epoch: int) -> int:
        """Forget a pending rotation; the epoch grows. Returns the new epoch."""
        async with self._connection() as conn:
            epoch = await conn.fetchval(
                "UPDATE vault_keys SET epoch = epoch + 1, pending_version = NULL, "
                "pending_check = NULL WHERE epoch = $1 RETURNING epoch",
                expected_epoch,
            )
        if epoch is None:
            raise KeyStateChangedError(f"expected key epoch {expected_epoch}")
        return int(epoch)

    @contextlib.asynccontextmanager
    async def key_command_lock(self) -> AsyncIterator[None]:
        """A session advisory lock on a connection held for the whole command: key commands
        on any host serialise on it; a crashed holder's lock goes with its connection."""
        key = "vault-keys:" + self._schema
        try:
            conn = await self._pool.acquire(timeout=self._acquire_timeout_s)
        except _PG_ERRORS:
            raise VaultUnavailableError("postgresql") from None
        try:
            try:
                locked = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key)
            except _PG_ERRORS:
                raise VaultUnavailableError("postgresql") from None
            if not locked:
                raise KeyCommandBusyError("the vault's key-command lock is held")
            try:
                yield
            finally:
                try:
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
                except _PG_ERRORS:
                    # A session lock must not go back to the pool with the connection.
                    conn.terminate()
        finally:
            await self._pool.release(conn)

    async def read_mark(self) -> VaultMark:
        """The vault's id, minted counter and key epoch."""
        async with self._connection() as conn:
            row = await conn.fetchrow(_READ_MARK)
        if row is None:
            raise VaultSchemaError("run `redactor vault migrate`")
        return VaultMark(str(row[0]), int(row[1]), int(row[2]))

    async def accept_mark(self, mark: VaultMark) -> VaultMark:
        """Raise the counters past `mark`; the epoch grows so every process re-reads keys.

        The sequence moves too: tokens minted from now on count above the accepted mark.
        """
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE vault_mark SET minted_floor = GREATEST(minted_floor, $1)", mark.minted
            )
            await conn.execute(
                "SELECT setval('token_mint_seq', GREATEST($1::bigint, "
                "(SELECT last_value FROM token_mint_seq)))",
                max(mark.minted, 1),
            )
            await conn.execute("UPDATE vault_keys SET epoch = GREATEST(epoch, $1) + 1", mark.epoch)
        return await self.read_mark()

    async def clock_now(self) -> int | None:
        """PostgreSQL's `now()`: one clock for every host that purges."""
        async with self._connection() as conn:
            value = await conn.fetchval("SELECT floor(extract(epoch FROM now()))::bigint")
        return int(value)

    async def newest_activity(self) -> int | None:
        """The latest created, seen or resolved time of any token."""
        async with self._connection() as conn:
            value = await conn.fetchval(
                "SELECT GREATEST(MAX(last_seen_at), MAX(last_resolved_at)) FROM tokens"
            )
        return None if value is None else int(value)

    async def count_purgeable(self, cutoff: int) -> int:
        """How many rows `purge(cutoff)` would delete."""
        async with self._connection() as conn:
            value = await conn.fetchval(
                "SELECT COUNT(*) FROM tokens WHERE last_seen_at < $1 "
                "AND (last_resolved_at IS NULL OR last_resolved_at < $1)",
                cutoff,
            )
        return int(value)

    async def present_tokens(self, tenant: str, tokens: Sequence[str]) -> set[str]:
        """Which of `tokens` have a row in `tenant` (erased ones too)."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT token FROM tokens WHERE tenant = $1 AND token = ANY($2::text[])",
                tenant,
                list(tokens),
            )
        return {str(r[0]) for r in rows}

    async def record_lost(self, tenant: str, tokens: Sequence[str], now: int) -> int:
        """Record tokens as lost; returns how many were new."""
        async with self._connection() as conn:
            status = await conn.execute(
                "INSERT INTO lost_tokens (tenant, token, recorded_at) "
                "SELECT $1, t, $3 FROM unnest($2::text[]) AS t "
                "ON CONFLICT (tenant, token) DO NOTHING",
                tenant,
                list(tokens),
                now,
            )
        return int(status.rsplit(" ", 1)[1])

    async def lost_tokens(self, tenant: str, tokens: Sequence[str]) -> set[str]:
        """Which of `tokens` are recorded as lost in `tenant`."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT token FROM lost_tokens WHERE tenant = $1 AND token = ANY($2::text[])",
                tenant,
                list(tokens),
            )
        return {str(r[0]) for r in rows}

    async def record_retirement(
        self, version: int, now: int, *, expected_epoch: int | None = None
    ) -> None:
        """Mark `version` retired if nothing needs it; raises KeyRetireError otherwise."""
        async with self._connection() as conn, conn.transaction():
            await self._expect(conn, expected_epoch, pending=None)
            # FOR UPDATE on the version's row: a data key insert under it (which takes FOR
            # SHARE on the same row) either committed before (and is counted below) or waits
            # and then finds the version no longer active.
            state = await conn.fetchval(
                "SELECT state FROM kek_versions WHERE version = $1 FOR UPDATE", version
            )
            deks = await conn.fetchrow(
                "SELECT COUNT(*), COUNT(DISTINCT tenant) FROM deks WHERE kek_version = $1", version
            )
            holders = await conn.fetchval(
                "SELECT COUNT(*) FROM heartbeats WHERE active_version = $1 AND expires_at >= $2",
                version,
                now,
            )
            retire_refusal(version, state, deks[0], deks[1], holders)
            await conn.execute(
                "UPDATE kek_versions SET state = 'retired', retired_at = $1 "
                "WHERE version = $2 AND state <> 'retired'",
                now,
                version,
            )
            await conn.execute("UPDATE vault_keys SET epoch = epoch + 1")

    async def heartbeat(self, beat: Heartbeat) -> None:
        """Record or refresh a process's check-in."""
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO heartbeats (process_id, active_version, seen_at, expires_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (process_id) DO UPDATE SET "
                "active_version = EXCLUDED.active_version, seen_at = EXCLUDED.seen_at, "
                "expires_at = EXCLUDED.expires_at",
                beat.process_id,
                beat.active_version,
                beat.seen_at,
                beat.expires_at,
            )
            # Rows of processes that died without checking out: long expired, never read.
            await conn.execute(
                "DELETE FROM heartbeats WHERE expires_at < $1", beat.seen_at - _STALE_BEAT_S
            )

    async def drop_heartbeat(self, process_id: str) -> None:
        """Forget a process that stops."""
        async with self._connection() as conn:
            await conn.execute("DELETE FROM heartbeats WHERE process_id = $1", process_id)

    async def live_heartbeats(self, now: int) -> list[Heartbeat]:
        """Processes whose check-in has not expired."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT process_id, active_version, seen_at, expires_at FROM heartbeats "
                "WHERE expires_at >= $1 ORDER BY process_id",
                now,
            )
        return [Heartbeat(r[0], r[1], r[2], r[3]) for r in rows]

    async def sample_deks(self) -> list[DekRecord]:
        """One live data key per KEK version."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT DISTINCT ON (kek_version) dek_id, tenant, generation, kek_version, "
                "wrapped FROM deks ORDER BY kek_version, dek_id"
            )
        return [_dek(r) for r in rows]

    async def get_active_dek(self, tenant: str, generation: int) -> DekRecord | None:
        """The tenant's data key of `generation`, if any."""
        async with self._connection() as conn:
            row = await conn.fetchrow(
                _SELECT_DEK,
                tenant,
                generation,
            )
        return None if row is None else _dek(row)

    async def insert_dek(self, candidate: DekRecord, now: int) -> DekRecord | None:
        """Insert unless the tenant has a key of that generation; return the winner.

        None if the vault does not record the candidate's KEK version as active. FOR SHARE
        on the version's row: a concurrent rotation or retirement (FOR UPDATE) waits for
        this insert, and then sees its data key.
        """
        async with self._connection() as conn:
            active = await conn.fetchval(
                "WITH active AS (SELECT version FROM kek_versions WHERE version = $4 "
                "AND state = 'active' FOR SHARE) "
                "INSERT INTO deks (dek_id, tenant, generation, kek_version, wrapped, created_at) "
                "SELECT $1, $2, $3, $4, $5, $6 FROM active "
                "ON CONFLICT (tenant, generation) DO NOTHING RETURNING true",
                candidate.dek_id,
                candidate.tenant,
                candidate.generation,
                candidate.kek_version,
                candidate.wrapped,
                now,
            )
            if active is None and not await conn.fetchval(
                "SELECT 1 FROM kek_versions WHERE version = $1 AND state = 'active'",
                candidate.kek_version,
            ):
                return None
            row = await conn.fetchrow(
                _SELECT_DEK,
                candidate.tenant,
                candidate.generation,
            )
        if row is None:
            raise VaultUnavailableError("data key vanished while being created")
        return _dek(row)

    async def tokenize(
        self, tenant: str, dek_id: str, rows: Sequence[NewRow], now: int
    ) -> dict[bytes, str] | None:
        """Insert new lookups, keep existing tokens; atomic. None if the key is gone.

        Combined with concurrent calls into one statement (one transaction); if it fails,
        every call in it gets VaultUnavailableError.
        """
        return await self._tokenizer.submit(TokenizeCall(tenant, dek_id, rows, now))

    async def _tokenize_batch(self, batch: Sequence[TokenizeCall]) -> list[dict[bytes, str] | None]:
        rows = unique_rows(batch)
        async with self._connection() as conn:
            result = await conn.fetch(
                _TOKENIZE,
                [u.tenant for u in rows],
                [u.dek_id for u in rows],
                [u.now for u in rows],
                [u.row.token for u in rows],
                [u.row.entity_type for u in rows],
                [u.row.lookup for u in rows],
                [u.row.sealed for u in rows],
            )
        return tokenize_answers(batch, {(r[0], bytes(r[1])): r[2] for r in result})

    async def resolve(
        self, tenant: str, tokens: Sequence[str], now: int, touch_before: int
    ) -> list[StoredValue]:
        """Rows of `tokens` with their data keys; refreshes stale last-resolved times.

        Combined with concurrent calls into one query keyed by (tenant, token), so a call
        only ever gets rows of its own tenant; if it fails, every call in it gets
        VaultUnavailableError.
        """
        return await self._resolver.submit(ResolveCall(tenant, tokens, now, touch_before))

    async def _resolve_batch(self, batch: Sequence[ResolveCall]) -> list[list[StoredValue]]:
        keys = resolve_keys(batch)
        async with self._connection() as conn:
            rows = await conn.fetch(
                _RESOLVE,
                [k.tenant for k in keys],
                [k.token for k in keys],
                [k.now for k in keys],
                [k.touch_before for k in keys],
            )
        found = {
            (r[0], r[1]): StoredValue(
                r[1],
                r[2],
                None if r[3] is None else bytes(r[3]),
                None if r[4] is None else DekRecord(r[4], r[5], r[6], r[7], bytes(r[8])),
            )
            for r in rows
        }
        return resolve_answers(batch, found)

    async def find_token(self, tenant: str, lookup: bytes) -> str | None:
        """The token of the value with this lookup digest in `tenant`, or None; read-only."""
        async with self._connection() as conn:
            found = await conn.fetchval(
                "SELECT token FROM tokens WHERE tenant = $1 AND lookup = $2", tenant, lookup
            )
        return None if found is None else str(found)

    async def erase_token(self, tenant: str, token: str) -> bool:
        """Drop one token's ciphertext and lookup; False if there is no such token."""
        async with self._connection() as conn:
            found = await conn.fetchval(
                "UPDATE tokens SET sealed = NULL, lookup = NULL "
                "WHERE tenant = $1 AND token = $2 RETURNING token",
                tenant,
                token,
            )
        return found is not None

    async def erase_tenant(self, tenant: str) -> int | None:
        """Delete the tenant's data keys and ciphertexts; tokens now erased, None if unknown."""
        async with self._connection() as conn, conn.transaction():
            # Keys first: the DELETE waits for in-flight tokenize statements (they hold a
            # KEY SHARE lock through the foreign key); the UPDATE, a new snapshot in READ
            # COMMITTED, then also clears the rows they committed.
            deleted = await conn.execute("DELETE FROM deks WHERE tenant = $1", tenant)
            status = await conn.execute(
                "UPDATE tokens SET sealed = NULL, lookup = NULL WHERE tenant = $1", tenant
            )
        tokens, keys = int(status.rsplit(" ", 1)[1]), int(deleted.rsplit(" ", 1)[1])
        return None if not tokens and not keys else tokens

    async def purge(self, cutoff: int) -> int:
        """Delete rows idle since `cutoff`; return how many. The minted counter's floor is
        raised first, in the same transaction: purging the newest row never lowers the mark."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE vault_mark SET minted_floor = GREATEST(minted_floor, "
                "COALESCE((SELECT MAX(mint_seq) FROM tokens), 0))"
            )
            status = await conn.execute(
                "DELETE FROM tokens WHERE last_seen_at < $1 "
                "AND (last_resolved_at IS NULL OR last_resolved_at < $1)",
                cutoff,
            )
        return int(status.rsplit(" ", 1)[1])

    async def list_deks_to_rewrap(
        self, active_version: int, after_dek_id: str, limit: int
    ) -> list[DekRecord]:
        """Live data keys not wrapped by `active_version`, in id order after `after_dek_id`."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                _SELECT_DEKS_TO_REWRAP,
                active_version,
                after_dek_id,
                limit,
            )
        return [_dek(r) for r in rows]

    async def replace_wrapped(self, old: DekRecord, kek_version: int, wrapped: bytes) -> bool:
        """Compare-and-set a key's wrapping; False if it changed or was erased meanwhile."""
        async with self._connection() as conn:
            found = await conn.fetchval(
                "UPDATE deks SET kek_version = $1, wrapped = $2 "
                "WHERE dek_id = $3 AND kek_version = $4 AND wrapped = $5 AND EXISTS "
                "(SELECT 1 FROM kek_versions WHERE version = $1 AND state = 'active' FOR SHARE) "
                "RETURNING dek_id",
                kek_version,
                wrapped,
                old.dek_id,
                old.kek_version,
                old.wrapped,
            )
        return found is not None

    async def kek_usage(self) -> list[KekUsage]:
        """Live data keys per KEK version."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT kek_version, COUNT(*), COUNT(DISTINCT tenant) FROM deks "
                "GROUP BY kek_version ORDER BY kek_version"
            )
        return [KekUsage(r[0], r[1], r[2]) for r in rows]


def connect_failure(exc: BaseException, dsn: str) -> str:
    """Why the first connection failed, told apart for the operator: authentication, a
    missing database, or a server that cannot be reached. Names user, host, port and
    database from the DSN, never its password."""
    parts = urlsplit(dsn)
    user = parts.username or "(default user)"
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    database = parts.path.lstrip("/") or user
    if isinstance(
        exc,
        asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError,
    ):
        return f"postgresql: authentication failed for user {user!r} at {where}"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"postgresql: database {database!r} does not exist at {where}"
    if isinstance(exc, OSError | TimeoutError):
        return f"postgresql: server unreachable at {where} ({type(exc).__name__})"
    if isinstance(exc, ValueError):
        return "postgresql: the URL does not parse"
    return f"postgresql: connection refused by the server at {where} ({type(exc).__name__})"
