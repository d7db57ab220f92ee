"""Key ring: versioned key-encryption keys (KEKs), data-key wrapping, lookup subkeys.

Envelope encryption: values are sealed with per-tenant data keys (DEKs); DEKs are stored
wrapped by a KEK. Rotating a KEK therefore re-wraps a few DEKs, never re-encrypts values.
The lookup index has its own key, separate from the KEKs, with an HKDF subkey per tenant so
one tenant's index says nothing about another's.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vault.crypto import (
    KEY_BYTES,
    NONCE_BYTES,
    SealingKey,
    associated_data,
    check_value,
    derive_key,
)
from vault.errors import KeyVersionMissingError, VaultConfigError, VaultIntegrityError

KEY_FILE_FORMAT = "redactor-keys/1"


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """The contents of a key file: KEKs by version, the active version, the index key."""

    keks: Mapping[int, bytes] = field(repr=False)
    active_version: int
    index_key: bytes = field(repr=False)

    @property
    def versions(self) -> list[int]:
        """Configured KEK versions, oldest first."""
        return sorted(self.keks)


def _decode_key(text: object, name: str) -> bytes:
    if not isinstance(text, str):
        raise VaultConfigError(f"{name} must be a base64 string")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VaultConfigError(f"{name} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise VaultConfigError(f"{name} must decode to 32 bytes")
    return key


def parse_key_material(text: str) -> KeyMaterial:
    """Parse key-file JSON (the same text is accepted inline in REDACTOR_KEYS).

    Raises VaultConfigError naming the field that is wrong, never echoing key material.
    """
    try:
        doc = json.loads(text)
    except ValueError:
        raise VaultConfigError("key material is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
        raise VaultConfigError(f"key material must be a JSON object with format {KEY_FILE_FORMAT}")
    raw_keks = doc.get("keks")
    if not isinstance(raw_keks, dict) or not raw_keks:
        raise VaultConfigError("keks must be a non-empty object of version -> key")
    keks: dict[int, bytes] = {}
    for version_text, key_text in raw_keks.items():
        if not (
            isinstance(version_text, str) and version_text.isascii() and version_text.isdigit()
        ):
            raise VaultConfigError("kek versions must be positive integers")
        version = int(version_text)
        if version < 1:
            raise VaultConfigError("kek versions must be positive integers")
        keks[version] = _decode_key(key_text, f"keks.{version}")
    active = doc.get("active_version")
    if not isinstance(active, int) or isinstance(active, bool) or active not in keks:
        raise VaultConfigError("active_version must name a configured kek version")
    return KeyMaterial(keks, active, _decode_key(doc.get("index_key"), "index_key"))


def render_key_material(material: KeyMaterial) -> str:
    """Key-file JSON for `material` (the inverse of parse_key_material)."""
    doc = {
        "format": KEY_FILE_FORMAT,
        "active_version": material.active_version,
        "keks": {str(v): base64.b64encode(material.keks[v]).decode() for v in material.versions},
        "index_key": base64.b64encode(material.index_key).decode(),
    }
    return json.dumps(doc, indent=2) + "\n"


def generate_key_material(random_bytes: Callable[[int], bytes]) -> KeyMaterial:
    """Fresh key material with KEK version 1 active."""
    return KeyMaterial({1: random_bytes(KEY_BYTES)}, 1, random_bytes(KEY_BYTES))


def add_kek_version(material: KeyMaterial, random_bytes: Callable[[int], bytes]) -> KeyMaterial:
    """`material` plus a new KEK version, which becomes active; older ones stay for reading."""
    version = max(material.keks) + 1
    keks = {**material.keks, version: random_bytes(KEY_BYTES)}
    return KeyMaterial(keks, version, material.index_key)


def remove_kek_version(material: KeyMaterial, version: int) -> KeyMaterial:
    """`material` without `version`. Raises VaultConfigError if it is active or unknown."""
    if version == material.active_version:
        raise VaultConfigError("the active kek version cannot be removed")
    if version not in material.keks:
        raise VaultConfigError("no such kek version")
    keks = {v: k for v, k in material.keks.items() if v != version}
    return KeyMaterial(keks, material.active_version, material.index_key)


def read_key_file(path: Path) -> KeyMaterial:
    """Load a key file (blocking: call through asyncio.to_thread from async code).

    Raises VaultConfigError if it is missing, unreadable or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VaultConfigError(f"key file {path} does not exist") from None
    except PermissionError:
        raise VaultConfigError(f"key file {path} cannot be read: permission denied") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VaultConfigError(f"key file {path} cannot be read: {type(exc).__name__}") from None
    return parse_key_material(text)


def write_key_file(path: Path, material: KeyMaterial) -> None:
    """Atomically replace `path` with `material`, readable by the owner only (blocking).

    Written to a temporary file in the same directory, fsynced, then renamed, so a crash
    leaves the old file or the new one, never half a key ring.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".keys-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(render_key_material(material))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, path)
    finally:
        # After a successful replace the temporary name is gone; this only cleans up failures.
        Path(tmp_name).unlink(missing_ok=True)


class KekProvider(Protocol):
    """Wraps and unwraps data keys with versioned KEKs; a cloud KMS can implement this later."""

    @property
    def active_version(self) -> int:
        """The KEK version new data keys are wrapped with."""
        ...

    def has_version(self, version: int) -> bool:
        """Whether `version` can unwrap."""
        ...

    @property
    def check_values(self) -> Mapping[int, bytes]:
        """The key check value of every configured version (see `crypto.check_value`)."""
        ...

    async def wrap(self, version: int, dek: bytes, associated: bytes, nonce: bytes) -> bytes:
        """Wrap `dek` with KEK `version`. Raises KeyVersionMissingError if not configured."""
        ...

    async def unwrap(self, version: int, wrapped: bytes, associated: bytes) -> bytes:
        """Unwrap with KEK `version`.

        Raises KeyVersionMissingError if the version is not configured, VaultIntegrityError
        if the wrapped key does not verify.
        """
        ...


class LocalKekProvider:
    """KEKs from a key file or REDACTOR_KEYS, held in process memory."""

    __slots__ = ("_active", "_checks", "_keys")

    def __init__(self, material: KeyMaterial) -> None:
        self._keys = {v: SealingKey(k) for v, k in material.keks.items()}
        self._active = material.active_version
        self._checks = {v: check_value(k, "kek") for v, k in material.keks.items()}

    def __repr__(self) -> str:
        return f"LocalKekProvider(versions={sorted(self._keys)}, active={self._active})"

    @property
    def check_values(self) -> Mapping[int, bytes]:
        """The key check value of every configured version."""
        return self._checks

    @property
    def active_version(self) -> int:
        """The KEK version new data keys are wrapped with."""
        return self._active

    def has_version(self, version: int) -> bool:
        """Whether `version` is configured."""
        return version in self._keys

    async def wrap(self, version: int, dek: bytes, associated: bytes, nonce: bytes) -> bytes:
        """Wrap `dek` with KEK `version`. Raises KeyVersionMissingError if not configured."""
        key = self._keys.get(version)
        if key is None:
            raise KeyVersionMissingError(token=None, key_version=version)
        return key.seal(dek, associated, nonce)

    async def unwrap(self, version: int, wrapped: bytes, associated: bytes) -> bytes:
        """Unwrap with KEK `version`. Raises KeyVersionMissingError, VaultIntegrityError."""
        key = self._keys.get(version)
        if key is None:
            raise KeyVersionMissingError(token=None, key_version=version)
        try:
            return key.unseal(wrapped, associated)
        except VaultIntegrityError:
            raise VaultIntegrityError(token=None, key_version=version) from None


def dek_associated_data(tenant: str, dek_id: str, kek_version: int) -> bytes:
    """What a wrapped data key is bound to: a wrapped DEK copied to another tenant fails."""
    return associated_data("dek", tenant, dek_id, kek_version)


def value_associated_data(tenant: str, token: str, entity_type: str, dek_id: str) -> bytes:
    """What a sealed value is bound to: a row copied or swapped in the store fails to open.

    The data key id is the key version that stays fixed across re-wrapping, which is why
    the KEK version is not part of it (re-wrap must not re-encrypt values).
    """
    return associated_data("value", tenant, token, entity_type, dek_id)


class LookupKeys:
    """Per-tenant HMAC subkeys of the index key, derived once per tenant and kept."""

    __slots__ = ("_cache", "_index_key", "check_value")

    def __init__(self, index_key: bytes) -> None:
        self._index_key = index_key
        self._cache: dict[str, bytes] = {}
        # Recorded in the vault: an index key that differs would split every dedup.
        self.check_value = check_value(index_key, "index")

    def __repr__(self) -> str:
        return "LookupKeys(<secret>)"

    def for_tenant(self, tenant: str) -> bytes:
        """The lookup subkey of `tenant` (HKDF with the tenant in `info`)."""
        key = self._cache.get(tenant)
        if key is None:
            key = derive_key(self._index_key, "redactor-vault/1/lookup/" + tenant)
            self._cache[tenant] = key
        return key


def new_nonce() -> bytes:
    """12 random bytes from the OS CSPRNG for one AES-GCM encryption."""
    return os.urandom(NONCE_BYTES)
