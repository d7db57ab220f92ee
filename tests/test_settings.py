"""Start-up configuration: a bad file or setting stops the start, naming where and what."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from redactor.config.yamlschema import YamlFileError
from redactor.errors import ConfigError
from redactor.settings import Overrides, load_settings

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
routes:
  - name: zendesk
    path_prefix: /zendesk/
    upstream: http://127.0.0.1:9000/
    tenant: acme
    signature:
      scheme: zendesk
      sender_secret_env: ZD_SENDER
      upstream_secret_env: ZD_UPSTREAM
"""


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    env = {"ZD_SENDER": "s1", "ZD_UPSTREAM": "s2", **(environ or {})}
    return load_settings(Overrides(config=str(path), data_dir=str(tmp_path), dev=True), env)


def test_good_file_gives_routes_with_secrets_from_the_environment(tmp_path: Path) -> None:
    settings = _load(tmp_path, GOOD)
    [route] = settings.routes
    assert route.signature.scheme == "zendesk"
    assert route.signature.sender_secret == b"s1"
    assert "s1" not in repr(route)
    assert settings.route_for("/zendesk/hook") is route
    assert settings.route_for("/other") is None


def test_unknown_key_is_reported_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError) as info:
        _load(tmp_path, GOOD.replace("    tenant: acme\n", "    tenant: acme\n    tennant: typo\n"))
    assert info.value.line == 6
    assert "tennant" in str(info.value)


def test_wrong_value_is_reported_with_its_line_and_never_quoted(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError) as info:
        _load(
            tmp_path,
            GOOD.replace("upstream: http://127.0.0.1:9000/", "upstream: ftp://secret-host/"),
        )
    assert info.value.line == 4
    assert "secret-host" not in str(info.value)


def test_missing_secret_variable_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(ConfigError, match="ZD_UPSTREAM"):
        load_settings(Overrides(config=str(path), dev=True), {"ZD_SENDER": "s1"})


def test_no_route_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no route"):
        load_settings(Overrides(data_dir=str(tmp_path), dev=True), {})


def test_flags_override_environment(tmp_path: Path) -> None:
    settings = load_settings(
        Overrides(
            upstream="http://127.0.0.1:9001",
            listen="127.0.0.1:8181",
            data_dir=str(tmp_path),
            dev=True,
        ),
        {"REDACTOR_LISTEN": "127.0.0.1:8282", "REDACTOR_UPSTREAM": "http://127.0.0.1:9999"},
    )
    assert str(settings.listen) == "127.0.0.1:8181"
    assert settings.routes[0].upstream == "http://127.0.0.1:9001"


def test_serve_without_a_key_refuses_to_start_and_says_how(tmp_path: Path) -> None:
    proc = subprocess.run(  # noqa: S603 - our own entry point
        [
            sys.executable,
            "-m",
            "redactor",
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert "no key configured" in proc.stderr
    assert "--dev" in proc.stderr


def test_keys_init_creates_a_key_file_serve_accepts_and_never_overwrites_it(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    env = {"PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run(  # noqa: E731, S603 - our own entry point
        [sys.executable, "-m", "redactor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    # Key commands are audited: without an audit key they do not run.
    refused = run("keys", "init", "--key-file", str(keys), "--data-dir", str(tmp_path))
    assert refused.returncode == 2
    assert "audit key is required" in refused.stderr
    assert not keys.exists()
    assert run("audit", "init-key", str(tmp_path / "audit.key")).returncode == 0
    env["REDACTOR_AUDIT_KEY_FILE"] = str(tmp_path / "audit.key")
    created = run("keys", "init", "--key-file", str(keys), "--data-dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    assert '"event":"key_init"' in (tmp_path / "audit-cli.jsonl").read_text()
    assert keys.stat().st_mode & 0o077 == 0
    before = keys.read_bytes()
    again = run("keys", "init", "--key-file", str(keys), "--data-dir", str(tmp_path))
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr
    assert keys.read_bytes() == before
    flags = ("--key-file", str(keys), "--data-dir", str(tmp_path))
    # Read commands never create a vault; `vault init` does, on purpose.
    listed = run("keys", "list", *flags)
    assert listed.returncode == 1
    assert "vault init" in listed.stderr
    assert not (tmp_path / "vault.db").exists()
    created = run("vault", "init", *flags)
    assert created.returncode == 0, created.stderr
    migrated = run("vault", "migrate", *flags)
    assert migrated.returncode == 0, migrated.stderr
    listed = run("keys", "list", *flags)
    assert listed.returncode == 0, listed.stderr
    assert "kek version 1: active since" in listed.stdout


def test_the_example_configuration_loads_and_routes_as_documented(tmp_path: Path) -> None:
    # Used where it ships: its JWKS and policy are found beside it, whatever the working dir.
    config = ROOT / "policies" / "routes.example.yaml"
    secrets_env = dict.fromkeys(
        [
            "ZENDESK_WEBHOOK_SECRET",
            "ZENDESK_UPSTREAM_SECRET",
            "SLACK_SIGNING_SECRET",
            "SLACK_UPSTREAM_SECRET",
        ],
        "s" * 40,
    )
    settings = load_settings(
        Overrides(config=str(config), dev=True), {**secrets_env, "REDACTOR_DATA_DIR": str(tmp_path)}
    )
    urls = {
        r.name: str(r.upstream_url(path, ""))
        for r, path in zip(
            settings.routes,
            ["/zendesk/hook", "/slack/events", "/mail/inbound", "/api/tickets/1"],
            strict=True,
        )
    }
    assert urls == {
        "zendesk": "http://127.0.0.1:9000/webhooks/zendesk/hook",
        "slack": "http://127.0.0.1:9000/slack/events",
        "inbound-mail": "http://127.0.0.1:9000/inbound/inbound",
        "agent-tools": "http://127.0.0.1:9000/api/tickets/1",
    }
    assert settings.agent is not None
    assert settings.agent.policy_path == ROOT / "policies" / "default.yaml"
    # What it writes goes to the data directory, never beside the file or the working dir.
    assert settings.audit_log == tmp_path / "audit.jsonl"
    assert settings.vault.sqlite_path == tmp_path / "vault.db"


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (None, {}, "uvloop"),
        (None, {"REDACTOR_EVENT_LOOP": "asyncio"}, "asyncio"),
        ("uvloop", {"REDACTOR_EVENT_LOOP": "asyncio"}, "uvloop"),
        ("auto", {}, "uvloop"),
    ],
)
def test_event_loop_is_uvloop_unless_asyncio_is_asked_for(
    tmp_path: Path, flag: str | None, env: dict[str, str], expected: str
) -> None:
    overrides = Overrides(
        upstream="http://127.0.0.1:9001", data_dir=str(tmp_path), dev=True, event_loop=flag
    )
    assert load_settings(overrides, env).event_loop == expected


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [(None, {}, False), (None, {"REDACTOR_ACCESS_LOG": "1"}, True), (True, {}, True)],
)
def test_the_access_log_is_off_unless_asked_for(
    tmp_path: Path, flag: bool | None, env: dict[str, str], expected: bool
) -> None:
    overrides = Overrides(
        upstream="http://127.0.0.1:9001", data_dir=str(tmp_path), dev=True, access_log=flag
    )
    assert load_settings(overrides, env).access_log is expected


def test_an_unknown_event_loop_stops_the_start(tmp_path: Path) -> None:
    overrides = Overrides(upstream="http://127.0.0.1:9001", data_dir=str(tmp_path), dev=True)
    with pytest.raises(ConfigError, match="event_loop"):
        load_settings(overrides, {"REDACTOR_EVENT_LOOP": "trio"})


def test_route_limits_unscanned_headers_and_slow_client_settings_come_from_the_file(
    tmp_path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "header_timeout_s: 3\nmin_body_rate_bytes_s: 100\nmax_connections: 7\n"
        "routes:\n  - name: r\n    path_prefix: /\n    upstream: http://127.0.0.1:9000\n"
        "    tenant: t\n    limits: {max_parts: 5, max_digits: 1000, max_tags: 30}\n"
        "    unscanned_headers: [X-Opaque]\n",
        encoding="utf-8",
    )
    settings = load_settings(Overrides(config=str(config), dev=True, data_dir=str(tmp_path)), {})
    [route] = settings.routes
    assert route.limits.max_parts == 5
    assert route.limits.max_digits == 1000
    assert route.limits.max_tags == 30
    assert route.limits.max_fields == 100_000
    assert route.unscanned_headers == frozenset({"x-opaque"})
    assert (settings.header_timeout_s, settings.min_body_rate_bytes_s) == (3, 100)
    assert settings.max_connections == 7


def test_scan_budget_and_lane_come_from_the_file_and_the_environment(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "scan_timeout_s: 4.5\nscan_lane_bytes: 65536\n"
        "routes:\n  - name: r\n    path_prefix: /\n    upstream: http://127.0.0.1:9000\n"
        "    tenant: t\n",
        encoding="utf-8",
    )
    overrides = Overrides(config=str(config), dev=True, data_dir=str(tmp_path))
    settings = load_settings(overrides, {})
    assert (settings.scan_timeout_s, settings.scan_lane_bytes) == (4.5, 65536)
    settings = load_settings(overrides, {"REDACTOR_SCAN_TIMEOUT_S": "2"})
    assert settings.scan_timeout_s == 2
    defaults = load_settings(
        Overrides(dev=True, data_dir=str(tmp_path), upstream="http://127.0.0.1:9000"), {}
    )
    assert (defaults.scan_timeout_s, defaults.scan_lane_bytes) == (10.0, 256 * 1024)
    with pytest.raises(ConfigError, match="scan_timeout_s"):
        load_settings(overrides, {"REDACTOR_SCAN_TIMEOUT_S": "0"})


def test_a_route_names_its_policy_for_parts_it_cannot_read(tmp_path) -> None:
    config = tmp_path / "config.yaml"
    route = "routes:\n  - name: r\n    path_prefix: /\n    upstream: http://127.0.0.1:9000\n"
    config.write_text(route + "    tenant: t\n    unreadable_parts: strip\n", encoding="utf-8")
    overrides = Overrides(config=str(config), dev=True, data_dir=str(tmp_path))
    assert load_settings(overrides, {}).routes[0].unreadable_parts == "strip"
    config.write_text(route + "    tenant: t\n", encoding="utf-8")
    assert load_settings(overrides, {}).routes[0].unreadable_parts == "pass"
    config.write_text(route + "    tenant: t\n    unreadable_parts: drop\n", encoding="utf-8")
    with pytest.raises((ConfigError, YamlFileError), match="unreadable_parts"):
        load_settings(overrides, {})
