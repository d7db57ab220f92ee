"""A local stand-in for the Zendesk Support API, built from its documented shapes.

- `GET /api/v2/incremental/tickets/cursor.json?start_time=T|cursor=C`: `tickets`,
  `after_cursor`, `end_of_stream` (two tickets a page here).
- `GET /api/v2/tickets/{id}/comments.json[?page=N]`: `comments` (`id`, `body`, `html_body`,
  `public`, `author_id`), `next_page` as an absolute URL or null (two comments a page).
- `PUT /api/v2/comment_redactions/{comment_id}` with `{"ticket_id", "html_body"}`: the
  html_body must be the stored one with some text wrapped in `<redact>`; each wrapped character
  becomes `▇`. Anything else changed in the markup is refused (400), as it would be a rewrite.
- `after_cursor` values may end in `cursor_tail` (base64's `+`, `/`, `=`); `next_page` links
  may name another host (`next_page_host`), as Zendesk's name its own behind a proxy.
- Basic auth `email/token:api_token`; 429 with `Retry-After` on request; a comment whose
  redaction fails (422); an export page that fails once (500), for a run killed midway.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

EMAIL = "agent@example.com"
API_TOKEN = "stand-in-token"
_REDACT = re.compile(r"<redact>(.*?)</redact>", re.DOTALL)


@dataclass
class Standin:
    # ticket id -> comments (dicts as the API returns them)
    tickets: dict[int, list[dict[str, Any]]]
    rate_limit_on: set[str] = field(default_factory=set)  # paths answered 429 once
    refuse_redaction_of: set[int] = field(default_factory=set)
    subjects: dict[int, str] = field(default_factory=dict)  # ticket id -> subject
    forbid_redactions: bool = False  # an agent not allowed to redact: 403 for every comment
    fail_export_cursor_once: str | None = None
    redactions: dict[int, int] = field(default_factory=dict)  # comment id -> times redacted
    export_queries: list[str] = field(default_factory=list)
    rate_limited: int = 0
    original: dict[int, str] = field(default_factory=dict)
    # Real cursors are base64 (`MTU3NjYxMzUzOS4wfHw0Njd8`): set e.g. "+/==" to end each with
    # characters a query string must encode.
    cursor_tail: str = ""
    # The host `next_page` links name (Zendesk names its own, whatever address was called).
    next_page_host: str | None = None
    hosts_called: set[str] = field(default_factory=set)
    # Called with the comment id once a redaction is stored, before the answer is sent.
    on_redaction: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        for comments in self.tickets.values():
            for c in comments:
                self.original[c["id"]] = c["html_body"]

    def comment(self, comment_id: int) -> dict[str, Any]:
        return next(c for cs in self.tickets.values() for c in cs if c["id"] == comment_id)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/api/v2/incremental/tickets/cursor.json", self._export)
        app.router.add_get("/api/v2/tickets/{ticket}/comments.json", self._comments)
        app.router.add_put("/api/v2/comment_redactions/{comment}", self._redact)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(f"{EMAIL}/token:{API_TOKEN}".encode()).decode()
        self.hosts_called.add(request.host)
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "Couldn't authenticate you"}, status=401)
        if request.path in self.rate_limit_on:
            self.rate_limit_on.discard(request.path)
            self.rate_limited += 1
            return web.json_response(
                {"error": "APIRateLimitExceeded"}, status=429, headers={"Retry-After": "0"}
            )
        return await handler(request)

    async def _export(self, request: web.Request) -> web.Response:
        self.export_queries.append(request.query_string)
        cursor = request.query.get("cursor")
        if cursor is not None and cursor == self.fail_export_cursor_once:
            self.fail_export_cursor_once = None
            return web.json_response({"error": "InternalError"}, status=500)
        if cursor is not None and not (
            cursor.startswith("c") and cursor.endswith(self.cursor_tail)
        ):
            return web.json_response({"error": "InvalidPaginationParameter"}, status=400)
        start = int(cursor[1 : len(cursor) - len(self.cursor_tail)]) if cursor else 0
        ids = sorted(self.tickets)
        page = ids[start : start + 2]
        after = f"c{start + 2}{self.cursor_tail}"
        return web.json_response(
            {
                "tickets": [
                    {"id": i, "subject": self.subjects.get(i, "s"), "status": "open"} for i in page
                ],
                "after_cursor": after,
                "before_cursor": f"c{start}",
                "after_url": str(request.url.with_query({"cursor": after})),
                "end_of_stream": start + 2 >= len(ids),
            }
        )

    async def _comments(self, request: web.Request) -> web.Response:
        ticket = int(request.match_info["ticket"])
        if ticket not in self.tickets:
            return web.json_response({"error": "RecordNotFound"}, status=404)
        page = int(request.query.get("page", "1"))
        comments = self.tickets[ticket][(page - 1) * 2 : page * 2]
        more = page * 2 < len(self.tickets[ticket])
        url = request.url.with_query({"page": str(page + 1)})
        if self.next_page_host is not None:
            url = url.with_host(self.next_page_host).with_port(None).with_scheme("https")
        next_page = str(url) if more else None
        return web.json_response(
            {"comments": comments, "next_page": next_page, "count": len(self.tickets[ticket])}
        )

    async def _redact(self, request: web.Request) -> web.Response:
        comment_id = int(request.match_info["comment"])
        payload = await request.json()
        comment = self.comment(comment_id)
        if self.forbid_redactions:
            return web.json_response({"error": "Forbidden"}, status=403)
        if comment_id in self.refuse_redaction_of:
            return web.json_response({"error": "RecordInvalid"}, status=422)
        new = payload.get("html_body", "")
        if _REDACT.sub(lambda m: m.group(1), new) != comment["html_body"]:
            return web.json_response({"error": "the markup changed beyond <redact>"}, status=400)
        self.redactions[comment_id] = self.redactions.get(comment_id, 0) + 1
        comment["html_body"] = _REDACT.sub(lambda m: "▇" * len(m.group(1)), new)
        comment["body"] = re.sub(r"<[^>]+>", "", comment["html_body"])
        if self.on_redaction is not None:
            self.on_redaction(comment_id)
        return web.json_response({"comment": comment})
