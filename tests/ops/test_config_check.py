"""`redactor config check`: what `serve` would refuse, found before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from redactor.ops.config_check import check_config
from redactor.settings import Overrides

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policies" / "routes.example.yaml"
WEBHOOK_SECRETS = dict.fromkeys(
    [
        "ZENDESK_WEBHOOK_SECRET",
        "ZENDESK_UPSTREAM_SECRET",
        "SLACK_SIGNING_SECRET",
        "SLACK_UPSTREAM_SECRET",
    ],
    "s" * 40,
)


def _redactor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "redactor", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_shipped_example_passes_with_its_documented_variables(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **WEBHOOK_SECRETS,
        "REDACTOR_DATA_DIR": str(data),
        "REDACTOR_KEY_FILE": str(tmp_path / "keys.json"),
        "REDACTOR_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
    }
    for step in (
        ["audit", "init-key", env["REDACTOR_AUDIT_KEY_FILE"]],
        ["keys", "init", "--key-file", env["REDACTOR_KEY_FILE"]],
        ["vault", "init", "--config", str(EXAMPLE)],
    ):
        done = _redactor(*step, env=env)
        assert done.returncode == 0, done.stderr
    before = sorted(p.name for p in data.iterdir())

    done = _redactor("config", "check", "--config", str(EXAMPLE), env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith("config ok: 4 route(s) (zendesk, slack, inbound-mail, agent-tools)")
    assert str(data / "vault.db") in done.stdout
    # Checking changes nothing.
    assert sorted(p.name for p in data.iterdir()) == before


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_duplicate_prefix_names_both_routes_and_their_lines(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "routes:\n"
        "  - {name: chat, path_prefix: /hooks/, upstream: 'http://127.0.0.1:9000', tenant: t}\n"
        "  - {name: mail, path_prefix: /mail/, upstream: 'http://127.0.0.1:9000', tenant: t}\n"
        "  - {name: chat-v2, path_prefix: /hooks/, upstream: 'http://127.0.0.1:9001', tenant: t}\n",
    )

    result = check_config(Overrides(config=str(config), dev=True), {})

    assert not result.ok
    [problem] = result.problems
    assert "'chat'" in problem
    assert "'chat-v2'" in problem
    assert "line 2" in problem
    assert "line 4" in problem


def test_every_problem_is_listed_not_just_the_first(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "listen: '127.0.0.1:8080'\n"
        "admin_listen: '127.0.0.1:8080'\n"
        "agent_listen: '127.0.0.1:8081'\n"
        "agent: {jwks: missing-jwks.json, issuer: 'https://idp/', audience: a,"
        " policy: missing-policy.yaml}\n"
        "routes:\n"
        "  - name: slack\n"
        "    path_prefix: /slack/\n"
        "    upstream: 'http://127.0.0.1:9000'\n"
        "    tenant: t\n"
        "    signature: {scheme: slack, sender_secret_env: SLACK_IN, upstream_secret_env: SLACK_OUT}\n",
    )

    result = check_config(
        Overrides(config=str(config)), {"REDACTOR_KEY_FILE": str(tmp_path / "no-keys.json")}
    )

    text = "\n".join(result.problems)
    assert "SLACK_IN is not set" in text
    assert "SLACK_OUT is not set" in text
    assert "listen and admin_listen are both 127.0.0.1:8080" in text
    assert f"{tmp_path / 'missing-jwks.json'} does not exist" in text
    assert f"{tmp_path / 'missing-policy.yaml'}: does not exist" in text
    assert f"{tmp_path / 'no-keys.json'} does not exist" in text
    assert "audit key" in text
    # Each names the file and the line where it can.
    assert f"{config} line 10: route 'slack' signature.sender_secret_env" in text


def test_schema_violations_are_all_reported_with_their_lines(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "workers: many\n"
        "routes:\n"
        "  - {name: a, path_prefix: /a/, upstream: 'http://127.0.0.1:9000', tenant: t, colour: red}\n",
    )

    result = check_config(Overrides(config=str(config), dev=True), {})

    assert len(result.problems) == 2
    assert any("line 1" in p and "workers" in p for p in result.problems)
    assert any("line 3" in p and "colour" in p for p in result.problems)


def test_a_missing_config_file_says_so(tmp_path: Path) -> None:
    result = check_config(Overrides(config=str(tmp_path / "nope.yaml")), {})

    assert result.problems == [f"{tmp_path / 'nope.yaml'}: does not exist"]


@pytest.mark.parametrize("missing_vault", [True, False])
def test_a_vault_serve_would_not_find_is_a_problem(tmp_path: Path, missing_vault: bool) -> None:
    env = {
        "REDACTOR_DATA_DIR": str(tmp_path / "data"),
        "REDACTOR_KEY_FILE": str(tmp_path / "keys.json"),
        "REDACTOR_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
    }
    assert _redactor("audit", "init-key", env["REDACTOR_AUDIT_KEY_FILE"], env=env).returncode == 0
    assert _redactor("keys", "init", "--key-file", env["REDACTOR_KEY_FILE"], env=env).returncode == 0
    if not missing_vault:
        assert _redactor("vault", "init", env=env).returncode == 0
    flags = Overrides(upstream="http://127.0.0.1:9000")

    result = check_config(flags, env)

    if missing_vault:
        assert result.problems == [
            f"vault: {tmp_path / 'data' / 'vault.db'} does not exist "
            "(`redactor vault init` creates it; `serve` never does)"
        ]
    else:
        assert result.ok, result.problems
