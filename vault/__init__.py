"""The vault: tokens for card numbers and SSNs, values sealed under per-tenant data keys.

Public surface: build a `VaultConfig` (`VaultConfig.from_environ`), `await open_vault(config)`,
then `tokenize_many` / `resolve_many`; `check_ready` for /readyz; `close` at shutdown.
"""

from vault.config import Secret, VaultConfig
from vault.errors import (
    KeyRetireError,
    KeyVersionMissingError,
    TenantFormatError,
    TokenFormatError,
    ValueFormatError,
    VaultConfigError,
    VaultError,
    VaultIntegrityError,
    VaultSchemaError,
    VaultUnavailableError,
)
from vault.keyring import KekProvider, LocalKekProvider
from vault.service import Erased, NotFound, Resolution, Resolved, Vault
from vault.startup import open_vault
from vault.stores.base import TokenStore
from vault.tokens import (
    TOKEN_PATTERN,
    EntityType,
    ParsedToken,
    Token,
    find_tokens,
    format_token,
    parse_token,
)

__all__ = [
    "TOKEN_PATTERN",
    "EntityType",
    "Erased",
    "KekProvider",
    "KeyRetireError",
    "KeyVersionMissingError",
    "LocalKekProvider",
    "NotFound",
    "ParsedToken",
    "Resolution",
    "Resolved",
    "Secret",
    "TenantFormatError",
    "Token",
    "TokenFormatError",
    "TokenStore",
    "ValueFormatError",
    "Vault",
    "VaultConfig",
    "VaultConfigError",
    "VaultError",
    "VaultIntegrityError",
    "VaultSchemaError",
    "VaultUnavailableError",
    "find_tokens",
    "format_token",
    "open_vault",
    "parse_token",
]
