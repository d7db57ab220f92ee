"""Vault fixtures: one `backend` parameter over real SQLite (tmp_path) and real PostgreSQL.

PostgreSQL tests use a fresh schema with a random name per test, dropped afterwards, so
parallel runs (`pytest -n 2`) never share tables. They fail, never skip, when the server at
127.0.0.1:5432 is down.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from vault.config import VaultConfig
from vault.keyring import (
    KeyMaterial,
    LocalKekProvider,
    LookupKeys,
    generate_key_material,
    write_key_file,
)
from vault.service import Vault
from vault.startup import open_store

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"

# Test values: Luhn-valid test PANs and valid-shaped SSNs, distinctive enough to search bytes.
CARD = "4111 1111 1111 1111"
CARD_DIGITS = "4111111111111111"
CARD_2 = "5555-5555-5555-4444"
CARD_2_DIGITS = "5555555555554444"
SSN = "219-09-9999"
SSN_DIGITS = "219099999"


class FakeClock:
    """A settable clock for retention tests (the vault takes `clock` as a parameter)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """One configured store: its config, key file and a raw-SQL helper for tamper tests."""

    name: str
    config: VaultConfig
    key_file: Path
    schema: str | None

    async def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run raw SQL against the store, bypassing the vault (to tamper or inspect)."""
        if self.name == "sqlite":
            import aiosqlite

            async with aiosqlite.connect(self.config.sqlite_path, isolation_level=None) as db:
                rows = await db.execute_fetchall(statement.replace("$", "?"), params)
                return [tuple(r) for r in rows]
        conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": self.schema or ""})
        try:
            return [tuple(r) for r in await conn.fetch(statement, *params)]
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """A fresh, empty store of each kind with its own key file."""
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, generate_key_material(secrets.token_bytes))
    if request.param == "sqlite":
        config = VaultConfig.from_environ(
            {},
            data_dir=tmp_path,
            vault_url=f"sqlite:///{tmp_path / 'vault.db'}",
            key_file=key_file,
            create=True,
        )
        yield Backend("sqlite", config, key_file, None)
        return
    schema = "vault_test_" + secrets.token_hex(6)
    config = VaultConfig.from_environ(
        {}, data_dir=tmp_path, vault_url=f"{PG_DSN}?schema={schema}", key_file=key_file, create=True
    )
    try:
        yield Backend("postgres", config, key_file, schema)
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_vault(backend: Backend, clock: FakeClock) -> AsyncIterator[Callable[..., Any]]:
    """Factory: a migrated Vault on the backend, optionally with other key material.

    The first one records the backend's key ring in the vault (as `vault init` does); later
    ones, possibly with other material, are not checked against it (a process that is).
    """
    from vault.keyring import read_key_file

    opened: list[Vault] = []

    async def make(material: KeyMaterial | None = None, **kwargs: Any) -> Vault:
        first = not opened
        material = material or read_key_file(backend.key_file)
        store = await open_store(backend.config, create=True)
        await store.migrate()
        vault = Vault(
            store,
            LocalKekProvider(material),
            LookupKeys(material.index_key),
            clock=kwargs.pop("clock", clock),
            **kwargs,
        )
        opened.append(vault)
        if first:
            await vault.bind_keys()
        return vault

    try:
        yield make
    finally:
        for vault in opened:
            await vault.close()


@pytest.fixture
async def vault(make_vault: Callable[..., Any]) -> Vault:
    result: Vault = await make_vault()
    return result


async def record_rotation(vault: Vault, material: KeyMaterial) -> None:
    """Record `material`'s active version as the vault's active one (what `keys rotate` does)."""
    from vault.crypto import check_value
    from vault.stores.base import KekRecord

    version = material.active_version
    record = KekRecord(version, "active", check_value(material.keks[version], "kek"), 1)
    await vault.store.record_rotation(record, 1)
