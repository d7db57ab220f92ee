"""Rewrite: a presidio-anonymizer operator that puts vault tokens in place of findings.

The anonymizer replaces each span with what the operator returns; the body codecs want edits
in the segment's own coordinates, so `token_edits` pairs each finding with its replacement.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import InvalidParamError, OperatorConfig, RecognizerResult
from presidio_anonymizer.operators import Operator, OperatorType

from redactor.bodies.segments import Edit
from redactor.detection import Finding

OPERATOR_NAME = "vault_token"
# Texts longer than this are rewritten one finding at a time (see token_edits).
_WHOLE_TEXT_CHARS = 64 * 1024

TokenKey = tuple[str, str]  # (entity, ASCII digits of the value)


def value_digits(span: str) -> str:
    """The ASCII digits of a span (`４１１１ 1111...` -> `41111111...`): the vault's value."""
    return "".join(str(unicodedata.digit(c)) for c in span if c.isdigit())


class VaultTokenOperator(Operator):
    """Anonymize operator: the token the vault gave for this span's value."""

    def operate(self, text: str, params: dict | None = None) -> str:
        tokens: Mapping[TokenKey, str] = (params or {})["tokens"]
        return tokens[(params["entity_type"], value_digits(text))]  # type: ignore[index]

    def validate(self, params: dict | None = None) -> None:
        if not isinstance((params or {}).get("tokens"), Mapping):
            raise InvalidParamError("vault_token needs a 'tokens' mapping")

    def operator_name(self) -> str:
        return OPERATOR_NAME

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize


class Rewriter:
    """Builds the anonymizer once; `token_edits` is called per segment with findings."""

    def __init__(self) -> None:
        self._engine = AnonymizerEngine()
        self._engine.add_anonymizer(VaultTokenOperator)

    def token_edits(
        self, text: str, findings: Sequence[Finding], tokens: Mapping[TokenKey, str]
    ) -> list[Edit]:
        """One edit per finding, replacing its span with its token."""
        if not findings:
            return []
        if len(text) > _WHOLE_TEXT_CHARS:
            # The anonymizer rebuilds the whole text for every replacement: on a 9 MB text
            # with 900 values that is seconds. Long texts go span by span, each on its own.
            return [
                Edit(f.start, f.end, self.token_edits(text[f.start : f.end], [
                    Finding(f.entity, 0, f.end - f.start, f.score)
                ], tokens)[0].replacement)
                for f in sorted(findings, key=lambda f: f.start)
            ]  # fmt: skip
        config = OperatorConfig(OPERATOR_NAME, {"tokens": tokens})
        result = self._engine.anonymize(
            text=text,
            analyzer_results=[
                RecognizerResult(f.entity, f.start, f.end, f.score) for f in findings
            ],
            operators={f.entity: config for f in findings},
            # Findings never overlap and two cards may sit a space apart: keep them apart.
            merge_entities_with_spaces=False,
        )
        ordered = sorted(findings, key=lambda f: f.start)
        items = sorted(result.items, key=lambda i: i.start)
        return [Edit(f.start, f.end, item.text) for f, item in zip(ordered, items, strict=True)]
