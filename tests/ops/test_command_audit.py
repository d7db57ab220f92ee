"""Key and vault commands run through `redactor` leave a chained record before and after;
when the record cannot be written, the command does not run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redactor.audit.verify import verify_paths
from redactor.cli import main
from redactor.ops.audit_cli import audit_key_from
from redactor.ops.command_audit import AUDITED_COMMANDS


def _records(path: Path) -> list[dict]:
    return [
        r
        for r in (json.loads(line) for line in path.read_text().splitlines())
        if r["event"] != "audit_checkpoint"
    ]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("REDACTOR_KEY_FILE", "REDACTOR_KEYS", "REDACTOR_VAULT_URL", "REDACTOR_DEV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDACTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REDACTOR_AUDIT_LOG", str(tmp_path / "logs" / "audit.jsonl"))
    monkeypatch.delenv("REDACTOR_AUDIT_KEY", raising=False)
    key = tmp_path / "audit.key"
    assert main(["audit", "init-key", str(key)]) == 0
    monkeypatch.setenv("REDACTOR_AUDIT_KEY_FILE", str(key))
    return tmp_path


def test_key_commands_are_recorded_before_and_after_in_a_chain_of_their_own(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = env / "keys.json"
    assert main(["keys", "init", "--key-file", str(keys)]) == 0
    assert main(["vault", "init", "--key-file", str(keys)]) == 0
    assert main(["vault", "migrate", "--key-file", str(keys)]) == 0
    assert main(["keys", "rotate", "--key-file", str(keys)]) == 0
    assert main(["keys", "retire", "1", "--key-file", str(keys)]) == 0
    assert main(["vault", "erase-tenant", "acme", "--key-file", str(keys)]) == 2  # no --yes
    capsys.readouterr()
    trail = env / "logs" / "audit-cli.jsonl"
    records = _records(trail)
    assert [(r["event"], r["phase"]) for r in records] == [
        ("key_init", "started"),
        ("key_init", "finished"),
        ("vault_init", "started"),
        ("vault_init", "finished"),
        ("vault_migrate", "started"),
        ("vault_migrate", "finished"),
        ("key_rotate", "started"),
        ("key_rotate", "finished"),
        ("key_retire", "started"),
        ("key_retire", "finished"),
        ("vault_erase_tenant", "started"),
        ("vault_erase_tenant", "failed"),
    ]
    assert records[9]["kek_version"] == 1
    assert records[11]["exit_code"] == 2
    assert records[11]["tenant"] == "acme"
    # One chain per run, and `verify` reads them with the key the server uses.
    assert len({r["chain"] for r in records}) == 6
    args = type("A", (), {"audit_key_file": None, "dev": False, "data_dir": None})()
    import os

    assert verify_paths(audit_key_from(args, os.environ), [trail.parent]).ok


def test_a_command_whose_record_cannot_be_written_does_not_run(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = env / "logs"
    logs.mkdir()
    (logs / "audit-cli.jsonl").mkdir()  # a directory where the file should be: unwritable
    keys = env / "keys.json"
    assert main(["keys", "init", "--key-file", str(keys)]) == 2
    assert "nothing was changed" in capsys.readouterr().err
    assert not keys.exists()
    # And without any audit key configured, neither.
    monkeypatch.delenv("REDACTOR_AUDIT_KEY_FILE")
    assert main(["keys", "init", "--key-file", str(keys)]) == 2
    assert not keys.exists()


def test_every_changing_command_is_audited() -> None:
    from redactor.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    wrapped = {
        (group, name)
        for group in ("keys", "vault", "agents")
        for action in sub.choices[group]._actions
        if hasattr(action, "choices") and isinstance(action.choices, dict)
        for name, leaf in action.choices.items()
        if leaf.get_default("handler").__qualname__.startswith("audited")
    }
    assert wrapped == set(AUDITED_COMMANDS)


def test_key_commands_record_the_operator_and_the_kek_versions_they_touch(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass
    import socket

    keys = env / "keys.json"
    assert main(["keys", "init", "--key-file", str(keys)]) == 0
    assert main(["vault", "init", "--key-file", str(keys)]) == 0
    monkeypatch.setenv("REDACTOR_OPERATOR", "oncall-bob")
    assert main(["keys", "rotate", "--key-file", str(keys)]) == 0
    # The flag wins over the environment; a digit run in a name never reaches the trail.
    named = ["--operator", "carol 4111 1111 1111 1111", "--key-file", str(keys)]
    assert main(["keys", "retire", "1", *named]) == 0
    capsys.readouterr()
    records = _records(env / "logs" / "audit-cli.jsonl")
    me, host = getpass.getuser(), socket.gethostname()
    assert {(r["os_user"], r["host"]) for r in records} == {(me, host)}
    by_event = {(r["event"], r["phase"]): r for r in records}
    assert by_event["key_init", "finished"]["operator"] == f"{me}@{host}"
    assert by_event["key_init", "started"]["keks_before"] is None  # no key file yet
    assert by_event["key_init", "finished"]["keks_after"] == {"versions": [1], "active": 1}
    rotate = by_event["key_rotate", "finished"]
    assert rotate["operator"] == "oncall-bob"
    assert (rotate["keks_before"], rotate["keks_after"]) == (
        {"versions": [1], "active": 1},
        {"versions": [1, 2], "active": 2},  # the new version, recorded
    )
    retire = by_event["key_retire", "finished"]
    assert retire["operator"] == "carol [DIGITS]"
    assert retire["kek_version"] == 1
    assert retire["keks_after"] == {"versions": [2], "active": 2}
    assert "4111" not in (env / "logs" / "audit-cli.jsonl").read_text()
