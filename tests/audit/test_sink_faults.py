"""The audit sink under faults: a full disk, a file deleted or moved under it, a torn tail
left by a crash. Each is either safe (nothing acknowledged is lost, the chain stays one
chain) or loud (a record in the trail, a log line, a readiness answer), and `verify` tells
a fault from tampering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from redactor.audit import AuditEvent, AuditSink, AuditWriteError
from redactor.audit.verify import TORN_TAIL, render_text, verify_paths
from tests.audit.faults import FullDisk

KEY = bytes(range(32))


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        "message_redacted", "t", f"req-{n}", "r", "acme", {"CREDIT_CARD": 1}, (f"tok{n}",)
    )


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _sink(path: Path, **options: object) -> AuditSink:
    sink = AuditSink(path, KEY, checkpoint_interval_s=0, **options)  # type: ignore[arg-type]
    await sink.open()
    return sink


# --- a full disk -------------------------------------------------------------------------------


@pytest.mark.parametrize("fsync", ["batch", "interval", "never"])
@pytest.mark.parametrize("room", [0, 100])
async def test_a_batch_the_full_disk_refuses_leaves_no_byte_and_no_seq_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: str, room: int
) -> None:
    disk = FullDisk(monkeypatch, tmp_path)
    path = tmp_path / "audit.jsonl"
    sink = await _sink(path, fsync=fsync)
    await sink.write_many([_event(0), _event(1)])
    before = path.read_bytes()
    disk.fill(room)  # room=100: the kernel takes part of the batch, then says ENOSPC
    for n in range(2, 5):
        with pytest.raises(AuditWriteError):
            await sink.write_many([_event(n), _event(n + 10)])
    assert disk.refused >= 1
    # Nothing of the refused batches is on disk, and nothing waits in a buffer for later.
    assert path.read_bytes() == before
    assert sink.health().writable is False
    assert sink.health().failed_records == 6
    disk.free()
    await sink.write(_event(5))
    await sink.close()
    records = _lines(path)
    # One chain, no seq used twice: what was refused was never signed into the file.
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert [r["event"] for r in records] == [
        "message_redacted",
        "message_redacted",
        "audit_write_recovered",
        "message_redacted",
        "audit_checkpoint",
    ]
    recovered = records[2]
    assert recovered["failed_batches"] == 3
    assert recovered["failed_records"] == 6
    assert [r["request_id"] for r in records if "request_id" in r] == ["req-0", "req-1", "req-5"]
    assert sink.health().writable is True
    result = verify_paths(KEY, [path])
    assert result.ok, list(render_text(result))


async def test_after_a_full_disk_the_check_keeps_failing_until_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(monkeypatch, tmp_path)
    path = tmp_path / "audit.jsonl"
    sink = await _sink(path)
    await sink.check_writable()  # nothing failed: nothing to try
    disk.fill()
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(AuditWriteError):
            await sink.write(_event(1))
        with pytest.raises(AuditWriteError):
            await sink.check_writable()  # readiness asks: still full
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["audit_write_failed"] * 2
    disk.free()
    await sink.check_writable()  # space is back: the check writes the recovery record
    assert sink.health().writable is True
    await sink.close()
    assert [r["event"] for r in _lines(path)] == ["audit_write_recovered", "audit_checkpoint"]
    assert verify_paths(KEY, [path]).ok


async def test_a_failed_fsync_fails_the_batch_and_cuts_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    path = tmp_path / "audit.jsonl"
    sink = await _sink(path, fsync="batch")
    await sink.write(_event(0))
    before = path.read_bytes()
    real = os.fdatasync

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(AuditWriteError):
        await sink.write(_event(1))
    # Written to the page cache, but not known to be durable: not kept.
    assert path.read_bytes() == before
    monkeypatch.setattr(os, "fdatasync", real)
    await sink.write(_event(2))
    await sink.close()
    assert [r.get("request_id") for r in _lines(path)][:3] == ["req-0", None, "req-2"]
    assert verify_paths(KEY, [path]).ok


# --- the live file deleted, moved or replaced ----------------------------------------------------


async def test_a_deleted_live_file_is_recreated_and_says_so_first(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = await _sink(path)
    await sink.write_many([_event(0), _event(1)])
    path.unlink()  # an operator's rm, a cleanup job
    with structlog.testing.capture_logs() as logs:
        await sink.write(_event(2))
    # The record is on disk where everyone looks, after one that says what happened.
    first, record = _lines(path)
    assert first["event"] == "audit_file_replaced"
    assert first["cause"] == "deleted"
    assert first["seq"] == 2
    assert first["previous_seq"] == 1
    assert record["request_id"] == "req-2"
    assert record["seq"] == 3
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["audit_file_replaced"]
    assert sink.health().files_replaced == {"deleted": 1}
    await sink.close()
    # The two records before the deletion are gone, and verify says so, with the reason.
    result = verify_paths(KEY, [path])
    [chain] = result.chains.values()
    assert chain.broken is not None
    assert chain.broken.kind == "deleted"
    assert chain.broken.seq == 0
    assert "its file was deleted" in chain.broken.detail


async def test_a_deleted_file_that_cannot_be_recreated_at_once_is_still_announced_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    path = tmp_path / "audit.jsonl"
    sink = await _sink(path)
    await sink.write(_event(0))
    path.unlink()
    real_open = os.open

    def out_of_descriptors(file: object, *args: object, **kwargs: object) -> int:
        if Path(str(file)) == path:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(file, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", out_of_descriptors)
    with pytest.raises(AuditWriteError):
        await sink.write(_event(1))
    assert sink.health().writable is False
    monkeypatch.setattr(os, "open", real_open)
    await sink.write(_event(2))
    await sink.close()
    records = _lines(path)
    assert [r["event"] for r in records[:3]] == [
        "audit_file_replaced",
        "audit_write_recovered",
        "message_redacted",
    ]
    assert records[0]["cause"] == "deleted"


async def test_a_file_moved_without_sighup_is_followed_and_the_trail_verifies(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    sink = await _sink(path)
    await sink.write_many([_event(0), _event(1)])
    path.rename(tmp_path / "audit.jsonl.1")  # a rotator whose postrotate never sent SIGHUP
    with structlog.testing.capture_logs() as logs:
        await sink.write(_event(2))
    await sink.close()
    assert [r["event"] for r in _lines(tmp_path / "audit.jsonl.1")] == ["message_redacted"] * 2
    assert _lines(path)[0]["cause"] == "moved"
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["audit_file_replaced"]
    result = verify_paths(KEY, [tmp_path])
    assert result.ok, list(render_text(result))


async def test_a_file_replaced_by_another_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = await _sink(path)
    await sink.write(_event(0))
    path.rename(tmp_path / "audit.jsonl.1")
    path.touch()  # logrotate's `create`
    await sink.write(_event(1))
    await sink.close()
    assert _lines(path)[0]["cause"] == "replaced"
    assert verify_paths(KEY, [tmp_path]).ok


async def test_a_copytruncate_rotation_keeps_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = await _sink(path)
    await sink.write_many([_event(n) for n in range(3)])
    # logrotate copytruncate: copy, then truncate the live file in place (same inode).
    (tmp_path / "audit.jsonl.1").write_bytes(path.read_bytes())
    with path.open("r+b") as handle:
        handle.truncate(0)
    await sink.write(_event(3))
    await sink.close()
    live = _lines(path)
    assert live[0]["seq"] == 3  # no record about a replaced file: it was not replaced
    assert path.read_bytes().startswith(b'{"chain"')  # no hole of zeros where the old bytes were
    result = verify_paths(KEY, [tmp_path])
    assert result.ok, list(render_text(result))


# --- a torn tail after a crash ---------------------------------------------------------------


async def _crashed_trail(path: Path) -> tuple[str, int]:
    """A trail whose writer died in the middle of a write: half of its last line is on disk.
    Returns the dead chain's id and the length of the torn line."""
    sink = await _sink(path)
    await sink.write_many([_event(0), _event(1)])
    await sink.write(_event(2))
    return sink.chain_id, _tear_last_line(path)


def _tear_last_line(path: Path) -> int:
    """Keep half of the file's last line, as a write the kernel took half of; its length."""
    data = path.read_bytes()
    last = data[:-1].rfind(b"\n") + 1
    torn = data[last : last + (len(data) - last) // 2]
    path.write_bytes(data[:last] + torn)
    return len(torn)


async def test_a_torn_last_line_with_nothing_after_it_is_a_torn_tail_not_tampering(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    chain, torn_bytes = await _crashed_trail(path)
    result = verify_paths(KEY, [path])
    assert result.ok  # a crash is not tampering
    assert [(t.line, t.bytes, t.chain, t.repaired) for t in result.torn] == [
        (3, torn_bytes, chain, False)
    ]
    text = "\n".join(render_text(result))
    assert f"{TORN_TAIL} at {path}:3" in text
    assert "BROKEN" not in text
    assert result.chains[chain].ok


async def test_a_restart_after_a_crash_ends_the_torn_line_and_records_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    dead, torn_bytes = await _crashed_trail(path)
    with structlog.testing.capture_logs() as logs:
        sink = await _sink(path)
    await sink.write(_event(3))
    await sink.close()
    lines = path.read_bytes().split(b"\n")
    assert len(lines[2]) == torn_bytes  # the torn line is a line of its own now
    repaired = json.loads(lines[3])
    assert repaired["event"] == "audit_tail_repaired"
    assert repaired["seq"] == 0  # the new chain begins with it
    assert repaired["torn_bytes"] == torn_bytes
    assert repaired["torn_chain"] == dead
    assert json.loads(lines[4])["request_id"] == "req-3"
    assert "audit_torn_tail_repaired" in [e["event"] for e in logs]
    assert sink.health().torn_tails_repaired == 1
    result = verify_paths(KEY, [path])
    text = "\n".join(render_text(result))
    # The crashed chain is not "inserted", the new one not "deleted": both verify.
    assert result.ok, text
    assert result.chains[dead].ok
    assert result.chains[sink.chain_id].ok
    assert result.chains[sink.chain_id].first_seq == 0
    assert [(t.line, t.repaired) for t in result.torn] == [(3, True)]


async def test_a_garbage_line_is_still_edited_and_a_false_repair_record_does_not_excuse_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    sink = await _sink(path)
    await sink.write(_event(0))
    await sink.close()
    lines = path.read_text().splitlines(keepends=True)
    # A line that is not a record, in the middle of the file, with lines after it.
    path.write_text(lines[0] + '{"chain":"x","note":"hello"}\n' + "".join(lines[1:]))
    result = verify_paths(KEY, [path])
    assert not result.ok
    assert result.torn == []
    assert any("edited: not a chained audit record" in p for p in result.problems)
    # A torn line, repaired, then edited: the repair record names other bytes, so the line
    # is an edit, not a crash.
    other = tmp_path / "other.jsonl"
    await _crashed_trail(other)
    sink = await _sink(other)
    await sink.close()
    lines = other.read_bytes().split(b"\n")
    lines[2] = lines[2][:-1] + (b"0" if lines[2][-1:] != b"0" else b"1")
    other.write_bytes(b"\n".join(lines))
    result = verify_paths(KEY, [other])
    assert not result.ok
    assert result.torn == []
    assert any(f"{other}:3: edited" in p for p in result.problems)


async def test_the_sink_refuses_an_unknown_fsync_policy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync"):
        AuditSink(tmp_path / "a.jsonl", KEY, fsync="sometimes")


@pytest.mark.parametrize("fsync", ["batch", "interval", "never"])
async def test_every_fsync_policy_writes_a_chain_that_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: str
) -> None:
    import os

    synced: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    path = tmp_path / "audit.jsonl"
    # interval: an hour, so no tick falls inside the test; close syncs what is left.
    sink = await _sink(path, fsync=fsync, fsync_interval_s=3600)
    assert sink.fsync == fsync
    for n in range(5):
        await sink.write(_event(n))
    during = len(synced)
    await sink.close()
    # batch: one fsync per batch before the caller returns; never: none, not even at close.
    assert during >= 5 if fsync == "batch" else during == 0
    assert (len(synced) > 0) is (fsync != "never")
    assert verify_paths(KEY, [path]).ok


async def test_the_interval_policy_syncs_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import os

    synced: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    sink = await _sink(tmp_path / "audit.jsonl", fsync="interval", fsync_interval_s=0.01)
    await sink.write(_event(0))
    assert synced == []  # the write itself did not wait for an fsync
    for _ in range(500):  # the syncer has no event to wait on: poll, 5 s at most
        if synced:
            break
        await asyncio.sleep(0.01)
    assert synced
    await sink.close()
