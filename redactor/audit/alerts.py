"""What deserves an analyst's eye in the trail: reveal-rate jumps, reveals outside a subject's
usual hours, and many denials from one subject. Pure: counts in, alerts out (the report and the
console's index feed it the same way).

A subject's first days are not its usual behaviour (a new agent's first shift is all "jump"),
so the reveal-rate baseline leaves them out: a day is judged only once the subject has
`BASELINE_SKIP_DAYS` days behind it and then at least `BASELINE_MIN_DAYS` days of baseline.
The baseline is the median of its daily reveals (zeros included) over at most
`BASELINE_WINDOW_DAYS` days before the day judged. Hours are UTC hours of the day.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

# A day's reveals are a jump when they are at least this many and more than this many times
# the subject's baseline day (at least 1).
JUMP_MIN_REVEALS = 5
JUMP_FACTOR = 3.0
BASELINE_SKIP_DAYS = 3
BASELINE_MIN_DAYS = 3
BASELINE_WINDOW_DAYS = 28
# Usual hours: hours of the day in which the subject revealed on earlier days (an hour either
# side counts as usual too); judged only with at least this many earlier active days.
HOURS_MIN_ACTIVE_DAYS = 5
# Denials by one subject in one day that make an alert.
DENIALS_PER_DAY = 10

JUMP = "reveal_rate_jump"
OUT_OF_HOURS = "reveals_out_of_hours"
MANY_DENIALS = "many_denials"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: what kind, whose, when (a day, and an hour for out-of-hours), how many."""

    kind: str
    subject: str
    tenant: str
    day: str
    hour: int | None
    count: int
    usual: str  # the baseline it was judged against, for a person to read
    baseline: float = 0.0  # for a jump: the median day it was judged against

    def sort_key(self) -> tuple[str, int, str, str]:
        """Newest first when reversed: day, hour, kind, subject."""
        return (self.day, self.hour if self.hour is not None else -1, self.kind, self.subject)


@dataclass(frozen=True, slots=True)
class Activity:
    """One subject's reveals and denials in one UTC hour of one day."""

    tenant: str
    subject: str
    day: str  # YYYY-MM-DD (UTC)
    hour: int
    reveals: int
    denials: int


def find_alerts(
    activity: Iterable[Activity],
    days: Iterable[str],
    first_seen: Mapping[tuple[str, str], str] | None = None,
) -> list[Alert]:
    """Alerts on the `days` judged, from the subjects' activity on those days and the days
    before them. `first_seen`: each (tenant, subject)'s first active day in the whole trail
    (default: its first day in `activity`)."""
    judged = sorted(set(days))
    per_day: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    denials: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hours: dict[tuple[str, str], dict[str, dict[int, int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int))
    )
    for a in activity:
        who = (a.tenant, a.subject)
        if a.reveals:
            per_day[who][a.day] += a.reveals
            hours[who][a.day][a.hour] += a.reveals
        if a.denials:
            denials[who][a.day] += a.denials
    alerts: list[Alert] = []
    for who, counts in per_day.items():
        first = (first_seen or {}).get(who) or min(counts)
        alerts.extend(_jumps(who, counts, first, judged))
        alerts.extend(_out_of_hours(who, hours[who], judged))
    for (tenant, subject), counts in denials.items():
        for day in judged:
            n = counts.get(day, 0)
            if n >= DENIALS_PER_DAY:
                alerts.append(
                    Alert(MANY_DENIALS, subject, tenant, day, None, n, f"{DENIALS_PER_DAY}+ a day")
                )
    alerts.sort(key=Alert.sort_key, reverse=True)
    return alerts


def _jumps(
    who: tuple[str, str], counts: Mapping[str, int], first: str, judged: list[str]
) -> list[Alert]:
    out = []
    start = date.fromisoformat(first) + timedelta(days=BASELINE_SKIP_DAYS)
    for day in judged:
        n = counts.get(day, 0)
        if n < JUMP_MIN_REVEALS:
            continue
        today = date.fromisoformat(day)
        begin = max(start, today - timedelta(days=BASELINE_WINDOW_DAYS))
        span = (today - begin).days
        if span < BASELINE_MIN_DAYS:
            continue  # the subject's first days: no baseline yet
        baseline = statistics.median(
            counts.get((begin + timedelta(days=i)).isoformat(), 0) for i in range(span)
        )
        if n > JUMP_FACTOR * max(baseline, 1.0):
            out.append(
                Alert(JUMP, who[1], who[0], day, None, n, f"median {baseline:g} a day", baseline)
            )
    return out


def _out_of_hours(
    who: tuple[str, str], hours: Mapping[str, Mapping[int, int]], judged: list[str]
) -> list[Alert]:
    out = []
    for day in judged:
        today = hours.get(day)
        if not today:
            continue
        earliest = (date.fromisoformat(day) - timedelta(days=BASELINE_WINDOW_DAYS)).isoformat()
        before = [d for d in hours if earliest <= d < day and hours[d]]
        if len(before) < HOURS_MIN_ACTIVE_DAYS:
            continue
        usual: set[int] = set()
        for d in before:
            for h in hours[d]:
                usual.update(((h - 1) % 24, h, (h + 1) % 24))
        for hour, n in sorted(today.items()):
            if n and hour not in usual:
                span = ", ".join(f"{h:02d}h" for h in sorted({h for d in before for h in hours[d]}))
                out.append(
                    Alert(OUT_OF_HOURS, who[1], who[0], day, hour, n, f"usual (UTC): {span}")
                )
    return out
