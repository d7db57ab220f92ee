"""The vault's high-water mark, kept outside the vault: how a restored (older) vault is told apart.

The vault counts what it commits: `minted` grows with every token it inserts (never with a
value sent again), `epoch` with every key-state change. Serving processes and key commands
copy the highest pair they saw into a small JSON file outside the vault (the mark file, by
default `vault-mark.json` in the data directory), keyed by the vault's id. A vault restored
from an older copy (backup, snapshot, point-in-time recovery) has lower counters than the
mark: it is refused with `vault_behind` until an operator reconciles and accepts it.

The file holds counters and ids, never a token, a value or key material. File functions
block (call them through asyncio.to_thread); `behind` is pure.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vault.errors import KeyCommandBusyError, VaultConfigError

MARK_FILE_FORMAT = "redactor-vault-mark/1"
DEFAULT_MARK_FILE_NAME = "vault-mark.json"
# What the refusal tells an operator to do (README: "Runbook: a vault restored from a backup").
RUNBOOK_STEP = (
    "restore a newer copy of the vault if there is one; otherwise list what was lost with "
    "`redactor vault reconcile --audit DIR` and accept this copy with "
    "`redactor vault accept-restore --yes` (README: a vault restored from a backup)"
)


@dataclass(frozen=True, slots=True)
class VaultMark:
    """One vault's counters: tokens inserted, key-state changes."""

    vault_id: str
    minted: int
    epoch: int

    def describe(self) -> str:
        """`minted 42, key epoch 3`."""
        return f"minted {self.minted}, key epoch {self.epoch}"


def behind(vault: VaultMark, recorded: VaultMark | None) -> str | None:
    """Why `vault` is older than the mark `recorded` (None when it is not).

    A different vault id is not this vault's mark: nothing to compare.
    """
    if recorded is None or recorded.vault_id != vault.vault_id:
        return None
    if vault.minted >= recorded.minted and vault.epoch >= recorded.epoch:
        return None
    return (
        f"the vault is at {vault.describe()}; the high-water mark recorded outside it is at "
        f"{recorded.describe()}; {RUNBOOK_STEP}"
    )


def highest(a: VaultMark | None, b: VaultMark | None) -> VaultMark | None:
    """The component-wise maximum of two marks of one vault (`b` when ids differ or `a` is None)."""
    if a is None or b is None or a.vault_id != b.vault_id:
        return b if b is not None else a
    return VaultMark(a.vault_id, max(a.minted, b.minted), max(a.epoch, b.epoch))


def _parse(text: str) -> dict[str, VaultMark]:
    try:
        doc = json.loads(text)
    except ValueError:
        raise VaultConfigError("the vault mark file is not JSON") from None
    vaults = doc.get("vaults") if isinstance(doc, dict) else None
    if doc.get("format") != MARK_FILE_FORMAT or not isinstance(vaults, dict):
        raise VaultConfigError(f"the vault mark file must have format {MARK_FILE_FORMAT}")
    marks: dict[str, VaultMark] = {}
    for vault_id, entry in vaults.items():
        minted = entry.get("minted") if isinstance(entry, dict) else None
        epoch = entry.get("epoch") if isinstance(entry, dict) else None
        if not (isinstance(minted, int) and isinstance(epoch, int)):
            raise VaultConfigError("the vault mark file has an entry without whole counters")
        marks[str(vault_id)] = VaultMark(str(vault_id), minted, epoch)
    return marks


def read_marks(path: Path) -> dict[str, VaultMark]:
    """Every vault's mark in the file; empty when there is no file yet (blocking).

    Raises VaultConfigError if the file exists but cannot be read or parsed: a mark that
    cannot be read must stop a start, not be taken for "no mark".
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError:
        raise VaultConfigError("the vault mark file cannot be read") from None
    return _parse(text)


def read_mark(path: Path, vault_id: str) -> VaultMark | None:
    """The mark of `vault_id` in the file, or None (blocking). Raises VaultConfigError."""
    return read_marks(path).get(vault_id)


def acquire_lock(path: Path, *, wait: bool) -> int:
    """An exclusive flock on `path` (created, mode 0600); returns its descriptor (blocking).

    Without `wait`, raises KeyCommandBusyError at once if another process holds it. The lock
    goes with the process: a crashed holder never leaves it behind. Release with
    `release_lock`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    locked = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        locked = True
    except BlockingIOError:
        raise KeyCommandBusyError(f"{path} is held by another process") from None
    finally:
        if not locked:
            os.close(fd)
    return fd


def release_lock(fd: int) -> None:
    """Release a lock taken with `acquire_lock`."""
    os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: Path, *, wait: bool) -> Iterator[None]:
    """Hold `acquire_lock(path)` for the block (blocking)."""
    fd = acquire_lock(path, wait=wait)
    try:
        yield
    finally:
        release_lock(fd)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _write(path: Path, marks: dict[str, VaultMark]) -> None:
    doc = {
        "format": MARK_FILE_FORMAT,
        "vaults": {m.vault_id: {"minted": m.minted, "epoch": m.epoch} for m in marks.values()},
    }
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".vault-mark-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def advance_mark(path: Path, mark: VaultMark) -> VaultMark:
    """Raise the file's mark of `mark.vault_id` to at least `mark`; return what it holds now.

    Several processes (workers, commands) advance one file: read, maximum and atomic rename
    happen under the file's lock, so a slower writer never lowers a mark (blocking).
    Raises VaultConfigError if the file cannot be read or written.
    """
    try:
        with exclusive_lock(_lock_path(path), wait=True):
            marks = read_marks(path)
            merged = highest(marks.get(mark.vault_id), mark) or mark
            if marks.get(mark.vault_id) != merged:
                marks[mark.vault_id] = merged
                _write(path, marks)
            return merged
    except OSError:
        raise VaultConfigError("the vault mark file cannot be written") from None
