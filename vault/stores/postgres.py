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

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from vault.errors import VaultSchemaError, VaultUnavailableError
from vault.stores.base import SCHEMA_VERSION, DekRecord, KekUsage, NewRow, StoredValue
from vault.stores.combiner import (
    Combiner,
    ResolveCall,
    TokenizeCall,
    resolve_answers,
    resolve_keys,
    tokenize_answers,
    unique_rows,
)

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
}

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
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError, ValueError):
            # asyncpg errors can quote the DSN (with its password): never chained.
            raise VaultUnavailableError("postgresql") from None
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
            for version in range(current + 1, SCHEMA_VERSION + 1):
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

    async def get_active_dek(self, tenant: str, generation: int) -> DekRecord | None:
        """The tenant's data key of `generation`, if any."""
        async with self._connection() as conn:
            row = await conn.fetchrow(
                _SELECT_DEK,
                tenant,
                generation,
            )
        return None if row is None else _dek(row)

    async def insert_dek(self, candidate: DekRecord, now: int) -> DekRecord:
        """Insert unless the tenant has a key of that generation; return the winner."""
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO deks (dek_id, tenant, generation, kek_version, wrapped, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, generation) DO NOTHING",
                candidate.dek_id,
                candidate.tenant,
                candidate.generation,
                candidate.kek_version,
                candidate.wrapped,
                now,
            )
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

    async def erase_tenant(self, tenant: str) -> int:
        """Delete the tenant's data keys and ciphertexts; return tokens now erased."""
        async with self._connection() as conn, conn.transaction():
            # Keys first: the DELETE waits for in-flight tokenize statements (they hold a
            # KEY SHARE lock through the foreign key); the UPDATE, a new snapshot in READ
            # COMMITTED, then also clears the rows they committed.
            await conn.execute("DELETE FROM deks WHERE tenant = $1", tenant)
            status = await conn.execute(
                "UPDATE tokens SET sealed = NULL, lookup = NULL WHERE tenant = $1", tenant
            )
        return int(status.rsplit(" ", 1)[1])

    async def purge(self, cutoff: int) -> int:
        """Delete rows idle since `cutoff`; return how many."""
        async with self._connection() as conn:
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
                "WHERE dek_id = $3 AND kek_version = $4 AND wrapped = $5 RETURNING dek_id",
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
