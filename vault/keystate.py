"""Binding a key ring to the vault it encrypted: what to record, what must match.

Pure functions over the vault's key records (`KeyState`) and a key ring's check values. The
vault records, per KEK version, a check value (never the key), a state (active, decrypt-only,
retired) and when each state began. A ring fits the vault when its active version is the
vault's active one, every version it shares with the vault is the same key, its index key is
the vault's, and no version that still wraps a data key is missing from it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from vault.stores.base import KekRecord, KeyState


def _versions(versions: Iterable[int]) -> str:
    return ", ".join(str(v) for v in sorted(versions))


def initial_key_state(
    checks: Mapping[int, bytes], active_version: int, index_check: bytes, now: int
) -> KeyState:
    """The records of a fresh vault: the ring it was created with (older versions read-only)."""
    keks = tuple(
        KekRecord(
            version,
            "active" if version == active_version else "decrypt-only",
            checks[version],
            now,
            None if version == active_version else now,
        )
        for version in sorted(checks)
    )
    return KeyState(1, index_check, keks)


def key_ring_problems(
    state: KeyState,
    checks: Mapping[int, bytes],
    active_version: int,
    index_check: bytes,
    wrapping: Mapping[int, int],
) -> list[str]:
    """Why a key ring does not fit the vault, one sentence per problem (versions only).

    `checks` are the ring's check values by version, `wrapping` the number of live data keys
    per KEK version. An empty list means the ring fits.
    """
    problems: list[str] = []
    if not hmac.compare_digest(state.index_check, index_check):
        problems.append("the key ring's index key is not the one this vault was created with")
    different = [
        version
        for version, check in checks.items()
        if (record := state.record(version)) is not None
        and record.state != "retired"
        and not hmac.compare_digest(record.check_value, check)
    ]
    if different:
        problems.append(
            f"kek versions {_versions(different)} of the key ring are other keys than the "
            "vault's versions of those numbers"
        )
    vault_active = state.active_version
    if vault_active is None:
        problems.append("the vault records no active kek version")
    elif active_version != vault_active:
        # The runbook step for each direction. A vault restored from an older copy never
        # gets here: it is refused as vault_behind first (vault/mark.py).
        fix = (
            "a `redactor keys rotate` was interrupted: run it again"
            if active_version > vault_active
            else "this key file predates the vault's last rotation: use the current key file"
        )
        problems.append(
            f"the key ring's active kek version is {active_version}, the vault's is "
            f"{vault_active} ({fix})"
        )
    missing = [version for version, deks in wrapping.items() if deks and version not in checks]
    if missing:
        problems.append(
            f"kek versions {_versions(missing)} still wrap data keys but are missing "
            "from the key ring"
        )
    return problems


def pending_rotation(
    state: KeyState, checks: Mapping[int, bytes], active_version: int, index_check: bytes
) -> bool:
    """Whether the ring is the vault's ring plus a newer active version not yet recorded.

    That is what a `keys rotate` interrupted between writing the key file and recording the
    rotation leaves behind; running it again records the version instead of adding another.
    """
    if state.record(active_version) is not None or state.active_version is None:
        return False
    if active_version <= max(k.version for k in state.keks):
        return False
    others = {v: c for v, c in checks.items() if v != active_version}
    if state.active_version not in others:
        return False
    return not key_ring_problems(state, others, state.active_version, index_check, {})


def readable_time(epoch_s: float | None) -> str:
    """Epoch seconds as a person reads them: `2026-12-07 07:30:48 UTC`."""
    if epoch_s is None:
        return "an unrecorded time"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(record: KekRecord) -> str:
    """`active since <t>`, `decrypt-only since <t>` or `retired since <t>` (UTC, to the second)."""
    since = {
        "active": record.active_at,
        "decrypt-only": record.decrypt_only_at,
        "retired": record.retired_at,
    }[record.state]
    return f"{record.state} since {readable_time(since)}"
