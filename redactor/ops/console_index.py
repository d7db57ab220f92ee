"""The console's side of the index worker (`redactor.ops.index_worker`): one child process per
server process, started at the first console request, asked one question at a time over its
stdin and stdout. The event loop only writes the question and reads the answer's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

REQUEST_TIMEOUT_S = 600.0  # a first build of a large trail takes a while; then milliseconds


class IndexUnavailableError(Exception):
    """The index worker could not answer (it failed to start, died, or took too long)."""


class IndexClient:
    """Asks the index worker; starts it (again) when needed."""

    def __init__(self, key: bytes, audit_log: Path) -> None:
        self._key = key
        self._audit_log = audit_log
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> asyncio.subprocess.Process:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            return proc
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "redactor.ops.index_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        setup = {"key": self._key.hex(), "audit_log": str(self._audit_log)}
        await self._send(proc, setup)
        return proc

    @staticmethod
    async def _send(proc: asyncio.subprocess.Process, doc: dict[str, Any]) -> None:
        assert proc.stdin is not None  # noqa: S101 - started with a pipe
        data = json.dumps(doc).encode()
        proc.stdin.write(b"%d\n" % len(data) + data)
        await proc.stdin.drain()

    @staticmethod
    async def _frame(proc: asyncio.subprocess.Process) -> bytes:
        assert proc.stdout is not None  # noqa: S101 - started with a pipe
        size = await proc.stdout.readline()
        if not size:
            raise IndexUnavailableError("the index worker exited")
        return await proc.stdout.readexactly(int(size))

    async def ask(self, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """(meta, body) of one answer. Raises IndexUnavailableError."""
        async with self._lock:
            try:
                proc = await self._started()
                await self._send(proc, request)
                meta = await asyncio.wait_for(self._frame(proc), REQUEST_TIMEOUT_S)
                body = await asyncio.wait_for(self._frame(proc), REQUEST_TIMEOUT_S)
            except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
                await self.close()
                raise IndexUnavailableError(str(exc)) from None
            except IndexUnavailableError:
                await self.close()
                raise
            return json.loads(meta), body

    async def close(self) -> None:
        """Stop the worker (closing its stdin ends it; a stuck one is killed)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
