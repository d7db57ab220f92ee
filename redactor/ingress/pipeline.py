"""The redaction pipeline: parse -> detect -> tokenize (one vault call) -> rewrite -> rebuild.

The only module that knows the order of the stages. Auditing and forwarding are the caller's
(proxy.py): this returns what happened, and never a raw value outside the new body.

A message is its body plus the request parts around it (URL path, query, header values):
they are scanned together and tokenised in the one vault call. Parsing and detection are
CPU work: a body above `offload_bytes` is parsed, scanned and rebuilt on the executor, so
the event loop keeps answering other requests (benchmarks/hostile.py measures /healthz
while such bodies are in flight). Very long segments are scanned in overlapping windows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from redactor.bodies import parse_body
from redactor.bodies.json_prescan import plain_json_texts
from redactor.bodies.limits import BodyLimits
from redactor.bodies.segments import Edit, Segment
from redactor.detection import Detector, Finding
from redactor.errors import VaultTimeoutError
from redactor.ingress.rewrite import Rewriter, TokenKey, value_digits
from vault.errors import VaultError, VaultUnavailableError

# Segments longer than this are scanned in windows of this many characters, each overlapping
# the next by WINDOW_OVERLAP. A value (19 digits with separators as wide as `\n> ` is under
# 80 characters) is owned by the window whose core holds its start, and lies whole inside it
# with at least WINDOW_OVERLAP / 2 characters of context before it: never split at an edge.
WINDOW_CHARS = 64 * 1024
WINDOW_OVERLAP = 512
# Bodies above this size are parsed and scanned off the event loop.
DEFAULT_OFFLOAD_BYTES = 64 * 1024


class TokenVault(Protocol):
    async def tokenize_many(
        self, tenant: str, items: Sequence[tuple[str, str]]
    ) -> Sequence[object]:
        """Tokens for (entity, value) pairs, in order; str(token) is the token text."""
        ...


class ScannedPart(Protocol):
    """A request part around the body (path, query, headers): segments and a way back."""

    @property
    def segments(self) -> Sequence[Segment]: ...

    def rebuild(self, edits: dict[int, list[Edit]]) -> Any: ...


@dataclass(frozen=True, slots=True)
class Redaction:
    """What the pipeline did to one message."""

    body: bytes = field(repr=False)
    changed: bool
    counts: dict[str, int]
    tokens: tuple[str, ...]
    # Per extra part, in the order given: its rebuilt value, or None when it did not change.
    extras: tuple[Any, ...] = ()


def find_windowed(detector: Detector, text: str, field_name: str | None) -> list[Finding]:
    """Findings in `text`; a long text is scanned in bounded, overlapping windows."""
    if len(text) <= WINDOW_CHARS:
        return detector.find(text, field_name=field_name)
    half = WINDOW_OVERLAP // 2
    step = WINDOW_CHARS - WINDOW_OVERLAP
    kept: list[Finding] = []
    start = 0
    while True:
        end = min(start + WINDOW_CHARS, len(text))
        core_lo = 0 if start == 0 else start + half
        core_hi = len(text) if end == len(text) else end - half
        for f in detector.find(text[start:end], field_name=field_name):
            absolute = f.start + start
            if core_lo <= absolute < core_hi:
                kept.append(dataclasses.replace(f, start=absolute, end=f.end + start))
        if end == len(text):
            break
        start += step
    # A finding reaching past its window's core may overlap the next window's: keep the first.
    result: list[Finding] = []
    for f in sorted(kept, key=lambda f: (f.start, -f.end)):
        if result and f.start < result[-1].end:
            continue
        result.append(f)
    return result


@dataclass(slots=True)
class _Scan:
    parsed: Any  # ParsedBody, or None when the fast path proved the body clean
    # (part number, segment index, text, findings); part 0 is the body, 1.. the extras.
    found: list[tuple[int, int, str, list[Finding]]]


@dataclass(frozen=True, slots=True)
class Pipeline:
    detector: Detector
    rewriter: Rewriter
    vault: TokenVault
    vault_timeout_s: float
    executor: Executor | None = None
    offload_bytes: int = DEFAULT_OFFLOAD_BYTES

    async def redact(
        self,
        body: bytes,
        *,
        content_type: str | None,
        content_encoding: str | None,
        tenant: str,
        unknown_types: Literal["text", "refuse"] = "text",
        max_decoded_bytes: int = 10 * 1024 * 1024,
        limits: BodyLimits | None = None,
        extras: Sequence[ScannedPart] = (),
    ) -> Redaction:
        """Redact one message: its body and the `extras` around it. Raises BodyError (4xx),
        DetectionError or a vault error (503): in every case nothing may be forwarded."""
        scan_body = functools.partial(
            self._scan,
            body,
            content_type,
            content_encoding,
            unknown_types,
            max_decoded_bytes,
            limits,
            extras,
        )
        offload = self.executor is not None and len(body) > self.offload_bytes
        loop = asyncio.get_running_loop()
        if offload:
            scan = await loop.run_in_executor(self.executor, scan_body)
        else:
            scan = scan_body()
        if not scan.found:
            return Redaction(body, False, {}, (), (None,) * len(extras))

        keys: dict[TokenKey, None] = {}
        for _, _, text, findings in scan.found:
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

        rebuild = functools.partial(self._rebuild, scan, body, extras, token_of)
        if offload:
            new_body, new_extras = await loop.run_in_executor(self.executor, rebuild)
        else:
            new_body, new_extras = rebuild()
        counts = Counter(f.entity for *_, findings in scan.found for f in findings)
        return Redaction(new_body, True, dict(counts), tuple(token_of.values()), new_extras)

    def _find_all(
        self,
        part: int,
        segments: Sequence[Segment],
        found: list[tuple[int, int, str, list[Finding]]],
    ) -> None:
        for seg in segments:
            findings = find_windowed(self.detector, seg.text, seg.field_name)
            if findings:
                found.append((part, seg.index, seg.text, findings))

    def _scan(
        self,
        body: bytes,
        content_type: str | None,
        content_encoding: str | None,
        unknown_types: Literal["text", "refuse"],
        max_decoded_bytes: int,
        limits: BodyLimits | None,
        extras: Sequence[ScannedPart],
    ) -> _Scan:
        found: list[tuple[int, int, str, list[Finding]]] = []
        for number, part in enumerate(extras, start=1):
            self._find_all(number, part.segments, found)
        if not body:
            return _Scan(None, found)
        # Fast path for the common case, a JSON webhook with no value in it: when every string
        # that could hold one is plain text and none does, the body goes on as it came.
        plain = plain_json_texts(body, content_type, content_encoding, limits)
        # What the fast path found is reused below: a plain string is its codec segment.
        known: dict[tuple[str, str | None], list[Finding]] = {}
        if plain is not None:
            known = {(t, k): find_windowed(self.detector, t, k) for t, k in plain}
            if not any(known.values()):
                return _Scan(None, found)
        parsed = parse_body(
            body,
            content_type,
            content_encoding=content_encoding,
            unknown_types=unknown_types,
            max_decoded_bytes=max_decoded_bytes,
            # No PAN or SSN has fewer than 9 digits: short strings need no segment.
            min_segment_digits=9,
            limits=limits,
        )
        for seg in parsed.segments:
            findings = known.get((seg.text, seg.field_name))
            if findings is None:
                findings = find_windowed(self.detector, seg.text, seg.field_name)
            if findings:
                found.append((0, seg.index, seg.text, findings))
        return _Scan(parsed, found)

    def _rebuild(
        self,
        scan: _Scan,
        body: bytes,
        extras: Sequence[ScannedPart],
        token_of: dict[TokenKey, str],
    ) -> tuple[bytes, tuple[Any, ...]]:
        edits: list[dict[int, list[Edit]]] = [{} for _ in range(len(extras) + 1)]
        for part, index, text, findings in scan.found:
            edits[part][index] = self.rewriter.token_edits(text, findings, token_of)
        new_body = scan.parsed.rebuild(edits[0]) if edits[0] else body
        new_extras = tuple(
            part.rebuild(edits[n]) if edits[n] else None for n, part in enumerate(extras, start=1)
        )
        return new_body, new_extras
