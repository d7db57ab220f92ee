"""A scan worker ends with the server that started it, even when the server is SIGKILLed
(issue 18: they outlived it forever, re-parented to PID 1, about 100 MB each)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after the command (which may hold spaces) start after its last ')'.
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its reaping is left


def _wait(condition, rounds: int = 300) -> bool:
    for _ in range(rounds):
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_the_scan_worker_exits_when_its_server_is_killed(tmp_path: Path) -> None:
    admin = _free_port()
    server = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
        [
            sys.executable, "-m", "redactor", "serve", "--dev", "--data-dir", str(tmp_path),
            "--upstream", "http://127.0.0.1:9", "--listen", f"127.0.0.1:{_free_port()}",
            "--admin-listen", f"127.0.0.1:{admin}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        assert _wait(ready), "the server never became healthy"
        workers = _children(server.pid)
        assert workers, "the server started no scan worker"
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait()

    assert _wait(lambda: not any(_alive(pid) for pid in workers)), "a scan worker outlived it"
