"""The redaction pipeline: parse -> detect -> tokenize (one vault call) -> rewrite -> rebuild.

The only module that knows the order of the stages. Auditing and forwarding are the caller's
(proxy.py): this returns what happened, and never a raw value outside the new body.

A message is its body plus the request parts around it (URL path, query, header values):
they are scanned together and tokenised in the one vault call. Parsing and detection are CPU
work (scanning.py): a body above `offload_bytes` is parsed, scanned and rebuilt in a scan
worker process, so the event loop keeps answering other requests while it runs
(benchmarks/hostile.py measures /healthz with such bodies in flight).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from redactor.bodies.attachments import UnreadSummary
from redactor.bodies.limits import BodyLimits
from redactor.bodies.segments import Edit, Segment
from redactor.detection import Detector, Finding
from redactor.egress import SeenValues, verify_answer, verify_request
from redactor.errors import UnreadablePartError, VaultTimeoutError
from redactor.redaction.rewrite import Rewriter, TokenKey, finding_value
from redactor.redaction.scanning import (
    WINDOW_CHARS,
    WINDOW_OVERLAP,
    BodyScan,
    ScanRequest,
    find_windowed,
    proves_clean,
    rebuild_body,
    rebuild_in_worker,
    scan_body,
    scan_in_worker,
)
from vault.errors import VaultError, VaultUnavailableError

__all__ = [
    "WINDOW_CHARS",
    "WINDOW_OVERLAP",
    "Pipeline",
    "Redaction",
    "ScannedPart",
    "TokenVault",
    "find_windowed",
    "verify_in_worker",
]

# Bodies above this size are parsed, scanned and rebuilt in a scan worker process: a 30 KB
# body dense with escapes already costs ~50 ms of parsing, too long to hold the loop.
DEFAULT_OFFLOAD_BYTES = 16 * 1024
# A body up to this size is first tried on the loop with the JSON fast path (json.loads and
# the screen, both C), sending at most this much text to the recognizers.
INLINE_PROOF_MAX_BYTES = 512 * 1024
INLINE_PROOF_BUDGET_CHARS = 8 * 1024
# The egress verifier reads a plain JSON body at ~4 us per KB (benchmarks/egress.py): a scan
# worker's round trip (pickling the body, the pipe) costs more than reading a 20 KB thread on
# the loop, so only bodies above this size are verified in a worker.
VERIFY_OFFLOAD_BYTES = 128 * 1024
# A body under `offload_bytes` is scanned on the loop with no time budget, so it must be
# cheap whatever it holds. Dense bodies are not: 16 KB of one digit per line cost 1.7 s of
# detection, 16 KB of references, table cells of digits or pieces side by side 0.1 s, 16 KB
# of attributes 70 ms (benchmarks/inline_hostile.py). Past these counts of digits, tags or
# `=` a small body goes to the scan worker (and its time budget) as a large one does; a
# webhook holds a few dozen digits and `=`, an HTML mail a few hundred tags.
DENSE_DIGITS = 1024
DENSE_TAGS = 2048
DENSE_EQUALS = 1024
_DIGIT_BYTES = b"0123456789"


def dense(body: bytes) -> bool:
    """True when a small body holds more digits or markup than inline scanning may cost."""
    if len(body) <= DENSE_EQUALS:
        return False
    if body.count(b"<") > DENSE_TAGS or body.count(b"=") > DENSE_EQUALS:
        return True
    return len(body) - len(body.translate(None, _DIGIT_BYTES)) > DENSE_DIGITS


class TokenVault(Protocol):
    async def tokenize_many(
        self, tenant: str, items: Sequence[tuple[str, str]]
    ) -> Sequence[object]:
        """Tokens for (entity, value) pairs, in order; str(token) is the token text."""
        ...


class ScanRunner(Protocol):
    """Runs a scan function in a worker process (ingress.scan_pool.ScanPool)."""

    async def run(self, fn: Callable[..., Any], *args: Any, size: int = 0) -> Any:
        """`fn(*args)` in a worker; `size` (the body's bytes) picks the lane."""
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
    # What redaction read and tokenised, for the egress verifier (never logged: repr=False).
    seen: SeenValues | None = field(default=None, repr=False, compare=False)
    # The parts it could not read (PDFs, images, archives), in order, and which of them the
    # new body carries as a placeholder instead.
    unread: tuple[UnreadSummary, ...] = ()
    stripped: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Pipeline:
    detector: Detector
    rewriter: Rewriter
    vault: TokenVault
    vault_timeout_s: float
    # Worker processes for large bodies; None scans everything in this process.
    scan_pool: ScanRunner | None = None
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
        unreadable_parts: Literal["pass", "strip", "reject"] = "pass",
    ) -> Redaction:
        """Redact one message: its body and the `extras` around it. Raises BodyError (4xx),
        UnreadablePartError (415, `unreadable_parts: reject`), DetectionError or a vault
        error (503): in every case nothing may be forwarded.

        A part that is not text (a PDF, an image, an archive) is passed, replaced by a
        placeholder part (`strip`) or refused (`reject`); one whose text layer holds a value
        cannot be rewritten in place, so it is stripped even under `pass`."""
        request = ScanRequest(
            body, content_type, content_encoding, unknown_types, max_decoded_bytes, limits
        )
        # Found values as (part, segment index, findings, span texts); part 0 is the body.
        found: list[tuple[int, int, list[Finding], list[str]]] = []
        seen = SeenValues()
        for number, part in enumerate(extras, start=1):
            for seg in part.segments:
                findings = find_windowed(self.detector, seg.text, seg.field_name, seen)
                if findings:
                    spans = [seg.text[f.start : f.end] for f in findings]
                    found.append((number, seg.index, findings, spans))
        small = len(body) <= self.offload_bytes
        pool = self.scan_pool if not small or dense(body) else None
        local_scan = None
        unread: tuple[UnreadSummary, ...] = ()
        if (
            pool is not None
            and len(body) <= INLINE_PROOF_MAX_BYTES
            and proves_clean(self.detector, request, INLINE_PROOF_BUDGET_CHARS, seen)
        ):
            # Most large webhooks are long text with nothing in it: proved clean here in C
            # passes, they skip the scan worker's round trip.
            pool = None
            local_scan = BodyScan(None, [])
        elif pool is not None:
            scanned, read_digits, unread_list = await pool.run(
                scan_in_worker, self.detector.options, request, size=len(body)
            )
            seen.note_read(read_digits)
            found.extend((0, index, findings, spans) for index, findings, spans in scanned)
            unread = tuple(unread_list)
        else:
            local_scan = scan_body(self.detector, request, patch_in_place=True, seen=seen)
        if local_scan is not None:
            found.extend(
                (0, index, findings, [text[f.start : f.end] for f in findings])
                for index, text, findings in local_scan.found
            )
            unread = tuple(local_scan.unread)
        if unread and unreadable_parts == "reject":
            raise UnreadablePartError(tuple(part.kind for part in unread))
        strip = frozenset(
            number
            for number, part in enumerate(unread)
            if unreadable_parts == "strip" or part.value_found
        )
        if not found and not strip:
            return Redaction(body, False, {}, (), (None,) * len(extras), seen, unread)

        token_of = await self._tokens(found, tenant, seen) if found else {}
        body_found = [(index, findings) for part, index, findings, _ in found if part == 0]
        new_body = body
        if (body_found or strip) and pool is not None:
            new_body = await pool.run(
                rebuild_in_worker, request, body_found, token_of, strip, size=len(body)
            )
        elif (body_found or strip) and local_scan is not None:
            new_body = rebuild_body(
                self.rewriter, local_scan.parsed, local_scan.found, token_of, strip
            )
        new_extras = tuple(
            self._rebuild_extra(part, number, found, token_of)
            for number, part in enumerate(extras, start=1)
        )
        counts = Counter(f.entity for _, _, findings, _ in found for f in findings if f.lead)
        return Redaction(
            new_body, True, dict(counts), tuple(token_of.values()), new_extras, seen, unread, strip
        )

    async def _tokens(
        self,
        found: list[tuple[int, int, list[Finding], list[str]]],
        tenant: str,
        seen: SeenValues,
    ) -> dict[TokenKey, str]:
        """The token of each value found, from one vault call."""
        keys: dict[TokenKey, None] = {}
        for *_, findings, spans in found:
            for f, span in zip(findings, spans, strict=True):
                keys[(f.entity, finding_value(f, span))] = None
        ordered = list(keys)
        seen.note_tokenised(digits for _entity, digits in ordered)
        try:
            async with asyncio.timeout(self.vault_timeout_s):
                tokens = await self.vault.tokenize_many(tenant, ordered)
        except TimeoutError:
            raise VaultTimeoutError() from None
        except VaultError:
            raise
        except OSError:
            raise VaultUnavailableError() from None
        return {key: str(tok) for key, tok in zip(ordered, tokens, strict=True)}

    async def verify(
        self,
        body: bytes,
        *,
        answer: bool,
        content_type: str | None,
        content_encoding: str | None,
        url: str,
        headers: Sequence[tuple[str, str]],
        unscanned_headers: frozenset[str],
        seen: SeenValues | None,
    ) -> None:
        """The egress verifier on what is about to leave (after redaction, before the audit
        record and the forward). Raises UnreadableValueError / UnreadableAnswerError or
        UnverifiableMessageError: nothing may leave. A large body is read in a scan worker."""
        # A dense small body is verified in the worker too: its readings are many (tags,
        # escapes), and the loop has no time budget.
        large = len(body) > max(self.offload_bytes, VERIFY_OFFLOAD_BYTES)
        small = len(body) <= self.offload_bytes
        pool = self.scan_pool if large or (small and dense(body)) else None
        args = (answer, body, content_type, content_encoding, url, tuple(headers))
        if pool is not None:
            await pool.run(verify_in_worker, *args, unscanned_headers, seen, size=len(body))
        else:
            verify_in_worker(*args, unscanned_headers, seen)

    def _rebuild_extra(
        self,
        part: ScannedPart,
        number: int,
        found: list[tuple[int, int, list[Finding], list[str]]],
        token_of: dict[TokenKey, str],
    ) -> Any:
        edits: dict[int, list[Edit]] = {}
        for found_part, index, findings, _spans in found:
            if found_part == number:
                text = part.segments[index].text
                edits[index] = self.rewriter.token_edits(text, findings, token_of)
        return part.rebuild(edits) if edits else None


def verify_in_worker(
    answer: bool,
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    url: str,
    headers: tuple[tuple[str, str], ...],
    unscanned_headers: frozenset[str],
    seen: SeenValues | None,
) -> None:
    """`verify_request` or `verify_answer` with positional arguments (a pool job)."""
    if answer:
        verify_answer(
            body,
            content_type=content_type,
            headers=headers,
            unscanned_headers=unscanned_headers,
            seen=seen,
        )
    else:
        verify_request(
            body,
            content_type=content_type,
            content_encoding=content_encoding,
            url=url,
            headers=headers,
            unscanned_headers=unscanned_headers,
            seen=seen,
        )
