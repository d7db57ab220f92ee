"""Audit records: one canonical JSON line per redacted message, written before forwarding.

A record names the route, tenant, request id, entity counts and the tokens issued: never a
value. If the record cannot be written the message is not forwarded (503), so nothing leaves
redactor without a trace.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any, Protocol

from redactor.errors import RedactorError


class AuditWriteError(RedactorError):
    status = 503
    code = "audit_unavailable"
    message = "audit record could not be written"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    event: str
    time: str
    request_id: str
    route: str
    tenant: str
    counts: Mapping[str, int]
    tokens: tuple[str, ...]

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, UTF-8."""
        # Fields read directly, not `asdict` (a deep copy per message on the proxy path).
        data: dict[str, Any] = {
            "event": self.event,
            "time": self.time,
            "request_id": self.request_id,
            "route": self.route,
            "tenant": self.tenant,
            "counts": dict(self.counts),
            "tokens": list(self.tokens),
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """One decision on the agent API: who asked for which token, what was granted, and why.

    `token` is the token string (it holds nothing policy does not allow); `purpose` and
    `ticket` are the caller's free text after `scrub_free_text`. Never a value.
    """

    event: str  # token_resolved, token_denied, token_used, agent_unauthenticated, ...
    time: str
    request_id: str
    route: str
    subject: str | None
    tenant: str | None
    token: str | None
    level: str  # the level granted: none, masked, use or full
    reason: str  # granted, or the stable denial / authentication reason code
    purpose: str | None = None
    ticket: str | None = None
    token_id: str | None = None  # the JWT's jti, to tie a decision to one credential

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, UTF-8."""
        # Fields read directly: `asdict` deep-copies every string, and this runs once per
        # decision on the resolve path (it was the largest cost there in benchmarks/resolve.py).
        data = {name: getattr(self, name) for name in _ACCESS_FIELDS}
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_ACCESS_FIELDS = tuple(f.name for f in fields(AccessEvent))


class AuditRecord(Protocol):
    """What the sink writes: anything that renders itself as one canonical JSON line."""

    def to_json(self) -> str: ...


class AuditSink:
    """Appends JSON lines to a file (or stdout), in order, off the event loop.

    Group commit: records that arrive while a write is in flight are written together in the
    next one (one thread hop for many requests under load); every caller still waits until
    its own lines are written and flushed, so fail-closed is unchanged.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._fh: IO[str] | None = None
        self._pending: list[tuple[str, asyncio.Future[None]]] = []
        self._flushing = False

    async def open(self) -> None:
        """Open the file once, at start. Raises AuditWriteError when it cannot be opened."""
        if self._path is None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = await asyncio.to_thread(self._path.open, "a", encoding="utf-8")
        except OSError:
            raise AuditWriteError("open") from None

    async def write(self, event: AuditRecord) -> None:
        """Write and flush one record. Raises AuditWriteError: the caller must not forward."""
        await self.write_many((event,))

    async def write_many(self, events: Sequence[AuditRecord]) -> None:
        """Write and flush several records (one thread hop for a batch of decisions).

        Raises AuditWriteError: the caller must not answer with, or forward, what they cover.
        """
        if not events:
            return
        lines = "".join(event.to_json() + "\n" for event in events)
        if self._path is None:
            try:
                sys.stdout.write(lines)
                sys.stdout.flush()
            except (OSError, ValueError):
                raise AuditWriteError() from None
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((lines, done))
        if not self._flushing:
            await self._flush_pending()
        await done

    async def _flush_pending(self) -> None:
        # The caller that finds no write in flight writes for everyone queued meanwhile.
        self._flushing = True
        batch: list[tuple[str, asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                text = "".join(lines for lines, _ in batch)
                try:
                    await asyncio.to_thread(self._write_line, self._fh, text)
                except (OSError, ValueError):
                    _settle(batch, AuditWriteError())
                else:
                    _settle(batch, None)
                batch = []
        except asyncio.CancelledError:
            # The writer was cancelled mid-write: nobody may take their lines as written.
            _settle(batch + self._pending, AuditWriteError())
            self._pending = []
            raise
        finally:
            self._flushing = False

    @staticmethod
    def _write_line(fh: IO[str] | None, line: str) -> None:
        if fh is None:
            raise ValueError("audit sink is closed")
        fh.write(line)
        fh.flush()

    async def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            await asyncio.to_thread(fh.close)


def _settle(batch: list[tuple[str, asyncio.Future[None]]], error: Exception | None) -> None:
    for _, future in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
