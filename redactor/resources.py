"""What the apps share for their whole life: vault, HTTP client, audit sink, detectors.

Opened once at start (`open_resources`), closed once at shutdown; handlers reach them through
the `RESOURCES` app key. No module-level state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

import aiohttp
import structlog
from aiohttp import web

from redactor.agent.auth import TokenVerifier
from redactor.agent.policy import PolicyStore
from redactor.audit import AuditSink, load_audit_key
from redactor.detection import CREDIT_CARD, US_SSN, DetectionOptions, Detector
from redactor.ingress.pipeline import Pipeline, TokenVault
from redactor.ingress.rewrite import Rewriter
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
    # Large bodies are parsed and scanned here, off the event loop (pipeline.py).
    scan_executor: ThreadPoolExecutor | None = None

    def pipeline_for(self, route: RouteSettings) -> Pipeline:
        return self.pipelines[route.name]


RESOURCES = web.AppKey("resources", Resources)


def _build_pipelines(res: Resources, vault: TokenVault) -> None:
    for route in res.settings.routes:
        detector = res.detectors.get(route.detection)
        if detector is None:
            detector = res.detectors[route.detection] = Detector(route.detection)
        res.pipelines[route.name] = Pipeline(
            detector, res.rewriter, vault, res.settings.vault_timeout_s, res.scan_executor
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
    )
    await sink.open()
    return sink


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Open everything once; close it all on exit, whatever happened."""
    # The vault first: its key is the first thing a new operator has to configure.
    vault = await open_vault(settings.vault)
    audit: AuditSink | None = None
    session: aiohttp.ClientSession | None = None
    # Threads, not processes: a scan holds the GIL only between switch intervals (5 ms), so
    # the loop keeps answering (benchmarks/hostile.py: /healthz p99 with bombs in flight),
    # and the parsed body stays in memory for the rebuild after the vault call.
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="redactor-scan")
    try:
        audit = await open_audit_sink(settings)
        # auto_decompress: responses reach redact_responses routes already decoded.
        session = aiohttp.ClientSession(auto_decompress=True, raise_for_status=False)
        res = Resources(settings, vault, session, audit, Metrics(), Rewriter())
        res.scan_executor = executor
        adapter = VaultAdapter(vault)
        _build_pipelines(res, adapter)
        if settings.agent is not None:
            res.agent = await _open_agent(res, settings.agent, adapter)
        yield res
    finally:
        # A scan still running finishes on its thread; the loop does not wait on it blocked.
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        if session is not None:
            await session.close()
        if audit is not None:
            await audit.close()
        await vault.close()


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
