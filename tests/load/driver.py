"""The load driver: messages through the proxy at a fixed concurrency, bounded in count and
time, stopping by itself.

Each message is sent once (no sender retry: what a sender would do with an error answer is
its own business, and the suites count those answers apart). Optionally paced (`rate`
messages per second at most), so a fault injected at a point in time falls in the middle of
the load, not after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

from tests.load.messages import Message

CONCURRENCY = 64


@dataclass(frozen=True)
class Outcome:
    """What the sender of one message saw: the status (0: no answer) and when."""

    message_id: str
    status: int
    error: str | None  # the answer's error code, or the exception's class without one
    started: float
    ended: float


@dataclass
class Load:
    """One load run: `await load.run()` sends every message once and returns the outcomes."""

    messages: Sequence[Message]
    urls: Sequence[str]  # round robin over these (replicas)
    concurrency: int = CONCURRENCY
    rate: float | None = None  # messages started per second at most
    request_timeout_s: float = 15.0
    deadline_s: float = 120.0
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    async def run(self) -> dict[str, Outcome]:
        queue: asyncio.Queue[tuple[int, Message]] = asyncio.Queue()
        for n, message in enumerate(self.messages):
            queue.put_nowait((n, message))
        begun = time.monotonic()
        connector = TCPConnector(limit=self.concurrency, force_close=False)
        timeout = ClientTimeout(total=self.request_timeout_s)
        async with ClientSession(connector=connector, timeout=timeout) as session:

            async def worker() -> None:
                while not queue.empty():
                    n, message = queue.get_nowait()
                    if self.rate:
                        await asyncio.sleep(max(0.0, begun + n / self.rate - time.monotonic()))
                    await self._send(session, self.urls[n % len(self.urls)], message)

            workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
            try:
                async with asyncio.timeout(self.deadline_s):
                    await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        return self.outcomes

    async def _send(self, session: ClientSession, url: str, message: Message) -> None:
        started = time.monotonic()
        status, error = 0, None
        try:
            async with session.post(url, data=message.body, headers=message.headers) as r:
                status = r.status
                if status >= 400:
                    try:
                        error = (await r.json()).get("error")
                    except (ValueError, ClientError):
                        error = None
                else:
                    await r.read()
        except (ClientError, OSError, TimeoutError) as exc:
            status, error = 0, type(exc).__name__
        self.outcomes[message.id] = Outcome(message.id, status, error, started, time.monotonic())

    def statuses(self) -> Counter[int]:
        return Counter(o.status for o in self.outcomes.values())
