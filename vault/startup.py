"""Start-up: load key material, open the configured store, build the Vault.

The only vault module that decides between development and production key handling.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import structlog

from vault.config import VaultConfig
from vault.errors import VaultConfigError
from vault.keyring import (
    KeyMaterial,
    LocalKekProvider,
    LookupKeys,
    generate_key_material,
    parse_key_material,
    read_key_file,
    write_key_file,
)
from vault.service import Vault
from vault.stores.base import TokenStore
from vault.stores.postgres import PostgresStore
from vault.stores.sqlite import SqliteStore

log = structlog.get_logger("vault")


async def load_key_material(config: VaultConfig) -> KeyMaterial:
    """Key material from REDACTOR_KEYS, the key file, or (dev mode only) a generated key.

    Raises VaultConfigError if no key is configured outside development mode, or the key
    material is invalid.
    """
    if config.inline_keys is not None:
        return parse_key_material(config.inline_keys.reveal())
    if config.key_file is not None:
        return await asyncio.to_thread(read_key_file, config.key_file)
    if not config.dev:
        raise VaultConfigError(
            "no key configured: set REDACTOR_KEY_FILE or REDACTOR_KEYS "
            "(or pass --dev to generate a development key)"
        )
    path = config.dev_key_file
    if await asyncio.to_thread(path.exists):
        log.warning("dev_key_loaded", path=str(path))
        return await asyncio.to_thread(read_key_file, path)
    material = generate_key_material(secrets.token_bytes)
    await asyncio.to_thread(write_key_file, path, material)
    # Loud on purpose: a generated key next to the data protects nothing in production.
    log.warning(
        "dev_key_generated",
        path=str(path),
        note="development mode: the key lives next to the data; never use in production",
    )
    return material


def writable_key_file(config: VaultConfig) -> Path:
    """The key file that `keys rotate` and `keys retire` rewrite.

    Raises VaultConfigError if keys come inline from REDACTOR_KEYS (nothing to rewrite:
    rotate the secret where it is stored) or no key is configured at all.
    """
    if config.inline_keys is not None:
        raise VaultConfigError("keys come from REDACTOR_KEYS; rotation needs REDACTOR_KEY_FILE")
    if config.key_file is not None:
        return config.key_file
    if config.dev:
        return config.dev_key_file
    raise VaultConfigError("no key configured: set REDACTOR_KEY_FILE")


async def open_store(config: VaultConfig) -> TokenStore:
    """Open the store named by the vault URL. Raises VaultUnavailableError."""
    if config.backend == "sqlite":
        return await SqliteStore.open(
            config.sqlite_path, statement_timeout_s=config.statement_timeout_s
        )
    return await PostgresStore.open(
        config.vault_url.reveal(),
        schema=config.pg_schema,
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        acquire_timeout_s=config.acquire_timeout_s,
        statement_timeout_s=config.statement_timeout_s,
    )


async def open_vault(config: VaultConfig, *, migrate: bool = True) -> Vault:
    """Load keys, open the store, migrate (or check) the schema, and return the Vault.

    Call once at start; `await vault.close()` at shutdown (or `async with`). Raises
    VaultConfigError (no or bad key), VaultUnavailableError (store down), VaultSchemaError.
    """
    material = await load_key_material(config)
    store = await open_store(config)
    opened = False
    try:
        if migrate:
            await store.migrate()
        else:
            await store.check_schema()
        opened = True
    finally:
        if not opened:
            await store.close()
    log.info(
        "vault_opened",
        backend=config.backend,
        kek_version=material.active_version,
        dev=config.dev,
    )
    return Vault(
        store,
        LocalKekProvider(material),
        LookupKeys(material.index_key),
        card_last4=config.card_last4,
    )
