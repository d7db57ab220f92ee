"""Running the apps: `redactor serve` and `redactor demo` both end up here."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from aiohttp import web

from redactor.agent.app import build_agent_app
from redactor.agent.policy import PolicyStore
from redactor.ingress.app import build_proxy_app
from redactor.ops.admin import build_admin_app
from redactor.resources import Resources, open_resources
from redactor.settings import Listen, Settings

log = structlog.get_logger()


async def _start_site(app: web.Application, listen: Listen, *, reuse_port: bool) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
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
            await _start_site(build_proxy_app(res), settings.listen, reuse_port=reuse_port),
            await _start_site(build_admin_app(res), settings.admin_listen, reuse_port=reuse_port),
        ]
        reloader: PolicyReloader | None = None
        try:
            if res.agent is not None and settings.agent is not None:
                runners.append(
                    await _start_site(
                        build_agent_app(res), settings.agent.listen, reuse_port=reuse_port
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


def run_on_loop(settings: Settings, main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to completion on the event loop `settings.event_loop` names."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if settings.event_loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def _worker(settings: Settings) -> None:
    # A forked copy of the supervisor: it inherited the supervisor's signal handlers, which
    # would act on the supervisor's list of processes. Back to the defaults until the event
    # loop installs its own (run_server).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    run_on_loop(settings, run_server(settings, reuse_port=True))


async def _prepare_vault(settings: Settings) -> None:
    # Migrate and (in development mode) generate the key once, before the workers start, so
    # they never race to create two different keys.
    from vault import open_vault

    vault = await open_vault(settings.vault)
    await vault.close()


def serve(settings: Settings) -> int:
    """Run `settings.workers` server processes; returns the exit code.

    With one worker this process serves. With more, it prepares the vault, forks the workers
    (each binds the listeners with SO_REUSEPORT, so the kernel spreads connections), forwards
    SIGINT/SIGTERM to them and stops them all if one dies.
    """
    if settings.workers == 1:
        run_on_loop(settings, run_server(settings))
        return 0
    asyncio.run(_prepare_vault(settings))
    # Fork after import, not spawn: the workers share the supervisor's loaded code (presidio,
    # cryptography, aiohttp: most of a process's memory) copy-on-write instead of each loading
    # its own. The supervisor builds no pipeline: each worker opens its own resources.
    # gc.freeze moves what is loaded now out of the collector's reach, so a collection in a
    # worker does not touch (and so copy) those shared pages.
    gc.collect()
    gc.freeze()
    ctx = multiprocessing.get_context("fork")
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
