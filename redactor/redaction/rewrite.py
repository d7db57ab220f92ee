"""Rewrite: a presidio-anonymizer operator that puts vault tokens in place of findings.

The body codecs want edits in the segment's own coordinates, so `token_edits` pairs each
finding with what the operator returns for its span.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from presidio_anonymizer.entities import InvalidParamError
from presidio_anonymizer.operators import Operator, OperatorType

from redactor.bodies.segments import Edit
from redactor.detection import Finding
from redactor.errors import RedactorError

OPERATOR_NAME = "vault_token"

TokenKey = tuple[str, str]  # (entity, ASCII digits of the value)


def value_digits(span: str) -> str:
    """The ASCII digits of a span (`４１１１ 1111...` -> `41111111...`): the vault's value."""
    if span.isascii():
        return span.translate(_ASCII_NON_DIGITS)  # one C pass; most spans are ASCII
    return "".join(str(unicodedata.digit(c)) for c in span if c.isdigit())


_ASCII_NON_DIGITS = {c: None for c in range(128) if not chr(c).isdigit()}


def finding_value(finding: Finding, span: str) -> str:
    """The vault's value for a finding whose text is `span`: its digits, or those of the whole
    value when the finding is one piece of a split value."""
    return finding.joined if finding.joined is not None else value_digits(span)


class VaultTokenOperator(Operator):
    """Anonymize operator: the token the vault gave for this span's value."""

    def operate(self, text: str, params: dict | None = None) -> str:
        tokens: Mapping[TokenKey, str] = (params or {})["tokens"]
        try:
            return tokens[(params["entity_type"], value_digits(text))]  # type: ignore[index]
        except KeyError:
            # The key holds the value: it must not ride in a traceback or a log line.
            raise RedactorError("no token for a finding") from None

    def validate(self, params: dict | None = None) -> None:
        if not isinstance((params or {}).get("tokens"), Mapping):
            raise InvalidParamError("vault_token needs a 'tokens' mapping")

    def operator_name(self) -> str:
        return OPERATOR_NAME

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize


class Rewriter:
    """Applies the vault-token operator to each finding; `token_edits` is called per segment.

    The operator is called span by span, not through presidio's AnonymizerEngine: the engine
    resolves overlaps (findings never overlap), merges neighbours (two cards a space apart
    must stay two tokens) and rebuilds the whole text per call, which was a twentieth of a
    card message's CPU (issue 14); the body codecs want edits, not a new text.
    """

    def __init__(self) -> None:
        self._operator = VaultTokenOperator()

    def token_edits(
        self, text: str, findings: Sequence[Finding], tokens: Mapping[TokenKey, str]
    ) -> list[Edit]:
        """One edit per finding, in text order, replacing its span with its token.

        A piece of a split value: the lead piece becomes the whole value's token, the others
        become empty (the token resolves to every digit).
        """
        if not findings:
            return []
        self._operator.validate({"tokens": tokens})
        return [
            Edit(
                f.start,
                f.end,
                ""
                if not f.lead
                else self._operator.operate(
                    text[f.start : f.end] if f.joined is None else f.joined,
                    {"tokens": tokens, "entity_type": f.entity},
                ),
            )
            for f in sorted(findings, key=lambda f: f.start)
        ]
