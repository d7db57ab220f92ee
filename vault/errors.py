"""Vault errors: each has an HTTP `status`, a stable `code` and a fixed message.

Like `redactor.errors`, messages are fixed strings. The only context an error may carry is
value-free by construction: a token (it replaces the value in the message and holds nothing
policy does not allow), a key version number, a setting name.
"""

from __future__ import annotations


class VaultError(Exception):
    """Base of every error the vault raises on purpose."""

    status: int = 500
    code: str = "vault_error"
    message: str = "vault error"

    def __init__(self, detail: str | None = None) -> None:
        # `detail` is chosen by our code (a setting name, a version), never caller input.
        self.detail = detail
        super().__init__(self.message if detail is None else f"{self.message}: {detail}")


class VaultConfigError(VaultError):
    """Key material, key file, URL or a timeout is invalid or missing; raised at start."""

    code = "vault_config_invalid"
    message = "vault configuration is invalid"


class VaultUnavailableError(VaultError):
    """The store is down, locked too long or timed out; callers fail closed (503)."""

    status = 503
    code = "vault_unavailable"
    message = "vault is unavailable"


class VaultSchemaError(VaultError):
    """The store's schema is missing or newer than this code; run `redactor vault migrate`."""

    status = 503
    code = "vault_schema_mismatch"
    message = "vault schema version does not match"


class VaultMissingError(VaultError):
    """No vault where the configuration points: it was deleted, or never created.

    Outside development mode a vault is only ever created on purpose (`redactor vault init`
    or `serve --create-vault`): a silently created empty vault makes every token unreadable.
    """

    status = 503
    code = "vault_missing"
    message = "vault does not exist"


class VaultGoneError(VaultUnavailableError):
    """The SQLite file this process opened was deleted or replaced while it served."""

    code = "vault_gone"
    message = "vault file was removed or replaced while serving"


class KeyRingMismatchError(VaultError):
    """The configured key ring does not match the keys the vault records.

    The detail names key versions only, never key material or check values.
    """

    status = 503
    code = "key_ring_mismatch"
    message = "key ring does not match the vault"


class KeyRingStaleError(VaultError):
    """The vault's active KEK is not in this process's key ring: it must not wrap new keys."""

    status = 503
    code = "key_ring_stale"
    message = "the vault's active key version is not in this process's key ring"


class VaultBehindError(VaultError):
    """The vault is behind the high-water mark recorded outside it: it was restored from an
    older copy (a backup, a snapshot, a point-in-time recovery), possibly across a rotation.

    Tokens minted after that copy was made are gone from it. The detail names both marks
    (counters only) and the runbook step; never the interrupted-rotation message.
    """

    status = 503
    code = "vault_behind"
    message = "the vault is older than its high-water mark (restored from an older copy?)"


class KeyCommandBusyError(VaultError):
    """Another `keys rotate` or `keys retire` holds the key file's or the vault's key lock."""

    status = 503
    code = "key_command_busy"
    message = "another key command is running against this key file or vault"


class KeyStateChangedError(VaultError):
    """The vault's key state changed between this command's read and its write (another key
    command ran meanwhile, from elsewhere); nothing was changed by this one."""

    status = 503
    code = "key_state_changed"
    message = "the vault's key state changed while this command ran; nothing was changed"


class TokenFormatError(VaultError):
    """A string is not a well-formed token (the caller's fault)."""

    status = 400
    code = "token_invalid"
    message = "not a valid token"


class ValueFormatError(VaultError):
    """A value given to tokenize is not a card number or SSN shape (a detector bug: fail closed)."""

    status = 422
    code = "value_invalid"
    message = "value does not have the shape of its entity type"


class TenantFormatError(VaultError):
    """A tenant id is empty, too long or has characters outside [A-Za-z0-9._-]."""

    status = 400
    code = "tenant_invalid"
    message = "tenant id is invalid"


class VaultIntegrityError(VaultError):
    """A stored value or data key failed to decrypt: wrong key, swapped row or corruption.

    One opaque error on purpose (it does not say which check failed); it names only the token
    and the key version so an operator can find the row and the key.
    """

    code = "vault_integrity"
    message = "stored value failed its integrity check"

    def __init__(self, *, token: str | None, key_version: int | None) -> None:
        self.token = token
        self.key_version = key_version
        super().__init__(f"token={token} key_version={key_version}")


class KeyVersionMissingError(VaultIntegrityError):
    """A data key is wrapped by a key version that is not in the configured key ring."""

    code = "vault_key_missing"
    message = "key version needed to decrypt is not configured"


class KeyRetireError(VaultError):
    """A key version cannot be retired: it is active or data keys still need it."""

    code = "key_in_use"
    message = "key version is still needed"


__all__ = [
    "KeyCommandBusyError",
    "KeyRetireError",
    "KeyRingMismatchError",
    "KeyRingStaleError",
    "KeyStateChangedError",
    "KeyVersionMissingError",
    "TenantFormatError",
    "TokenFormatError",
    "ValueFormatError",
    "VaultBehindError",
    "VaultConfigError",
    "VaultError",
    "VaultGoneError",
    "VaultIntegrityError",
    "VaultMissingError",
    "VaultSchemaError",
    "VaultUnavailableError",
]
