"""One error style for the operator (issue 19): each start-up mistake gets one line that
names the file, setting or address and what is wrong, and exit code 2 — never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from redactor.settings import Overrides, load_settings
from vault.errors import VaultUnavailableError
from vault.stores.postgres import PostgresStore

ROOT = Path(__file__).resolve().parents[1]


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "redactor", "serve", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("redactor:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_missing_config_file_says_it_does_not_exist(tmp_path: Path) -> None:
    line = _one_line(_serve("--config", str(tmp_path / "nope.yaml")))

    assert f"{tmp_path / 'nope.yaml'}: does not exist" in line


def test_a_missing_policy_file_names_its_path(tmp_path: Path) -> None:
    jwks = ROOT / "policies" / "jwks.example.json"
    line = _one_line(
        _serve(
            "--dev", "--data-dir", str(tmp_path), "--upstream", "http://127.0.0.1:9",
            "--agent-listen", f"127.0.0.1:{_free_port()}", "--jwks", str(jwks), "--jwt-issuer", "https://i/",
            "--jwt-audience", "a", "--policy", str(tmp_path / "policy.yaml"),
        )
    )  # fmt: skip

    assert f"{tmp_path / 'policy.yaml'}: does not exist" in line


def test_a_missing_key_file_names_its_path(tmp_path: Path) -> None:
    line = _one_line(
        _serve(
            "--upstream", "http://127.0.0.1:9", "--data-dir", str(tmp_path),
            "--key-file", str(tmp_path / "keys.json"),
        ),
    )  # fmt: skip

    assert f"key file {tmp_path / 'keys.json'} does not exist" in line


def test_a_busy_port_is_one_line_and_the_trail_records_the_stop(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        audit = tmp_path / "audit.jsonl"
        done = _serve(
            "--dev", "--data-dir", str(tmp_path), "--upstream", "http://127.0.0.1:9",
            "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{_free_port()}",
            "--audit-log", str(audit),
        )  # fmt: skip

    line = _one_line(done)
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in line
    events = [json.loads(r)["event"] for r in audit.read_text().splitlines()]
    assert events.index("redactor_stopped") > events.index("redactor_started")


def test_duplicate_prefixes_are_refused_naming_both_routes(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "routes:\n"
        "  - {name: chat, path_prefix: /hooks/, upstream: 'http://127.0.0.1:9000', tenant: t}\n"
        "  - {name: chat-v2, path_prefix: /hooks/, upstream: 'http://127.0.0.1:9001', tenant: t}\n",
        encoding="utf-8",
    )

    line = _one_line(_serve("--config", str(config), "--dev", "--data-dir", str(tmp_path)))

    assert "routes 'chat', 'chat-v2' have the same path_prefix '/hooks/'" in line


# --- PostgreSQL: three different failures, three different messages ------------------------


async def _open(dsn: str) -> None:
    store = await PostgresStore.open(
        dsn, schema="redactor", min_size=1, max_size=1, acquire_timeout_s=2, statement_timeout_s=2
    )
    await store.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (
            "postgresql://no_such_role_x@127.0.0.1:5432/test",
            "authentication failed for user 'no_such_role_x' at 127.0.0.1:5432",
        ),
        (
            "postgresql://postgres@127.0.0.1:5432/no_such_db_x",
            "database 'no_such_db_x' does not exist at 127.0.0.1:5432",
        ),
        (
            # Port 1 on loopback: nothing listens there.
            "postgresql://postgres:secret-pw@127.0.0.1:1/test",
            "server unreachable at 127.0.0.1:1",
        ),
    ],
)
async def test_postgres_failures_are_told_apart(dsn: str, expected: str) -> None:
    with pytest.raises(VaultUnavailableError) as caught:
        await _open(dsn)

    assert expected in str(caught.value)
    assert "secret-pw" not in str(caught.value)


# --- flags override the file, every one of them --------------------------------------------

# Each flag: (file text, flag value, what Settings shows for it). Flags with no file key are
# listed apart, so a new flag fails here until it is placed in one or the other.
_FLAG_ONLY = {"config", "upstream", "tenant", "dev", "create_vault", "log_level", "log_console"}


def _cases(tmp_path: Path) -> dict[str, tuple[str, Any, Any]]:
    policy_a, policy_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    policy = (ROOT / "policies" / "default.yaml").read_text(encoding="utf-8")
    policy_a.write_text(policy, encoding="utf-8")
    policy_b.write_text(policy, encoding="utf-8")
    jwks_a = ROOT / "policies" / "jwks.example.json"
    jwks_b = tmp_path / "jwks-b.json"
    jwks_b.write_text(jwks_a.read_text(encoding="utf-8"), encoding="utf-8")
    return {
        "listen": ("listen: '127.0.0.1:1001'", "127.0.0.1:2001", lambda s: str(s.listen)),
        "admin_listen": (
            "admin_listen: '127.0.0.1:1002'",
            "127.0.0.1:2002",
            lambda s: str(s.admin_listen),
        ),
        "agent_listen": (
            "agent_listen: '127.0.0.1:1003'",
            "127.0.0.1:2003",
            lambda s: str(s.agent.listen),
        ),
        "jwks": (f"agent: {{jwks: {jwks_a}}}", str(jwks_b), lambda s: str(s.agent.auth.jwks_path)),
        "jwt_issuer": ("agent: {issuer: 'https://file/'}", "https://flag/", lambda s: s.agent.auth.issuer),
        "jwt_audience": ("agent: {audience: file}", "flag", lambda s: s.agent.auth.audience),
        "policy": (f"agent: {{policy: {policy_a}}}", str(policy_b), lambda s: str(s.agent.policy_path)),
        "data_dir": (f"data_dir: {tmp_path / 'file'}", str(tmp_path / "flag"), lambda s: str(s.vault.data_dir)),
        "vault_url": (
            f"vault: {{url: 'sqlite:///{tmp_path}/file.db'}}",
            f"sqlite:///{tmp_path}/flag.db",
            lambda s: s.vault.vault_url.reveal(),
        ),
        "key_file": (
            f"vault: {{key_file: {tmp_path / 'file.json'}}}",
            str(tmp_path / "flag.json"),
            lambda s: str(s.vault.key_file),
        ),
        "audit_log": (f"audit_log: {tmp_path / 'file.jsonl'}", str(tmp_path / "flag.jsonl"), lambda s: str(s.audit_log)),
        "audit_key_file": (
            f"audit_key_file: {tmp_path / 'file.key'}",
            str(tmp_path / "flag.key"),
            lambda s: str(s.audit_key_file),
        ),
        "max_body_bytes": (
            "routes: [{name: r, path_prefix: /, upstream: 'http://127.0.0.1:9', tenant: t,"
            " max_body_bytes: 1000}]",
            2000,
            lambda s: s.routes[0].max_body_bytes,
        ),
        "workers": ("workers: 3", 4, lambda s: s.workers),
        "event_loop": ("event_loop: uvloop", "asyncio", lambda s: s.event_loop),
        "access_log": ("access_log: false", True, lambda s: s.access_log),
    }  # fmt: skip


_AGENT_BASE = {
    "agent_listen": "127.0.0.1:1003",
    "agent": {"issuer": "https://file/", "audience": "file"},
}


def test_every_flag_is_either_walked_or_known_to_have_no_file_key(tmp_path: Path) -> None:
    names = {f.name for f in fields(Overrides)}
    assert names == set(_cases(tmp_path)) | _FLAG_ONLY


@pytest.mark.parametrize(
    "flag",
    sorted(
        {
            "listen", "admin_listen", "agent_listen", "jwks", "jwt_issuer", "jwt_audience",
            "policy", "data_dir", "vault_url", "key_file", "audit_log", "audit_key_file",
            "max_body_bytes", "workers", "event_loop", "access_log",
        }
    ),
)  # fmt: skip
def test_a_flag_overrides_the_file(tmp_path: Path, flag: str) -> None:
    file_text, flag_value, shown = _cases(tmp_path)[flag]
    import yaml

    doc: dict[str, Any] = {
        "routes": [
            {"name": "r", "path_prefix": "/", "upstream": "http://127.0.0.1:9", "tenant": "t"}
        ],
        "agent_listen": "127.0.0.1:1003",
        "agent": {
            "jwks": str(ROOT / "policies" / "jwks.example.json"),
            "issuer": "https://file/",
            "audience": "file",
            "policy": str(ROOT / "policies" / "default.yaml"),
        },
    }
    for key, value in yaml.safe_load(file_text).items():
        doc[key] = {**doc[key], **value} if isinstance(value, dict) and key in doc else value
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    env = {"REDACTOR_KEYS": ""}

    from_file = load_settings(Overrides(config=str(config), dev=True), env)
    from_flag = load_settings(Overrides(config=str(config), dev=True, **{flag: flag_value}), env)

    assert shown(from_flag) == (str(flag_value) if isinstance(shown(from_flag), str) else flag_value)
    assert shown(from_file) != shown(from_flag)
