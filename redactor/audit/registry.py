"""The chain registry, seen from the audit trail: writers record their chains in the vault's
database (`vault.chains`), and `verify` holds the trail against it.

A chain's lines and its checkpoint lines can all be removed from the files without a trace
in them; its row in the registry stays. `check_completeness` names every registered chain
the trail lacks, that ends before its last registered checkpoint, or whose left-behind file
is gone, by writer kind, command, host, pid, file and times.

What it proves, and what not (README, "Chain registry"): the trail and the database would both
have to be rewritten to hide a chain, and only someone with the audit key can write lines
that verify. Someone with the key and write access to the database can still rewrite both;
checkpoints shipped elsewhere (the SIEM, a WORM store) are the anchor against that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from redactor.audit.registration import (
    ChainRegistry,
    ChainRegistryError,
    LazyStoreRegistry,
    StoreChainRegistry,
)
from redactor.audit.verify import DELETED, ChainReport, VerifyResult
from vault.chains import ChainFile, ChainGenesis, RegisteredChain

__all__ = [
    "ChainFile",
    "ChainGap",
    "ChainRegistry",
    "ChainRegistryError",
    "Completeness",
    "LazyStoreRegistry",
    "RegisteredChain",
    "StoreChainRegistry",
    "check_completeness",
    "describe_chain",
]

MISSING = "missing"
TRUNCATED_BELOW_CHECKPOINT = "below_registered_checkpoint"
FILE_MISSING = "file_missing"


def describe_chain(chain: RegisteredChain, report: ChainReport | None = None) -> str:
    """`cli vault erase-token, host h1, pid 4242, file /var/log/audit-cli.jsonl, started
    2026-12-07T09:00:01.123+00:00, last 2026-12-07T09:00:01.456+00:00`."""
    g = chain.genesis
    kind = f"{g.writer} {g.command}" if g.command else g.writer
    last = chain.checkpoint_at or (report.last_time if report is not None else None)
    parts = [kind, f"host {g.host}", f"pid {g.pid}", f"file {g.file or 'standard output'}"]
    parts.append(f"started {g.started_at}")
    if last:
        parts.append(f"last {last}")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ChainGap:
    """A registered chain the trail does not account for."""

    chain: RegisteredChain
    kind: str  # missing, below_registered_checkpoint, file_missing
    detail: str
    report: ChainReport | None = None

    def describe(self) -> str:
        """One sentence: which chain (writer, host, pid, file, times), what is gone."""
        what = {
            MISSING: "missing",
            TRUNCATED_BELOW_CHECKPOINT: "ends before its registered checkpoint",
            FILE_MISSING: "has a file missing",
        }[self.kind]
        return (
            f"chain {self.chain.chain_id} ({describe_chain(self.chain, self.report)}) {what}: "
            f"{self.detail}"
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        g = self.chain.genesis
        return {
            "chain": g.chain_id,
            "kind": self.kind,
            "detail": self.detail,
            "writer": g.writer,
            "command": g.command,
            "host": g.host,
            "pid": g.pid,
            "file": g.file,
            "started_at": g.started_at,
            "checkpoint_seq": self.chain.checkpoint_seq,
            "checkpoint_at": self.chain.checkpoint_at,
            "sentence": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class Completeness:
    """Whether every chain the registry knows is in the trail (`checked` False: it was not
    compared with a registry at all, and `reason` says why)."""

    checked: bool
    reason: str = ""
    registered: int = 0  # registered chains compared with this trail
    gaps: tuple[ChainGap, ...] = ()
    unregistered: tuple[str, ...] = ()  # chains in the trail the registry does not know
    unreadable: bool = False  # a registry was asked for and could not be read

    @property
    def ok(self) -> bool:
        """Checked, and every registered chain accounted for."""
        return self.checked and not self.gaps

    def sentence(self) -> str:
        """What a reader is told about completeness."""
        if not self.checked:
            return f"chain completeness NOT checked ({self.reason})"
        if self.gaps:
            return f"{len(self.gaps)} of {self.registered} registered chains not accounted for"
        return f"every registered chain accounted for ({self.registered} in the registry)"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "checked": self.checked,
            "reason": self.reason or None,
            "registered": self.registered,
            "ok": self.ok,
            "gaps": [gap.to_json() for gap in self.gaps],
            "unregistered": list(self.unregistered),
        }


def not_checked(reason: str, *, unreadable: bool = False) -> Completeness:
    """Completeness that was not compared with a registry, and why."""
    return Completeness(False, reason, unreadable=unreadable)


def _present(name: str, names: set[str]) -> bool:
    # logrotate keeps the name and adds to it (`audit.jsonl.1`, `audit.jsonl-20261207.gz`).
    return any(n == name or n.startswith((name + ".", name + "-")) for n in names)


def in_scope(chain: RegisteredChain, names: set[str], whole_directories: bool) -> bool:
    """Whether a registered chain belongs to the trail given: every chain written to a file
    when a directory was given, else the chains registered to the files given."""
    if chain.genesis.file is None:
        return False  # written to standard output: not in any file to check
    if whole_directories:
        return True
    own = [chain.genesis.file, *(f.file for f in chain.files if f.file)]
    return any(_present(Path(f).name, names) for f in own)


def _covered(report: ChainReport, first: int, last: int) -> bool:
    # Whether the trail holds the records first..last of the chain (its walk got past them).
    if report.first_seq is None or report.last_seq is None:
        return False
    if report.first_seq > first or report.last_seq < last:
        return False
    broken = report.broken
    return not (broken is not None and broken.kind == DELETED and broken.seq <= last)


def _file_of(chain: RegisteredChain, seq: int) -> str | None:
    """Where the chain's record `seq` was written, as the registry knows it."""
    for f in chain.files:
        if f.first_seq <= seq <= f.last_seq:
            return f.file
    ended = max((f.last_seq for f in chain.files), default=-1)
    return chain.genesis.file if seq > ended else None


def check_completeness(
    result: VerifyResult,
    chains: Sequence[RegisteredChain],
    logs: Iterable[Path],
    *,
    whole_directories: bool,
    since: str | None = None,
    hosts: Iterable[str] | None = None,
) -> Completeness:
    """Hold the verified trail (`result`, from the files `logs`) against the registry.

    `since` (an ISO time as the trail writes them, UTC): a chain closed before it, and a file
    left behind before it, are not expected (retention removed them on purpose). `hosts`:
    only the chains written on these hosts are expected (replicas sharing one vault, each
    with its own trail); None: every host's.
    """
    names = {path.name for path in logs}
    only = None if hosts is None else set(hosts)
    gaps: list[ChainGap] = []
    scoped = [
        c
        for c in chains
        if in_scope(c, names, whole_directories)
        and (only is None or c.genesis.host in only)
        and not (since and c.closed and (c.checkpoint_at or c.genesis.started_at) < since)
    ]
    for chain in scoped:
        report = result.chains.get(chain.chain_id)
        cp = chain.checkpoint_seq
        if report is None or not report.records:
            promised = (
                f"registered through seq {cp} at {chain.checkpoint_at}"
                if cp is not None
                else "registered at its start, no checkpoint registered yet"
            )
            files = sorted({f for f in (chain.genesis.file, *(x.file for x in chain.files)) if f})
            gaps.append(
                ChainGap(
                    chain,
                    MISSING,
                    f"no record of it in the trail ({promised}; its records went to "
                    f"{', '.join(files)})",
                    report,
                )
            )
            continue
        for left in chain.files:
            if since and left.recorded_at < since:
                continue  # left behind before the period: retention may have removed it
            if _covered(report, left.first_seq, left.last_seq):
                continue
            if left.file is not None and _present(Path(left.file).name, names):
                continue  # the file is here; the break inside it is the chain's own
            where = left.file or "a file moved away by an external rotator"
            gaps.append(
                ChainGap(
                    chain,
                    FILE_MISSING,
                    f"records seq {left.first_seq}..{left.last_seq} went to {where} "
                    f"({left.how} at {left.recorded_at}), which is not in the trail",
                    report,
                )
            )
        last = report.last_seq if report.last_seq is not None else -1
        # A chain with a break of its own is reported by verify; past the break nothing is
        # vouched for, so "ends before" would name the wrong place.
        if cp is not None and last < cp and report.broken is None:
            where = _file_of(chain, last + 1)
            gaps.append(
                ChainGap(
                    chain,
                    TRUNCATED_BELOW_CHECKPOINT,
                    f"the trail ends at seq {last}, the registry holds a checkpoint at seq {cp} "
                    f"({chain.checkpoint_at})"
                    + (f"; seq {last + 1} on went to {where}" if where else ""),
                    report,
                )
            )
    known = {c.chain_id for c in chains}
    unregistered = tuple(
        sorted(cid for cid, r in result.chains.items() if r.records and cid not in known)
    )
    return Completeness(True, "", len(scoped), tuple(gaps), unregistered)


def chain_rows(
    result: VerifyResult, chains: Sequence[RegisteredChain], completeness: Completeness
) -> list[dict[str, Any]]:
    """One row per chain, registered or found in the trail: who wrote it, where, when, how
    many records the trail holds, and its state (`ok`, `ok, open`, `broken: KIND at seq N`,
    `missing`, `file_missing`, `below_registered_checkpoint`, with `unregistered` added for
    a chain the registry does not know when one was compared)."""
    gaps: dict[str, list[ChainGap]] = {}
    for gap in completeness.gaps:
        gaps.setdefault(gap.chain.chain_id, []).append(gap)
    registered = {c.chain_id: c for c in chains}
    rows: list[dict[str, Any]] = []
    order = [c.chain_id for c in chains]
    order += sorted(cid for cid in result.chains if cid not in registered)
    for chain_id in order:
        report = result.chains.get(chain_id)
        chain = registered.get(chain_id)
        states = [g.kind for g in gaps.get(chain_id, ())]
        if report is not None and report.broken is not None:
            states.insert(0, f"broken: {report.broken.kind} at seq {report.broken.seq}")
        elif report is not None and report.records and not states:
            states.append("ok" if report.closed else "ok, open")
        if chain is None and completeness.checked:
            states.append("unregistered")
        if chain is not None and not states:
            # In the registry, not in the trail given, and not expected there.
            states.append("not in the files given")
        g = chain.genesis if chain is not None else None
        first = (report.first_time if report is not None else None) or (g.started_at if g else None)
        last = (report.last_time if report is not None else None) or (
            chain.checkpoint_at if chain is not None else None
        )
        rows.append(
            {
                "chain": chain_id,
                "state": "; ".join(states),
                "writer": (f"{g.writer} {g.command}" if g.command else g.writer) if g else None,
                "host": g.host if g else None,
                "pid": g.pid if g else None,
                "file": g.file if g else None,
                "first": first,
                "last": last,
                "records": report.records if report is not None else 0,
                "first_seq": report.first_seq if report is not None else None,
                "last_seq": report.last_seq if report is not None else None,
                "registered_checkpoint_seq": chain.checkpoint_seq if chain is not None else None,
                "files_left": [
                    {"first_seq": f.first_seq, "last_seq": f.last_seq, "file": f.file, "how": f.how}
                    for f in (chain.files if chain is not None else ())
                ],
            }
        )
    return rows


def registry_message(registry: Sequence[RegisteredChain] | Completeness) -> dict[str, Any]:
    """The registry as JSON, to hand to a process that holds a trail against it (the
    console's index worker), or why it could not be read."""
    if isinstance(registry, Completeness):
        return {"not_checked": registry.reason, "unreadable": registry.unreadable}
    return {
        "chains": [
            {
                "genesis": asdict(chain.genesis),
                "checkpoint_seq": chain.checkpoint_seq,
                "checkpoint_mac": chain.checkpoint_mac,
                "checkpoint_at": chain.checkpoint_at,
                "closed": chain.closed,
                "files": [asdict(f) for f in chain.files],
            }
            for chain in registry
        ]
    }


def registry_from_message(
    message: dict[str, Any] | None,
) -> list[RegisteredChain] | Completeness | None:
    """What `registry_message` wrote (None: no registry was given)."""
    if message is None:
        return None
    if "chains" not in message:
        reason = str(message.get("not_checked") or "no chain registry given")
        return not_checked(reason, unreadable=bool(message.get("unreadable")))
    return [
        RegisteredChain(
            genesis=ChainGenesis(**chain["genesis"]),
            checkpoint_seq=chain["checkpoint_seq"],
            checkpoint_mac=chain["checkpoint_mac"],
            checkpoint_at=chain["checkpoint_at"],
            closed=bool(chain["closed"]),
            files=tuple(ChainFile(**f) for f in chain["files"]),
        )
        for chain in message["chains"]
    ]
