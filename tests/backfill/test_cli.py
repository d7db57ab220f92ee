"""`redactor redact` as an operator runs it: configuration from REDACTOR_* (as `serve`), the
vault the proxy uses, the CLI audit trail beside the server's, and nothing but counts and
tokens on the terminal."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from tests.backfill.conftest import CARD, DIGITS, SSN, Store
from vault import find_tokens

AUDIT_KEY_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes(range(32))


def _env(store: Store) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    return {
        **base,
        "REDACTOR_DATA_DIR": str(store.config.data_dir),
        "REDACTOR_VAULT_URL": store.config.vault_url.reveal(),
        "REDACTOR_KEY_FILE": str(store.config.key_file),
        "REDACTOR_AUDIT_KEY": AUDIT_KEY_B64,
        "REDACTOR_AUDIT_LOG": str(store.root / "audit.jsonl"),
    }


def _redactor(store: Store, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "redactor", *args],
        input=stdin,
        env=_env(store),
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_standard_input_to_standard_output_with_the_serve_configuration(store: Store) -> None:
    raw = f'{{"comment": "card {CARD}"}}\n{{"comment": "ssn {SSN}"}}\n'.encode()
    done = _redactor(store, "redact", "-", "--tenant", "acme", stdin=raw)
    assert done.returncode == 0, done.stderr.decode()
    tokens = find_tokens(done.stdout.decode())
    assert len(tokens) == 2
    assert b"2 items changed" in done.stderr
    for value in (*DIGITS, *DIGITS.values()):
        assert value.encode() not in done.stdout + done.stderr
    trail = store.root / "audit-cli.jsonl"  # beside REDACTOR_AUDIT_LOG, as key commands
    text = trail.read_text()
    assert '"event":"redact_files"' in text
    assert '"inputs":["-"]' in text
    for value in (*DIGITS, *DIGITS.values()):
        assert value not in text
    verified = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "redactor", "audit", "verify", str(trail)],
        env=_env(store),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_missing_vault_stops_the_run_before_any_file_is_written(
    store: Store, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(f'{{"c": "card {CARD}"}}\n'.encode())
    (store.config.data_dir / "vault.db").unlink()
    done = _redactor(store, "redact", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert done.returncode == 2
    assert b"cannot start" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()
    assert not (store.config.data_dir / "vault.db").exists()  # never creates an empty vault


def test_a_killed_in_place_run_leaves_the_input_as_it_was(store: Store, tmp_path: Path) -> None:
    import signal
    import time

    lines = [
        (f'{{"n": {i}, "c": "card {CARD}"}}\n' if i % 100 == 0 else f'{{"n": {i}, "c": "ok"}}\n')
        for i in range(150_000)
    ]
    raw = "".join(lines).encode()  # ~3.5 MB: seconds of work, the first 1 MiB batch well before
    source = tmp_path / "export.jsonl"
    source.write_bytes(raw)
    partial = tmp_path / "export.jsonl.redact-partial"
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "redactor", "redact", str(source), "--in-place"],
        env=_env(store),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Wait (no deadline but the test's) until the first batch is on disk, then kill -9:
        # no handler, no finally block runs.
        while proc.poll() is None and not (partial.exists() and partial.stat().st_size > 0):
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert source.read_bytes() == raw
    assert partial.exists()

    done = _redactor(store, "redact", str(source), "--in-place", "--resume")
    assert done.returncode == 0, done.stderr.decode()
    assert not partial.exists()
    out = source.read_bytes().decode().splitlines(keepends=True)
    assert len(out) == len(lines)
    for before, after in zip(lines, out, strict=True):
        assert (after == before) == (CARD not in before)
    for value in (CARD, DIGITS[CARD]):
        assert value not in "".join(out)


def test_a_credential_typed_as_an_unknown_flag_is_never_echoed(store: Store) -> None:
    # argparse repeats unknown arguments with their values: a token given as a flag the
    # command does not have would land on the terminal, a CI log or a cron mail.
    secret = "zd-secret-0c5e3a9f"
    for args in (
        ("backfill", "zendesk", "--subdomain", "acme", "--api-token", secret),
        ("backfill", "slack", "--channel", "C0123456789", f"--slack_token={secret}"),
        ("redact", "-", "--dry-run", "--password", secret),
    ):
        done = _redactor(store, *args)
        assert done.returncode == 2
        err = done.stderr.decode()
        assert "unrecognized arguments: --" in err
        assert "value(s) not shown" in err
        assert secret not in err + done.stdout.decode()
    assert not (store.root / "audit-cli.jsonl").exists()  # nothing ran


def test_a_dry_run_from_the_command_line_stores_no_token_and_changes_no_file(
    store: Store, tmp_path: Path
) -> None:
    import asyncio

    from vault.startup import open_vault

    source = tmp_path / "in.jsonl"
    raw = f'{{"c": "card {CARD}", "s": "ssn {SSN}"}}\n'.encode()
    source.write_bytes(raw)
    before = sorted(p.name for p in tmp_path.iterdir())
    done = _redactor(store, "redact", str(source), "--dry-run")
    assert done.returncode == 0, done.stderr.decode()
    err = done.stderr.decode()
    assert "CREDIT_CARD 1, US_SSN 1; 1 items would change" in err
    assert "dry run: no file changed, no value stored" in err
    assert source.read_bytes() == raw
    after = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("audit-cli."))
    assert after == before  # the command trail beside the server's is the only thing written

    async def tokens() -> list[object]:
        vault = await open_vault(store.config, create=False)
        try:
            return [
                await vault.find_token("default", entity, DIGITS[span])
                for entity, span in (("card", CARD), ("ssn", SSN))
            ]
        finally:
            await vault.close()

    assert asyncio.run(tokens()) == [None, None]


_SMALL_CHECKPOINTS = """
import dataclasses, sys
from redactor.backfill import run
full = run.redact_files
def often(request, **kw):  # checkpoints every 64 KB instead of 32 MB: a kill lands after some
    return full(dataclasses.replace(request, checkpoint_bytes=65536, batch_bytes=16384), **kw)
run.redact_files = often
from redactor.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_after_checkpoints_then_resume_equals_an_uninterrupted_run(
    store: Store, tmp_path: Path
) -> None:
    import json
    import signal
    import time

    lines = [
        (f'{{"n": {i}, "c": "card {CARD}"}}\n' if i % 50 == 0 else f'{{"n": {i}, "c": "ok"}}\n')
        for i in range(60_000)
    ]
    raw = "".join(lines).encode()
    source = tmp_path / "export.jsonl"
    source.write_bytes(raw)
    reference = tmp_path / "reference.jsonl"
    whole = _redactor(store, "redact", str(source), "-o", str(reference))
    assert whole.returncode == 0, whole.stderr.decode()

    script = tmp_path / "often.py"
    script.write_text(_SMALL_CHECKPOINTS)
    partial = tmp_path / "export.jsonl.redact-partial"
    checkpoint = tmp_path / "export.jsonl.redact-checkpoint"
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, str(script), "redact", str(source), "--in-place"],
        env=_env(store),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Kill -9 once a checkpoint is on disk and the output has gone past it: the bytes
        # after the checkpoint must be thrown away and redone, not kept twice.
        done_at = 0
        while proc.poll() is None:
            if checkpoint.exists():
                with contextlib.suppress(FileNotFoundError, ValueError):
                    done_at = json.loads(checkpoint.read_text())["output_offset"]
            if done_at and partial.stat().st_size > done_at + 1000:
                break
            time.sleep(0.002)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert source.read_bytes() == raw  # the input is whole
    assert checkpoint.exists()
    assert partial.exists()

    resumed = _redactor(store, "redact", str(source), "--in-place", "--resume")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert "export.jsonl: resuming at " in resumed.stderr.decode()  # not started over
    assert "60000 items scanned" in resumed.stderr.decode()
    assert "1200 items changed" in resumed.stderr.decode()
    assert source.read_bytes() == reference.read_bytes()
    assert not partial.exists()
    assert not checkpoint.exists()


def test_since_is_utc_unless_it_names_its_own_offset() -> None:
    from redactor.cli import since_date

    assert since_date("2024-01-31").timestamp() == 1706659200
    assert since_date("2024-01-31T02:00:00+02:00").timestamp() == 1706659200


def test_credentials_never_go_over_plain_http_to_another_host(store: Store) -> None:
    from redactor.backfill.baseurl import base_url_problem

    env = {
        "REDACTOR_ZENDESK_EMAIL": "agent@example.com",
        "REDACTOR_ZENDESK_API_TOKEN": "zd-token",
        "REDACTOR_SLACK_TOKEN": "xoxb-token",
    }
    for args in (
        ("backfill", "zendesk", "--subdomain", "acme", "--base-url", "http://zd-proxy.internal"),
        ("backfill", "slack", "--channel", "C0123456789", "--base-url", "http://10.0.0.7/api"),
    ):
        done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "redactor", *args],
            env={**_env(store), **env},
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2
        assert "plain http is for this machine only" in done.stderr.decode()
    assert not (store.root / "audit-cli.jsonl").exists()  # refused before anything ran
    assert base_url_problem("https://zd-proxy.internal") is None
    assert base_url_problem("http://127.0.0.1:8080/api") is None
    assert base_url_problem("http://[::1]:8080") is None
    assert base_url_problem("http://localhost:9") is None
    assert base_url_problem("ftp://x") is not None
