"""Opening the vault: key sources, development mode, unavailable stores, readiness."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.vault.conftest import SSN, Backend
from vault.config import VaultConfig
from vault.errors import VaultConfigError, VaultSchemaError, VaultUnavailableError
from vault.keyring import generate_key_material, render_key_material
from vault.service import Resolved
from vault.startup import open_store, open_vault


async def test_without_a_key_the_vault_refuses_to_start(tmp_path: Path) -> None:
    config = VaultConfig.from_environ({"REDACTOR_DATA_DIR": str(tmp_path)})
    with pytest.raises(VaultConfigError) as info:
        await open_vault(config)
    assert "REDACTOR_KEY_FILE" in str(info.value)
    assert not (tmp_path / "dev-keys.json").exists()


async def test_dev_mode_generates_a_key_loudly_once_and_reuses_it(tmp_path: Path) -> None:
    config = VaultConfig.from_environ({"REDACTOR_DATA_DIR": str(tmp_path), "REDACTOR_DEV": "1"})
    with capture_logs() as events:
        async with await open_vault(config) as vault:
            (token,) = await vault.tokenize_many("acme", [("ssn", SSN)])
    assert next(e for e in events if e["event"] == "dev_key_generated")["log_level"] == "warning"
    assert (tmp_path / "dev-keys.json").exists()
    with capture_logs() as events:
        async with await open_vault(config) as vault:
            result = (await vault.resolve_many("acme", [token.text]))[token.text]
    assert isinstance(result, Resolved)
    assert "dev_key_generated" not in [e["event"] for e in events]


async def test_inline_keys_are_accepted(tmp_path: Path) -> None:
    material = render_key_material(generate_key_material(secrets.token_bytes))
    config = VaultConfig.from_environ(
        {"REDACTOR_DATA_DIR": str(tmp_path), "REDACTOR_KEYS": material}, create=True
    )
    async with await open_vault(config) as vault:
        await vault.check_ready()


@pytest.mark.postgres
async def test_postgres_that_is_down_is_unavailable(tmp_path: Path) -> None:
    material = render_key_material(generate_key_material(secrets.token_bytes))
    config = VaultConfig.from_environ(
        {"REDACTOR_KEYS": material},
        vault_url="postgresql://postgres@127.0.0.1:1/test",
        acquire_timeout_s=1.0,
    )
    with pytest.raises(VaultUnavailableError) as info:
        await open_vault(config)
    assert info.value.status == 503
    assert info.value.code == "vault_unavailable"


async def test_closed_store_is_unavailable(backend: Backend) -> None:
    vault = await open_vault(backend.config)
    await vault.close()
    with pytest.raises(VaultUnavailableError):
        await vault.tokenize_many("acme", [("ssn", SSN)])
    with pytest.raises(VaultUnavailableError):
        await vault.check_ready()


async def test_sqlite_locked_too_long_is_unavailable(tmp_path: Path) -> None:
    material = render_key_material(generate_key_material(secrets.token_bytes))
    config = VaultConfig.from_environ(
        {"REDACTOR_DATA_DIR": str(tmp_path), "REDACTOR_KEYS": material},
        statement_timeout_s=0.2,
        create=True,
    )
    async with await open_vault(config) as vault:
        await vault.tokenize_many("acme", [("ssn", SSN)])
        # Another process holds the write lock and does not let go.
        blocker = await asyncio.to_thread(
            sqlite3.connect, config.sqlite_path, isolation_level=None, check_same_thread=False
        )
        try:
            await asyncio.to_thread(blocker.execute, "BEGIN EXCLUSIVE")
            with pytest.raises(VaultUnavailableError):
                await vault.tokenize_many("acme", [("card", "4111111111111111")])
        finally:
            await asyncio.to_thread(blocker.close)


async def test_unmigrated_store_is_not_ready(backend: Backend) -> None:
    with pytest.raises(VaultSchemaError):
        await open_vault(backend.config, migrate=False)
    store = await open_store(backend.config)
    try:
        with pytest.raises(VaultSchemaError):
            await store.check_schema()
        await store.migrate()
        await store.check_schema()
    finally:
        await store.close()
