"""`redactor vault reconcile --audit DIR`: tokens the audit trail shows minted that the vault lacks.

Lives here, not in vault/: the vault never reads the trail (vault/ imports nothing of
redactor). Every message record names its tenant and the tokens it carried, so the trail is
a list of every token handed out. A token in it that the vault has no row for (an erased
token keeps its row) was lost: by a restore from an older copy, or by a purge. Purges are in
the commands' own trail (`vault_purge` records); a token idle since before a finished purge's
cutoff is reported as purged, apart from the lost ones.

With `--record`, the lost tokens are written to the vault, which then logs `token_lost` at
error level whenever one is asked for, without reading the trail per request.
Reads records, never verifies them: `redactor audit verify` does that.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from redactor.audit.report import MESSAGE_EVENTS, parse_time, read_records
from vault.cli import add_vault_command, open_existing_store, run_command
from vault.config import VaultConfig, parse_duration_s
from vault.errors import VaultConfigError
from vault.mark import behind, read_mark

# Agent decisions that show a token in use (a granted resolve is activity, for purge).
_USE_EVENTS = frozenset({"token_resolved", "token_revealed", "token_used"})


@dataclass(slots=True)
class TokenSeen:
    """Where a token appears in the trail: first and last time, and in how many records."""

    first: datetime
    last: datetime
    records: int = 1


@dataclass(frozen=True, slots=True)
class TrailTokens:
    """What the trail says: tokens handed out per tenant, and the cutoffs of finished purges."""

    minted: dict[tuple[str, str], TokenSeen]
    purge_cutoffs: tuple[tuple[datetime, datetime], ...]  # (purge finished at, cutoff)
    records: int


def _when(record: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_time(str(record.get("time")))
    except ValueError:
        return None


def collect(records: Iterable[Mapping[str, Any]]) -> TrailTokens:
    """Tokens per (tenant, token) from message records, and purge cutoffs (pure)."""
    minted: dict[tuple[str, str], TokenSeen] = {}
    used: dict[tuple[str, str], datetime] = {}
    cutoffs: list[tuple[datetime, datetime]] = []
    count = 0
    for record in records:
        count += 1
        event, when = record.get("event"), _when(record)
        if when is None:
            continue
        tenant = record.get("tenant")
        if event in MESSAGE_EVENTS and isinstance(tenant, str):
            for token in record.get("tokens") or ():
                if not isinstance(token, str):
                    continue
                seen = minted.get((tenant, token))
                if seen is None:
                    minted[(tenant, token)] = TokenSeen(when, when)
                else:
                    seen.first, seen.last = min(seen.first, when), max(seen.last, when)
                    seen.records += 1
        elif event in _USE_EVENTS and record.get("reason") == "granted":
            token = record.get("token")
            if isinstance(tenant, str) and isinstance(token, str):
                used[(tenant, token)] = max(used.get((tenant, token), when), when)
        elif event == "vault_purge" and record.get("phase") == "finished":
            try:
                older_than_s = parse_duration_s(str(record.get("older_than")))
            except VaultConfigError:
                continue
            cutoffs.append(
                (when, datetime.fromtimestamp(when.timestamp() - older_than_s, when.tzinfo))
            )
    for key, last_use in used.items():
        seen = minted.get(key)
        if seen is not None:
            seen.last = max(seen.last, last_use)
    return TrailTokens(minted, tuple(sorted(cutoffs)), count)


def purged_by(seen: TokenSeen, cutoffs: Iterable[tuple[datetime, datetime]]) -> datetime | None:
    """When a purge that ran after the token's last activity took it (its cutoff passed it)."""
    for finished, cutoff in cutoffs:
        if finished > seen.last and cutoff > seen.last:
            return finished
    return None


def _trail_paths(audit: list[str]) -> list[Path]:
    paths = [Path(p) for p in audit]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise VaultConfigError(f"no audit trail at {missing[0]}")
    return paths


def _handle_reconcile(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """List tokens the trail shows minted that the vault lacks; exit 1 if any was lost."""

    async def body(config: VaultConfig, out: TextIO) -> int:
        paths = _trail_paths(args.audit)
        # A trail can be gigabytes: read it off the loop.
        trail = await asyncio.to_thread(lambda: collect(read_records(paths)))
        store = await open_existing_store(config)
        try:
            current = await store.read_mark()
            recorded = await asyncio.to_thread(read_mark, config.vault_mark_file, current.vault_id)
            by_tenant: dict[str, list[str]] = {}
            for tenant, token in trail.minted:
                by_tenant.setdefault(tenant, []).append(token)
            present: set[tuple[str, str]] = set()
            for tenant, tokens in sorted(by_tenant.items()):
                found = await store.present_tokens(tenant, tokens)
                present.update((tenant, t) for t in found)
            lost: dict[str, list[str]] = {}
            purged = 0
            for key in sorted(trail.minted):
                if key in present:
                    continue
                seen = trail.minted[key]
                tenant, token = key
                purge = purged_by(seen, trail.purge_cutoffs)
                if purge is not None:
                    purged += 1
                    print(
                        f"purged  tenant={tenant} token={token} last_seen={seen.last.isoformat()} "
                        f"purge={purge.isoformat()}",
                        file=out,
                    )
                    continue
                lost.setdefault(tenant, []).append(token)
                print(
                    f"missing tenant={tenant} token={token} first_seen={seen.first.isoformat()} "
                    f"last_seen={seen.last.isoformat()} records={seen.records}",
                    file=out,
                )
            newly = 0
            if args.record:
                now = int(time.time())
                for tenant, tokens in lost.items():
                    newly += await store.record_lost(tenant, tokens, now)
        finally:
            await store.close()
        missing = sum(len(t) for t in lost.values())
        state = "BEHIND" if recorded is not None and behind(current, recorded) else "not behind"
        mark = recorded.describe() if recorded is not None else "none recorded"
        print(
            f"trail: {len(trail.minted)} tokens in {trail.records} records; vault has "
            f"{len(present)}; {missing} missing, {purged} purged.\n"
            f"vault at {current.describe()}; mark in {config.vault_mark_file}: {mark} ({state})",
            file=out,
        )
        if args.record:
            print(
                f"recorded {newly} tokens as lost (logged as token_lost when asked for)", file=out
            )
        return 1 if missing else 0

    return run_command(body, args, environ, out, err or sys.stderr)


def register_reconcile(sub: argparse._SubParsersAction) -> None:
    """Add `vault reconcile` to the `vault` group (after vault.cli registered it)."""
    reconcile = add_vault_command(
        sub,
        "reconcile",
        _handle_reconcile,
        "list tokens the audit trail shows minted that the vault lacks",
        "Read the audit trail (files or directories of *.jsonl* files, the commands' own\n"
        "audit-cli trail included) and list every token a message carried that the vault has\n"
        "no row for: lost by a restore from an older copy (`missing`), or taken by a finished\n"
        "`vault purge` (`purged`). Exit 1 when a token is missing. Never prints a value.\n"
        "--record writes the missing tokens to the vault, which then logs token_lost at error\n"
        "level whenever one is asked for. Works on a vault refused as vault_behind.",
    )
    reconcile.add_argument(
        "--audit", required=True, action="append", metavar="PATH", help="trail file or directory"
    )
    reconcile.add_argument(
        "--record",
        action="store_true",
        help="record the missing tokens in the vault as lost (logged when asked for)",
    )
