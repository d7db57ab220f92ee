"""`redactor audit report`: what a security team asks of the trail, from its records.

Who revealed what (per subject, tenant, purpose and level), tokenisations per route and
entity type, denied attempts, authentication failures, and subjects whose reveals jump far
above their own usual rate. Building the report is pure (records in, a `Report` out); the
renderers turn it into text, CSV, JSON or HTML. Records hold no values, so neither does this.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redactor.audit.alerts import JUMP, Activity, find_alerts
from redactor.audit.integrity import TrailIntegrity, is_verified
from redactor.audit.verify import expand_paths, open_log

REVEAL_EVENTS = frozenset({"token_revealed", "token_resolved", "token_used"})
DENY_EVENTS = frozenset({"token_denied", "token_use_denied", "console_denied"})
MESSAGE_EVENTS = frozenset({"message_redacted", "message_scanned", "response_redacted"})
AUTH_FAILURE_EVENTS = frozenset({"agent_unauthenticated", "console_unauthenticated"})


def parse_time(text: str) -> datetime:
    """An ISO time; UTC when no offset is given. Raises ValueError."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def read_records(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every JSON record in the trail files (directories: their *.jsonl* files), in file order.

    Lines that are not JSON objects are skipped: `verify` is what judges the trail.
    """
    logs, _checkpoints = expand_paths(paths)
    for path in logs:
        with open_log(path) as handle:
            for raw in handle:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record


@dataclass(frozen=True, slots=True)
class RevealRow:
    subject: str
    tenant: str
    purpose: str
    level: str
    reveals: int
    tokens: int
    unverified: int = 0  # of these records, how many the chains do not vouch for


@dataclass(frozen=True, slots=True)
class TokenisationRow:
    route: str
    tenant: str
    entity: str
    values: int
    messages: int
    unverified: int = 0  # of these records, how many the chains do not vouch for


@dataclass(frozen=True, slots=True)
class DenialRow:
    subject: str
    tenant: str
    reason: str
    attempts: int
    unverified: int = 0  # of these records, how many the chains do not vouch for


@dataclass(frozen=True, slots=True)
class AuthFailureRow:
    route: str
    reason: str
    failures: int
    unverified: int = 0  # of these records, how many the chains do not vouch for


@dataclass(frozen=True, slots=True)
class JumpRow:
    subject: str
    tenant: str
    day: str
    reveals: int
    usual: float
    unverified: int = 0  # of these records, how many the chains do not vouch for


@dataclass(slots=True)
class Report:
    """Every section of the report, rows sorted for reading."""

    since: str | None
    until: str | None
    tenant: str | None
    records: int = 0
    unverified: int = 0  # records in the period the chains do not vouch for
    integrity: dict[str, Any] | None = None  # TrailIntegrity.to_json(); None: not checked
    reveals: list[RevealRow] = field(default_factory=list)
    tokenisations: list[TokenisationRow] = field(default_factory=list)
    denials: list[DenialRow] = field(default_factory=list)
    auth_failures: list[AuthFailureRow] = field(default_factory=list)
    jumps: list[JumpRow] = field(default_factory=list)


def in_period(
    record: dict[str, Any], since: datetime | None, until: datetime | None, tenant: str | None
) -> bool:
    """Whether a record falls in [since, until) and, when given, belongs to `tenant`."""
    if tenant is not None and record.get("tenant") != tenant:
        return False
    if since is None and until is None:
        return True
    try:
        when = parse_time(str(record.get("time")))
    except ValueError:
        return False
    return (since is None or when >= since) and (until is None or when < until)


def build_report(
    records: Iterable[dict[str, Any]],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tenant: str | None = None,
    integrity: TrailIntegrity | None = None,
) -> Report:
    """The report over the records in the period (and tenant).

    Records read through `integrity.read_trail` carry `verified`; every row counts those that
    lack it as `unverified`, and `integrity` (the check they were read under) heads the report.
    """
    report = Report(
        since.isoformat() if since else None,
        until.isoformat() if until else None,
        tenant,
        integrity=integrity.to_json() if integrity is not None else None,
    )
    unverified: Counter[tuple[str, ...]] = Counter()
    reveals: Counter[tuple[str, str, str, str]] = Counter()
    revealed_tokens: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    values: Counter[tuple[str, str, str]] = Counter()
    messages: Counter[tuple[str, str, str]] = Counter()
    denials: Counter[tuple[str, str, str]] = Counter()
    auth: Counter[tuple[str, str]] = Counter()
    per_day: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    days: set[str] = set()
    for record in records:
        if not in_period(record, since, until, tenant):
            continue
        report.records += 1
        bad = 0 if is_verified(record) else 1
        report.unverified += bad
        event = record.get("event")
        day = str(record.get("time", ""))[:10]
        if event in REVEAL_EVENTS:
            key = (
                str(record.get("subject")),
                str(record.get("tenant")),
                str(record.get("purpose") or "-"),
                str(record.get("level")),
            )
            reveals[key] += 1
            unverified["reveal", *key] += bad
            unverified["day", key[0], key[1], day] += bad
            if record.get("token"):
                revealed_tokens[key].add(str(record["token"]))
            per_day[key[0], key[1]][day] += 1
            days.add(day)
        elif event in DENY_EVENTS:
            key3 = (
                str(record.get("subject")),
                str(record.get("tenant")),
                str(record.get("reason")),
            )
            denials[key3] += 1
            unverified["denial", *key3] += bad
        elif event in AUTH_FAILURE_EVENTS:
            key2 = (str(record.get("route")), str(record.get("reason")))
            auth[key2] += 1
            unverified["auth", *key2] += bad
        elif event in MESSAGE_EVENTS:
            for entity, count in dict(record.get("counts") or {}).items():
                key3 = (str(record.get("route")), str(record.get("tenant")), str(entity))
                values[key3] += int(count)
                messages[key3] += 1
                unverified["tokenisation", *key3] += bad
    report.reveals = [
        RevealRow(
            *k, reveals=n, tokens=len(revealed_tokens[k]), unverified=unverified["reveal", *k]
        )
        for k, n in sorted(reveals.items())
    ]
    report.tokenisations = [
        TokenisationRow(
            *k, values=n, messages=messages[k], unverified=unverified["tokenisation", *k]
        )
        for k, n in sorted(values.items())
    ]
    report.denials = [
        DenialRow(*k, attempts=n, unverified=unverified["denial", *k])
        for k, n in sorted(denials.items())
    ]
    report.auth_failures = [
        AuthFailureRow(*k, failures=n, unverified=unverified["auth", *k])
        for k, n in sorted(auth.items())
    ]
    report.jumps = [
        dataclasses.replace(j, unverified=unverified["day", j.subject, j.tenant, j.day])
        for j in find_jumps(per_day, sorted(days))
    ]
    return report


def find_jumps(per_day: dict[tuple[str, str], Counter[str]], days: list[str]) -> list[JumpRow]:
    """Days on which a subject revealed far more than on its baseline day (`alerts`: the
    subject's first days in the period are its baseline's start, never a jump)."""
    activity = (
        Activity(tenant, subject, day, 0, n, 0)
        for (subject, tenant), counts in per_day.items()
        for day, n in counts.items()
    )
    jumps = [
        JumpRow(a.subject, a.tenant, a.day, a.count, a.baseline)
        for a in find_alerts(activity, days)
        if a.kind == JUMP
    ]
    return sorted(jumps, key=lambda j: (j.subject, j.tenant, j.day))


_SECTIONS = (
    (
        "reveals",
        "Who revealed what",
        ("subject", "tenant", "purpose", "level", "reveals", "tokens", "unverified"),
    ),
    (
        "tokenisations",
        "Tokenisations per route and entity type",
        ("route", "tenant", "entity", "values", "messages", "unverified"),
    ),
    ("denials", "Denied attempts", ("subject", "tenant", "reason", "attempts", "unverified")),
    ("auth_failures", "Authentication failures", ("route", "reason", "failures", "unverified")),
    ("jumps", "Reveal-rate jumps", ("subject", "tenant", "day", "reveals", "usual", "unverified")),
)
INTEGRITY_SECTION = "integrity"
_INTEGRITY_COLUMNS = (
    "chain",
    "records",
    "first_seq",
    "last_seq",
    "ok",
    "broken_kind",
    "broken_seq",
    "broken_at",
    "checked_at",
)
# What `--section` accepts: the integrity of the trail, then one file per table.
SECTION_NAMES = (INTEGRITY_SECTION, *(name for name, _title, _columns in _SECTIONS))


def report_as_json(report: Report) -> dict[str, Any]:
    """A JSON-ready dict of the report, the trail's integrity first."""
    data = asdict(report)
    return {"integrity": data.pop("integrity"), **data}


def headline(report: Report) -> str:
    """The integrity sentence the report opens with."""
    if report.integrity is None:
        return "integrity: not checked (these records were not read through verify)"
    return f"integrity: {report.integrity['headline']}"


def render_report(report: Report, fmt: str) -> str:
    """The report as `text`, `json` or `html` (CSV is one file per section: `render_csv`)."""
    if fmt == "json":
        return json.dumps(report_as_json(report), indent=2) + "\n"
    if fmt == "html":
        return _html(report)
    if fmt == "text":
        return _text(report)
    raise ValueError("csv is one file per section: use render_csv")


def render_csv(report: Report, section: str) -> str:
    """One section of the report as a CSV file: a header row, then its rows.

    `integrity` lists every chain with how far it verified; every other section has an
    `unverified` column (its records the chains do not vouch for). Raises KeyError.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    if section == INTEGRITY_SECTION:
        writer.writerow(_INTEGRITY_COLUMNS)
        integrity = report.integrity or {"chains": [], "checked_at": None}
        for chain in integrity["chains"]:
            broken = chain["broken"] or {}
            place = f"{Path(broken['file']).name}:{broken['line']}" if broken else ""
            writer.writerow(
                [
                    chain["chain"],
                    chain["records"],
                    chain["first_seq"],
                    chain["last_seq"],
                    chain["ok"],
                    broken.get("kind", ""),
                    broken.get("seq", ""),
                    place,
                    integrity["checked_at"],
                ]
            )
        return out.getvalue()
    columns = {name: cols for name, _title, cols in _SECTIONS}[section]
    writer.writerow(columns)
    for row in getattr(report, section):
        writer.writerow([getattr(row, c) for c in columns])
    return out.getvalue()


def _period(report: Report) -> str:
    tenant = f", tenant {report.tenant}" if report.tenant else ""
    return f"from {report.since or 'the start'} until {report.until or 'now'}{tenant}"


def _text(report: Report) -> str:
    lines = [headline(report)]
    if report.unverified:
        lines.append(f"UNVERIFIED: {report.unverified} of the records below (column unverified)")
    lines += [f"audit report {_period(report)}: {report.records} records", ""]
    for name, title, columns in _SECTIONS:
        rows = getattr(report, name)
        lines.append(f"{title} ({len(rows)})")
        if not rows:
            lines.append("  none")
        table = [list(columns)] + [[str(getattr(r, c)) for c in columns] for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
        if rows:
            for row in table:
                lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        lines.append("")
    return "\n".join(lines)


def _html(report: Report) -> str:
    esc = html.escape
    ok = report.integrity is not None and report.integrity["ok"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>redactor audit report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin-bottom:2em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".integrity{padding:8px;font-weight:bold}.verified{background:#e6f4e6}"
        ".broken,tr.unverified{background:#fbe3e3;color:#a00}</style>",
        "</head><body><h1>Audit report</h1>",
        f"<p id='integrity' class='integrity {'verified' if ok else 'broken'}'>"
        f"{esc(headline(report))}</p>",
        f"<p>{esc(_period(report))}: {report.records} records"
        + (f", {report.unverified} UNVERIFIED" if report.unverified else "")
        + "</p>",
    ]
    for name, title, columns in _SECTIONS:
        rows = getattr(report, name)
        parts.append(f"<h2>{esc(title)}</h2><table id='{name}'><tr>")
        parts.extend(f"<th>{esc(c)}</th>" for c in columns)
        parts.append("</tr>")
        for row in rows:
            cells = "".join(f"<td>{esc(str(getattr(row, c)))}</td>" for c in columns)
            mark = " class='unverified'" if row.unverified else ""
            parts.append(f"<tr{mark}>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def events_about_token(records: Iterable[dict[str, Any]], token: str) -> list[dict[str, Any]]:
    """Every record that names `token` (redacted in a message, or asked for by an agent)."""
    return [r for r in records if r.get("token") == token or token in (r.get("tokens") or ())]
