"""Running the apps: `redactor serve` and `redactor demo` both end up here."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from redactor.agent_app import build_agent_app
from redactor.app import build_admin_app, build_proxy_app
from redactor.policy import PolicyStore
from redactor.resources import Resources, open_resources
from redactor.settings import Listen, Settings

log = structlog.get_logger()


async def _start_site(app: web.Application, listen: Listen) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, listen.host, listen.port).start()
    return runner


class PolicyReloader:
    """SIGHUP -> re-read the reveal policy off the event loop; the last good one stays on error.

    Holds its tasks so none is fire-and-forget: `close` cancels and awaits what is running.
    """

    def __init__(self, store: PolicyStore) -> None:
        self._store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def request(self) -> None:
        """Signal handler: start a reload (a reload already running is not doubled)."""
        if self._tasks:
            log.info("policy_reload_already_running")
            return
        task = asyncio.get_running_loop().create_task(self._reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload(self) -> None:
        # File I/O and schema validation: a thread, not the loop. `reload` logs a failure
        # (file, line, reason) and keeps the current policy.
        await asyncio.to_thread(self._store.reload)

    async def wait(self) -> None:
        """Wait for a running reload to finish."""
        await asyncio.gather(*self._tasks)

    async def close(self) -> None:
        """Cancel a running reload and wait for it to end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


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
        reloader: PolicyReloader | None = None
        try:
            if res.agent is not None and settings.agent is not None:
                runners.append(await _start_site(build_agent_app(res), settings.agent.listen))
                reloader = PolicyReloader(res.agent.policies)
                loop.add_signal_handler(signal.SIGHUP, reloader.request)
            log.info(
                "redactor_started",
                listen=str(settings.listen),
                admin_listen=str(settings.admin_listen),
                agent_listen=str(settings.agent.listen) if settings.agent else None,
                routes=[r.name for r in settings.routes],
            )
            if ready is not None:
                await ready(res)
            await stop.wait()
        finally:
            if reloader is not None:
                loop.remove_signal_handler(signal.SIGHUP)
                await reloader.close()
            for runner in runners:
                await runner.cleanup()
            log.info("redactor_stopped")
