"""The agent side's share of the run-time resources: its settings, the JWT verifier, the
reveal policy and the pipeline that tokenises answers from outbound routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiohttp import web

from redactor.agent.auth import TokenVerifier
from redactor.agent.config import AgentSettings
from redactor.agent.policy import CountedElsewhere, PolicyStore
from redactor.agent.revocations import RevocationWatch
from redactor.detection import Detector
from redactor.runtime import SharedHandles, SharedResources

log = structlog.get_logger()


class AnswerRedactor(Protocol):
    """Tokenises an answer body (the composition root hands in the ingress pipeline)."""

    async def redact(
        self,
        body: bytes,
        *,
        content_type: str | None,
        content_encoding: str | None,
        tenant: str,
        unknown_types: str,
        max_decoded_bytes: int,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class AgentResources(SharedHandles):
    """What the agent API shares: the JWT verifier, the reveal policy, the outbound pipeline."""

    shared: SharedResources
    settings: AgentSettings
    verifier: TokenVerifier
    policies: PolicyStore
    # Scrubs callers' free text (purposes) before the audit log.
    detector: Detector
    # Redacts answers that come back through outbound routes.
    outbound_pipeline: AnswerRedactor
    # This process's copy of the revocation list (polled in the background; close it).
    revocations: RevocationWatch


async def open_agent(
    shared: SharedResources,
    settings: AgentSettings,
    detector: Detector,
    outbound_pipeline: AnswerRedactor,
) -> AgentResources:
    """Load the policy, start the JWT verifier and load the revocation list. PolicyFileError
    (a ConfigError naming file, line and reason) or a VaultError stops the start; the caller
    closes `revocations` when it is done."""
    # Full reveals are counted in the vault's database after deciding (one window per subject
    # for every worker and replica), not in this process.
    policies = PolicyStore(settings.policy_path, limiter=CountedElsewhere())
    verifier = TokenVerifier(settings.auth, session=shared.session)
    await verifier.start()
    revocations = RevocationWatch(
        shared.vault.store,
        poll_interval_s=settings.revocations.poll_interval_s,
        timeout_s=shared.vault_timeout_s,
    )
    # Last: nothing after it can fail and leave its task running.
    await revocations.start()
    log.info(
        "agent_api_ready",
        policy=str(settings.policy_path),
        outbound=[r.name for r in settings.outbound],
    )
    return AgentResources(
        shared, settings, verifier, policies, detector, outbound_pipeline, revocations
    )


AGENT = web.AppKey("agent", AgentResources)
