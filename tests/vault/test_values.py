"""Value normalisation: separators and non-ASCII digits fold to one form; junk is refused."""

from __future__ import annotations

import pytest

from vault.errors import TenantFormatError, ValueFormatError
from vault.tokens import EntityType
from vault.values import check_tenant, normalise_value


@pytest.mark.parametrize(
    ("entity_type", "raw", "expected"),
    [
        (EntityType.CARD, "4111 1111 1111 1111", "4111111111111111"),
        (EntityType.CARD, "4111-1111-1111-1111", "4111111111111111"),
        (EntityType.CARD, "4111.1111.1111.1111", "4111111111111111"),
        (EntityType.CARD, "４１１１１１１１１１１１１１１１", "4111111111111111"),
        (EntityType.CARD, "4111\u00a01111\u20131111\u20141111", "4111111111111111"),
        (EntityType.CARD, "378282246310005", "378282246310005"),
        (EntityType.SSN, "219-09-9999", "219099999"),
        (EntityType.SSN, "٢١٩٠٩٩٩٩٩", "219099999"),
    ],
)
def test_values_normalise_to_ascii_digits(entity_type: EntityType, raw: str, expected: str) -> None:
    assert normalise_value(entity_type, raw) == expected


@pytest.mark.parametrize(
    ("entity_type", "raw"),
    [
        (EntityType.SSN, "219-09-999"),
        (EntityType.SSN, "219-09-99999"),
        (EntityType.CARD, "41111111111"),
        (EntityType.CARD, "41111111111111111111"),
        (EntityType.CARD, "4111 1111 1111 111O"),
        (EntityType.SSN, "SSN 219-09-9999"),
        (EntityType.SSN, ""),
    ],
)
def test_values_of_the_wrong_shape_are_refused_without_echo(
    entity_type: EntityType, raw: str
) -> None:
    with pytest.raises(ValueFormatError) as info:
        normalise_value(entity_type, raw)
    assert not raw or raw not in str(info.value)


@pytest.mark.parametrize("tenant", ["", "a b", "x" * 65, "acme/../x", "ténant"])
def test_bad_tenant_ids_are_refused(tenant: str) -> None:
    with pytest.raises(TenantFormatError):
        check_tenant(tenant)


def test_good_tenant_ids_pass() -> None:
    assert check_tenant("acme-eu.prod_1") == "acme-eu.prod_1"
