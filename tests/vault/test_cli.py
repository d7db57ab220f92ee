"""`keys` and `vault` commands, run in-process through a parser built with `register`."""

from __future__ import annotations

import argparse
import asyncio
import io
import re
from pathlib import Path

import pytest

from tests.vault.conftest import CARD, SSN, Backend
from vault.cli import register
from vault.keyring import read_key_file
from vault.service import Erased, NotFound, Resolved
from vault.startup import open_vault
from vault.stores.base import SCHEMA_VERSION


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redactor")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(backend: Backend, *argv: str) -> tuple[int, str, str]:
    """Run one command against the backend's store and key file; return (code, out, err)."""
    args = _parser().parse_args(list(argv))
    environ = {
        "REDACTOR_DATA_DIR": str(backend.config.data_dir),
        "REDACTOR_VAULT_URL": backend.config.vault_url.reveal()
        + (f"?schema={backend.schema}" if backend.schema else ""),
        "REDACTOR_KEY_FILE": str(backend.key_file),
    }
    out, err = io.StringIO(), io.StringIO()
    code = args.handler(args, environ=environ, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


async def _cli(backend: Backend, *argv: str) -> tuple[int, str, str]:
    # Handlers run their own event loop (asyncio.run), as under the real `redactor` command.
    return await asyncio.to_thread(_run, backend, *argv)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["keys", "--help"], "keys rotate"),
        (["keys", "rotate", "--help"], "new random KEK version"),
        (["keys", "rewrap", "--help"], "Resumable"),
        (["keys", "retire", "--help"], "VERSION"),
        (["vault", "purge", "--help"], "--older-than"),
        (["vault", "erase-tenant", "--help"], "--yes"),
        (["vault", "migrate", "--help"], "REDACTOR_VAULT_URL"),
    ],
)
def test_help_explains_each_command(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(argv)
    assert info.value.code == 0
    assert expected in capsys.readouterr().out


async def test_init_creates_the_vault_and_migrate_is_idempotent(backend: Backend) -> None:
    code, _, err = await _cli(backend, "vault", "migrate")
    assert (code, "vault init" in err) == (1, True)
    code, out, _ = await _cli(backend, "vault", "init")
    assert (code, "created: kek versions 1 (active)" in out) == (0, True)
    code, out, _ = await _cli(backend, "vault", "init")
    assert (code, "exists; its key records match the key ring" in out) == (0, True)
    assert (await _cli(backend, "vault", "migrate"))[0] == 0
    code, out, _ = await _cli(backend, "vault", "migrate")
    assert code == 0
    assert f"version {SCHEMA_VERSION}" in out


async def test_rotate_rewrap_retire_walkthrough(backend: Backend) -> None:
    async with await open_vault(backend.config) as vault:
        await vault.tokenize_many("acme", [("ssn", SSN)])

    code, out, _ = await _cli(backend, "keys", "rotate")
    assert (code, read_key_file(backend.key_file).active_version) == (0, 2)
    assert "keys rewrap" in out

    code, _, err = await _cli(backend, "keys", "retire", "1")
    assert code == 1
    assert "still wraps 1 data keys of 1 tenants" in err
    assert read_key_file(backend.key_file).versions == [1, 2]

    code, out, _ = await _cli(backend, "keys", "list")
    assert code == 0
    assert "kek version 1: decrypt-only since" in out
    assert "in key ring; wraps 1 data keys of 1 tenants" in out
    assert "kek version 2: active since" in out
    # Times a person reads: UTC to the second, never epoch seconds.
    assert re.search(r"kek version 2: active since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC;", out)
    assert not re.search(r"since \d{9,}", out)
    assert "(ring's active)" in out

    code, out, _ = await _cli(backend, "keys", "rewrap")
    assert (code, "re-wrapped 1 data keys" in out) == (0, True)

    code, out, _ = await _cli(backend, "keys", "retire", "1")
    assert code == 0
    assert read_key_file(backend.key_file).versions == [2]
    assert (await _cli(backend, "keys", "retire", "2"))[0] == 1
    code, out, _ = await _cli(backend, "keys", "list")
    assert code == 0
    assert "kek version 1: retired since" in out
    assert "not in key ring (no longer needed); wraps 0 data keys" in out
    assert "MISSING" not in out


async def test_erase_and_purge_commands(backend: Backend) -> None:
    async with await open_vault(backend.config) as vault:
        card, ssn = await vault.tokenize_many("acme", [("card", CARD), ("ssn", SSN)])
        (other,) = await vault.tokenize_many("globex", [("ssn", SSN)])

    code, out, _ = await _cli(backend, "vault", "erase-token", ssn.text, "--tenant", "acme")
    assert (code, out.strip()) == (0, f"{ssn.text}: erased")
    assert (await _cli(backend, "vault", "erase-token", ssn.text, "--tenant", "nobody"))[0] == 1
    assert (await _cli(backend, "vault", "erase-token", "4111111111111111", "--tenant", "a"))[
        2
    ] == "error: token_invalid: not a valid token\n"

    code, _, err = await _cli(backend, "vault", "erase-tenant", "acme")
    assert code == 2
    assert "--yes" in err
    code, out, err = await _cli(backend, "vault", "erase-tenant", "nosuch", "--yes")
    assert (code, out) == (1, "")
    assert "error: not_found: the vault holds nothing of tenant nosuch" in err
    code, out, _ = await _cli(backend, "vault", "erase-tenant", "acme", "--yes")
    assert code == 0
    assert "2 tokens" in out

    code, out, _ = await _cli(backend, "vault", "purge", "--older-than", "90d")
    assert (code, out.startswith("purged 0 tokens")) == (0, True)
    assert (await _cli(backend, "vault", "purge", "--older-than", "soon"))[0] == 2

    async with await open_vault(backend.config) as vault:
        results = await vault.resolve_many("acme", [card.text])
        assert results[card.text] == Erased(card.text)
        assert isinstance((await vault.resolve_many("globex", [other.text]))[other.text], Resolved)
        assert await vault.resolve_many("nobody", [other.text]) == {
            other.text: NotFound(other.text)
        }


async def test_commands_without_a_key_fail_with_a_clear_message(tmp_path: Path) -> None:
    args = _parser().parse_args(["keys", "rotate", "--data-dir", str(tmp_path)])
    err = io.StringIO()
    code = await asyncio.to_thread(args.handler, args, environ={}, out=io.StringIO(), err=err)
    assert code == 2
    assert "REDACTOR_KEY_FILE" in err.getvalue()


async def test_rotate_in_dev_mode_writes_the_dev_key_file(tmp_path: Path) -> None:
    for argv in (["vault", "init"], ["keys", "rotate"]):
        args = _parser().parse_args([*argv, "--data-dir", str(tmp_path), "--dev"])
        code = await asyncio.to_thread(args.handler, args, environ={}, out=io.StringIO())
        assert code == 0
    assert read_key_file(tmp_path / "dev-keys.json").versions == [1, 2]


def test_key_times_read_as_utc_to_the_second() -> None:
    from vault.keystate import readable_time

    assert readable_time(1796636448) == "2026-12-07 09:40:48 UTC"
    assert readable_time(1796636448.987) == "2026-12-07 09:40:48 UTC"
