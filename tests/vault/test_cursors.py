"""Backfill cursors in the vault's database (schema step 8), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.vault.conftest import Backend
from vault.cursors import MAX_CURSOR_CHARS, CursorFormatError
from vault.startup import open_store


async def test_a_cursor_is_saved_moved_kept_per_scope_and_cleared(backend: Backend) -> None:
    store = await open_store(backend.config, create=True)
    try:
        await store.migrate()
        assert await store.read_cursor("zendesk", "acme") is None
        await store.save_cursor("zendesk", "acme", "c2", 1)
        await store.save_cursor("zendesk", "acme", "c4", 2)
        await store.save_cursor("slack", "T1/C1", '{"latest": "1.2"}', 2)
        assert await store.read_cursor("zendesk", "acme") == "c4"
        assert await store.read_cursor("zendesk", "other") is None
        assert await store.read_cursor("slack", "T1/C1") == '{"latest": "1.2"}'
        assert await store.clear_cursor("zendesk", "acme") is True
        assert await store.clear_cursor("zendesk", "acme") is False
        assert await store.read_cursor("zendesk", "acme") is None
        assert await store.read_cursor("slack", "T1/C1") is not None
    finally:
        await store.close()
    # Another process (a new connection) sees what the first one saved.
    again = await open_store(backend.config)
    try:
        assert await again.read_cursor("slack", "T1/C1") == '{"latest": "1.2"}'
        rows = await backend.sql("SELECT source, scope FROM backfill_cursors")
        assert rows == [("slack", "T1/C1")]
    finally:
        await again.close()


@pytest.mark.parametrize(
    ("source", "scope", "cursor"),
    [
        ("Zendesk", "acme", "c"),  # a source kind is lowercase
        ("zendesk", "", "c"),
        ("zendesk", "has space", "c"),
        ("zendesk", "acme", ""),
        ("zendesk", "acme", "c" * (MAX_CURSOR_CHARS + 1)),
    ],
)
async def test_malformed_keys_and_cursors_are_refused(
    backend: Backend, source: str, scope: str, cursor: str
) -> None:
    store = await open_store(backend.config, create=True)
    try:
        await store.migrate()
        with pytest.raises(CursorFormatError):
            await store.save_cursor(source, scope, cursor, 1)
        assert await backend.sql("SELECT COUNT(*) FROM backfill_cursors") == [(0,)]
    finally:
        await store.close()


async def test_a_vault_from_before_the_cursors_is_told_to_migrate_then_gets_them(
    backend: Backend,
) -> None:
    from vault.errors import VaultSchemaError
    from vault.stores.base import SCHEMA_VERSION

    store = await open_store(backend.config, create=True)
    try:
        await store.migrate()
    finally:
        await store.close()
    # As a vault migrated up to the step before the cursors (7) looks.
    await backend.sql("DROP TABLE backfill_cursors")
    await backend.sql("UPDATE vault_schema SET version = 7")
    store = await open_store(backend.config)
    try:
        with pytest.raises(VaultSchemaError):
            await store.check_schema()
        assert await store.migrate() == SCHEMA_VERSION
        await store.check_schema()
        await store.save_cursor("zendesk", "acme", "c2", 1)
        assert await store.read_cursor("zendesk", "acme") == "c2"
    finally:
        await store.close()
