"""The outbox: redacted requests waiting for delivery, kept in the vault's database.

A route with `delivery: queued` answers its sender once the *redacted* request (method, path
and query, the headers it forwards, the body) is durable here; delivery loops in every
serving process then take items one at a time each, under a lease, and deliver them at least
once. Nothing here ever holds a raw value: the proxy writes only what it would have sent.

Records only; the SQL lives with each store (`stores/outbox_sqlite.py`,
`stores/outbox_postgres.py`), which share this Protocol.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

OutboxState = Literal["pending", "dead"]

# Columns every store returns for an item, in this order (`item_from_row`).
ITEM_COLUMNS = (
    "seq, id, route, tenant, request_id, method, target, headers, body, conversation, state, "
    "attempts, created_at, age_from, next_at, lease_owner, lease_until, last_status, last_error"
)


@dataclass(frozen=True, slots=True)
class NewItem:
    """A redacted request to enqueue. `conversation` is a digest (`conversation_key`)."""

    id: str
    route: str
    tenant: str
    request_id: str
    method: str
    # The path and query as the sender wrote them, after redaction (still percent-encoded).
    target: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(repr=False)
    conversation: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An item as stored. `age_from` is when its age limit starts (enqueue, or a retry)."""

    seq: int
    id: str
    route: str
    tenant: str
    request_id: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(repr=False)
    conversation: str | None = None
    state: OutboxState = "pending"
    attempts: int = 0
    created_at: float = 0.0
    age_from: float = 0.0
    next_at: float = 0.0
    lease_owner: str | None = None
    lease_until: float | None = None
    last_status: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class RouteDepth:
    """Items of one route: pending (due, waiting or leased) and dead, and the oldest pending."""

    route: str
    pending: int = 0
    dead: int = 0
    # `age_from` of the oldest pending item; None when nothing is pending.
    oldest_at: float | None = None


def new_item_id() -> str:
    """A fresh outbox id: the `Idempotency-Key` of every delivery of the item."""
    return "ob_" + secrets.token_hex(16)


def conversation_key(route: str, value: str) -> str:
    """The stored form of a conversation id: a digest, so the table never holds the id itself
    (it comes from a redacted body, but a digest needs no such argument)."""
    return hashlib.sha256(f"{route}\x00{value}".encode()).hexdigest()[:32]


def encode_headers(headers: Sequence[tuple[str, str]]) -> str:
    return json.dumps([list(pair) for pair in headers], separators=(",", ":"))


def decode_headers(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(value)) for name, value in json.loads(text))


def item_from_row(row: Sequence[object]) -> OutboxItem:
    """An OutboxItem from a row of ITEM_COLUMNS."""

    def num(value: object) -> float:
        return float(value)  # type: ignore[arg-type]

    state: OutboxState = "dead" if row[10] == "dead" else "pending"
    return OutboxItem(
        seq=int(row[0]),  # type: ignore[call-overload]
        id=str(row[1]),
        route=str(row[2]),
        tenant=str(row[3]),
        request_id=str(row[4]),
        method=str(row[5]),
        target=str(row[6]),
        headers=decode_headers(str(row[7])),
        body=bytes(row[8]),  # type: ignore[call-overload]
        conversation=None if row[9] is None else str(row[9]),
        state=state,
        attempts=int(row[11]),  # type: ignore[call-overload]
        created_at=num(row[12]),
        age_from=num(row[13]),
        next_at=num(row[14]),
        lease_owner=None if row[15] is None else str(row[15]),
        lease_until=None if row[16] is None else num(row[16]),
        last_status=None if row[17] is None else int(row[17]),  # type: ignore[call-overload]
        last_error=None if row[18] is None else str(row[18]),
    )


class OutboxStore(Protocol):
    """The outbox of one vault. Every method is one transaction and raises
    VaultUnavailableError when the store is down or times out.

    Leases: `claim` gives each item to one owner until `lease_until`; `finish`, `reschedule`
    and `bury` act only while the caller still holds the lease (False: another owner took it
    after the lease ran out, and that owner now answers for the item)."""

    async def enqueue(self, item: NewItem) -> None:
        """Store `item` durably (concurrent calls are committed together)."""
        ...

    async def claim(
        self, routes: Sequence[str], owner: str, now: float, lease_s: float, limit: int
    ) -> list[OutboxItem]:
        """Lease up to `limit` due items of `routes` to `owner`, oldest first, counting an
        attempt on each. An item is not due while an older item of its conversation is
        pending, nor while another owner's lease on it runs."""
        ...

    async def finish(self, item_id: str, owner: str) -> bool:
        """Delivered: remove the item."""
        ...

    async def reschedule(
        self, item_id: str, owner: str, next_at: float, status: int | None, error: str | None
    ) -> bool:
        """Try again at `next_at`; the lease ends."""
        ...

    async def bury(self, item_id: str, owner: str, status: int | None, error: str | None) -> bool:
        """Move the item to the dead-letter state; the lease ends."""
        ...

    async def release(self, owner: str) -> int:
        """End every lease `owner` holds (a clean stop); returns how many."""
        ...

    async def depth(self) -> list[RouteDepth]:
        """Pending and dead items per route."""
        ...

    async def items(self, state: OutboxState, route: str | None, limit: int) -> list[OutboxItem]:
        """Items in `state` (of `route`, if given), oldest first."""
        ...

    async def item(self, item_id: str) -> OutboxItem | None:
        """One item, or None."""
        ...

    async def revive(self, item_id: str | None, route: str | None, now: float) -> int:
        """Make items due now with their attempts and age counted afresh: the one `item_id`
        (pending or dead), or every dead item (of `route`, if given). Returns how many."""
        ...

    async def drop(self, item_id: str | None, route: str | None) -> int:
        """Delete the item `item_id`, or every dead item (of `route`, if given)."""
        ...
