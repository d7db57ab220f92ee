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

    __slots__ = ("_read", "_runs", "_tokenised")

    def __init__(self) -> None:
        self._read: set[str] = set()
        self._runs: set[str] = set()
        self._tokenised: set[str] = set()

    @property
    def considered(self) -> set[str]:
        """The set the detector adds each candidate's digits to (`Detector.find`)."""
        return self._read

    @property
    def runs(self) -> set[str]:
        """The set the detector adds each digit run's digits to (`Detector.find`)."""
        return self._runs

    def note_read(self, read: tuple[frozenset[str], frozenset[str]]) -> None:
        """Record what was weighed elsewhere (a scan worker's `read_digits`)."""
        self._read.update(read[0])
        self._runs.update(read[1])

    def note_tokenised(self, digits: Iterable[str]) -> None:
        """Record the digits of every value the redaction pass replaced with a token."""
        self._tokenised.update(digits)

    def read_digits(self) -> tuple[frozenset[str], frozenset[str]]:
        """Candidates and runs weighed, to send back from a scan worker (its pipe only)."""
        return frozenset(self._read), frozenset(self._runs)

    def kept(self, digits: str, *, inside: bool = True) -> bool:
        """True when the detector weighed this value and deliberately left it: it may leave.

        `inside`: the verifier read the value beside more digits of one grouped number. Only
        then may a longer number the detector weighed vouch for it; a value standing alone in
        some reading was not read by redaction just because its digits also occur glued to
        others elsewhere (`card%204111...` holds the run `204111...` in the raw text, and the
        card alone in the percent reading)."""
        # A tokenised value has no business in the outgoing bytes: a copy of it that is still
        # there was hidden where redaction did not read.
        if digits in self._tokenised:
            return False
        if digits in self._read:
            return True
        # ...or read it inside a longer number it weighed or kept whole (a 22-digit USPS
        # tracking number holds Luhn-valid 16-digit windows): that number was seen. A run of
        # exactly these digits with no candidate was not weighed (glued to a letter: `%3A536-
        # 90-4399`), and is not kept.
        if not inside:
            return False
        return any(digits in c for c in (*self._read, *self._runs) if len(c) > len(digits))

    def __repr__(self) -> str:
        return f"SeenValues(read={len(self._read)}, tokenised={len(self._tokenised)})"
