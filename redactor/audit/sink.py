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
import hashlib
import os
import queue
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from redactor.audit.chain import (
    CHECKPOINT_EVENT,
    ChainState,
    LineSigner,
    canonical_json,
    checkpoint_text,
    key_id,
)
from redactor.audit.registration import ChainRegistry, ChainRegistryError
from redactor.errors import RedactorError
from vault.chains import ChainCheckpoint, ChainFile, ChainGenesis, ChainUpdate

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
    # Parts redactor could not read (a PDF, an image, an archive): per part its `type`,
    # `size`, `kind`, `action` (passed, stripped) and `value_found`; never content. Only
    # in the record when there is one.
    unread_parts: tuple[Mapping[str, Any], ...] = ()

    def to_data(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        # Fields read directly, not `asdict` (a deep copy per message on the proxy path).
        data = {
            "event": self.event,
            "time": self.time,
            "request_id": self.request_id,
            "route": self.route,
            "tenant": self.tenant,
            "counts": dict(self.counts),
            "tokens": list(self.tokens),
        }
        if self.unread_parts:
            data["unread_parts"] = [dict(part) for part in self.unread_parts]
        return data

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, UTF-8."""
        return canonical_json(self.to_data())


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """What became of a message: forwarded (with the upstream's status), refused, or failed.

    `outcome` is `forwarded`, `refused` (we did not forward: `code` says why) or
    `upstream_failed` (we tried: timeout or connection failure, `code` says which).
    """

    # message_delivered, message_refused, message_upstream_failed, message_not_sent; queued
    # routes: message_queued, then message_delivered, message_retrying or message_dead.
    event: str
    time: str
    request_id: str
    route: str
    tenant: str
    outcome: str
    status: int
    code: str | None = None
    # Where the egress verifier found a value redaction could not read (`body>gzip>base64`):
    # our own labels, never the value. Left out of the record when there is none, so records
    # written before it existed keep their exact form.
    reading: str | None = None
    # Queued delivery: the outbox item (its Idempotency-Key) and the attempt's number. Left
    # out when None, like `reading`.
    outbox_id: str | None = None
    attempt: int | None = None

    def to_data(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        # Fields read directly (a comprehension of getattr was a fifth of a record's cost).
        data: dict[str, Any] = {
            "event": self.event,
            "time": self.time,
            "request_id": self.request_id,
            "route": self.route,
            "tenant": self.tenant,
            "outcome": self.outcome,
            "status": self.status,
            "code": self.code,
        }
        if self.reading is not None:
            data["reading"] = self.reading
        if self.outbox_id is not None:
            data["outbox_id"] = self.outbox_id
        if self.attempt is not None:
            data["attempt"] = self.attempt
        return data

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, UTF-8."""
        return canonical_json(self.to_data())


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


FSYNC_POLICIES = ("batch", "interval", "never")
# `batch`: a caller returns only once its records are on stable storage, which is what "written
# before the action" means after a power cut, not only after a process crash (see
# benchmarks/README.md, "Audit chain", for what it costs).
DEFAULT_FSYNC = "batch"
DEFAULT_FSYNC_INTERVAL_S = 1.0
FILE_REPLACED_EVENT = "audit_file_replaced"
TAIL_REPAIRED_EVENT = "audit_tail_repaired"
WRITE_RECOVERED_EVENT = "audit_write_recovered"
# How far back `open` looks for the start of a torn last line (a line is ~300 bytes).
_TORN_SCAN_MAX_BYTES = 1024 * 1024
_TORN_CHAIN = re.compile(rb'^\{"chain":"([0-9A-Za-z_-]{1,64})"')


@dataclass(frozen=True, slots=True)
class SinkHealth:
    """What the sink tells readiness and metrics: whether writes succeed, and what went wrong."""

    writable: bool
    failed_batches: int
    failed_records: int
    files_replaced: Mapping[str, int]
    torn_tails_repaired: int
    fsync_failures: int


class WriteObserver(Protocol):
    """Told of the sink's writes and of changes to its health (the composition root exports
    them as metrics: the sink is a core and knows no metrics). Called on the loop or in the
    sink's writer thread, one call at a time."""

    def written(self, records: int, nbytes: int) -> None:
        """A batch of `records` lines (`nbytes` bytes) was written."""

    def failed(self, records: int) -> None:
        """A batch of `records` lines could not be written and was refused."""

    def writable(self, ok: bool) -> None:
        """Writes succeed (`ok`, also said once at open) or have started to fail."""

    def file_replaced(self, cause: str) -> None:
        """The path stopped naming the open file (`deleted`, `moved`, `replaced`)."""

    def tail_repaired(self) -> None:
        """A file opened with a torn last line was ended and the cut recorded."""

    def fsync_failed(self) -> None:
        """An fsync of the audit file failed."""


class _NoObserver:
    def written(self, records: int, nbytes: int) -> None:
        pass

    def failed(self, records: int) -> None:
        pass

    def writable(self, ok: bool) -> None:
        pass

    def file_replaced(self, cause: str) -> None:
        pass

    def tail_repaired(self) -> None:
        pass

    def fsync_failed(self) -> None:
        pass


class AuditSink:
    """Appends chained JSON lines to a file (or stdout), in order.

    Group commit: the records queued in one pass of the event loop are written together at its
    end (one write for many requests under load), and records that arrive while a write is in
    flight go in the next one. Small batches to a file are written on the loop when no fsync is
    due; stdout, large batches, fsync and the rare steps (reopen, checkpoint, rotation) in a
    thread. Every caller still waits until its own lines are written, so fail-closed holds.

    Writes go to the file descriptor unbuffered, a whole batch at a time. A batch that cannot
    be written whole (disk full, I/O error, a failed fsync) is cut off again: the file is
    truncated to its length before the batch, the chain does not advance, every caller of the
    batch gets AuditWriteError, and the next good batch starts with an `audit_write_recovered`
    record. Before each batch the sink checks that its path still names the open file (device
    and inode, like the SQLite vault): a file deleted, moved or replaced under it is followed,
    and the first record in the path's new file, `audit_file_replaced`, says why and where the
    chain was. On open, a file whose last line was cut by a crash gets a newline and an
    `audit_tail_repaired` record naming the cut line (length and SHA-256), so `verify` can tell
    a crash from an edit.

    `fsync`: `batch` (each batch is on stable storage before its callers return), `interval`
    (at most `fsync_interval_s` of acknowledged records can be lost to a power cut or kernel
    crash) or `never` (the page cache only; a process crash loses nothing).

    The file is created 0600. When it reaches `max_bytes` it is renamed aside and a new one is
    started; the chain goes on across files. `reopen()` (SIGHUP) reopens the path for external
    rotators. Checkpoints (a chained record plus a signed line in `<path>.checkpoints`) are
    written every `checkpoint_interval_s` and at close, so a cut tail is detectable.

    With a `registry` (the vault's database, `redactor.audit.registration`), the chain is
    recorded there too: its genesis (`writer`, `command`, host, pid, file, time) when the sink
    opens, each checkpoint and each file left behind (rotated or moved away) when the
    checkpoint is written, the final checkpoint at close. `registry_required`: a genesis that
    cannot be recorded fails `open` (AuditWriteError: nothing is written, the caller does not
    act); otherwise it is owed and recorded with the next checkpoint (for commands that create
    or migrate the vault). A checkpoint that cannot be recorded is logged and recorded with
    the next one: the records themselves are on disk.
    """

    def __init__(
        self,
        path: Path | None,
        key: bytes,
        *,
        chain_id: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
        fsync: str = DEFAULT_FSYNC,
        fsync_interval_s: float = DEFAULT_FSYNC_INTERVAL_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: WriteObserver | None = None,
        registry: ChainRegistry | None = None,
        writer: str = "serve",
        command: str | None = None,
        registry_required: bool = True,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError("fsync must be batch, interval or never")
        self._path = path
        self._observer: WriteObserver = observer if observer is not None else _NoObserver()
        self._state = ChainState(chain_id or secrets.token_hex(8), key)
        self._signer = LineSigner(key)
        self._kid = key_id(key)
        self._max_bytes = max_bytes
        self._checkpoint_interval_s = checkpoint_interval_s
        self._fsync = fsync
        self._fsync_interval_s = fsync_interval_s
        self._clock = clock
        self._fd: int | None = None
        self._ident: tuple[int, int] = (-1, -1)  # (st_dev, st_ino) of the open file
        self._closed = False
        self._size = 0  # bytes in the live file: rotation without a stat per inline decision
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._flushing = False
        # The off-loop write in flight, held here: the loop keeps only a weak reference.
        self._writer: asyncio.Task[None] | None = None
        # The batches written off the loop go to one thread of the sink's own, not to the
        # loop's default pool: its threads, once two exist, take turns on every batch (each
        # turn a cold thread woken, more GIL hand-offs: under the proxy's load a third more
        # context switches per message), and any other work queued there would delay an
        # audit record that a request is waiting for.
        self._thread: _WriterThread | None = None
        self._reopen_requested = False
        self._checkpointed_seq = -1
        self._ticker: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Records the sink owes the trail (a file replaced, a torn tail repaired): they go first
        # in the next batch that is written, and stay owed until one is.
        self._notes: list[dict[str, Any]] = []
        self._newline_owed = False  # the open file's torn last line still needs its newline
        self._dirty = False  # written since the last fsync (interval policy)
        # A run of failed batches: when it began, how many batches and records it refused.
        self._failing_since: str | None = None
        self._episode_batches = 0
        self._episode_records = 0
        self._failed_batches = 0
        self._failed_records = 0
        self._files_replaced: dict[str, int] = {}
        self._torn_tails = 0
        self._fsync_failures = 0
        # The chain registry: what is owed to it, and how far it knows the chain.
        self._registry = registry
        self._writer_kind = writer
        self._command = command
        self._registry_required = registry_required
        self._genesis_owed: ChainGenesis | None = None
        self._files_owed: list[ChainFile] = []
        self._file_first_seq = 0  # the first seq written to the live file
        self._last_checkpoint: ChainCheckpoint | None = None
        self._registered_seq = -1

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

    @property
    def fsync(self) -> str:
        """The fsync policy: batch, interval or never."""
        return self._fsync

    def health(self) -> SinkHealth:
        """Whether the last write succeeded, and the counts readiness and metrics show."""
        return SinkHealth(
            writable=self._failing_since is None,
            failed_batches=self._failed_batches,
            failed_records=self._failed_records,
            files_replaced=dict(self._files_replaced),
            torn_tails_repaired=self._torn_tails,
            fsync_failures=self._fsync_failures,
        )

    async def open(self) -> None:
        """Open the file once, at start. Raises AuditWriteError when it cannot be opened."""
        self._loop = asyncio.get_running_loop()
        if self._path is not None:
            try:
                await asyncio.to_thread(self._open_file, self._path)
            except OSError:
                raise AuditWriteError("open") from None
        if self._registry is not None:
            try:
                await self._register_genesis(self._registry)
            except AuditWriteError:
                if self._fd is not None:
                    await asyncio.to_thread(self._close_fd)
                self._closed = True
                raise
        self._observer.writable(self._failing_since is None)
        if self._checkpoint_interval_s > 0:
            self._ticker = self._loop.create_task(self._checkpoint_every())
        if self._path is not None and self._fsync == "interval":
            self._syncer = self._loop.create_task(self._sync_every())

    async def _register_genesis(self, registry: ChainRegistry) -> None:
        genesis = ChainGenesis(
            chain_id=self.chain_id,
            writer=self._writer_kind,
            command=self._command,
            host=socket.gethostname(),
            pid=os.getpid(),
            file=None if self._path is None else str(self._path.absolute()),
            key_id=self._kid,
            started_at=self._now(),
        )
        try:
            await registry.record(ChainUpdate(genesis=genesis))
        except ChainRegistryError as exc:
            if self._registry_required:
                # Fail closed: a chain the registry does not know could vanish unnoticed.
                log.error("audit_chain_registry_failed", code=exc.code, step="genesis")  # noqa: TRY400
                raise AuditWriteError(f"chain registry: {exc.code}") from None
            log.info("audit_chain_registration_deferred", code=exc.code)
            self._genesis_owed = genesis

    async def _register(self) -> None:
        # What the registry is owed (a deferred genesis, files left behind, the newest
        # checkpoint), in one transaction; on failure it stays owed for the next checkpoint.
        registry = self._registry
        if registry is None:
            return
        checkpoint = self._last_checkpoint
        if checkpoint is not None and checkpoint.seq <= self._registered_seq:
            checkpoint = None
        files = tuple(self._files_owed)
        genesis = self._genesis_owed
        if genesis is None and checkpoint is None and not files:
            return
        try:
            await registry.record(ChainUpdate(genesis, checkpoint, files))
        except ChainRegistryError as exc:
            log.error("audit_chain_registry_failed", code=exc.code, step="checkpoint")  # noqa: TRY400
            return
        if genesis is not None:
            self._genesis_owed = None
        # Files left behind meanwhile (a rotation in the writer thread) stay owed.
        del self._files_owed[: len(files)]
        if checkpoint is not None:
            self._registered_seq = checkpoint.seq

    def _open_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 at creation (no window where the file is world-readable), and an existing file
        # is narrowed too: audit lines name who revealed which token. Read access: to look at
        # the last line (a torn tail).
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            st = os.fstat(fd)
            if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
                self._repair_torn_tail(fd, st.st_size)
                st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)
        self._size = st.st_size

    def _repair_torn_tail(self, fd: int, size: int) -> None:
        # A crash (or a full disk with no room to cut the batch off again) left a line without
        # its newline. End it, and owe the trail a record naming it, so the next line is a line
        # of its own and `verify` can tell the cut line from an edited one.
        start = max(0, size - _TORN_SCAN_MAX_BYTES)
        tail = os.pread(fd, size - start, start)
        cut = tail.rfind(b"\n") + 1
        torn = tail[cut:]
        # The newline goes out with the repair record, in one write: the two land together or
        # are cut off together.
        self._newline_owed = True
        chain = _TORN_CHAIN.match(torn)
        self._torn_tails += 1
        self._observer.tail_repaired()
        self._notes.append(
            {
                "event": TAIL_REPAIRED_EVENT,
                "time": self._now(),
                "torn_offset": start + cut,
                "torn_bytes": len(torn),
                "torn_sha256": hashlib.sha256(torn).hexdigest(),
                "torn_chain": chain[1].decode() if chain else None,
            }
        )
        log.warning("audit_torn_tail_repaired", path=str(self._path), torn_bytes=len(torn))

    def _now(self) -> str:
        return self._clock().isoformat(timespec="milliseconds")

    def reopen(self) -> None:
        """Reopen the file before the next write (SIGHUP, after an external rotator moved it)."""
        self._reopen_requested = True

    async def write(self, event: AuditRecord) -> None:
        """Write and flush one record. Raises AuditWriteError: the caller must not act."""
        # Straight to the queue (twice per message): not through write_many's tuple and list.
        await self._submit([event.to_data()])

    async def write_many(self, events: Sequence[AuditRecord]) -> None:
        """Write and flush several records (one thread hop for a batch of decisions).

        Raises AuditWriteError: the caller must not answer with, or forward, what they cover.
        """
        if not events:
            return
        await self._submit([event.to_data() for event in events])

    async def check_writable(self) -> None:
        """Return when the sink can write. After failed writes, try again (an
        `audit_write_recovered` record). Raises AuditWriteError while writes still fail."""
        if self._failing_since is not None:
            await self._submit([])

    async def _submit(self, records: list[dict[str, Any]]) -> None:
        # The loop the sink was opened on: asyncio.get_running_loop() asks the kernel for the
        # process id (a fork check) on every call, and this runs twice per message.
        loop = self._loop or asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((records, done))
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
            self._write_records(records)
        except (OSError, ValueError):
            self._failed(records)
            _settle(batch, AuditWriteError())
        else:
            _settle(batch, None)
        finally:
            self._flushing = False

    async def _flush_pending(self) -> None:
        # Off the loop: a batch too large to write inline, stdout, fsync, or a rare step
        # (reopen, checkpoint, rotation). Records queued meanwhile go in the next round.
        batch: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                records = [record for records, _ in batch for record in records]
                try:
                    await self._write_off_loop(records)
                except (OSError, ValueError):
                    self._failed(records)
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
            self._writer = None

    async def _write_off_loop(self, records: list[dict[str, Any]]) -> None:
        # The plain case of the batch policy (a file, nothing rare due) signs the lines here
        # and hands the writer thread only the write and the fsync: those are what must not
        # block the loop. Python in that thread needs the GIL from a busy loop at every turn
        # (woken, back from each system call), each turn a context switch on the server's
        # core; the lines signed there cost a message more CPU than signed here.
        synced = self._synced_lines(records)
        if synced is None:
            await self._in_writer_thread(self._write_records, records)
        else:
            await self._in_writer_thread(self._append_signed, *synced)

    def _append_signed(
        self,
        text: bytes,
        lines: int,
        seq: int,
        last_mac: bytes,
        checkpoints: list[tuple[int, bytes, dict[str, Any]]],
    ) -> None:
        # In the writer thread, the chain moved with the write: a caller cancelled meanwhile
        # cannot leave lines on disk that the chain has not moved past.
        self._append(text)
        self._written(lines, text, seq, last_mac, checkpoints)

    def _synced_lines(
        self, records: list[dict[str, Any]]
    ) -> tuple[bytes, int, int, bytes, list[tuple[int, bytes, dict[str, Any]]]] | None:
        """The batch's text, signed on the loop, when only a write and an fsync remain to do;
        None when the writer thread must do it all (a rare step, or not a file)."""
        if (
            self._path is None
            or self._fd is None
            or self._closed
            or self._reopen_requested
            # A job still in the thread (its caller was cancelled): the chain moves there.
            or (self._thread is not None and self._thread.busy)
            or any(data.get("event") == CHECKPOINT_EVENT for data in records)
        ):
            return None
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        if (st.st_dev, st.st_ino) != self._ident:
            return None  # deleted, moved or replaced: followed in the writer thread
        self._size = st.st_size  # a copytruncate rotation shortens the file
        text, lines, seq, last_mac, checkpoints = self._lines(records)
        if not lines or self._size + len(text) >= self._max_bytes:
            return None  # nothing to write, or a rotation is due after it
        return text, lines, seq, last_mac, checkpoints

    def _in_writer_thread(self, fn: Callable[..., None], *args: Any) -> asyncio.Future[None]:
        writer = self._thread
        if writer is None:
            writer = self._thread = _WriterThread(self._loop or asyncio.get_running_loop())
        return writer.run(fn, *args)

    def _failed(self, records: list[dict[str, Any]]) -> None:
        # No traceback: the cause is the disk, and it is the same for every batch.
        log.error("audit_write_failed", records=len(records))
        if self._failing_since is None:
            self._failing_since = self._now()
            self._observer.writable(False)
        self._episode_batches += 1
        self._episode_records += len(records)
        self._failed_batches += 1
        self._failed_records += len(records)
        self._observer.failed(len(records))

    def _writes_inline(self, records: list[dict[str, Any]]) -> bool:
        # Only the plain case runs on the loop: a file (stdout may be a slow pipe), a small
        # batch, no fsync per batch, and none of the rare steps that open, move or fsync files
        # (a reopen after SIGHUP, a checkpoint, a rotation that is due).
        return (
            self._path is not None
            and self._fsync != "batch"
            and self._fd is not None
            and not self._reopen_requested
            and len(records) <= _INLINE_MAX_RECORDS
            and self._size + _INLINE_MAX_RECORDS * 1024 < self._max_bytes
            and not any(data.get("event") == CHECKPOINT_EVENT for data in records)
        )

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        # Runs on the loop or in the writer thread, one at a time (the `_flushing` flag): it
        # owns the chain and the file.
        if self._path is not None:
            if self._closed:
                raise ValueError("audit sink is closed")
            if self._fd is None or self._reopen_requested:
                self._reopen_requested = False
                self._swap_file(None, "reopened")
            self._follow_path()
        text, lines, seq, last_mac, checkpoints = self._lines(records)
        if not lines:
            return
        if self._path is None:
            sys.stdout.buffer.write(text)
            sys.stdout.flush()
        else:
            self._append(text)
        self._written(lines, text, seq, last_mac, checkpoints)

    def _lines(
        self, records: list[dict[str, Any]]
    ) -> tuple[bytes, int, int, bytes, list[tuple[int, bytes, dict[str, Any]]]]:
        """The chained text of a batch (with the records the sink owes first), how many lines
        it holds, the chain's next seq and last MAC after it, and its checkpoints. The chain
        itself does not move (`_written` moves it once the text is written)."""
        owed = list(self._notes)
        if self._failing_since is not None:
            owed.append(
                {
                    "event": WRITE_RECOVERED_EVENT,
                    "time": self._now(),
                    "failing_since": self._failing_since,
                    "failed_batches": self._episode_batches,
                    "failed_records": self._episode_records,
                }
            )
        if owed:
            records = owed + records
        if not records:
            return b"", 0, 0, b"", []
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
        if self._newline_owed:
            text = b"\n" + text
        return text, len(records), seq, prev, checkpoints

    def _written(
        self,
        lines: int,
        text: bytes,
        seq: int,
        last_mac: bytes,
        checkpoints: list[tuple[int, bytes, dict[str, Any]]],
    ) -> None:
        # Only now is the chain past these lines: a failed write leaves no gap in `seq`, and
        # nothing of it on disk to fork the chain later.
        self._state.advance(seq, last_mac)
        self._observer.written(lines, len(text))
        self._notes.clear()
        self._newline_owed = False
        if self._failing_since is not None:
            log.warning("audit_write_recovered", failed_batches=self._episode_batches)
            self._failing_since = None
            self._episode_batches = self._episode_records = 0
            self._observer.writable(True)
        chain_id = self._state.chain_id
        for cp_seq, cp_mac, data in checkpoints:
            self._append_checkpoint(cp_seq, cp_mac, data)
            self._last_checkpoint = ChainCheckpoint(
                chain_id, cp_seq, cp_mac.hex(), str(data["time"]), bool(data.get("final"))
            )
        if self._fd is not None and self._size >= self._max_bytes:
            self._swap_file(
                rotated_name(self._path, self._clock(), seq) if self._path else None, "rotated"
            )

    def _append(self, text: bytes) -> None:
        """Write `text` whole (and fsync it under the batch policy), or leave the file as it
        was and raise OSError."""
        fd = self._fd
        if fd is None:
            raise ValueError("audit sink is closed")
        view = memoryview(text)
        written = 0
        try:
            while written < len(view):
                # A short write (the disk filled mid-batch) is followed by one that raises.
                written += os.write(fd, view[written:])
            if self._fsync == "batch":
                os.fdatasync(fd)
        except OSError:
            self._cut_back(fd, written)
            raise
        self._size += len(text)
        self._dirty = True

    def _cut_back(self, fd: int, written: int) -> None:
        # O_APPEND put this batch's bytes at the end: the file's length before them is its
        # length now less what was written (a rotator's copytruncate may have shortened it).
        # After a failed fsync the page cache cannot be trusted either (PostgreSQL's
        # "fsyncgate"): the batch is cut off and failed, never half kept.
        try:
            good = max(0, os.fstat(fd).st_size - written)
            os.ftruncate(fd, good)
            self._size = good
        except OSError:
            # The cut failed too: reopen before the next batch, which ends the torn line and
            # records where it was (the repair done at start).
            log.error("audit_cut_back_failed", path=str(self._path))  # noqa: TRY400
            self._close_fd()

    def _follow_path(self) -> None:
        # The path must still name the open file (device and inode, as the SQLite vault
        # checks its file): otherwise records would go to a deleted inode, invisible to
        # everyone, or to a file a rotator already moved away.
        assert self._path is not None  # noqa: S101 - only called for a file sink
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == self._ident:
            self._size = st.st_size  # a copytruncate rotation shortens the file
            return
        assert self._fd is not None  # noqa: S101 - opened by the caller
        links = os.fstat(self._fd).st_nlink
        cause = "deleted" if links == 0 else "replaced" if st is not None else "moved"
        # Re-create (or take up) the path and go on: the records after this point are on
        # disk where an operator looks, and the first of them says what happened. The
        # chain goes on (same id, next seq), so a moved file and this one verify together.
        self._files_replaced[cause] = self._files_replaced.get(cause, 0) + 1
        self._observer.file_replaced(cause)
        # Owed before the new file is opened: if that fails, the next batch opens it and the
        # record still goes first.
        self._notes.insert(
            0,
            {
                "event": FILE_REPLACED_EVENT,
                "time": self._now(),
                "cause": cause,
                "previous_seq": self._state.next_seq - 1,
            },
        )
        event = "audit_file_replaced"
        if cause == "deleted":
            log.error(event, cause=cause, path=str(self._path), next_seq=self._state.next_seq)
        else:
            log.warning(event, cause=cause, path=str(self._path), next_seq=self._state.next_seq)
        self._swap_file(None, cause)

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._newline_owed:
            # Leaving a torn file before any batch ended its last line: end it now, so a line
            # added later by anyone starts a line of its own (the repair record is still owed).
            self._newline_owed = False
            with contextlib.suppress(OSError):
                os.write(fd, b"\n")
        try:
            if self._fsync != "never" and self._dirty:
                os.fdatasync(fd)
        except OSError:
            self._fsync_failures += 1
            self._observer.fsync_failed()
            log.error("audit_fsync_failed", path=str(self._path))  # noqa: TRY400
        finally:
            self._dirty = False
            os.close(fd)

    def _swap_file(self, move_to: Path | None, how: str) -> None:
        # Close the live file, optionally move it aside (size rotation), open the path afresh.
        assert self._path is not None  # noqa: S101 - only called for a file sink
        left, left_name = self._ident, self._path
        self._close_fd()
        if move_to is not None:
            os.replace(self._path, move_to)
            left_name = move_to
            log.info("audit_file_rotated", rotated_to=str(move_to), next_seq=self._state.next_seq)
        self._open_file(self._path)
        next_seq = self._state.next_seq
        if left != (-1, -1) and self._ident != left and next_seq > self._file_first_seq:
            # The chain goes on in another file: the registry learns where the records before
            # went (with the next checkpoint), so a file that disappears later is named.
            self._files_owed.append(
                ChainFile(
                    self.chain_id,
                    self._file_first_seq,
                    next_seq - 1,
                    str(left_name.absolute()),
                    how,
                    self._now(),
                )
            )
            self._file_first_seq = next_seq

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
            await self._register()  # anything still owed from a failed attempt
            return
        await self.write(
            SystemEvent(CHECKPOINT_EVENT, self._now(), {"final": final, "kid": self._kid})
        )
        self._checkpointed_seq = self._state.next_seq - 1
        await self._register()

    async def _checkpoint_every(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_interval_s)
            with contextlib.suppress(AuditWriteError):
                await self.checkpoint()

    async def _sync_every(self) -> None:
        # The interval policy: fsync a duplicate of the descriptor in a thread, so writes go on
        # meanwhile and a rotation closing the original cannot hand the number to another file.
        while True:
            await asyncio.sleep(self._fsync_interval_s)
            if not self._dirty or self._fd is None:
                continue
            self._dirty = False
            try:
                fd = os.dup(self._fd)
            except OSError:
                continue  # closed meanwhile by a rotation, which synced it
            try:
                await asyncio.to_thread(os.fdatasync, fd)
            except OSError:
                self._fsync_failures += 1
                self._observer.fsync_failed()
                self._dirty = True
                log.error("audit_fsync_failed", path=str(self._path))  # noqa: TRY400
            finally:
                os.close(fd)

    async def close(self) -> None:
        """Write the final checkpoint and close. A failed final checkpoint is logged."""
        for task in (self._ticker, self._syncer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._ticker = self._syncer = None
        if not self._closed and self._loop is not None:
            try:
                await self.checkpoint(final=True)
            except AuditWriteError:
                log.error("audit_final_checkpoint_failed")  # noqa: TRY400
        self._closed = True
        if self._fd is not None:
            await asyncio.to_thread(self._close_fd)
        if self._thread is not None:
            # Its last batch is written (close waited for the final checkpoint): no wait here.
            self._thread.stop()
            self._thread = None


class _WriterThread:
    """The sink's own thread for the writes that must not block the loop: one job at a time,
    in order, each answered on the loop by one `call_soon_threadsafe` (no executor, no
    concurrent.futures.Future and its condition, no chained callbacks per batch).

    Not the loop's default pool: its threads, once two exist, take turns on every batch (each
    turn a cold thread woken, more GIL hand-offs: under the proxy's load a third more context
    switches per message), and any other work queued there would delay an audit record that a
    request is waiting for. A daemon: a process that exits without closing its sink (a crash,
    in effect) does not wait for it; the next open repairs a torn last line."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[
            tuple[asyncio.Future[None], Callable[..., None], tuple[Any, ...]] | None
        ] = queue.SimpleQueue()
        self._given = 0  # jobs given and not yet answered (counted on the loop)
        self._thread = threading.Thread(target=self._serve, name="audit-writer", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        """A job given is not yet answered on the loop."""
        return self._given > 0

    def run(self, fn: Callable[..., None], *args: Any) -> asyncio.Future[None]:
        """`fn(*args)` in the thread; the future is settled on the loop with its outcome."""
        done: asyncio.Future[None] = self._loop.create_future()
        self._given += 1
        self._jobs.put((done, fn, args))
        return done

    def _answered(self, done: asyncio.Future[None], error: BaseException | None) -> None:
        # On the loop, whether or not the caller still waits.
        self._given -= 1
        if done.cancelled():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def stop(self) -> None:
        """End the thread after the jobs already given (not waited for)."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            done, fn, args = job
            error: BaseException | None = None
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                error = exc
            try:
                self._loop.call_soon_threadsafe(self._answered, done, error)
            except RuntimeError:
                return  # the loop is closed: nobody is waiting


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
