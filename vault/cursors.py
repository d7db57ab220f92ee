"""Backfill cursors: where a walk of a helpdesk or chat API stopped (schema step 8).

`redactor backfill zendesk|slack` pages through an API and, after each page it finished,
records how far it got, so a killed or failed run continues there. The cursor lives in the
vault's database beside the tokens it led to: a restored vault and its cursors agree, and
every process that can reach the vault (SQLite file or PostgreSQL) sees the same cursor.

A cursor is keyed by the source kind (`zendesk`, `slack`) and a scope within it (a Zendesk
subdomain, a Slack workspace and channel). It is opaque text the API or the backfill made
(an export cursor, a message timestamp): never a value. The store methods are thin; the SQL
is here so the feature stays one module.
"""

from __future__ import annotations

import re
from typing import Any

from vault.errors import VaultError

__all__ = [
    "MAX_CURSOR_CHARS",
    "POSTGRES_STEP",
    "SQLITE_STEP",
    "CursorFormatError",
    "check_cursor",
    "check_key",
    "postgres_clear",
    "postgres_read",
    "postgres_save",
    "sqlite_clear",
    "sqlite_read",
    "sqlite_save",
]

MAX_CURSOR_CHARS = 8192
# A source kind is a lowercase word; a scope is an account, subdomain or channel id (with `/`
# between parts): printable ASCII without spaces, so it can be shown and logged as it is.
_SOURCE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SCOPE = re.compile(r"[\x21-\x7e]{1,200}")

SQLITE_STEP: tuple[str, ...] = (
    """CREATE TABLE backfill_cursors (
        source TEXT NOT NULL,
        scope TEXT NOT NULL,
        cursor TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (source, scope)
    )""",
)

POSTGRES_STEP: tuple[str, ...] = (
    """CREATE TABLE backfill_cursors (
        source text NOT NULL,
        scope text NOT NULL,
        cursor text NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (source, scope)
    )""",
)


class CursorFormatError(VaultError):
    """A cursor key or cursor our own code built is malformed (a bug, not input)."""

    status = 500
    code = "cursor_invalid"


def check_key(source: str, scope: str) -> None:
    """Raises CursorFormatError unless `source` and `scope` have the documented shapes."""
    if not _SOURCE.fullmatch(source) or not _SCOPE.fullmatch(scope):
        raise CursorFormatError("a backfill cursor key is malformed")


def check_cursor(cursor: str) -> None:
    """Raises CursorFormatError for an empty or oversized cursor."""
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise CursorFormatError("a backfill cursor is empty or too long")


async def sqlite_read(conn: Any, source: str, scope: str) -> str | None:
    rows = list(
        await conn.execute_fetchall(
            "SELECT cursor FROM backfill_cursors WHERE source = ? AND scope = ?", (source, scope)
        )
    )
    return str(rows[0][0]) if rows else None


async def sqlite_save(conn: Any, source: str, scope: str, cursor: str, now: int) -> None:
    await conn.execute(
        "INSERT INTO backfill_cursors (source, scope, cursor, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (source, scope) DO UPDATE SET cursor = excluded.cursor, "
        "updated_at = excluded.updated_at",
        (source, scope, cursor, now),
    )


async def sqlite_clear(conn: Any, source: str, scope: str) -> bool:
    rows = list(
        await conn.execute_fetchall(
            "DELETE FROM backfill_cursors WHERE source = ? AND scope = ? RETURNING 1",
            (source, scope),
        )
    )
    return bool(rows)


async def postgres_read(conn: Any, source: str, scope: str) -> str | None:
    value = await conn.fetchval(
        "SELECT cursor FROM backfill_cursors WHERE source = $1 AND scope = $2", source, scope
    )
    return None if value is None else str(value)


async def postgres_save(conn: Any, source: str, scope: str, cursor: str, now: int) -> None:
    await conn.execute(
        "INSERT INTO backfill_cursors (source, scope, cursor, updated_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (source, scope) DO UPDATE SET cursor = EXCLUDED.cursor, "
        "updated_at = EXCLUDED.updated_at",
        source,
        scope,
        cursor,
        now,
    )


async def postgres_clear(conn: Any, source: str, scope: str) -> bool:
    value = await conn.fetchval(
        "DELETE FROM backfill_cursors WHERE source = $1 AND scope = $2 RETURNING 1", source, scope
    )
    return value is not None
