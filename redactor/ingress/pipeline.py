"""The redaction pipeline: parse -> detect -> tokenize (one vault call) -> rewrite -> rebuild.

The only module that knows the order of the stages. Auditing and forwarding are the caller's
(proxy.py): this returns what happened, and never a raw value outside the new body.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from redactor.bodies import parse_body
from redactor.bodies.json_prescan import plain_json_texts
from redactor.bodies.segments import Edit
from redactor.detection import Detector, Finding
from redactor.detection.screen import may_hold_value
from redactor.errors import VaultTimeoutError
from redactor.ingress.rewrite import Rewriter, TokenKey, value_digits
from vault.errors import VaultError, VaultUnavailableError


class TokenVault(Protocol):
    async def tokenize_many(
        self, tenant: str, items: Sequence[tuple[str, str]]
    ) -> Sequence[object]:
        """Tokens for (entity, value) pairs, in order; str(token) is the token text."""
        ...


@dataclass(frozen=True, slots=True)
class Redaction:
    """What the pipeline did to one body."""

    body: bytes = field(repr=False)
    changed: bool
    counts: dict[str, int]
    tokens: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Pipeline:
    detector: Detector
    rewriter: Rewriter
    vault: TokenVault
    vault_timeout_s: float

    def _find(self, text: str, field_name: str | None) -> list[Finding]:
        # The screen proves most long texts (e-mail threads full of dates and order numbers)
        # hold no value in two C passes, before the recognizers' far costlier look.
        if not may_hold_value(text):
            return []
        return self.detector.find(text, field_name=field_name)

    async def redact(
        self,
        body: bytes,
        *,
        content_type: str | None,
        content_encoding: str | None,
        tenant: str,
        unknown_types: Literal["text", "refuse"] = "text",
        max_decoded_bytes: int = 10 * 1024 * 1024,
    ) -> Redaction:
        """Redact one message body. Raises BodyError (4xx), DetectionError or a vault error
        (503): in every case nothing may be forwarded."""
        # Fast path for the common case, a JSON webhook with no value in it: when every string
        # that could hold one is plain text and none does, the body goes on as it came.
        plain = plain_json_texts(body, content_type, content_encoding)
        # What the fast path found is reused below: a plain string is its codec segment.
        known: dict[tuple[str, str | None], list[Finding]] = {}
        if plain is not None:
            known = {(t, k): self._find(t, k) for t, k in plain}
            if not any(known.values()):
                return Redaction(body, False, {}, ())
        parsed = parse_body(
            body,
            content_type,
            content_encoding=content_encoding,
            unknown_types=unknown_types,
            max_decoded_bytes=max_decoded_bytes,
            # No PAN or SSN has fewer than 9 digits: short strings need no segment.
            min_segment_digits=9,
        )
        found: list[tuple[int, str, list[Finding]]] = []
        for seg in parsed.segments:
            findings = known.get((seg.text, seg.field_name))
            if findings is None:
                findings = self._find(seg.text, seg.field_name)
            if findings:
                found.append((seg.index, seg.text, findings))
        if not found:
            return Redaction(body, False, {}, ())

        keys: dict[TokenKey, None] = {}
        for _, text, findings in found:
            for f in findings:
                keys[(f.entity, value_digits(text[f.start : f.end]))] = None
        ordered = list(keys)
        try:
            async with asyncio.timeout(self.vault_timeout_s):
                tokens = await self.vault.tokenize_many(tenant, ordered)
        except TimeoutError:
            raise VaultTimeoutError() from None
        except VaultError:
            raise
        except OSError:
            raise VaultUnavailableError() from None
        token_of = {key: str(tok) for key, tok in zip(ordered, tokens, strict=True)}

        edits: dict[int, list[Edit]] = {
            index: self.rewriter.token_edits(text, findings, token_of)
            for index, text, findings in found
        }
        new_body = parsed.rebuild(edits)
        counts = Counter(f.entity for _, _, findings in found for f in findings)
        return Redaction(new_body, True, dict(counts), tuple(token_of.values()))
