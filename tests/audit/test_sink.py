"""The audit sink: every caller's lines written and flushed before it returns, in order."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from redactor.audit import AuditEvent, AuditSink, AuditWriteError


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        "message_redacted", "t", f"req-{n}", "r", "acme", {"CREDIT_CARD": 1}, (f"tok{n}",)
    )


async def test_concurrent_writers_each_return_after_their_line_is_in_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path)
    await sink.open()

    async def write(n: int) -> int:
        await sink.write(_event(n))
        # By the time write returns, this caller's record is in the file.
        lines = path.read_text().splitlines()
        assert any(json.loads(line)["request_id"] == f"req-{n}" for line in lines)
        return n

    done = await asyncio.gather(*(write(n) for n in range(200)))
    await sink.close()
    assert sorted(done) == list(range(200))
    ids = [json.loads(line)["request_id"] for line in path.read_text().splitlines()]
    assert sorted(ids, key=lambda i: int(i[4:])) == [f"req-{n}" for n in range(200)]
    assert len(ids) == 200


async def test_a_failing_file_fails_every_waiting_writer(tmp_path: Path) -> None:
    sink = AuditSink(tmp_path / "audit.jsonl")
    await sink.open()
    await sink.close()  # writes now fail: the file is gone from under the sink
    results = await asyncio.gather(
        *(sink.write(_event(n)) for n in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, AuditWriteError) for r in results)


async def test_records_are_canonical_json() -> None:
    line = _event(1).to_json()
    assert line == json.dumps(
        json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_every_field_of_an_audit_event_is_in_its_record() -> None:
    from dataclasses import fields

    record = json.loads(_event(1).to_json())
    assert set(record) == {f.name for f in fields(AuditEvent)}
