"""A local stand-in for the Slack Web API, built from its documented shapes.

- Every answer is HTTP 200 with the `{"ok": true, ...}` / `{"ok": false, "error": code}`
  envelope; `Authorization: Bearer TOKEN` or `invalid_auth`; HTTP 429 with `Retry-After`
  (and `{"ok": false, "error": "ratelimited"}`) on request, once per method named; the same
  envelope with HTTP 200 and `Retry-After` (`ratelimited_in_body_once`).
- `auth.test`: `url`, `team_id`, `user_id` of the token's (bot) user.
- `conversations.history?channel&limit&oldest&latest&inclusive&cursor`: top-level messages
  newest first, `has_more`, `response_metadata.next_cursor` (base64 of `next_ts:TS`, as
  Slack's look; "" at the end). Thread replies are not listed here.
- `conversations.replies?channel&ts&limit&cursor`: the parent first, then its replies oldest
  first, paginated the same way; `thread_not_found` for an unknown thread.
- `chat.update` (JSON body `channel`, `ts`, `text`, `blocks`, `attachments`): only the bot's
  own messages (`cant_update_message` otherwise), `edit_window_closed` for messages named,
  `message_not_found`; blocks given replace the stored ones, blocks left out are dropped
  when `text` is given (the current documented behaviour); attachments left out are kept.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "xoxb-stand-in-0001"
TEAM_ID = "T0ACME"
BOT_USER = "U0BOT"
WORKSPACE_URL = "https://acme.slack.com/"


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, fraction = ts.partition(".")
    return int(seconds), int(fraction.ljust(9, "0"))


def _encode_cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _decode_cursor(cursor: str) -> str:
    return base64.b64decode(cursor).decode().removeprefix("next_ts:")


@dataclass
class SlackStandin:
    channel: str
    # ts -> message dict (top-level messages and replies; replies carry `thread_ts`)
    messages: dict[str, dict[str, Any]]
    rate_limit_once: set[str] = field(default_factory=set)  # method names
    retry_after: str = "0"
    # Method names answered HTTP 200 `{"ok": false, "error": "ratelimited"}` once.
    ratelimited_in_body_once: set[str] = field(default_factory=set)
    edit_window_closed: set[str] = field(default_factory=set)
    fail_history_once_at: str | None = None  # a `latest` or cursor ts answered HTTP 500 once
    updates: dict[str, int] = field(default_factory=dict)  # ts -> times updated
    history_queries: list[dict[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    on_update: Callable[[str], None] | None = None
    original: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.original = copy.deepcopy(self.messages)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._envelope])
        for method, handler in (
            ("auth.test", self._auth_test),
            ("conversations.history", self._history),
            ("conversations.replies", self._replies),
            ("chat.update", self._update),
        ):
            app.router.add_route("*", f"/api/{method}", handler)
        return app

    @web.middleware
    async def _envelope(self, request: web.Request, handler: Any) -> web.StreamResponse:
        method = request.path.removeprefix("/api/")
        self.requests.append(method)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method in self.rate_limit_once:
            self.rate_limit_once.discard(method)
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": self.retry_after},
            )
        if method in self.ratelimited_in_body_once:
            self.ratelimited_in_body_once.discard(method)
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, headers={"Retry-After": self.retry_after}
            )
        return await handler(request)

    def _top_level(self) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages.values()
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]

    @staticmethod
    def _page(
        ordered: list[dict[str, Any]], limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str]:
        if cursor:
            start_ts = _decode_cursor(cursor)
            index = next(i for i, m in enumerate(ordered) if m["ts"] == start_ts)
            ordered = ordered[index:]
        page, rest = ordered[:limit], ordered[limit:]
        return page, _encode_cursor(rest[0]["ts"]) if rest else ""

    async def _auth_test(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "url": WORKSPACE_URL,
                "team": "Acme",
                "user": "redactor",
                "team_id": TEAM_ID,
                "user_id": BOT_USER,
            }
        )

    async def _history(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.history_queries.append(q)
        if q.get("channel") != self.channel:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        marker = q.get("latest") or (_decode_cursor(q["cursor"]) if "cursor" in q else None)
        if marker is not None and marker == self.fail_history_once_at:
            self.fail_history_once_at = None
            return web.Response(status=500, text="internal error")
        inclusive = q.get("inclusive") in ("true", "1")
        oldest, latest = q.get("oldest"), q.get("latest")

        def within(ts: str) -> bool:
            key = _ts_key(ts)
            if oldest is not None:
                low = _ts_key(oldest)
                if key < low or (key == low and not inclusive):
                    return False
            if latest is not None:
                high = _ts_key(latest)
                if key > high or (key == high and not inclusive):
                    return False
            return True

        ordered = sorted(
            (m for m in self._top_level() if within(m["ts"])),
            key=lambda m: _ts_key(m["ts"]),
            reverse=True,
        )
        page, next_cursor = self._page(ordered, int(q.get("limit", "100")), q.get("cursor"))
        return web.json_response(
            {
                "ok": True,
                "messages": copy.deepcopy(page),
                "has_more": bool(next_cursor),
                "pin_count": 0,
                "response_metadata": {"next_cursor": next_cursor},
            }
        )

    async def _replies(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        parent = self.messages.get(q.get("ts", ""))
        if q.get("channel") != self.channel or parent is None:
            return web.json_response({"ok": False, "error": "thread_not_found"})
        thread = sorted(
            (m for m in self.messages.values() if m.get("thread_ts") == parent["ts"]),
            key=lambda m: _ts_key(m["ts"]),
        )
        page, next_cursor = self._page(thread, int(q.get("limit", "100")), q.get("cursor"))
        return web.json_response(
            {
                "ok": True,
                "messages": copy.deepcopy(page),
                "has_more": bool(next_cursor),
                "response_metadata": {"next_cursor": next_cursor},
            }
        )

    async def _update(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self.messages.get(body.get("ts", ""))
        if body.get("channel") != self.channel:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if message is None:
            return web.json_response({"ok": False, "error": "message_not_found"})
        if message.get("user") != BOT_USER:
            return web.json_response({"ok": False, "error": "cant_update_message"})
        if message["ts"] in self.edit_window_closed:
            return web.json_response({"ok": False, "error": "edit_window_closed"})
        if "text" in body:
            message["text"] = body["text"]
            if "blocks" not in body:
                message.pop("blocks", None)
        if "blocks" in body:
            message["blocks"] = body["blocks"]
        if "attachments" in body:
            message["attachments"] = body["attachments"]
        message["edited"] = {"user": BOT_USER, "ts": "1800000000.000000"}
        self.updates[message["ts"]] = self.updates.get(message["ts"], 0) + 1
        if self.on_update is not None:
            self.on_update(message["ts"])
        return web.json_response(
            {"ok": True, "channel": self.channel, "ts": message["ts"], "text": message["text"]}
        )
