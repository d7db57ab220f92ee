"""`redactor audit report` and `redactor audit find`: reading the trail for a security team."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from redactor.audit.index_report import IndexReportError
from redactor.audit.integrity import Trail, TrailIntegrity, is_verified, read_trail
from redactor.audit.report import (
    SECTION_NAMES,
    Report,
    build_report,
    events_about_token,
    headline,
    parse_time,
    render_csv,
    render_report,
)
from redactor.errors import ConfigError
from redactor.ops.audit_cli import audit_key_from, registry_chains
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


def _checked_trail(
    args: argparse.Namespace, environ: Mapping[str, str], paths: list[Path]
) -> Trail:
    # Every view verifies what it shows: no key, no view (ConfigError names what is missing).
    # With a vault named (--config, --vault-url, --dev), the trail is held against its chain
    # registry: a chain that vanished whole is a break like any other.
    key = audit_key_from(args, environ)
    registry = registry_chains(args, environ)
    return read_trail(
        key, paths, now=datetime.now(UTC), jobs=getattr(args, "jobs", 1), registry=registry
    )


def run_report(
    args: argparse.Namespace, environ: Mapping[str, str], out: TextIO, err: TextIO
) -> int:
    """Print the report over the trail files, the trail's integrity first.

    Exit 0 when every chain verifies, 1 when the trail does not (the report is still printed,
    every unverified record counted as such), 2 on a usage error.
    """
    paths = [Path(p) for p in args.paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"redactor: no such file: {missing[0]}", file=err)
        return 2
    if args.section is not None and args.format != "csv":
        print("redactor: --section is for --format csv", file=err)
        return 2
    if args.format == "csv" and (args.section is None) == (args.out is None):
        print(
            "redactor: --format csv writes one file per section: give --out DIR (every "
            f"section) or --section NAME (one, to standard output: {', '.join(SECTION_NAMES)})",
            file=err,
        )
        return 2
    since = _time_flag(args.since, "--since")
    until = _time_flag(args.until, "--until")
    if getattr(args, "index", False):
        if len(paths) != 1:
            print("redactor: --index reads one trail: give its audit log or directory", file=err)
            return 2
        try:
            report = _report_from_index(args, environ, paths[0], since, until)
        except IndexReportError as exc:
            print(f"redactor: {exc}", file=err)
            return 2
        ok = report.integrity is not None and report.integrity["ok"]
    else:
        trail = _checked_trail(args, environ, paths)
        report = build_report(
            trail.records(),
            since=since,
            until=until,
            tenant=args.tenant,
            integrity=trail.integrity,
        )
        ok = trail.integrity.ok
    code = 0 if ok else 1
    if args.format != "csv":
        out.write(render_report(report, args.format))
        return code
    if args.section is not None:
        # A CSV file has no place for a sentence: it goes first, on standard error.
        print(headline(report), file=err)
        out.write(render_csv(report, args.section))
        return code
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    print(headline(report), file=out)
    for name in SECTION_NAMES:
        target = folder / f"{name}.csv"
        target.write_text(render_csv(report, name), encoding="utf-8")
        print(f"wrote {target}", file=out)
    return code


def _report_from_index(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    path: Path,
    since: datetime | None,
    until: datetime | None,
) -> Report:
    """The report from the trail's index: brought up to date, every indexed byte re-hashed
    (a trail edited under the index rebuilds it), then asked. Raises IndexReportError."""
    from redactor.audit.index import TrailIndex, index_path_for, trail_files
    from redactor.audit.index_report import report_from_index

    key = audit_key_from(args, environ)
    live = path / "audit.jsonl" if path.is_dir() else path
    logs = trail_files(live)
    index = TrailIndex(index_path_for(live), key)
    try:
        index.update(logs)
        index.full_check(logs)
        integrity = TrailIntegrity(index.integrity_result(logs), datetime.now(UTC))
        return report_from_index(
            index, since=since, until=until, tenant=args.tenant, integrity=integrity
        )
    finally:
        index.close()


def run_export(
    args: argparse.Namespace, environ: Mapping[str, str], out: TextIO, err: TextIO
) -> int:
    """Stream the verified trail as JSON lines (jsonl, ecs or ocsf), an integrity event
    wherever a chain breaks. Exit 0 when every chain verifies, 1 when not, 2 on usage."""
    from redactor.audit.chain import canonical_json
    from redactor.audit.export import ExportCursor, export_records

    paths = [Path(p) for p in args.paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"redactor: no such file: {missing[0]}", file=err)
        return 2
    since = _time_flag(args.since, "--since")
    cursor = ExportCursor()
    while True:
        trail = _checked_trail(args, environ, paths)
        for doc in export_records(
            trail.records(), trail.integrity, args.format, since=since, cursor=cursor
        ):
            out.write(canonical_json(doc) + "\n")
        if not args.follow:
            return 0 if trail.integrity.ok else 1
        out.flush()
        # Following: check the whole trail again (rotated files included: give the
        # directory) and send what is new. Until SIGINT/SIGTERM.
        time.sleep(args.interval_s)


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
    """Token of the value on stdin (never stored), then every event about that token, the
    trail's integrity first and each unverified event marked. Exit 1 when the vault never saw
    the value or the trail does not verify."""
    from redactor.settings import Overrides, load_audit_trail_config, load_vault_config

    flags = Overrides(
        config=args.config,
        data_dir=args.data_dir,
        vault_url=args.vault_url,
        key_file=args.key_file,
        dev=True if args.dev else None,
    )
    trail_paths = [Path(p) for p in args.paths]
    if not trail_paths:
        # The trail `serve` writes with this configuration (--config, REDACTOR_AUDIT_LOG).
        audit_log = load_audit_trail_config(flags, environ).audit_log
        if audit_log is not None:
            trail_paths = [audit_log.parent]
    if not trail_paths:
        print(
            "redactor: name the trail files (or give --config, or set REDACTOR_AUDIT_LOG)", file=err
        )
        return 2
    value = stdin.read(MAX_STDIN_CHARS + 1).strip()
    if not value or len(value) > MAX_STDIN_CHARS or "\n" in value:
        print("redactor: give exactly one value on standard input", file=err)
        return 2
    try:
        config = load_vault_config(flags, environ)
        token = asyncio.run(_find_token(config, args.tenant, value))
    except VaultError as exc:
        # Vault messages are fixed texts: they never quote the value.
        print(f"redactor: {exc.code}: {exc}", file=err)
        return 2
    del value
    if token is None:
        print(f"no token: the vault never tokenised this value for tenant {args.tenant}", file=out)
        return 1
    trail = _checked_trail(args, environ, trail_paths)
    integrity = trail.integrity
    events = events_about_token(trail.records(), token)
    code = 0 if integrity.ok else 1
    if args.format == "json":
        doc = {"integrity": integrity.to_json(), "token": token, "events": events}
        print(json.dumps(doc, indent=2), file=out)
        return code
    print(f"integrity: {integrity.headline()}", file=out)
    print(f"token: {token}", file=out)
    print(_summary(events), file=out)
    for event in events:
        print(_describe(event), file=out)
    return code


def _summary(events: list[dict[str, Any]]) -> str:
    redacted = [e for e in events if e.get("tokens")]
    resolved = [e for e in events if e.get("token") and e.get("subject")]
    first = (
        f"first redacted {redacted[0].get('time')} on route {redacted[0].get('route')}"
        if redacted
        else "never seen in a message in these files"
    )
    who = sorted({f"{e.get('subject')} ({e.get('level')})" for e in resolved if is_verified(e)})
    unsure = sorted(
        {f"{e.get('subject')} ({e.get('level')})" for e in resolved if not is_verified(e)}
        - set(who)
    )
    claimed = f"; UNVERIFIED records name: {', '.join(unsure)}" if unsure else ""
    return f"{first}; {len(events)} events; resolved by: {', '.join(who) or 'nobody'}{claimed}"


def _describe(event: dict[str, Any]) -> str:
    keys = ("route", "subject", "level", "reason", "purpose", "request_id")
    extra = " ".join(f"{k}={event[k]}" for k in keys if event.get(k) is not None)
    mark = "" if is_verified(event) else "UNVERIFIED "
    return f"{mark}{event.get('time')} {event.get('event')} {extra}"
