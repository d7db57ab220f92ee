"""The audit chain registry (schema step 7): every audit chain's genesis, its latest
checkpoint and the files its records went to, kept in the vault's database.

The audit trail lives in files an operator (or an intruder) can edit; a chain whose lines and
checkpoint lines are all removed leaves no trace in them. The registry is a second witness,
in another place: `redactor audit verify --config` compares the trail with it and names a
chain, or a rotated file, that is gone. Writers record a chain when it starts, at each
checkpoint and at its close (never per record), so the proxy's hot path pays nothing.

Rows hold the writer's description (kind, command, host, pid, file), sequence numbers, a MAC
and ISO times: never a record's content, never a value. The SQL of both stores lives here;
the stores add thin methods (`record_chain`, `list_chains`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SQLITE_STEP: tuple[str, ...] = (
    """CREATE TABLE audit_chains (
        chain_id TEXT PRIMARY KEY,
        writer TEXT NOT NULL,
        command TEXT,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        file TEXT,
        key_id TEXT NOT NULL,
        started_at TEXT NOT NULL,
        checkpoint_seq INTEGER,
        checkpoint_mac TEXT,
        checkpoint_at TEXT,
        closed INTEGER NOT NULL DEFAULT 0
    )""",
    # One row per file a chain left behind while it went on elsewhere (a size rotation, or an
    # external rotator that moved it): `file` is where the records went, None when unknown.
    """CREATE TABLE audit_chain_files (
        chain_id TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        file TEXT,
        how TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (chain_id, first_seq)
    )""",
)

POSTGRES_STEP: tuple[str, ...] = (
    """CREATE TABLE audit_chains (
        chain_id text PRIMARY KEY,
        writer text NOT NULL,
        command text,
        host text NOT NULL,
        pid bigint NOT NULL,
        file text,
        key_id text NOT NULL,
        started_at text NOT NULL,
        checkpoint_seq bigint,
        checkpoint_mac text,
        checkpoint_at text,
        closed boolean NOT NULL DEFAULT false
    )""",
    """CREATE TABLE audit_chain_files (
        chain_id text NOT NULL,
        first_seq bigint NOT NULL,
        last_seq bigint NOT NULL,
        file text,
        how text NOT NULL,
        recorded_at text NOT NULL,
        PRIMARY KEY (chain_id, first_seq)
    )""",
)


@dataclass(frozen=True, slots=True)
class ChainGenesis:
    """Who writes a chain, where, since when."""

    chain_id: str
    writer: str  # serve, worker, cli, redact, backfill
    command: str | None  # `vault erase-token`, `redact`, a worker's number, ...
    host: str
    pid: int
    file: str | None  # the live file (None: standard output)
    key_id: str
    started_at: str


@dataclass(frozen=True, slots=True)
class ChainCheckpoint:
    """A checkpoint record the chain wrote: its seq, its MAC (hex), when, and whether final."""

    chain_id: str
    seq: int
    mac: str
    at: str
    final: bool


@dataclass(frozen=True, slots=True)
class ChainFile:
    """Records `first_seq..last_seq` of a chain, left in `file` when the writer went on in a
    new file. `how`: rotated (the writer renamed it), or moved, deleted, replaced, reopened
    (an external rotator or someone else did; `file` is the path it had)."""

    chain_id: str
    first_seq: int
    last_seq: int
    file: str | None
    how: str
    recorded_at: str


@dataclass(frozen=True, slots=True)
class ChainUpdate:
    """What a writer records in one transaction: any of its genesis, a checkpoint, files."""

    genesis: ChainGenesis | None = None
    checkpoint: ChainCheckpoint | None = None
    files: tuple[ChainFile, ...] = ()


@dataclass(frozen=True, slots=True)
class RegisteredChain:
    """One chain as the registry knows it."""

    genesis: ChainGenesis
    checkpoint_seq: int | None
    checkpoint_mac: str | None
    checkpoint_at: str | None
    closed: bool
    files: tuple[ChainFile, ...] = field(default=())

    @property
    def chain_id(self) -> str:
        """The chain's id, as in its records."""
        return self.genesis.chain_id


# The statements, in SQLite's `?` style; `postgres_sql` renumbers them.
INSERT_GENESIS = (
    "INSERT INTO audit_chains (chain_id, writer, command, host, pid, file, key_id, started_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chain_id) DO NOTHING"
)
# Checkpoints only move forward: a late retry of an older one never lowers the mark.
UPDATE_CHECKPOINT = (
    "UPDATE audit_chains SET checkpoint_seq = ?, checkpoint_mac = ?, checkpoint_at = ?, "
    "closed = ? WHERE chain_id = ? AND (checkpoint_seq IS NULL OR checkpoint_seq <= ?)"
)
INSERT_FILE = (
    "INSERT INTO audit_chain_files (chain_id, first_seq, last_seq, file, how, recorded_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (chain_id, first_seq) DO NOTHING"
)
SELECT_CHAINS = (
    "SELECT chain_id, writer, command, host, pid, file, key_id, started_at, checkpoint_seq, "
    "checkpoint_mac, checkpoint_at, closed FROM audit_chains ORDER BY started_at, chain_id"
)
SELECT_FILES = (
    "SELECT chain_id, first_seq, last_seq, file, how, recorded_at FROM audit_chain_files "
    "ORDER BY chain_id, first_seq"
)


def postgres_sql(statement: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...`."""
    parts = statement.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], start=1)) + parts[-1]


def statements(update: ChainUpdate) -> list[tuple[str, tuple[Any, ...]]]:
    """The (statement, parameters) pairs that record `update`, genesis first."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    g = update.genesis
    if g is not None:
        out.append(
            (
                INSERT_GENESIS,
                (g.chain_id, g.writer, g.command, g.host, g.pid, g.file, g.key_id, g.started_at),
            )
        )
    for f in update.files:
        out.append(
            (INSERT_FILE, (f.chain_id, f.first_seq, f.last_seq, f.file, f.how, f.recorded_at))
        )
    c = update.checkpoint
    if c is not None:
        out.append((UPDATE_CHECKPOINT, (c.seq, c.mac, c.at, c.final, c.chain_id, c.seq)))
    return out


def build_chains(
    chain_rows: Sequence[Sequence[Any]], file_rows: Sequence[Sequence[Any]]
) -> list[RegisteredChain]:
    """RegisteredChain values from the rows of SELECT_CHAINS and SELECT_FILES."""
    files: dict[str, list[ChainFile]] = {}
    for r in file_rows:
        files.setdefault(str(r[0]), []).append(
            ChainFile(str(r[0]), int(r[1]), int(r[2]), r[3], str(r[4]), str(r[5]))
        )
    return [
        RegisteredChain(
            ChainGenesis(
                str(r[0]), str(r[1]), r[2], str(r[3]), int(r[4]), r[5], str(r[6]), str(r[7])
            ),
            None if r[8] is None else int(r[8]),
            r[9],
            r[10],
            bool(r[11]),
            tuple(files.get(str(r[0]), ())),
        )
        for r in chain_rows
    ]
