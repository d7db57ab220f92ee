"""`redactor audit verify` on a real trail: intact it passes; each kind of tampering is named,
with the chain id and sequence number of the first broken link, and the exit code is 1."""

from __future__ import annotations

import json
import stat

import pytest

from redactor.audit import write_audit_key_file
from redactor.cli import main
from tests.audit.conftest import MESSAGES, PAN, SSN, Trail


def _verify(trail: Trail, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(
        ["audit", "verify", str(trail.log), "--dev", "--data-dir", str(trail.data_dir), *extra]
    )
    return code, capsys.readouterr().out


def _chain_and_seq(line: str) -> tuple[str, int]:
    record = json.loads(line)
    return record["chain"], record["seq"]


def test_the_served_trail_verifies_and_holds_start_deliveries_and_stop(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _verify(trail, capsys)
    assert code == 0, out
    assert "verified: ok" in out
    assert ", closed" in out
    events = [json.loads(line)["event"] for line in trail.lines()]
    assert events[0] == "redactor_started"
    assert events.count("message_redacted") == MESSAGES
    assert events.count("message_delivered") == MESSAGES
    assert events[-2:] == ["redactor_stopped", "audit_checkpoint"]
    text = trail.log.read_text()
    assert PAN not in text
    assert SSN not in text
    assert stat.S_IMODE(trail.log.stat().st_mode) == 0o600


def test_an_edited_record_is_named_with_its_chain_and_seq(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = trail.lines()
    assert '"tenant":"acme"' in lines[3]
    lines[3] = lines[3].replace('"tenant":"acme"', '"tenant":"evil"')
    trail.write(lines)
    code, out = _verify(trail, capsys)
    chain, seq = _chain_and_seq(lines[3])
    assert code == 1
    assert f"chain {chain}: BROKEN at seq {seq}: edited" in out


def test_a_deleted_record_is_named(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    lines = trail.lines()
    chain, seq = _chain_and_seq(lines[4])
    del lines[4]
    trail.write(lines)
    code, out = _verify(trail, capsys)
    assert code == 1
    assert f"chain {chain}: BROKEN at seq {seq}: deleted" in out


def test_an_inserted_record_is_named(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    lines = trail.lines()
    chain, seq = _chain_and_seq(lines[4])
    # A forged record in the right place, with the right seq, but no key to sign it.
    forged = lines[4].replace('"route":"default"', '"route":"forged"')
    lines.insert(4, forged)
    trail.write(lines)
    code, out = _verify(trail, capsys)
    assert code == 1
    assert f"chain {chain}: BROKEN at seq {seq}: inserted" in out


def test_a_replayed_record_is_named_inserted(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = trail.lines()
    chain, seq = _chain_and_seq(lines[2])
    lines.insert(6, lines[2])  # a genuine line, copied further down
    trail.write(lines)
    code, out = _verify(trail, capsys)
    assert code == 1
    assert f"chain {chain}: BROKEN at seq {seq}: inserted" in out


def test_reordered_records_are_named(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    lines = trail.lines()
    chain, seq = _chain_and_seq(lines[4])
    lines[4], lines[5] = lines[5], lines[4]
    trail.write(lines)
    code, out = _verify(trail, capsys)
    assert code == 1
    assert f"chain {chain}: BROKEN at seq {seq}: reordered" in out


def test_a_cut_tail_is_caught_by_the_signed_checkpoint(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = trail.lines()
    chain, last_kept = _chain_and_seq(lines[-4])
    trail.write(lines[:-3])
    code, out = _verify(trail, capsys)
    assert code == 1
    assert f"chain {chain}: BROKEN at seq {last_kept + 1}: truncated_tail" in out


def test_the_wrong_key_is_named_as_such(trail: Trail, capsys, tmp_path) -> None:
    other = tmp_path / "other.key"
    write_audit_key_file(other)
    code = main(["audit", "verify", str(trail.log), "--audit-key-file", str(other)])
    out = capsys.readouterr().out
    chain, _ = _chain_and_seq(trail.lines()[0])
    assert code == 1
    assert f"chain {chain}: BROKEN at seq 0: wrong_key" in out


def test_verify_json_output_names_the_break(trail: Trail, capsys) -> None:
    lines = trail.lines()
    del lines[2]
    trail.write(lines)
    code, out = _verify(trail, capsys, "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert doc["ok"] is False
    assert doc["chains"][0]["broken"]["kind"] == "deleted"


@pytest.mark.parametrize("tamper", ["none", "edit", "delete", "reorder", "cut"])
def test_several_processes_find_what_one_finds(trail: Trail, tamper: str) -> None:
    from redactor.audit import load_audit_key
    from redactor.audit.verify import verify_paths

    lines = trail.lines()
    if tamper == "edit":
        lines[5] = lines[5].replace('"tenant":"acme"', '"tenant":"evil"')
    elif tamper == "delete":
        del lines[6]
    elif tamper == "reorder":
        lines[4], lines[5] = lines[5], lines[4]
    elif tamper == "cut":
        lines = lines[:-2]
    trail.write(lines)
    key = load_audit_key(key_file=None, inline=None, dev_data_dir=trail.data_dir)
    one = verify_paths(key, [trail.log])
    # Every byte is "large": the trail splits into segments, one process each.
    many = verify_paths(key, [trail.log], jobs=4, parallel_min_bytes=0)
    assert one.ok is many.ok is (tamper == "none")
    assert one.chains == many.chains
