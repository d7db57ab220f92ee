"""`redactor audit export`: the verified trail as a stream for a SIEM, in its own field names.

Records come from `integrity.read_trail`: only records the chains vouch for are exported as
events. Where a chain breaks (at its first record at or after the break, or at the end when
none follows), an integrity event takes the place of what can no longer be vouched for; so
does each record that is unverified for another reason, and each problem with a file. A SIEM
that alerts on `audit_integrity_failed` sees a forged trail the moment it is exported.

Formats (the mapping is documented in README, "Export to a SIEM"):
- `jsonl`: the record as written (canonical JSON), with `verified: true`;
- `ecs`: Elastic Common Schema 8 field names; what ECS has no field for under `redactor.*`;
- `ocsf`: OCSF 1.1.0 API Activity (class 6003); what OCSF has no attribute for in `unmapped`.

Pure: records in, dicts out. Records hold no values, so neither does the export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redactor import __version__
from redactor.audit.integrity import VERIFIED_KEY, TrailIntegrity, is_verified
from redactor.audit.report import parse_time

FORMATS = ("jsonl", "ecs", "ocsf")
# Not an audit record kind (never in the trail): what the export stream says at a break.
INTEGRITY_ALERT = "audit_integrity_failed"

_SUCCESS_REASONS = frozenset({"granted", "forwarded"})
_ACCESS_PREFIXES = ("token_", "console_", "agent_")
_KEY_COMMANDS = ("key_", "vault_")
OCSF_VERSION = "1.1.0"
OCSF_CLASS_API_ACTIVITY = 6003
OCSF_CATEGORY_APPLICATION = 6
# OCSF API Activity activity_id: 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other.
_OCSF_ACTIVITY = {
    "message_redacted": 1,
    "token_revealed": 2,
    "token_resolved": 2,
    "token_denied": 2,
    "console_viewed": 2,
    "console_denied": 2,
    "vault_purge": 4,
    "vault_erase_token": 4,
    "vault_erase_tenant": 4,
    "key_rotate": 3,
    "key_rewrap": 3,
    "key_retire": 4,
}
# Keys every format maps to a field of its own; the rest go to redactor.* / unmapped.
_MAPPED = frozenset({"event", "time", "subject", "tenant", "request_id", "reason", "chain", "seq"})


def _outcome(record: dict[str, Any]) -> str:
    """success, failure or unknown, as ECS spells it."""
    event = str(record.get("event", ""))
    reason = record.get("reason")
    if reason is not None:
        return "success" if reason in _SUCCESS_REASONS else "failure"
    if event.startswith(_KEY_COMMANDS):
        code = record.get("exit_code")
        return "unknown" if code is None else ("success" if code == 0 else "failure")
    if event in ("message_refused", "message_upstream_failed", "policy_reload_failed"):
        return "failure"
    return "success" if event.startswith("message_") else "unknown"


def _epoch_ms(text: object) -> int | None:
    try:
        return int(parse_time(str(text)).timestamp() * 1000)
    except ValueError:
        return None


@dataclass(slots=True)
class ExportCursor:
    """What a following export has sent: the last seq per chain, and the integrity events
    (so each break is announced once, however many times the trail is checked again)."""

    sent: dict[str, int] = field(default_factory=dict)
    announced: set[str] = field(default_factory=set)


def integrity_events(
    records: Iterable[dict[str, Any]],
    integrity: TrailIntegrity,
    cursor: ExportCursor | None = None,
) -> Iterator[dict[str, Any]]:
    """The verified records, with an integrity record wherever the trail stops vouching.

    An integrity record: `event: audit_integrity_failed`, `kind` (edited, deleted, ...,
    `unverified` for a record outside any break, `problem` for a file), `chain`, `seq`,
    `where` and the headline, `time` the check's. With a `cursor` (`--follow`), what it
    records as sent is skipped and what is sent now is added to it.
    """
    cursor = cursor if cursor is not None else ExportCursor()
    chains = integrity.result.chains
    announced = cursor.announced
    checked = integrity.checked_at.isoformat(timespec="milliseconds")

    def once(mark: str, doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if mark not in announced:
            announced.add(mark)
            yield doc

    def broken(chain_id: str) -> Iterator[dict[str, Any]]:
        b = chains[chain_id].broken
        assert b is not None  # noqa: S101 - only called for a broken chain
        where = f"{b.file}:{b.line}" if b.line else b.file
        doc = _integrity(checked, b.kind, chain_id, b.seq, where, integrity.headline())
        yield from once(f"chain:{chain_id}", doc)

    for record in records:
        chain_id, seq = record.get("chain"), record.get("seq")
        if is_verified(record):
            if seq > cursor.sent.get(chain_id, -1):
                cursor.sent[chain_id] = seq
                yield record
            continue
        report = chains.get(chain_id) if isinstance(chain_id, str) else None
        if report is not None and report.broken is not None:
            yield from broken(str(chain_id))  # covers the rest of its chain
            continue
        doc = _integrity(checked, "unverified", chain_id, seq, None, integrity.headline())
        yield from once(f"record:{chain_id}:{seq}", doc)
    for chain_id in sorted(chains):
        if chains[chain_id].broken is not None:
            yield from broken(chain_id)
    for problem in integrity.result.problems:
        doc = _integrity(checked, "problem", None, None, problem, integrity.headline())
        yield from once(f"problem:{problem}", doc)


def _integrity(
    time: str, kind: str, chain: object, seq: object, where: str | None, headline: str
) -> dict[str, Any]:
    return {
        "event": INTEGRITY_ALERT,
        "time": time,
        "kind": kind,
        "chain": chain,
        "seq": seq,
        "where": where,
        "headline": headline,
        VERIFIED_KEY: False,
    }


def to_ecs(record: dict[str, Any]) -> dict[str, Any]:
    """One record in Elastic Common Schema field names."""
    event = str(record.get("event", ""))
    alert = event == INTEGRITY_ALERT
    if alert:
        category, kind_type = ["configuration"], ["info"]
    elif event.endswith("unauthenticated"):
        category, kind_type = ["authentication"], ["info"]
    elif event.startswith(_ACCESS_PREFIXES):
        category, kind_type = ["database"], ["access"]
    elif event.startswith(_KEY_COMMANDS) or event.startswith("policy_"):
        category, kind_type = ["configuration"], ["change"]
    elif event.startswith("message_") or event == "response_redacted":
        category, kind_type = ["web"], ["info"]
    else:
        category, kind_type = ["process"], ["info"]
    doc: dict[str, Any] = {
        "@timestamp": record.get("time"),
        "ecs": {"version": "8.11.0"},
        "event": {
            "kind": "alert" if alert else "event",
            "category": category,
            "type": kind_type,
            "action": event,
            "outcome": "failure" if alert else _outcome(record),
            "dataset": "redactor.audit",
            "module": "redactor",
            "sequence": record.get("seq"),
            "id": f"{record.get('chain')}:{record.get('seq')}",
        },
        "redactor": {k: v for k, v in record.items() if k not in _MAPPED and v is not None},
    }
    if record.get("reason") is not None:
        doc["event"]["reason"] = record["reason"]
    if record.get("subject") is not None:
        doc["user"] = {"name": record["subject"]}
    if record.get("tenant") is not None:
        doc["organization"] = {"id": record["tenant"]}
    if record.get("request_id") is not None:
        doc["http"] = {"request": {"id": record["request_id"]}}
    doc["redactor"]["chain"] = record.get("chain")
    return doc


def to_ocsf(record: dict[str, Any]) -> dict[str, Any]:
    """One record as an OCSF 1.1.0 API Activity event."""
    event = str(record.get("event", ""))
    alert = event == INTEGRITY_ALERT
    activity = 99 if alert else _OCSF_ACTIVITY.get(event, 99)
    outcome = "failure" if alert else _outcome(record)
    doc: dict[str, Any] = {
        "class_uid": OCSF_CLASS_API_ACTIVITY,
        "category_uid": OCSF_CATEGORY_APPLICATION,
        "activity_id": activity,
        "type_uid": OCSF_CLASS_API_ACTIVITY * 100 + activity,
        "time": _epoch_ms(record.get("time")),
        # 1 Informational; a trail that does not verify is 5 Critical.
        "severity_id": 5 if alert else 1,
        "status_id": {"success": 1, "failure": 2}.get(outcome, 0),
        "api": {"operation": event},
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "redactor", "vendor_name": "redactor", "version": __version__},
            "log_name": "redactor-audit",
            "event_code": event,
            "uid": f"{record.get('chain')}:{record.get('seq')}",
            "sequence": record.get("seq"),
        },
        "unmapped": {k: v for k, v in record.items() if k not in _MAPPED and v is not None},
    }
    doc["unmapped"]["chain"] = record.get("chain")
    if record.get("reason") is not None:
        doc["status_detail"] = record["reason"]
    if alert:
        doc["message"] = record.get("headline")
    if record.get("subject") is not None:
        doc["actor"] = {"user": {"uid": record["subject"], "name": record["subject"]}}
    if record.get("tenant") is not None:
        doc["metadata"]["tenant_uid"] = record["tenant"]
    if record.get("request_id") is not None:
        doc["api"]["request"] = {"uid": record["request_id"]}
        doc["metadata"]["correlation_uid"] = record["request_id"]
    return doc


def export_records(
    records: Iterable[dict[str, Any]],
    integrity: TrailIntegrity,
    fmt: str,
    *,
    since: datetime | None = None,
    cursor: ExportCursor | None = None,
) -> Iterator[dict[str, Any]]:
    """The export stream in `fmt`: verified records from `since` on, integrity events always
    (a break before `since` still makes the rest of its chain unverifiable). With `cursor`,
    only what was not sent before."""
    convert = {"jsonl": lambda r: r, "ecs": to_ecs, "ocsf": to_ocsf}[fmt]
    for record in integrity_events(records, integrity, cursor):
        if since is not None and record.get("event") != INTEGRITY_ALERT:
            try:
                if parse_time(str(record.get("time"))) < since:
                    continue
            except ValueError:
                continue
        yield convert(record)
