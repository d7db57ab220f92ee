"""What the redaction pass had in front of it: the strong values in every text it read, and
the values it tokenised. Handed to the verifier so a value redaction saw and kept on purpose
(a labelled order number, an id in a link) is not refused, while one it never read is.

The digits live in this object, in memory, for one message; its repr shows counts only.
"""

from __future__ import annotations

from collections.abc import Iterable

from redactor.egress.evidence import could_hold, find_strong, normalize

__all__ = ["SeenValues"]


class SeenValues:
    """Strong values in the texts redaction read (`note_text`) and those it tokenised."""

    __slots__ = ("_read", "_tokenised")

    def __init__(self) -> None:
        self._read: set[str] = set()
        self._tokenised: set[str] = set()

    def note_text(self, text: str) -> None:
        """Record the strong values in one text the redaction pass read (a segment)."""
        if text.isascii() and not could_hold(text):
            return
        for _kind, digits in find_strong(normalize(text)):
            self._read.add(digits)

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
        """True when redaction read this value and deliberately left it: it may leave."""
        # A tokenised value has no business in the outgoing bytes: a copy of it that is still
        # there was hidden where redaction did not read.
        return digits in self._read and digits not in self._tokenised

    def __repr__(self) -> str:
        return f"SeenValues(read={len(self._read)}, tokenised={len(self._tokenised)})"
