"""Audit records and the sink: chained JSON lines, written before the action they record.

A record names the route, tenant, request id, entity counts and tokens, or who resolved what:
never a value. Every line is chained (`redactor.audit.chain`): a sequence number and an HMAC
over the record and the previous MAC. If a record cannot be written the action does not
happen (the message is not forwarded, the reveal is refused: 503), so nothing leaves redactor
without a trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import structlog

from redactor.audit.chain import (
    CHECKPOINT_EVENT,
    ChainState,
    LineSigner,
    canonical_json,
    checkpoint_text,
    key_id,
)
from redactor.errors import RedactorError

log = structlog.get_logger()

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_CHECKPOINT_INTERVAL_S = 60.0
CHECKPOINT_SUFFIX = ".checkpoints"


# Batches up to this many records are written on the event loop (see _writes_inline).
_INLINE_MAX_RECORDS = 64


class AuditWriteError(RedactorError):
    status = 503
    code = "audit_unavailable"
    message = "audit record could not be written"


def now_iso() -> str:
    """The current UTC time as audit records spell it: `2026-11-30T02:06:42.123+00:00`."""
    global _second_stamp
    now = time.time()
    second = int(now)
    stamp = _second_stamp
    if stamp[0] != second:
        # Formatting a datetime is most of the cost: done once a second (two records a message).
        stamp = _second_stamp = (
            second,
            datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        )
    return f"{stamp[1]}.{int((now - second) * 1000):03d}+00:00"


_second_stamp: tuple[int, str] = (-1, "")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """A message scanned or redacted on ingress (or an answer redacted on the way back)."""

    event: str
    time: str
    request_id: str
    route: str
    tenant: str
    counts: Mapping[str, int]
    tokens: tuple[str, ...]

    def to_data(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        # Fields read directly, not `asdict` (a deep copy per message on the proxy path).
        return {
            "event": self.event,
            "time": self.time,
            "request_id": self.request_id,
            "route": self.route,
            "tenant": self.tenant,
            "counts": dict(self.counts),
            "tokens": list(self.tokens),
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, UTF-8."""
        return canonical_json(self.to_data())


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """What became of a message: forwarded (with the upstream's status), refused, or failed.

    `outcome` is `forwarded`, `refused` (we did not forward: `code` says why) or
    `upstream_failed` (we tried: timeout or connection failure, `code` says which).
    """

    event: str  # message_delivered, message_refused, message_upstream_failed
    time: str
    request_id: str
    route: str
    tenant: str
    outcome: str
    status: int
    code: str | None = None

    def to_data(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        return {name: getattr(self, name) for name in _DELIVERY_FIELDS}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, UTF-8."""
        return canonical_json(self.to_data())


_DELIVERY_FIELDS = tuple(f.name for f in fields(DeliveryEvent))


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
    policy_version: str | None = None  # digest of the policy file the decision was made under

    def to_data(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        # Fields read directly: `asdict` deep-copies every string, and this runs once per
        # decision on the resolve path (it was the largest cost there in benchmarks/resolve.py).
        return {name: getattr(self, name) for name in _ACCESS_FIELDS}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, UTF-8."""
        return canonical_json(self.to_data())


_ACCESS_FIELDS = tuple(f.name for f in fields(AccessEvent))


@dataclass(frozen=True, slots=True)
class SystemEvent:
    """Start, stop, policy loads, key and vault commands: an event name plus value-free details."""

    event: str
    time: str
    details: Mapping[str, Any]

    def to_data(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (details are top-level keys)."""
        return {**self.details, "event": self.event, "time": self.time}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, UTF-8."""
        return canonical_json(self.to_data())


class AuditRecord(Protocol):
    """What the sink writes: anything that renders itself as a JSON-ready dict."""

    def to_data(self) -> dict[str, Any]: ...


def rotated_name(path: Path, when: datetime, next_seq: int) -> Path:
    """Where a full file goes: `audit.jsonl` -> `audit.20261129T231500.123456Z-000000000042.jsonl`.

    The timestamp sorts before the live file's name (digits sort before letters), so a shell
    glob lists a trail's files oldest first.
    """
    stamp = when.strftime("%Y%m%dT%H%M%S.%fZ")
    return path.with_name(f"{path.stem}.{stamp}-{next_seq:012d}{path.suffix}")


class WriteObserver(Protocol):
    """Told of every write (the composition root counts them as metrics)."""

    def written(self, records: int, nbytes: int) -> None: ...

    def failed(self) -> None: ...


class AuditSink:
    """Appends chained JSON lines to a file (or stdout), in order.

    Group commit: the records queued in one pass of the event loop are written together at its
    end (one write for many requests under load), and records that arrive while a write is in
    flight go in the next one. Small batches to a file are written on the loop; stdout, large
    batches and the rare steps (reopen, checkpoint, rotation) in a thread. Every caller still
    waits until its own lines are written and flushed, so fail-closed is unchanged.

    The file is created 0600. When it reaches `max_bytes` it is renamed aside and a new one is
    started; the chain goes on across files. `reopen()` (SIGHUP) reopens the path for external
    rotators. Checkpoints (a chained record plus a signed line in `<path>.checkpoints`) are
    written every `checkpoint_interval_s` and at close, so a cut tail is detectable.
    """

    def __init__(
        self,
        path: Path | None,
        key: bytes,
        *,
        chain_id: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: WriteObserver | None = None,
    ) -> None:
        self._path = path
        self._observer = observer
        self._state = ChainState(chain_id or secrets.token_hex(8), key)
        self._signer = LineSigner(key)
        self._kid = key_id(key)
        self._max_bytes = max_bytes
        self._checkpoint_interval_s = checkpoint_interval_s
        self._clock = clock
        self._fh: IO[bytes] | None = None
        self._size = 0  # bytes in the live file: rotation without a tell() per write
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._flushing = False
        # The off-loop write in flight, held here: the loop keeps only a weak reference.
        self._writer: asyncio.Task[None] | None = None
        self._reopen_requested = False
        self._checkpointed_seq = -1
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def chain_id(self) -> str:
        """This writer's chain id."""
        return self._state.chain_id

    @property
    def path(self) -> Path | None:
        """The live file (None: stdout)."""
        return self._path

    @property
    def key(self) -> bytes:
        """The audit key (the console verifies the trail with it)."""
        return self._state.key

    async def open(self) -> None:
        """Open the file once, at start. Raises AuditWriteError when it cannot be opened."""
        self._loop = asyncio.get_running_loop()
        if self._path is not None:
            try:
                self._fh = await asyncio.to_thread(self._open_file, self._path)
            except OSError:
                raise AuditWriteError("open") from None
        if self._checkpoint_interval_s > 0:
            self._ticker = asyncio.get_running_loop().create_task(self._checkpoint_every())

    def _open_file(self, path: Path) -> IO[bytes]:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 at creation (no window where the file is world-readable), and an existing file
        # is narrowed too: audit lines name who revealed which token.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            self._size = os.fstat(fd).st_size
            return os.fdopen(fd, "ab")
        except BaseException:
            os.close(fd)
            raise

    def reopen(self) -> None:
        """Reopen the file before the next write (SIGHUP, after an external rotator moved it)."""
        self._reopen_requested = True

    async def write(self, event: AuditRecord) -> None:
        """Write and flush one record. Raises AuditWriteError: the caller must not act."""
        await self.write_many((event,))

    async def write_many(self, events: Sequence[AuditRecord]) -> None:
        """Write and flush several records (one thread hop for a batch of decisions).

        Raises AuditWriteError: the caller must not answer with, or forward, what they cover.
        """
        if not events:
            return
        # The loop the sink was opened on: asyncio.get_running_loop() asks the kernel for the
        # process id (a fork check) on every call, and this runs twice per message.
        loop = self._loop or asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append(([event.to_data() for event in events], done))
        if not self._flushing:
            # Written at the end of this pass of the loop, not now: the records the other
            # requests of this pass queue meanwhile go out in the same write (issue 14: two
            # records per message, one write each, were a sixth of a clean message's CPU).
            self._flushing = True
            loop.call_soon(self._flush_queued)
        await done

    def _flush_queued(self) -> None:
        batch, self._pending = self._pending, []
        records = [record for records, _ in batch for record in records]
        if not self._writes_inline(records):
            self._pending = batch + self._pending
            self._writer = (self._loop or asyncio.get_running_loop()).create_task(
                self._flush_pending()
            )
            return
        # A few lines appended to a file are a page-cache write of a few microseconds: far
        # cheaper than a thread hop.
        try:
            nbytes = self._write_records(records)
        except (OSError, ValueError):
            log.error("audit_write_failed", records=len(records))  # noqa: TRY400 - no traceback: the cause is the disk
            self._observe(0, 0)
            _settle(batch, AuditWriteError())
        else:
            self._observe(len(records), nbytes)
            _settle(batch, None)
        finally:
            self._flushing = False

    async def _flush_pending(self) -> None:
        # Off the loop: a batch too large to write inline, stdout, or a rare step (reopen,
        # checkpoint, rotation). Records queued meanwhile go in the next round.
        batch: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                records = [record for records, _ in batch for record in records]
                try:
                    nbytes = await asyncio.to_thread(self._write_records, records)
                except (OSError, ValueError):
                    log.error("audit_write_failed", records=len(records))  # noqa: TRY400 - no traceback: the cause is the disk
                    self._observe(0, 0)
                    _settle(batch, AuditWriteError())
                else:
                    self._observe(len(records), nbytes)
                    _settle(batch, None)
                batch = []
        except asyncio.CancelledError:
            # The writer was cancelled mid-write: nobody may take their lines as written.
            _settle(batch + self._pending, AuditWriteError())
            self._pending = []
            raise
        finally:
            self._flushing = False
            self._writer = None

    def _writes_inline(self, records: list[dict[str, Any]]) -> bool:
        # Only the plain case runs on the loop: a file (stdout may be a slow pipe), a small
        # batch, and none of the rare steps that open, move or fsync files (a reopen after
        # SIGHUP, a checkpoint, a rotation that is due).
        return (
            self._path is not None
            and not self._reopen_requested
            and len(records) <= _INLINE_MAX_RECORDS
            and self._size + _INLINE_MAX_RECORDS * 1024 < self._max_bytes
            and not any(data.get("event") == CHECKPOINT_EVENT for data in records)
        )

    def _observe(self, records: int, nbytes: int) -> None:
        # records == 0: the write failed.
        if self._observer is None:
            return
        if records:
            self._observer.written(records, nbytes)
        else:
            self._observer.failed()

    def _write_records(self, records: list[dict[str, Any]]) -> int:
        # Runs on the loop or in a worker thread, one at a time (the `_flushing` flag): it
        # owns the chain. Returns the bytes written.
        if self._path is not None and self._reopen_requested:
            self._reopen_requested = False
            self._swap_file(None)
        state = self._state
        prev, seq = state.last_mac, state.next_seq
        parts: list[bytes] = []
        checkpoints: list[tuple[int, bytes, dict[str, Any]]] = []
        chain_id = state.chain_id
        sign = self._signer.sign
        for data in records:
            line, prev = sign(prev, {**data, "chain": chain_id, "seq": seq})
            parts.append(line)
            if data.get("event") == CHECKPOINT_EVENT:
                checkpoints.append((seq, prev, data))
            seq += 1
        parts.append(b"")
        text = b"\n".join(parts)
        if self._path is None:
            sys.stdout.buffer.write(text)
            sys.stdout.flush()
        else:
            fh = self._fh
            if fh is None:
                raise ValueError("audit sink is closed")
            fh.write(text)
            fh.flush()
            self._size += len(text)
        # Only now is the chain past these lines: a failed write leaves no gap in `seq`.
        state.advance(seq, prev)
        for cp_seq, cp_mac, data in checkpoints:
            self._append_checkpoint(cp_seq, cp_mac, data)
        if self._fh is not None and self._size >= self._max_bytes:
            self._swap_file(rotated_name(self._path, self._clock(), seq) if self._path else None)
        return len(text)

    def _swap_file(self, move_to: Path | None) -> None:
        # Close the live file, optionally move it aside (size rotation), open the path afresh.
        assert self._path is not None  # noqa: S101 - only called for a file sink
        old, self._fh = self._fh, None
        if old is not None:
            old.close()
        if move_to is not None:
            os.replace(self._path, move_to)
            log.info("audit_file_rotated", rotated_to=str(move_to), next_seq=self._state.next_seq)
        self._fh = self._open_file(self._path)

    def _append_checkpoint(self, seq: int, mac: bytes, data: dict[str, Any]) -> None:
        if self._path is None:
            return
        line = checkpoint_text(
            self._state.key, self.chain_id, seq, mac, str(data["time"]), bool(data.get("final"))
        )
        side = self._path.with_name(self._path.name + CHECKPOINT_SUFFIX)
        try:
            fd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            # The checkpoint record itself is in the chain; the side file only makes a cut tail
            # provable. Losing one is logged loudly, not a reason to stop serving.
            log.error("audit_checkpoint_failed", path=str(side))  # noqa: TRY400

    async def checkpoint(self, *, final: bool = False) -> None:
        """Write a checkpoint now (skipped when nothing was written since the last one).

        Raises AuditWriteError when it cannot be written.
        """
        if not final and self._state.next_seq == self._checkpointed_seq + 1:
            return
        await self.write(
            SystemEvent(
                CHECKPOINT_EVENT,
                self._clock().isoformat(timespec="milliseconds"),
                {"final": final, "kid": self._kid},
            )
        )
        self._checkpointed_seq = self._state.next_seq - 1

    async def _checkpoint_every(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_interval_s)
            with contextlib.suppress(AuditWriteError):
                await self.checkpoint()

    async def close(self) -> None:
        """Write the final checkpoint and close. A failed final checkpoint is logged."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._fh is not None or self._path is None:
            try:
                await self.checkpoint(final=True)
            except AuditWriteError:
                log.error("audit_final_checkpoint_failed")  # noqa: TRY400
        if self._fh is not None:
            fh, self._fh = self._fh, None
            await asyncio.to_thread(fh.close)


def _settle(
    batch: list[tuple[list[dict[str, Any]], asyncio.Future[None]]], error: Exception | None
) -> None:
    for _, future in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
