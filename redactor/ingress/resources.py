"""The ingress side's share of the run-time resources: its settings, a pipeline per route,
the rewriter and the scan worker, over the handles both sides share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from redactor.detection import DetectionOptions, Detector
from redactor.ingress.config import IngressSettings, RouteSettings
from redactor.ingress.delivery import Deliverer
from redactor.ingress.outbox import OutboxDepth
from redactor.ingress.pipeline import Pipeline, TokenVault
from redactor.ingress.scan_pool import ScanPool
from redactor.redaction.rewrite import Rewriter
from redactor.runtime import SharedHandles, SharedResources


@dataclass(slots=True)
class IngressResources(SharedHandles):
    shared: SharedResources
    settings: IngressSettings
    rewriter: Rewriter
    # One detector per distinct detection policy, built at start (routes share them).
    detectors: dict[DetectionOptions, Detector] = field(default_factory=dict)
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    # Large bodies are parsed and scanned in a worker process, off the event loop.
    scan_pool: ScanPool | None = None
    # Queued routes: the depth gate (back-pressure, /readyz) and this process's delivery loop.
    outbox_depth: OutboxDepth = field(default_factory=lambda: OutboxDepth({}))
    deliverer: Deliverer | None = None

    @property
    def queued_routes(self) -> list[RouteSettings]:
        return [r for r in self.settings.routes if r.delivery.queued]

    def open_outbox(self, **options: Any) -> Deliverer | None:
        """The depth gate and the delivery loop of this process's queued routes (not started:
        `start_delivery`). `options` go to the Deliverer (tests shorten its intervals)."""
        self.outbox_depth = OutboxDepth.of(self.settings.routes)
        if not self.queued_routes:
            return None
        self.deliverer = Deliverer(
            self.vault.outbox,
            self.queued_routes,
            self.session,
            self.audit,
            self.metrics,
            self.outbox_depth,
            upstream_timeout_s=self.shared.upstream_timeout_s,
            upstream_connect_timeout_s=self.shared.upstream_connect_timeout_s,
            **options,
        )
        return self.deliverer

    async def start_delivery(self) -> None:
        """Read the outbox's depth once (so the gate is right from the first request), then
        start delivering. Raises VaultError if the outbox cannot be read."""
        if self.deliverer is not None:
            await self.deliverer.read_depth()
            self.deliverer.start()

    async def stop_delivery(self, grace_s: float = 10.0) -> None:
        if self.deliverer is not None:
            await self.deliverer.stop(grace_s)

    def pipeline_for(self, route: RouteSettings) -> Pipeline:
        return self.pipelines[route.name]

    def detector(self, options: DetectionOptions) -> Detector:
        """The detector for `options`, built on first use and shared after."""
        found = self.detectors.get(options)
        if found is None:
            found = self.detectors[options] = Detector(options)
        return found

    def build_pipelines(self, vault: TokenVault) -> None:
        for route in self.settings.routes:
            self.pipelines[route.name] = Pipeline(
                self.detector(route.detection),
                self.rewriter,
                vault,
                self.shared.vault_timeout_s,
                self.scan_pool,
            )

    async def warm_scan_pool(self) -> None:
        """Start the scan worker and build its detectors now, not on the first large body."""
        if self.scan_pool is None:
            return
        await self.scan_pool.warm({route.detection for route in self.settings.routes})


INGRESS = web.AppKey("ingress", IngressResources)
