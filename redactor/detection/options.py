"""Detection choices that are policy, not rules: security teams set them per tenant."""

from __future__ import annotations

from dataclasses import dataclass

# Widely published sample SSNs: the Woolworth wallet card (078-05-1120), the SSA's own
# advertising sample (219-09-9999), the classic sequence and Social Security pamphlet sample
# (123-45-6789, 457-55-5462), and one digit repeated.
WELL_KNOWN_DUMMY_SSNS = frozenset(
    {"123456789", "078051120", "219099999", "457555462"}
    | {str(d) * 9 for d in range(1, 9) if d != 6}
)


@dataclass(frozen=True, slots=True)
class DetectionOptions:
    """How the recognizers treat the cases where policy decides."""

    # A customer who types a famous sample SSN still typed something that looks like one:
    # detect by default, let a policy ignore them.
    ignore_dummy_ssns: bool = False
    # Bare 9-digit numbers: with `True` only an SSN word nearby makes them SSNs; with `False`
    # (default, fail closed) they are SSNs unless another identifier's label is in front.
    bare_ssn_needs_context: bool = False
    # A card-shaped number that fails the Luhn check is not a PAN any scheme issues, but a
    # typo'd one still shows all the customer's digits but one. By default (fail closed) it is
    # reported when a card word labels it in the same clause ("my card 4892 7634 1023 8756"),
    # or a payment verb does and it is printed as a scheme prints its cards, unless the text
    # calls it invalid or a test value ("... is not accepted") or another identifier's label
    # is in front (evidence.py, row card.6); `False` leaves every Luhn-failing number alone.
    luhn_invalid_with_card_word: bool = True
    # Findings scoring below this are dropped.
    score_threshold: float = 0.4
