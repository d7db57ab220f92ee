"""The handles both sides use, opened once by the composition root (`redactor.resources`)."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from redactor.audit import AuditSink
from redactor.runtime.metrics import Metrics
from vault import Vault


@dataclass(frozen=True, slots=True)
class SharedResources:
    """The vault, the upstream HTTP session, this process's audit sink and metrics, and the
    timeouts every call to the vault or an upstream obeys."""

    vault: Vault
    session: aiohttp.ClientSession
    audit: AuditSink
    metrics: Metrics
    vault_timeout_s: float = 2.0
    upstream_timeout_s: float = 30.0
    upstream_connect_timeout_s: float = 5.0


class SharedHandles:
    """Short names for the shared handles, for a resources object that holds `shared`."""

    __slots__ = ()
    shared: SharedResources

    @property
    def vault(self) -> Vault:
        return self.shared.vault

    @property
    def session(self) -> aiohttp.ClientSession:
        return self.shared.session

    @property
    def audit(self) -> AuditSink:
        return self.shared.audit

    @property
    def metrics(self) -> Metrics:
        return self.shared.metrics
