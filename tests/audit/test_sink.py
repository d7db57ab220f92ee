"""The audit sink: every caller's lines written and flushed before it returns, in order."""

from __future__ import annotations

import asyncio
import json
import stat
from dataclasses import replace
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from redactor.audit import AuditEvent, AuditSink, AuditWriteError
from redactor.audit.chain import canonical_json
from redactor.audit.verify import verify_paths

KEY = bytes(range(32))


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        "message_redacted", "t", f"req-{n}", "r", "acme", {"CREDIT_CARD": 1}, (f"tok{n}",)
    )


def _records(path: Path) -> list[dict]:
    return [
        r
        for r in (json.loads(line) for line in path.read_text().splitlines())
        if r["event"] != "audit_checkpoint"
    ]


async def _open_sink(tmp_path: Path) -> tuple[Path, AuditSink]:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path, KEY)
    await sink.open()
    return path, sink


async def test_concurrent_writers_each_return_after_their_line_is_in_the_file(
    tmp_path: Path,
) -> None:
    path, sink = await _open_sink(tmp_path)

    async def write(n: int) -> int:
        await sink.write(_event(n))
        # By the time write returns, this caller's record is in the file.
        lines = path.read_text().splitlines()
        assert any(json.loads(line)["request_id"] == f"req-{n}" for line in lines)
        return n

    done = await asyncio.gather(*(write(n) for n in range(200)))
    await sink.close()
    assert sorted(done) == list(range(200))
    records = _records(path)
    ids = [r["request_id"] for r in records]
    assert sorted(ids, key=lambda i: int(i[4:])) == [f"req-{n}" for n in range(200)]
    assert len(ids) == 200
    # One chain, sequence numbers in file order, and it verifies.
    assert [r["seq"] for r in records] == list(range(200))
    assert verify_paths(KEY, [path]).ok


async def test_a_writer_that_gives_up_waiting_does_not_cost_the_others_their_lines(
    tmp_path: Path,
) -> None:
    path, sink = await _open_sink(tmp_path)
    tasks = [asyncio.create_task(sink.write(_event(n))) for n in range(10)]
    await asyncio.sleep(0)  # every writer has queued its record
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await sink.close()
    assert isinstance(results[3], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 3] == [None] * 9
    # The record was queued before its writer left: it is in the chain like the others.
    assert [r["request_id"] for r in _records(path)] == [f"req-{n}" for n in range(10)]
    assert verify_paths(KEY, [path]).ok


async def test_a_failing_file_fails_every_waiting_writer(tmp_path: Path) -> None:
    sink = AuditSink(tmp_path / "audit.jsonl", KEY)
    await sink.open()
    await sink.close()  # writes now fail: the file is gone from under the sink
    results = await asyncio.gather(
        *(sink.write(_event(n)) for n in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, AuditWriteError) for r in results)


async def test_the_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path, KEY)
    await sink.open()
    await sink.write(_event(1))
    await sink.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    side = tmp_path / "audit.jsonl.checkpoints"
    assert stat.S_IMODE(side.stat().st_mode) == 0o600


async def test_a_wider_existing_file_is_narrowed_to_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.touch(mode=0o644)
    path.chmod(0o644)
    sink = AuditSink(path, KEY)
    await sink.open()
    await sink.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_size_rotation_starts_a_new_file_and_the_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path, KEY, max_bytes=4096)
    await sink.open()
    for n in range(100):
        await sink.write(_event(n))
    await sink.close()
    files = sorted(tmp_path.glob("audit*.jsonl"))  # noqa: ASYNC240 - a test reading its own tmp dir
    assert len(files) > 2
    assert files[-1] == path  # rotated files sort before the live one
    seqs = [r["seq"] for f in files for r in _records(f)]
    assert seqs == sorted(seqs)
    assert len({r["chain"] for f in files for r in _records(f)}) == 1
    assert verify_paths(KEY, [tmp_path]).ok


async def test_reopen_follows_an_external_rotator(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path, KEY)
    await sink.open()
    await sink.write(_event(1))
    path.rename(tmp_path / "audit.1.jsonl")  # logrotate moves the file ...
    sink.reopen()  # ... and sends SIGHUP
    await sink.write(_event(2))
    await sink.close()
    assert [r["request_id"] for r in _records(path)] == ["req-2"]
    assert verify_paths(KEY, [tmp_path / "audit.1.jsonl", path]).ok


async def test_records_are_canonical_json_with_the_mac_last(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path, KEY, chain_id="c1")
    await sink.open()
    await sink.write(_event(1))
    await sink.close()
    line = path.read_text().splitlines()[0]
    record = json.loads(line)
    mac = record.pop("mac")
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert line == body[:-1] + f',"mac":"{mac}"}}'
    assert record["chain"] == "c1"
    assert record["seq"] == 0


def test_every_field_of_an_audit_event_is_in_its_record() -> None:
    from dataclasses import fields

    names = {f.name for f in fields(AuditEvent)}
    record = json.loads(_event(1).to_json())
    # `unread_parts` is written only when a message held a part redactor cannot read.
    assert set(record) == names - {"unread_parts"}
    part = {"type": "image/png", "size": 66, "kind": "image", "action": "passed"}
    with_part = replace(_event(1), unread_parts=(part,))
    assert set(json.loads(with_part.to_json())) == names
    assert json.loads(with_part.to_json())["unread_parts"] == [part]


def test_every_field_of_a_delivery_event_is_in_its_record_and_unset_extras_are_not() -> None:
    from dataclasses import fields

    from redactor.audit import DeliveryEvent

    names = {f.name for f in fields(DeliveryEvent)}
    extras = {"reading", "outbox_id", "attempt"}
    plain = DeliveryEvent("message_delivered", "t", "req-1", "hook", "acme", "forwarded", 200)
    # `code` is written even when None (records before the extras kept that form).
    assert json.loads(plain.to_json()) == {
        "event": "message_delivered", "time": "t", "request_id": "req-1", "route": "hook",
        "tenant": "acme", "outcome": "forwarded", "status": 200, "code": None,
    }  # fmt: skip
    full = replace(plain, code="x", reading="body>gzip", outbox_id="ob1", attempt=0)
    record = json.loads(full.to_json())
    assert set(record) == names
    assert {name: record[name] for name in extras} == {
        "reading": "body>gzip", "outbox_id": "ob1", "attempt": 0,
    }  # fmt: skip


async def test_checkpoints_are_written_at_an_interval_and_signed_beside_the_log(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path, KEY, checkpoint_interval_s=0.01)
    await sink.open()
    await sink.write(_event(1))
    side = tmp_path / "audit.jsonl.checkpoints"
    for _ in range(500):  # the ticker has no event to wait on: poll, 5 s at most
        if side.exists():
            break
        await asyncio.sleep(0.01)
    await sink.write(_event(2))
    await sink.close()
    checkpoints = [json.loads(line) for line in side.read_text().splitlines()]
    assert checkpoints[0]["last_seq"] == 1  # the record, then the checkpoint itself
    assert checkpoints[0]["final"] is False
    assert checkpoints[-1]["final"] is True
    # Nothing new between ticks: no checkpoint is written for an idle chain.
    seqs = [c["last_seq"] for c in checkpoints]
    assert len(seqs) == len(set(seqs))
    assert verify_paths(KEY, [path]).ok


_JSON_LEAF = st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=20)


@given(
    st.dictionaries(
        st.text(max_size=10),
        _JSON_LEAF
        | st.lists(st.text(max_size=10), max_size=4)
        | st.dictionaries(st.text(max_size=10), st.integers(0, 10**6), max_size=4),
        max_size=8,
    )
)
def test_canonical_json_is_what_the_stdlib_writes_sorted_and_compact(data: dict) -> None:
    expected = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(data) == expected


def test_a_signed_line_is_the_canonical_record_with_the_mac_of_the_chain_last() -> None:
    from redactor.audit.chain import LineSigner, compute_mac, split_line

    signer = LineSigner(KEY)
    previous = bytes(32)
    # Line after line from one signer: each MAC is over its own chain link, nothing carried.
    for n in range(3):
        record = {"z": n, "event": "message_scanned", "tokens": ["tok_ü"], "counts": {}}
        line, mac = signer.sign(previous, record)
        canonical, written_mac = split_line(line)
        assert canonical == canonical_json(record).encode()
        assert written_mac == mac == compute_mac(KEY, previous, canonical)
        previous = mac


def test_record_times_are_spelled_like_isoformat_in_milliseconds(monkeypatch) -> None:
    import time
    from datetime import UTC, datetime

    from redactor.audit import now_iso

    for instant in (1_790_000_000.0, 1_790_000_000.9999, 1_790_000_001.0405, 1_790_086_399.5):
        monkeypatch.setattr(time, "time", lambda instant=instant: instant)
        expected = datetime.fromtimestamp(instant, UTC).isoformat(timespec="milliseconds")
        assert now_iso() == expected
