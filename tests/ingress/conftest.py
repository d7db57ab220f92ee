"""A real proxy app in front of a recording upstream on 127.0.0.1, with a SQLite vault."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from redactor.ingress.app import build_proxy_app
from redactor.ops.admin import build_admin_app
from redactor.resources import Resources, open_resources
from redactor.settings import Overrides, RouteSettings, Settings, load_settings, with_routes


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    server: TestServer
    received: list[Recorded] = field(default_factory=list)
    # What the upstream answers: (status, headers, body); tests change it.
    reply: tuple[int, dict[str, str], bytes] = (
        200,
        {"Content-Type": "application/json"},
        b'{"ok":true}',
    )

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


@pytest.fixture
async def upstream(aiohttp_server) -> Upstream:
    holder: dict[str, Upstream] = {}

    async def record(request: web.Request) -> web.Response:
        up = holder["up"]
        up.received.append(
            Recorded(request.method, request.raw_path, dict(request.headers), await request.read())
        )
        status, headers, body = up.reply
        return web.Response(status=status, headers=headers, body=body)

    # The upstream records bodies exactly as they arrive (no transparent gunzip).
    app = web.Application(handler_args={"auto_decompress": False})
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app)
    holder["up"] = Upstream(server)
    return holder["up"]


@pytest.fixture
def make_settings(tmp_path: Path, upstream: Upstream) -> Callable[..., Settings]:
    def make(*routes: RouteSettings, **overrides: object) -> Settings:
        settings = load_settings(
            Overrides(
                upstream=upstream.url,
                data_dir=str(tmp_path / "data"),
                dev=True,
                tenant="acme",
                audit_log=str(tmp_path / "audit.jsonl"),
                **overrides,  # type: ignore[arg-type]
            ),
            {},
        )
        return with_routes(settings, (*routes, *settings.routes)) if routes else settings

    return make


@dataclass
class Proxy:
    client: TestClient
    admin: TestClient
    resources: Resources
    upstream: Upstream
    audit_path: Path


@pytest.fixture
async def start_proxy(aiohttp_client, upstream: Upstream, tmp_path: Path):
    stack: list = []

    async def start(settings: Settings) -> Proxy:
        ctx = open_resources(settings)
        res = await ctx.__aenter__()
        stack.append(ctx)
        client = await aiohttp_client(build_proxy_app(res.ingress))
        admin = await aiohttp_client(build_admin_app(res))
        return Proxy(client, admin, res, upstream, tmp_path / "audit.jsonl")

    yield start
    for ctx in reversed(stack):
        await ctx.__aexit__(None, None, None)


@pytest.fixture
async def proxy(start_proxy, make_settings) -> Proxy:
    return await start_proxy(make_settings())
