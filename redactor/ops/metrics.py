"""Prometheus metrics. Labels are route names, entity types and status codes: never a value."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    requests: Counter = field(init=False)
    findings: Counter = field(init=False)
    failures: Counter = field(init=False)
    latency: Histogram = field(init=False)

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
