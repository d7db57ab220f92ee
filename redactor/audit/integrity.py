"""What a view of the trail may claim: which records the chains vouch for, and the sentence
that says so before any row is shown.

Every view (`audit report`, `audit find`, the security console, `audit export`) reads the
trail through `read_trail`: it verifies the files with `verify.verify_paths` first, then
reads the records, each marked `verified` or not. A record is vouched for only when its chain
verified through its `seq`: a record at or after a chain's first broken link, of a chain that
does not verify at all, written after the check, or whose `chain`/`seq` are not what the
verifier read on the same line, is marked unverified. Views show the integrity sentence first
and the mark in every row; a view never presents an unverified record as fact.

Only bytes that were in the files before the check are read, so a line appended between the
check and the read (forged or not) is never shown as verified.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from redactor.audit.registry import (
    Completeness,
    RegisteredChain,
    check_completeness,
    not_checked,
)
from redactor.audit.verify import VerifyResult, expand_paths, open_log, result_as_json, verify_paths

# The first `chain` and `seq` keys of a line, found the way the verifier finds them: a line
# whose parsed record says otherwise (a duplicated key) is not the line the verifier checked.
_SEQ = re.compile(rb'[{,]"seq":([0-9]{1,18})[,}]')
_CHAIN = re.compile(rb'[{,]"chain":"([0-9A-Za-z_-]{1,64})"')
VERIFIED_KEY = "verified"
# How many chains the sentence names before it sums the rest up.
_NAMED_CHAINS = 4


def readable_time(when: datetime) -> str:
    """`2026-12-07 07:30:48 UTC`: what a person reads (no microseconds, the zone spelt out)."""
    return when.strftime("%Y-%m-%d %H:%M:%S ") + (when.tzname() or "UTC")


@dataclass(frozen=True, slots=True)
class TrailIntegrity:
    """One verification of the trail, and what it vouches for."""

    result: VerifyResult
    checked_at: datetime
    # Held against the vault's chain registry (None: not compared with one).
    completeness: Completeness | None = None

    @property
    def ok(self) -> bool:
        """Whether every chain verified end to end, no file had a problem, and no chain the
        registry knows is missing (when the trail was compared with it)."""
        gaps = self.completeness is not None and bool(self.completeness.gaps)
        return self.result.ok and bool(self.result.chains) and not gaps

    def vouches(self, chain: object, seq: object) -> bool:
        """Whether the record at (`chain`, `seq`) is in the verified part of its chain."""
        if not isinstance(chain, str) or not isinstance(seq, int) or isinstance(seq, bool):
            return False
        report = self.result.chains.get(chain)
        if report is None or report.first_seq is None or report.last_seq is None:
            return False
        if report.broken is not None and seq >= report.broken.seq:
            return False
        return report.first_seq <= seq <= report.last_seq

    def headline(self) -> str:
        """The sentence every view shows first."""
        at = readable_time(self.checked_at)
        chains = sorted(self.result.chains.values(), key=lambda r: r.chain_id)
        completeness = self.completeness or not_checked("no chain registry given")
        if not chains and not self.result.problems and not completeness.gaps:
            return f"does not verify: no audit records found (checked at {at})"
        if self.ok:
            named = [f"seq {r.last_seq} of chain {r.chain_id}" for r in chains[:_NAMED_CHAINS]]
            if len(chains) > _NAMED_CHAINS:
                named.append(
                    f"{len(chains) - _NAMED_CHAINS} more chains each through its last record"
                )
            return (
                f"verified through {', '.join(named)} (every chain) at {at}; "
                f"{completeness.sentence()}"
            )
        faults = [gap.describe() for gap in completeness.gaps]
        for report in chains:
            b = report.broken
            if b is None:
                continue
            place = f", {Path(b.file).name}:{b.line}" if b.line else ""
            faults.append(f"chain {report.chain_id} broken at seq {b.seq} ({b.kind}{place})")
        faults.extend(self.result.problems)
        return (
            f"does not verify: {'; '.join(faults)}. Every record at or after a break is marked "
            f"unverified (checked at {at})"
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: ok, the sentence, when, and verify's per-chain result."""
        completeness = self.completeness or not_checked("no chain registry given")
        return {
            "ok": self.ok,
            "headline": self.headline(),
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
            **{k: v for k, v in result_as_json(self.result).items() if k != "ok"},
            "completeness": completeness.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Trail:
    """A checked trail: its integrity, and the files with the sizes that were checked."""

    integrity: TrailIntegrity
    files: tuple[tuple[Path, int], ...]

    def records(self) -> Iterator[dict[str, Any]]:
        """Every JSON record, in file order, with `verified` set (never taken from the line)."""
        vouches = self.integrity.vouches
        for path, size in self.files:
            for raw in _lines(path, size):
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # verify named it as a problem: the sentence says so
                if not isinstance(record, dict):
                    continue
                chain_m, seq_m = _CHAIN.search(raw), _SEQ.search(raw)
                record[VERIFIED_KEY] = (
                    chain_m is not None
                    and seq_m is not None
                    and record.get("chain") == chain_m.group(1).decode()
                    and record.get("seq") == int(seq_m.group(1))
                    and vouches(record.get("chain"), record.get("seq"))
                )
                yield record


def _lines(path: Path, size: int) -> Iterator[bytes]:
    # Whole lines within the first `size` bytes: a line being written at the end is left out.
    try:
        handle = open_log(path)
    except OSError:
        return  # verify named it as unreadable
    with handle:
        # A compressed (rotated) file is never appended to; its size on disk is not its text's.
        left = sys.maxsize if path.name.endswith(".gz") else size
        for raw in handle:
            left -= len(raw)
            if left < 0 or not raw.endswith(b"\n"):
                return
            yield raw


def read_trail(
    key: bytes,
    paths: Iterable[Path],
    *,
    now: datetime,
    jobs: int = 1,
    registry: Sequence[RegisteredChain] | Completeness | None = None,
) -> Trail:
    """Verify the trail at `paths` under `key` (`now`: when, as the caller's clock says), then
    give its records marked. `jobs` as for `verify_paths` (1 inside a server: it forks).

    `registry`: the chains the vault's registry knows (the trail is held against them: a
    missing chain makes it not verify), or a Completeness saying why it was not (None: not
    compared, and the sentence says so)."""
    paths = list(paths)
    logs, _checkpoints = expand_paths(paths)
    files: list[tuple[Path, int]] = []
    for path in logs:
        try:
            # Sizes before the check: only what the verifier has seen is read afterwards.
            files.append((path, path.stat().st_size))
        except OSError:
            continue
    result = verify_paths(key, paths, jobs=jobs)
    completeness: Completeness | None
    if registry is None or isinstance(registry, Completeness):
        completeness = registry
    else:
        completeness = check_completeness(
            result, registry, logs, whole_directories=any(p.is_dir() for p in paths)
        )
    return Trail(TrailIntegrity(result, now, completeness), tuple(files))


def is_verified(record: Mapping[str, Any]) -> bool:
    """Whether a record read through `read_trail` is vouched for."""
    return record.get(VERIFIED_KEY) is True
