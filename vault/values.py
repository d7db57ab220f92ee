"""Normalising raw values and checking tenant ids; pure functions only."""

from __future__ import annotations

import re
import unicodedata

from vault.errors import TenantFormatError, ValueFormatError
from vault.tokens import EntityType

# ISO/IEC 7812 PANs are 12 to 19 digits; an SSN is 9.
_LENGTHS = {EntityType.CARD: range(12, 20), EntityType.SSN: range(9, 10)}
_ASCII_SEPARATORS = str.maketrans("", "", " .-\t")
_TENANT = re.compile(r"[A-Za-z0-9._-]{1,64}")


def normalise_value(entity_type: EntityType, raw: str) -> str:
    """ASCII digits of `raw`, dropping separators (spaces, dashes, dots of any script).

    The same card written `4111 1111 1111 1111` in one e-mail and with full-width digits in a
    quoted reply must give one token, so the vault keys and stores this form only.

    Raises ValueFormatError if `raw` holds anything but digits and separators, or the digit
    count does not fit the entity type.
    """
    if raw.isascii():
        # Fast path for the common case: ASCII digits with spaces, dashes or dots.
        ascii_digits = raw.translate(_ASCII_SEPARATORS)
        if ascii_digits.isdigit() and len(ascii_digits) in _LENGTHS[entity_type]:
            return ascii_digits
    digits: list[str] = []
    for char in raw:
        if char.isdecimal():
            digits.append(str(unicodedata.decimal(char)))
        elif char in ".-" or unicodedata.category(char) in ("Zs", "Pd", "Cc"):
            continue
        else:
            raise ValueFormatError
    if len(digits) not in _LENGTHS[entity_type]:
        raise ValueFormatError
    return "".join(digits)


def check_tenant(tenant: str) -> str:
    """Return `tenant` unchanged if it is a valid tenant id.

    Raises TenantFormatError otherwise (tenant ids go into associated data and log lines, so
    they are restricted to a small printable alphabet).
    """
    if _TENANT.fullmatch(tenant) is None:
        raise TenantFormatError
    return tenant


def parse_entity_type(name: str) -> EntityType:
    """The EntityType named `name` (`card` or `ssn`). Raises ValueFormatError otherwise."""
    try:
        return EntityType(name)
    except ValueError:
        raise ValueFormatError("unknown entity type") from None
