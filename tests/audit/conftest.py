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
from collections.abc import Callable
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
    received: list[bytes] = []  # noqa: RUF012 - per server: set on a subclass in serve_and_stop

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


REVEALERS = ("alice", "bob")


def _agent_flags(root: Path) -> tuple[list[str], str]:
    """Flags for the agent API (a JWKS file, a policy) and the listen address they use."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    from tests.agent.conftest import AUDIENCE, ISSUER, POLICY

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    (root / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    (root / "policy.yaml").write_text(POLICY)
    _SIGNERS[root] = lambda sub: jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "tenant": "acme",
         "roles": ["support_agent"], "exp": int(time.time()) + 300},
        key, algorithm="RS256", headers={"kid": "k1"},
    )  # fmt: skip
    agent = f"127.0.0.1:{free_port()}"
    flags = ["--agent-listen", agent, "--jwks", str(root / "jwks.json"), "--jwt-issuer", ISSUER,
             "--jwt-audience", AUDIENCE, "--policy", str(root / "policy.yaml")]  # fmt: skip
    return flags, agent


# The JWT signer of each served root: the key stays in the test process.
_SIGNERS: dict[Path, Callable[[str], str]] = {}


def serve_and_stop(
    root: Path,
    messages: int = MESSAGES,
    extra_env: dict[str, str] | None = None,
    *,
    reveals: bool = False,
) -> None:
    """`redactor serve --dev` in a child process: proxy `messages` messages, then SIGTERM.

    With `reveals`, the agent API runs too, and each of REVEALERS resolves the tokens of the
    first message (masked: `token_revealed` records) before the stop.
    """
    upstream_handler = type("Upstream", (_Upstream,), {"received": []})
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), upstream_handler)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    listen, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env.update(extra_env or {})
    agent_flags, agent = _agent_flags(root) if reveals else ([], "")
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
            *agent_flags,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1200):  # 60 s and more: a loaded CI machine starts slowly
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
        if reveals:
            from vault import find_tokens

            tokens = find_tokens(upstream_handler.received[0].decode())
            sign = _SIGNERS.pop(root)
            for subject in REVEALERS:
                req = urllib.request.Request(
                    f"http://{agent}/v1/resolve",
                    data=json.dumps({"tokens": tokens}).encode(),
                    headers={"Authorization": f"Bearer {sign(subject)}"},
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


@pytest.fixture(scope="module")
def served_trail_with_reveals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trail a real server with the agent API wrote: messages, then reveals by REVEALERS."""
    root = tmp_path_factory.mktemp("served-reveals")
    serve_and_stop(root, reveals=True)
    return root


@pytest.fixture
def revealed_trail(served_trail_with_reveals: Path, tmp_path: Path) -> Trail:
    """A fresh copy of the trail with reveals that a test may tamper with."""
    copy = tmp_path / "trail"
    shutil.copytree(served_trail_with_reveals, copy)
    return Trail(copy / "data", copy / "audit.jsonl")
