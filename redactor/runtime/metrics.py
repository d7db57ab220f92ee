"""Prometheus metrics. Labels are route names, entity types and status codes: never a value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    requests: Counter = field(init=False)
    findings: Counter = field(init=False)
    failures: Counter = field(init=False)
    latency: Histogram = field(init=False)
    _children: dict[tuple[Counter | Histogram, tuple[str, ...]], Any] = field(
        init=False, repr=False
    )

    def __post_init__(self) -> None:
        # Frozen for callers; the collectors are created once here.
        set_ = object.__setattr__
        set_(
            self,
            "requests",
            Counter(
                "redactor_requests",
                "Proxied requests by route and status",
                ["route", "status"],
                registry=self.registry,
            ),
        )
        set_(
            self,
            "findings",
            Counter(
                "redactor_findings",
                "Values replaced by tokens, by route and entity type",
                ["route", "entity"],
                registry=self.registry,
            ),
        )
        set_(
            self,
            "failures",
            Counter(
                "redactor_failures",
                "Requests refused or failed, by route and error code",
                ["route", "code"],
                registry=self.registry,
            ),
        )
        set_(
            self,
            "latency",
            Histogram(
                "redactor_redaction_seconds",
                "Time spent in the redaction pipeline",
                ["route"],
                registry=self.registry,
                buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            ),
        )
        set_(self, "_children", {})

    # Children by label values, looked up once: `labels()` validates and locks on every call,
    # and the proxy counts every message (issue 14).
    def request_done(self, route: str, status: int) -> None:
        """Count one proxied request of `route` answered with `status`."""
        self._child(self.requests, route, str(status)).inc()

    def redaction_took(self, route: str, seconds: float) -> None:
        """Record the pipeline's time for one message of `route`."""
        self._child(self.latency, route).observe(seconds)

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child
