"""Running the apps: `redactor serve` and `redactor demo` both end up here."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from redactor.app import build_admin_app, build_proxy_app
from redactor.resources import Resources, open_resources
from redactor.settings import Listen, Settings

log = structlog.get_logger()


async def _start_site(app: web.Application, listen: Listen) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, listen.host, listen.port).start()
    return runner


async def run_server(
    settings: Settings,
    *,
    ready: Callable[[Resources], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or until `stop` is set); close everything on the way out."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if settings.dev:
        log.warning(
            "dev_mode",
            message="DEVELOPMENT MODE: a generated key in the data directory protects the vault. "
            "Never use this for real customer data.",
            data_dir=str(settings.vault.data_dir),
        )
    async with open_resources(settings) as res:
        runners = [
            await _start_site(build_proxy_app(res), settings.listen),
            await _start_site(build_admin_app(res), settings.admin_listen),
        ]
        try:
            log.info(
                "redactor_started",
                listen=str(settings.listen),
                admin_listen=str(settings.admin_listen),
                routes=[r.name for r in settings.routes],
            )
            if ready is not None:
                await ready(res)
            await stop.wait()
        finally:
            for runner in runners:
                await runner.cleanup()
            log.info("redactor_stopped")
