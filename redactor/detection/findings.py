"""What detection hands to the next stage: a span, its kind and how sure we are."""

from __future__ import annotations

from dataclasses import dataclass, field

CREDIT_CARD = "CREDIT_CARD"
US_SSN = "US_SSN"
ENTITIES = (CREDIT_CARD, US_SSN)


@dataclass(frozen=True, slots=True)
class Finding:
    """A detected value at [start, end) of the scanned text (Python str offsets).

    A value split over neighbouring fields (`["4111", "1111", "1111", "1111"]`, form fields
    `cc1`..`cc4`) gives one finding per piece: each covers its piece, `joined` holds the ASCII
    digits of the whole value (the vault's value) and only the `lead` piece carries the token.
    """

    entity: str
    start: int
    end: int
    score: float
    joined: str | None = field(default=None, repr=False)
    lead: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"entity": self.entity, "start": self.start, "end": self.end, "score": self.score}
