"""`audit report --index`: the same report as `build_report`, answered from the trail's index
(`redactor.audit.index`) in what the answer costs instead of a read of the whole trail.

Reveals, denials, authentication failures and reveal-rate jumps come from the indexed rows
themselves, exact for any period. Tokenisations and the record total come from quarter-hour
sums kept as the index is built: they count the quarter hours that start in the period (exact
when `--since`/`--until` fall on a quarter hour). Every row's `unverified` is what the chains
do not vouch for, as in the plain report; when a break was found behind rows already summed
(a repeated sequence number), the sums cannot say which of them it covers and the index
refuses (`IndexReportError`): the plain report reads the trail and can.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from redactor.audit.index import QUARTER_S, TrailIndex
from redactor.audit.integrity import TrailIntegrity
from redactor.audit.report import (
    AuthFailureRow,
    DenialRow,
    JumpRow,
    Report,
    RevealRow,
    TokenisationRow,
    find_jumps,
)

_NEVER = 2**62


class IndexReportError(Exception):
    """The index cannot answer this report faithfully (read the trail instead)."""


def _text(value: Any) -> str:
    # As the plain report keys its rows: str() of what the record held (None -> "None").
    return "None" if value is None else str(value)


def report_from_index(
    index: TrailIndex,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tenant: str | None = None,
    integrity: TrailIntegrity | None = None,
) -> Report:
    """The report over the period (and tenant), from the index. Raises IndexReportError."""
    if index.meta("retroactive_break"):
        raise IndexReportError(
            "a break lies behind records the index has summed (a repeated sequence number): "
            "run the report without --index"
        )
    report = Report(
        since.isoformat() if since else None,
        until.isoformat() if until else None,
        tenant,
        integrity=integrity.to_json() if integrity is not None else None,
    )
    low = int(since.timestamp() * 1000) if since else -_NEVER
    high = int(until.timestamp() * 1000) if until else _NEVER
    where = "ts >= ? AND ts < ?" + (" AND tenant = ?" if tenant is not None else "")
    args: list[Any] = [low, high] + ([tenant] if tenant is not None else [])
    db = index.db

    def grouped(cat: str, columns: str) -> list[tuple[Any, ...]]:
        return db.execute(
            f"SELECT {columns}, COUNT(*), SUM(1 - verified) FROM records "  # noqa: S608
            f"WHERE cat = ? AND {where} GROUP BY {columns}",
            [cat, *args],
        ).fetchall()

    reveals = db.execute(
        "SELECT subject, tenant, CASE WHEN purpose IS NULL OR purpose = '' THEN '-' "  # noqa: S608
        "ELSE purpose END, level, COUNT(*), COUNT(DISTINCT NULLIF(token, '')), "
        f"SUM(1 - verified) FROM records WHERE cat = 'reveal' AND {where} "
        "GROUP BY 1, 2, 3, 4",
        args,
    ).fetchall()
    report.reveals = [
        RevealRow(s, t, p, lv, n, k, bad)
        for s, t, p, lv, n, k, bad in sorted(
            (_text(s), _text(t), _text(p), _text(lv), n, k, bad)
            for s, t, p, lv, n, k, bad in reveals
        )
    ]
    report.denials = [
        DenialRow(s, t, r, n, bad)
        for s, t, r, n, bad in sorted(
            (_text(s), _text(t), _text(r), n, bad)
            for s, t, r, n, bad in grouped("deny", "subject, tenant, reason")
        )
    ]
    report.auth_failures = [
        AuthFailureRow(r, why, n, bad)
        for r, why, n, bad in sorted(
            (_text(r), _text(why), n, bad) for r, why, n, bad in grouped("auth", "route, reason")
        )
    ]
    # Quarter hours that start in the period.
    q_low = -(-low // (QUARTER_S * 1000)) if since else -_NEVER
    q_high = -(-high // (QUARTER_S * 1000)) if until else _NEVER
    q_where = "q >= ? AND q < ?" + (" AND tenant = ?" if tenant is not None else "")
    q_args: list[Any] = [q_low, q_high] + ([tenant] if tenant is not None else [])
    report.tokenisations = [
        TokenisationRow(*row)
        for row in sorted(
            db.execute(
                "SELECT route, tenant, entity, SUM(vals), SUM(messages), SUM(unverified) "  # noqa: S608
                f"FROM tokenisations WHERE {q_where} GROUP BY 1, 2, 3",
                q_args,
            )
        )
    ]
    records_sql = f"SELECT COALESCE(SUM(records), 0) FROM buckets WHERE {q_where}"  # noqa: S608
    report.records = int(db.execute(records_sql, q_args).fetchone()[0])
    unverified_sql = f"SELECT COUNT(*) FROM records WHERE verified = 0 AND {where}"  # noqa: S608
    report.unverified = int(db.execute(unverified_sql, args).fetchone()[0])
    per_day: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    bad_days: dict[tuple[str, str, str], int] = {}
    for subject, t, day, n, bad in db.execute(
        "SELECT subject, tenant, date(ts / 1000, 'unixepoch'), COUNT(*), SUM(1 - verified) "  # noqa: S608
        f"FROM records WHERE cat = 'reveal' AND {where} GROUP BY 1, 2, 3",
        args,
    ):
        per_day[_text(subject), _text(t)][day] = n
        bad_days[_text(subject), _text(t), day] = bad
    days = sorted({day for counts in per_day.values() for day in counts})
    report.jumps = [
        JumpRow(
            j.subject, j.tenant, j.day, j.reveals, j.usual, bad_days[j.subject, j.tenant, j.day]
        )
        for j in find_jumps(per_day, days)
    ]
    return report
