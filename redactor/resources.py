"""Opens what a server process needs, once, and hands each side its share.

The composition root: it imports both sides and the cores; the sides never import it
(`tests/test_layout.py`). The shared handles (vault, session, audit sink, metrics) are opened
here; the ingress side gets `IngressResources`, the agent side `AgentResources`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from redactor.agent.resources import AgentResources, open_agent
from redactor.audit import AuditSink, load_audit_key
from redactor.audit.registration import ChainRegistry, StoreChainRegistry
from redactor.detection import DetectionOptions
from redactor.ingress.pipeline import Pipeline
from redactor.ingress.resources import IngressResources
from redactor.ingress.scan_pool import ScanPool
from redactor.redaction.rewrite import Rewriter
from redactor.runtime import SharedHandles, SharedResources
from redactor.runtime.entities import VaultAdapter
from redactor.runtime.metrics import Metrics
from redactor.settings import Settings
from vault import open_vault


@dataclass(slots=True)
class Resources(SharedHandles):
    """Everything one server process opened: the shared handles and each side's share."""

    settings: Settings
    shared: SharedResources
    ingress: IngressResources
    agent: AgentResources | None = None
    # Set on SIGTERM/SIGINT: /readyz answers 503 while requests in flight finish.
    draining: bool = False

    async def warm_scan_pool(self) -> None:
        """Start the scan worker and build its detectors now, not on the first large body."""
        await self.ingress.warm_scan_pool()


RESOURCES = web.AppKey("resources", Resources)


@dataclass(frozen=True, slots=True)
class AuditMetrics:
    """The audit sink's writes and health, counted in this process's metrics (the sink is a
    core and knows no metrics; with several workers the exposition sums them)."""

    metrics: Metrics

    def written(self, records: int, nbytes: int) -> None:
        self.metrics.audit_written(records, nbytes)

    def failed(self, records: int) -> None:
        self.metrics.audit_failed(records)

    def writable(self, ok: bool) -> None:
        self.metrics.audit_health(ok)

    def file_replaced(self, cause: str) -> None:
        self.metrics.audit_file_replaced(cause)

    def tail_repaired(self) -> None:
        self.metrics.audit_tail_repaired()

    def fsync_failed(self) -> None:
        self.metrics.audit_fsync_failed()


async def open_audit_sink(
    settings: Settings, metrics: Metrics | None = None, registry: ChainRegistry | None = None
) -> AuditSink:
    """The audit sink of this process, open, with its own chain (recorded in `registry`,
    the vault's chain registry, before its first record).

    Raises ConfigError (no or bad audit key) or AuditWriteError (the file cannot be opened,
    or the chain cannot be registered: a serving process needs its vault anyway).
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
        observer=None if metrics is None else AuditMetrics(metrics),
        registry=registry,
        writer="serve" if settings.worker is None else "worker",
        command=None if settings.worker is None else str(settings.worker),
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
    if scan_pool is None:
        scan_pool = ScanPool(timeout_s=settings.scan_timeout_s, lane_bytes=settings.scan_lane_bytes)
    agent: AgentResources | None = None
    try:
        metrics = Metrics(multiprocess_dir=settings.metrics_dir)
        audit = await open_audit_sink(settings, metrics, StoreChainRegistry(vault.store))
        # auto_decompress: responses reach redact_responses routes already decoded. No cookie
        # jar: a cookie an upstream sets is the client's (it gets the Set-Cookie header); kept
        # here, it went out again with every later request, whoever sent it. (And each request
        # and answer skips the jar's look-ups.)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.upstream_pool_size),
            auto_decompress=True,
            raise_for_status=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        shared = SharedResources(
            vault,
            session,
            audit,
            metrics,
            vault_timeout_s=settings.vault_timeout_s,
            upstream_timeout_s=settings.upstream_timeout_s,
            upstream_connect_timeout_s=settings.upstream_connect_timeout_s,
        )
        scan_pool.metrics = metrics
        adapter = VaultAdapter(vault, shared.metrics)
        ingress = IngressResources(shared, settings.ingress(), Rewriter(), scan_pool=scan_pool)
        ingress.build_pipelines(adapter)
        ingress.open_outbox()
        res = Resources(settings, shared, ingress)
        if settings.agent is not None:
            # Purposes are scrubbed, and outbound answers tokenised, with the default policy.
            detector = ingress.detector(DetectionOptions())
            pipeline = Pipeline(detector, ingress.rewriter, adapter, settings.vault_timeout_s)
            agent = res.agent = await open_agent(shared, settings.agent, detector, pipeline)
        yield res
    finally:
        if agent is not None:
            await agent.revocations.close()
        await scan_pool.close()
        if session is not None:
            await session.close()
        if audit is not None:
            await audit.close()
        await vault.close()
