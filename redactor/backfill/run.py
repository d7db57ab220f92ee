"""`redactor redact`: redact stored files with the proxy's codecs, detection and vault.

One way per input: read pieces (formats.py) -> scan a batch of items (scan.py, in this
process or in `--jobs` worker processes) -> one `tokenize_many` call per item with values ->
rebuild the item -> write every piece in order. Bytes that are not a value are written as they
came. A file output is written beside its target (`NAME.redact-partial`) and renamed over it
only when the input is done, so an interrupted run never leaves a half-written file where the
output belongs (with `--in-place`, the input stays as it was). Every few MB the output is
synced and a checkpoint (`NAME.redact-checkpoint`) records how far input and output got;
`--resume` continues from there.

The run is audited before it touches anything (`redact_files`, phase `started`: operator,
input names, tenant) and at its end (`finished`/`failed` with the counts). No value is ever
written to a log line, an error, the progress output, a file name or the audit record.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, TextIO, TypeVar

import structlog

from redactor.audit import AuditSink, AuditWriteError, SystemEvent, now_iso
from redactor.audit.registration import LazyStoreRegistry
from redactor.backfill.formats import FORMATS, Piece, binary_kind, detect_format, read_pieces
from redactor.backfill.progress import Progress, Tally, summary_line
from redactor.backfill.scan import (
    ItemFound,
    RangeFound,
    detector_for,
    rebuild_item,
    scan_items,
    scan_jsonl_range,
)
from redactor.backfill.workers import start_scan_pool
from redactor.detection import DetectionOptions, Detector
from redactor.errors import RedactorError, VaultTimeoutError
from redactor.redaction.rewrite import Rewriter, TokenKey, finding_value
from vault.config import VaultConfig
from vault.errors import VaultError, VaultUnavailableError

__all__ = ["AuditTarget", "RedactRequest", "RedactUsageError", "operator_name", "redact_files"]

log = structlog.get_logger()

AUDIT_EVENT = "redact_files"
PARTIAL_SUFFIX = ".redact-partial"
CHECKPOINT_SUFFIX = ".redact-checkpoint"
CHECKPOINT_VERSION = 2  # 2: samples of the input's bytes
_SNIFF_BYTES = 64 * 1024


class RedactUsageError(RedactorError):
    """The command line asks for something the run cannot do; nothing was touched."""

    status = 400
    code = "redact_usage"
    message = "invalid redact command line"


class ResumeError(RedactorError):
    status = 409
    code = "resume_mismatch"
    message = (
        "the checkpoint does not belong to this input (it changed since): run without --resume"
    )


class InputChangedError(RedactorError):
    status = 409
    code = "input_changed"
    message = "the input changed while it was being redacted"


class TokenVault(Protocol):
    async def tokenize_many(
        self, tenant: str, items: Sequence[tuple[str, str]]
    ) -> Sequence[object]: ...


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """Where the run's audit records go, and the key that chains them."""

    path: Path
    key: bytes = field(repr=False)
    # The vault's chain registry (`registry_for`): the run's chain is recorded there.
    registry: LazyStoreRegistry | None = None


def registry_for(vault_config: VaultConfig | None) -> LazyStoreRegistry | None:
    """The chain registry in the vault a run uses, opened on first use; None without one."""
    if vault_config is None:
        return None

    async def opener() -> Any:
        from vault.cli import open_existing_store

        return await open_existing_store(vault_config)

    return LazyStoreRegistry(opener)


_Result = TypeVar("_Result")


@dataclass(slots=True)
class RunAudit:
    """The audit chain of one helpdesk backfill run (`backfill zendesk`, `backfill slack`),
    registered in the vault's chain registry like every other command's."""

    sink: AuditSink
    registry: LazyStoreRegistry | None
    event: str
    details: dict[str, Any]

    @classmethod
    async def start(
        cls,
        vault_config: VaultConfig | None,
        trail: Path,
        key: bytes,
        *,
        command: str,
        event: str,
        details: dict[str, Any],
        dry_run: bool,
    ) -> RunAudit:
        """Open the chain and write the run's `started` record. Raises AuditWriteError (then
        nothing was opened and the run must not start)."""
        registry = registry_for(vault_config)
        sink = AuditSink(
            trail,
            key,
            checkpoint_interval_s=0,
            registry=registry,
            writer="cli",
            command=command,
            # A dry run changes nothing: its chain may be registered when it closes.
            registry_required=not dry_run,
        )
        try:
            await sink.open()
            await sink.write(SystemEvent(event, now_iso(), {**details, "phase": "started"}))
        except AuditWriteError:
            await sink.close()
            if registry is not None:
                await registry.close()
            raise
        return cls(sink, registry, event, details)

    async def finish(self, code: int, failure: str | None, counts: dict[str, Any]) -> None:
        """Write the run's last record (its exit code, counts and error), then close."""
        record = {
            **self.details,
            "phase": "finished" if code == 0 else "failed",
            "exit_code": code,
            **counts,
        }
        if failure is not None:
            record["error"] = failure
        try:
            await self.sink.write(SystemEvent(self.event, now_iso(), record))
        finally:
            await self.sink.close()
            if self.registry is not None:
                await self.registry.close()


@dataclass(frozen=True, slots=True)
class RedactRequest:
    """What to redact and how: the command line, checked by `redact_files`."""

    inputs: tuple[str, ...]
    output: str | None = None
    in_place: bool = False
    fmt: str = "auto"
    tenant: str = "default"
    jobs: int = 1
    dry_run: bool = False
    resume: bool = False
    options: DetectionOptions = field(default_factory=DetectionOptions)
    vault_timeout_s: float = 30.0
    # Items are scanned in batches of about this many bytes (one worker task each).
    batch_bytes: int = 1024 * 1024
    # The output is synced and a checkpoint written after about this many input bytes.
    checkpoint_bytes: int = 32 * 1024 * 1024


def operator_name() -> str:
    """`user@host` of the process: the account's name from the password database, not from
    the environment (which the caller controls)."""
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        user = f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def masked_name(detector: Detector, name: str) -> str:
    """An input's name with any value in it replaced by its type (a file may be named
    after what it holds): what progress lines and audit records show."""
    findings = detector.find(name)
    for f in sorted(findings, key=lambda f: f.start, reverse=True):
        name = name[: f.start] + f"[{f.entity}]" + name[f.end :]
    return name


def _check(request: RedactRequest) -> None:
    if not request.inputs:
        raise RedactUsageError("name at least one input")
    if request.fmt != "auto" and request.fmt not in FORMATS:
        raise RedactUsageError("unknown --format")
    if request.jobs < 1:
        raise RedactUsageError("--jobs must be at least 1")
    if request.in_place and request.output is not None:
        raise RedactUsageError("use -o OUTPUT or --in-place, not both")
    stdin = "-" in request.inputs
    if stdin and len(request.inputs) > 1:
        raise RedactUsageError("'-' (standard input) must be the only input")
    if stdin and (request.in_place or request.resume):
        raise RedactUsageError("standard input cannot be redacted in place or resumed")
    if request.output == "-" and (len(request.inputs) > 1 or request.resume):
        raise RedactUsageError("standard output takes one input and cannot be resumed")
    if not (request.dry_run or request.in_place or request.output is not None or stdin):
        raise RedactUsageError("say where the output goes: -o OUTPUT, --in-place or --dry-run")
    several = len(request.inputs) > 1
    if several and request.output not in (None, "-") and not Path(request.output).is_dir():
        raise RedactUsageError("with several inputs, -o must be an existing directory")
    if request.output not in (None, "-") and not request.dry_run:
        out = Path(request.output)
        if request.output.endswith(("/", os.sep)) and not out.is_dir():
            raise RedactUsageError("-o names a directory that does not exist")
        if not out.is_dir() and not out.parent.is_dir():
            raise RedactUsageError("the directory of -o OUTPUT does not exist")
        if out.is_dir():
            names = [Path(name).name for name in request.inputs]
            if len(set(names)) < len(names):
                # Each would be written to the same OUTPUT/NAME, the later over the earlier.
                raise RedactUsageError(
                    "two inputs have the same file name: -o DIR cannot hold both"
                )
    for name in request.inputs:
        if name != "-" and not Path(name).is_file():
            raise RedactUsageError("an input is not a readable file")
        if name != "-":
            _refuse_binary(name, _head(name))


def _head(name: str) -> bytes:
    try:
        with open(name, "rb") as f:
            return f.read(16)
    except OSError:
        raise RedactUsageError("an input is not a readable file") from None


def _refuse_binary(name: str, head: bytes) -> None:
    kind = binary_kind(head)
    if kind is not None:
        # Its values cannot be seen: copying it through would report a clean file.
        raise RedactUsageError(
            f"an input is a {kind} file, whose values redact cannot read: extract or "
            "decompress it first (e.g. zcat FILE | redactor redact - ...)"
        )


def _target(request: RedactRequest, name: str) -> Path | None:
    """The file an input's output goes to; None for standard output (or a dry run)."""
    if request.dry_run:
        return None
    if request.in_place:
        # Through a symbolic link, the file it names is redacted: replacing the link with a
        # clean copy would leave every value in the file it pointed to.
        return Path(os.path.realpath(name))
    if request.output in (None, "-"):
        return None
    out = Path(request.output)
    return out / Path(name).name if out.is_dir() else out


def _beside(target: Path, suffix: str, detector: Detector | None = None) -> Path:
    # A file may be named after what it holds: the names we make never repeat a value.
    name = masked_name(detector, target.name) if detector is not None else target.name
    return target.with_name(name + suffix)


def _open_partial(path: Path, like: os.stat_result | None) -> BinaryIO:
    """A new, empty output file with the input's permission bits from the start (an output
    holds everything of its input but the values: a private file's copy must not be readable
    by others while it is written). Standard input's output gets the umask's default."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if like else 0o666)
    try:
        if like is not None:
            # Also for a partial file left by an earlier run, which keeps its old mode.
            os.fchmod(fd, stat.S_IMODE(like.st_mode) & 0o777)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def _keep_owner(partial: Path, like: os.stat_result) -> bool:
    """Give `partial` the owner and group of the file it replaces; False when the system
    does not let this user (then the run says so: the file changes hands)."""
    try:
        os.chown(partial, like.st_uid, like.st_gid)
    except PermissionError:
        with contextlib.suppress(PermissionError):
            os.chown(partial, -1, like.st_gid)  # a group this user is in
    now = os.stat(partial)
    return (now.st_uid, now.st_gid) == (like.st_uid, like.st_gid)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system can sync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(slots=True)
class _Checkpoint:
    offset: int
    state: str
    output_offset: int
    tally: Tally
    # SHA-256 of the input's last bytes before `offset`: a resume checks they are the same.
    before: str = ""


_SAMPLE_BYTES = 64 * 1024


def _sample(fd: int, end: int) -> str:
    """SHA-256 of the input's bytes in [end - 64 KiB, end) (read without moving the file's
    position): with size and mtime, what tells an input edited since from the same one."""
    start = max(0, end - _SAMPLE_BYTES)
    return hashlib.sha256(os.pread(fd, end - start, start)).hexdigest()


def _identity(st: os.stat_result, fmt: str, fd: int) -> dict[str, Any]:
    return {
        "input_size": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "format": fmt,
        "input_head_sha256": _sample(fd, min(st.st_size, _SAMPLE_BYTES)),
    }


def _read_checkpoint(path: Path, identity: dict[str, Any]) -> _Checkpoint | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise ResumeError() from None
    if data.get("version") != CHECKPOINT_VERSION or any(
        data.get(k) != v for k, v in identity.items()
    ):
        raise ResumeError()
    try:
        return _Checkpoint(
            int(data["offset"]),
            str(data["state"]),
            int(data["output_offset"]),
            Tally.from_data(data["tally"]),
            str(data["input_before_sha256"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ResumeError() from None  # a damaged checkpoint is not applied


def _write_checkpoint(path: Path, identity: dict[str, Any], cp: _Checkpoint) -> None:
    data = {
        "version": CHECKPOINT_VERSION,
        **identity,
        "offset": cp.offset,
        "state": cp.state,
        "output_offset": cp.output_offset,
        "tally": cp.tally.to_data(),
        "input_before_sha256": cp.before,
    }
    tmp = _beside(path, ".tmp")
    # Owner-only: it holds digests of the input's bytes (64 KiB samples of a file of at least
    # a checkpoint's size), which no one but the input's reader needs.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _batches(pieces: Iterator[Piece], batch_bytes: int) -> Iterator[list[Piece]]:
    batch: list[Piece] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece.raw)
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class _Run:
    """One `redact` run: the resources its inputs share (event loop, vault, workers)."""

    def __init__(
        self,
        request: RedactRequest,
        runner: asyncio.Runner,
        tokens: TokenVault | None,
        pool: concurrent.futures.Executor | None,
        stdout: BinaryIO,
        stderr: TextIO,
        tty: bool,
    ) -> None:
        self.request = request
        self.runner = runner
        self.tokens = tokens
        self.pool = pool
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
        self.detector = detector_for(request.options)
        self.rewriter = Rewriter()

    # --- the CPU half ---------------------------------------------------------------------

    def _scan(self, batch: list[Piece]) -> Any:
        items = [(p.raw, p.kind) for p in batch if p.kind is not None]
        if self.pool is None:
            # --jobs 1: the event loop is idle between our own vault calls, so the scan runs
            # here, without a pickle round trip.
            return _Done(scan_items(self.request.options, items))
        return self.pool.submit(scan_items, self.request.options, items)

    def _scanned(self, batches: Iterator[list[Piece]]) -> Iterator[tuple[list[Piece], Any]]:
        """(batch, scan result) in input order, with up to 2 x jobs batches in flight."""
        ahead = 1 if self.pool is None else 2 * self.request.jobs
        pending: collections.deque[tuple[list[Piece], Any]] = collections.deque()
        try:
            for batch in batches:
                pending.append((batch, self._scan(batch)))
                if len(pending) >= ahead:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:
            for _, future in pending:
                future.cancel()

    # --- the vault ------------------------------------------------------------------------

    async def _tokenize(self, keys: list[TokenKey]) -> list[str]:
        if self.tokens is None:  # a dry run never gets here
            raise RedactorError("no vault is open")
        try:
            async with asyncio.timeout(self.request.vault_timeout_s):
                tokens = await self.tokens.tokenize_many(self.request.tenant, keys)
        except TimeoutError:
            raise VaultTimeoutError() from None
        except VaultError:
            raise
        except OSError:
            raise VaultUnavailableError() from None
        return [str(t) for t in tokens]

    def _redact_batch(
        self, batch: list[Piece], result: tuple[list[ItemFound], int]
    ) -> tuple[bytes, Tally]:
        found, as_text = result
        tally = Tally(items_as_text=as_text)
        item_pieces = [i for i, p in enumerate(batch) if p.kind is not None]
        tally.items = len(item_pieces)
        tally.bytes_read = sum(len(p.raw) for p in batch)
        out = [p.raw for p in batch]
        for item in found:
            at = item_pieces[item.number]
            out[at] = self._redact_item(batch[at].raw, item, tally)
        return b"".join(out), tally

    def _redact_item(self, raw: bytes, item: ItemFound, tally: Tally) -> bytes:
        """The item with its values replaced by tokens (as it was on a dry run), counted."""
        for _, findings, _ in item.found:
            tally.values.update(f.entity for f in findings if f.lead)
        if self.request.dry_run:
            tally.items_changed += 1
            return raw
        keys = dict.fromkeys(
            (f.entity, finding_value(f, span))
            for _, findings, spans in item.found
            for f, span in zip(findings, spans, strict=True)
        )
        ordered = list(keys)
        # One vault round trip per item: what the proxy does per message.
        tokens = self.runner.run(self._tokenize(ordered))
        token_of = dict(zip(ordered, tokens, strict=True))
        new = rebuild_item(self.rewriter, raw, item, token_of)
        if new != raw:
            tally.items_changed += 1
        return new

    # --- JSON Lines with workers: each reads its own byte range ---------------------------

    def _scanned_ranges(
        self, pool: concurrent.futures.Executor, path: str, start: int, total: int
    ) -> Iterator[RangeFound]:
        """Each range's scan, in file order, with up to 2 x jobs ranges in flight. Ranges are
        cut every `batch_bytes` and moved by the workers to the next line start."""
        step = self.request.batch_bytes
        nominal = range(start, total, step)
        pending: collections.deque[Any] = collections.deque()
        try:
            for at in nominal:
                pending.append(
                    pool.submit(
                        scan_jsonl_range,
                        self.request.options,
                        path,
                        at,
                        min(at + step, total),
                        at == start,
                    )
                )
                if len(pending) >= 2 * self.request.jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def _redact_range(self, source: BinaryIO, scanned: RangeFound) -> tuple[bytes, Tally]:
        """The range's bytes as read by this process, with each item that holds values
        rebuilt: the bytes between them are copied as they are."""
        source.seek(scanned.start)
        data = source.read(scanned.end - scanned.start)
        if len(data) != scanned.end - scanned.start:
            raise InputChangedError()
        tally = Tally(items=scanned.items, items_as_text=scanned.as_text, bytes_read=len(data))
        if not scanned.found:
            return data, tally
        out: list[bytes] = []
        cursor = 0
        for offset, length, item in scanned.found:
            out.append(data[cursor:offset])
            out.append(self._redact_item(data[offset : offset + length], item, tally))
            cursor = offset + length
        out.append(data[cursor:])
        return b"".join(out), tally

    def _redacted(
        self,
        source: BinaryIO,
        fmt: str,
        start: _Checkpoint,
        total: int | None,
        path: str | None,
    ) -> Iterator[tuple[bytes, Tally, str]]:
        """(output bytes, counts, reader state after them) for each batch, in input order."""
        if self.pool is not None and fmt == "jsonl" and path is not None and total is not None:
            # Workers read their own ranges: this process only copies bytes and rebuilds the
            # few items with values (issue 24: it was parsing and pickling every item).
            at = start.offset
            for scanned in self._scanned_ranges(self.pool, path, start.offset, total):
                if scanned.start != at:
                    raise InputChangedError()  # the ranges no longer tile the file
                data, tally = self._redact_range(source, scanned)
                at = scanned.end
                yield data, tally, ""
            if at != total:
                raise InputChangedError()
            return
        pieces = read_pieces(fmt, source, start.offset, start.state)
        for batch, result in self._scanned(_batches(pieces, self.request.batch_bytes)):
            data, tally = self._redact_batch(batch, result)
            yield data, tally, batch[-1].state

    # --- one input ------------------------------------------------------------------------

    def redact_input(self, name: str, shown: str) -> Tally:
        """Redact one input to its target. Raises RedactorError, VaultError or OSError."""
        request = self.request
        target = _target(request, name)
        if name == "-":
            source: BinaryIO = sys.stdin.buffer
            head = source.peek(_SNIFF_BYTES)[:_SNIFF_BYTES] if hasattr(source, "peek") else b""
            _refuse_binary(name, head)
            fmt = request.fmt if request.fmt != "auto" else detect_format("", head)
            total = None
            identity: dict[str, Any] = {}
            source_stat: os.stat_result | None = None
        else:
            source = Path(name).open("rb")  # noqa: SIM115 - closed in the finally below
            fmt = request.fmt
            if fmt == "auto":
                fmt = detect_format(name, source.read(_SNIFF_BYTES))
                source.seek(0)
            source_stat = os.fstat(source.fileno())
            total = source_stat.st_size
            identity = _identity(source_stat, fmt, source.fileno())
            if request.in_place and source_stat.st_nlink > 1:
                print(
                    f"redactor: {shown}: {source_stat.st_nlink - 1} other hard link(s) to this "
                    "file keep the original bytes; redact those names too",
                    file=self.stderr,
                )
        try:
            path = None if name == "-" else name
            return self._redact_stream(
                source, fmt, target, shown, total, identity, source_stat, path
            )
        finally:
            if name != "-":
                source.close()

    def _redact_stream(
        self,
        source: BinaryIO,
        fmt: str,
        target: Path | None,
        shown: str,
        total: int | None,
        identity: dict[str, Any],
        source_stat: os.stat_result | None = None,
        path: str | None = None,
    ) -> Tally:
        request = self.request
        checkpoint = partial = None
        start = _Checkpoint(0, "", 0, Tally())
        sink: IO[bytes] | None = None
        if target is not None:
            partial = _beside(target, PARTIAL_SUFFIX, self.detector)
            checkpoint = _beside(target, CHECKPOINT_SUFFIX, self.detector)
            resumed = _read_checkpoint(checkpoint, identity) if request.resume else None
            if resumed is not None and resumed.before != _sample(source.fileno(), resumed.offset):
                raise ResumeError()  # same size and time, other bytes: edited, time put back
            if resumed is not None and partial.exists():
                start = resumed
                sink = partial.open("r+b")
                sink.truncate(start.output_offset)
                sink.seek(start.output_offset)
                print(
                    f"redactor: {shown}: resuming at {start.offset / 1e6:.1f} MB "
                    f"({start.tally.items} items done)",
                    file=self.stderr,
                )
            else:
                if request.resume:
                    print(
                        f"redactor: {shown}: no checkpoint to resume from; starting at the "
                        "beginning",
                        file=self.stderr,
                    )
                checkpoint.unlink(missing_ok=True)
                sink = _open_partial(partial, source_stat)
        elif not request.dry_run:
            sink = self.stdout
        progress = Progress(self.stderr, shown, total, tty=self.tty, start=start.tally)
        tally = Tally()
        tally.add(start.tally)
        offset, output_offset, synced_at = start.offset, start.output_offset, start.offset
        try:
            for data, batch_tally, state in self._redacted(source, fmt, start, total, path):
                if sink is not None:
                    sink.write(data)
                offset += batch_tally.bytes_read
                output_offset += len(data)
                tally.add(batch_tally)
                progress.advance(batch_tally)
                if (
                    checkpoint is not None
                    and sink is not None
                    and offset - synced_at >= request.checkpoint_bytes
                ):
                    sink.flush()
                    os.fsync(sink.fileno())
                    _write_checkpoint(
                        checkpoint,
                        identity,
                        _Checkpoint(
                            offset,
                            state,
                            output_offset,
                            tally,
                            _sample(source.fileno(), offset) if identity else "",
                        ),
                    )
                    synced_at = offset
            if sink is not None:
                sink.flush()
                if target is not None:
                    os.fsync(sink.fileno())
        finally:
            progress.close()
            if sink is not None and target is not None:
                sink.close()
        if target is not None and partial is not None and checkpoint is not None:
            if request.in_place:
                original = os.stat(target)
                if not _keep_owner(partial, original):
                    print(
                        f"redactor: {shown}: its owner or group could not be kept "
                        "(only its owner or root can); the redacted file is this user's",
                        file=self.stderr,
                    )
                # After chown, which clears set-id bits.
                os.chmod(partial, stat.S_IMODE(original.st_mode))
            os.replace(partial, target)
            checkpoint.unlink(missing_ok=True)
            _fsync_dir(target.parent)
        return tally


class _Done:
    """An already computed result with a future's `result`/`cancel`."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        return self._value

    def cancel(self) -> bool:
        return False


def _redact_all(
    run: _Run, inputs: Sequence[str], shown: Sequence[str], total: Tally, stderr: TextIO
) -> tuple[int, str | None]:
    """Redact each input in turn, adding to `total`; (exit code, error code). The first
    input that fails stops the run: its output is not replaced."""
    for name, name_shown in zip(inputs, shown, strict=True):
        try:
            total.add(run.redact_input(name, name_shown))
        except (RedactorError, VaultError, OSError) as exc:
            # Fixed texts (ours, the vault's; OSError without its file name), never input.
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            print(f"redactor: {name_shown}: {reason}; its output was not replaced", file=stderr)
            return 1, getattr(exc, "code", None) or type(exc).__name__
        except Exception:  # a bug of ours: its message may quote input
            # The traceback goes to the log, whose last processor masks anything value-shaped;
            # the terminal gets no exception text (a third-party message can quote its input).
            log.exception("redact_failed")
            print(
                f"redactor: {name_shown}: internal error; its output was not replaced", file=stderr
            )
            return 1, "internal_error"
    return 0, None


async def open_tokens(config: VaultConfig) -> tuple[Any, Any]:
    """(the proxy's adapter over the vault, the vault to close). Raises the vault's start-up
    errors (VaultMissingError, VaultConfigError, VaultUnavailableError, ...)."""
    from redactor.runtime.entities import VaultAdapter
    from vault import open_vault

    # Never creates a vault: a backfill must use the one the proxy uses, or stop.
    vault = await open_vault(config, create=False)
    return VaultAdapter(vault), vault


async def run_backfill(
    *,
    source: str,
    event: str,
    vault_config: VaultConfig,
    audit_path: Path,
    audit_key: bytes,
    details: dict[str, Any],
    dry_run: bool,
    walk: Callable[[Any, Any, AuditSink], Awaitable[_Result]],
    counts: Callable[[_Result | None], dict[str, Any]],
    stops: tuple[type[BaseException], ...],
    err: TextIO,
) -> tuple[int, _Result | None]:
    """A helpdesk backfill's run, shared by zendesk and slack: its audit chain opened, the
    vault opened (not on a dry run), `walk(tokens, store, sink)` run, the run's end audited with
    `counts` of its result. (exit code, result): 0 done, 1 stopped by one of `stops`, 2
    nothing could start (result None), 130 interrupted."""
    try:
        run = await RunAudit.start(
            vault_config,
            audit_path,
            audit_key,
            command=f"backfill {source}",
            event=event,
            details=details,
            dry_run=dry_run,
        )
    except AuditWriteError as exc:
        print(
            f"redactor: cannot start: cannot write the audit record ({exc}); nothing was changed",
            file=err,
        )
        return 2, None
    vault = None
    result: _Result | None = None
    code, failure = 130, "interrupted"
    try:
        tokens = store = None
        if not dry_run:
            tokens, vault = await open_tokens(vault_config)
            store = vault.store
        result = await walk(tokens, store, run.sink)
        code, failure = 0, None
    except (RedactorError, VaultError, *stops) as exc:
        # Our errors' texts are fixed (with a fixed detail: what failed, what to do); any
        # other exception is named by its type only.
        reason = str(exc) if isinstance(exc, RedactorError | VaultError) else type(exc).__name__
        print(f"redactor: {source} backfill stopped: {reason}", file=err)
        code, failure = 1, getattr(exc, "code", None) or type(exc).__name__
    finally:
        if vault is not None:
            await vault.close()
        await run.finish(code, failure, counts(result))
    return code, result


def redact_files(
    request: RedactRequest,
    *,
    vault_config: VaultConfig | None,
    audit: AuditTarget,
    stdout: BinaryIO,
    stderr: TextIO,
    tty: bool,
    tokens: TokenVault | None = None,
    pool: concurrent.futures.ProcessPoolExecutor | None = None,
) -> int:
    """Run `redactor redact`; the exit code: 0 done, 1 an input failed (outputs already
    done stay, the failed one is untouched and resumable), 2 nothing could start.

    `tokens` is an open token source to use instead of opening `vault_config`'s vault (a
    test's stand-in); it must work on any event loop. `pool` is the scan workers for
    `--jobs` above 1 when the caller started them already (`workers.start_scan_pool`); the
    run shuts it down.
    """
    try:
        _check(request)
    except RedactorError as exc:
        print(f"redactor: {exc}", file=stderr)
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        return 2
    started = time.monotonic()
    detector = detector_for(request.options)
    shown = [masked_name(detector, n) for n in request.inputs]
    details: dict[str, Any] = {
        "operator": operator_name(),
        "inputs": shown,
        # Where the redacted bytes went: a file or folder, "-" (standard output), or null
        # (--in-place: over each input; --dry-run: nowhere).
        "output": (
            masked_name(detector, request.output)
            if request.output is not None
            else ("-" if request.inputs == ("-",) and not request.dry_run else None)
        ),
        "tenant": request.tenant,
        "format": request.fmt,
        "dry_run": request.dry_run,
        "in_place": request.in_place,
        "resume": request.resume,
        "jobs": request.jobs,
    }
    total = Tally()
    if request.jobs > 1 and pool is None:
        pool = start_scan_pool(request.jobs)
    elif request.jobs == 1 and pool is not None:
        pool.shutdown(cancel_futures=True)
        pool = None
    with asyncio.Runner() as runner:
        # A dry run needs no vault: its chain is registered at close if the vault is there.
        sink = AuditSink(
            audit.path,
            audit.key,
            checkpoint_interval_s=0,
            registry=audit.registry,
            writer="cli",
            command="redact",
            registry_required=not request.dry_run,
        )
        try:
            runner.run(sink.open())
            runner.run(
                sink.write(SystemEvent(AUDIT_EVENT, now_iso(), {**details, "phase": "started"}))
            )
        except AuditWriteError as exc:
            print(
                f"redactor: cannot start: cannot write the audit record ({exc}); nothing was changed",
                file=stderr,
            )
            runner.run(sink.close())
            if audit.registry is not None:
                runner.run(audit.registry.close())
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            return 2
        # What the audit record says if the run stops on Ctrl-C or a kill it can catch.
        code: int = 130
        failure: str | None = "interrupted"
        vault = None
        try:
            if not request.dry_run and tokens is None:
                if vault_config is None:
                    raise RedactUsageError("no vault configured")
                tokens, vault = runner.run(open_tokens(vault_config))
            run = _Run(
                request, runner, None if request.dry_run else tokens, pool, stdout, stderr, tty
            )
            code, failure = _redact_all(run, request.inputs, shown, total, stderr)
        except (RedactorError, VaultError) as exc:
            print(f"redactor: cannot start: {exc}", file=stderr)
            failure = getattr(exc, "code", None) or type(exc).__name__
            code = 2
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            if vault is not None:
                runner.run(vault.close())
            elapsed = time.monotonic() - started
            phase = "finished" if code == 0 else "failed"
            record = {**details, **total.to_data(), "phase": phase, "exit_code": code}
            record["elapsed_s"] = round(elapsed, 3)
            if failure is not None:
                record["error"] = failure
            try:
                runner.run(sink.write(SystemEvent(AUDIT_EVENT, now_iso(), record)))
            except AuditWriteError:
                print("redactor: the run finished but its result was not audited", file=stderr)
                code = code or 2
            finally:
                runner.run(sink.close())
                if audit.registry is not None:
                    runner.run(audit.registry.close())
    print(summary_line(total, len(request.inputs), elapsed, dry_run=request.dry_run), file=stderr)
    return code
