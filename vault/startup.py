"""Start-up: load key material, open the configured store, build the Vault.

The only vault module that decides between development and production key handling.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from vault.config import VaultConfig
from vault.errors import VaultConfigError, VaultMissingError
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


def may_create(config: VaultConfig) -> bool:
    """Whether a missing vault may be created: development mode or an explicit request."""
    return config.dev or config.create


async def open_store(config: VaultConfig, *, create: bool = False) -> TokenStore:
    """Open the store named by the vault URL; the SQLite file is created only if `create`.

    Raises VaultUnavailableError, VaultMissingError (SQLite file missing, not `create`).
    """
    if config.backend == "sqlite":
        try:
            return await SqliteStore.open(
                config.sqlite_path, statement_timeout_s=config.statement_timeout_s, create=create
            )
        except VaultMissingError:
            raise VaultMissingError(_missing_message(config)) from None
    return await PostgresStore.open(
        config.vault_url.reveal(),
        schema=config.pg_schema,
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        acquire_timeout_s=config.acquire_timeout_s,
        statement_timeout_s=config.statement_timeout_s,
    )


def _missing_message(config: VaultConfig) -> str:
    where = "sqlite file" if config.backend == "sqlite" else f"schema {config.pg_schema}"
    return (
        f"no vault at the configured {where}; create it with `redactor vault init` "
        "(or start once with --create-vault), or point REDACTOR_VAULT_URL at the existing one"
    )


async def open_vault(
    config: VaultConfig,
    *,
    migrate: bool = True,
    create: bool | None = None,
    bind: bool = True,
    watch: bool = False,
    check_mark: bool = True,
) -> Vault:
    """Load keys, open the store, migrate (or check) the schema, bind the key ring.

    A missing vault is created only when `create` (default: development mode or
    `config.create`). With `watch` the vault follows key rotations and checks in (serving
    processes); without `bind` the caller checks the key ring itself. With `check_mark` (the
    default) a vault behind its high-water mark is refused before anything else is checked:
    a restored copy never gets the interrupted-rotation answer. Call once at start;
    `await vault.close()` at shutdown (or `async with`).
    Raises VaultConfigError (no or bad key, unreadable mark file), VaultMissingError,
    VaultUnavailableError (store down), VaultSchemaError, VaultBehindError (restored from an
    older copy), KeyRingMismatchError (the ring does not fit the vault).
    """
    material = await load_key_material(config)
    creating = may_create(config) if create is None else create
    store = await open_store(config, create=creating)
    opened = False
    try:
        if not creating and not await store.exists():
            raise VaultMissingError(_missing_message(config))
        if migrate:
            await store.migrate()
        else:
            await store.check_schema()
        vault = Vault(
            store,
            LocalKekProvider(material),
            LookupKeys(material.index_key),
            card_last4=config.card_last4,
            key_source=_key_source(config),
            key_check_interval_s=config.key_check_interval_s,
            mark_file=config.vault_mark_file,
        )
        if check_mark:
            await vault.check_mark()
        if bind:
            await vault.bind_keys()
        if watch:
            # A mark file that cannot be written would leave restores undetected: a serving
            # process finds out now, not silently later.
            if check_mark:
                await vault.record_mark()
            vault.start_key_watch()
        opened = True
    finally:
        # Closed on every way out but success, cancellation included.
        if not opened:
            await store.close()
    log.info(
        "vault_opened",
        backend=config.backend,
        kek_version=material.active_version,
        dev=config.dev,
    )
    return vault


def _key_source(config: VaultConfig) -> Callable[[], Awaitable[KeyMaterial]] | None:
    """How a serving process re-reads its key ring after a rotation: the key file again.

    Inline keys (REDACTOR_KEYS) cannot change under a running process: it then stops
    wrapping new data keys after a rotation until it is restarted with the new ring.
    """
    if config.inline_keys is not None:
        return None

    async def reload() -> KeyMaterial:
        return await load_key_material(config)

    return reload
