"""The trail's index: it reads only what was appended, follows rotation and compression, is a
cache (deleted, it rebuilds), never vouches for bytes changed under it, and answers the
console's questions with true totals, pages, alerts and exports."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from benchmarks.trailgen import records, write_trail
from redactor.audit.alerts import (
    DENIALS_PER_DAY,
    JUMP,
    MANY_DENIALS,
    OUT_OF_HOURS,
    Activity,
    find_alerts,
)
from redactor.audit.index import TrailIndex, index_path_for, trail_files
from redactor.audit.index_views import Query, count, export, panel_page, rows, series, summary
from redactor.audit.integrity import TrailIntegrity
from redactor.audit.report import build_report
from redactor.audit.verify import verify_paths
from redactor.ops.index_worker import Worker

KEY = bytes(range(32))
END = datetime(2026, 12, 1, tzinfo=UTC)


def _trail(tmp_path: Path, n: int = 2000, days: float = 10) -> tuple[Path, Path, tuple[int, bytes]]:
    """(live path, the file written, where its chain stands)."""
    live = tmp_path / "audit.jsonl"
    state = write_trail(live, KEY, records(n, end=END, days=days))
    return live, live, state


def _index(live: Path) -> TrailIndex:
    return TrailIndex(index_path_for(live), KEY)


def _headline(index: TrailIndex, live: Path) -> str:
    return TrailIntegrity(index.integrity_result(trail_files(live)), END).headline()


def _query(**kw: Any) -> Query:
    base: dict[str, Any] = {"tenant": "acme", "since": END - timedelta(days=30), "until": END}
    return Query(**{**base, **kw})


def _rows_of(index: TrailIndex) -> int:
    return int(index.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])


def test_an_update_reads_only_the_lines_appended_since_the_last(tmp_path: Path) -> None:
    live, _, (seq, mac) = _trail(tmp_path, 500)
    index = _index(live)
    first = index.update(trail_files(live))
    assert first.records == 500
    assert first.bytes == live.stat().st_size
    assert index.update(trail_files(live)).records == 0

    size = live.stat().st_size
    more = list(records(600, end=END, days=10))[500:]
    write_trail(live, KEY, more, first_seq=seq, prev_mac=mac, mode="ab")
    second = index.update(trail_files(live))
    assert second.records == 100
    assert second.bytes == live.stat().st_size - size  # only the new bytes were read
    assert second.rebuilt is None
    assert _headline(index, live).startswith("verified through seq 599 of chain gen")

    # A line still being written (no newline yet) waits for the next update.
    line = live.read_bytes().splitlines(keepends=True)[-1]
    with live.open("ab") as handle:
        handle.write(line[:40])
    assert index.update(trail_files(live)).records == 0


def test_rotation_and_compression_are_followed_without_reading_again(tmp_path: Path) -> None:
    live, _, (seq, mac) = _trail(tmp_path, 300)
    index = _index(live)
    index.update(trail_files(live))
    rows_before = _rows_of(index)
    # The sink's own rotation: the full file is renamed (same inode), a new one goes on.
    rotated = tmp_path / "audit.20261130T000000.000000Z-000000000300.jsonl"
    os.replace(live, rotated)
    write_trail(live, KEY, list(records(400, end=END, days=10))[300:], first_seq=seq, prev_mac=mac)
    step = index.update(trail_files(live))
    assert (step.records, step.rebuilt) == (100, None)
    # logrotate compresses the rotated file: a new inode, the same lines.
    with rotated.open("rb") as src, gzip.open(f"{rotated}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    rotated.unlink()
    step = index.update(trail_files(live))
    assert (step.records, step.rebuilt) == (0, None)
    assert _rows_of(index) > rows_before
    assert _headline(index, live).startswith("verified through seq 399 of chain gen")
    assert index.full_check(trail_files(live)) is None  # every byte re-hashed: unchanged


def test_a_deleted_index_is_rebuilt_the_same(tmp_path: Path) -> None:
    live, _, _ = _trail(tmp_path, 400)
    index = _index(live)
    index.update(trail_files(live))
    before = _rows_of(index), count(index, "reveals", _query())
    index.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index_path_for(live)}{suffix}").unlink(missing_ok=True)
    again = _index(live)
    step = again.update(trail_files(live))
    assert step.rebuilt == "new index"
    assert (_rows_of(again), count(again, "reveals", _query())) == before


def _edit_reveal(live: Path, keep_mtime: bool) -> dict[str, Any]:
    """Change one reveal's subject in place (same length), as a forger would."""
    stat = live.stat()
    lines = live.read_bytes().splitlines(keepends=True)
    at = next(
        i
        for i, line in enumerate(lines)
        if b'"subject":"bob"' in line and b"token_revealed" in line
    )
    lines[at] = lines[at].replace(b'"subject":"bob"', b'"subject":"zed"')
    live.write_bytes(b"".join(lines))
    if keep_mtime:
        os.utime(live, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return dict(json.loads(lines[at]))


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_an_edit_under_the_index_is_never_shown_as_verified(
    tmp_path: Path, keep_mtime: bool
) -> None:
    live, _, _ = _trail(tmp_path, 600)
    worker = Worker(KEY, live)
    worker.refresh()
    assert worker.integrity(END).ok
    forged = _edit_reveal(live, keep_mtime)
    if keep_mtime:
        # Size and time as before: the cheap check cannot see it; the full re-hash (due at
        # least every FULL_CHECK_MAX_AGE_S) does.
        worker.index.full_checked_at = 0.0
    worker.refresh()
    integrity = worker.integrity(END)
    assert not integrity.ok
    assert integrity.headline().startswith(
        f"does not verify: chain gen broken at seq {forged['seq']} (edited"
    )
    # The same verdict as `verify` on the files.
    assert verify_paths(KEY, [live]).chains["gen"].broken.seq == forged["seq"]  # type: ignore[union-attr]
    # The forged row and every later one are unverified; earlier ones still verified.
    marks = dict(
        worker.index.db.execute("SELECT seq, verified FROM records WHERE chain = 'gen'").fetchall()
    )
    assert marks[forged["seq"]] == 0
    assert all(v == 0 for s, v in marks.items() if s >= forged["seq"])
    assert all(v == 1 for s, v in marks.items() if s < forged["seq"])
    zed = rows(worker.index, "reveals", _query(filters={"subject": "zed"}))
    assert [r["verified"] for r in zed] == [False]


def test_a_vanished_file_rebuilds_and_the_gap_is_named(tmp_path: Path) -> None:
    live, _, (seq, mac) = _trail(tmp_path, 300)
    rotated = tmp_path / "audit.20261130T000000.000000Z-000000000300.jsonl"
    os.replace(live, rotated)
    write_trail(live, KEY, list(records(400, end=END, days=10))[300:], first_seq=seq, prev_mac=mac)
    index = _index(live)
    index.update(trail_files(live))
    rotated.unlink()
    step = index.update(trail_files(live))
    assert step.rebuilt is not None
    assert "no longer in the trail" in step.rebuilt
    assert "broken at seq 0 (deleted" in _headline(index, live)


def test_totals_are_true_and_pages_cover_them_in_order(tmp_path: Path) -> None:
    live, _, _ = _trail(tmp_path, 3000, days=10)
    index = _index(live)
    index.update(trail_files(live))
    expected = sum(1 for r in records(3000, end=END, days=10) if r["event"] == "token_revealed")
    query = _query(limit=100)
    assert count(index, "reveals", query) == expected == 240
    seen: list[dict[str, Any]] = []
    for offset in range(0, expected + 100, 100):
        page = panel_page(index, "reveals", _query(limit=100, offset=offset))
        assert page["total"] == expected
        seen.extend(page["rows"])
    assert len(seen) == expected
    assert [r["time"] for r in seen] == sorted((r["time"] for r in seen), reverse=True)
    assert len({r["request_id"] for r in seen}) == expected
    # Times in the viewer's zone, to the second.
    paris = panel_page(index, "reveals", _query(limit=1, zone=ZoneInfo("Europe/Paris")))
    utc = panel_page(index, "reveals", _query(limit=1))
    assert len(paris["rows"][0]["time"]) == 19
    assert paris["rows"][0]["time"] != utc["rows"][0]["time"]
    # A filter narrows every panel that has the column, and the total says so.
    bob = _query(filters={"subject": "bob"})
    assert count(index, "reveals", bob) == expected // 6
    assert count(index, "denials", bob) == count(index, "denials", _query()) // 6
    assert count(index, "webhooks", bob) == count(index, "webhooks", _query())  # no subject column
    # Sorted by another column, ascending.
    by_level = rows(index, "reveals", _query(sort="level", descending=False, limit=500))
    assert [r["level"] for r in by_level] == sorted(r["level"] for r in by_level)
    # The 30-day summary: every panel's true total and first page.
    doc = summary(index, _query(), {"ok": True, "headline": "h", "chains": [], "problems": []})
    assert doc["totals"]["reveals"] == expected
    assert sum(b["reveals"] for b in doc["series"]) == expected
    assert doc["totals"]["auth_failures"] == 30  # tenant-less, shown to the tenant's analyst
    assert doc["totals"]["commands"] == 3
    assert len(doc["panels"]["reveals"]["rows"]) == 50


def test_any_panel_exports_whole_as_csv_and_json(tmp_path: Path) -> None:
    live, _, _ = _trail(tmp_path, 2000)
    index = _index(live)
    index.update(trail_files(live))
    table = list(csv.reader(io.StringIO(export(index, "reveals", _query(), "csv", "h"))))
    assert table[0][:4] == ["time", "subject", "token", "level"]
    assert table[0][-1] == "verified"
    assert len(table) - 1 == count(index, "reveals", _query()) == 160
    doc = json.loads(export(index, "webhooks", _query(), "json", "verified through ..."))
    assert doc["integrity"] == "verified through ..."
    assert doc["total"] == len(doc["rows"]) == 20
    assert {r["kind"] for r in doc["rows"]} == {"signature", "limits"}
    commands = json.loads(export(index, "commands", _query(), "json", "h"))
    assert {r["versions"] for r in commands["rows"]} == {"kek 2"}
    assert (
        export(index, "alerts", _query(), "csv", "h").splitlines()[0]
        == "time,kind,subject,count,usual"
    )


def _days(n: int) -> list[str]:
    return [(END.date() - timedelta(days=n - 1 - i)).isoformat() for i in range(n)]


def test_a_subjects_first_days_are_no_jump_but_a_later_burst_is() -> None:
    days = _days(12)
    newcomer = [Activity("acme", "nina", days[-1], 10, 15, 0)]  # first day ever: 15 reveals
    steady = [Activity("acme", "sam", d, 10, 1, 0) for d in days[:-1]]
    burst = [Activity("acme", "sam", days[-1], 10, 12, 0)]
    found = find_alerts(newcomer + steady + burst, days)
    assert [(a.kind, a.subject, a.day) for a in found if a.kind == JUMP] == [
        (JUMP, "sam", days[-1])
    ]
    # A subject's second and third days are still its first days.
    early = [
        Activity("acme", "olga", days[0], 10, 1, 0),
        Activity("acme", "olga", days[2], 10, 9, 0),
    ]
    assert not [a for a in find_alerts(early, days) if a.kind == JUMP]


def test_the_reports_jumps_no_longer_flag_every_subject_on_its_first_day() -> None:
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    data = []
    for day in range(10):
        for _ in range(1 if day < 9 else 9):
            data.append(
                {
                    "event": "token_revealed",
                    "time": (start + timedelta(days=day)).isoformat(),
                    "subject": "frank",
                    "tenant": "acme",
                    "level": "masked",
                    "token": "t",
                }
            )
    for _ in range(8):  # a new agent's first shift
        data.append(
            {
                "event": "token_revealed",
                "time": (start + timedelta(days=9)).isoformat(),
                "subject": "newbie",
                "tenant": "acme",
                "level": "masked",
                "token": "t",
            }
        )
    report = build_report(data)
    assert [(j.subject, j.day) for j in report.jumps] == [("frank", "2026-11-10")]


def test_reveals_outside_a_subjects_usual_hours_are_flagged() -> None:
    days = _days(10)
    usual = [Activity("acme", "sam", d, h, 2, 0) for d in days[:-1] for h in (9, 14)]
    night = [
        Activity("acme", "sam", days[-1], 3, 4, 0),
        Activity("acme", "sam", days[-1], 10, 2, 0),
    ]
    found = [a for a in find_alerts(usual + night, days) if a.kind == OUT_OF_HOURS]
    assert [(a.day, a.hour, a.count) for a in found] == [(days[-1], 3, 4)]  # 10h is next to 9h
    # Too little history to know a subject's hours: no alert.
    short = [Activity("acme", "new", days[-2], 9, 1, 0), Activity("acme", "new", days[-1], 3, 5, 0)]
    assert not [a for a in find_alerts(short, days) if a.kind == OUT_OF_HOURS]


def test_many_denials_from_one_subject_in_a_day_are_flagged() -> None:
    days = _days(2)
    found = find_alerts(
        [
            Activity("acme", "mallory", days[-1], 1, 0, DENIALS_PER_DAY - 3),
            Activity("acme", "mallory", days[-1], 2, 0, 3),
            Activity("acme", "bob", days[-1], 2, 0, DENIALS_PER_DAY - 1),
        ],
        days,
    )
    assert [(a.kind, a.subject, a.count) for a in found] == [
        (MANY_DENIALS, "mallory", DENIALS_PER_DAY)
    ]


def test_the_series_follows_the_viewers_zone_across_daylight_saving(tmp_path: Path) -> None:
    # Paris leaves summer time on 2026-10-25 at 01:00 UTC (03:00 CEST -> 02:00 CET).
    live = tmp_path / "audit.jsonl"
    times = ["2026-10-24T22:30", "2026-10-25T00:30", "2026-10-25T01:30", "2026-10-25T22:30",
             "2026-10-25T23:30"]  # fmt: skip
    write_trail(
        live,
        KEY,
        [
            {
                "event": "token_revealed",
                "time": f"{t}:00.000+00:00",
                "tenant": "acme",
                "subject": "sam",
                "token": "tok",
                "level": "masked",
            }
            for t in times
        ],
    )
    index = _index(live)
    index.update(trail_files(live))
    paris = ZoneInfo("Europe/Paris")
    days = Query(
        "acme", datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC), zone=paris
    )
    bucket, points = series(index, days)
    assert bucket == "day"
    per_day = {p["at"]: p["reveals"] for p in points}
    assert list(per_day) == sorted(per_day)
    assert (per_day["2026-10-24"], per_day["2026-10-25"], per_day["2026-10-26"]) == (0, 4, 1)
    hours = Query(
        "acme",
        datetime(2026, 10, 24, 22, tzinfo=UTC),
        datetime(2026, 10, 25, 4, tzinfo=UTC),
        zone=paris,
    )
    bucket, points = series(index, hours)
    assert bucket == "hour"
    # 02:00-03:00 happened twice (summer, then winter time): one label, both reveals.
    assert [(p["at"], p["reveals"]) for p in points] == [
        ("2026-10-25 00:00", 1),
        ("2026-10-25 01:00", 0),
        ("2026-10-25 02:00", 2),
        ("2026-10-25 03:00", 0),
        ("2026-10-25 04:00", 0),
    ]


def test_an_unreadable_segment_is_a_problem_and_the_index_is_private(tmp_path: Path) -> None:
    live, _, _ = _trail(tmp_path, 200)
    (tmp_path / "audit.20261129T000000.000000Z-000000000000.jsonl.gz").write_bytes(b"not gzip")
    index = _index(live)
    index.update(trail_files(live))
    assert index.update(trail_files(live)).rebuilt is None
    result = index.integrity_result(trail_files(live))
    assert result.problems == [
        f"{tmp_path}/audit.20261129T000000.000000Z-000000000000.jsonl.gz: cannot be read"
    ]
    assert not TrailIntegrity(result, END).ok
    assert verify_paths(KEY, trail_files(live)).problems == result.problems
    # What the records hold (subjects, tokens) is for the audit key's holders only.
    assert index_path_for(live).stat().st_mode & 0o777 == 0o600
