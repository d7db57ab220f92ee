"""Prometheus metrics. Labels are route names, entity types, endpoints, kinds, outcomes and
status codes or classes: never a value, a token, a subject or a tenant.

With `--workers N` every worker counts in files of its own under one directory the supervisor
creates before forking (prometheus-client's multiprocess mode), and `/metrics` on any worker
adds up all the files: one exposition for the whole server, every counter monotonic whatever
worker answers the scrape. A dead worker's counters stay in the sum; its gauges leave it
(`mark_process_dead`). Every family is an ordinary prometheus-client metric for that reason:
a custom collector registered in one worker's registry would never reach the exposition.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

# The directory prometheus-client's multiprocess values write to (its own variable name).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The causes `redactor_audit_file_replaced` counts (redactor.audit.sink's `_follow_path`).
AUDIT_FILE_CAUSES = ("deleted", "moved", "replaced")

_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


# This process's id, kept current across forks: prometheus-client asks for it on every
# increment (to notice a fork), and os.getpid() is a system call each time.
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


def _pid() -> int:
    return _PID[0]


def start_multiprocess(parent: Path | None = None) -> Path:
    """Before forking workers: a fresh private directory (0700) for every process's metric
    files, and the metric values of this process and its children switched to it.

    prometheus-client picks its value class when it is imported, from the environment; the
    supervisor imported it long before, so the class is switched here as well."""
    path = Path(tempfile.mkdtemp(prefix="redactor-metrics-", dir=parent))
    os.environ[MULTIPROC_ENV] = str(path)
    values.ValueClass = values.MultiProcessValue(_pid)  # type: ignore[no-untyped-call]
    return path


def worker_exited(path: Path, pid: int) -> None:
    """A worker is gone: its live gauges (scan queue depth) leave the sum; counters stay."""
    multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def stop_multiprocess(path: Path) -> None:
    """After the last worker: remove the directory and go back to in-process values."""
    shutil.rmtree(path, ignore_errors=True)
    os.environ.pop(MULTIPROC_ENV, None)
    values.ValueClass = values.MutexValue


class VaultCallTimer:
    """Times one vault call (a class, not a generator context manager: a quarter of the cost,
    and it runs once per message)."""

    __slots__ = ("_kind", "_metrics", "_started")

    def __init__(self, metrics: Metrics, kind: str) -> None:
        self._metrics = metrics
        self._kind = kind
        self._started = 0.0

    async def __aenter__(self) -> None:
        self._started = time.perf_counter()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        if exc_type is None:
            outcome = "ok"
        elif issubclass(exc_type, TimeoutError):
            outcome = "timeout"
        elif issubclass(exc_type, asyncio.CancelledError):
            # The caller's asyncio.timeout (vault_timeout_s) cancels the call inside it.
            outcome = "cancelled"
        else:
            outcome = str(getattr(exc, "code", "error"))
        self._metrics.vault_done(self._kind, outcome, time.perf_counter() - self._started)


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


@dataclass(frozen=True, slots=True)
class Metrics:
    """Every metric family of one server process.

    `multiprocess_dir`: the directory the supervisor made (start_multiprocess); the exposition
    then reads every worker's files instead of this process's registry."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    multiprocess_dir: Path | None = None
    requests: Counter = field(init=False)
    findings: Counter = field(init=False)
    failures: Counter = field(init=False)
    unread_parts: Counter = field(init=False)
    latency: Histogram = field(init=False)
    agent_calls: Counter = field(init=False)
    revoked_refusals: Counter = field(init=False)
    vault_operations: Counter = field(init=False)
    vault_latency: Histogram = field(init=False)
    upstream_calls: Counter = field(init=False)
    upstream_latency: Histogram = field(init=False)
    audit_records: Counter = field(init=False)
    audit_bytes: Counter = field(init=False)
    audit_failures: Counter = field(init=False)
    audit_writable: Gauge = field(init=False)
    audit_refused: Counter = field(init=False)
    audit_replaced: Counter = field(init=False)
    audit_torn_tails: Counter = field(init=False)
    audit_fsync_failures: Counter = field(init=False)
    scan_queue: Gauge = field(init=False)
    scan_latency: Histogram = field(init=False)
    outbox_depth: Gauge = field(init=False)
    outbox_oldest: Gauge = field(init=False)
    outbox_deliveries: Counter = field(init=False)
    outbox_latency: Histogram = field(init=False)
    _children: dict[tuple[Any, tuple[str, ...]], Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Frozen for callers; the collectors are created once here.
        set_ = object.__setattr__
        reg = self.registry

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, registry=reg)

        def histogram(name: str, doc: str, labels: list[str], buckets: tuple[float, ...]) -> Any:
            return Histogram(name, doc, labels, registry=reg, buckets=buckets)

        # prometheus-client adds `_total` to counter names in the exposition.
        set_(self, "requests", counter(
            "redactor_requests", "Proxied requests by route and status", ["route", "status"]
        ))  # fmt: skip
        set_(self, "findings", counter(
            "redactor_findings", "Values replaced by tokens, by route and entity type",
            ["route", "entity"],
        ))  # fmt: skip
        set_(self, "failures", counter(
            "redactor_failures", "Requests refused or failed, by route and error code",
            ["route", "code"],
        ))  # fmt: skip
        set_(self, "unread_parts", counter(
            "redactor_unread_parts",
            "Message parts redactor cannot read (PDF, image, archive, other binary), by route, "
            "kind and action (passed, stripped, refused)",
            ["route", "kind", "action"],
        ))  # fmt: skip
        set_(self, "latency", histogram(
            "redactor_redaction_seconds", "Time spent in the redaction pipeline", ["route"],
            _FAST_BUCKETS,
        ))  # fmt: skip
        set_(self, "agent_calls", counter(
            "redactor_agent_calls",
            "Agent API calls by endpoint, outcome (ok or the error code) and requested level",
            ["endpoint", "outcome", "level"],
        ))  # fmt: skip
        set_(self, "revoked_refusals", counter(
            "redactor_agent_revoked_refusals",
            "Agent calls refused with 401 token_revoked, by the entry that matched (jti, subject)",
            ["by"],
        ))  # fmt: skip
        set_(self, "vault_operations", counter(
            "redactor_vault_operations",
            "Vault calls by kind (tokenize, resolve) and outcome (ok, timeout, or the error code)",
            ["kind", "outcome"],
        ))  # fmt: skip
        set_(self, "vault_latency", histogram(
            "redactor_vault_operation_seconds", "Time of one vault call, by kind", ["kind"],
            _FAST_BUCKETS,
        ))  # fmt: skip
        set_(self, "upstream_calls", counter(
            "redactor_upstream_calls",
            "Calls to an upstream by side (ingress, outbound) and status class (2xx, 5xx, error)",
            ["side", "status_class"],
        ))  # fmt: skip
        set_(self, "upstream_latency", histogram(
            "redactor_upstream_seconds", "Time to an upstream's answer headers, by side",
            ["side"], _UPSTREAM_BUCKETS,
        ))  # fmt: skip
        set_(self, "audit_records", counter(
            "redactor_audit_records", "Audit records written and flushed", []
        ))  # fmt: skip
        set_(self, "audit_bytes", counter(
            "redactor_audit_bytes", "Bytes of audit records written and flushed", []
        ))  # fmt: skip
        set_(self, "audit_failures", counter(
            "redactor_audit_write_failures",
            "Audit batches that could not be written (disk full, I/O error); cut off again, "
            "the requests they covered refused with 503",
            [],
        ))  # fmt: skip
        set_(self, "audit_writable", Gauge(
            "redactor_audit_writable",
            "1 while audit records are written, 0 after a failed write (then every message "
            "and reveal is refused with 503 audit_unavailable)",
            registry=reg,
            # The lowest over the live workers: 0 when any worker's sink cannot write.
            multiprocess_mode="livemin",
        ))  # fmt: skip
        set_(self, "audit_refused", counter(
            "redactor_audit_refused_records",
            "Audit records refused by a failed write (their actions did not happen)",
            [],
        ))  # fmt: skip
        set_(self, "audit_replaced", counter(
            "redactor_audit_file_replaced",
            "Times the audit path stopped naming the open file (deleted, moved, replaced) "
            "and the sink followed it",
            ["cause"],
        ))  # fmt: skip
        set_(self, "audit_torn_tails", counter(
            "redactor_audit_torn_tails_repaired",
            "Audit files found at open with a last line cut short (a crash), ended and recorded",
            [],
        ))  # fmt: skip
        set_(self, "audit_fsync_failures", counter(
            "redactor_audit_fsync_failures", "fsync calls on the audit file that failed", []
        ))  # fmt: skip
        # No failed write yet (the sink says so again when it opens, and on every change).
        self.audit_writable.set(1)
        for cause in AUDIT_FILE_CAUSES:
            # Exported at 0 from the start: an alert on the rate needs the series to exist.
            self.audit_replaced.labels(cause)
        for by in ("jti", "subject"):
            self.revoked_refusals.labels(by)
        set_(self, "scan_queue", Gauge(
            "redactor_scan_queue_depth",
            "Large bodies waiting for or in the scan worker",
            registry=reg,
            # Sum over the live workers; a dead worker's queue is gone with it.
            multiprocess_mode="livesum",
        ))  # fmt: skip
        set_(self, "scan_latency", histogram(
            "redactor_scan_seconds", "Time of one step in the scan worker, queueing included",
            [], (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        ))  # fmt: skip
        # The outbox is one table for every worker and replica: each worker reads the same
        # figures from it (they differ only by when each read), so the exposition shows the
        # highest.
        set_(self, "outbox_depth", Gauge(
            "redactor_outbox_depth", "Outbox items by route and state (pending, dead)",
            ["route", "state"], registry=reg, multiprocess_mode="livemax",
        ))  # fmt: skip
        set_(self, "outbox_oldest", Gauge(
            "redactor_outbox_oldest_age_seconds",
            "Age of the oldest pending outbox item, by route (0 when none is pending)",
            ["route"], registry=reg, multiprocess_mode="livemax",
        ))  # fmt: skip
        set_(self, "outbox_deliveries", counter(
            "redactor_outbox_deliveries",
            "Delivery attempts of queued messages by route and outcome (delivered, retrying, "
            "dead, expired)",
            ["route", "outcome"],
        ))  # fmt: skip
        set_(self, "outbox_latency", histogram(
            "redactor_outbox_delivery_seconds",
            "Time from enqueue to delivery of a queued message, by route", ["route"],
            (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
             3600.0, 21600.0, 86400.0),
        ))  # fmt: skip
        set_(self, "_children", {})

    def exposition(self) -> bytes:
        """The text format of every family, summed over all workers in multiprocess mode."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    # Children by label values, looked up once: `labels()` validates and locks on every call,
    # and the proxy counts every message (issue 14).
    def request_done(self, route: str, status: int) -> None:
        """Count one proxied request of `route` answered with `status`."""
        self._child(self.requests, route, str(status)).inc()

    def redaction_took(self, route: str, seconds: float) -> None:
        """Record the pipeline's time for one message of `route`."""
        self._child(self.latency, route).observe(seconds)

    def failed(self, route: str, code: str) -> None:
        """Count one refusal or failure of `route` with its error code."""
        self._child(self.failures, route, code).inc()

    def unread_part(self, route: str, kind: str, action: str) -> None:
        """Count one part of `kind` that `route` could not read, and what became of it."""
        self._child(self.unread_parts, route, kind, action).inc()

    def found(self, route: str, entity: str, n: int) -> None:
        """Count `n` values of `entity` replaced on `route`."""
        self._child(self.findings, route, entity).inc(n)

    def agent_call(self, endpoint: str, outcome: str, level: str) -> None:
        """Count one agent API call (`level`: the level asked for, `default` when none)."""
        self._child(self.agent_calls, endpoint, outcome, level).inc()

    def revoked_refusal(self, by: str) -> None:
        """Count one agent call refused because its token is revoked (`by`: jti or subject)."""
        self._child(self.revoked_refusals, by).inc()

    def upstream_answered(self, side: str, status: int | None, seconds: float) -> None:
        """Count one upstream call (`status` None: no answer) and its time to headers."""
        label = "error" if status is None else _status_class(status)
        self._child(self.upstream_calls, side, label).inc()
        self._child(self.upstream_latency, side).observe(seconds)

    def vault_call(self, kind: str) -> VaultCallTimer:
        """`async with` around one vault call: times and counts it; its outcome is `ok`,
        `timeout`, `cancelled` or the error's code."""
        return VaultCallTimer(self, kind)

    def vault_done(self, kind: str, outcome: str, seconds: float) -> None:
        """Count one vault call of `kind` with its outcome and time."""
        self._child(self.vault_operations, kind, outcome).inc()
        self._child(self.vault_latency, kind).observe(seconds)

    def audit_written(self, records: int, nbytes: int) -> None:
        """Count records and bytes the audit sink wrote and flushed."""
        self.audit_records.inc(records)
        self.audit_bytes.inc(nbytes)

    def audit_failed(self, records: int) -> None:
        """Count one failed audit write (a batch) and the `records` it refused."""
        self.audit_failures.inc()
        self.audit_refused.inc(records)

    def audit_health(self, writable: bool) -> None:
        """The audit sink writes (`writable`) or has started to fail."""
        self.audit_writable.set(1 if writable else 0)

    def audit_file_replaced(self, cause: str) -> None:
        """The audit path stopped naming the open file (`deleted`, `moved`, `replaced`)."""
        self._child(self.audit_replaced, cause).inc()

    def audit_tail_repaired(self) -> None:
        """An audit file opened with a torn last line was repaired."""
        self.audit_torn_tails.inc()

    def audit_fsync_failed(self) -> None:
        """An fsync of the audit file failed."""
        self.audit_fsync_failures.inc()

    @asynccontextmanager
    async def scanning(self) -> AsyncIterator[None]:
        """One step sent to the scan worker: in the queue gauge while it waits and runs."""
        started = time.perf_counter()
        self.scan_queue.inc()
        try:
            yield
        finally:
            self.scan_queue.dec()
            self.scan_latency.observe(time.perf_counter() - started)

    def outbox_read(self, route: str, pending: int, dead: int, oldest_age_s: float) -> None:
        """The outbox figures of `route` as last read from the database."""
        self._child(self.outbox_depth, route, "pending").set(pending)
        self._child(self.outbox_depth, route, "dead").set(dead)
        self._child(self.outbox_oldest, route).set(oldest_age_s)

    def outbox_attempted(self, route: str, outcome: str) -> None:
        """Count one delivery attempt of a queued message and its outcome."""
        self._child(self.outbox_deliveries, route, outcome).inc()

    def outbox_delivered(self, route: str, seconds: float) -> None:
        """A queued message reached its upstream `seconds` after it was enqueued."""
        self._child(self.outbox_latency, route).observe(seconds)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child
