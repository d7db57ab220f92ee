"""The detector: one presidio AnalyzerEngine, built once, that finds PANs and US SSNs."""

from __future__ import annotations

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

from redactor.detection.findings import ENTITIES, Finding
from redactor.detection.options import DetectionOptions
from redactor.detection.recognizers import (
    LANGUAGE,
    CardNumberRecognizer,
    DigitRunNlpEngine,
    UsSsnRecognizer,
    find_all_candidates,
)
from redactor.errors import DetectionError


class _ContextReadByRecognizers(ContextAwareEnhancer):
    """Presidio's default enhancer deep-copies every result to look for context words in
    spaCy lemmas; our recognizers read context themselves (context.py), so it only costs."""

    def __init__(self) -> None:
        super().__init__(
            context_similarity_factor=0.0,
            min_score_with_context_similarity=0.0,
            context_prefix_count=0,
            context_suffix_count=0,
        )

    def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):  # type: ignore[no-untyped-def]
        return raw_results


class Detector:
    """Finds card numbers and SSNs in text. Build one at start; `find` is thread-safe."""

    def __init__(self, options: DetectionOptions | None = None) -> None:
        self.options = options or DetectionOptions()
        self._nlp = DigitRunNlpEngine()
        registry = RecognizerRegistry(
            recognizers=[CardNumberRecognizer(self.options), UsSsnRecognizer(self.options)],
            supported_languages=[LANGUAGE],
        )
        self._engine = AnalyzerEngine(
            registry=registry,
            nlp_engine=self._nlp,
            supported_languages=[LANGUAGE],
            default_score_threshold=self.options.score_threshold,
            context_aware_enhancer=_ContextReadByRecognizers(),
        )
        self._entities = list(ENTITIES)

    def find(self, text: str, *, field_name: str | None = None) -> list[Finding]:
        """Findings in `text`, sorted by position, never overlapping.

        `field_name` is the JSON key or form field the text came from, read as a label.
        Raises DetectionError if the engine fails (callers fail closed).
        """
        try:
            candidates = find_all_candidates(text)
            # Pre-filter: most support messages hold no digit run that could be a PAN or SSN;
            # they never reach the engine (see benchmarks/README.md for what this saves).
            if not candidates:
                return []
            artifacts = self._nlp.artifacts_for(text, field_name, candidates)
            results = self._engine.analyze(
                text=text, language=LANGUAGE, entities=self._entities, nlp_artifacts=artifacts
            )
        except Exception:  # noqa: BLE001 - any failure inside the engine must fail closed
            raise DetectionError() from None
        findings = [Finding(r.entity_type, r.start, r.end, r.score) for r in results]
        findings.sort(key=lambda f: (f.start, f.end))
        return findings
