"""`redactor audit verify DIR` on trails rotated the way operators rotate them: logrotate's
rename-then-SIGHUP with numbered, compressed and dated names, and copytruncate. Files are
ordered by the chains in them, not by name."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from redactor.audit import AuditEvent, AuditSink, write_audit_key_file
from redactor.audit.report import read_records
from redactor.audit.verify import expand_paths, render_text, verify_paths
from redactor.cli import main
from tests.audit.conftest import PAN, SSN, _Upstream, free_port


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        "message_redacted", "t", f"req-{n}", "r", "acme", {"CREDIT_CARD": 1}, (f"tok{n}",)
    )


def _gzip(path: Path) -> Path:
    """logrotate's `compress`: path.gz, the original removed."""
    target = path.with_name(path.name + ".gz")
    with path.open("rb") as src, gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()
    return target


def _shift(directory: Path, name: str = "audit.jsonl") -> None:
    """logrotate's numbered rotation with `compress` and `delaycompress`: .N.gz -> .N+1.gz,
    .1 -> .2.gz, the live file -> .1."""
    olds = sorted(directory.glob(f"{name}.*.gz"), key=lambda p: -int(p.name.split(".")[-2]))
    for old in olds:
        n = int(old.name.split(".")[-2])
        old.rename(directory / f"{name}.{n + 1}.gz")
    one = directory / f"{name}.1"
    if one.exists():
        _gzip(one.rename(directory / f"{name}.2"))
    (directory / name).rename(one)


def _verify_cli(
    key_file: Path, capsys: pytest.CaptureFixture[str], *paths: Path
) -> tuple[int, str]:
    code = main(["audit", "verify", *map(str, paths), "--audit-key-file", str(key_file)])
    return code, capsys.readouterr().out


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.key"
    write_audit_key_file(path)
    return path


def _key(key_file: Path) -> bytes:
    from redactor.audit import load_audit_key

    return load_audit_key(key_file=key_file, inline=None, dev_data_dir=None)


async def test_numbered_and_compressed_rotations_with_a_restart_verify_in_chain_order(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trail = tmp_path / "log"
    path = trail / "audit.jsonl"
    key = _key(key_file)
    first = AuditSink(path, key, checkpoint_interval_s=0)
    await first.open()
    n = 0
    for _ in range(3):  # three generations of the first process, rotated under it
        for _ in range(4):
            await first.write(_event(n))
            n += 1
        _shift(trail)
        first.reopen()  # SIGHUP from logrotate's postrotate
    await first.write(_event(n))
    await first.close()
    # A restart appends a second chain to the live file, then one more rotation.
    second = AuditSink(path, key, checkpoint_interval_s=0)
    await second.open()
    await second.write(_event(n + 1))
    _shift(trail)
    second.reopen()
    await second.write(_event(n + 2))
    await second.close()
    names = sorted(p.name for p in trail.iterdir() if "checkpoints" not in p.name)
    assert names == [
        "audit.jsonl",
        "audit.jsonl.1",
        "audit.jsonl.2.gz",
        "audit.jsonl.3.gz",
        "audit.jsonl.4.gz",
    ]
    # By name the live file comes first and the oldest last. audit.jsonl.1 ends the first
    # chain and begins the second, which goes on in the live file.
    logs, _ = expand_paths([trail])
    assert [p.name for p in logs] == names[::-1]
    code, out = _verify_cli(key_file, capsys, trail)
    assert code == 0, out
    assert out.count(": ok,") == 2
    # Sinks without a registry (none given to verify either): intact, completeness unknown.
    assert "verified: the chains found are intact" in out
    assert "chain completeness NOT checked" in out
    # report reads the compressed files too: every message once.
    ids = [r["request_id"] for r in read_records([trail]) if r["event"] == "message_redacted"]
    assert sorted(ids, key=lambda i: int(i[4:])) == [f"req-{i}" for i in range(n + 3)]


async def test_dated_names_from_logrotate_dateext_verify(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    key = _key(key_file)
    sink = AuditSink(path, key, checkpoint_interval_s=0)
    await sink.open()
    for day, compress in (("20261205", True), ("20261206", True), ("20261207", False)):
        await sink.write_many([_event(0), _event(1)])
        rotated = path.rename(tmp_path / f"audit.jsonl-{day}")
        if compress:
            _gzip(rotated)
        sink.reopen()
    await sink.write(_event(2))
    await sink.close()
    code, out = _verify_cli(key_file, capsys, tmp_path)
    assert code == 0, out
    assert "ok, 8 records, seq 0..7, closed" in out  # 7 records and the final checkpoint


async def test_copytruncate_rotations_verify(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    key = _key(key_file)
    sink = AuditSink(path, key, checkpoint_interval_s=0)
    await sink.open()
    for generation in range(3):
        await sink.write_many([_event(generation), _event(generation + 10)])
        _copytruncate(path, generation)
    await sink.write(_event(99))
    await sink.close()
    code, out = _verify_cli(key_file, capsys, tmp_path)
    assert code == 0, out
    assert "ok, 8 records, seq 0..7" in out


def _copytruncate(path: Path, generation: int) -> None:
    # copy, then truncate in place (the writer keeps its descriptor); older copies shift up.
    for n in range(generation, 0, -1):
        (path.parent / f"audit.jsonl.{n}").rename(path.parent / f"audit.jsonl.{n + 1}")
    shutil.copyfile(path, path.parent / "audit.jsonl.1")
    os.truncate(path, 0)


async def test_a_rotated_file_that_is_missing_is_deleted_not_reordered(
    tmp_path: Path, key_file: Path
) -> None:
    path = tmp_path / "audit.jsonl"
    key = _key(key_file)
    sink = AuditSink(path, key, checkpoint_interval_s=0)
    await sink.open()
    for _ in range(3):
        await sink.write_many([_event(0), _event(1)])
        _shift(tmp_path)
        sink.reopen()
    await sink.write(_event(2))
    await sink.close()
    (tmp_path / "audit.jsonl.2.gz").unlink()  # seq 2..3
    result = verify_paths(key, [tmp_path])
    [chain] = result.chains.values()
    assert chain.broken is not None
    assert (chain.broken.kind, chain.broken.seq) == ("deleted", 2), list(render_text(result))


def _serve(root: Path, during: Callable[[Callable[[int], None], Callable[[], None]], None]) -> None:
    """`redactor serve --dev` in a child process; `during(send, hup)` sends messages and
    rotates; then SIGTERM."""
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    listen, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "redactor",
            "serve",
            "--dev",
            "--data-dir",
            str(root / "data"),
            "--audit-log",
            str(root / "log" / "audit.jsonl"),
            "--upstream",
            f"http://127.0.0.1:{upstream.server_address[1]}/",
            "--tenant",
            "acme",
            "--listen",
            f"127.0.0.1:{listen}",
            "--admin-listen",
            f"127.0.0.1:{admin}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def send(count: int) -> None:
        for n in range(count):
            body = json.dumps({"ticket": n, "text": f"card {PAN} and ssn {SSN}"}).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{listen}/hook",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
                assert resp.status == 200

    def hup() -> None:
        proc.send_signal(signal.SIGHUP)

    try:
        for _ in range(1200):  # 60 s and more: a loaded CI machine starts slowly
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("redactor serve never became ready")
        during(send, hup)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        upstream.shutdown()
        upstream.server_close()


def test_a_served_trail_rotated_as_the_readme_says_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log"

    def during(send: Callable[[int], None], hup: Callable[[], None]) -> None:
        send(3)
        _shift(log)  # rename to audit.jsonl.1 ...
        hup()  # ... then SIGHUP
        send(3)
        _shift(log)  # .1 -> .2.gz, live -> .1
        hup()
        send(3)

    _serve(tmp_path, during)
    assert (log / "audit.jsonl.2.gz").exists()
    code = main(["audit", "verify", str(log), "--dev", "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "closed" in out
    assert "verified: ok" in out
    records = list(read_records([log]))
    assert sum(r["event"] == "message_delivered" for r in records) == 9
    text = "".join(json.dumps(r) for r in records)
    assert PAN not in text
    assert SSN not in text
