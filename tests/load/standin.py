"""A stand-in upstream (the helpdesk) that records every request and misbehaves on demand.

It listens on a fixed 127.0.0.1 port so that `refuse` can stop listening and `resume` can
listen again where the proxy expects it. Modes: `ok` (200), `hang` (hold the request until
`resume` or `hang_s`), `error` (500), `throttle` (429 with Retry-After), `cut` (the
connection closes before the answer, or after its status line and part of its body). Every request is recorded with the
answer it got, so a test can count deliveries per message and per idempotency key.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field

from aiohttp import web

HOST = "127.0.0.1"
ANSWERED_OK = 200


@dataclass(frozen=True)
class Received:
    """One request as the upstream got it, and what it answered (0: no answer)."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answer: int

    @property
    def message_id(self) -> str | None:
        return self.headers.get("x-load-message")

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class StandInUpstream:
    """`await upstream.start()`, point routes at `upstream.url`, `await upstream.stop()`."""

    port: int = field(default_factory=free_port)
    mode: str = "ok"
    retry_after_s: int = 1
    hang_s: float = 30.0
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None
    _resumed: asyncio.Event = field(default_factory=asyncio.Event)
    _cuts: int = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a hanging handler ends when its client goes away.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, HOST, self.port, reuse_address=True)
        await self._site.start()

    async def stop(self) -> None:
        self._resumed.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def set_mode(self, mode: str) -> None:
        """`ok`, `refuse`, `hang`, `error`, `throttle` or `cut`."""
        assert mode in ("ok", "refuse", "hang", "error", "throttle", "cut"), mode
        if mode == "refuse" and self._site is not None:
            await self._site.stop()  # stops listening; requests in progress still finish
            self._site = None
            # A helpdesk that is down keeps no connection open: idle keep-alive ones close.
            assert self._runner is not None
            assert self._runner.server is not None
            for connection in list(self._runner.server.connections):
                connection.close()
        if mode != "refuse" and self._site is None:
            await self._listen()
        if mode == "hang":
            self._resumed.clear()
        else:
            self._resumed.set()
        self.mode = mode

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "refuse" and request.transport is not None:
            # Raced the close of its connection: reset, as a closed port would (not handled).
            request.transport.abort()
            return web.Response(status=503)
        body = await request.read()
        mode = self.mode
        answer = {"ok": 200, "hang": 200, "error": 500, "throttle": 429, "cut": 0}.get(mode, 200)
        record = Received(
            time.monotonic(),
            request.method,
            request.path_qs,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            answer,
        )
        if mode == "hang":
            try:
                await asyncio.wait_for(self._resumed.wait(), self.hang_s)
            except TimeoutError:
                pass
            except asyncio.CancelledError:
                # Its client gave up (handler_cancellation): it got the bytes, never an answer.
                self.received.append(_unanswered(record))
                raise
        if mode == "cut":
            # Every other request loses its answer whole; the others get the status line and
            # part of the body before the connection goes (the status was said: it counts).
            self._cuts += 1
            assert request.transport is not None
            if self._cuts % 2:
                self.received.append(record)
                request.transport.abort()
                return web.Response(status=200)
            self.received.append(_answered(record, 200))
            response = web.StreamResponse(status=200, headers={"Content-Length": "100"})
            await response.prepare(request)
            await response.write(b'{"status": "rec')
            request.transport.abort()
            return response
        self.received.append(record)
        if mode == "error":
            return web.json_response({"error": "internal"}, status=500)
        if mode == "throttle":
            return web.json_response(
                {"error": "rate_limited"},
                status=429,
                headers={"Retry-After": str(self.retry_after_s)},
            )
        return web.json_response({"status": "received"}, status=200)

    def delivered(self) -> list[Received]:
        """The requests it answered with a 2xx."""
        return [r for r in self.received if 200 <= r.answer < 300]


def _unanswered(record: Received) -> Received:
    return _answered(record, 0)


def _answered(record: Received, status: int) -> Received:
    return Received(record.at, record.method, record.path, record.headers, record.body, status)
