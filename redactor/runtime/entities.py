"""Detection's entity names and the vault's token types, both ways: one table."""

from __future__ import annotations

from types import MappingProxyType

from redactor.detection import CREDIT_CARD, US_SSN
from redactor.runtime.metrics import Metrics
from vault import EntityType, Vault

VAULT_ENTITY = MappingProxyType({CREDIT_CARD: EntityType.CARD, US_SSN: EntityType.SSN})
DETECTION_ENTITY = MappingProxyType({v: k for k, v in VAULT_ENTITY.items()})


class VaultAdapter:
    """Speaks detection's entity names to the vault (`CREDIT_CARD` -> `card`)."""

    def __init__(self, vault: Vault, metrics: Metrics | None = None) -> None:
        self._vault = vault
        self._metrics = metrics

    async def tokenize_many(self, tenant: str, items: list[tuple[str, str]]) -> list[object]:
        pairs = [(VAULT_ENTITY[e], v) for e, v in items]
        if self._metrics is None:
            return list(await self._vault.tokenize_many(tenant, pairs))
        async with self._metrics.vault_call("tokenize"):
            return list(await self._vault.tokenize_many(tenant, pairs))
