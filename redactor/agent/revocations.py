"""Each server process's copy of the revocation list, kept fresh off the request path.

A task polls the list's version counter in the vault's database every `poll_interval_s`
(one row, one cheap read) and reloads the entries when it moved; a request checks the
caller against the copy in memory (two dict lookups). The promise (README, "Revoking agent
tokens"): a token revoked at time T is refused by every worker of every replica from
T + REVOCATION_DELAY_S on. A copy counts as fresh from the moment its poll *started* (what
it read was committed before that), and once it is older than the delay, because the
database does not answer, agent calls fail closed with 503 rather than honour a token that
may have been revoked meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from redactor.errors import RedactorError
from vault.errors import VaultError, VaultUnavailableError
from vault.revocations import PURGE_AFTER_S, REVOCATION_DELAY_S, RevocationKind, RevocationSet
from vault.stores.base import TokenStore

log = structlog.get_logger()

# Entries expired for a day are deleted by a running server at most this often.
PURGE_INTERVAL_S = 300.0


class RevocationsUnavailableError(RedactorError):
    """This process could not read the revocation list for longer than the delay."""

    status = 503
    code = "revocations_unavailable"
    message = "the revocation list cannot be read; agent calls are refused until it can"


class RevocationWatch:
    """The revocation list as this process knows it. `await start()` once (it loads the list
    or raises a VaultError), `check` per request, `await close()` at shutdown."""

    def __init__(
        self,
        store: TokenStore,
        *,
        poll_interval_s: float,
        timeout_s: float,
        delay_s: float = REVOCATION_DELAY_S,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._interval_s = poll_interval_s
        # A poll that hangs must not outlive the delay: it would keep an old copy "fresh".
        self._timeout_s = min(timeout_s, delay_s / 2)
        self._delay_s = delay_s
        self._now = now
        self._monotonic = monotonic
        self._entries = RevocationSet()
        self._version: int | None = None
        self._fresh_at = float("-inf")
        self._purged_at = float("-inf")
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def entries(self) -> RevocationSet:
        """The entries in force as last read."""
        return self._entries

    async def start(self) -> None:
        """Load the list, then poll it in the background. Raises VaultError if the first
        load fails (the server does not start without its revocation list)."""
        try:
            await self.poll()
        except TimeoutError:
            raise VaultUnavailableError("the revocation list could not be read in time") from None
        self._task = asyncio.create_task(self._run(), name="revocation poll")

    async def close(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def check(self, jti: str | None, tenant: str, subject: str) -> RevocationKind | None:
        """Which entry refuses this caller (`jti` or `subject`), or None.

        Raises RevocationsUnavailableError when the copy is older than the delay."""
        if self._monotonic() - self._fresh_at > self._delay_s:
            raise RevocationsUnavailableError()
        return self._entries.match(jti, tenant, subject, self._now())

    async def poll(self) -> None:
        """Read the version counter, and the entries if it moved. Raises VaultError or
        TimeoutError; the copy stays as it was then (and ages)."""
        started = self._monotonic()
        async with asyncio.timeout(self._timeout_s):
            version = await self._store.revocation_version()
            if version != self._version:
                # Counter first, entries second: a change committed in between is read now
                # and read again at the next poll (the counter moved), never missed.
                entries = await self._store.read_revocations(int(self._now()))
                self._entries = RevocationSet.of(entries)
                self._version = version
                log.info("revocations_loaded", entries=len(self._entries), version=version)
        self._fresh_at = started

    async def _purge(self) -> None:
        if self._monotonic() - self._purged_at < PURGE_INTERVAL_S:
            return
        self._purged_at = self._monotonic()
        async with asyncio.timeout(self._timeout_s):
            purged = await self._store.purge_revocations(int(self._now()) - PURGE_AFTER_S)
        if purged:
            log.info("revocations_purged", entries=purged)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.poll()
            except (VaultError, TimeoutError) as exc:
                if not self._failing:
                    code = exc.code if isinstance(exc, VaultError) else "timeout"
                    log.error("revocations_poll_failed", error=code)  # noqa: TRY400 - typed, opaque
                self._failing = True
                continue
            if self._failing:
                log.info("revocations_poll_recovered")
                self._failing = False
            try:
                await self._purge()
            except (VaultError, TimeoutError):
                log.warning("revocations_purge_failed")
