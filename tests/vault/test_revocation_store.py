"""The revocation list as both stores keep it: one entry per (kind, tenant, value), a version
counter that moves with every change (and only then), expired entries left out and purged."""

from __future__ import annotations

from vault.revocations import Revocation
from vault.startup import open_store
from vault.stores.base import SCHEMA_VERSION


def _entry(value: str, expires_at: int, kind: str = "jti", tenant: str = "") -> Revocation:
    return Revocation(kind, tenant, value, expires_at, "op@host", 100, "why")  # type: ignore[arg-type]


async def test_entries_are_added_replaced_read_and_removed_with_the_counter(backend) -> None:
    store = await open_store(backend.config, create=True)
    try:
        assert await store.migrate() == SCHEMA_VERSION
        start = await store.revocation_version()
        assert await store.add_revocation(_entry("j1", 1000)) is True
        assert await store.add_revocation(_entry("s1", 1000, "subject", "acme")) is True
        # Same key: replaced, not added.
        assert await store.add_revocation(_entry("j1", 2000)) is False
        assert await store.revocation_version() == start + 3
        live = await store.read_revocations(1500)
        assert [(e.kind, e.tenant, e.value, e.expires_at) for e in live] == [
            ("jti", "", "j1", 2000)
        ]
        assert {e.value for e in await store.read_revocations(None)} == {"j1", "s1"}
        assert live[0].operator == "op@host"
        assert live[0].reason == "why"

        # Purging expired entries changes nothing a reader sees: no version bump.
        assert await store.purge_revocations(1000) == 1
        assert await store.revocation_version() == start + 3
        assert await store.remove_revocation("jti", "", "nope") is False
        assert await store.revocation_version() == start + 3
        assert await store.remove_revocation("jti", "", "j1") is True
        assert await store.revocation_version() == start + 4
        assert await store.read_revocations(None) == []
    finally:
        await store.close()
