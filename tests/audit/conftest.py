"""A real audit trail, written once per module by a real server (`redactor serve` in a child
process) that proxied messages to an upstream and then stopped on SIGTERM."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

PAN = "4111111111111111"
SSN = "536-90-4399"
MESSAGES = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Trail:
    """A copy of a served trail: the data dir (with the dev audit key) and the log."""

    data_dir: Path
    log: Path

    @property
    def checkpoints(self) -> Path:
        return self.log.with_name(self.log.name + ".checkpoints")

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines(keepends=True)

    def write(self, lines: list[str]) -> None:
        self.log.write_text("".join(lines))


class _Upstream(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def serve_and_stop(
    root: Path, messages: int = MESSAGES, extra_env: dict[str, str] | None = None
) -> None:
    """`redactor serve --dev` in a child process: proxy `messages` messages, then SIGTERM."""
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    listen, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env.update(extra_env or {})
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
            str(root / "audit.jsonl"),
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
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("redactor serve never became ready")
        for n in range(messages):
            body = json.dumps({"ticket": n, "text": f"card {PAN} and ssn {SSN}"}).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{listen}/hook",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
                assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        upstream.shutdown()
        upstream.server_close()


@pytest.fixture(scope="module")
def served_trail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of a trail a real server wrote (once per module)."""
    root = tmp_path_factory.mktemp("served")
    serve_and_stop(root)
    return root


@pytest.fixture
def trail(served_trail: Path, tmp_path: Path) -> Trail:
    """A fresh copy of the served trail that a test may tamper with."""
    copy = tmp_path / "trail"
    shutil.copytree(served_trail, copy)
    return Trail(copy / "data", copy / "audit.jsonl")
