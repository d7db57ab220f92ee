"""A realistic audit trail, fast: valid chained records (the real `LineSigner`) spread evenly
over a period, for the console/index benchmark and tests.

Per 100 records: 44 messages redacted and 44 delivered, 8 reveals and 1 denial by a handful
of agents (working hours, UTC), 1 agent authentication failure, 1 refused webhook (bad
signature or too large), and now and then a key or vault command. No values: tokens only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redactor.audit.chain import GENESIS_MAC, LineSigner

SUBJECTS = ("alice", "bob", "carol", "dave", "erin", "frank")
LEVELS = ("masked", "masked", "use", "full")


def _record(i: int, tenant: str) -> dict[str, Any]:
    slot = i % 100
    who = SUBJECTS[(i // 100) % len(SUBJECTS)]
    rid = f"{i:032x}"
    if slot < 44:
        return {
            "event": "message_redacted",
            "request_id": rid,
            "route": "zendesk",
            "tenant": tenant,
            "counts": {"CREDIT_CARD": 1 + i % 2},
            "tokens": [f"tok_v1_card_{i:020d}_4242"],
        }
    if slot < 88:
        return {
            "event": "message_delivered",
            "request_id": rid,
            "route": "zendesk",
            "tenant": tenant,
            "outcome": "forwarded",
            "status": 200,
            "code": None,
        }
    if slot < 96:
        return {
            "event": "token_revealed",
            "request_id": rid,
            "route": "/v1/resolve",
            "subject": who,
            "tenant": tenant,
            "token": f"tok_v1_card_{i:020d}_4242",
            "level": LEVELS[i % len(LEVELS)],
            "reason": "granted",
            "purpose": "CHARGEBACK_DISPUTE",
            "ticket": f"SUP-{i % 9000 + 1000}",
            "token_id": f"jti-{who}",
            "policy_version": "3f2a9c1b7d0e",
        }
    if slot == 96:
        return {
            "event": "token_denied",
            "request_id": rid,
            "route": "/v1/resolve",
            "subject": who,
            "tenant": tenant,
            "token": f"tok_v1_ssn_{i:020d}_6789",
            "level": "none",
            "reason": "level_not_permitted",
            "purpose": None,
            "ticket": None,
            "token_id": f"jti-{who}",
            "policy_version": "3f2a9c1b7d0e",
        }
    if slot == 97:
        return {
            "event": "agent_unauthenticated",
            "request_id": rid,
            "route": "/v1/resolve",
            "subject": None,
            "tenant": None,
            "token": None,
            "level": "none",
            "reason": "token_expired",
        }
    if slot == 98:
        odd = (i // 100) % 2
        code = "signature_invalid" if odd else "body_too_large"
        return {
            "event": "message_refused",
            "request_id": rid,
            "route": "zendesk",
            "tenant": tenant,
            "outcome": "refused",
            "status": 401 if odd else 413,
            "code": code,
        }
    if i % 1000 == 99:
        return {
            "event": "key_rotate",
            "phase": "finished",
            "exit_code": 0,
            "operator": "ops@bastion",
            "os_user": "ops",
            "host": "bastion",
            "kek_version": 2 + i // 100_000,
        }
    return {"event": "audit_checkpoint", "final": False, "kid": "0" * 16}


def records(
    count: int, *, end: datetime, days: float, tenant: str = "acme"
) -> Iterator[dict[str, Any]]:
    """`count` records (unchained) spread evenly over the `days` before `end`."""
    span = timedelta(days=days).total_seconds()
    start = end.timestamp() - span
    step = span / max(count, 1)
    stamps: dict[int, str] = {}
    for i in range(count):
        at = start + i * step
        second = int(at)
        text = stamps.get(second)
        if text is None:
            if len(stamps) > 4096:
                stamps.clear()
            text = stamps[second] = datetime.fromtimestamp(second, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S"
            )
        yield {**_record(i, tenant), "time": f"{text}.{int((at - second) * 1000):03d}+00:00"}


def write_trail(
    path: Path,
    key: bytes,
    data: Iterator[dict[str, Any]] | list[dict[str, Any]],
    *,
    chain: str = "gen",
    first_seq: int = 0,
    prev_mac: bytes = GENESIS_MAC,
    mode: str = "wb",
) -> tuple[int, bytes]:
    """Chain and write records to `path`; returns (next seq, last MAC) to go on with."""
    signer = LineSigner(key)
    seq, prev = first_seq, prev_mac
    batch: list[bytes] = []
    with path.open(mode) as handle:
        for record in data:
            line, prev = signer.sign(prev, {**record, "chain": chain, "seq": seq})
            batch.append(line)
            seq += 1
            if len(batch) >= 10_000:
                handle.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            handle.write(b"\n".join(batch) + b"\n")
    return seq, prev
