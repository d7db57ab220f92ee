"""Raw values never reach disk, logs, errors or temp files: write known values, search bytes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.vault.conftest import CARD, CARD_2, SSN, Backend
from vault.errors import VaultError
from vault.service import Vault

# Every spelling a raw value could take in bytes on disk.
_VALUES = ["4111111111111111", "5555555555554444", "219099999"]


def _needles() -> list[bytes]:
    needles: list[bytes] = []
    for value in [*_VALUES, CARD, CARD_2, SSN]:
        needles += [value.encode(), value.encode("utf-16-le"), value.encode("utf-16-be")]
    return needles


def _assert_no_value_in(data: bytes, where: str) -> None:
    for needle in _needles():
        assert needle not in data, f"raw value found in {where}"


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every temp-file mechanism (Python's and SQLite's) at a directory we can scan."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("SQLITE_TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


async def _exercise(vault: Vault) -> None:
    tokens = await vault.tokenize_many("acme", [("card", CARD), ("card", CARD_2), ("ssn", SSN)])
    await vault.tokenize_many("acme", [("card", CARD)])
    await vault.resolve_many("acme", [t.text for t in tokens])
    many = [("card", f"4000{n:012d}") for n in range(300)]
    await vault.tokenize_many("globex", many)
    await vault.erase_token("acme", tokens[1].text)


async def test_no_raw_value_in_any_file_of_the_data_dir_or_temp_dir(
    vault: Vault, backend: Backend, tmp_path: Path, private_tmp: Path
) -> None:
    await _exercise(vault)
    # Scanned while the store is open, so the SQLite WAL and shared-memory files still exist.
    files = await asyncio.to_thread(_read_all_files, tmp_path)
    for name, data in files.items():
        _assert_no_value_in(data, name)
    if backend.name == "sqlite":
        assert {"vault.db", "vault.db-wal"} <= set(files)
    assert "keys.json" in files


def _read_all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_no_raw_value_in_a_pg_dump_of_the_schema(
    make_vault: Callable[..., Any], backend: Backend
) -> None:
    vault = await make_vault()
    await _exercise(vault)
    dump = await asyncio.to_thread(
        subprocess.run,
        ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "-n", backend.schema or "", "test"],
        capture_output=True,
        check=True,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )
    assert b"CREATE TABLE" in dump.stdout
    assert b"COPY" in dump.stdout
    _assert_no_value_in(dump.stdout, "pg_dump")


async def test_no_raw_value_in_any_log_event(vault: Vault, backend: Backend) -> None:
    with capture_logs() as events:
        await _exercise(vault)
        await vault.erase_tenant("acme")
        await vault.purge(1)
        await backend.sql("UPDATE tokens SET sealed = $1 WHERE tenant = $2", b"x" * 40, "globex")
        tokens = await vault.tokenize_many("globex", [("card", "4000000000000000")])
        results = await vault.resolve_many("globex", [t.text for t in tokens])
        with pytest.raises(VaultError) as info:
            await vault.resolve_many("globex", ["4000000000000000"])
    assert events, "expected the vault to log something"
    assert [r.status for r in results.values()] == ["corrupt"]
    _assert_no_value_in(repr(events).encode(), "log events")
    _assert_no_value_in(repr(results).encode(), "partial results")
    _assert_no_value_in(str(info.value).encode(), "exception text")
    _assert_no_value_in(repr(info.value).encode(), "exception repr")


async def test_results_and_records_do_not_show_values_in_repr(vault: Vault) -> None:
    tokens = await vault.tokenize_many("acme", [("card", CARD), ("ssn", SSN)])
    results = await vault.resolve_many("acme", [t.text for t in tokens])
    _assert_no_value_in(repr(results).encode(), "resolution repr")
    _assert_no_value_in(repr(tokens).encode(), "token repr")
