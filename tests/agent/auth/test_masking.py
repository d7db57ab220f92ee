"""Masked renderings: what the `masked` level shows, and that it never shows more."""

from __future__ import annotations

import pytest

from redactor.agent.masking import mask_card, mask_ssn


@pytest.mark.parametrize(
    ("digits", "show_first_six", "expected"),
    [
        ("4242424242424242", False, "•••• 4242"),
        ("4111111111111111", True, "411111 •••• 1111"),
        ("4111 1111 1111 4242", True, "411111 •••• 4242"),
        ("4111-1111-1111-4242", False, "•••• 4242"),
        ("378282246310005", True, "378282 •••• 0005"),  # Amex, 15 digits: five stay hidden
        ("4222222222222", True, "•••• 2222"),  # 13 digits: BIN + last four would leave three
        ("6011000990139424", False, "•••• 9424"),
    ],
)
def test_mask_card_shows_last_four_and_optionally_bin(
    digits: str, show_first_six: bool, expected: str
) -> None:
    assert mask_card(digits, show_first_six=show_first_six) == expected


@pytest.mark.parametrize(
    ("digits", "expected"), [("123456789", "•••-••-6789"), ("123-45-6789", "•••-••-6789")]
)
def test_mask_ssn_shows_last_four(digits: str, expected: str) -> None:
    assert mask_ssn(digits) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "4242", "42424242424242424242", "4242x42424242424", "４２４２４２４２４２４２４２４２"],
)
def test_mask_card_refuses_non_pans_without_quoting_them(bad: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        mask_card(bad)
    assert not bad or bad not in str(excinfo.value)


@pytest.mark.parametrize("bad", ["12345678", "1234567890", "123 45 678a"])
def test_mask_ssn_refuses_non_ssns_without_quoting_them(bad: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        mask_ssn(bad)
    assert bad not in str(excinfo.value)
