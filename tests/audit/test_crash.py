"""A real server whose last audit write was cut short by a crash, started again: the torn line
is a `torn_tail`, the crashed chain and the new one both verify."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from redactor.cli import main
from tests.audit.conftest import PAN, SSN, serve_and_stop


def _crash_while_stopping(root: Path) -> None:
    """As if the server died while writing its `redactor_stopped` record: a third of that
    line on disk, no final checkpoint after it (neither in the chain nor in the side file,
    which is written only once the chained record is)."""
    log = root / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    assert b'"redactor_stopped"' in lines[-2]
    assert b'"audit_checkpoint"' in lines[-1]
    stopping = lines[-2]
    log.write_bytes(b"".join(lines[:-2]) + stopping[: len(stopping) // 3])
    (root / "audit.jsonl.checkpoints").unlink()
    # Nor in the vault's chain registry, which learns of a checkpoint after it is written.
    chain = json.loads(lines[-1])["chain"]
    with sqlite3.connect(root / "data" / "vault.db") as db:
        db.execute(
            "UPDATE audit_chains SET checkpoint_seq = NULL, checkpoint_mac = NULL, "
            "checkpoint_at = NULL, closed = 0 WHERE chain_id = ?",
            (chain,),
        )
    db.close()


def _verify(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    log = root / "audit.jsonl"
    code = main(["audit", "verify", str(log), "--dev", "--data-dir", str(root / "data")])
    return code, capsys.readouterr().out


def test_a_restart_after_a_torn_write_verifies_with_a_torn_tail_and_no_tamper_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_and_stop(tmp_path, messages=2)
    _crash_while_stopping(tmp_path)
    code, out = _verify(tmp_path, capsys)
    assert code == 0, out  # before the restart: a torn tail with nothing after it
    assert "torn_tail at" in out
    assert "nothing after it" in out
    serve_and_stop(tmp_path, messages=2)
    code, out = _verify(tmp_path, capsys)
    assert code == 0, out
    assert "torn_tail at" in out
    assert "its file's next writer ended it and recorded it" in out
    for kind in ("BROKEN", "inserted", "deleted", "edited", "problem:"):
        assert kind not in out
    assert out.count(": ok,") == 2
    log = tmp_path / "audit.jsonl"
    lines = log.read_text().splitlines()
    repaired = [json.loads(line) for line in lines if '"audit_tail_repaired"' in line]
    assert len(repaired) == 1
    assert repaired[0]["seq"] == 0  # the first record of the restarted server's chain
    assert PAN not in log.read_text()
    assert SSN not in log.read_text()


def test_tearing_a_line_whose_write_had_returned_is_still_a_truncated_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The final checkpoint's write returned (its signed copy is in the side file): cutting
    # it short afterwards is not a crash, and the repair at restart does not excuse it.
    serve_and_stop(tmp_path, messages=1)
    log = tmp_path / "audit.jsonl"
    data = log.read_bytes()
    last = data[:-1].rfind(b"\n") + 1
    log.write_bytes(data[: last + (len(data) - last) // 3])
    serve_and_stop(tmp_path, messages=1)
    code, out = _verify(tmp_path, capsys)
    assert code == 1
    assert "truncated_tail" in out
