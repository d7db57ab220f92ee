"""Per-body limits on what a codec may build: fields, parts, nesting, character references.

A hostile body under the size limit can still cost far more than its size: a million JSON
keys, half a million form fields, a million `&#52;` references, documents nested in documents.
Each codec counts what it builds against the route's `BodyLimits` and stops with a typed 413
or 422 whose code names the limit, before the cost grows.

The running count lives in a context variable set by `parse_body` for the length of one
parse, so every codec (and every codec nested inside another) draws on the same budget
without each constructor passing it down. Outside `parse_body` no limit applies (unit tests
and direct codec use).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from redactor.bodies.segments import Segment
from redactor.detection.digits import digit_count
from redactor.errors import (
    NestingTooDeepError,
    TooManyDigitsError,
    TooManyEntitiesError,
    TooManyFieldsError,
    TooManyPartsError,
    TooManySegmentsError,
    TooManyTagsError,
)

__all__ = [
    "BodyLimits",
    "Budget",
    "budget_for",
    "count_entities",
    "count_fields",
    "count_tags",
    "nested",
]


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """What one body may hold; the defaults sit far above any real webhook or e-mail."""

    # Scannable segments of the whole body (strings, field values, headers, text parts).
    max_segments: int = 50_000
    # JSON object members, form fields, header fields.
    max_fields: int = 100_000
    # multipart/form-data parts and MIME entities.
    max_parts: int = 1_000
    # JSON containers inside each other, MIME entities inside each other, and documents
    # decoded from fields (JSON in a form field, JSON in a JSON string, ...) count alike.
    max_nesting: int = 64
    # HTML character references and JSON `\u` escapes decoded.
    max_entities: int = 100_000
    # Documents decoded inside other documents (JSON in a JSON string in a form field ...).
    max_document_nesting: int = 4
    # Digit characters in the scanned text. Detection's cost grows with dense digit groups
    # (about 1.5 s per million digits of `1234 5678 ...` on one core, run off the event loop)
    # while prose costs little (9 MB with 1.2 million digits in short numbers: 0.4 s): this
    # bounds the scan of a body that is mostly numbers (benchmarks/hostile.py).
    max_digits: int = 2_000_000
    # HTML tags and comments. A tag costs a unit in the text map and a step of the tokenizer
    # whatever its size: 8.8 MB of `<b>1</b>` (1.1 million tags) cost 14.7 s and 494 MB.
    # Real mail and chat HTML holds a few thousand; a 1 MB newsletter some 30,000.
    max_tags: int = 200_000


class Budget:
    """The running counts of one parse against its limits."""

    __slots__ = ("document_depth", "entities", "fields", "limits", "parts", "tags")

    def __init__(self, limits: BodyLimits) -> None:
        self.limits = limits
        self.fields = 0
        self.parts = 0
        self.entities = 0
        self.tags = 0
        self.document_depth = 0


_CURRENT: ContextVar[Budget | None] = ContextVar("redactor_body_budget", default=None)


@contextmanager
def budget_for(limits: BodyLimits | None) -> Iterator[Budget | None]:
    """Make `limits` the budget of the codecs called inside the block."""
    budget = Budget(limits) if limits is not None else None
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def count_fields(n: int = 1) -> None:
    """Count `n` fields. Raises TooManyFieldsError past the limit."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.fields += n
        if budget.fields > budget.limits.max_fields:
            raise TooManyFieldsError()


def count_parts(n: int = 1) -> None:
    """Count `n` parts. Raises TooManyPartsError past the limit."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.parts += n
        if budget.parts > budget.limits.max_parts:
            raise TooManyPartsError()


def count_entities(n: int = 1) -> None:
    """Count `n` decoded references or escapes. Raises TooManyEntitiesError past the limit."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.entities += n
        if budget.entities > budget.limits.max_entities:
            raise TooManyEntitiesError()


def count_tags(n: int) -> None:
    """Count `n` HTML tags or comments. Raises TooManyTagsError past the limit."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.tags += n
        if budget.tags > budget.limits.max_tags:
            raise TooManyTagsError()


def check_depth(depth: int) -> None:
    """Raise NestingTooDeepError when `depth` containers or entities exceed the limit."""
    budget = _CURRENT.get()
    if budget is not None and depth > budget.limits.max_nesting:
        raise NestingTooDeepError()


def check_segments(segments: Sequence[Segment]) -> None:
    """Raise TooManySegmentsError or TooManyDigitsError when a body's segments exceed the
    limits."""
    budget = _CURRENT.get()
    if budget is None:
        return
    if len(segments) > budget.limits.max_segments:
        raise TooManySegmentsError()
    digits = 0
    for segment in segments:
        digits += digit_count(segment.text)
        if digits > budget.limits.max_digits:
            raise TooManyDigitsError()


@contextmanager
def nested() -> Iterator[None]:
    """One level of document-in-document decoding. Raises NestingTooDeepError past the limit.

    Without a budget (direct codec use) a fixed bound of 8 still stops runaway recursion.
    """
    budget = _CURRENT.get()
    if budget is None:
        budget = Budget(BodyLimits(max_document_nesting=8))
        token = _CURRENT.set(budget)
    else:
        token = None
    budget.document_depth += 1
    try:
        if budget.document_depth > budget.limits.max_document_nesting:
            raise NestingTooDeepError()
        yield
    finally:
        budget.document_depth -= 1
        if token is not None:
            _CURRENT.reset(token)
