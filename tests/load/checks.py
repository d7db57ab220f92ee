"""What must hold after a load run, with or without faults, and the figures it yields.

`Tally` reads everything a run left behind: what each sender was answered, every request the
stand-in upstream received, the vault's rows, the server logs, the audit trails, /metrics and
the database bytes. `problems` lists what went wrong in words (never a value); the suites
assert it is empty and the benchmark prints the figures.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from redactor.settings import Overrides, load_settings
from tests.bodies.shapes import decoded_texts
from tests.load.driver import Outcome
from tests.load.harness import PG_DSN, TENANT, Site
from tests.load.messages import Message, find_known, known_digits
from tests.load.standin import Received
from vault import find_tokens
from vault.service import Resolved
from vault.startup import open_vault


def _accepted(outcome: Outcome | None, mode: str) -> bool:
    if outcome is None:
        return False
    return outcome.status == 202 if mode == "queued" else 200 <= outcome.status < 300


@dataclass
class Tally:
    """The figures of one run and the problems found; built by `tally`."""

    mode: str
    pushed: int = 0
    accepted: int = 0
    refused: int = 0  # answered with an error: the sender's to retry
    unanswered: int = 0  # no answer at all (connection cut, timeout)
    receipts: int = 0  # requests the upstream got
    delivered: int = 0  # accepted messages the upstream answered 2xx at least once
    lost: int = 0  # accepted, never delivered
    duplicates: int = 0  # extra copies the upstream took (2xx or cut answer) beyond the first
    duplicates_after_dedupe: int = 0  # the same, counted by Idempotency-Key
    leaked: int = 0  # places a known value was found
    tokens: int = 0  # distinct tokens seen upstream
    vault_rows: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # error answers by code
    problems: list[str] = field(default_factory=list)
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)

    def figures(self) -> dict[str, object]:
        return {
            k: (dict(v) if isinstance(v, Counter) else v)
            for k, v in self.__dict__.items()
            if k not in ("problems", "outcomes")
        }


def _took(r: Received) -> bool:
    """The upstream handled the request (answered 2xx, or its answer was cut on the way)."""
    return 200 <= r.answer < 300 or r.answer == 0


@dataclass(frozen=True)
class OutboxRow:
    """An outbox item as stored (read with SQL, beside the store's own code)."""

    id: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    lease_owner: str | None


async def outbox_rows(site: Site) -> list[OutboxRow]:
    """Every item in the site's outbox now, pending and dead."""
    sql = "SELECT id, target, headers, body, lease_owner FROM outbox"
    if site.backend == "sqlite":
        import aiosqlite

        async with aiosqlite.connect(site.sqlite_file) as db:
            rows = [tuple(r) for r in await db.execute_fetchall(sql)]
    else:
        conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": site.schema})
        try:
            rows = [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()
    return [
        OutboxRow(r[0], r[1], [(n, v) for n, v in json.loads(r[2])], bytes(r[3]), r[4])
        for r in rows
    ]


async def tally(
    site: Site,
    messages: Sequence[Message],
    outcomes: Mapping[str, Outcome],
    *,
    mode: str,
    metrics: Iterable[str] = (),
    outbox: Iterable[OutboxRow] = (),
    blobs: Mapping[str, bytes] | None = None,
) -> Tally:
    """Check a finished run (servers stopped or idle, outbox drained). `blobs` are more bytes
    to search (the database files as they were while the servers ran). Never prints a value."""
    t = Tally(mode, pushed=len(messages), outcomes=outcomes)
    t.statuses = Counter(o.status for o in outcomes.values())
    t.errors = Counter(f"{o.status} {o.error}" for o in outcomes.values() if o.error)
    known = known_digits(messages)
    by_id = {m.id: m for m in messages}
    received = site.upstream.received
    t.receipts = len(received)
    per_message: dict[str, list[Received]] = defaultdict(list)
    for r in received:
        if r.message_id not in by_id:
            t.problems.append(f"the upstream got a request of no known message: {r.path}")
            continue
        per_message[r.message_id].append(r)

    for message in messages:
        outcome = outcomes.get(message.id)
        copies = per_message.get(message.id, [])
        took = [r for r in copies if _took(r)]
        if _accepted(outcome, mode):
            t.accepted += 1
            if any(200 <= r.answer < 300 for r in copies):
                t.delivered += 1
            else:
                t.lost += 1
                t.problems.append(f"{message.id}: accepted ({outcome.status}) and never delivered")
        elif outcome is not None and outcome.status:
            t.refused += 1
        else:
            t.unanswered += 1
        t.duplicates += max(0, len(took) - 1)
        if mode == "sync" and len(copies) > 1:
            t.problems.append(f"{message.id}: forwarded {len(copies)} times in sync mode")
        if mode == "queued" and copies and None in {r.idempotency_key for r in copies}:
            t.problems.append(f"{message.id}: a delivery without Idempotency-Key")
    # Sync deliveries carry no key to drop duplicates by: what arrived twice stays twice.
    t.duplicates_after_dedupe = _dedupe(per_message, t) if mode == "queued" else t.duplicates

    await _check_redaction(site, messages, per_message, known, t)
    _check_leaks("the upstream's request headers", _headers_bytes(received), known, t)
    for path in site.log_files():
        _check_leaks(path.name, path.read_bytes(), known, t)
    for n, text in enumerate(metrics):
        _check_leaks(f"/metrics scrape {n}", text.encode(), known, t)
    for name, data in {**(blobs or {}), **(await database_bytes(site))}.items():
        _check_leaks(name, data, known, t)
    for row in outbox:
        _check_outbox_row(row, known, t)
    await _check_tools(site, known, t)
    return t


def _check_outbox_row(row: OutboxRow, known: set[str], t: Tally) -> None:
    """A queued item holds what the upstream will get: read it as the upstream would."""
    headers = {n.lower(): v for n, v in row.headers}
    where = f"outbox item {row.id}"
    _check_leaks(where, row.target.encode() + json.dumps(row.headers).encode() + row.body, known, t)
    texts = decoded_texts(row.body, headers.get("content-type", "application/octet-stream"))
    _check_leaks(where + " as read", "\n".join(texts).encode(), known, t)


def _dedupe(per_message: Mapping[str, list[Received]], t: Tally) -> int:
    """Queued: one key per message and one message per key; returns copies left after dedupe."""
    owners: dict[str, set[str]] = defaultdict(set)
    left = 0
    for message_id, copies in per_message.items():
        keys = {r.idempotency_key for r in copies if r.idempotency_key}
        if len(keys) > 1:
            t.problems.append(f"{message_id}: {len(keys)} idempotency keys for one message")
        for key in keys:
            owners[key].add(message_id)
        taken = {r.idempotency_key for r in copies if _took(r)}
        left += max(0, len(taken) - 1)
    for key, ids in owners.items():
        if len(ids) > 1:
            t.problems.append(f"idempotency key {key} shared by {len(ids)} messages")
    return left


async def _check_redaction(
    site: Site,
    messages: Sequence[Message],
    per_message: Mapping[str, list[Received]],
    known: set[str],
    t: Tally,
) -> None:
    """Every copy upstream holds tokens for the values its message held, and no value; one
    token per value, and the vault holds no more rows than there were values."""
    by_id = {m.id: m for m in messages}
    wanted: dict[str, set[str]] = {}
    tokens_of: dict[str, set[str]] = defaultdict(set)  # message id -> tokens upstream
    for message_id, copies in per_message.items():
        message = by_id[message_id]
        original = "\n".join(decoded_texts(message.body, message.content_type))
        wanted[message_id] = set(find_known(original.encode(), known))
        for r in copies:
            _check_leaks(f"{message_id} as the upstream got it", r.body, known, t)
            texts = "\n".join(decoded_texts(r.body, message.content_type))
            _check_leaks(f"{message_id} as the upstream read it", texts.encode(), known, t)
            tokens_of[message_id].update(find_tokens(texts))
            tokens_of[message_id].update(find_tokens(r.body.decode("utf-8", "replace")))
    every = sorted({tok for toks in tokens_of.values() for tok in toks})
    t.tokens = len(every)
    resolved = await resolve(site, every)
    for tok in every:
        if tok not in resolved:
            t.problems.append(f"a token the upstream got does not resolve: {tok}")
    tokens_per_value: dict[str, set[str]] = defaultdict(set)
    for tok, digits in resolved.items():
        tokens_per_value[digits].add(tok)
    for toks in tokens_per_value.values():
        if len(toks) > 1:
            t.problems.append(f"{len(toks)} tokens for one value: {sorted(toks)}")
    for message_id, values in wanted.items():
        got = {resolved.get(tok) for tok in tokens_of[message_id]}
        if missing := values - got:
            t.problems.append(f"{message_id}: {len(missing)} value(s) not replaced by a token")
    t.vault_rows = await vault_rows(site)
    if t.vault_rows > len(known):
        t.problems.append(f"{t.vault_rows} vault rows for {len(known)} distinct values")


async def resolve(site: Site, tokens: Sequence[str]) -> dict[str, str]:
    """token -> digits, through the vault the site's servers use (in this process)."""
    settings = load_settings(Overrides(config=str(site.config_file("check", 1, 2))), site.env())
    out: dict[str, str] = {}
    async with await open_vault(settings.vault, create=False) as vault:
        for start in range(0, len(tokens), 500):
            results = await vault.resolve_many(TENANT, list(tokens[start : start + 500]))
            out.update({k: r.value for k, r in results.items() if isinstance(r, Resolved)})
    return out


async def vault_rows(site: Site) -> int:
    if site.backend == "sqlite":
        import aiosqlite

        async with aiosqlite.connect(site.sqlite_file) as db:
            rows = await db.execute_fetchall("SELECT count(*) FROM tokens")
            return int(next(iter(rows))[0])
    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": site.schema})
    try:
        return int(await conn.fetchval("SELECT count(*) FROM tokens"))
    finally:
        await conn.close()


async def database_bytes(site: Site) -> dict[str, bytes]:
    """The database as stored: SQLite file, WAL and shared memory; every PostgreSQL table of
    the site's schema, row by row as text."""
    if site.backend == "sqlite":
        found: dict[str, bytes] = {}
        for path in sorted(site.data_dir.glob("vault.db*")):
            try:
                found[path.name] = path.read_bytes()
            except FileNotFoundError:
                continue
        return found
    conn = await asyncpg.connect(PG_DSN)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            site.schema,
        )
        dumped = {}
        for row in tables:
            name = row["table_name"]
            rows = await conn.fetch(f'SELECT t::text AS r FROM "{site.schema}"."{name}" t')  # noqa: S608 - names from the catalog
            dumped[f"table {name}"] = "\n".join(r["r"] for r in rows).encode()
        return dumped
    finally:
        await conn.close()


def _headers_bytes(received: Iterable[Received]) -> bytes:
    return "\n".join(
        f"{r.method} {r.path}\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        for r in received
    ).encode()


def _check_leaks(where: str, data: bytes, known: set[str], t: Tally) -> None:
    found = set(find_known(data, known))
    if found:
        t.leaked += len(found)
        t.problems.append(f"{len(found)} known value(s) in {where}")


async def _check_tools(site: Site, known: set[str], t: Tally) -> None:
    """The README's checks: the audit chains verify, the vault lacks no token a message
    carried, the key ring fits the vault."""
    trail = str(site.data_dir)
    commands: list[tuple[str, ...]] = [
        ("audit", "verify", "--jobs", "1", trail),
        ("vault", "reconcile", "--audit", trail),
        ("keys", "list"),
    ]
    if t.mode == "queued":
        config = str(site.config_file("check", 1, 2))
        commands += [
            ("outbox", "list", "--json", "--config", config),
            ("outbox", "list", "--dead", "--json", "--config", config),
        ]
    runs = await site.cli_batch(*commands)
    for argv, (code, out, err) in zip(commands, runs, strict=True):
        name = " ".join(a for a in argv if not a.startswith("/"))
        if code != 0:
            t.problems.append(f"`redactor {name}` exited {code}: {(out + err)[-1500:]}")
        _check_leaks(f"`redactor {name}` output", (out + err).encode(), known, t)
        if argv[0] == "outbox" and out.strip():
            # Drained: nothing pending, nothing dead.
            t.problems.append(f"`redactor {name}` lists {len(out.splitlines())} message(s)")
