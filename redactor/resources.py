"""What the apps share for their whole life: vault, HTTP client, audit sink, detectors.

Opened once at start (`open_resources`), closed once at shutdown; handlers reach them through
the `RESOURCES` app key. No module-level state.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from redactor.agent.auth import TokenVerifier
from redactor.agent.policy import PolicyStore
from redactor.audit import AuditSink, load_audit_key
from redactor.detection import CREDIT_CARD, US_SSN, DetectionOptions, Detector
from redactor.errors import RedactorError
from redactor.ingress.pipeline import Pipeline, TokenVault
from redactor.ingress.rewrite import Rewriter
from redactor.ingress.scanning import warm_worker
from redactor.ops.metrics import Metrics
from redactor.settings import AgentSettings, RouteSettings, Settings
from vault import EntityType, Vault, open_vault

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class AgentResources:
    """What the agent API shares: the JWT verifier, the reveal policy, the outbound pipeline."""

    settings: AgentSettings
    verifier: TokenVerifier
    policies: PolicyStore
    # Scrubs callers' free text (purposes) before the audit log, and redacts answers that come
    # back through outbound routes.
    detector: Detector
    outbound_pipeline: Pipeline


@dataclass(slots=True)
class Resources:
    settings: Settings
    vault: Vault
    session: aiohttp.ClientSession
    audit: AuditSink
    metrics: Metrics
    rewriter: Rewriter
    # One detector per distinct detection policy, built at start (routes share them).
    detectors: dict[DetectionOptions, Detector] = field(default_factory=dict)
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    agent: AgentResources | None = None
    # Large bodies are parsed and scanned in a worker process, off the event loop.
    scan_pool: ScanPool | None = None

    async def warm_scan_pool(self) -> None:
        """Start the scan worker and build its detectors now, not on the first large body."""
        if self.scan_pool is None:
            return
        for options in {route.detection for route in self.settings.routes}:
            await self.scan_pool.run(warm_worker, options)

    def pipeline_for(self, route: RouteSettings) -> Pipeline:
        return self.pipelines[route.name]


RESOURCES = web.AppKey("resources", Resources)


def _build_pipelines(res: Resources, vault: TokenVault) -> None:
    for route in res.settings.routes:
        detector = res.detectors.get(route.detection)
        if detector is None:
            detector = res.detectors[route.detection] = Detector(route.detection)
        res.pipelines[route.name] = Pipeline(
            detector, res.rewriter, vault, res.settings.vault_timeout_s, res.scan_pool
        )


async def _open_agent(res: Resources, agent: AgentSettings, vault: TokenVault) -> AgentResources:
    # PolicyFileError (a ConfigError naming file, line and reason) stops the start.
    policies = PolicyStore(agent.policy_path)
    verifier = TokenVerifier(agent.auth, session=res.session)
    await verifier.start()
    detector = res.detectors.get(DetectionOptions())
    if detector is None:
        detector = res.detectors[DetectionOptions()] = Detector(DetectionOptions())
    pipeline = Pipeline(detector, res.rewriter, vault, res.settings.vault_timeout_s)
    log.info(
        "agent_api_ready",
        policy=str(agent.policy_path),
        outbound=[r.name for r in agent.outbound],
    )
    return AgentResources(agent, verifier, policies, detector, pipeline)


async def open_audit_sink(settings: Settings) -> AuditSink:
    """The audit sink of this process, open, with its own chain.

    Raises ConfigError (no or bad audit key) or AuditWriteError (the file cannot be opened).
    """
    key = await asyncio.to_thread(
        load_audit_key,
        key_file=settings.audit_key_file,
        inline=settings.audit_key.reveal() if settings.audit_key is not None else None,
        dev_data_dir=settings.vault.data_dir if settings.dev else None,
    )
    sink = AuditSink(
        settings.audit_log,
        key,
        max_bytes=settings.audit_max_bytes,
        checkpoint_interval_s=settings.audit_checkpoint_interval_s,
        fsync=settings.audit_fsync,
    )
    await sink.open()
    return sink


@asynccontextmanager
async def open_resources(
    settings: Settings, scan_pool: ScanPool | None = None
) -> AsyncIterator[Resources]:
    """Open everything once; close it all on exit, whatever happened. `scan_pool` is a scan
    worker started before the loop (ScanPool.forked_now); without one, one is spawned."""
    # The vault first: its key is the first thing a new operator has to configure.
    # watch: follow key rotations in the vault and check in (the heartbeat `keys retire` reads).
    vault = await open_vault(settings.vault, watch=True)
    audit: AuditSink | None = None
    session: aiohttp.ClientSession | None = None
    scan_pool = scan_pool if scan_pool is not None else ScanPool()
    try:
        audit = await open_audit_sink(settings)
        # auto_decompress: responses reach redact_responses routes already decoded.
        session = aiohttp.ClientSession(auto_decompress=True, raise_for_status=False)
        res = Resources(settings, vault, session, audit, Metrics(), Rewriter())
        res.metrics.watch_audit(audit.health)
        res.scan_pool = scan_pool
        adapter = VaultAdapter(vault)
        _build_pipelines(res, adapter)
        if settings.agent is not None:
            res.agent = await _open_agent(res, settings.agent, adapter)
        yield res
    finally:
        await scan_pool.close()
        if session is not None:
            await session.close()
        if audit is not None:
            await audit.close()
        await vault.close()


class ScanUnavailableError(RedactorError):
    """The scan worker died (killed, out of memory): this message fails closed, the next
    gets a new worker."""

    status = 503
    code = "scan_unavailable"
    message = "scan worker unavailable"


class ScanPool:
    """One worker process for large bodies, replaced when it dies.

    A process, not a thread: a thread shares the GIL, and one C call on a large body
    (`json.loads`, a regex over 9 MB) holds it for 100 ms and more, stalling the loop
    (benchmarks/hostile.py). `redactor serve` forks it before its first thread
    (`forked_now`); otherwise, and to replace a dead one, it is spawned: by then the server
    holds threads and sockets.
    """

    def __init__(self, executor: ProcessPoolExecutor | None = None) -> None:
        self._executor = executor if executor is not None else self._new()

    @classmethod
    def forked_now(cls, warm: Iterable[DetectionOptions]) -> ScanPool:
        """Fork the scan worker now and build its detectors: call this before the process
        starts any thread (no event loop, no vault yet), so forking is safe. The worker then
        shares this process's loaded code copy-on-write instead of loading its own (issue
        14: a spawned scan worker cost ~90 MiB per server process). A worker that dies is
        replaced by a spawned one."""
        executor = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("fork")
        )
        for options in warm:
            executor.submit(warm_worker, options).result()
        return cls(executor)

    @staticmethod
    def _new() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` in the worker. Raises what `fn` raises, or ScanUnavailableError."""
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except BrokenProcessPool:
            log.error("scan_worker_died")  # noqa: TRY400 -- the traceback is the pool's, not ours
            if self._executor is executor:
                self._executor = self._new()
                executor.shutdown(wait=False, cancel_futures=True)
            raise ScanUnavailableError() from None

    async def close(self) -> None:
        """Stop the worker (a scan still running finishes first, off the loop)."""
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


# Detection's entity names and the vault's token types, both ways: one table.
VAULT_ENTITY = MappingProxyType({CREDIT_CARD: EntityType.CARD, US_SSN: EntityType.SSN})
DETECTION_ENTITY = MappingProxyType({v: k for k, v in VAULT_ENTITY.items()})


class VaultAdapter:
    """Speaks detection's entity names to the vault (`CREDIT_CARD` -> `card`)."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    async def tokenize_many(self, tenant: str, items: list[tuple[str, str]]) -> list[object]:
        return list(
            await self._vault.tokenize_many(tenant, [(VAULT_ENTITY[e], v) for e, v in items])
        )
