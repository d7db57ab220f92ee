"""What the console shows, answered from the trail's index (`redactor.audit.index`): true
totals with paging and sort, filters that apply to every panel that has the column, a series
in the viewer's time zone, alerts, and any panel as CSV or JSON.

A query costs what its answer costs: counts and pages come from indexed rows of one kind in
the period; the series from quarter-hour sums kept as the index is built (from the reveal
rows themselves only when a filter narrows the reveals). Times are shown in the viewer's zone,
to the second.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redactor.audit.alerts import BASELINE_WINDOW_DAYS, Activity, Alert, find_alerts
from redactor.audit.index import QUARTER_S, TrailIndex

PAGE_DEFAULT = 50
PAGE_MAX = 500
EXPORT_MAX_ROWS = 500_000
_SIGNATURE_CODES = ("signature_",)
_LIMIT_CODES = ("body_too_large", "too_many_", "nesting_too_deep")


@dataclass(frozen=True, slots=True)
class Panel:
    """One table: which records, which columns (name -> SQL), whether tenant-less records
    (agent authentication failures, key commands: no tenant of their own) belong in it."""

    title: str
    categories: tuple[str, ...]
    columns: dict[str, str]
    tenantless: bool = False


_COMMON = {"time": "ts"}
PANELS: dict[str, Panel] = {
    "reveals": Panel(
        "Reveals",
        ("reveal",),
        {
            **_COMMON,
            "subject": "subject",
            "token": "token",
            "level": "level",
            "purpose": "purpose",
            "ticket": "ticket",
            "request_id": "request_id",
            "route": "route",
            "policy_version": "policy_version",
            "event": "event",
        },
    ),
    "denials": Panel(
        "Denied attempts",
        ("deny",),
        {
            **_COMMON,
            "subject": "subject",
            "token": "token",
            "reason": "reason",
            "purpose": "purpose",
            "ticket": "ticket",
            "request_id": "request_id",
            "route": "route",
            "policy_version": "policy_version",
            "event": "event",
        },
    ),
    "auth_failures": Panel(
        "Agent authentication failures",
        ("auth",),
        {
            **_COMMON,
            "reason": "reason",
            "route": "route",
            "request_id": "request_id",
            "event": "event",
        },
        tenantless=True,
    ),
    "webhooks": Panel(
        "Refused webhooks",
        ("refused",),
        {
            **_COMMON,
            "reason": "reason",
            "status": "status",
            "route": "route",
            "request_id": "request_id",
            "event": "event",
        },
    ),
    "commands": Panel(
        "Key and vault commands",
        ("command",),
        {
            **_COMMON,
            "event": "event",
            "phase": "phase",
            "operator": "operator",
            "host": "host",
            "exit_code": "exit_code",
            "versions": "detail",
            "tenant": "tenant",
        },
        tenantless=True,
    ),
}
ALERTS_PANEL = "alerts"
ALERT_COLUMNS = ("time", "kind", "subject", "count", "usual")
PANEL_NAMES = (*PANELS, ALERTS_PANEL)
# Filters: exact, or (for free text) a case-insensitive substring.
SUBSTRING_FILTERS = ("subject", "purpose", "ticket", "request_id")
EXACT_FILTERS = ("level", "reason", "route", "event")
FILTERS = (*SUBSTRING_FILTERS, *EXACT_FILTERS, "integrity")


class QueryError(ValueError):
    """A query the index cannot answer as asked (a bad panel, sort, zone or page)."""


@dataclass(frozen=True, slots=True)
class Query:
    """One view's question: whose records, when, narrowed how, which page."""

    tenant: str
    since: datetime
    until: datetime
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    filters: dict[str, str] = field(default_factory=dict)
    sort: str = "time"
    descending: bool = True
    offset: int = 0
    limit: int = PAGE_DEFAULT

    def local(self, ts_ms: int) -> str:
        """A time in the viewer's zone, to the second."""
        return datetime.fromtimestamp(ts_ms / 1000, self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def range_ms(self) -> tuple[int, int]:
        """[since, until) in epoch milliseconds."""
        return int(self.since.timestamp() * 1000), int(self.until.timestamp() * 1000)


def zone(name: str | None) -> ZoneInfo:
    """The viewer's zone by its IANA name (UTC when none). Raises QueryError."""
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise QueryError("tz must be an IANA time zone name (Europe/Paris)") from exc


def _where(panel: Panel, query: Query) -> tuple[str, list[Any]]:
    since, until = query.range_ms()
    marks = ",".join("?" * len(panel.categories))
    tenant = "(tenant = ? OR tenant IS NULL)" if panel.tenantless else "tenant = ?"
    sql = [f"cat IN ({marks})", tenant, "ts >= ?", "ts < ?"]
    args: list[Any] = [*panel.categories, query.tenant, since, until]
    columns = set(panel.columns.values())
    for name, value in query.filters.items():
        if not value:
            continue
        if name == "integrity":
            if value == "unverified":
                sql.append("verified = 0")
            elif value == "verified":
                sql.append("verified = 1")
        elif name in SUBSTRING_FILTERS and name in columns:
            sql.append(f"instr(lower({name}), ?) > 0")
            args.append(value.lower())
        elif name in EXACT_FILTERS and name in columns:
            sql.append(f"{name} = ?")
            args.append(value)
    return " AND ".join(sql), args


def count(index: TrailIndex, name: str, query: Query) -> int:
    """How many records of a panel match (the true total, whatever the page)."""
    panel = PANELS[name]
    where, args = _where(panel, query)
    row = index.db.execute(f"SELECT COUNT(*) FROM records WHERE {where}", args).fetchone()  # noqa: S608
    return int(row[0])


def rows(
    index: TrailIndex, name: str, query: Query, *, export: bool = False
) -> list[dict[str, Any]]:
    """One page of a panel (every row up to EXPORT_MAX_ROWS with `export`), sorted."""
    if name == ALERTS_PANEL:
        found = alerts(index, query)
        page = found if export else found[query.offset : query.offset + query.limit]
        return [_alert_row(a, query) for a in page]
    panel = PANELS.get(name)
    if panel is None:
        raise QueryError(f"no such panel (one of {', '.join(PANEL_NAMES)})")
    if query.sort not in panel.columns:
        raise QueryError(f"sort is one of {', '.join(panel.columns)}")
    where, args = _where(panel, query)
    order = "DESC" if query.descending else "ASC"
    names = list(panel.columns)
    select = ", ".join(panel.columns[c] for c in names)
    limit, offset = (EXPORT_MAX_ROWS, 0) if export else (query.limit, query.offset)
    sql = (
        f"SELECT {select}, verified FROM records WHERE {where} "  # noqa: S608 - our own names
        f"ORDER BY {panel.columns[query.sort]} {order}, id {order} LIMIT ? OFFSET ?"
    )
    out = []
    for values in index.db.execute(sql, [*args, limit, offset]):
        row = dict(zip(names, values[:-1], strict=True))
        row["time"] = query.local(row["time"])
        if name == "webhooks":
            row["kind"] = _refusal_kind(row.get("reason"))
        if name == "commands":
            row["versions"] = _versions(row.get("versions"))
        row["verified"] = bool(values[-1])
        out.append(row)
    return out


def _refusal_kind(code: object) -> str:
    text = str(code or "")
    if text.startswith(_SIGNATURE_CODES):
        return "signature"
    if text.startswith(_LIMIT_CODES):
        return "limits"
    return "other"


def _versions(detail: object) -> str:
    # What versions a key or vault command touched, from its whole record.
    try:
        record = json.loads(str(detail))
    except ValueError:
        return ""
    parts = []
    if record.get("kek_version") is not None:
        parts.append(f"kek {record['kek_version']}")
    for key in ("keks_before", "keks_after"):
        ring = record.get(key)
        if isinstance(ring, dict):
            parts.append(f"{key.removeprefix('keks_')}: active {ring.get('active')}")
    return ", ".join(parts)


def alerts(index: TrailIndex, query: Query) -> list[Alert]:
    """Alerts on the period's UTC days for the tenant (filtered by subject when asked)."""
    first_day = query.since.astimezone(UTC).date()
    last_day = (query.until - timedelta(milliseconds=1)).astimezone(UTC).date()
    key = ("alerts", *index.activity_key(), query.tenant, first_day, last_day)
    found = index.cache.get(key)
    if found is None:
        found = _find_alerts(index, query.tenant, first_day, last_day)
        if len(index.cache) > 64:
            index.cache.clear()
        index.cache[key] = found
    wanted = query.filters.get("subject", "").lower()
    if wanted:
        found = [a for a in found if wanted in a.subject.lower()]
    return list(found)


def _find_alerts(index: TrailIndex, tenant: str, first_day: date, last_day: date) -> list[Alert]:
    earliest = first_day - timedelta(days=BASELINE_WINDOW_DAYS)
    activity = [
        Activity(tenant, *row)
        for row in index.db.execute(
            "SELECT subject, day, hour, reveals, denials FROM activity "
            "WHERE tenant = ? AND day >= ? AND day <= ?",
            (tenant, earliest.isoformat(), last_day.isoformat()),
        )
    ]
    first_seen = {
        (tenant, subject): day
        for subject, day in index.db.execute(
            "SELECT subject, MIN(day) FROM activity WHERE tenant = ? AND reveals > 0 "
            "GROUP BY subject",
            (tenant,),
        )
    }
    days = [
        (first_day + timedelta(days=i)).isoformat() for i in range((last_day - first_day).days + 1)
    ]
    return find_alerts(activity, days, first_seen)


def _alert_row(alert: Alert, query: Query) -> dict[str, Any]:
    at = datetime.fromisoformat(alert.day).replace(hour=alert.hour or 0, tzinfo=UTC)
    when = at.astimezone(query.zone).strftime(
        "%Y-%m-%d %H:%M" if alert.hour is not None else "%Y-%m-%d"
    )
    if alert.hour is None:
        when = f"{alert.day} (UTC day)"
    return {
        "time": when,
        "kind": alert.kind,
        "subject": alert.subject,
        "count": alert.count,
        "usual": alert.usual,
    }


def _offset(zone: ZoneInfo, q: int) -> int:
    moment = datetime.fromtimestamp(q * QUARTER_S, UTC)
    return int((moment.astimezone(zone).utcoffset() or timedelta()).total_seconds())


def _pieces(first: int, last: int, zone: ZoneInfo) -> list[tuple[int, int, int]]:
    """[(first quarter, last quarter, UTC offset in seconds)]: the period cut where the
    viewer's zone changes its offset (daylight saving), probed daily (no zone changes twice
    in a day), then to the quarter."""
    pieces = []
    start, offset = first, _offset(zone, first)
    q = first
    while q < last:
        probe = min(q + 96, last)
        if _offset(zone, probe) != offset:
            while _offset(zone, q + 1) == offset:
                q += 1
            pieces.append((start, q, offset))
            start, offset = q + 1, _offset(zone, q + 1)
        q = probe
    pieces.append((start, last, offset))
    return pieces


def series(index: TrailIndex, query: Query) -> tuple[str, list[dict[str, Any]]]:
    """Values redacted and reveals per hour (periods up to two days) or per day, in the
    viewer's zone: ('hour' | 'day', [{at, redactions, reveals}]). Summed in SQL over each
    stretch of constant UTC offset: the answer's size, not the period's quarters."""
    hourly = query.until - query.since <= timedelta(days=2)
    label = "%Y-%m-%d %H:00" if hourly else "%Y-%m-%d"
    width = 3600 if hourly else 86400
    first = int(query.since.timestamp()) // QUARTER_S
    last = (int(query.until.timestamp()) - 1) // QUARTER_S
    buckets: dict[str, dict[str, Any]] = {}

    def at(k: int) -> dict[str, Any]:
        key = datetime.fromtimestamp(k * width, UTC).strftime(label)  # local wall time
        return buckets.setdefault(key, {"at": key, "redactions": 0, "reveals": 0})

    narrowed = any(query.filters.get(f) for f in FILTERS if f != "reason")
    where, args = _where(PANELS["reveals"], query)
    for q_from, q_to, offset in _pieces(first, last, query.zone):
        for k in range(
            (q_from * QUARTER_S + offset) // width, (q_to * QUARTER_S + offset) // width + 1
        ):
            at(k)
        for k, redactions, reveals in index.db.execute(
            "SELECT (q * ? + ?) / ?, SUM(redactions), SUM(reveals) FROM buckets "
            "WHERE tenant = ? AND q >= ? AND q <= ? GROUP BY 1",
            (QUARTER_S, offset, width, query.tenant, q_from, q_to),
        ):
            bucket = at(k)
            bucket["redactions"] += redactions
            if not narrowed:
                bucket["reveals"] += reveals
        if narrowed:
            for k, n in index.db.execute(
                f"SELECT (ts / 1000 + ?) / ?, COUNT(*) FROM records WHERE {where} "  # noqa: S608
                "AND ts >= ? AND ts < ? GROUP BY 1",
                [offset, width, *args, q_from * QUARTER_S * 1000, (q_to + 1) * QUARTER_S * 1000],
            ):
                at(k)["reveals"] += n
    return ("hour" if hourly else "day"), list(buckets.values())


def unverified(index: TrailIndex, query: Query) -> int:
    """Records of the period (any tenant's: a forged line may claim any) the chains do not
    vouch for."""
    since, until = query.range_ms()
    row = index.db.execute(
        "SELECT COUNT(*) FROM records WHERE verified = 0 AND ts >= ? AND ts < ?", (since, until)
    ).fetchone()
    return int(row[0])


def panel_page(index: TrailIndex, name: str, query: Query) -> dict[str, Any]:
    """One page of a panel with its true total."""
    if name not in PANEL_NAMES:
        raise QueryError(f"no such panel (one of {', '.join(PANEL_NAMES)})")
    if name == ALERTS_PANEL:
        found = alerts(index, query)
        page = found[query.offset : query.offset + query.limit]
        return {
            "panel": name,
            "total": len(found),
            "offset": query.offset,
            "limit": query.limit,
            "columns": list(ALERT_COLUMNS),
            "rows": [_alert_row(a, query) for a in page],
        }
    columns = list(PANELS[name].columns) + (["kind"] if name == "webhooks" else [])
    return {
        "panel": name,
        "total": count(index, name, query),
        "offset": query.offset,
        "limit": query.limit,
        "columns": columns,
        "rows": rows(index, name, query),
    }


def summary(index: TrailIndex, query: Query, integrity: dict[str, Any]) -> dict[str, Any]:
    """Everything the console's first screen shows: integrity first, the series, every
    panel's true total and first page."""
    bucket, points = series(index, query)
    panels = {name: panel_page(index, name, query) for name in PANEL_NAMES}
    return {
        "integrity": integrity,
        "tenant": query.tenant,
        "since": query.local(int(query.since.timestamp() * 1000)),
        "until": query.local(int(query.until.timestamp() * 1000)),
        "zone": str(query.zone),
        "bucket": bucket,
        "series": points,
        "totals": {name: p["total"] for name, p in panels.items()},
        "unverified": unverified(index, query),
        "panels": panels,
        "chains": integrity.get("chains", []),
        "trail_problems": integrity.get("problems", []),
        "trail_ok": integrity.get("ok", False),
    }


def export(index: TrailIndex, name: str, query: Query, fmt: str, headline: str) -> str:
    """A whole panel (every matching row up to EXPORT_MAX_ROWS) as CSV or JSON."""
    if name not in PANEL_NAMES:
        raise QueryError(f"no such panel (one of {', '.join(PANEL_NAMES)})")
    data = rows(index, name, query, export=True)
    if name == ALERTS_PANEL:
        columns = list(ALERT_COLUMNS)
    else:
        columns = list(PANELS[name].columns) + (["kind"] if name == "webhooks" else [])
        columns.append("verified")
    if fmt == "json":
        total = len(data) if name == ALERTS_PANEL else count(index, name, query)
        return json.dumps(
            {
                "integrity": headline,
                "panel": name,
                "zone": str(query.zone),
                "total": total,
                "truncated": total > len(data),
                "rows": data,
            },
            indent=1,
        )
    if fmt != "csv":
        raise QueryError("format is csv or json")
    return _csv(columns, data)


def _csv(columns: list[str], data: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in data:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula is quoted as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
