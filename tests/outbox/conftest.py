"""Queued routes end to end: the real proxy and its delivery loop, over SQLite and PostgreSQL,
in front of an upstream on 127.0.0.1 whose answers a test scripts."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from redactor.ingress.app import build_proxy_app
from redactor.ingress.config import DeliverySettings, RouteSettings
from redactor.ops.admin import build_admin_app
from redactor.resources import Resources, open_resources
from redactor.settings import Overrides, Settings, load_settings, with_routes
from tests.conftest import AUDIT_KEY
from tests.vault.conftest import PG_DSN
from vault.keyring import generate_key_material, write_key_file

# Short intervals: a test waits for a delivery, never for a poll.
FAST = {"poll_interval_s": 0.02, "depth_interval_s": 0.05}


@dataclass
class Delivery:
    method: str
    path: str
    key: str | None
    headers: dict[str, str]
    body: bytes


@dataclass
class Helpdesk:
    """The upstream: records every delivery; answers from `script` first, then `default`."""

    url: str = ""
    received: list[Delivery] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default: tuple[int, dict[str, str]] = (200, {})
    # Seconds each answer waits (to hold deliveries in flight).
    delay_s: float = 0.0
    in_flight: dict[str, int] = field(default_factory=dict)
    most_at_once: dict[str, int] = field(default_factory=dict)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(d.body) for d in self.received]

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        await eventually(lambda: len(self.received) >= count, timeout_s)


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait until `check()` holds (it reads files and other tasks' effects: polled)."""
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - audit files and other processes have no event
            await asyncio.sleep(0.02)


# Paths a redactor process serves on its admin listener; no route here delivers to them.
_PROBES = frozenset({"/readyz", "/healthz", "/metrics"})


@pytest.fixture
async def helpdesk(aiohttp_server) -> Helpdesk:
    desk = Helpdesk()

    async def answer(request: web.Request) -> web.Response:
        if request.method == "GET" and request.path in _PROBES:
            # Another test's readiness poller, knocking on a port that its server freed and
            # this stand-in was given: not a delivery (seen in CI under `-n 2`).
            return web.json_response({"status": 404}, status=404)
        key = request.headers.get("Idempotency-Key")
        body = await request.read()
        if key is not None:
            desk.in_flight[key] = desk.in_flight.get(key, 0) + 1
            desk.most_at_once[key] = max(desk.most_at_once.get(key, 0), desk.in_flight[key])
        try:
            if desk.delay_s:
                await asyncio.sleep(desk.delay_s)
            desk.received.append(
                Delivery(request.method, request.raw_path, key, dict(request.headers), body)
            )
            status, headers = desk.script.pop(0) if desk.script else desk.default
            return web.json_response({"status": status}, status=status, headers=headers)
        finally:
            if key is not None:
                desk.in_flight[key] -= 1

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = await aiohttp_server(app)
    desk.url = str(server.make_url("/"))
    return desk


def queued_route(upstream: str, **outbox: Any) -> RouteSettings:
    """The `/hook` route, queued, with fast retries unless a test says otherwise."""
    options: dict[str, Any] = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, **outbox}
    return RouteSettings(
        name="hook",
        path_prefix="/hook",
        upstream=upstream,
        tenant="acme",
        delivery=DeliverySettings(mode="queued", **options),
    )


@dataclass
class Site:
    """A data directory and vault (one backend); servers started on it with `start`."""

    backend: str
    root: Path
    vault_url: str
    key_file: Path
    helpdesk: Helpdesk
    schema: str | None
    aiohttp_client: Callable[..., Any]
    opened: list[Any] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)

    def settings(self, *routes: RouteSettings, **overrides: Any) -> Settings:
        flags: dict[str, Any] = {
            "upstream": self.helpdesk.url,
            "tenant": "acme",
            "data_dir": str(self.root / "data"),
            "vault_url": self.vault_url,
            "key_file": str(self.key_file),
            "audit_log": str(self.root / "audit.jsonl"),
            "create_vault": True,
            **overrides,
        }
        settings = load_settings(Overrides(**flags), {"REDACTOR_AUDIT_KEY": AUDIT_KEY})
        return with_routes(settings, routes or (queued_route(self.helpdesk.url),))

    @property
    def env(self) -> dict[str, str]:
        """The environment an operator's `redactor outbox` command runs with."""
        import os

        base = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
        return {
            **base,
            "REDACTOR_DATA_DIR": str(self.root / "data"),
            "REDACTOR_VAULT_URL": self.vault_url,
            "REDACTOR_KEY_FILE": str(self.key_file),
            "REDACTOR_AUDIT_KEY": AUDIT_KEY,
            "REDACTOR_AUDIT_LOG": str(self.root / "audit.jsonl"),
        }

    async def start(
        self, settings: Settings | None = None, *, deliver: bool = True, **options: Any
    ) -> Server:
        """Open resources like `serve` does; deliver (start the loop) unless told not to."""
        settings = settings or self.settings()
        ctx = open_resources(settings)
        res: Resources = await ctx.__aenter__()
        self.opened.append(ctx)
        res.ingress.open_outbox(**{**FAST, **options})
        if deliver:
            await res.ingress.start_delivery()
        client = await self.aiohttp_client(build_proxy_app(res.ingress))
        admin = await self.aiohttp_client(build_admin_app(res))
        server = Server(client, admin, res)
        self.servers.append(server)
        return server

    async def close(self) -> None:
        # Delivery loops first: they use the session and the audit sink the contexts close.
        for server in self.servers:
            await server.stop()
        for ctx in reversed(self.opened):
            await ctx.__aexit__(None, None, None)
        self.opened.clear()
        self.servers.clear()

    def audit_records(self) -> list[dict[str, Any]]:
        records = []
        for path in sorted(self.root.glob("audit*.jsonl")):
            records += [json.loads(line) for line in path.read_text().splitlines() if line]
        return records


@dataclass
class Server:
    client: TestClient
    admin: TestClient
    res: Resources

    async def stop(self) -> None:
        await self.res.ingress.stop_delivery(grace_s=1.0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def site(
    request: pytest.FixtureRequest, tmp_path: Path, helpdesk: Helpdesk, aiohttp_client
) -> AsyncIterator[Site]:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, generate_key_material(secrets.token_bytes))
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'vault.db'}"
    else:
        schema = "outbox_" + secrets.token_hex(6)
        url = f"{PG_DSN}?schema={schema}"
    found = Site(request.param, tmp_path, url, key_file, helpdesk, schema, aiohttp_client)
    try:
        yield found
    finally:
        await found.close()
        if schema is not None:
            conn = await asyncpg.connect(PG_DSN)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()
