"""`redactor audit report` and `redactor audit find`, on a real trail and on built records."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from redactor.audit.report import build_report, render_report
from redactor.cli import main
from tests.audit.conftest import MESSAGES, PAN, SSN, Trail


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


def test_report_cli_on_a_served_trail_in_every_format(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "report", str(trail.log), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_entity = {t["entity"]: t for t in doc["tokenisations"]}
    assert by_entity["CREDIT_CARD"]["values"] == MESSAGES
    assert by_entity["US_SSN"]["messages"] == MESSAGES
    assert main(["audit", "report", str(trail.log), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert ["tokenisations", "default", "acme", "CREDIT_CARD", str(MESSAGES), str(MESSAGES)] in rows
    assert main(["audit", "report", str(trail.log), "--tenant", "globex"]) == 0
    assert "Tokenisations per route and entity type (0)" in capsys.readouterr().out
    assert main(["audit", "report", str(trail.log), "--since", "yesterday"]) == 2


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
