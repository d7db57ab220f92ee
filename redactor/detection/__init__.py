"""Detection of payment card numbers and US SSNs (presidio recognizers, no NLP model)."""

from functools import cache

from redactor.detection.detector import Detector
from redactor.detection.findings import CREDIT_CARD, ENTITIES, US_SSN, Finding
from redactor.detection.options import DetectionOptions

__all__ = [
    "CREDIT_CARD",
    "ENTITIES",
    "US_SSN",
    "DetectionOptions",
    "Detector",
    "Finding",
    "default_detector",
    "find_entities",
]


@cache
def default_detector() -> Detector:
    """A Detector with default options, built on first use and shared (it is immutable)."""
    return Detector()


def find_entities(text: str) -> list[Finding]:
    """Findings in `text` with default options: the Python API of `redactor detect`."""
    return default_detector().find(text)
