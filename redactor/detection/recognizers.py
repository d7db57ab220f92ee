"""Presidio recognizers for payment card numbers and US SSNs, and the engine's tokenizer.

The rules live in `candidates.py` (shape, Luhn, IIN, SSA ranges) and `context.py` (words
around); these classes turn candidates into presidio `RecognizerResult`s with a score.

`DigitRunNlpEngine` is the NLP engine presidio's `AnalyzerEngine` requires. It loads no model
(no spaCy pipeline, nothing downloaded): its only "linguistic" work is to cut the text into
digit runs once, so both recognizers share that work through the `NlpArtifacts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, NoOpNlpEngine
from spacy.tokens import Doc

from redactor.detection.candidates import Candidate, find_candidates
from redactor.detection.context import read_context
from redactor.detection.digit_runs import find_digit_runs
from redactor.detection.evidence import decide_score
from redactor.detection.findings import CREDIT_CARD, US_SSN
from redactor.detection.options import WELL_KNOWN_DUMMY_SSNS, DetectionOptions

LANGUAGE = "en"


class DigitRunArtifacts(NlpArtifacts):
    """NlpArtifacts carrying the card/SSN candidates found while tokenising."""

    def __init__(
        self,
        *,
        candidates: list[Candidate],
        field_name: str | None,
        empty_doc: Doc,
        nlp_engine: Any,
    ) -> None:
        super().__init__(
            entities=[],
            tokens=empty_doc,
            tokens_indices=[],
            lemmas=[],
            nlp_engine=nlp_engine,
            language=LANGUAGE,
            scores=[],
        )
        self.candidates = candidates
        # The JSON key / form field the text came from: a label for context (see context.py).
        self.field_name = field_name
        # Scores already decided for these candidates (Detector.find decides before it calls
        # the engine, to skip it when nothing would be reported): id(candidate) -> score.
        # (Not `scores`: presidio's NlpArtifacts uses that name for its NER scores.)
        self.decided_scores: dict[int, float] | None = None


def score_candidate(
    text: str, candidate: Candidate, field_name: str | None, options: DetectionOptions
) -> float | None:
    """The score `candidate` is reported with, or None: the evidence table's decision."""
    if (
        candidate.entity == US_SSN
        and options.ignore_dummy_ssns
        and candidate.digits in WELL_KNOWN_DUMMY_SSNS
    ):
        return None
    ctx = read_context(text, candidate.start, candidate.end, field_name=field_name)
    return decide_score(candidate, ctx, options)


def find_all_candidates(
    text: str, *, ascii_digits: bool | None = None, runs: set[str] | None = None
) -> list[Candidate]:
    """Card and SSN candidates of a whole text, in order (`ascii_digits`: whether all its
    digits are ASCII, when the caller knows). `runs` receives each digit run's digits."""
    out: list[Candidate] = []
    for run in find_digit_runs(text, ascii_digits=ascii_digits):
        if runs is not None:
            runs.add("".join(g.digits for g in run.groups))
        out.extend(find_candidates(run))
    return out


class DigitRunNlpEngine(NoOpNlpEngine):
    """An NLP engine with no model: it only finds digit runs (see module docstring)."""

    def __init__(self) -> None:
        super().__init__(models=[{"lang_code": LANGUAGE, "model_name": "digit-runs"}])
        self.load()
        # One shared empty Doc: nothing downstream mutates it, and building one per text costs.
        self._empty_doc = Doc(self._vocab, words=[])

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        return self.artifacts_for(text)

    def artifacts_for(
        self,
        text: str,
        field_name: str | None = None,
        candidates: list[Candidate] | None = None,
    ) -> DigitRunArtifacts:
        """Tokenise `text` into card/SSN candidates (or carry ones already found)."""
        return DigitRunArtifacts(
            candidates=find_all_candidates(text) if candidates is None else candidates,
            field_name=field_name,
            empty_doc=self._empty_doc,
            nlp_engine=self,
        )

    def process_batch(  # type: ignore[override]
        self, texts: Iterable[str], language: str, *args: Any, **kwargs: Any
    ) -> Iterator[tuple[str, NlpArtifacts]]:
        for text in texts:
            yield text, self.artifacts_for(text)


def _candidates(
    text: str, nlp_artifacts: NlpArtifacts | None
) -> tuple[list[Candidate], str | None, dict[int, float] | None]:
    if isinstance(nlp_artifacts, DigitRunArtifacts):
        return nlp_artifacts.candidates, nlp_artifacts.field_name, nlp_artifacts.decided_scores
    return find_all_candidates(text), None, None


class _DigitRunRecognizer(EntityRecognizer):
    ENTITY: str = ""

    def __init__(self, options: DetectionOptions | None = None) -> None:
        self.options = options or DetectionOptions()
        super().__init__(
            supported_entities=[self.ENTITY],
            name=type(self).__name__,
            supported_language=LANGUAGE,
            context=[],
        )

    def load(self) -> None:
        """Nothing to load: the rules are compiled at import."""

    def score(self, text: str, candidate: Candidate, field_name: str | None) -> float | None:
        """The score `candidate` is reported with, or None (see evidence.py)."""
        return score_candidate(text, candidate, field_name, self.options)

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        """Results for this recognizer's entity in `text`."""
        if self.ENTITY not in entities:
            return []
        results = []
        candidates, field_name, scores = _candidates(text, nlp_artifacts)
        for cand in candidates:
            if cand.entity != self.ENTITY:
                continue
            if scores is not None:
                score = scores.get(id(cand))
            else:
                score = self.score(text, cand, field_name)
            if score is not None:
                results.append(
                    RecognizerResult(
                        entity_type=self.ENTITY,
                        start=cand.start,
                        end=cand.end,
                        score=score,
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        },
                    )
                )
        return results


class CardNumberRecognizer(_DigitRunRecognizer):
    """Payment card numbers (PANs): Luhn, IIN and length, any consistent grouping."""

    ENTITY = CREDIT_CARD


class UsSsnRecognizer(_DigitRunRecognizer):
    """US Social Security numbers: AAA-GG-SSSS in SSA-issued ranges, or 9 bare digits."""

    ENTITY = US_SSN
