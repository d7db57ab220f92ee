"""`redactor audit report` and `redactor audit find`, on a real trail and on built records."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from redactor.audit.report import SECTION_NAMES, build_report, render_report
from redactor.cli import main
from tests.audit.conftest import MESSAGES, PAN, REVEALERS, SSN, Trail


def _reveal(
    subject: str,
    day: int,
    token: str = "tok_v1_ssn_a",  # noqa: S107 - a token, not a secret
    **extra: object,
) -> dict:
    return {
        "event": "token_revealed",
        "time": f"2026-11-{day:02d}T10:00:00.000+00:00",
        "subject": subject,
        "tenant": "acme",
        "token": token,
        "level": "full",
        "purpose": "chargeback",
        "reason": "granted",
        **extra,
    }


def test_report_answers_who_revealed_what_denials_auth_failures_and_jumps() -> None:
    records = [
        # frank reveals one token a day for a week, then 12 on one day: a jump.
        *(_reveal("frank", day) for day in range(1, 8)),
        *(_reveal("frank", 8, token=f"tok_v1_ssn_{n}") for n in range(12)),
        # alice reveals steadily: no jump.
        *(_reveal("alice", day) for day in range(1, 9)),
        {**_reveal("mallory", 3), "event": "token_denied", "reason": "no_permission"},
        {"event": "agent_unauthenticated", "time": "2026-11-03T00:00:00+00:00",
         "route": "/v1/resolve", "reason": "bad_signature", "tenant": None},
        {"event": "message_redacted", "time": "2026-11-03T00:00:00+00:00", "route": "zendesk",
         "tenant": "acme", "counts": {"CREDIT_CARD": 2}, "tokens": ["tok_v1_card_x_1111"]},
        {**_reveal("bob", 2), "tenant": "globex"},
    ]  # fmt: skip
    report = build_report(records, tenant="acme")
    frank = [r for r in report.reveals if r.subject == "frank"]
    assert [(r.purpose, r.level, r.reveals, r.tokens) for r in frank] == [
        ("chargeback", "full", 19, 13)
    ]
    assert {r.subject for r in report.reveals} == {"frank", "alice"}  # globex filtered out
    assert [(j.subject, j.day, j.reveals) for j in report.jumps] == [("frank", "2026-11-08", 12)]
    assert [(d.subject, d.reason, d.attempts) for d in report.denials] == [
        ("mallory", "no_permission", 1)
    ]
    assert [(t.route, t.entity, t.values) for t in report.tokenisations] == [
        ("zendesk", "CREDIT_CARD", 2)
    ]
    # Auth failures carry no tenant: only an unfiltered report shows them.
    assert report.auth_failures == []
    everyone = build_report(records)
    assert [(a.reason, a.failures) for a in everyone.auth_failures] == [("bad_signature", 1)]
    early = build_report(
        records, since=datetime(2026, 11, 1, tzinfo=UTC), until=datetime(2026, 11, 3, tzinfo=UTC)
    )
    assert {r.subject for r in early.reveals} == {"frank", "alice", "bob"}
    assert sum(r.reveals for r in early.reveals) == 5
    html = render_report(report, "html")
    assert "<td>frank</td>" in html
    assert "<script" not in html


def _report(trail: Trail, *args: str) -> list[str]:
    return ["audit", "report", str(trail.log), "--dev", "--data-dir", str(trail.data_dir), *args]


def test_report_cli_on_a_served_trail_in_every_format(
    trail: Trail, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(_report(trail, "--format", "json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert next(iter(doc)) == "integrity"  # said first
    assert doc["integrity"]["ok"] is True
    assert doc["unverified"] == 0
    by_entity = {t["entity"]: t for t in doc["tokenisations"]}
    assert by_entity["CREDIT_CARD"]["values"] == MESSAGES
    assert by_entity["US_SSN"]["messages"] == MESSAGES
    assert main(_report(trail, "--format", "csv", "--section", "tokenisations")) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("integrity: verified through seq ")
    rows = list(csv.reader(io.StringIO(captured.out)))
    # One section, one header row: a file any spreadsheet or SIEM reads as is.
    assert rows[0] == ["route", "tenant", "entity", "values", "messages", "unverified"]
    assert ["default", "acme", "CREDIT_CARD", str(MESSAGES), str(MESSAGES), "0"] in rows
    assert all(len(row) == len(rows[0]) for row in rows)
    assert main(_report(trail, "--tenant", "globex")) == 0
    text = capsys.readouterr().out
    assert text.startswith("integrity: verified through seq ")
    assert "Tokenisations per route and entity type (0)" in text
    assert main(_report(trail, "--since", "yesterday")) == 2
    # Without the audit key the report cannot verify, so it does not print.
    assert main(["audit", "report", str(trail.log)]) == 2
    assert "audit key" in capsys.readouterr().err


def test_csv_is_one_file_per_section(
    trail: Trail, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(_report(trail, "--format", "csv")) == 2
    assert "--out DIR" in capsys.readouterr().err
    out = tmp_path / "csv"
    assert main(_report(trail, "--format", "csv", "--out", str(out))) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.csv" for n in SECTION_NAMES)
    for name in SECTION_NAMES:
        rows = list(csv.reader((out / f"{name}.csv").open(encoding="utf-8")))
        assert len({len(row) for row in rows}) == 1, name  # one header, rows of its width
    [chain_row] = list(csv.DictReader((out / "integrity.csv").open(encoding="utf-8")))
    assert chain_row["ok"] == "True"
    assert main(_report(trail, "--format", "text", "--section", "reveals")) == 2


def _forge_a_reveal(trail: Trail) -> dict:
    """Change the subject of alice's reveal of the card token to mallory; the forged record."""
    lines = trail.lines()
    index = next(
        i
        for i, line in enumerate(lines)
        if '"event":"token_revealed"' in line
        and '"subject":"alice"' in line
        and f'_{PAN[-4:]}"' in line
    )
    lines[index] = lines[index].replace('"subject":"alice"', '"subject":"mallory"')
    trail.write(lines)
    return json.loads(lines[index])


def test_a_forged_reveal_is_flagged_in_every_report_format(
    revealed_trail: Trail, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trail = revealed_trail
    assert main(_report(trail, "--format", "json")) == 0  # untouched: verifies
    clean = json.loads(capsys.readouterr().out)
    assert {r["subject"] for r in clean["reveals"]} == set(REVEALERS)
    assert all(r["unverified"] == 0 for r in clean["reveals"])

    forged = _forge_a_reveal(trail)
    broken = f"does not verify: chain {forged['chain']} broken at seq {forged['seq']} (edited"
    assert main(_report(trail)) == 1
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith(f"integrity: {broken}")
    mallory = next(line for line in text.splitlines() if line.strip().startswith("mallory"))
    assert mallory.split()[-1] == "1"  # its one record is unverified

    assert main(_report(trail, "--format", "json")) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["integrity"]["ok"] is False
    assert doc["integrity"]["headline"].startswith(broken)
    rows = {r["subject"]: r for r in doc["reveals"]}
    assert rows["mallory"]["unverified"] == rows["mallory"]["reveals"] == 1
    # bob revealed after the forged record: his records are past the break, unverified too.
    assert rows["bob"]["unverified"] == rows["bob"]["reveals"]

    assert main(_report(trail, "--format", "csv", "--section", "reveals")) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"integrity: {broken}")
    csv_rows = {r["subject"]: r for r in csv.DictReader(io.StringIO(captured.out))}
    assert csv_rows["mallory"]["unverified"] == "1"
    out = tmp_path / "csv"
    assert main(_report(trail, "--format", "csv", "--out", str(out))) == 1
    capsys.readouterr()
    chains = list(csv.DictReader((out / "integrity.csv").open(encoding="utf-8")))
    [bad] = [c for c in chains if c["ok"] == "False"]
    assert (bad["chain"], bad["broken_kind"], bad["broken_seq"]) == (
        forged["chain"],
        "edited",
        str(forged["seq"]),
    )

    assert main(_report(trail, "--format", "html")) == 1
    page = capsys.readouterr().out
    banner = page.index("id='integrity'")
    assert banner < page.index("<table")  # said before any row
    assert "class='integrity broken'" in page
    assert "<tr class='unverified'><td>mallory</td>" in page


def test_find_reads_the_value_on_stdin_and_lists_every_event_about_its_token(
    trail: Trail, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PAN + "\n"))
    args = ["audit", "find", str(trail.log), "--tenant", "acme", "--dev"]
    code = main([*args, "--data-dir", str(trail.data_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    [token] = [line.removeprefix("token: ") for line in out.splitlines() if "token: " in line]
    assert token.startswith("tok_v1_card_")
    assert token.endswith(PAN[-4:])
    assert out.count("message_redacted") == MESSAGES
    assert "first redacted" in out
    assert "resolved by: nobody" in out
    assert PAN not in out


def test_find_says_so_for_a_value_the_vault_never_saw(
    trail: Trail, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("5500 0000 0000 0004"))
    args = ["audit", "find", str(trail.log), "--tenant", "acme", "--dev"]
    assert main([*args, "--data-dir", str(trail.data_dir)]) == 1
    out = capsys.readouterr().out
    assert "never tokenised" in out
    assert "5500" not in out
    # And looking did not store it: a second look still finds nothing.
    monkeypatch.setattr("sys.stdin", io.StringIO("5500 0000 0000 0004"))
    assert main([*args, "--data-dir", str(trail.data_dir)]) == 1
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    assert main([*args, "--data-dir", str(trail.data_dir)]) == 0
    assert "token: tok_v1_ssn_" in capsys.readouterr().out


def _find(trail: Trail, *args: str) -> list[str]:
    base = ["audit", "find", str(trail.log), "--tenant", "acme", "--dev"]
    return [*base, "--data-dir", str(trail.data_dir), *args]


def test_find_flags_a_forged_event_and_says_so_first(
    revealed_trail: Trail, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = revealed_trail
    monkeypatch.setattr("sys.stdin", io.StringIO(PAN))
    assert main(_find(trail)) == 0
    out = capsys.readouterr().out
    assert out.startswith("integrity: verified through seq ")
    assert "UNVERIFIED" not in out
    assert "resolved by: alice (masked), bob (masked)" in out

    forged = _forge_a_reveal(trail)
    monkeypatch.setattr("sys.stdin", io.StringIO(PAN))
    assert main(_find(trail)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        f"integrity: does not verify: chain {forged['chain']} broken at seq {forged['seq']}"
    )
    [mallory] = [line for line in lines if "subject=mallory" in line]
    assert mallory.startswith(f"UNVERIFIED {forged['time']} token_revealed")
    [bob] = [line for line in lines if "subject=bob" in line]
    assert bob.startswith("UNVERIFIED ")  # after the break in the same chain
    assert all(not line.startswith("UNVERIFIED") for line in lines if "message_redacted" in line)
    # Only verified records answer "who" (alice's one card reveal is the forged record).
    assert lines[2].endswith(
        "resolved by: nobody; UNVERIFIED records name: bob (masked), mallory (masked)"
    )
    assert PAN not in "\n".join(lines)

    monkeypatch.setattr("sys.stdin", io.StringIO(PAN))
    assert main(_find(trail, "--format", "json")) == 1
    doc = json.loads(capsys.readouterr().out)
    assert next(iter(doc)) == "integrity"
    assert doc["integrity"]["ok"] is False
    marks = {e.get("subject"): e["verified"] for e in doc["events"] if e.get("subject")}
    assert marks == {"mallory": False, "bob": False}  # alice's one card reveal is the forged one
    assert all(e["verified"] for e in doc["events"] if e["event"] == "message_redacted")


def test_find_reads_vault_trail_and_key_from_the_config_file(
    trail: Trail,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    config = tmp_path / "redactor.yaml"
    config.write_text(
        json.dumps(
            {
                "data_dir": str(trail.data_dir),
                "audit_log": str(trail.log),
                "routes": [
                    {
                        "name": "default",
                        "path_prefix": "/",
                        "upstream": "http://127.0.0.1:9/",
                        "tenant": "acme",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    # No trail path, no --data-dir: the config names the vault, the trail and (with --dev)
    # the development keys in its data directory.
    assert main(["audit", "find", "--config", str(config), "--tenant", "acme", "--dev"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("integrity: verified through seq ")
    assert out.count("message_redacted") == MESSAGES


@pytest.mark.parametrize("command", ["report", "verify"])
def test_a_closed_pipe_ends_the_command_quietly(trail: Trail, command: str) -> None:
    """`redactor audit report | head -1`: the reader went away; no traceback, exit 141."""
    import subprocess
    import sys

    args = ["audit", command, str(trail.log), "--dev", "--data-dir", str(trail.data_dir)]
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "redactor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # before the command writes a byte: every write meets a closed pipe
    _out, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
    assert proc.returncode == 141


def test_a_rotated_gzipped_file_is_read_and_verified_by_the_views(tmp_path) -> None:
    import asyncio
    import gzip
    from datetime import UTC, datetime

    from redactor.audit import AuditEvent
    from redactor.audit.integrity import VERIFIED_KEY, read_trail
    from redactor.audit.sink import AuditSink

    key = b"k" * 32
    log = tmp_path / "audit.jsonl"

    async def write() -> None:
        sink = AuditSink(log, key)
        await sink.open()
        for n in range(3):
            await sink.write(
                AuditEvent(
                    event="message_scanned",
                    time="2026-12-07T00:00:00Z",
                    request_id=str(n),
                    route="r",
                    tenant="t",
                    counts={},
                    tokens=(),
                )
            )
        await sink.close()

    asyncio.run(write())
    # Rotated and compressed as logrotate does: the views read it like verify does.
    (tmp_path / "audit.jsonl.1.gz").write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()

    trail = read_trail(key, [tmp_path], now=datetime.now(UTC))

    scanned = [r for r in trail.records() if r.get("event") == "message_scanned"]
    assert [r["request_id"] for r in scanned] == ["0", "1", "2"]
    assert all(r[VERIFIED_KEY] for r in scanned)
    assert trail.integrity.ok


def test_report_from_the_index_is_the_report_from_the_trail(
    revealed_trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    # The served trail with reveals, denials and tokenisations: same report, both ways.
    assert main(_report(revealed_trail, "--format", "json")) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(_report(revealed_trail, "--format", "json", "--index")) == 0
    indexed = json.loads(capsys.readouterr().out)
    assert indexed["integrity"]["ok"] is True
    assert indexed["integrity"]["headline"].startswith("verified through seq ")
    for section in ("reveals", "tokenisations", "denials", "auth_failures", "jumps"):
        assert indexed[section] == plain[section], section
    assert (indexed["records"], indexed["unverified"]) == (plain["records"], 0)
    assert revealed_trail.log.with_name(".audit.index.sqlite").exists()  # the console's index
    # A forged reveal: flagged the same way, exit 1.
    lines = revealed_trail.lines()
    at = next(i for i, line in enumerate(lines) if '"event":"token_revealed"' in line)
    lines[at] = lines[at].replace('"level":"masked"', '"level":"full"  ')
    revealed_trail.write(lines)
    assert main(_report(revealed_trail, "--format", "json")) == 1
    plain = json.loads(capsys.readouterr().out)
    assert main(_report(revealed_trail, "--format", "json", "--index")) == 1
    indexed = json.loads(capsys.readouterr().out)
    # The same sentence, up to the time of the check.
    assert indexed["integrity"]["headline"].startswith("does not verify: chain ")
    assert (
        indexed["integrity"]["headline"].split(" (checked at")[0]
        == plain["integrity"]["headline"].split(" (checked at")[0]
    )
    for section in ("reveals", "denials"):
        assert indexed[section] == plain[section], section
    assert indexed["unverified"] == plain["unverified"] > 0
    assert main(_report(revealed_trail, "--index", "--format", "json", "--since", "x")) == 2


def test_report_from_the_index_on_a_generated_trail_and_quarter_hours(tmp_path: Path) -> None:
    from benchmarks.trailgen import records, write_trail
    from redactor.audit.index import TrailIndex, index_path_for, trail_files
    from redactor.audit.index_report import report_from_index
    from redactor.audit.integrity import read_trail

    key = bytes(range(32))
    live = tmp_path / "audit.jsonl"
    end = datetime(2026, 12, 1, tzinfo=UTC)
    write_trail(live, key, records(3000, end=end, days=20))
    index = TrailIndex(index_path_for(live), key)
    index.update(trail_files(live))
    trail = read_trail(key, [live], now=end)
    for since, until, tenant in (
        (None, None, None),
        (
            datetime(2026, 11, 20, 6, 15, tzinfo=UTC),
            datetime(2026, 11, 25, 18, 45, tzinfo=UTC),
            "acme",
        ),
        (datetime(2026, 11, 20, tzinfo=UTC), None, "globex"),
    ):
        plain = build_report(trail.records(), since=since, until=until, tenant=tenant)
        indexed = report_from_index(index, since=since, until=until, tenant=tenant)
        for section in ("reveals", "tokenisations", "denials", "auth_failures", "jumps"):
            assert getattr(indexed, section) == getattr(plain, section), section
        assert (indexed.records, indexed.unverified) == (plain.records, plain.unverified)
