"""`redactor audit ...`: init-key, verify, report and find over the chained audit trail."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from redactor.audit import load_audit_key, write_audit_key_file
from redactor.audit.chain import key_id
from redactor.audit.report import SECTION_NAMES
from redactor.errors import ConfigError


def audit_key_from(args: argparse.Namespace, environ: Mapping[str, str]) -> bytes:
    """The audit key for a reading command: --audit-key-file, the environment, the --config
    file's `audit_key_file`, or (with --dev) the development key in the data directory.
    Raises ConfigError naming what is missing; a reading command never creates a key."""
    from redactor.settings import Overrides, load_audit_trail_config

    flags = Overrides(
        config=getattr(args, "config", None),
        data_dir=args.data_dir,
        dev=True if args.dev else None,
        audit_key_file=args.audit_key_file,
    )
    config = load_audit_trail_config(flags, environ)
    inline = config.audit_key.reveal() if config.audit_key else None
    dev_dir: Path | None = None
    if config.dev and config.audit_key_file is None and not inline:
        dev_dir = config.data_dir
        if not (dev_dir / "dev-audit-key").exists():
            raise ConfigError("no development audit key in the data directory")
    return load_audit_key(key_file=config.audit_key_file, inline=inline, dev_data_dir=dev_dir)


def add_key_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that name the audit key for a reading command."""
    parser.add_argument(
        "--audit-key-file",
        metavar="FILE",
        help="the audit key (env REDACTOR_AUDIT_KEY_FILE, or REDACTOR_AUDIT_KEY inline)",
    )
    parser.add_argument(
        "--dev", action="store_true", help="use the development audit key in --data-dir"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (with --dev)")


def run_init_key(args: argparse.Namespace, out: TextIO) -> int:
    """Create a new audit key file (0600); refuses to overwrite one."""
    key = write_audit_key_file(Path(args.file))
    print(
        f"created {args.file} (key id {key_id(key)}). Keep a copy apart from the audit trail: "
        "without it the trail cannot be verified. Start with REDACTOR_AUDIT_KEY_FILE pointing "
        "at it.",
        file=out,
    )
    return 0


def registry_chains(args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """The chains the vault's registry knows (a list of RegisteredChain), or a Completeness
    saying why there are none to compare with: no vault named (--config, REDACTOR_CONFIG,
    --vault-url, REDACTOR_VAULT_URL or --dev), or the registry could not be read."""
    from redactor.audit.registration import ChainRegistryError, StoreChainRegistry
    from redactor.audit.registry import not_checked
    from redactor.settings import Overrides, load_vault_config
    from vault.cli import open_existing_store
    from vault.errors import VaultError

    config_file = getattr(args, "config", None) or environ.get("REDACTOR_CONFIG")
    vault_url = getattr(args, "vault_url", None) or environ.get("REDACTOR_VAULT_URL")
    if not (config_file or vault_url or getattr(args, "dev", False)):
        return not_checked(
            "no chain registry: give --config (or --vault-url) to hold the trail against "
            "the vault's registry of chains"
        )
    flags = Overrides(
        config=getattr(args, "config", None),
        data_dir=getattr(args, "data_dir", None),
        vault_url=getattr(args, "vault_url", None),
        dev=True if getattr(args, "dev", False) else None,
    )
    config = load_vault_config(flags, environ)

    async def read() -> list[Any]:
        try:
            store = await open_existing_store(config)
        except VaultError as exc:
            raise ChainRegistryError(exc.code) from None
        try:
            chains: list[Any] = await StoreChainRegistry(store).chains()
            return chains
        finally:
            await store.close()

    try:
        # A thread of its own: the caller may be inside an event loop (a test, the console).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, read()).result()
    except ChainRegistryError as exc:
        return not_checked(f"the chain registry could not be read: {exc.code}", unreadable=True)


def registry_since(args: argparse.Namespace) -> str | None:
    """--since as the trail spells times (UTC, milliseconds), or None. Raises ConfigError."""
    from datetime import UTC, datetime

    text = getattr(args, "since", None)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError("--since must be an ISO time like 2026-11-01T00:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def run_verify(
    args: argparse.Namespace, environ: Mapping[str, str], out: TextIO, err: TextIO
) -> int:
    """Verify the chains in the given files, and hold them against the vault's chain registry
    when one is named; exit 1 at the first broken link of any chain, a registered chain the
    trail lacks, or a registry that cannot be read."""
    import json

    from redactor.audit.registry import Completeness, check_completeness, describe_chain
    from redactor.audit.verify import expand_paths, render_text, result_as_json, verify_paths

    key = audit_key_from(args, environ)
    paths = [Path(p) for p in args.paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"redactor: no such file: {missing[0]}", file=err)
        return 2
    # The registry first, then the files: a checkpoint is registered only once it is in its
    # file, so every checkpoint read here is in the files read next (the other way round, a
    # chain started in between would read as missing).
    registry = registry_chains(args, environ)
    result = verify_paths(key, paths, jobs=args.jobs)
    if isinstance(registry, Completeness):
        completeness = registry
    else:
        logs, _ = expand_paths(paths)
        completeness = check_completeness(
            result,
            registry,
            logs,
            whole_directories=any(p.is_dir() for p in paths),
            since=registry_since(args),
            hosts=getattr(args, "host", None) or None,
        )
    if not result.chains and not result.problems and not completeness.gaps:
        print("redactor: no audit records found", file=err)
        return 2
    failed = not result.ok or bool(completeness.gaps) or completeness.unreadable
    if args.format == "json":
        doc = {**result_as_json(result), "ok": not failed}
        doc["completeness"] = completeness.to_json()
        print(json.dumps(doc, indent=2), file=out)
    else:
        writers = (
            {}
            if isinstance(registry, Completeness)
            else {c.chain_id: describe_chain(c, result.chains.get(c.chain_id)) for c in registry}
        )
        for line in render_text(result, completeness, writers):
            print(line, file=out)
    return 1 if failed else 0


def run_chains(
    args: argparse.Namespace, environ: Mapping[str, str], out: TextIO, err: TextIO
) -> int:
    """List every chain, in the registry or the trail: writer, host, pid, file, first and
    last time, records, and its verify state. Exit as `verify` does."""
    import json

    from redactor.audit.registry import Completeness, chain_rows, check_completeness
    from redactor.audit.verify import expand_paths, verify_paths

    key = audit_key_from(args, environ)
    paths = [Path(p) for p in args.paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"redactor: no such file: {missing[0]}", file=err)
        return 2
    # The registry first, then the files: a checkpoint is registered only once it is in its
    # file, so every checkpoint read here is in the files read next (the other way round, a
    # chain started in between would read as missing).
    registry = registry_chains(args, environ)
    result = verify_paths(key, paths, jobs=args.jobs)
    chains = [] if isinstance(registry, Completeness) else registry
    if isinstance(registry, Completeness):
        completeness = registry
    else:
        logs, _ = expand_paths(paths)
        completeness = check_completeness(
            result,
            registry,
            logs,
            whole_directories=any(p.is_dir() for p in paths),
            since=registry_since(args),
            hosts=getattr(args, "host", None) or None,
        )
    rows = chain_rows(result, chains, completeness)
    failed = not result.ok or bool(completeness.gaps) or completeness.unreadable
    if args.format == "json":
        doc = {"ok": not failed, "completeness": completeness.to_json(), "chains": rows}
        print(json.dumps(doc, indent=2), file=out)
        return 1 if failed else 0
    columns = ("state", "writer", "host", "pid", "file", "first", "last", "records", "chain")
    table = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    print(header.rstrip(), file=out)
    for cells in table:
        print("  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip(), file=out)
    print(completeness.sentence(), file=out)
    return 1 if failed else 0


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


# What a shell reports for a command killed by SIGPIPE (128 + 13): the reader went away.
EXIT_PIPE_CLOSED = 141


def main_audit(args: argparse.Namespace) -> int:
    """Dispatch `redactor audit COMMAND` (the top-level CLI's handler)."""
    import structlog

    from redactor.ops.logconfig import configure_logging

    # Standard output is the answer (a report, a CSV file): log lines go to standard error,
    # for this command only (a caller in the same process, a test, gets its own back).
    previous = structlog.get_config()
    configure_logging(level="warning", stream=sys.stderr)
    try:
        code = _dispatch(args)
        # Flushed here, not at exit: a closed pipe then surfaces as BrokenPipeError below.
        sys.stdout.flush()
    except ConfigError as exc:
        print(f"redactor: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `redactor audit report | head -1`: the reader has what it wanted. No traceback; and
        # stdout goes to /dev/null so the interpreter's own flush at exit fails no more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE_CLOSED
    finally:
        structlog.configure(**previous)
    return code


def _dispatch(args: argparse.Namespace) -> int:
    if args.audit_command == "init-key":
        return run_init_key(args, sys.stdout)
    if args.audit_command == "verify":
        return run_verify(args, os.environ, sys.stdout, sys.stderr)
    if args.audit_command == "chains":
        return run_chains(args, os.environ, sys.stdout, sys.stderr)
    if args.audit_command == "report":
        from redactor.ops.audit_report_cli import run_report

        return run_report(args, os.environ, sys.stdout, sys.stderr)
    if args.audit_command == "export":
        from redactor.ops.audit_report_cli import run_export

        return run_export(args, os.environ, sys.stdout, sys.stderr)
    from redactor.ops.audit_report_cli import run_find

    return run_find(args, os.environ, sys.stdin, sys.stdout, sys.stderr)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `audit init-key|verify|report|export|find` to the top-level parser."""
    audit = sub.add_parser(
        "audit",
        help="verify, report on and search the audit trail",
        description="The audit trail: every line chained by an HMAC under the audit key.",
    )
    cmds = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    init = cmds.add_parser("init-key", help="create an audit key file (mode 0600)")
    init.add_argument("file", metavar="FILE")
    verify = cmds.add_parser(
        "verify",
        help="check every chain; report the first broken link; exit 1 if any",
        description="Walks every writer's chain in the files (directories: their *.jsonl* "
        "files) and reports, per chain, the first broken link and its kind: edited, "
        "deleted, inserted, reordered, truncated_tail or wrong_key; a line cut by a crash "
        "is reported as torn_tail and is not a failure. Files are taken in each chain's "
        "order (by seq, not name; .gz read). With --config (or --vault-url), the trail is "
        "held against the vault's chain registry: a registered chain with no lines, fewer "
        "records than its last registered checkpoint, or a missing rotated file fails, "
        "named by writer, host, pid, file and times; without one, completeness is reported "
        "as not checked. Exit 0 when all verify, 1 when one does not (or the named "
        "registry cannot be read), 2 on a usage error.",
    )
    chains = cmds.add_parser(
        "chains",
        help="list every chain: writer, host, pid, file, times, records, verify state",
        description="Lists every chain found in the trail or recorded in the vault's chain "
        "registry (--config): writer kind (serve, worker, cli) and command, host, pid, "
        "file, first and last time, record count and its state (ok, closed, broken, "
        "missing, unregistered). Exit as verify does.",
    )
    for parser in (verify, chains):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument(
            "--jobs",
            type=int,
            default=os.cpu_count() or 1,
            metavar="N",
            help="processes for a large trail (default: one per CPU)",
        )
        parser.add_argument(
            "--config",
            metavar="FILE",
            help="the YAML file `serve` reads: its audit key, and its vault, whose chain "
            "registry the trail is held against (REDACTOR_CONFIG)",
        )
        parser.add_argument(
            "--vault-url", metavar="URL", help="the vault holding the chain registry"
        )
        parser.add_argument(
            "--since",
            metavar="ISO_TIME",
            help="registered chains closed (and files left behind) before this time are not "
            "expected: retention removed them",
        )
        parser.add_argument(
            "--host",
            action="append",
            metavar="NAME",
            help="only chains written on this host are expected (repeatable; replicas that "
            "share one vault, each verified with its own trail); default: every host's",
        )
        add_key_flags(parser)
    report = cmds.add_parser(
        "report",
        help="who revealed what, tokenisations, denials, auth failures, reveal-rate jumps",
        description="Verifies the trail first and says so before anything else; every row "
        "counts its records the chains do not vouch for (column unverified). Exit 0 when "
        "every chain verifies, 1 when the trail does not, 2 on a usage error.",
    )
    report.add_argument("paths", nargs="+", metavar="PATH")
    report.add_argument("--since", metavar="ISO_TIME", help="from this time (UTC if no offset)")
    report.add_argument("--until", metavar="ISO_TIME", help="before this time")
    report.add_argument("--tenant", help="only this tenant's events")
    report.add_argument("--format", choices=["text", "csv", "json", "html"], default="text")
    report.add_argument(
        "--section",
        choices=SECTION_NAMES,
        help="with --format csv: this section only, to standard output",
    )
    report.add_argument(
        "--out", metavar="DIR", help="with --format csv: one file per section in DIR"
    )
    report.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes to verify a large trail (default: one per CPU)",
    )
    report.add_argument(
        "--index",
        action="store_true",
        help="answer from the trail's index (the console's, beside the audit log; brought up "
        "to date and every byte re-hashed first): PATH is the audit log or its directory. "
        "Tokenisations and the record total count the quarter hours that start in the period",
    )
    report.add_argument(
        "--config", metavar="FILE", help="the YAML file `serve` reads (for audit_key_file)"
    )
    add_key_flags(report)
    export = cmds.add_parser(
        "export",
        help="stream the verified trail for a SIEM (jsonl, ECS or OCSF)",
        description="Verifies the trail, then writes one JSON line per verified record, in "
        "the trail's own fields (jsonl), Elastic Common Schema (ecs) or OCSF API Activity "
        "(ocsf) field names; wherever a chain breaks, an audit_integrity_failed event takes "
        "the place of what it can no longer vouch for. Exit 0 when every chain verifies, 1 "
        "when not, 2 on a usage error.",
    )
    export.add_argument("paths", nargs="+", metavar="PATH")
    export.add_argument("--since", metavar="ISO_TIME", help="records from this time on")
    export.add_argument("--format", choices=["jsonl", "ecs", "ocsf"], default="jsonl")
    export.add_argument(
        "--follow",
        action="store_true",
        help="keep going: check the trail again every --interval-s and send what is new "
        "(give the directory, so rotated files are followed)",
    )
    export.add_argument(
        "--interval-s", type=float, default=5.0, metavar="S", help="with --follow (default 5)"
    )
    export.add_argument(
        "--config", metavar="FILE", help="the YAML file `serve` reads (for audit_key_file)"
    )
    export.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes to verify a large trail (default: one per CPU)",
    )
    add_key_flags(export)
    find = cmds.add_parser(
        "find",
        help="every event about the token of a value read on standard input",
        description="Reads ONE value (card number or SSN) on standard input, never as an "
        "argument (it stays out of shell history), computes its token the way the vault "
        "does without storing anything, and lists every audit event about that token.",
    )
    find.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="trail files (default: REDACTOR_AUDIT_LOG's directory)",
    )
    find.add_argument("--tenant", required=True)
    find.add_argument(
        "--config",
        metavar="FILE",
        help="the YAML file `serve` reads: its vault, audit log and audit key (REDACTOR_CONFIG)",
    )
    find.add_argument("--vault-url", metavar="URL", help="vault store URL (REDACTOR_VAULT_URL)")
    find.add_argument("--key-file", metavar="FILE", help="vault key file (REDACTOR_KEY_FILE)")
    find.add_argument("--format", choices=["text", "json"], default="text")
    add_key_flags(find)
    audit.set_defaults(handler=main_audit)
