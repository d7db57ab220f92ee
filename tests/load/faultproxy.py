"""A TCP fault proxy for tests: it sits in front of PostgreSQL or an upstream on 127.0.0.1.

Modes: `pass` (pipe bytes both ways), `refuse` (stop listening: a connect gets ECONNREFUSED),
`hang` (accept, then stall: no byte moves either way on any connection until `resume`), and
the action `cut` (abort every live connection with a reset). `resume` goes back to `pass` and
lets stalled connections move again. It never touches the server behind it: the shared
PostgreSQL server stays up, only the path to it breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

HOST = "127.0.0.1"
_CHUNK = 64 * 1024


@dataclass(eq=False)  # compared and hashed by identity: kept in a set
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None:
                writer.transport.abort()


class FaultProxy:
    """`async with FaultProxy(target_port) as proxy:` then point the client at `proxy.port`."""

    def __init__(self, target_port: int, target_host: str = HOST) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode = "pass"
        self.accepted = 0  # connections accepted, for tests that want to see traffic
        self.cut_count = 0  # connections aborted by `cut`
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def __aenter__(self) -> FaultProxy:
        await self._listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def refuse(self) -> None:
        """New connections are refused (nothing listens); live ones go on."""
        self.mode = "refuse"
        self._flowing.set()
        await self._stop_listening()

    def hang(self) -> None:
        """Connections are accepted and every byte stalls, on new and live connections."""
        self.mode = "hang"
        self._flowing.clear()

    def cut(self) -> int:
        """Abort every live connection (a reset); the mode stays as it is. Returns how many."""
        links = list(self._links)
        for link in links:
            link.abort()
        self.cut_count += len(links)
        return len(links)

    async def resume(self) -> None:
        """Back to passing bytes: listen again if refusing, let stalled bytes move."""
        self.mode = "pass"
        if self._server is None:
            await self._listen()
        self._flowing.set()

    async def close(self) -> None:
        await self._stop_listening()
        self._flowing.set()
        for link in list(self._links):
            link.abort()
            for task in link.tasks:
                task.cancel()
        for link in list(self._links):
            await asyncio.gather(*link.tasks, return_exceptions=True)
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        try:
            await self._flowing.wait()
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            link.server = up_writer
            link.tasks = [
                asyncio.create_task(self._pipe(reader, up_writer, link)),
                asyncio.create_task(self._pipe(up_reader, writer, link)),
            ]
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            self._links.discard(link)
            link.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                await self._flowing.wait()
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            link.abort()  # one side broke: so does the other, as on a real path
