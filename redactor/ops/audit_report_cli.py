"""`redactor audit report` and `redactor audit find`: reading the trail for a security team."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from redactor.audit.report import (
    build_report,
    events_about_token,
    parse_time,
    read_records,
    render_report,
)
from redactor.errors import ConfigError
from vault import EntityType, VaultConfig, VaultError, open_vault

# One value on stdin is a few dozen characters; refuse to slurp anything large.
MAX_STDIN_CHARS = 256


def _time_flag(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise ConfigError(f"{name} must be an ISO time like 2026-11-29T00:00:00Z") from None


def run_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the report over the trail files."""
    paths = [Path(p) for p in args.paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"redactor: no such file: {missing[0]}", file=err)
        return 2
    report = build_report(
        read_records(paths),
        since=_time_flag(args.since, "--since"),
        until=_time_flag(args.until, "--until"),
        tenant=args.tenant,
    )
    out.write(render_report(report, args.format))
    return 0


def _entity_of(value: str) -> EntityType:
    # A US SSN has nine digits; a card number has 12 to 19. The vault checks the rest.
    digits = sum(c.isascii() and c.isdigit() for c in value)
    return EntityType.SSN if digits == 9 else EntityType.CARD


async def _find_token(config: VaultConfig, tenant: str, value: str) -> str | None:
    vault = await open_vault(config, migrate=False)
    try:
        return await vault.find_token(tenant, _entity_of(value), value)
    finally:
        await vault.close()


def run_find(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
) -> int:
    """Token of the value on stdin (never stored), then every event about that token."""
    trail = [Path(p) for p in args.paths]
    if not trail and environ.get("REDACTOR_AUDIT_LOG"):
        trail = [Path(environ["REDACTOR_AUDIT_LOG"]).parent]
    if not trail:
        print("redactor: name the trail files (or set REDACTOR_AUDIT_LOG)", file=err)
        return 2
    value = stdin.read(MAX_STDIN_CHARS + 1).strip()
    if not value or len(value) > MAX_STDIN_CHARS or "\n" in value:
        print("redactor: give exactly one value on standard input", file=err)
        return 2
    try:
        config = VaultConfig.from_environ(
            environ,
            data_dir=args.data_dir,
            vault_url=args.vault_url,
            key_file=args.key_file,
            dev=True if args.dev else None,
        )
        token = asyncio.run(_find_token(config, args.tenant, value))
    except VaultError as exc:
        # Vault messages are fixed texts: they never quote the value.
        print(f"redactor: {exc.code}: {exc}", file=err)
        return 2
    del value
    if token is None:
        print(f"no token: the vault never tokenised this value for tenant {args.tenant}", file=out)
        return 1
    events = events_about_token(read_records(trail), token)
    if args.format == "json":
        print(json.dumps({"token": token, "events": events}, indent=2), file=out)
        return 0
    print(f"token: {token}", file=out)
    print(_summary(events), file=out)
    for event in events:
        print(_describe(event), file=out)
    return 0


def _summary(events: list[dict[str, Any]]) -> str:
    redacted = [e for e in events if e.get("tokens")]
    resolved = [e for e in events if e.get("token") and e.get("subject")]
    first = (
        f"first redacted {redacted[0].get('time')} on route {redacted[0].get('route')}"
        if redacted
        else "never seen in a message in these files"
    )
    who = sorted({f"{e.get('subject')} ({e.get('level')})" for e in resolved})
    return f"{first}; {len(events)} events; resolved by: {', '.join(who) or 'nobody'}"


def _describe(event: dict[str, Any]) -> str:
    keys = ("route", "subject", "level", "reason", "purpose", "request_id")
    extra = " ".join(f"{k}={event[k]}" for k in keys if event.get(k) is not None)
    return f"{event.get('time')} {event.get('event')} {extra}"
