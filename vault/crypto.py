"""AES-256-GCM seal/unseal with associated data, HKDF and HMAC lookups.

The only module that imports AESGCM. Nothing here is hand-rolled: AEAD and HKDF come from
`cryptography`, HMAC from the standard library. Pure functions: nonces and keys are passed in.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import VaultIntegrityError

KEY_BYTES = 32
# 96-bit random nonces: NIST SP 800-38D caps one key at 2**32 random-nonce messages, which is
# why data keys are per tenant and per key version rather than global.
NONCE_BYTES = 12
_AD_PREFIX = b"redactor-vault/1"


class SealingKey:
    """One AES-256-GCM key, built once and reused (building AESGCM per call costs more)."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        """Raises ValueError if `key` is not 32 bytes (checked at start, never per request)."""
        if len(key) != KEY_BYTES:
            raise ValueError("AES-256 key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SealingKey(<secret>)"

    def seal(self, plaintext: bytes, associated_data: bytes, nonce: bytes) -> bytes:
        """`nonce || ciphertext || tag`; `nonce` must be 12 fresh random bytes."""
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def unseal(self, sealed: bytes, associated_data: bytes) -> bytes:
        """Plaintext of `sealed` if it was sealed with this key and exactly this data.

        Raises VaultIntegrityError (without context; callers add token and key version) for a
        wrong key, wrong associated data or any corruption. One error for all on purpose.
        """
        if len(sealed) < NONCE_BYTES + 16:
            raise VaultIntegrityError(token=None, key_version=None)
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise VaultIntegrityError(token=None, key_version=None) from None


def associated_data(purpose: str, *fields: str | int) -> bytes:
    """Unambiguous encoding of the fields a ciphertext is bound to.

    Each field is length-prefixed so ("ab", "c") and ("a", "bc") never encode alike; the
    purpose keeps a wrapped data key from ever verifying as a value and vice versa.
    """
    parts = [_AD_PREFIX, purpose.encode()]
    parts.extend(str(field).encode() for field in fields)
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def derive_key(master: bytes, info: str) -> bytes:
    """A 32-byte subkey of `master` for one purpose (HKDF-SHA256, RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info.encode()).derive(
        master
    )


_CHECK_MESSAGE = b"redactor-vault/1 key check value"


def check_value(key: bytes, purpose: str) -> bytes:
    """A key check value: HMAC-SHA256 of a fixed string under an HKDF subkey of `key`.

    Two equal values mean the same key; the value helps no one find the key (a 256-bit
    random key is not brute-forced through a MAC of its HKDF output), and the subkey is never
    used for anything else. Used to bind a key ring to the vault that it encrypted.
    """
    subkey = derive_key(key, "redactor-vault/1/check/" + purpose)
    return hmac.new(subkey, _CHECK_MESSAGE, hashlib.sha256).digest()


def lookup_digest(subkey: bytes, entity_type: str, normalised: str) -> bytes:
    """Keyed HMAC-SHA256 of a normalised value: the vault's lookup index, never a bare hash.

    A bare hash of a 9-digit SSN is reversed by enumerating 10**9 candidates; a keyed MAC is
    not without the key.
    """
    message = entity_type.encode() + b"\x00" + normalised.encode()
    # hmac.digest: OpenSSL's one-shot HMAC, half the cost of an hmac.HMAC object per value.
    return hmac.digest(subkey, message, "sha256")
