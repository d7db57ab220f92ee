"""Fixtures of the load and fault suites: a stand-in upstream and sites to serve from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.load.faultproxy import FaultProxy
from tests.load.harness import PG_PORT, Site
from tests.load.standin import StandInUpstream

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
async def upstream() -> AsyncIterator[StandInUpstream]:
    stand_in = StandInUpstream()
    await stand_in.start()
    try:
        yield stand_in
    finally:
        await stand_in.stop()


@pytest.fixture
async def make_site(
    tmp_path: Path, upstream: StandInUpstream
) -> AsyncIterator[Callable[..., Awaitable[Site]]]:
    """`await make_site(backend, route={...}, pg_through_proxy=True)`: a prepared site."""
    sites: list[Site] = []
    proxies: list[FaultProxy] = []

    async def make(
        backend: str,
        *,
        route: dict[str, Any] | None = None,
        top: dict[str, Any] | None = None,
        pg_through_proxy: bool = False,
    ) -> Site:
        proxy = None
        if pg_through_proxy:
            proxy = FaultProxy(PG_PORT)
            await proxy.__aenter__()
            proxies.append(proxy)
        site = Site(
            tmp_path / f"site{len(sites)}", backend, upstream, route or {}, top or {}, proxy
        )
        sites.append(site)
        await site.prepare()
        return site

    try:
        yield make
    finally:
        for site in sites:
            await site.close()
        for proxy in proxies:
            await proxy.close()
