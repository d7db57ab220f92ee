"""The ingress side's share of the run-time resources: its settings, a pipeline per route,
the rewriter and the scan worker, over the handles both sides share."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from redactor.detection import DetectionOptions, Detector
from redactor.ingress.config import IngressSettings, RouteSettings
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
