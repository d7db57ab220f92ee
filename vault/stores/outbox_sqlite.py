"""The outbox on SQLite: one table, leases in a column, claimed in one UPDATE.

SQLite has one writer at a time (across processes too): the claim is a single UPDATE, so two
deliverers, in one process or several, can never lease the same item. Enqueues are combined
like tokenize calls: every request queued while the previous INSERT ran goes into the next
one statement (one commit, one hop to the connection's thread).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import aiosqlite

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
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        route TEXT NOT NULL,
        tenant TEXT NOT NULL,
        request_id TEXT NOT NULL,
        method TEXT NOT NULL,
        target TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        conversation TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        age_from REAL NOT NULL,
        next_at REAL NOT NULL,
        lease_owner TEXT,
        lease_until REAL,
        last_status INTEGER,
        last_error TEXT
    )""",
    "CREATE INDEX outbox_due ON outbox (state, next_at)",
    "CREATE INDEX outbox_conversation ON outbox (route, conversation, seq)",
)

# 15 parameters per row, far below SQLite's variable limit; bodies make a batch heavy anyway.
ENQUEUE_MAX_ITEMS = 200

_CLAIM = f"""
UPDATE outbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
WHERE seq IN (
    SELECT o.seq FROM outbox o
    WHERE o.state = 'pending' AND o.next_at <= ? AND (o.lease_until IS NULL OR o.lease_until <= ?)
      AND o.route IN (SELECT value FROM json_each(?))
      AND (o.conversation IS NULL OR NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.route = o.route AND p.conversation = o.conversation
            AND p.state = 'pending' AND p.seq < o.seq))
    ORDER BY o.seq LIMIT ?
)
RETURNING {ITEM_COLUMNS}
"""  # noqa: S608 - a constant column list, no input

Guard = Callable[[], AbstractAsyncContextManager[None]]


class SqliteOutbox:
    """OutboxStore on the store's connection, under the store's guard (lock, timeout, errors)."""

    def __init__(self, conn: aiosqlite.Connection, guard: Guard, wait_timeout_s: float) -> None:
        self._conn = conn
        self._guard = guard
        self._enqueuer: Combiner[NewItem, None] = Combiner(
            self._enqueue_batch,
            name="sqlite outbox",
            size=lambda _item: 1,
            max_size=ENQUEUE_MAX_ITEMS,
            wait_timeout_s=wait_timeout_s,
        )
        # Deliveries end in a delete each: combined too, so a busy outbox pays one commit
        # for every delivery settled meanwhile, not one per message.
        self._finisher: Combiner[tuple[str, str], bool] = Combiner(
            self._finish_batch,
            name="sqlite outbox finish",
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
        params: list[object] = []
        for i in batch:
            params.extend((i.id, i.route, i.tenant, i.request_id, i.method, i.target))
            params.extend((encode_headers(i.headers), i.body, i.conversation))
            params.extend((i.created_at, i.created_at, i.created_at))
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)"] * len(batch))
        sql = (
            "INSERT INTO outbox (id, route, tenant, request_id, method, target, headers, body, "  # noqa: S608 - only placeholders are interpolated
            f"conversation, state, attempts, created_at, age_from, next_at) VALUES {values}"
        )
        # One statement: atomic and committed by itself (autocommit), synchronous=FULL.
        async with self._guard():
            await self._conn.execute(sql, params)
        return [None] * len(batch)

    async def claim(
        self, routes: Sequence[str], owner: str, now: float, lease_s: float, limit: int
    ) -> list[OutboxItem]:
        async with self._guard():
            rows = await self._conn.execute_fetchall(
                _CLAIM, (owner, now + lease_s, now, now, json.dumps(list(routes)), limit)
            )
        return sorted((item_from_row(r) for r in rows), key=lambda item: item.seq)

    async def _change(self, sql: str, params: Sequence[object]) -> int:
        async with self._guard():
            cursor = await self._conn.execute(sql, params)
            return cursor.rowcount

    async def finish(self, item_id: str, owner: str) -> bool:
        return await self._finisher.submit((item_id, owner))

    async def _finish_batch(self, batch: Sequence[tuple[str, str]]) -> list[bool]:
        async with self._guard():
            rows = await self._conn.execute_fetchall(
                "DELETE FROM outbox WHERE (id, lease_owner) IN "
                "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
                "FROM json_each(?)) RETURNING id",
                (json.dumps([list(call) for call in batch]),),
            )
        gone = {r[0] for r in rows}
        return [item_id in gone for item_id, _owner in batch]

    async def reschedule(
        self, item_id: str, owner: str, next_at: float, status: int | None, error: str | None
    ) -> bool:
        return bool(
            await self._change(
                "UPDATE outbox SET next_at = ?, lease_owner = NULL, lease_until = NULL, "
                "last_status = ?, last_error = ? WHERE id = ? AND lease_owner = ?",
                (next_at, status, error, item_id, owner),
            )
        )

    async def bury(self, item_id: str, owner: str, status: int | None, error: str | None) -> bool:
        return bool(
            await self._change(
                "UPDATE outbox SET state = 'dead', lease_owner = NULL, lease_until = NULL, "
                "last_status = ?, last_error = ? WHERE id = ? AND lease_owner = ?",
                (status, error, item_id, owner),
            )
        )

    async def release(self, owner: str) -> int:
        return await self._change(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
            (owner,),
        )

    async def depth(self) -> list[RouteDepth]:
        async with self._guard():
            rows = await self._conn.execute_fetchall(
                "SELECT route, SUM(state = 'pending'), SUM(state = 'dead'), "
                "MIN(CASE WHEN state = 'pending' THEN age_from END) FROM outbox GROUP BY route"
            )
        return [
            RouteDepth(r[0], int(r[1]), int(r[2]), None if r[3] is None else float(r[3]))
            for r in rows
        ]

    async def items(self, state: OutboxState, route: str | None, limit: int) -> list[OutboxItem]:
        async with self._guard():
            rows = await self._conn.execute_fetchall(
                f"SELECT {ITEM_COLUMNS} FROM outbox WHERE state = ? "  # noqa: S608 - constant columns
                "AND (? IS NULL OR route = ?) ORDER BY seq LIMIT ?",
                (state, route, route, limit),
            )
        return [item_from_row(r) for r in rows]

    async def item(self, item_id: str) -> OutboxItem | None:
        async with self._guard():
            rows = list(
                await self._conn.execute_fetchall(
                    f"SELECT {ITEM_COLUMNS} FROM outbox WHERE id = ?",  # noqa: S608 - constant columns
                    (item_id,),
                )
            )
        return item_from_row(rows[0]) if rows else None

    async def revive(self, item_id: str | None, route: str | None, now: float) -> int:
        if item_id is not None:
            return await self._change(
                "UPDATE outbox SET state = 'pending', attempts = 0, age_from = ?, next_at = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (now, now, item_id),
            )
        return await self._change(
            "UPDATE outbox SET state = 'pending', attempts = 0, age_from = ?, next_at = ?, "
            "lease_owner = NULL, lease_until = NULL "
            "WHERE state = 'dead' AND (? IS NULL OR route = ?)",
            (now, now, route, route),
        )

    async def drop(self, item_id: str | None, route: str | None) -> int:
        if item_id is not None:
            return await self._change("DELETE FROM outbox WHERE id = ?", (item_id,))
        return await self._change(
            "DELETE FROM outbox WHERE state = 'dead' AND (? IS NULL OR route = ?)", (route, route)
        )
