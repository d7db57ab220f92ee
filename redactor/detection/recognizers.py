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
from redactor.detection.findings import CREDIT_CARD, US_SSN
from redactor.detection.options import WELL_KNOWN_DUMMY_SSNS, DetectionOptions

LANGUAGE = "en"

# Scores. A well-formed 15/16-digit PAN is a card with or without context words; other
# lengths (12-14, 17-19) and bare 9-digit SSNs are likelier to be something else, so they
# start lower and context lifts them.
CARD_COMMON_LENGTH_SCORE = 0.85
CARD_OTHER_LENGTH_SCORE = 0.6
SSN_GROUPED_SCORE = 0.85
SSN_BARE_WITH_CONTEXT_SCORE = 0.85
SSN_BARE_SCORE = 0.5
CONTEXT_BOOST = 0.15
# A Luhn-failing number reported by policy (options.py): above the threshold, below any PAN.
CARD_LUHN_FAIL_SCORE = 0.5


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


def find_all_candidates(text: str) -> list[Candidate]:
    """Card and SSN candidates of a whole text, in order."""
    out: list[Candidate] = []
    for run in find_digit_runs(text):
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
) -> tuple[list[Candidate], str | None]:
    if isinstance(nlp_artifacts, DigitRunArtifacts):
        return nlp_artifacts.candidates, nlp_artifacts.field_name
    return find_all_candidates(text), None


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
        raise NotImplementedError

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
        candidates, field_name = _candidates(text, nlp_artifacts)
        for cand in candidates:
            if cand.entity != self.ENTITY:
                continue
            score = self.score(text, cand, field_name)
            if score is not None:
                results.append(
                    RecognizerResult(
                        entity_type=self.ENTITY,
                        start=cand.start,
                        end=cand.end,
                        score=round(min(score, 1.0), 2),
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                        },
                    )
                )
        return results


class CardNumberRecognizer(_DigitRunRecognizer):
    """Payment card numbers (PANs): Luhn, IIN and length, any common grouping."""

    ENTITY = CREDIT_CARD

    def score(self, text: str, candidate: Candidate, field_name: str | None) -> float | None:
        if not candidate.luhn_ok and not self.options.luhn_invalid_with_card_word:
            return None
        ctx = read_context(text, candidate.start, candidate.end, field_name=field_name)
        # Another identifier's label in front says what a number is, except for a well-formed
        # 15/16-digit PAN: fail closed, a tracking number that happens to pass Luhn and an IIN
        # check costs a token, a card number labelled "Account:" would cost a leak.
        if ctx.other_label and not (candidate.luhn_ok and len(candidate.digits) in (15, 16)):
            return None
        if not candidate.luhn_ok:
            return CARD_LUHN_FAIL_SCORE if ctx.card_word_in_clause else None
        common = len(candidate.digits) in (15, 16)
        score = CARD_COMMON_LENGTH_SCORE if common else CARD_OTHER_LENGTH_SCORE
        return score + CONTEXT_BOOST if ctx.supports_card else score


class UsSsnRecognizer(_DigitRunRecognizer):
    """US Social Security numbers: AAA-GG-SSSS in SSA-issued ranges, or 9 bare digits."""

    ENTITY = US_SSN

    def score(self, text: str, candidate: Candidate, field_name: str | None) -> float | None:
        if self.options.ignore_dummy_ssns and candidate.digits in WELL_KNOWN_DUMMY_SSNS:
            return None
        ctx = read_context(text, candidate.start, candidate.end, field_name=field_name)
        if ctx.other_label:
            return None
        if candidate.group_count == 3:
            return SSN_GROUPED_SCORE + (CONTEXT_BOOST if ctx.supports_ssn else 0.0)
        if ctx.supports_ssn:
            return SSN_BARE_WITH_CONTEXT_SCORE
        if self.options.bare_ssn_needs_context:
            return None
        return SSN_BARE_SCORE
