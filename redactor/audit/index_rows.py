"""The trail index's tables and what one record becomes in them (`redactor.audit.index`).

`records` holds a row per record a panel lists (reveals, denials, authentication failures,
refused webhooks, key and vault commands) and per record the chains do not vouch for, with its
verify state; messages and the rest are summed per quarter hour (`buckets`, `tokenisations`),
reveals and denials per subject and UTC hour (`activity`, for alerts). No value is ever in a
record, so none is here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from redactor.audit.report import (
    AUTH_FAILURE_EVENTS,
    DENY_EVENTS,
    MESSAGE_EVENTS,
    REVEAL_EVENTS,
)

_COMMANDS = frozenset({"redact_files", "backfill_zendesk"})
REFUSED_EVENT = "message_refused"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL,
  gz INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
  offset INTEGER NOT NULL, lines INTEGER NOT NULL, head_len INTEGER NOT NULL,
  head TEXT NOT NULL, blocks TEXT NOT NULL, part TEXT NOT NULL, held TEXT,
  complete INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS walks(chain TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records(
  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, cat TEXT NOT NULL, event TEXT,
  chain TEXT, seq INTEGER, tenant TEXT, subject TEXT, token TEXT, level TEXT, purpose TEXT,
  reason TEXT, route TEXT, request_id TEXT, ticket TEXT, policy_version TEXT,
  operator TEXT, host TEXT, phase TEXT, exit_code INTEGER, status INTEGER,
  redactions INTEGER NOT NULL, verified INTEGER NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS records_cat ON records(cat, tenant, ts);
CREATE INDEX IF NOT EXISTS records_chain ON records(chain, seq);
CREATE INDEX IF NOT EXISTS records_unverified ON records(ts) WHERE verified = 0;
CREATE TABLE IF NOT EXISTS buckets(
  tenant TEXT NOT NULL, q INTEGER NOT NULL, redactions INTEGER NOT NULL,
  reveals INTEGER NOT NULL, records INTEGER NOT NULL, PRIMARY KEY(tenant, q)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokenisations(
  tenant TEXT NOT NULL, route TEXT NOT NULL, entity TEXT NOT NULL, q INTEGER NOT NULL,
  vals INTEGER NOT NULL, messages INTEGER NOT NULL, unverified INTEGER NOT NULL,
  PRIMARY KEY(tenant, q, route, entity)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activity(
  tenant TEXT NOT NULL, subject TEXT NOT NULL, day TEXT NOT NULL, hour INTEGER NOT NULL,
  reveals INTEGER NOT NULL, denials INTEGER NOT NULL,
  PRIMARY KEY(tenant, subject, day, hour)) WITHOUT ROWID;
"""
TABLES = ("meta", "files", "walks", "records", "buckets", "tokenisations", "activity")
RECORD_COLUMNS = (
    "ts",
    "cat",
    "event",
    "chain",
    "seq",
    "tenant",
    "subject",
    "token",
    "level",
    "purpose",
    "reason",
    "route",
    "request_id",
    "ticket",
    "policy_version",
    "operator",
    "host",
    "phase",
    "exit_code",
    "status",
    "redactions",
    "verified",
    "detail",
)
INSERT_RECORD = (
    f"INSERT INTO records({','.join(RECORD_COLUMNS)}) "  # noqa: S608 - our own column names
    f"VALUES ({','.join('?' * len(RECORD_COLUMNS))})"
)


def category(event: object) -> str:
    """Which panel a record belongs to."""
    if event in MESSAGE_EVENTS:
        return "message"
    if event in REVEAL_EVENTS:
        return "reveal"
    if event in DENY_EVENTS:
        return "deny"
    if event in AUTH_FAILURE_EVENTS:
        return "auth"
    if event == REFUSED_EVENT:
        return "refused"
    if isinstance(event, str) and (event.startswith(("key_", "vault_")) or event in _COMMANDS):
        return "command"
    return "other"


def row_of(record: dict[str, Any], verified: bool, raw: bytes) -> tuple[Any, ...]:
    event = record.get("event")
    cat = category(event)
    counts = record.get("counts")
    redactions = 0
    if cat == "message" and isinstance(counts, dict):
        redactions = sum(n for n in counts.values() if isinstance(n, int))
    exit_code = record.get("exit_code")
    status = record.get("status")
    return (
        epoch_ms(record.get("time")),
        cat,
        _text(event),
        _text(record.get("chain")),
        record.get("seq") if isinstance(record.get("seq"), int) else None,
        _text(record.get("tenant")),
        _text(record.get("subject")),
        _text(record.get("token")),
        _text(record.get("level")),
        _text(record.get("purpose")),
        # A refused webhook's why is its `code` (signature_invalid, body_too_large, ...).
        _text(record.get("reason") if "reason" in record else record.get("code")),
        _text(record.get("route")),
        _text(record.get("request_id")),
        _text(record.get("ticket") or record.get("ticket_id")),
        _text(record.get("policy_version")),
        _text(record.get("operator")),
        _text(record.get("host")),
        _text(record.get("phase")),
        exit_code if isinstance(exit_code, int) else None,
        status if isinstance(status, int) else None,
        redactions,
        int(verified),
        # Commands have many fields of their own (versions, counts): kept whole for export.
        raw.decode("utf-8", "replace") if cat in ("command", "refused") else None,
    )


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


_EPOCH_CACHE: dict[str, int] = {}


def epoch_ms(value: object) -> int:
    """Milliseconds since the epoch of an ISO time (0 when it is not one)."""
    if not isinstance(value, str):
        return 0
    if len(value) == 29 and value.endswith("+00:00") and value[19] == ".":
        # The sink's own form: the second is parsed once (many records share it).
        second = _EPOCH_CACHE.get(value[:19])
        if second is None:
            try:
                second = int(datetime.fromisoformat(value[:19] + "+00:00").timestamp())
            except ValueError:
                return 0
            if len(_EPOCH_CACHE) > 100_000:
                _EPOCH_CACHE.clear()
            _EPOCH_CACHE[value[:19]] = second
        frac = value[20:23]
        return second * 1000 + (int(frac) if frac.isdigit() else 0)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
