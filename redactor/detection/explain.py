"""Why each digit run was or was not redacted, for `redactor detect --explain`.

One entry per digit run long enough to hold an SSN (9+ digits): where it is, how many digits it
has, and for each card/SSN candidate in it the evidence for and against and the decision of the
table in `evidence.py`, the same code the recognizers run. Positions and counts only: an
explanation never holds a digit of the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from redactor.detection.candidates import find_candidates
from redactor.detection.context import read_context
from redactor.detection.digit_runs import find_digit_runs
from redactor.detection.evidence import decide
from redactor.detection.findings import US_SSN
from redactor.detection.options import WELL_KNOWN_DUMMY_SSNS, DetectionOptions
from redactor.detection.textview import view_of


@dataclass(frozen=True, slots=True)
class CandidateExplanation:
    entity: str
    start: int
    end: int
    digit_count: int
    grouping: str
    scheme: str | None
    evidence_for: tuple[str, ...]
    evidence_against: tuple[str, ...]
    rule: str
    redacted: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "digits": self.digit_count,
            "grouping": self.grouping,
            "scheme": self.scheme,
            "for": list(self.evidence_for),
            "against": list(self.evidence_against),
            "rule": self.rule,
            "decision": "redact" if self.redacted else "keep",
        }


@dataclass(frozen=True, slots=True)
class RunExplanation:
    start: int
    end: int
    digit_count: int
    candidates: tuple[CandidateExplanation, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "start": self.start,
            "end": self.end,
            "digits": self.digit_count,
            "candidates": [c.to_dict() for c in self.candidates],
            "decision": ("redact" if any(c.redacted for c in self.candidates) else "keep"),
        }


def explain(
    text: str, options: DetectionOptions, *, field_name: str | None = None
) -> list[RunExplanation]:
    """The digit runs of `text` (Python str offsets into it) with their candidates' evidence."""
    view = view_of(text)
    out: list[RunExplanation] = []
    for run in find_digit_runs(view.text, ascii_digits=view.ascii_digits):
        explained = []
        for cand in find_candidates(run):
            ctx = read_context(view.text, cand.start, cand.end, field_name=field_name)
            decision = decide(cand, ctx, options)
            against = decision.evidence_against
            redacted = decision.report and decision.score >= options.score_threshold
            rule = decision.rule
            if (
                cand.entity == US_SSN
                and options.ignore_dummy_ssns
                and cand.digits in WELL_KNOWN_DUMMY_SSNS
            ):
                against, redacted, rule = (*against, "dummy-ssn"), False, "policy: dummy ssn"
            start, end = view.span_in_source(cand.start, cand.end)
            explained.append(
                CandidateExplanation(
                    cand.entity,
                    start,
                    end,
                    len(cand.digits),
                    cand.grouping,
                    cand.scheme,
                    decision.evidence_for,
                    against,
                    rule,
                    redacted,
                )
            )
        start, end = view.span_in_source(run.start, run.end)
        out.append(RunExplanation(start, end, run.digit_count, tuple(explained)))
    return out
