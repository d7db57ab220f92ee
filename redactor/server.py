"""Running the apps: `redactor serve` and `redactor demo` both end up here."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from redactor import __version__
from redactor.agent.app import build_agent_app
from redactor.agent.policy import PolicyStore
from redactor.audit import AuditSink, AuditWriteError, SystemEvent, load_audit_key, now_iso
from redactor.errors import ConfigError
from redactor.ingress.app import build_proxy_app
from redactor.ingress.scan_pool import ScanPool
from redactor.ops.admin import build_admin_app
from redactor.resources import Resources, open_resources
from redactor.runtime.metrics import start_multiprocess, stop_multiprocess, worker_exited
from redactor.settings import Listen, Settings
from vault.errors import VaultError

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
    try:
        await web.TCPSite(runner, listen.host, listen.port, reuse_port=reuse_port or None).start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(listen, exc) from None
    return runner


class ListenError(ConfigError):
    """A listener cannot bind (port busy, address not on this host, no permission): one line
    for the operator instead of a traceback."""

    def __init__(self, listen: Listen, exc: OSError) -> None:
        # errno's own words: asyncio's text repeats the address in its own spelling.
        reason = os.strerror(exc.errno).lower() if exc.errno else type(exc).__name__
        super().__init__(f"cannot listen on {listen}: {reason}")


class PolicyReloader:
    """SIGHUP -> re-read the reveal policy off the event loop; the last good one stays on error.

    Holds its tasks so none is fire-and-forget: `close` cancels and awaits what is running.
    """

    def __init__(self, store: PolicyStore, audit: AuditSink) -> None:
        self._store = store
        self._audit = audit
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
        error = await asyncio.to_thread(self._store.reload)
        policy = self._store.policy
        if error is None:
            event = SystemEvent(
                "policy_loaded",
                now_iso(),
                {"source": policy.source, "policy_version": policy.version, "reload": True},
            )
        else:
            event = SystemEvent(
                "policy_reload_failed",
                now_iso(),
                {
                    "source": error.source,
                    "line": error.line,
                    "reason": error.reason,
                    "policy_version": policy.version,  # the one still in force
                },
            )
        try:
            await self._audit.write(event)
        except AuditWriteError:
            log.error("policy_reload_not_audited")  # noqa: TRY400 - the sink logged the cause

    async def wait(self) -> None:
        """Wait for a running reload to finish."""
        await asyncio.gather(*self._tasks)

    async def close(self, grace_s: float = 5.0) -> None:
        """Let a running reload finish (its policy may already be in force, and its audit
        record must not be lost), for at most `grace_s`; then cancel it."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def config_digest(settings: Settings) -> str:
    """A digest of the settings in force (secrets are masked in the repr, so never hashed)."""
    return hashlib.sha256(repr(settings).encode()).hexdigest()[:16]


async def _audit_start(res: Resources) -> None:
    # Raises AuditWriteError: a server that cannot record its own start does not serve.
    settings = res.settings
    await res.audit.write(
        SystemEvent(
            "redactor_started",
            now_iso(),
            {
                "version": __version__,
                "config_digest": config_digest(settings),
                "pid": os.getpid(),
                "routes": [r.name for r in settings.routes],
            },
        )
    )
    if res.agent is not None:
        policy = res.agent.policies.policy
        await res.audit.write(
            SystemEvent(
                "policy_loaded",
                now_iso(),
                {"source": policy.source, "policy_version": policy.version, "reload": False},
            )
        )


async def _audit_stop(res: Resources) -> None:
    try:
        await res.audit.write(
            SystemEvent(
                "redactor_stopped",
                now_iso(),
                {
                    "version": __version__,
                    "config_digest": config_digest(res.settings),
                    "pid": os.getpid(),
                },
            )
        )
    except AuditWriteError:
        log.error("stop_not_audited")  # noqa: TRY400 - the sink logged the cause


def _on_sighup(res: Resources, reloader: PolicyReloader | None) -> Callable[[], None]:
    def handle() -> None:
        # SIGHUP: external log rotators moved the audit file; the policy file may have changed.
        res.audit.reopen()
        if reloader is not None:
            reloader.request()

    return handle


# The collector's thresholds once serving: a young generation of 10,000 objects instead of
# 700. A request allocates hundreds of container objects (tasks, futures, headers, dicts) that
# are freed by reference counting; at 700 the collector ran every few requests and walked the
# ones still in flight (issue 14: about 40 us of a clean message's CPU, measured with the
# collector off). Reference cycles still get collected, just in larger, rarer passes.
_GC_THRESHOLDS = (10_000, 20, 20)


def settle_heap() -> None:
    """Once everything is loaded: collect, freeze what is left (never walked again) and set
    the serving thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


async def run_server(
    settings: Settings,
    *,
    ready: Callable[[Resources], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    reuse_port: bool = False,
    scan_pool: ScanPool | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or until `stop` is set); close everything on the way out.

    `scan_pool`: a scan worker forked before the loop started (see `_serve_here`)."""
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
    async with open_resources(settings, scan_pool) as res:
        await _audit_start(res)
        runners: list[web.AppRunner] = []
        admin: web.AppRunner | None = None
        reloader: PolicyReloader | None = None
        try:
            # Bound inside the try: a busy port still ends with a stop record after the start.
            runners.append(
                await start_site(
                    build_proxy_app(res.ingress), settings.listen, settings, reuse_port=reuse_port
                )
            )
            admin = await start_site(
                build_admin_app(res), settings.admin_listen, settings, reuse_port=reuse_port
            )
            if res.agent is not None and settings.agent is not None:
                runners.append(
                    await start_site(
                        build_agent_app(res.agent),
                        settings.agent.listen,
                        settings,
                        reuse_port=reuse_port,
                    )
                )
                reloader = PolicyReloader(res.agent.policies, res.audit)
            loop.add_signal_handler(signal.SIGHUP, _on_sighup(res, reloader))
            log.info(
                "redactor_started",
                listen=str(settings.listen),
                admin_listen=str(settings.admin_listen),
                agent_listen=str(settings.agent.listen) if settings.agent else None,
                routes=[r.name for r in settings.routes],
                audit_chain=res.audit.chain_id,
            )
            # The scan worker's start (an interpreter and a detector) is paid now, not by
            # the first large body.
            await res.warm_scan_pool()
            # Queued routes: this worker delivers too (every worker and replica shares the
            # outbox; leases keep them from delivering one item twice at once).
            await res.ingress.start_delivery()
            if ready is not None:
                await ready(res)
            await stop.wait()
        finally:
            # Draining: /readyz says 503 from now on, so a load balancer stops sending, while
            # the serving listeners stop accepting and their requests in flight finish. The
            # admin listener goes last: it answers the 503 until the end.
            res.draining = True
            log.info("redactor_draining")
            loop.remove_signal_handler(signal.SIGHUP)
            if reloader is not None:
                await reloader.close()
            # Delivery stops with the listeners: attempts in flight finish (bounded), and
            # this worker's leases end so another worker or replica takes those items.
            await asyncio.gather(
                res.ingress.stop_delivery(), *(runner.cleanup() for runner in runners)
            )
            if admin is not None:
                await admin.cleanup()
            await _audit_stop(res)
            log.info("redactor_stopped")


def worker_audit_log(path: Path | None, worker: int) -> Path | None:
    """Each worker writes its own file and chain: `audit.jsonl` -> `audit-w2.jsonl`."""
    if path is None:
        return None
    return path.with_name(f"{path.stem}-w{worker}{path.suffix}")


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
    try:
        _serve_here(settings, reuse_port=True)
    except (ConfigError, VaultError, AuditWriteError) as exc:
        # The same one line `redactor serve` prints for a single process; the supervisor
        # sees exit code 2 and stops the others.
        print(f"redactor: cannot start: {exc}", file=sys.stderr)
        sys.exit(2)


def _serve_here(settings: Settings, *, reuse_port: bool) -> None:
    # The scan worker is forked first, while this process has no thread: it shares the code
    # this process (and the supervisor) loaded instead of loading its own.
    pool = ScanPool.forked_now(
        {route.detection for route in settings.routes},
        timeout_s=settings.scan_timeout_s,
        lane_bytes=settings.scan_lane_bytes,
    )
    run_on_loop(
        settings, run_server(settings, reuse_port=reuse_port, scan_pool=pool, ready=_settle_heap)
    )


async def _settle_heap(_res: Resources) -> None:
    settle_heap()


async def _prepare_vault(settings: Settings) -> None:
    # Migrate and (in development mode) generate the key once, before the workers start, so
    # they never race to create two different keys.
    from vault import open_vault

    vault = await open_vault(settings.vault)
    await vault.close()
    # The same for the development audit key: generated once, then read by every worker.
    await asyncio.to_thread(
        load_audit_key,
        key_file=settings.audit_key_file,
        inline=settings.audit_key.reveal() if settings.audit_key is not None else None,
        dev_data_dir=settings.vault.data_dir if settings.dev else None,
    )


def serve(settings: Settings) -> int:
    """Run `settings.workers` server processes; returns the exit code.

    With one worker this process serves. With more, it prepares the vault, forks the workers
    (each binds the listeners with SO_REUSEPORT, so the kernel spreads connections), forwards
    SIGINT/SIGTERM to them and stops them all if one dies.
    """
    if settings.workers == 1:
        _serve_here(settings, reuse_port=False)
        return 0
    asyncio.run(_prepare_vault(settings))
    # Fork after import, not spawn: the workers share the supervisor's loaded code (presidio,
    # cryptography, aiohttp: most of a process's memory) copy-on-write instead of each loading
    # its own. The supervisor builds no pipeline: each worker opens its own resources.
    # gc.freeze moves what is loaded now out of the collector's reach, so a collection in a
    # worker does not touch (and so copy) those shared pages.
    gc.collect()
    gc.freeze()
    # One metrics exposition for all workers: each writes its own files in a fresh private
    # directory, /metrics on any of them sums them all (removed again when all have stopped).
    metrics_dir = start_multiprocess()
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                replace(
                    settings,
                    audit_log=worker_audit_log(settings.audit_log, n),
                    metrics_dir=metrics_dir,
                    worker=n,
                ),
            ),
            daemon=False,
        )
        for n in range(1, settings.workers + 1)
    ]
    gone: set[int] = set()
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
                if proc.exitcode is not None and proc.pid is not None and proc.pid not in gone:
                    gone.add(proc.pid)
                    worker_exited(metrics_dir, proc.pid)
                if proc.exitcode not in (None, 0) and not stopping:
                    # One worker died on its own: stop the rest, so the orchestrator restarts
                    # the container instead of serving at reduced capacity unnoticed.
                    log.error("worker_died", exit_code=proc.exitcode)
                    # 2: the worker could not start (it said why on stderr).
                    exit_code = 2 if proc.exitcode == 2 else 1
                    stop_all()
        return exit_code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_multiprocess(metrics_dir)
