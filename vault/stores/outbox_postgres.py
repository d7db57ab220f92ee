"""The outbox on PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`, then a lease.

A claim locks due rows it can get without waiting (rows another deliverer is claiming at that
moment are skipped, never waited for) and writes its lease on them in the same statement; once
committed, the lease keeps every other deliverer of every replica away until it runs out. A
deliverer that dies leaves a lease that simply expires. Enqueues are combined: one INSERT
(arrays through `unnest`) and one commit for every request queued meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from vault.outbox import (
    ITEM_COLUMNS,
    NewItem,
    OutboxItem,
    OutboxState,
    RouteDepth,
    encode_headers,
    item_from_row,
)
from vault.stores.combiner import Combiner

MIGRATION: tuple[str, ...] = (
    # seq orders items (per conversation too); id is the Idempotency-Key. Delivered items are
    # deleted; dead ones stay until an operator retries or drops them.
    """CREATE TABLE outbox (
        seq bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        route text NOT NULL,
        tenant text NOT NULL,
        request_id text NOT NULL,
        method text NOT NULL,
        target text NOT NULL,
        headers text NOT NULL,
        body bytea NOT NULL,
        conversation text,
        state text NOT NULL CHECK (state IN ('pending', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        created_at double precision NOT NULL,
        age_from double precision NOT NULL,
        next_at double precision NOT NULL,
        lease_owner text,
        lease_until double precision,
        last_status integer,
        last_error text
    )""",
    "CREATE INDEX outbox_due ON outbox (state, next_at)",
    "CREATE INDEX outbox_conversation ON outbox (route, conversation, seq)",
)

ENQUEUE_MAX_ITEMS = 500

_ENQUEUE = """
INSERT INTO outbox (id, route, tenant, request_id, method, target, headers, body, conversation,
                    state, attempts, created_at, age_from, next_at)
SELECT i.id, i.route, i.tenant, i.request_id, i.method, i.target, i.headers, i.body,
       i.conversation, 'pending', 0, i.created_at, i.created_at, i.created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::bytea[], $9::text[], $10::float8[])
    AS i(id, route, tenant, request_id, method, target, headers, body, conversation, created_at)
"""

# Rows locked by a concurrent claim are skipped; a row another claim leased and committed
# meanwhile is re-checked against the WHERE (READ COMMITTED re-evaluates a locked row's new
# version), so its fresh lease keeps it out. The conversation check reads committed rows: an
# older item of the conversation that is pending (leased or waiting to retry) holds it back.
_CLAIM = f"""
WITH due AS (
    SELECT o.seq FROM outbox o
    WHERE o.state = 'pending' AND o.next_at <= $1
      AND (o.lease_until IS NULL OR o.lease_until <= $1)
      AND o.route = ANY($2::text[])
      AND (o.conversation IS NULL OR NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.route = o.route AND p.conversation = o.conversation
            AND p.state = 'pending' AND p.seq < o.seq))
    ORDER BY o.seq LIMIT $3
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET lease_owner = $4, lease_until = $5, attempts = outbox.attempts + 1
FROM due WHERE outbox.seq = due.seq
RETURNING {", ".join("outbox." + c.strip() for c in ITEM_COLUMNS.split(","))}
"""  # noqa: S608 - a constant column list, no input

Connection = Callable[[], AbstractAsyncContextManager[Any]]


class PostgresOutbox:
    """OutboxStore on the store's pool (`connection` maps failures to VaultUnavailableError)."""

    def __init__(self, connection: Connection, wait_timeout_s: float) -> None:
        self._connection = connection
        self._enqueuer: Combiner[NewItem, None] = Combiner(
            self._enqueue_batch,
            name="postgresql outbox",
            size=lambda _item: 1,
            max_size=ENQUEUE_MAX_ITEMS,
            wait_timeout_s=wait_timeout_s,
        )
        # Deliveries end in a delete each: combined too, so a busy outbox pays one commit
        # for every delivery settled meanwhile, not one per message.
        self._finisher: Combiner[tuple[str, str], bool] = Combiner(
            self._finish_batch,
            name="postgresql outbox finish",
            size=lambda _call: 1,
            max_size=ENQUEUE_MAX_ITEMS,
            wait_timeout_s=wait_timeout_s,
        )
        self._enqueuer.start()
        self._finisher.start()

    async def close(self) -> None:
        await self._enqueuer.close()
        await self._finisher.close()

    async def enqueue(self, item: NewItem) -> None:
        await self._enqueuer.submit(item)

    async def _enqueue_batch(self, batch: Sequence[NewItem]) -> list[None]:
        async with self._connection() as conn:
            await conn.execute(
                _ENQUEUE,
                [i.id for i in batch],
                [i.route for i in batch],
                [i.tenant for i in batch],
                [i.request_id for i in batch],
                [i.method for i in batch],
                [i.target for i in batch],
                [encode_headers(i.headers) for i in batch],
                [i.body for i in batch],
                [i.conversation for i in batch],
                [i.created_at for i in batch],
            )
        return [None] * len(batch)

    async def claim(
        self, routes: Sequence[str], owner: str, now: float, lease_s: float, limit: int
    ) -> list[OutboxItem]:
        async with self._connection() as conn:
            rows = await conn.fetch(_CLAIM, now, list(routes), limit, owner, now + lease_s)
        return sorted((item_from_row(tuple(r)) for r in rows), key=lambda item: item.seq)

    async def _change(self, sql: str, *params: object) -> int:
        async with self._connection() as conn:
            result = await conn.execute(sql, *params)
        # asyncpg answers with the command tag: "UPDATE 3", "DELETE 1".
        return int(str(result).rsplit(" ", 1)[-1])

    async def finish(self, item_id: str, owner: str) -> bool:
        return await self._finisher.submit((item_id, owner))

    async def _finish_batch(self, batch: Sequence[tuple[str, str]]) -> list[bool]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "DELETE FROM outbox o USING unnest($1::text[], $2::text[]) AS f(id, owner) "
                "WHERE o.id = f.id AND o.lease_owner = f.owner RETURNING o.id",
                [item_id for item_id, _owner in batch],
                [owner for _item_id, owner in batch],
            )
        gone = {r[0] for r in rows}
        return [item_id in gone for item_id, _owner in batch]

    async def reschedule(
        self, item_id: str, owner: str, next_at: float, status: int | None, error: str | None
    ) -> bool:
        return bool(
            await self._change(
                "UPDATE outbox SET next_at = $1, lease_owner = NULL, lease_until = NULL, "
                "last_status = $2, last_error = $3 WHERE id = $4 AND lease_owner = $5",
                next_at,
                status,
                error,
                item_id,
                owner,
            )
        )

    async def bury(self, item_id: str, owner: str, status: int | None, error: str | None) -> bool:
        return bool(
            await self._change(
                "UPDATE outbox SET state = 'dead', lease_owner = NULL, lease_until = NULL, "
                "last_status = $1, last_error = $2 WHERE id = $3 AND lease_owner = $4",
                status,
                error,
                item_id,
                owner,
            )
        )

    async def release(self, owner: str) -> int:
        return await self._change(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
            owner,
        )

    async def depth(self) -> list[RouteDepth]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT route, COUNT(*) FILTER (WHERE state = 'pending'), "
                "COUNT(*) FILTER (WHERE state = 'dead'), "
                "MIN(age_from) FILTER (WHERE state = 'pending') FROM outbox GROUP BY route"
            )
        return [
            RouteDepth(r[0], int(r[1]), int(r[2]), None if r[3] is None else float(r[3]))
            for r in rows
        ]

    async def items(self, state: OutboxState, route: str | None, limit: int) -> list[OutboxItem]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {ITEM_COLUMNS} FROM outbox WHERE state = $1 "  # noqa: S608 - constant columns
                "AND ($2::text IS NULL OR route = $2) ORDER BY seq LIMIT $3",
                state,
                route,
                limit,
            )
        return [item_from_row(tuple(r)) for r in rows]

    async def item(self, item_id: str) -> OutboxItem | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT {ITEM_COLUMNS} FROM outbox WHERE id = $1",  # noqa: S608 - constant columns
                item_id,
            )
        return None if row is None else item_from_row(tuple(row))

    async def revive(self, item_id: str | None, route: str | None, now: float) -> int:
        if item_id is not None:
            return await self._change(
                "UPDATE outbox SET state = 'pending', attempts = 0, age_from = $1, next_at = $1, "
                "lease_owner = NULL, lease_until = NULL WHERE id = $2",
                now,
                item_id,
            )
        return await self._change(
            "UPDATE outbox SET state = 'pending', attempts = 0, age_from = $1, next_at = $1, "
            "lease_owner = NULL, lease_until = NULL "
            "WHERE state = 'dead' AND ($2::text IS NULL OR route = $2)",
            now,
            route,
        )

    async def drop(self, item_id: str | None, route: str | None) -> int:
        if item_id is not None:
            return await self._change("DELETE FROM outbox WHERE id = $1", item_id)
        return await self._change(
            "DELETE FROM outbox WHERE state = 'dead' AND ($1::text IS NULL OR route = $1)", route
        )
