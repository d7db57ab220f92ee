"""The detector: one presidio AnalyzerEngine, built once, that finds PANs and US SSNs."""

from __future__ import annotations

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

from redactor.detection.candidates import luhn_valid
from redactor.detection.explain import RunExplanation, explain
from redactor.detection.findings import ENTITIES, Finding
from redactor.detection.iin import scheme_for
from redactor.detection.options import DetectionOptions
from redactor.detection.recognizers import (
    LANGUAGE,
    CardNumberRecognizer,
    DigitRunNlpEngine,
    UsSsnRecognizer,
    find_all_candidates,
    score_candidate,
)
from redactor.detection.screen import may_hold_value
from redactor.detection.textview import TextView, has_odd_breaks, view_of
from redactor.errors import DetectionError


def bare_number_may_hold_value(text: str) -> bool:
    """For a text that is only ASCII digits (a JSON integer, an id): False only when it
    cannot give a candidate, so `find` has nothing to report.

    Such a text is one digit run of one group, whole and untainted (candidates.py): it is a
    candidate only as a 9-digit SSN, a 12-19 digit card (Luhn-valid with an IIN that issues
    its length), or a 13-19 digit weak card. So 10, 11 and 20+ digits never are, nor 12
    digits that fail the Luhn check or have no scheme (issue 24: Zendesk's 12-digit ids).
    """
    n = len(text)
    if n == 9 or n >= 13:
        return n <= 19
    return n == 12 and scheme_for(text) is not None and luhn_valid(text)


# The view of every ASCII text without a backslash: itself (no Cf character, no escape).
_PLAIN = TextView("")


class _FixedRegistry(RecognizerRegistry):
    """Our two recognizers, for one language, always: the stock registry filters its list by
    language and entity on every call, which is per-message work with a constant answer."""

    def get_recognizers(self, language, entities=None, all_fields=False, ad_hoc_recognizers=None):  # type: ignore[no-untyped-def]
        if language == LANGUAGE and not ad_hoc_recognizers:
            return self.recognizers
        return super().get_recognizers(language, entities, all_fields, ad_hoc_recognizers)


class _DetectionEngine(AnalyzerEngine):
    """AnalyzerEngine without its context pass: presidio's enhancer reads context words from
    spaCy lemmas (and deep-copies every result to do so); with no NLP model there are none,
    and our recognizers read context themselves (context.py)."""

    def _enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):  # type: ignore[no-untyped-def]
        return raw_results


class Detector:
    """Finds card numbers and SSNs in text. Build one at start; `find` is thread-safe."""

    def __init__(self, options: DetectionOptions | None = None) -> None:
        self.options = options or DetectionOptions()
        self._nlp = DigitRunNlpEngine()
        registry = _FixedRegistry(
            recognizers=[CardNumberRecognizer(self.options), UsSsnRecognizer(self.options)],
            supported_languages=[LANGUAGE],
        )
        self._engine = _DetectionEngine(
            registry=registry,
            nlp_engine=self._nlp,
            supported_languages=[LANGUAGE],
            default_score_threshold=self.options.score_threshold,
        )
        self._entities = list(ENTITIES)

    def find(
        self,
        text: str,
        *,
        field_name: str | None = None,
        considered: set[str] | None = None,
        runs: set[str] | None = None,
    ) -> list[Finding]:
        """Findings in `text`, sorted by position, never overlapping.

        `field_name` is the JSON key or form field the text came from, read as a label.
        `considered`, when given, receives the digits of every candidate the detector weighed
        (found or kept), `runs` those of every digit run it read: the egress verifier lets a
        value leave only when the detector weighed it, or read it inside a longer number.
        Raises DetectionError if the engine fails (callers fail closed).
        """
        # The screen: no digit run of 9+ digits with a part that could be a candidate, no
        # value (C passes, and Python only for the rare long runs: screen.py).
        # With `runs` asked (the egress verifier), every run of 9+ digits is read and recorded.
        if not may_hold_value(text, every_run=runs is not None or considered is not None):
            return []
        if (
            considered is None
            and runs is None
            and text.isdigit()
            and text.isascii()
            and not bare_number_may_hold_value(text)
        ):
            return []  # an id of 10, 11, 12 or 20+ digits (the egress verifier reads runs)
        try:
            # Invisible format characters and literal escapes read as what they stand for;
            # spans map back onto `text` (textview.py).
            plain = text.isascii() and "\\" not in text and not has_odd_breaks(text)
            view = _PLAIN if plain else view_of(text)
            scanned = text if view is _PLAIN else view.text
            candidates = find_all_candidates(scanned, ascii_digits=view.ascii_digits, runs=runs)
            if considered is not None:
                considered.update(c.digits for c in candidates)
            # Pre-filter: most support messages hold no digit run that could be a PAN or SSN,
            # and digit-dense ones often only numbers the evidence table keeps; they never
            # reach the engine (see benchmarks/README.md for what this saves). The scores
            # decided here ride along, so the recognizers do not decide twice.
            if not candidates:
                return []
            scores = {}
            for cand in candidates:
                score = score_candidate(scanned, cand, field_name, self.options)
                if score is not None and score >= self.options.score_threshold:
                    scores[id(cand)] = score
            if not scores:
                return []
            artifacts = self._nlp.artifacts_for(scanned, field_name, candidates)
            artifacts.decided_scores = scores
            results = self._engine.analyze(
                text=scanned,
                language=LANGUAGE,
                entities=self._entities,
                nlp_artifacts=artifacts,
            )
            spans = [(r, *view.span_in_source(r.start, r.end)) for r in results]
        except Exception:  # noqa: BLE001 - any failure inside the engine must fail closed
            raise DetectionError() from None
        findings = [Finding(r.entity_type, s, e, r.score) for r, s, e in spans]
        findings.sort(key=lambda f: (f.start, f.end))
        return findings

    def explain(self, text: str, *, field_name: str | None = None) -> list[RunExplanation]:
        """Each digit run of `text` with its candidates' evidence and decision (no digits).

        Raises DetectionError if explaining fails.
        """
        try:
            return explain(text, self.options, field_name=field_name)
        except Exception:  # noqa: BLE001 - same contract as find: one typed error
            raise DetectionError() from None
