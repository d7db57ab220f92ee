"""An incremental index of the audit trail: SQLite beside it, so a view costs what its answer
costs, not what the trail costs.

Each update reads only the bytes appended since the last one: per file it keeps the name,
device and inode, how far it was read (whole lines only: a line being written is left for
next time) and SHA-256 hashes of that prefix in 1 MiB blocks. A file renamed by rotation keeps
its inode; one compressed by logrotate (`.gz`) is recognised by the hash of its first bytes and
taken up where its uncompressed self was left. The chains are verified as the lines are read,
with `verify`'s own per-line step and its state kept between updates, so every indexed row
carries whether the chains vouch for it, and a break found later (a repeated sequence number)
marks the rows at or after it.

The index is a cache: deleting it rebuilds it. It never vouches for bytes it has not
re-checked: each update compares the head of every file and the block the last read ended in
(and any file whose size or time changed); `full_check` re-hashes every indexed byte (the
console runs it at least every `FULL_CHECK_MAX_AGE_S`). A file that shrank, vanished or whose
indexed bytes changed throws the index away and rebuilds it from the trail, which re-verifies
everything and names the break as `verify` does.

Records hold no values (tokens and masked forms only), and neither does the index; it is
created 0600 like the trail.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from redactor.audit.chain import MAC_PREFIX, MAC_TAIL_BYTES, key_id
from redactor.audit.index_rows import (
    INSERT_RECORD,
    RECORD_COLUMNS,
    SCHEMA,
    TABLES,
    category,
    epoch_ms,
    row_of,
)
from redactor.audit.index_walks import walk_from_json, walk_to_json
from redactor.audit.sink import CHECKPOINT_SUFFIX
from redactor.audit.verify import (
    _BAD,
    _ODD,
    _OK,
    TRUNCATED,
    Break,
    ChainReport,
    TornTail,
    VerifyResult,
    _check_tail,
    _finish,
    _read_checkpoints,
    _settle_held,
    _take_line,
    _Walk,
    chain_order,
    open_log,
)

INDEX_VERSION = "2"
BLOCK_BYTES = 1 << 20
HEAD_BYTES = 4096
CHUNK_BYTES = 4 << 20
FULL_CHECK_MAX_AGE_S = 60.0
QUARTER_S = 900  # the series' finest bucket: a quarter hour (every zone's offset is one)

_SEQ = re.compile(rb'[{,]"seq":([0-9]{1,18})[,}]')
_CHAIN = re.compile(rb'[{,]"chain":"([0-9A-Za-z_-]{1,64})"')
_EVENT = re.compile(rb'[{,]"event":"([a-z_]{1,64})"')
_TIME = re.compile(rb'[{,]"time":"([0-9T:.+Z-]{10,40})"')
_TENANT = re.compile(rb'[{,]"tenant":"([^"\\]{0,200})"')
_CHAIN_HEAD = b'{"chain":"'


def trail_files(audit_log: Path | None) -> list[Path]:
    """Every file of a server's trail: rotated, per-worker, CLI, and the live one."""
    if audit_log is None or not audit_log.parent.exists():
        return []
    # A worker writes `audit-w2.jsonl`; its console shows the whole trail, every worker's.
    stem = re.sub(r"-w[0-9]+$", "", audit_log.stem)
    return sorted(
        p
        for p in audit_log.parent.iterdir()
        if p.name.startswith(stem) and ".jsonl" in p.name and not p.name.endswith(CHECKPOINT_SUFFIX)
    )


def index_path_for(audit_log: Path) -> Path:
    """Where a trail's index lives: `<dir>/.<stem>.index.sqlite` (one for every worker's
    files: `audit-w2.jsonl` shares `audit`'s)."""
    stem = re.sub(r"-w[0-9]+$", "", audit_log.stem)
    return audit_log.with_name(f".{stem}.index.sqlite")


class IndexStaleError(Exception):
    """Bytes the index had read changed, or a file it had read is gone: rebuild."""


@dataclass(slots=True)
class UpdateResult:
    """What one update did."""

    records: int = 0
    bytes: int = 0
    rebuilt: str | None = None  # why the index was thrown away first, if it was


@dataclass(slots=True)
class _File:
    id: int | None
    name: str
    dev: int
    ino: int
    gz: bool
    size: int
    mtime_ns: int
    offset: int = 0
    lines: int = 0
    head_len: int = 0
    head: str = ""
    blocks: list[str] | None = None
    part: str = ""  # SHA-256 of the indexed bytes after the last whole block
    held: dict[str, Any] | None = None  # a line that is not a record, judged by the next
    complete: bool = False  # a `.gz` file read to its end (never appended to)

    def unread(self) -> bool:
        """Whether the file may hold lines not read yet."""
        if self.id is None:
            return True
        return not self.complete if self.gz else self.size > self.offset


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TrailIndex:
    """The index of one trail at `path`, verified under the audit `key`."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key
        self._kid = key_id(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.executescript(SCHEMA)
        self._lock_path = path.with_name(path.name + ".lock")
        self.full_checked_at = 0.0  # time.monotonic() of the last full re-hash
        # Answers derived from the activity table, by (what, build, activity generation, ...).
        self.cache: dict[tuple[Any, ...], Any] = {}

    def activity_key(self) -> tuple[str | None, str | None]:
        """Changes whenever the activity table does (or the index is rebuilt)."""
        return self.meta("build"), self.meta("activity_gen")

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Several workers' consoles may share one index: one updates at a time.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def meta(self, key: str) -> str | None:
        """A value of the index's own (None when unset)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def reset(self) -> None:
        """Throw everything away (the next update reads the trail from its start)."""
        self.db.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            self.db.execute(f"DELETE FROM {table}")  # noqa: S608 - our own table names
        self._set_meta("version", INDEX_VERSION)
        self._set_meta("kid", self._kid)
        self._set_meta("build", secrets.token_hex(8))  # names this build in caches' keys
        self.db.execute("COMMIT")
        self.cache.clear()

    # -- updating ---------------------------------------------------------------------------

    def update(self, logs: Sequence[Path]) -> UpdateResult:
        """Read what was appended to the trail files `logs` since the last update (rebuilding
        first when the index is not of this key or version, or the trail changed under it)."""
        with self._locked():
            rebuilt = None
            if self.meta("version") != INDEX_VERSION or self.meta("kid") != self._kid:
                rebuilt = "new index" if self.meta("version") is None else "version or key"
                self.reset()
            try:
                result = self._update(logs)
            except IndexStaleError as exc:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                self.reset()
                result = self._update(logs)
                rebuilt = str(exc)
                self.full_checked_at = time.monotonic()  # every byte was just read again
            if rebuilt == "new index":
                self.full_checked_at = time.monotonic()
            result.rebuilt = rebuilt
            self._set_meta("updated_at", datetime.now(UTC).isoformat(timespec="seconds"))
            return result

    def _known(self) -> list[_File]:
        rows = self.db.execute(
            "SELECT id, name, dev, ino, gz, size, mtime_ns, offset, lines, head_len, head, "
            "blocks, part, held, complete FROM files"
        ).fetchall()
        # fmt: off
        return [
            _File(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], r[9], r[10],
                  json.loads(r[11]), r[12], json.loads(r[13]) if r[13] else None, bool(r[14]))
            for r in rows
        ]
        # fmt: on

    def _update(self, logs: Sequence[Path]) -> UpdateResult:
        known = self._known()
        by_inode = {(f.dev, f.ino): f for f in known}
        listed: list[tuple[Path, os.stat_result]] = []
        for path in logs:
            try:
                listed.append((path, path.stat()))
            except OSError:
                continue
        present = {(st.st_dev, st.st_ino) for _path, st in listed}
        # Only a file whose inode left the trail can have been moved or compressed.
        movable = [f for f in known if (f.dev, f.ino) not in present]
        seen: set[int] = set()
        pending: list[tuple[_File, Path]] = []
        for path, st in listed:
            gz = path.name.endswith(".gz")
            entry = by_inode.get((st.st_dev, st.st_ino))
            if entry is not None and entry.gz == gz:
                entry.name = str(path)
                self._check_known(entry, path, st)
            else:
                entry = self._adopt(path, st, gz, [f for f in movable if f.id not in seen])
            if entry.id is not None:
                seen.add(entry.id)
            entry.size, entry.mtime_ns = st.st_size, st.st_mtime_ns
            pending.append((entry, path))
        for entry in known:
            if entry.id not in seen and entry.offset > 0:
                raise IndexStaleError(f"{Path(entry.name).name} is no longer in the trail")
        walks = self._load_walks()
        result = UpdateResult()
        for entry, path in _chain_order(pending):
            self._read_file(entry, path, walks, result)
        return result

    def _check_known(self, entry: _File, path: Path, st: os.stat_result) -> None:
        """The cheap check of a file read before: it did not shrink, and (when its size or
        time changed) its head and the block the last read ended in are as read."""
        if entry.gz:
            if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
                raise IndexStaleError(f"{path.name} changed")
            return
        if st.st_size < entry.offset:
            raise IndexStaleError(f"{path.name} shrank")
        if (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns):
            return
        with path.open("rb") as handle:
            if _sha(handle.read(entry.head_len)) != entry.head:
                raise IndexStaleError(f"{path.name} changed")
            start = (entry.offset // BLOCK_BYTES) * BLOCK_BYTES
            handle.seek(start)
            if _sha(handle.read(entry.offset - start)) != entry.part:
                raise IndexStaleError(f"{path.name} changed")

    def _adopt(self, path: Path, st: os.stat_result, gz: bool, known: list[_File]) -> _File:
        """A file not seen under this inode: new, or a known file moved or compressed (same
        first bytes), which is taken up where it was left once its prefix hashes match."""
        entry = _File(None, str(path), st.st_dev, st.st_ino, gz, st.st_size, st.st_mtime_ns)
        try:
            with open_log(path) as handle:
                head = handle.read(HEAD_BYTES)
        except (OSError, EOFError, gzip.BadGzipFile):
            return entry  # read (and reported) by the main pass
        for old in known:
            if old.offset and old.head_len <= len(head) and _sha(head[: old.head_len]) == old.head:
                try:
                    same = _prefix_blocks(path, old.offset) == (old.blocks, old.part)
                except (OSError, EOFError, gzip.BadGzipFile):
                    same = False
                if not same:
                    raise IndexStaleError(f"{path.name} differs from what was read as {old.name}")
                old.name, old.dev, old.ino, old.gz = str(path), st.st_dev, st.st_ino, gz
                old.complete = False
                return old
        return entry

    def _read_file(
        self, entry: _File, path: Path, walks: dict[str, _Walk], result: UpdateResult
    ) -> None:
        if not entry.unread():
            self._save_file(entry)
            return
        try:
            self._read_lines(entry, path, walks, result)
        except (OSError, EOFError, gzip.BadGzipFile):
            # As `verify` says of it (the lines read before the fault stay indexed); kept until
            # the index is rebuilt: fail closed.
            if self.db.in_transaction:
                # The chunk being indexed is undone: so is what it did to the chains' walks
                # and to the file's place, in memory.
                self.db.execute("ROLLBACK")
                walks.clear()
                walks.update(self._load_walks())
                self._restore(entry)
            problem = f"{path}: cannot be read"
            problems = json.loads(self.meta("problems") or "[]")
            if problem not in problems:
                self._set_meta("problems", json.dumps([*problems, problem]))
            entry.complete = entry.gz
            self._save_file(entry)

    def _restore(self, entry: _File) -> None:
        """Set a file's place back to what the database holds (nothing: not read yet)."""
        saved = next((f for f in self._known() if f.id == entry.id), None)
        if saved is None:
            saved = _File(None, entry.name, entry.dev, entry.ino, entry.gz, entry.size, 0)
        for name in ("id", "offset", "lines", "head_len", "head", "blocks", "part", "held"):
            setattr(entry, name, getattr(saved, name))

    def _read_lines(
        self, entry: _File, path: Path, walks: dict[str, _Walk], result: UpdateResult
    ) -> None:
        file = str(path)
        with open_log(path) as handle:
            start = (entry.offset // BLOCK_BYTES) * BLOCK_BYTES
            handle.seek(start)
            prefix = handle.read(entry.offset - start)
            if entry.id is not None and _sha(prefix) != entry.part:
                raise IndexStaleError(f"{path.name} changed")
            hasher = hashlib.sha256(prefix)
            blocks = list(entry.blocks or [])
            pos = entry.offset
            rest = b""
            while True:
                chunk = handle.read(CHUNK_BYTES)
                if not chunk:
                    break
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                if not cut:
                    rest = data
                    continue
                complete, rest = data[:cut], data[cut:]
                self.db.execute("BEGIN IMMEDIATE")
                self._index_lines(entry, file, complete, walks, result)
                # Hash what was read, block by block.
                view = memoryview(complete)
                while view:
                    room = BLOCK_BYTES - (pos % BLOCK_BYTES)
                    piece, view = view[:room], view[room:]
                    hasher.update(piece)
                    pos += len(piece)
                    if pos % BLOCK_BYTES == 0:
                        blocks.append(hasher.hexdigest())
                        hasher = hashlib.sha256()
                    if pos <= HEAD_BYTES or entry.head_len < HEAD_BYTES:
                        entry.head_len = min(pos, HEAD_BYTES)
                result.bytes += len(complete)
                entry.offset = pos
                entry.blocks = blocks
                entry.part = hasher.copy().hexdigest()
                self._save_file(entry, head=True, handle_path=path)
                self._save_walks(walks)
                self.db.execute("COMMIT")
        entry.complete = entry.gz
        self._save_file(entry, head=entry.id is None, handle_path=path)

    def _save_file(
        self, entry: _File, *, head: bool = False, handle_path: Path | None = None
    ) -> None:
        if head and handle_path is not None:
            with open_log(handle_path) as handle:
                entry.head = _sha(handle.read(entry.head_len))
        values = (
            entry.name,
            entry.dev,
            entry.ino,
            int(entry.gz),
            entry.size,
            entry.mtime_ns,
            entry.offset,
            entry.lines,
            entry.head_len,
            entry.head,
            json.dumps(entry.blocks or []),
            entry.part,
            json.dumps(entry.held) if entry.held else None,
            int(entry.complete),
        )
        if entry.id is None:
            cur = self.db.execute(
                "INSERT INTO files(name, dev, ino, gz, size, mtime_ns, offset, lines, head_len, "
                "head, blocks, part, held, complete) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                values,
            )
            entry.id = cur.lastrowid
        else:
            self.db.execute(
                "UPDATE files SET name=?, dev=?, ino=?, gz=?, size=?, mtime_ns=?, offset=?, "
                "lines=?, head_len=?, head=?, blocks=?, part=?, held=?, complete=? WHERE id=?",
                (*values, entry.id),
            )

    def _index_lines(
        self,
        entry: _File,
        file: str,
        data: bytes,
        walks: dict[str, _Walk],
        result: UpdateResult,
    ) -> None:
        key, kid = self._key, self._kid
        verify = VerifyResult({}, [])
        broken_before = {c: w.report.broken.seq for c, w in walks.items() if w.report.broken}
        rows: list[tuple[Any, ...]] = []
        # (tenant, quarter) -> [values redacted, reveals, records]
        buckets: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
        # (tenant, route, entity, quarter) -> [values, messages, unverified messages]
        tokenised: dict[tuple[str, str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
        activity: dict[tuple[str, str, str, int], list[int]] = defaultdict(lambda: [0, 0])
        number = entry.lines
        held = entry.held
        loads = orjson.loads
        digest = hmac.digest
        # The common case, the next verifying record of the chain of the line before, is
        # checked inline with that chain's state in locals (as `verify` does); anything else
        # goes through verify's own step, which tells what is wrong.
        fast: _Walk | None = None
        head = b""
        seq = 0
        prev = b""
        streak = 0

        def settle() -> None:
            if fast is not None and streak:
                fast.next_seq, fast.prev_mac = seq, prev
                fast.report.records += streak
                fast.report.last_seq = seq - 1
                fast.report.closed = False

        for raw in data.split(b"\n")[:-1]:
            number += 1
            cut = len(raw) - MAC_TAIL_BYTES
            took = _BAD
            if (
                fast is not None
                and raw.startswith(head)
                and b',"seq":%d,' % seq in raw
                and raw[cut : cut + 8] == MAC_PREFIX
                and b'"audit_checkpoint"' not in raw
                and digest(key, prev + raw[:cut] + b"}", "sha256").hex().encode()
                == raw[cut + 8 : -2]
            ):
                prev = bytes.fromhex(raw[cut + 8 : -2].decode())
                seq += 1
                streak += 1
                took = _OK
            else:
                settle()
                fast, streak = None, 0
                took = _take_line(key, kid, walks, raw + b"\n", file, number, verify)
                if took == _OK and raw.startswith(_CHAIN_HEAD):
                    candidate = walks.get(raw[10 : raw.find(b'"', 10)].decode("ascii", "replace"))
                    if candidate is not None and candidate.suspect is None:
                        fast = candidate
                        head = raw[: raw.find(b'"', 10) + 1]
                        seq, prev = candidate.next_seq, candidate.prev_mac
            if held is not None:
                _settle_held((bytes.fromhex(held["raw"]), held["line"]), raw, took, file, verify)
                held = None
            if took == _ODD:
                held = {"raw": raw.hex(), "line": number}
                continue
            event_m = _EVENT.search(raw)
            cat = category(event_m[1].decode() if event_m else None)
            if took == _OK and cat == "other":
                # No panel shows it, and the chains vouch for it: counted, no row.
                time_m, tenant_m = _TIME.search(raw), _TENANT.search(raw)
                ts = epoch_ms(time_m[1].decode()) if time_m else 0
                if ts:
                    slot = (tenant_m[1].decode() if tenant_m else "", ts // 1000 // QUARTER_S)
                    buckets[slot][2] += 1
                continue
            try:
                record = loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict):
                continue
            chain_m, seq_m = _CHAIN.search(raw), _SEQ.search(raw)
            verified = (
                took == _OK
                and chain_m is not None
                and seq_m is not None
                and record.get("chain") == chain_m.group(1).decode()
                and record.get("seq") == int(seq_m.group(1))
            )
            if cat == "message":
                # Counted in the series and per route and entity type (no panel lists
                # messages): a row only when unverified.
                counts = record.get("counts")
                ts = epoch_ms(record.get("time"))
                held_tenant = record.get("tenant")
                tenant = held_tenant if isinstance(held_tenant, str) else ""
                if ts:
                    q = ts // 1000 // QUARTER_S
                    buckets[tenant, q][2] += 1
                    if isinstance(counts, dict):
                        route = str(record.get("route"))
                        for entity, n in counts.items():
                            if isinstance(n, int):
                                buckets[tenant, q][0] += n
                                item = tokenised[tenant, route, str(entity), q]
                                item[0] += n
                                item[1] += 1
                                item[2] += not verified
                if verified:
                    continue
            row = row_of(record, verified, raw)
            ts, cat, tenant = row[0], row[1], row[5] or ""
            if ts and cat != "message":
                bucket = buckets[tenant, ts // 1000 // QUARTER_S]
                bucket[2] += 1
                bucket[1] += cat == "reveal"
            if ts and cat in ("reveal", "deny") and row[6] is not None:
                when = datetime.fromtimestamp(ts / 1000, UTC)
                act = activity[tenant, row[6], when.date().isoformat(), when.hour]
                act[0 if cat == "reveal" else 1] += 1
            if cat in ("message", "other") and verified:
                continue  # counted in the series; only an unverified one needs a row
            rows.append(row)
        settle()
        result.records += number - entry.lines
        entry.lines = number
        entry.held = held
        self.db.executemany(INSERT_RECORD, rows)
        self.db.executemany(
            "INSERT INTO buckets(tenant, q, redactions, reveals, records) VALUES (?,?,?,?,?) "
            "ON CONFLICT(tenant, q) DO UPDATE SET redactions = redactions + excluded.redactions,"
            " reveals = reveals + excluded.reveals, records = records + excluded.records",
            [(t, q, *v) for (t, q), v in buckets.items()],
        )
        self.db.executemany(
            "INSERT INTO tokenisations(tenant, route, entity, q, vals, messages, unverified) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT(tenant, q, route, entity) DO UPDATE SET "
            "vals = vals + excluded.vals, messages = messages + excluded.messages, "
            "unverified = unverified + excluded.unverified",
            [(*k, *v) for k, v in tokenised.items()],
        )
        if activity:
            self._set_meta("activity_gen", str(int(self.meta("activity_gen") or 0) + 1))
        self.db.executemany(
            "INSERT INTO activity(tenant, subject, day, hour, reveals, denials) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(tenant, subject, day, hour) DO UPDATE SET "
            "reveals = reveals + excluded.reveals, denials = denials + excluded.denials",
            [(*k, v[0], v[1]) for k, v in activity.items()],
        )
        # A break found now can lie before rows read earlier (a repeated sequence number):
        # every row at or after it loses its mark.
        for chain_id, walk in walks.items():
            broken = walk.report.broken
            if broken is not None and broken_before.get(chain_id) != broken.seq:
                cur = self.db.execute(
                    "UPDATE records SET verified = 0 WHERE chain = ? AND seq >= ? AND verified",
                    (chain_id, broken.seq),
                )
                last = walk.report.last_seq
                if cur.rowcount or (last is not None and broken.seq <= last):
                    # The sums kept as lines were read may count some of those as verified:
                    # views that show sums' verification (the report) must not use them.
                    self._set_meta("retroactive_break", "1")
        self._add_findings(verify)

    def _add_findings(self, verify: VerifyResult) -> None:
        if not verify.problems and not verify.torn:
            return
        problems = json.loads(self.meta("problems") or "[]") + verify.problems
        torn = json.loads(self.meta("torn") or "[]") + [asdict(t) for t in verify.torn]
        self._set_meta("problems", json.dumps(problems))
        self._set_meta("torn", json.dumps(torn))

    def _load_walks(self) -> dict[str, _Walk]:
        rows = self.db.execute("SELECT chain, state FROM walks").fetchall()
        return {chain: walk_from_json(json.loads(state)) for chain, state in rows}

    def _save_walks(self, walks: dict[str, _Walk]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO walks(chain, state) VALUES (?, ?)",
            [(c, json.dumps(walk_to_json(w))) for c, w in walks.items()],
        )

    # -- checking ---------------------------------------------------------------------------

    def full_check(self, logs: Sequence[Path]) -> str | None:
        """Re-hash every indexed byte of every file; rebuild when any changed. Returns why it
        rebuilt, or None."""
        stale = None
        with self._locked():
            for entry in self._known():
                if not entry.offset:
                    continue  # nothing read from it: nothing to vouch for
                path = Path(entry.name)
                try:
                    if _prefix_blocks(path, entry.offset) != (entry.blocks or [], entry.part):
                        stale = f"{path.name} changed"
                        break
                except OSError:
                    stale = f"{path.name} is no longer in the trail"
                    break
        if stale is not None:
            with self._locked():
                self.reset()
            self.update(logs)
        self.full_checked_at = time.monotonic()
        return stale

    def integrity_result(self, logs: Sequence[Path]) -> VerifyResult:
        """What `verify` says of the indexed trail: each chain's walk as the index left it,
        settled as at the end of a pass, compared with the files' signed checkpoints."""
        walks = self._load_walks()
        result = VerifyResult({}, list(json.loads(self.meta("problems") or "[]")))
        result.torn = [TornTail(**t) for t in json.loads(self.meta("torn") or "[]")]
        for entry in self._known():
            if entry.held is not None:
                # As `verify` would judge it now: a line that is not a record, nothing after.
                result.problems.append(
                    f"{entry.name}:{entry.held['line']}: edited: not a chained audit record"
                )
        expected: dict[str, tuple[int, bytes, str]] = {}
        for path in logs:
            side = path.with_name(path.name + CHECKPOINT_SUFFIX)
            if side.exists():
                _read_checkpoints(self._key, self._kid, side, expected, result)
        for chain_id, walk in walks.items():
            _finish(walk)
            tail = expected.get(chain_id)
            if tail is not None:
                walk.report.checkpoint_seq = tail[0]
                _check_tail(walk, tail)
        for chain_id, (seq, _mac, where) in expected.items():
            if chain_id not in walks:
                report = ChainReport(chain_id, checkpoint_seq=seq)
                report.broken = Break(
                    TRUNCATED, 0, where, 0, f"no record of this chain; checkpoint at seq {seq}"
                )
                walks[chain_id] = _Walk(report)
        result.chains = {cid: w.report for cid, w in walks.items()}
        return result


def _prefix_blocks(path: Path, offset: int) -> tuple[list[str], str]:
    """The block hashes of a file's first `offset` bytes (decompressed for `.gz`)."""
    blocks: list[str] = []
    with open_log(path) as handle:
        left = offset
        while left >= BLOCK_BYTES:
            data = handle.read(BLOCK_BYTES)
            if len(data) < BLOCK_BYTES:
                raise IndexStaleError(f"{path.name} shrank")
            blocks.append(_sha(data))
            left -= BLOCK_BYTES
        data = handle.read(left)
        if len(data) < left:
            raise IndexStaleError(f"{path.name} shrank")
        return blocks, _sha(data)


def _pending_starts(entry: _File, path: Path) -> dict[str, int]:
    """Each chain in the part of a file not read yet, with the seq of its first record there."""
    starts: dict[str, int] = {}
    if not entry.unread():
        return starts
    try:
        handle: BinaryIO = open_log(path)
    except OSError:
        return starts
    with handle:
        with contextlib.suppress(OSError):
            handle.seek(entry.offset)
        head = b"\0"
        rest = b""
        try:
            while chunk := handle.read(CHUNK_BYTES):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for raw in lines:
                    if raw.startswith(head):
                        continue
                    chain_m, seq_m = _CHAIN.search(raw), _SEQ.search(raw)
                    if chain_m is None or seq_m is None:
                        continue
                    head = b'{"chain":"' + chain_m[1] + b'"'
                    starts.setdefault(chain_m[1].decode(), int(seq_m[1]))
        except (OSError, EOFError, gzip.BadGzipFile):
            pass
    return starts


def _chain_order(pending: list[tuple[_File, Path]]) -> list[tuple[_File, Path]]:
    """The files with unread lines in the order their chains wrote them (as `verify`'s
    `order_logs`, over the unread parts only)."""
    if len(pending) < 2:
        return pending
    starts = [_pending_starts(entry, path) for entry, path in pending]
    return [pending[i] for i in chain_order(starts)]


__all__ = [
    "BLOCK_BYTES",
    "FULL_CHECK_MAX_AGE_S",
    "RECORD_COLUMNS",
    "TrailIndex",
    "UpdateResult",
    "category",
    "index_path_for",
    "trail_files",
]
