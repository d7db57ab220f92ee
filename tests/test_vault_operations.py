"""Operating the vault as a user would: the real `redactor` command and the real proxy over HTTP.

Each scenario runs on SQLite and on PostgreSQL (a random schema per test; it fails, never
skips, when the server is down). After each one, every token minted during the test still
resolves to its value and the same value still gets the same token.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from redactor.ingress.app import build_proxy_app
from redactor.ops.admin import build_admin_app
from redactor.resources import open_resources
from tests.conftest import AUDIT_KEY, Deployment
from tests.vault.conftest import PG_DSN
from vault.keyring import KeyMaterial, generate_key_material, read_key_file, write_key_file

CARDS = ("4111 1111 1111 1111", "5555 5555 5555 4444", "4000 0566 5566 5556")


@pytest.fixture
async def start_proxy(aiohttp_client):
    """Start the real proxy and admin apps in-process for a deployment's settings."""
    contexts: list[Any] = []

    async def start(settings) -> tuple[TestClient, TestClient]:
        ctx = open_resources(settings)
        res = await ctx.__aenter__()
        contexts.append(ctx)
        return await aiohttp_client(build_proxy_app(res.ingress)), await aiohttp_client(
            build_admin_app(res)
        )

    yield start
    for ctx in reversed(contexts):
        await ctx.__aexit__(None, None, None)


def _free_listen() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _key_texts(material: KeyMaterial) -> list[str]:
    keys = [*material.keks.values(), material.index_key]
    return [base64.b64encode(k).decode() for k in keys] + [k.hex() for k in keys]


async def test_wrong_key_file_is_refused_at_start_naming_versions_never_keys(
    deployment: Deployment, start_proxy
) -> None:
    code, out, err = await deployment.cli("vault", "init")
    assert code == 0, err
    proxy, admin = await start_proxy(deployment.settings())
    for card in CARDS[:2]:
        assert (await deployment.post_card(proxy, card))[0] == 200
    assert (await admin.get("/readyz")).status == 200

    right = read_key_file(deployment.key_file)
    wrong_file = deployment.root / "other-keys.json"
    wrong = generate_key_material(secrets.token_bytes)
    write_key_file(wrong_file, wrong)
    env = {**deployment.env, "REDACTOR_KEY_FILE": str(wrong_file)}
    code, _, err = await deployment.cli(
        "serve", "--upstream", deployment.upstream_url, "--listen", _free_listen(),
        "--admin-listen", _free_listen(), env=env,
    )  # fmt: skip
    assert code == 2
    assert "key ring does not match the vault" in err
    assert "kek versions 1 of the key ring are other keys" in err
    assert "index key" in err
    for text in _key_texts(wrong) + _key_texts(right):
        assert text not in err

    # The admin commands see the same mismatch and refuse to act on it.
    code, out, _ = await deployment.cli("keys", "list", env=env)
    assert code == 1
    assert "MISMATCH" in out
    assert (await deployment.cli("keys", "rotate", env=env))[0] == 1
    assert read_key_file(wrong_file).versions == [1]

    await deployment.assert_nothing_lost(proxy)


async def test_vault_moved_away_while_serving_stops_minting_and_is_refused_at_start(
    deployment: Deployment, start_proxy
) -> None:
    assert (await deployment.cli("vault", "init"))[0] == 0
    proxy, admin = await start_proxy(deployment.settings())
    assert (await deployment.post_card(proxy, CARDS[0]))[0] == 200

    db = deployment.root / "data" / "vault.db"
    await _move_vault_away(deployment, db)
    status, _ = await deployment.post_card(proxy, CARDS[1])
    assert status == 503
    ready = await admin.get("/readyz")
    assert ready.status == 503
    expected = "vault_gone" if deployment.backend == "sqlite" else "vault_schema_mismatch"
    assert (await ready.json())["vault"] == expected

    # At start, without --dev, a missing vault is an error, never a fresh empty one.
    code, _, err = await deployment.cli(
        "serve", "--upstream", deployment.upstream_url, "--listen", _free_listen(),
        "--admin-listen", _free_listen(),
    )  # fmt: skip
    assert code == 2
    assert "vault init" in err
    if deployment.backend == "sqlite":
        assert not db.exists()

    await _move_vault_back(deployment, db)
    restarted, restarted_admin = await start_proxy(deployment.settings())
    assert (await restarted_admin.get("/readyz")).status == 200
    await deployment.assert_nothing_lost(restarted)


async def test_replaced_sqlite_file_is_not_ready_and_refuses_to_mint(
    deployment: Deployment, start_proxy
) -> None:
    if deployment.backend != "sqlite":
        # The PostgreSQL counterpart (a schema that disappears) is the test above.
        assert deployment.schema
        return
    assert (await deployment.cli("vault", "init"))[0] == 0
    proxy, admin = await start_proxy(deployment.settings())
    assert (await deployment.post_card(proxy, CARDS[0]))[0] == 200
    db = deployment.root / "data" / "vault.db"
    kept = db.read_bytes()
    db.unlink()
    db.write_bytes(b"")  # another file at the same path: an empty one, say
    assert (await deployment.post_card(proxy, CARDS[1]))[0] == 503
    assert (await (await admin.get("/readyz")).json())["vault"] == "vault_gone"
    db.write_bytes(kept)
    restarted, _ = await start_proxy(deployment.settings())
    await deployment.assert_nothing_lost(restarted)


async def _move_vault_away(deployment: Deployment, db: Path) -> None:
    if deployment.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            path = db.with_name(db.name + suffix)
            if path.exists():
                path.rename(path.with_name(path.name + ".moved"))
        return
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(
            f'ALTER SCHEMA "{deployment.schema}" RENAME TO "{deployment.schema}_moved"'
        )
    finally:
        await conn.close()


async def _move_vault_back(deployment: Deployment, db: Path) -> None:
    if deployment.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            moved = db.with_name(db.name + suffix + ".moved")
            if moved.exists():
                moved.rename(db.with_name(db.name + suffix))
        return
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(
            f'ALTER SCHEMA "{deployment.schema}_moved" RENAME TO "{deployment.schema}"'
        )
    finally:
        await conn.close()


async def test_admin_commands_without_the_environment_create_nothing_and_say_so(
    deployment: Deployment, start_proxy, tmp_path: Path
) -> None:
    assert (await deployment.cli("vault", "init"))[0] == 0
    proxy, _ = await start_proxy(deployment.settings())
    assert (await deployment.post_card(proxy, CARDS[0]))[0] == 200

    bare = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    for argv in (["keys", "list"], ["vault", "purge", "--older-than", "90d"], ["keys", "rewrap"]):
        code, _, err = await deployment.cli(*argv, env=bare, cwd=empty)
        assert code != 0, argv
        # Each refusal names what is missing: the key file, the vault, or the audit key.
        assert "REDACTOR_KEY_FILE" in err or "vault init" in err or "AUDIT_KEY" in err, err
    assert list(empty.iterdir()) == []

    # The same configuration file as serve, and nothing else, points them at the vault.
    audit_key_file = tmp_path / "audit-key"
    audit_key_file.write_text(AUDIT_KEY + "\n", encoding="ascii")
    config = tmp_path / "redactor.yaml"
    config.write_text(
        json.dumps(
            {
                "data_dir": str(deployment.root / "data"),
                "vault": {"url": deployment.vault_url, "key_file": str(deployment.key_file)},
                "audit_key_file": str(audit_key_file),
                "routes": [
                    {"name": "hook", "path_prefix": "/", "upstream": deployment.upstream_url,
                     "tenant": "acme"}
                ],
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    code, out, err = await deployment.cli(
        "keys", "list", "--config", str(config), env=bare, cwd=empty
    )
    assert code == 0, err
    assert "kek version 1: active since" in out
    assert "wraps 1 data keys of 1 tenants" in out
    env_config = {**bare, "REDACTOR_CONFIG": str(config)}
    code, _, err = await deployment.cli(
        "vault", "erase-tenant", "nosuch", "--yes", env=env_config, cwd=empty
    )
    assert code == 1
    assert "nothing of tenant nosuch" in err
    code, _, err = await deployment.cli(
        "vault", "erase-token", "tok_v1_ssn_aaaaaaaaaaaaaaaaaaaa", "--tenant", "acme",
        env=env_config, cwd=empty,
    )  # fmt: skip
    assert code == 1
    assert "not_found" in err
    assert list(empty.iterdir()) == []

    await deployment.assert_nothing_lost(proxy)
