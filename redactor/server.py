"""Running the apps: `redactor serve` and `redactor demo` both end up here."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from redactor.agent.app import build_agent_app
from redactor.agent.policy import PolicyStore
from redactor.ingress.app import build_proxy_app
from redactor.ops.admin import build_admin_app
from redactor.resources import Resources, open_resources
from redactor.settings import Listen, Settings

log = structlog.get_logger()


def cap_connections(server: web.Server, max_connections: int) -> None:
    """Close a new connection at once when `max_connections` are already open.

    aiohttp has no cap of its own: a client holding thousands of idle or slow connections
    would otherwise hold as many handlers and buffers.
    """
    register = server.connection_made

    def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
        if len(server.connections) >= max_connections:
            log.warning("connection_refused_at_cap", max_connections=max_connections)
            transport.abort()
            return
        register(handler, transport)

    server.connection_made = connection_made  # type: ignore[method-assign]


async def start_site(
    app: web.Application, listen: Listen, settings: Settings, *, reuse_port: bool
) -> web.AppRunner:
    """Serve `app` on `listen` with the slow-client timeout and the connection cap."""
    # keepalive_timeout also bounds the wait for the first request's header block: aiohttp
    # closes a connection whose request has not fully arrived when it fires.
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=settings.header_timeout_s)
    await runner.setup()
    if runner.server is not None:
        cap_connections(runner.server, settings.max_connections)
    await web.TCPSite(runner, listen.host, listen.port, reuse_port=reuse_port or None).start()
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
    reuse_port: bool = False,
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
            await start_site(
                build_proxy_app(res), settings.listen, settings, reuse_port=reuse_port
            ),
            await start_site(
                build_admin_app(res), settings.admin_listen, settings, reuse_port=reuse_port
            ),
        ]
        reloader: PolicyReloader | None = None
        try:
            if res.agent is not None and settings.agent is not None:
                runners.append(
                    await start_site(
                        build_agent_app(res), settings.agent.listen, settings, reuse_port=reuse_port
                    )
                )
                reloader = PolicyReloader(res.agent.policies)
                loop.add_signal_handler(signal.SIGHUP, reloader.request)
            log.info(
                "redactor_started",
                listen=str(settings.listen),
                admin_listen=str(settings.admin_listen),
                agent_listen=str(settings.agent.listen) if settings.agent else None,
                routes=[r.name for r in settings.routes],
            )
            # The scan worker's start (an interpreter and a detector) is paid now, not by
            # the first large body.
            await res.warm_scan_pool()
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


def _worker(settings: Settings) -> None:
    # A fresh interpreter (spawn): configure logging again, then serve on the shared ports.
    from redactor.ops.logconfig import configure_logging

    configure_logging(level=settings.log_level, console=settings.log_console)
    asyncio.run(run_server(settings, reuse_port=True))


async def _prepare_vault(settings: Settings) -> None:
    # Migrate and (in development mode) generate the key once, before the workers start, so
    # they never race to create two different keys.
    from vault import open_vault

    vault = await open_vault(settings.vault)
    await vault.close()


def serve(settings: Settings) -> int:
    """Run `settings.workers` server processes; returns the exit code.

    With one worker this process serves. With more, it prepares the vault, starts the workers
    (each binds the listeners with SO_REUSEPORT, so the kernel spreads connections), forwards
    SIGINT/SIGTERM to them and stops them all if one dies.
    """
    if settings.workers == 1:
        asyncio.run(run_server(settings))
        return 0
    asyncio.run(_prepare_vault(settings))
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(settings,), daemon=False) for _ in range(settings.workers)
    ]
    stopping = False

    def stop_all(_signum: int = 0, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                proc.terminate()

    previous = {sig: signal.signal(sig, stop_all) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for proc in procs:
            proc.start()
        log.info("workers_started", workers=len(procs))
        exit_code = 0
        while any(p.is_alive() for p in procs):
            for proc in procs:
                proc.join(timeout=0.5)
                if proc.exitcode not in (None, 0) and not stopping:
                    # One worker died on its own: stop the rest, so the orchestrator restarts
                    # the container instead of serving at reduced capacity unnoticed.
                    log.error("worker_died", exit_code=proc.exitcode)
                    exit_code = 1
                    stop_all()
        return exit_code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
