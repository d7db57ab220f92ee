"""What the redaction pass had in front of it: the digits of every candidate the detector
weighed (found or kept), and the values it tokenised. Handed to the verifier so a value the
detector saw and kept on purpose (a labelled order number, an id in a link) is not refused,
while one it never weighed as a candidate is.

The digits live in this object, in memory, for one message (and on the scan worker's pipe,
which carries the body itself); its repr shows counts only.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SeenValues"]


class SeenValues:
    """Candidate digits the detector weighed (`considered`) and those redaction tokenised."""

    __slots__ = ("_read", "_tokenised")

    def __init__(self) -> None:
        self._read: set[str] = set()
        self._tokenised: set[str] = set()

    @property
    def considered(self) -> set[str]:
        """The set the detector adds each candidate's digits to (`Detector.find`)."""
        return self._read

    def note_read(self, digits: Iterable[str]) -> None:
        """Record values read elsewhere (a scan worker's `read_digits`)."""
        self._read.update(digits)

    def note_tokenised(self, digits: Iterable[str]) -> None:
        """Record the digits of every value the redaction pass replaced with a token."""
        self._tokenised.update(digits)

    def read_digits(self) -> frozenset[str]:
        """The values read, to send back from a scan worker (in-process pipes only)."""
        return frozenset(self._read)

    def kept(self, digits: str) -> bool:
        """True when the detector weighed this value and deliberately left it: it may leave."""
        # A tokenised value has no business in the outgoing bytes: a copy of it that is still
        # there was hidden where redaction did not read.
        if digits in self._tokenised:
            return False
        # The detector may have weighed it as part of a longer number it kept (19 digits of
        # which the verifier reads 16 as a card): that number was seen whole.
        return digits in self._read or any(digits in c for c in self._read if len(c) > len(digits))

    def __repr__(self) -> str:
        return f"SeenValues(read={len(self._read)}, tokenised={len(self._tokenised)})"
