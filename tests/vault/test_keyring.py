"""Key material parsing, rotation and data-key wrapping bound to its associated data."""

from __future__ import annotations

import base64
import json
import secrets
import stat
from pathlib import Path

import pytest

from vault.errors import KeyVersionMissingError, VaultConfigError, VaultIntegrityError
from vault.keyring import (
    LocalKekProvider,
    LookupKeys,
    add_kek_version,
    dek_associated_data,
    generate_key_material,
    new_nonce,
    parse_key_material,
    read_key_file,
    remove_kek_version,
    render_key_material,
    write_key_file,
)

KEY = base64.b64encode(b"k" * 32).decode()


def _doc(**changes: object) -> str:
    doc: dict[str, object] = {
        "format": "redactor-keys/1",
        "active_version": 1,
        "keks": {"1": KEY},
        "index_key": KEY,
    }
    doc.update(changes)
    return json.dumps(doc)


def test_render_and_parse_round_trip() -> None:
    material = add_kek_version(generate_key_material(secrets.token_bytes), secrets.token_bytes)
    assert parse_key_material(render_key_material(material)) == material
    assert material.active_version == 2
    assert material.versions == [1, 2]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        _doc(format="other"),
        _doc(keks={}),
        _doc(keks={"one": KEY}),
        _doc(keks={"0": KEY}, active_version=0),
        _doc(keks={"1": base64.b64encode(b"short").decode()}),
        _doc(keks={"1": "***not base64***"}),
        _doc(active_version=2),
        _doc(active_version=True),
        _doc(index_key=None),
    ],
)
def test_invalid_key_material_is_refused_without_echoing_keys(text: str) -> None:
    with pytest.raises(VaultConfigError) as info:
        parse_key_material(text)
    assert KEY not in str(info.value)


def test_remove_refuses_the_active_or_unknown_version() -> None:
    material = add_kek_version(generate_key_material(secrets.token_bytes), secrets.token_bytes)
    assert remove_kek_version(material, 1).versions == [2]
    with pytest.raises(VaultConfigError):
        remove_kek_version(material, 2)
    with pytest.raises(VaultConfigError):
        remove_kek_version(material, 7)


def test_key_file_is_written_owner_only_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "keys.json"
    material = generate_key_material(secrets.token_bytes)
    write_key_file(path, material)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == material
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"]


def test_missing_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(VaultConfigError):
        read_key_file(tmp_path / "absent.json")


def test_key_material_repr_shows_no_key() -> None:
    material = generate_key_material(lambda n: b"\x41" * n)
    assert "QUFB" not in repr(material)
    assert "AAAA" not in repr(material)


async def test_wrapped_data_key_only_unwraps_with_the_same_tenant_and_version() -> None:
    provider = LocalKekProvider(generate_key_material(secrets.token_bytes))
    dek = secrets.token_bytes(32)
    wrapped = await provider.wrap(1, dek, dek_associated_data("acme", "d1", 1), new_nonce())
    assert await provider.unwrap(1, wrapped, dek_associated_data("acme", "d1", 1)) == dek
    with pytest.raises(VaultIntegrityError):
        await provider.unwrap(1, wrapped, dek_associated_data("globex", "d1", 1))
    with pytest.raises(KeyVersionMissingError):
        await provider.unwrap(2, wrapped, dek_associated_data("acme", "d1", 2))


def test_lookup_subkeys_differ_per_tenant_and_are_stable() -> None:
    keys = LookupKeys(secrets.token_bytes(32))
    assert keys.for_tenant("acme") == keys.for_tenant("acme")
    assert keys.for_tenant("acme") != keys.for_tenant("globex")
