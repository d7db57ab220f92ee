"""Prometheus metrics. Labels are route names, entity types and status codes: never a value."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from redactor.audit import SinkHealth


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

    def watch_audit(self, health: Callable[[], SinkHealth]) -> None:
        """Export the audit sink's state (read at each scrape, nothing to keep in step)."""
        self.registry.register(_AuditCollector(health))

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


class _AuditCollector:
    """The audit sink's health as Prometheus metrics: whether it writes, and what failed."""

    def __init__(self, health: Callable[[], SinkHealth]) -> None:
        self._health = health

    def describe(self) -> list[Metric]:
        return []  # collected at each scrape: no names to reserve ahead

    def collect(self) -> Iterator[Metric]:
        h = self._health()
        yield GaugeMetricFamily(
            "redactor_audit_writable",
            "1 while audit records are written, 0 after a failed write (then every message "
            "and reveal is refused with 503 audit_unavailable)",
            value=1 if h.writable else 0,
        )
        yield CounterMetricFamily(
            "redactor_audit_write_failures",
            "Audit batches that could not be written (disk full, I/O error); cut off again",
            value=h.failed_batches,
        )
        yield CounterMetricFamily(
            "redactor_audit_refused_records",
            "Audit records refused by a failed write (their actions did not happen)",
            value=h.failed_records,
        )
        replaced = CounterMetricFamily(
            "redactor_audit_file_replaced",
            "Times the audit path stopped naming the open file (deleted, moved, replaced) "
            "and the sink followed it",
            labels=["cause"],
        )
        for cause in ("deleted", "moved", "replaced"):
            replaced.add_metric([cause], h.files_replaced.get(cause, 0))
        yield replaced
        yield CounterMetricFamily(
            "redactor_audit_torn_tails_repaired",
            "Audit files found at open with a last line cut short (a crash), ended and recorded",
            value=h.torn_tails_repaired,
        )
        yield CounterMetricFamily(
            "redactor_audit_fsync_failures",
            "fsync calls on the audit file that failed",
            value=h.fsync_failures,
        )
