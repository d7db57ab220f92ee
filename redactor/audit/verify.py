"""`redactor audit verify`: walk every writer's chain and report its first broken link.

One streaming pass over the files (a trail can be gigabytes): per chain, the expected next
sequence number and the previous MAC. At the first line that does not verify, the kind of
break is told from what follows it in the same chain:

- edited:    the line is where it belongs, its content does not match its MAC
- inserted:  the next line verifies against the MAC before it (the line was added), or it
             repeats a sequence number already seen
- deleted:   sequence numbers are missing and never turn up later
- reordered: a sequence number is skipped but turns up later
- truncated tail: a signed checkpoint names a later record than the chain's last
- wrong key: the chain's key id is not the verifying key's, or nothing in it verifies

Apart from those, and not a failure: a torn tail, a last line cut short by a crash (its write
never returned, so nothing it recorded happened). It is either the very last line of a file,
with no newline, or a line followed by the `audit_tail_repaired` record the next writer of the
file signed, naming its length and SHA-256.

Files are walked per chain in order of the `seq` of their first record (not by name), so
logrotate's names (`audit.jsonl.1`, `audit.jsonl.2.gz`, `audit.jsonl-20261207`) and
copytruncate verify; `.gz` files are read decompressed.

Reads files only; never prints a record's content beyond chain, seq, event and place.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import hmac
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from redactor.audit.chain import (
    CHECKPOINT_EVENT,
    GENESIS_MAC,
    MAC_PREFIX,
    MAC_TAIL_BYTES,
    checkpoint_signature_ok,
    compute_mac,
    key_id,
    split_line,
)
from redactor.audit.parallel import verify_spans
from redactor.audit.sink import CHECKPOINT_SUFFIX, FILE_REPLACED_EVENT, TAIL_REPAIRED_EVENT

if TYPE_CHECKING:
    from redactor.audit.registry import Completeness

# Keys of a canonical record, found without parsing it: in JSON text a quote inside a string
# is always escaped, so `,"seq":` can only be the key itself.
_SEQ = re.compile(rb'[{,]"seq":([0-9]{1,18})[,}]')
_CHAIN = re.compile(rb'[{,]"chain":"([0-9A-Za-z_-]{1,64})"')
_EVENT = re.compile(rb'[{,]"event":"([a-z_]{1,64})"')
_KID = re.compile(rb'[{,]"kid":"([0-9a-f]{1,64})"')
_FINAL = b'"final":true'
_CAUSE = re.compile(rb'[{,]"cause":"([a-z]{1,16})"')
_TORN_BYTES = re.compile(rb'[{,]"torn_bytes":([0-9]{1,12})[,}]')
_TORN_SHA = re.compile(rb'[{,]"torn_sha256":"([0-9a-f]{64})"')
_HEAD_CHAIN = re.compile(rb'^\{"chain":"([0-9A-Za-z_-]{1,64})"')
_TIME = re.compile(rb'[{,]"time":"([0-9T:.+-]{1,40}Z?)"')

EDITED = "edited"
INSERTED = "inserted"
DELETED = "deleted"
REORDERED = "reordered"
TRUNCATED = "truncated_tail"
WRONG_KEY = "wrong_key"
TORN_TAIL = "torn_tail"


@dataclass(frozen=True, slots=True)
class Break:
    """The first broken link of a chain: what kind, at which sequence number, where."""

    kind: str
    seq: int
    file: str
    line: int
    detail: str = ""


@dataclass(slots=True)
class ChainReport:
    """What verify found for one writer's chain."""

    chain_id: str
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    closed: bool = False  # the last verified record is a final checkpoint (a clean stop)
    broken: Break | None = None
    checkpoint_seq: int | None = None
    # The `time` of the first record read and of the last verified one (None: not read, as
    # when the parallel check vouched for the whole chain).
    first_time: str | None = field(default=None, compare=False)
    last_time: str | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the chain verified end to end."""
        return self.broken is None


@dataclass(slots=True)
class _Line:
    seq: int
    mac: bytes
    body: bytes
    file: str
    line: int


@dataclass(slots=True)
class _Walk:
    """Per-chain state during the pass."""

    report: ChainReport
    next_seq: int = 0
    prev_mac: bytes = GENESIS_MAC
    # After a failed line: the line, and what the chain expected there.
    suspect: _Line | None = None
    suspect_prev: bytes = b""
    missing_seq: int | None = None  # a skipped seq we look for later (reordered vs deleted)
    missing_at: tuple[str, int] = ("", 0)
    seen_after: bool = False
    kid: str | None = None
    checkpoints: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TornTail:
    """A line cut short by a crash: where, how long, whose chain (when the cut left its id),
    and whether the file's next writer recorded it (`audit_tail_repaired`)."""

    file: str
    line: int
    bytes: int
    chain: str | None
    repaired: bool


@dataclass(slots=True)
class VerifyResult:
    """Every chain found, problems not tied to one chain (unreadable files, bad lines), and
    torn tails (crashes: reported, not failures)."""

    chains: dict[str, ChainReport]
    problems: list[str]
    bytes_read: int = 0
    torn: list[TornTail] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every chain verified and no file had a problem."""
        return not self.problems and all(c.ok for c in self.chains.values())


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(log files, checkpoint files) for the given files and directories.

    A directory stands for its `*.jsonl*` files (`.gz` too); a log file brings its
    `<file>.checkpoints` along. Log files come in the order their chains were written
    (`order_logs`), whatever their names.
    """
    logs: list[Path] = []
    checkpoints: list[Path] = []
    for path in paths:
        members = sorted(path.glob("*.jsonl*")) if path.is_dir() else [path]
        for member in members:
            if CHECKPOINT_SUFFIX in member.name:
                checkpoints.append(member)
                continue
            logs.append(member)
            side = member.with_name(member.name + CHECKPOINT_SUFFIX)
            if side.exists():
                checkpoints.append(side)
    logs = list(dict.fromkeys(logs))
    return order_logs(logs), list(dict.fromkeys(checkpoints))


def open_log(path: Path) -> BinaryIO:
    """A trail file for reading, decompressed when its name ends in `.gz`. Raises OSError."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def order_logs(logs: list[Path]) -> list[Path]:
    """The files in the order their chains were written: for each chain, its files by the
    `seq` of the chain's first record in each (a rotated file's name says nothing reliable:
    `audit.jsonl.1` is newer than `audit.jsonl.2.gz`, and the live file sorts first).

    A file holds several chains when its writer restarted; the order keeps every chain's
    files in sequence, and files that share no chain in the order given. A tampered trail
    whose chains disagree keeps the given order where they do (verify then names the break).
    """
    if len(logs) < 2:
        return logs
    return [logs[i] for i in chain_order([_chain_starts(path) for path in logs])]


def chain_order(starts: Sequence[Mapping[str, int]]) -> list[int]:
    """The indices of files, given each file's first `seq` per chain, in the order their
    chains wrote them: every chain's files in sequence, and files that share no chain in the
    order given (`order_logs`; the audit index orders the unread parts of files with it)."""
    by_chain: dict[str, list[tuple[int, int]]] = {}
    for index, chains in enumerate(starts):
        for chain, seq in chains.items():
            by_chain.setdefault(chain, []).append((seq, index))
    after: list[set[int]] = [set() for _ in starts]
    waiting = [0] * len(starts)
    for files in by_chain.values():
        files.sort()
        for (_, first), (_, second) in itertools.pairwise(files):
            if second not in after[first]:
                after[first].add(second)
                waiting[second] += 1
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    done: list[int] = []
    placed = [False] * len(starts)
    while len(done) < len(starts):
        if not ready:
            # A cycle (only a tampered trail has one): take the first file left, by the order
            # given, and go on.
            ready.append(next(i for i, p in enumerate(placed) if not p))
        index = heapq.heappop(ready)
        if placed[index]:
            continue
        placed[index] = True
        done.append(index)
        for nxt in after[index]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0 and not placed[nxt]:
                heapq.heappush(ready, nxt)
    return done


def _chain_starts(path: Path) -> dict[str, int]:
    """Each chain in a file, with the `seq` of its first record there (one cheap pass: a
    line of the same chain as the line before is only compared by its head)."""
    starts: dict[str, int] = {}
    head = b"\0"
    rest = b""
    try:
        with open_log(path) as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for raw in lines:
                    if raw.startswith(head):
                        continue
                    chain_m = _HEAD_CHAIN.match(raw)
                    seq_m = _SEQ.search(raw)
                    if chain_m is None or seq_m is None:
                        continue
                    head = _CHAIN_HEAD + chain_m[1] + b'"'
                    starts.setdefault(chain_m[1].decode(), int(seq_m[1]))
    except (OSError, EOFError, gzip.BadGzipFile):
        return starts  # the main pass reports the file as unreadable
    return starts


PARALLEL_MIN_BYTES = 64 * 1024 * 1024


def verify_paths(
    key: bytes,
    paths: Iterable[Path],
    *,
    jobs: int = 1,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
) -> VerifyResult:
    """Verify every chain in the files at `paths` under the audit `key`.

    With `jobs` > 1 and at least `parallel_min_bytes` of trail, the lines are first checked on
    several processes (`redactor.audit.parallel`); only a trail with a break is then walked
    again in one pass to name it. Use jobs=1 inside a server (it forks).
    """
    logs, checkpoint_files = expand_paths(paths)
    result = VerifyResult({}, [])
    walks: dict[str, _Walk] = {}
    kid = key_id(key)
    expected_tail: dict[str, tuple[int, bytes, str]] = {}
    for cp_path in checkpoint_files:
        _read_checkpoints(key, kid, cp_path, expected_tail, result)
    gzipped = any(path.name.endswith(".gz") for path in logs)
    if jobs > 1 and not gzipped and _total_bytes(logs) >= parallel_min_bytes:
        spans = verify_spans(key, logs, jobs)
        if spans is not None:
            for chain_id, (records, first, last, mac, closed) in spans.items():
                report = ChainReport(chain_id, records, first, last, closed)
                walks[chain_id] = _Walk(report, next_seq=last + 1, prev_mac=mac)
            result.bytes_read = _total_bytes(logs)
            logs = []  # verified: only the checkpoints are left to compare
    for path in logs:
        try:
            with open_log(path) as handle:
                _scan(handle, key, kid, walks, str(path), result)
        except (OSError, EOFError, gzip.BadGzipFile):
            result.problems.append(f"{path}: cannot be read")
    for chain_id, walk in walks.items():
        _finish(walk)
        tail = expected_tail.get(chain_id)
        if tail is not None:
            walk.report.checkpoint_seq = tail[0]
            _check_tail(walk, tail)
    for chain_id, (seq, _mac, where) in expected_tail.items():
        if chain_id not in walks:
            # A signed checkpoint names a chain none of whose records are here.
            report = ChainReport(chain_id, checkpoint_seq=seq)
            report.broken = Break(
                TRUNCATED, 0, where, 0, f"no record of this chain; checkpoint at seq {seq}"
            )
            walks[chain_id] = _Walk(report)
    result.chains = {cid: w.report for cid, w in walks.items()}
    return result


def _total_bytes(logs: Iterable[Path]) -> int:
    total = 0
    for path in logs:
        try:
            total += path.stat().st_size
        except OSError:
            continue  # reported as unreadable by the sequential pass
    return total


_CHUNK_BYTES = 8 * 1024 * 1024
_CHAIN_HEAD = b'{"chain":"'


def _scan(
    handle: BinaryIO, key: bytes, kid: str, walks: dict[str, _Walk], file: str, result: VerifyResult
) -> None:
    """Every line of one file. The common case, the next record of the chain of the line
    before, verifying, is checked inline with the chain's state in locals; anything else goes
    to `_take_line`, which tells what is wrong."""
    number = 0
    rest = b""
    digest = hmac.digest
    walk: _Walk | None = None  # the chain of the line before, while it verifies
    head = b""
    seq = 0
    prev = b""
    records = 0
    held: tuple[bytes, int] | None = None  # a line that is not a record, judged by the next
    last_raw = b""  # the last line verified inline (its time is the chain's last, so far)

    def settle() -> None:
        # Hand the inline state back to the chain's walk.
        if walk is not None:
            walk.next_seq, walk.prev_mac = seq, prev
            walk.report.records += records
            if records:
                walk.report.last_seq = seq - 1
                walk.report.closed = False
                walk.report.last_time = _time_of(last_raw) or walk.report.last_time

    while True:
        chunk = handle.read(_CHUNK_BYTES)
        if not chunk:
            break
        result.bytes_read += len(chunk)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for raw in lines:
            number += 1
            cut = len(raw) - MAC_TAIL_BYTES
            # In JSON text a quote inside a string is escaped, so `,"seq":N,` is the key itself.
            if (
                walk is not None
                and raw.startswith(head)
                and b',"seq":%d,' % seq in raw
                and raw[cut : cut + 8] == MAC_PREFIX
                and b'"audit_checkpoint"' not in raw
            ):
                mac = digest(key, prev + raw[:cut] + b"}", "sha256")
                if mac.hex().encode() == raw[cut + 8 : -2]:
                    seq += 1
                    prev = mac
                    records += 1
                    last_raw = raw
                    continue
            settle()
            walk, records = None, 0
            took = _take_line(key, kid, walks, raw + b"\n", file, number, result)
            if held is not None:
                _settle_held(held, raw, took, file, result)
                held = None
            if took == _ODD:
                # Perhaps a line torn by a crash: the next line (which then goes this way too)
                # may be the record that vouches for it.
                held = (raw, number)
                continue
            # If that line verified, the next one is likely of the same chain: go inline.
            if raw.startswith(_CHAIN_HEAD):
                chain_id = raw[10 : raw.find(b'"', 10)]
                candidate = walks.get(chain_id.decode("ascii", "replace"))
                if (
                    candidate is not None
                    and candidate.suspect is None
                    and candidate.report.broken is None
                ):
                    walk = candidate
                    head = _CHAIN_HEAD + chain_id + b'"'
                    seq, prev = candidate.next_seq, candidate.prev_mac
    settle()
    walk = None
    if rest:
        took = _take_line(key, kid, walks, rest, file, number + 1, result)
        if held is not None:
            _settle_held(held, rest, took, file, result)
            held = None
        if took == _ODD:
            # The file's last bytes, with no newline: a write cut short, nothing after it.
            chain = _HEAD_CHAIN.match(rest)
            result.torn.append(
                TornTail(file, number + 1, len(rest), chain[1].decode() if chain else None, False)
            )
    if held is not None:
        _settle_held(held, b"", _BAD, file, result)


def _time_of(body: bytes) -> str | None:
    found = _TIME.search(body)
    return found[1].decode() if found else None


_ODD = 0  # not a chained record at all
_OK = 1  # the next link of its chain
_BAD = 2  # anything else


def _settle_held(
    held: tuple[bytes, int], after: bytes, took: int, file: str, result: VerifyResult
) -> None:
    """A line that was not a chained record, judged by the line after it: a torn tail when
    that is the verified `audit_tail_repaired` record naming its length and digest."""
    raw, number = held
    if took == _OK and b'"event":"%s"' % TAIL_REPAIRED_EVENT.encode() in after:
        size, digest = _TORN_BYTES.search(after), _TORN_SHA.search(after)
        if (
            size is not None
            and digest is not None
            and int(size[1]) == len(raw)
            and hashlib.sha256(raw).hexdigest().encode() == digest[1]
        ):
            chain = _HEAD_CHAIN.match(raw)
            result.torn.append(
                TornTail(file, number, len(raw), chain[1].decode() if chain else None, True)
            )
            return
    result.problems.append(f"{file}:{number}: {EDITED}: not a chained audit record")


def _read_checkpoints(
    key: bytes,
    kid: str,
    path: Path,
    expected_tail: dict[str, tuple[int, bytes, str]],
    result: VerifyResult,
) -> None:
    try:
        with open_log(path) as handle:
            lines = handle.read().splitlines()
    except (OSError, EOFError, gzip.BadGzipFile):
        result.problems.append(f"{path}: cannot be read")
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            chain_id, seq, mac = (
                str(doc["chain"]),
                int(doc["last_seq"]),
                bytes.fromhex(doc["last_mac"]),
            )
        except (ValueError, KeyError, TypeError):
            result.problems.append(f"{path}:{number}: {EDITED}: checkpoint line is malformed")
            continue
        if not checkpoint_signature_ok(key, line):
            kind = WRONG_KEY if doc.get("kid") != kid else EDITED
            result.problems.append(
                f"{path}:{number}: {kind}: checkpoint of chain {chain_id} seq {seq} does not verify"
            )
            continue
        known = expected_tail.get(chain_id)
        if known is None or seq > known[0]:
            expected_tail[chain_id] = (seq, mac, f"{path}:{number}")


def _take_line(
    key: bytes,
    kid: str,
    walks: dict[str, _Walk],
    raw: bytes,
    file: str,
    number: int,
    result: VerifyResult,
) -> int:
    """Take one line into its chain's walk: _OK when it is the chain's next verified link,
    _ODD when it is not a chained record at all (the caller decides: torn or edited)."""
    if not raw.strip():
        return _BAD
    parts = split_line(raw)
    chain_m = _CHAIN.search(raw)
    seq_m = _SEQ.search(raw)
    if parts is None or chain_m is None or seq_m is None:
        return _ODD
    body, mac = parts
    chain_id = chain_m[1].decode()
    walk = walks.get(chain_id)
    if walk is None:
        walk = walks[chain_id] = _Walk(ChainReport(chain_id))
    line = _Line(int(seq_m[1]), mac, body, file, number)
    report = walk.report
    report.records += 1
    if report.first_seq is None:
        report.first_seq = line.seq
        report.first_time = _time_of(body)
    event = _EVENT.search(body)
    is_checkpoint = event is not None and event[1] == CHECKPOINT_EVENT.encode()
    if is_checkpoint:
        kid_m = _KID.search(body)
        if kid_m is not None:
            walk.kid = kid_m[1].decode()
    if report.broken is not None:
        # Already broken: only look for the skipped sequence number (reordered vs deleted).
        if walk.missing_seq is not None and line.seq == walk.missing_seq:
            walk.seen_after = True
        return _BAD
    if walk.suspect is not None:
        _classify(key, walk, line)
        return _BAD
    if line.seq == walk.next_seq and hmac.compare_digest(
        compute_mac(key, walk.prev_mac, body), mac
    ):
        walk.next_seq = line.seq + 1
        walk.prev_mac = mac
        report.last_seq = line.seq
        report.last_time = _time_of(body) or report.last_time
        report.closed = is_checkpoint and _FINAL in body
        return _OK
    if walk.kid is not None and walk.kid != kid:
        report.broken = Break(WRONG_KEY, line.seq, file, number, f"chain key id {walk.kid}")
        return _BAD
    if line.seq > walk.next_seq:
        # A gap: the missing record is either later in the trail (reordered) or gone (deleted).
        walk.missing_seq = walk.next_seq
        walk.missing_at = (file, number)
        detail = ""
        if event is not None and event[1] == FILE_REPLACED_EVENT.encode():
            # The writer found its file gone from under it and went on in a new one: the
            # records before are wherever that file went, or lost.
            cause = _CAUSE.search(body)
            detail = (
                f"the writer recorded at seq {line.seq} that its file was "
                f"{cause[1].decode() if cause else 'replaced'}; give verify that file too"
            )
        report.broken = Break(DELETED, walk.next_seq, file, number, detail)
        return _BAD
    if line.seq < walk.next_seq:
        report.broken = Break(INSERTED, line.seq, file, number, "sequence number repeated")
        return _BAD
    walk.suspect = line
    walk.suspect_prev = walk.prev_mac
    return _BAD


def _classify(key: bytes, walk: _Walk, after: _Line) -> None:
    """Tell what the suspect line is from the line that follows it in its chain."""
    suspect = walk.suspect
    assert suspect is not None  # noqa: S101 - only called with a suspect
    walk.suspect = None
    report = walk.report
    if after.seq == suspect.seq + 1 and hmac.compare_digest(
        compute_mac(key, suspect.mac, after.body), after.mac
    ):
        report.broken = Break(EDITED, suspect.seq, suspect.file, suspect.line)
        return
    if after.seq == suspect.seq and hmac.compare_digest(
        compute_mac(key, walk.suspect_prev, after.body), after.mac
    ):
        report.broken = Break(INSERTED, suspect.seq, suspect.file, suspect.line)
        return
    if suspect.seq == 0 and after.seq == 1:
        # Neither the first record nor the next verifies, each against its own predecessor:
        # the records were signed with another key.
        report.broken = Break(WRONG_KEY, 0, suspect.file, suspect.line, "no record verifies")
        return
    report.broken = Break(EDITED, suspect.seq, suspect.file, suspect.line)


def _finish(walk: _Walk) -> None:
    report = walk.report
    if walk.suspect is not None:
        suspect, walk.suspect = walk.suspect, None
        report.broken = Break(EDITED, suspect.seq, suspect.file, suspect.line)
    if (
        report.broken is not None
        and report.broken.kind == DELETED
        and walk.missing_seq is not None
        and walk.seen_after
    ):
        file, line = walk.missing_at
        report.broken = Break(REORDERED, walk.missing_seq, file, line, "record appears later")


def _check_tail(walk: _Walk, tail: tuple[int, bytes, str]) -> None:
    report = walk.report
    seq, _mac, where = tail
    if report.broken is not None:
        return
    last = report.last_seq if report.last_seq is not None else -1
    if seq > last:
        report.broken = Break(
            TRUNCATED, last + 1, where, 0, f"checkpoint names seq {seq}, the chain ends at {last}"
        )


def render_text(
    result: VerifyResult,
    completeness: Completeness | None = None,
    writers: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Human-readable lines: one per chain, then each problem, then each registered chain
    the trail does not account for; the last line says whether it all verified, and
    whether chain completeness was checked (`completeness` None: no registry was given).
    `writers`: chain id -> who wrote it (from the registry), added to its line."""
    writers = writers or {}
    for report in sorted(result.chains.values(), key=lambda r: r.chain_id):
        span = f"seq {report.first_seq}..{report.last_seq}" if report.records else "no records"
        who = f" [{writers[report.chain_id]}]" if report.chain_id in writers else ""
        if report.ok:
            state = "closed" if report.closed else "open (still running, or stopped uncleanly)"
            yield f"chain {report.chain_id}: ok, {report.records} records, {span}, {state}{who}"
        else:
            b = report.broken
            assert b is not None  # noqa: S101
            place = f"{b.file}:{b.line}" if b.line else b.file
            extra = f" ({b.detail})" if b.detail else ""
            yield (
                f"chain {report.chain_id}: BROKEN at seq {b.seq}: {b.kind} at {place}{extra}; "
                f"{report.records} records{who}"
            )
    for torn in result.torn:
        whose = f", chain {torn.chain}" if torn.chain else ""
        after = (
            "its file's next writer ended it and recorded it"
            if torn.repaired
            else "nothing after it"
        )
        yield (
            f"{TORN_TAIL} at {torn.file}:{torn.line}: a line cut short by a crash "
            f"({torn.bytes} bytes{whose}; its write never returned, so nothing it recorded "
            f"happened); {after}"
        )
    for problem in result.problems:
        yield f"problem: {problem}"
    if completeness is None:
        from redactor.audit.registry import not_checked

        completeness = not_checked("no chain registry: give --config")
    for gap in completeness.gaps:
        yield f"MISSING: {gap.describe()}"
    for chain_id in completeness.unregistered:
        yield f"chain {chain_id}: not in the chain registry (written before it, or not recorded)"
    if not result.ok or completeness.gaps or completeness.unreadable:
        yield f"verified: FAILED; {completeness.sentence()}"
    elif completeness.checked:
        yield f"verified: ok; {completeness.sentence()}"
    else:
        yield f"verified: the chains found are intact; {completeness.sentence()}"


def result_as_json(result: VerifyResult) -> dict[str, object]:
    """A JSON-ready summary (for the console and `--format json`)."""
    return {
        "ok": result.ok,
        "chains": [
            {
                "chain": r.chain_id,
                "records": r.records,
                "first_seq": r.first_seq,
                "last_seq": r.last_seq,
                "closed": r.closed,
                "first_time": r.first_time,
                "last_time": r.last_time,
                "ok": r.ok,
                "broken": None
                if r.broken is None
                else {
                    "kind": r.broken.kind,
                    "seq": r.broken.seq,
                    "file": r.broken.file,
                    "line": r.broken.line,
                    "detail": r.broken.detail,
                },
            }
            for r in sorted(result.chains.values(), key=lambda r: r.chain_id)
        ],
        "problems": list(result.problems),
        "torn_tails": [
            {
                "kind": TORN_TAIL,
                "file": t.file,
                "line": t.line,
                "bytes": t.bytes,
                "chain": t.chain,
                "repaired": t.repaired,
            }
            for t in result.torn
        ],
    }
