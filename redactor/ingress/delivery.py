"""Queued routes, the delivery side: a loop in every serving process that takes due items
from the outbox under a lease and delivers them, at least once.

Each attempt carries `Idempotency-Key: <outbox id>`, the same on every attempt, so the
upstream can drop a duplicate (a delivery whose answer was lost is tried again). Failures
retry with exponential backoff and jitter (or after the upstream's Retry-After on 429/503)
until the route's attempt or age limit, then the item is dead (dead-letter state) until an
operator retries or drops it (`redactor outbox`). Every outcome is an audit record.

The loop does I/O only (a claim, an HTTP call, an update): nothing heavy runs on the event
loop the proxy shares. Claims are leases: N workers and M replicas share one outbox, each item
is delivered by one of them at a time, and the lease of a deliverer that died runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import structlog
from aiohttp import ClientError, ClientSession, ClientTimeout
from multidict import CIMultiDict

from redactor.audit import AuditSink, AuditWriteError, DeliveryEvent, now_iso
from redactor.ingress.config import DeliverySettings, RouteSettings
from redactor.ingress.outbox import OutboxDepth
from redactor.relay import upstream_failure
from redactor.runtime.metrics import Metrics
from vault.errors import VaultError
from vault.outbox import OutboxItem, OutboxStore

log = structlog.get_logger()

IDEMPOTENCY_KEY = "Idempotency-Key"
# Answers that may succeed later: timeouts, too early, rate limits, the upstream's own faults.
_RETRY_STATUSES = frozenset({408, 425, 429})
# Answers whose Retry-After is honoured.
_RETRY_AFTER_STATUSES = frozenset({429, 503})
# Upstream answers up to this size are read (and dropped) to keep the connection.
_DRAINED_ANSWER_BYTES = 64 * 1024
# Outcomes (audit `outcome`, metric label) and their audit events.
DELIVERY_EVENTS = {
    "delivered": "message_delivered",
    "retrying": "message_retrying",
    "dead": "message_dead",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """What becomes of an item after one attempt."""

    outcome: str  # delivered, retrying, dead
    code: str | None = None
    next_at: float | None = None


def backoff_s(delivery: DeliverySettings, attempts: int, rng: Callable[[], float]) -> float:
    """The wait after failed attempt number `attempts`: base * 2^(attempts-1), capped, and
    jittered over its upper half (so retries of many items spread out, never all at once)."""
    full = min(delivery.backoff_cap_s, delivery.backoff_base_s * 2 ** min(attempts - 1, 60))
    return full / 2 + rng() * full / 2


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date); None if
    there is none or it does not parse."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def decide(
    delivery: DeliverySettings,
    item: OutboxItem,
    status: int | None,
    retry_after_s: float | None,
    now: float,
    rng: Callable[[], float],
    failure: str | None = None,
) -> Decision:
    """The outcome of an attempt that got `status` (None: no answer, `failure` says why).
    `item.attempts` already counts this attempt."""
    if status is not None and 200 <= status < 300:
        return Decision("delivered")
    retryable = status is None or status >= 500 or status in _RETRY_STATUSES
    if not retryable:
        # 3xx and 4xx: the upstream refused this message; sending it again will not help.
        return Decision("dead", "upstream_rejected")
    if item.attempts >= delivery.max_attempts:
        return Decision("dead", "attempts_exhausted")
    wait = backoff_s(delivery, item.attempts, rng)
    if retry_after_s is not None and status in _RETRY_AFTER_STATUSES:
        wait = retry_after_s
    next_at = now + wait
    if next_at > item.age_from + delivery.max_age_s:
        return Decision("dead", "max_age_exceeded")
    return Decision("retrying", failure, next_at)


def deliverer_id() -> str:
    """An owner name for leases: host, process and a random part (a restarted process with
    the same pid never inherits a lease)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Deliverer:
    """The delivery loop of one process: claims due items of its queued routes, delivers up to
    `concurrency` at once, and reads the outbox's depth for the gate and the gauges."""

    def __init__(
        self,
        outbox: OutboxStore,
        routes: Sequence[RouteSettings],
        session: ClientSession,
        audit: AuditSink,
        metrics: Metrics,
        depth: OutboxDepth,
        *,
        upstream_timeout_s: float,
        upstream_connect_timeout_s: float,
        lease_s: float | None = None,
        concurrency: int = 32,
        poll_interval_s: float = 0.5,
        depth_interval_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        owner: str | None = None,
    ) -> None:
        self._outbox = outbox
        self._routes = {r.name: r for r in routes if r.delivery.queued}
        self._session = session
        self._audit = audit
        self._metrics = metrics
        self._depth = depth
        self._timeout = ClientTimeout(total=upstream_timeout_s, connect=upstream_connect_timeout_s)
        # Longer than any attempt can take, so a live deliverer never loses its lease.
        self._lease_s = lease_s if lease_s is not None else 2 * upstream_timeout_s + 30
        self._concurrency = concurrency
        self._poll_interval_s = poll_interval_s
        self._depth_interval_s = depth_interval_s
        self._clock = clock
        self._rng = rng
        self.owner = owner or deliverer_id()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[str]] = set()

    def start(self) -> None:
        """Start the claim loop and the depth reader (no-op without a queued route)."""
        if not self._routes or self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="outbox-claim"),
            asyncio.create_task(self._depth_loop(), name="outbox-depth"),
        ]

    def wake(self) -> None:
        """Something was queued here: claim now instead of at the next poll."""
        self._wakeup.set()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming; let deliveries in flight finish for up to `grace_s`, cancel the rest
        and end this process's leases, so another deliverer takes those items at once."""
        self._stopping = True
        self._wakeup.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=grace_s)
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        try:
            await self._outbox.release(self.owner)
        except VaultError as exc:
            # The leases run out by themselves.
            log.warning("outbox_leases_not_released", error=exc.code)

    async def read_depth(self) -> None:
        """Read the outbox's depth now: the gate and the gauges."""
        depths = await self._outbox.depth()
        self._depth.update(depths)
        now = self._clock()
        for route in self._routes:
            found = self._depth.read.get(route)
            self._metrics.outbox_read(
                route,
                found.pending if found is not None else 0,
                found.dead if found is not None else 0,
                self._depth.oldest_age_s(route, now),
            )

    async def _depth_loop(self) -> None:
        while True:
            try:
                await self.read_depth()
            except VaultError as exc:
                log.warning("outbox_depth_unread", error=exc.code)
            except Exception:  # a bug must not end the depth reads for good
                log.exception("outbox_depth_crashed")
            await asyncio.sleep(self._depth_interval_s)

    async def _claim_loop(self) -> None:
        routes = list(self._routes)
        while not self._stopping:
            self._wakeup.clear()
            free = self._concurrency - len(self._in_flight)
            items: list[OutboxItem] = []
            if free > 0:
                try:
                    items = await self._outbox.claim(
                        routes, self.owner, self._clock(), self._lease_s, free
                    )
                except VaultError as exc:
                    log.warning("outbox_claim_failed", error=exc.code)
                except Exception:  # a bug must not end delivery for good
                    log.exception("outbox_claim_crashed")
            for item in items:
                task = asyncio.create_task(self._deliver(item), name="outbox-deliver")
                self._in_flight.add(task)
                task.add_done_callback(self._done)
            if items and len(items) == free:
                continue  # more may be due: claim again once a slot frees up or at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval_s):
                    await self._wakeup.wait()

    def _done(self, task: asyncio.Task[str]) -> None:
        self._in_flight.discard(task)
        self._wakeup.set()

    async def _deliver(self, item: OutboxItem) -> str:
        """Attempt `item` (claimed by this deliverer) once; returns the outcome."""
        route = self._routes[item.route]
        now = self._clock()
        if now > item.age_from + route.delivery.max_age_s:
            # Too old before this attempt began (a long outage, a backlog): never sent late.
            decision = Decision("dead", "max_age_exceeded")
            return await self._settle(route, item, decision, None)
        headers: CIMultiDict[str] = CIMultiDict(item.headers)
        headers[IDEMPOTENCY_KEY] = item.id
        raw_path, _, raw_query = item.target.partition("?")
        url = route.upstream_url(raw_path, raw_query)
        status: int | None = None
        retry_after: float | None = None
        failure: str | None = None
        started = time.perf_counter()
        try:
            async with self._session.request(
                item.method,
                url,
                headers=headers,
                data=item.body,
                allow_redirects=False,
                timeout=self._timeout,
            ) as answer:
                status = answer.status
                retry_after = parse_retry_after(answer.headers.get("Retry-After"), self._clock())
                # The answer's body is not wanted; a small one is read so the connection goes
                # back to the pool (a new connection per delivery costs more than the read).
                length = answer.content_length
                if length is not None and length <= _DRAINED_ANSWER_BYTES:
                    await answer.read()
                else:
                    answer.release()
        except (ClientError, OSError, TimeoutError) as exc:
            failure = upstream_failure(exc).code
        except ValueError:
            # aiohttp refuses what it cannot send (a header it will not write, a URL it
            # cannot build): retried like a failure, so the limits end it as a dead letter.
            failure = "request_invalid"
        self._metrics.upstream_answered("outbox", status, time.perf_counter() - started)
        decision = decide(
            route.delivery, item, status, retry_after, self._clock(), self._rng, failure
        )
        return await self._settle(route, item, decision, status)

    async def _settle(
        self, route: RouteSettings, item: OutboxItem, decision: Decision, status: int | None
    ) -> str:
        try:
            if decision.outcome == "delivered":
                held = await self._outbox.finish(item.id, self.owner)
            elif decision.outcome == "retrying" and decision.next_at is not None:
                held = await self._outbox.reschedule(
                    item.id, self.owner, decision.next_at, status, decision.code
                )
            else:
                held = await self._outbox.bury(item.id, self.owner, status, decision.code)
        except VaultError as exc:
            # The lease runs out and another attempt follows: at least once, never lost.
            log.warning("outbox_update_failed", error=exc.code, outcome=decision.outcome)
            held = True
        if not held:
            # The lease ran out mid-attempt and another deliverer has the item now.
            log.warning("outbox_lease_lost", outbox_id=item.id, outcome=decision.outcome)
        self._metrics.outbox_attempted(route.name, decision.outcome)
        if decision.outcome == "delivered":
            self._metrics.outbox_delivered(route.name, max(0.0, self._clock() - item.created_at))
        await self._record(route, item, decision, status)
        return decision.outcome

    async def _record(
        self, route: RouteSettings, item: OutboxItem, decision: Decision, status: int | None
    ) -> None:
        # After the fact, like a sync route's delivery record: a failed write is logged and
        # counted; the message's redaction record (written before it was queued) stands.
        try:
            await self._audit.write(
                DeliveryEvent(
                    event=DELIVERY_EVENTS[decision.outcome],
                    time=now_iso(),
                    request_id=item.request_id,
                    route=route.name,
                    tenant=item.tenant,
                    outcome=decision.outcome,
                    status=status if status is not None else 0,
                    code=decision.code,
                    outbox_id=item.id,
                    attempt=item.attempts,
                )
            )
        except AuditWriteError:
            self._metrics.failed(route.name, "audit_delivery_unrecorded")
            log.error("delivery_not_audited", outcome=decision.outcome)  # noqa: TRY400 - the sink logged why
