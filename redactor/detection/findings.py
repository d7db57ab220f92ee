"""What detection hands to the next stage: a span, its kind and how sure we are."""

from __future__ import annotations

from dataclasses import dataclass

CREDIT_CARD = "CREDIT_CARD"
US_SSN = "US_SSN"
ENTITIES = (CREDIT_CARD, US_SSN)


@dataclass(frozen=True, slots=True)
class Finding:
    """A detected value at [start, end) of the scanned text (Python str offsets)."""

    entity: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, object]:
        return {"entity": self.entity, "start": self.start, "end": self.end, "score": self.score}
