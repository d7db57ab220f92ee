"""Fixtures shared across the tree."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from redactor.detection import Detector, default_detector
from redactor.settings import Overrides, load_settings
from tests.vault.conftest import PG_DSN
from vault import find_tokens
from vault.keyring import generate_key_material, write_key_file
from vault.service import Resolved
from vault.startup import open_vault


@pytest.fixture(scope="session")
def detector() -> Detector:
    """The default detector, built once per test session (building it compiles the patterns)."""
    return default_detector()


# The audit trail's key (32 bytes, base64): serve needs one outside development mode.
AUDIT_KEY = base64.b64encode(bytes(range(32))).decode()

@dataclass
class Deployment:
    """A data directory, a key file, a vault URL, the upstream, and what was minted."""

    backend: str
    root: Path
    key_file: Path
    vault_url: str
    schema: str | None
    upstream_url: str
    received: list[bytes]
    minted: dict[str, str] = field(default_factory=dict)  # token -> card digits

    @property
    def env(self) -> dict[str, str]:
        """A clean environment configured the way an operator would, nothing inherited."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
        return {
            **base,
            "REDACTOR_DATA_DIR": str(self.root / "data"),
            "REDACTOR_VAULT_URL": self.vault_url,
            "REDACTOR_KEY_FILE": str(self.key_file),
            "REDACTOR_AUDIT_KEY": AUDIT_KEY,
        }

    async def cli(self, *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None):
        """Run `python -m redactor ARGV`; (exit code, stdout, stderr)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "redactor", *argv,
            env=self.env if env is None else env, cwd=cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        return proc.returncode, out.decode(), err.decode()

    def settings(self, **overrides: Any):
        flags = Overrides(
            upstream=self.upstream_url,
            tenant="acme",
            data_dir=str(self.root / "data"),
            vault_url=self.vault_url,
            key_file=str(self.key_file),
            audit_log=str(self.root / "audit.jsonl"),
            **overrides,
        )
        return load_settings(
            flags, {"REDACTOR_KEY_CHECK_INTERVAL_S": "0.2", "REDACTOR_AUDIT_KEY": AUDIT_KEY}
        )

    async def post_card(self, client: TestClient, card: str) -> tuple[int, str | None]:
        resp = await client.post("/hook", json={"comment": f"card {card}"})
        if resp.status != 200:
            return resp.status, None
        (token,) = find_tokens(self.received[-1].decode())
        digits = card.replace(" ", "")
        assert self.minted.setdefault(token, digits) == digits
        return resp.status, token

    async def assert_nothing_lost(self, client: TestClient) -> None:
        """Every minted token resolves to its value; the same card gets the same token."""
        config = self.settings().vault
        async with await open_vault(config, create=False) as vault:
            results = await vault.resolve_many("acme", list(self.minted))
        assert {t: r.value for t, r in results.items() if isinstance(r, Resolved)} == self.minted
        by_card = {digits: token for token, digits in self.minted.items()}
        for digits, token in by_card.items():
            status, again = await self.post_card(
                client, " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
            )
            assert (status, again) == (200, token)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, aiohttp_server
) -> AsyncIterator[Deployment]:
    received: list[bytes] = []

    async def record(req: web.Request) -> web.Response:
        # Echoes what it got: concurrent senders read their own tokens from the answer.
        body = await req.read()
        received.append(body)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    upstream = await aiohttp_server(app)
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, generate_key_material(secrets.token_bytes))
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'vault.db'}"
        yield Deployment(
            "sqlite", tmp_path, key_file, url, None, str(upstream.make_url("/")), received
        )
        return
    schema = "vault_ops_" + secrets.token_hex(6)
    try:
        yield Deployment(
            "postgres",
            tmp_path,
            key_file,
            f"{PG_DSN}?schema={schema}",
            schema,
            str(upstream.make_url("/")),
            received,
        )
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            for name in (schema, schema + "_moved"):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()
