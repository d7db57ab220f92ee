"""`redactor audit export`: the verified trail for a SIEM, with an integrity event where a chain
breaks, in the trail's own fields, ECS or OCSF."""

from __future__ import annotations

import json

import pytest

from redactor.cli import main
from tests.audit.conftest import PAN, SSN, Trail


def _export(trail: Trail, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list]:
    code = main(
        ["audit", "export", str(trail.log), "--dev", "--data-dir", str(trail.data_dir), *args]
    )
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def test_an_intact_trail_exports_every_record_verified(
    revealed_trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    code, docs = _export(revealed_trail, capsys)
    assert code == 0
    assert len(docs) == len(revealed_trail.lines())
    assert all(d["verified"] is True for d in docs)
    assert "audit_integrity_failed" not in {d["event"] for d in docs}


def test_a_forged_reveal_becomes_an_integrity_event_in_every_format(
    revealed_trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = revealed_trail.lines()
    index = next(
        i
        for i, line in enumerate(lines)
        if '"event":"token_revealed"' in line and '"subject":"alice"' in line
    )
    lines[index] = lines[index].replace('"subject":"alice"', '"subject":"mallory"')
    revealed_trail.write(lines)
    forged = json.loads(lines[index])

    code, docs = _export(revealed_trail, capsys)
    assert code == 1
    events = [d["event"] for d in docs]
    # Everything before the break, then one integrity event in its place; nothing after it
    # in that chain is exported as fact.
    assert events[:index] == [json.loads(line)["event"] for line in lines[:index]]
    alarm = docs[index]
    assert alarm["event"] == "audit_integrity_failed"
    assert (alarm["kind"], alarm["chain"], alarm["seq"]) == (
        "edited",
        forged["chain"],
        forged["seq"],
    )
    assert all(d.get("subject") != "mallory" for d in docs)
    assert len(docs) == index + 1  # one chain: the rest of it is past the break

    code, ecs = _export(revealed_trail, capsys, "--format", "ecs")
    assert code == 1
    assert ecs[index]["event"]["kind"] == "alert"
    assert ecs[index]["event"]["action"] == "audit_integrity_failed"
    redacted = next(d for d in ecs if d["event"]["action"] == "message_redacted")
    assert redacted["event"]["outcome"] == "success"
    assert redacted["organization"] == {"id": "acme"}
    assert redacted["http"]["request"]["id"]
    assert redacted["@timestamp"].endswith("+00:00")

    code, ocsf = _export(revealed_trail, capsys, "--format", "ocsf")
    assert code == 1
    assert ocsf[index]["severity_id"] == 5
    assert ocsf[index]["status_id"] == 2
    assert ocsf[index]["message"].startswith("does not verify")
    assert {d["class_uid"] for d in ocsf} == {6003}
    assert all(d["type_uid"] == 600300 + d["activity_id"] for d in ocsf)
    text = json.dumps([docs, ecs, ocsf])
    assert PAN not in text
    assert SSN not in text


def test_following_sends_each_record_once_across_appends_and_rotation(
    revealed_trail: Trail, tmp_path
) -> None:
    """What --follow does between two checks of the trail: only what is new is sent, and a
    file moved aside by rotation is read from the directory like the live one."""
    from datetime import UTC, datetime

    from redactor.audit.export import ExportCursor, export_records
    from redactor.audit.integrity import read_trail
    from redactor.ops.audit_cli import audit_key_from

    args = type("A", (), {"audit_key_file": None, "dev": True, "data_dir": revealed_trail.data_dir})
    key = audit_key_from(args(), {})
    folder = revealed_trail.log.parent
    lines = revealed_trail.lines()
    half = len(lines) // 2
    # First the live file holds half the records.
    revealed_trail.write(lines[:half])
    checkpoints = revealed_trail.checkpoints.read_text()
    revealed_trail.checkpoints.write_text("")  # the final checkpoint names the whole chain
    cursor = ExportCursor()

    def sent() -> list[dict]:
        trail = read_trail(key, [folder], now=datetime.now(UTC))
        return list(export_records(trail.records(), trail.integrity, "jsonl", cursor=cursor))

    first = sent()
    assert [d["seq"] for d in first] == list(range(half))
    assert sent() == []  # nothing new, nothing sent
    # The sink rotates: the file moves aside and the chain goes on in a new live file.
    revealed_trail.log.rename(folder / "audit.20261129T231500.000000Z-000000000042.jsonl")
    revealed_trail.write(lines[half:])
    revealed_trail.checkpoints.write_text(checkpoints)
    second = sent()
    assert [d["seq"] for d in second] == list(range(half, len(lines)))
    assert all(d["event"] != "audit_integrity_failed" for d in first + second)
