"""Backfill fixtures: a real SQLite vault and audit key in tmp_path, and a runner for
`redact_files` that captures standard output and error."""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from redactor.backfill.run import AuditTarget, RedactRequest, TokenVault, redact_files
from vault.config import Secret, VaultConfig
from vault.keyring import generate_key_material, write_key_file
from vault.startup import open_vault

# Distinctive test values as they are written in the inputs, and their vault digits.
CARD = "4111 1111 1111 1111"
CARD_2 = "5555-5555-5555-4444"
SSN = "219-09-9999"
DIGITS = {CARD: "4111111111111111", CARD_2: "5555555555554444", SSN: "219099999"}
TENANT = "acme"


@dataclass
class Outcome:
    code: int
    stdout: bytes
    stderr: str


@dataclass
class Store:
    """A vault (created, empty) and an audit trail in a temporary directory."""

    root: Path
    config: VaultConfig
    audit: AuditTarget

    def redact(
        self,
        inputs: Sequence[Path | str],
        *,
        tokens: TokenVault | None = None,
        tty: bool = False,
        **options: object,
    ) -> Outcome:
        out, err = io.BytesIO(), io.StringIO()
        request = RedactRequest(inputs=tuple(str(i) for i in inputs), tenant=TENANT, **options)  # type: ignore[arg-type]
        code = redact_files(
            request,
            vault_config=self.config,
            audit=self.audit,
            stdout=out,
            stderr=err,
            tty=tty,
            tokens=tokens,
        )
        return Outcome(code, out.getvalue(), err.getvalue())

    def audit_text(self) -> str:
        return self.audit.path.read_text(encoding="utf-8") if self.audit.path.exists() else ""


@pytest.fixture
def store(tmp_path: Path) -> Store:
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, generate_key_material(secrets.token_bytes))
    config = VaultConfig(
        data_dir=tmp_path / "data",
        vault_url=Secret(f"sqlite:///{tmp_path / 'data' / 'vault.db'}"),
        key_file=key_file,
    )
    (tmp_path / "data").mkdir()

    async def create() -> None:
        vault = await open_vault(config, create=True)
        await vault.close()

    asyncio.run(create())
    audit = AuditTarget(tmp_path / "audit-cli.jsonl", bytes(range(32)))
    return Store(tmp_path, config, audit)


class FakeVault:
    """A token source that needs no store: a token spells its value's digits in letters.

    It counts its calls (one per item with values) and works on any event loop.
    """

    def __init__(self) -> None:
        self.calls = 0

    async def tokenize_many(self, tenant: str, items: Sequence[tuple[str, str]]) -> list[str]:
        self.calls += 1
        return [fake_token(entity, digits) for entity, digits in items]


def fake_token(entity: str, digits: str) -> str:
    kind = "card" if entity == "CREDIT_CARD" else "ssn"
    return f"tok_v1_{kind}_" + "".join(chr(ord("a") + int(d)) for d in digits)


def restore(output: bytes, spans: Sequence[str] = (CARD, CARD_2, SSN)) -> bytes:
    """`output` with each fake token put back to the span it replaced in the input."""
    for span in spans:
        for entity in ("CREDIT_CARD", "US_SSN"):
            output = output.replace(fake_token(entity, DIGITS[span]).encode(), span.encode())
    return output
