"""Queued routes, the request side: what goes into the outbox, and when a route says 503.

`delivery: queued` routes redact as every route does, then store the redacted request in the
vault's outbox and answer 202; `delivery.py` delivers it later. Here: the item built from the
request, the conversation it belongs to, Slack's URL check (answered synchronously), and the
back-pressure gate, which compares the depth last read from the database with the route's
high-water marks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redactor.errors import RedactorError
from redactor.ingress.config import RouteSettings
from vault.outbox import NewItem, RouteDepth, conversation_key, new_item_id

# A conversation pointer is read from bodies up to this size on the loop (json.loads is C; a
# webhook is a few KB). A larger body is queued without a conversation: no order is kept.
CONVERSATION_MAX_BODY_BYTES = 1024 * 1024


class OutboxFullError(RedactorError):
    """The route's outbox is above its high-water mark: the sender should try again later."""

    status = 503
    code = "outbox_full"
    message = "too many messages are waiting for delivery on this route; try again later"
    retry_after_s = 30


class OutboxUnavailableError(RedactorError):
    """The outbox could not take the message (database down or slow): nothing was accepted."""

    status = 503
    code = "outbox_unavailable"
    message = "the message could not be queued; try again later"
    retry_after_s = 5


def new_item(
    route: RouteSettings,
    request_id: str,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    content_type: str | None,
    now: float,
) -> NewItem:
    """The outbox item of a redacted request (everything in it has been through redaction)."""
    conversation = None
    pointer = route.delivery.conversation
    if pointer is not None:
        value = conversation_of(pointer, body, content_type)
        if value is not None:
            conversation = conversation_key(route.name, value)
    return NewItem(
        id=new_item_id(),
        route=route.name,
        tenant=route.tenant,
        request_id=request_id,
        method=method,
        target=target,
        headers=tuple(headers),
        body=body,
        conversation=conversation,
        created_at=now,
    )


def _json_body(body: bytes, content_type: str | None) -> Any:
    if content_type is not None and "json" not in content_type.lower():
        return None
    if len(body) > CONVERSATION_MAX_BODY_BYTES:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def conversation_of(pointer: str, body: bytes, content_type: str | None) -> str | None:
    """The value at `pointer` (RFC 6901) in a JSON body, as text; None if there is none."""
    node = _json_body(body, content_type)
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    if isinstance(node, bool) or node is None or isinstance(node, dict | list):
        return None
    return str(node)


def is_url_verification(body: bytes, content_type: str | None) -> bool:
    """Slack's Events API handshake (`{"type": "url_verification", "challenge": ...}`): its
    answer must carry the challenge back, so it is forwarded synchronously even on a queued
    route."""
    if b"url_verification" not in body:
        return False
    doc = _json_body(body, content_type)
    return isinstance(doc, dict) and doc.get("type") == "url_verification"


@dataclass(slots=True)
class OutboxDepth:
    """What each queued route's outbox held at the last read, plus what this process queued
    since: the back-pressure gate (no query per request) and the source of /readyz."""

    routes: dict[str, RouteSettings]
    read: dict[str, RouteDepth] = field(default_factory=dict)
    added: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, routes: Sequence[RouteSettings]) -> OutboxDepth:
        return cls({r.name: r for r in routes if r.delivery.queued})

    def pending(self, route: str) -> int:
        found = self.read.get(route)
        return (found.pending if found is not None else 0) + self.added[route]

    def oldest_age_s(self, route: str, now: float) -> float:
        found = self.read.get(route)
        if found is None or found.oldest_at is None:
            return 0.0
        return max(0.0, now - found.oldest_at)

    def check(self, route: RouteSettings, now: float) -> None:
        """Raises OutboxFullError when `route` is at or above a high-water mark."""
        delivery = route.delivery
        if delivery.high_water_items is not None and (
            self.pending(route.name) >= delivery.high_water_items
        ):
            raise OutboxFullError()
        if delivery.high_water_age_s is not None and (
            self.oldest_age_s(route.name, now) >= delivery.high_water_age_s
        ):
            raise OutboxFullError()

    def accepting(self, route: str, now: float) -> bool:
        try:
            self.check(self.routes[route], now)
        except OutboxFullError:
            return False
        return True

    def enqueued(self, route: str) -> None:
        self.added[route] += 1

    def update(self, depths: Sequence[RouteDepth]) -> None:
        """A fresh read from the database (it counts what this process queued before it)."""
        self.read = {d.route: d for d in depths}
        self.added.clear()

    def report(self, now: float) -> dict[str, dict[str, Any]]:
        """Per queued route: pending, dead, the oldest pending item's age, and whether it
        takes messages (below its high-water marks)."""
        report: dict[str, dict[str, Any]] = {}
        for name in self.routes:
            found = self.read.get(name)
            report[name] = {
                "pending": self.pending(name),
                "dead": found.dead if found is not None else 0,
                "oldest_age_s": round(self.oldest_age_s(name, now), 3),
                "accepting": self.accepting(name, now),
            }
        return report
