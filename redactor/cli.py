"""The `redactor` command: one entry point, a subcommand per job.

Start-up is part of the interface: a container runs `redactor health` every few seconds, so
this module imports only the standard library and `redactor.errors` (no third-party package,
not even `vault`). Each command imports what it needs in its handler, and the parsers of the
`audit`, `keys` and `vault` groups (which import the audit and vault packages) are built
only when the command line names them. tests/test_cli_imports.py pins this.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from redactor import __version__
from redactor.errors import ConfigError

if TYPE_CHECKING:
    from datetime import datetime

    from vault.config import VaultConfig


def _cmd_detect(args: argparse.Namespace) -> int:
    from redactor.detection import DetectionOptions, Detector
    from redactor.ops.detect_cli import run_detect

    options = DetectionOptions(
        ignore_dummy_ssns=args.ignore_dummy_ssns,
        bare_ssn_needs_context=args.bare_ssn_needs_context,
        luhn_invalid_with_card_word=args.luhn_invalid_with_card_word,
    )
    return run_detect(sys.stdin, sys.stdout, sys.stderr, Detector(options), explain=args.explain)


def _overrides(args: argparse.Namespace):  # -> Overrides, imported lazily with the server
    from redactor.settings import Overrides

    return Overrides(
        config=args.config,
        listen=args.listen,
        admin_listen=args.admin_listen,
        agent_listen=args.agent_listen,
        jwks=args.jwks,
        jwt_issuer=args.jwt_issuer,
        jwt_audience=args.jwt_audience,
        policy=args.policy,
        upstream=args.upstream,
        tenant=args.tenant,
        data_dir=args.data_dir,
        vault_url=args.vault_url,
        key_file=args.key_file,
        dev=True if args.dev else None,
        create_vault=True if args.create_vault else None,
        audit_log=args.audit_log,
        audit_key_file=args.audit_key_file,
        log_level=args.log_level,
        log_console=args.log_console,
        max_body_bytes=args.max_body_bytes,
        workers=args.workers,
        event_loop=getattr(args, "event_loop", None),
        access_log=True if getattr(args, "access_log", False) else None,
    )


def _start_error(exc: Exception) -> int:
    # ConfigError/VaultError messages are fixed texts plus a setting's name, never a secret.
    # A ConfigError's detail says it all ("PATH does not exist"); its generic prefix is noise.
    text = (exc.detail or str(exc)) if isinstance(exc, ConfigError) else str(exc)
    print(f"redactor: cannot start: {text}", file=sys.stderr)
    return 2


def _cmd_serve(args: argparse.Namespace) -> int:
    from redactor.audit import AuditWriteError
    from redactor.ops.logconfig import configure_logging
    from redactor.server import serve
    from redactor.settings import load_settings
    from vault.errors import VaultError

    try:
        settings = load_settings(_overrides(args), os.environ)
    except ConfigError as exc:
        return _start_error(exc)
    configure_logging(level=settings.log_level, console=settings.log_console, cache=True)
    try:
        return serve(settings)
    except (ConfigError, VaultError, AuditWriteError) as exc:
        # AuditWriteError: the audit file cannot be opened, or its chain cannot be registered
        # in the vault's chain registry; nothing was served.
        return _start_error(exc)


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from redactor.config.listen import parse_listen
    from redactor.ops.demo import main_demo
    from redactor.ops.logconfig import configure_logging
    from vault.errors import VaultError

    configure_logging(console=True)
    try:
        return main_demo(
            Path(args.data_dir),
            args.listen,
            args.admin_listen,
            dict(os.environ),
            agent_listen=args.agent_listen,
            upstream_listen=parse_listen(args.upstream_listen, "--upstream-listen"),
        )
    except (ConfigError, VaultError, OSError) as exc:
        return _start_error(exc)


def _cmd_dev_token(args: argparse.Namespace) -> int:
    from redactor.ops.devtoken import mint_dev_token, refuse_production
    from redactor.settings import Overrides, load_vault_config

    try:
        vault = load_vault_config(Overrides(config=args.config, data_dir=args.data_dir), os.environ)
        refuse_production(vault)
        token = mint_dev_token(
            vault.data_dir, role=args.role, tenant=args.tenant, ttl_s=args.ttl, subject=args.sub
        )
    except ConfigError as exc:
        print(f"redactor: {exc.detail or exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _cmd_health(args: argparse.Namespace) -> int:
    from redactor.ops.probe import ProbeUrlError, probe

    try:
        ok = probe(args.url, args.timeout_s)
    except ProbeUrlError:
        print(
            "redactor: health checks only a local admin listener (http://127.0.0.1:PORT/...)",
            file=sys.stderr,
        )
        return 2
    print("ok" if ok else "unhealthy", file=sys.stderr)
    return 0 if ok else 1


def _add_serve(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the redaction proxy",
        description=(
            "Run the redaction proxy and its admin listener (/healthz, /readyz, /metrics). "
            "Settings come from --config FILE (see policies/routes.example.yaml), then "
            "REDACTOR_* environment variables, then these flags. Without --dev a key must be "
            "configured (REDACTOR_KEY_FILE or REDACTOR_KEYS); create one with "
            "`redactor keys init --key-file FILE`. The audit trail is signed with a key of its "
            "own (REDACTOR_AUDIT_KEY_FILE or REDACTOR_AUDIT_KEY): `redactor audit init-key FILE`."
        ),
    )
    _add_settings_flags(serve)
    serve.set_defaults(handler=_cmd_serve)
    _add_config(sub)

    demo = sub.add_parser(
        "demo",
        help="try it: the proxy in development mode in front of a demo upstream",
        description=(
            "Starts the proxy on 127.0.0.1:8080 in development mode (SQLite vault and a "
            "generated key in ./redactor-demo-data) in front of a demo upstream on "
            "127.0.0.1:9000 that answers with what it received, and the agent API on "
            "127.0.0.1:8081 trusting a development signing key (see `redactor dev-token`) "
            "with the default reveal policy; prints a curl line for each."
        ),
    )
    demo.add_argument("--data-dir", default="redactor-demo-data", metavar="DIR")
    demo.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    demo.add_argument("--admin-listen", default="127.0.0.1:9090", metavar="HOST:PORT")
    demo.add_argument("--agent-listen", default="127.0.0.1:8081", metavar="HOST:PORT")
    demo.add_argument(
        "--upstream-listen", default="127.0.0.1:9000", metavar="HOST:PORT",
        help="where the demo upstream listens",
    )  # fmt: skip
    demo.set_defaults(handler=_cmd_demo)

    dev_token = sub.add_parser(
        "dev-token",
        help="print a JWT for the demo's agent API, signed by its development key",
        description=(
            "Prints a JWT signed by the development key `redactor demo` keeps in its data "
            "directory (the demo's agent listener trusts its JWKS). Refuses a configuration "
            "in force (--config, REDACTOR_* environment) with production key material or a "
            "PostgreSQL vault: real agents get their tokens from the identity provider."
        ),
    )
    dev_token.add_argument("--role", required=True, help="the role claim, e.g. support_agent")
    dev_token.add_argument("--tenant", default="demo", help="the tenant claim (default: demo)")
    dev_token.add_argument(
        "--ttl", type=int, default=3600, metavar="S", help="lifetime in seconds (default 3600)"
    )
    dev_token.add_argument("--sub", default="dev-agent", help="the subject claim")
    dev_token.add_argument("--data-dir", default="redactor-demo-data", metavar="DIR")
    dev_token.add_argument("--config", default=None, metavar="FILE")
    dev_token.set_defaults(handler=_cmd_dev_token)

    health = sub.add_parser(
        "health",
        help="exit 0 when a local redactor answers on its admin listener (container HEALTHCHECK)",
    )
    health.add_argument("--url", default="http://127.0.0.1:9090/healthz", help="admin URL to check")
    health.add_argument("--timeout-s", type=float, default=2.0)
    health.set_defaults(handler=_cmd_health)


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """The flags `serve` reads its settings from; `config check` takes the same ones."""
    add = parser.add_argument
    add("--config", metavar="FILE", help="YAML configuration with routes (env REDACTOR_CONFIG)")
    add("--dev", action="store_true", help="development mode: generate a key in the data dir")
    add(
        "--create-vault",
        action="store_true",
        help="create the vault if it does not exist (first run; `redactor vault init` does "
        "the same as a separate step). Without it a missing vault stops the start",
    )
    add("--listen", metavar="HOST:PORT", help="proxy listener (default 127.0.0.1:8080)")
    add("--admin-listen", metavar="HOST:PORT", help="admin listener (default 127.0.0.1:9090)")
    add(
        "--agent-listen",
        metavar="HOST:PORT",
        help="agent API listener: /v1/resolve, /v1/reveal-text, /out/NAME/ (env REDACTOR_AGENT_LISTEN)",
    )
    add("--jwks", metavar="PATH_OR_URL", help="JWKS file or https URL (env REDACTOR_JWKS)")
    add("--jwt-issuer", metavar="ISS", help="accepted JWT issuer (env REDACTOR_JWT_ISSUER)")
    add("--jwt-audience", metavar="AUD", help="accepted JWT audience (env REDACTOR_JWT_AUDIENCE)")
    add(
        "--policy",
        metavar="FILE",
        help="reveal policy YAML, reloaded on SIGHUP (env REDACTOR_POLICY)",
    )
    add("--upstream", metavar="URL", help="catch-all route: forward every path to URL")
    add("--tenant", help="tenant of the catch-all route (default 'default')")
    add("--data-dir", metavar="DIR", help="data directory (default ./redactor-data)")
    add("--vault-url", metavar="URL", help="sqlite:///path/vault.db or postgresql://...")
    add("--key-file", metavar="FILE", help="key file with the vault's key-encryption keys")
    add("--audit-log", metavar="FILE", help="audit JSON-lines file ('-' for stdout)")
    add(
        "--audit-key-file",
        metavar="FILE",
        help="the audit trail's HMAC key (env REDACTOR_AUDIT_KEY_FILE); not the vault key file",
    )
    add("--log-level", choices=["debug", "info", "warning", "error"])
    add("--log-console", action="store_true", help="human-readable logs instead of JSON")
    add("--max-body-bytes", type=int, metavar="N", help="body size limit (default 10 MiB)")
    add(
        "--workers",
        type=int,
        metavar="N",
        help="server processes sharing the ports, one per core is typical (env REDACTOR_WORKERS)",
    )
    add(
        "--event-loop",
        choices=["auto", "uvloop", "asyncio"],
        help="event loop: uvloop where installed (auto, the default) or asyncio "
        "(env REDACTOR_EVENT_LOOP)",
    )
    add(
        "--access-log",
        action="store_true",
        help="one log line per forwarded message (env REDACTOR_ACCESS_LOG); the audit trail "
        "records every message either way",
    )


def _cmd_config_check(args: argparse.Namespace) -> int:
    from redactor.ops.config_check import check_config
    from redactor.ops.logconfig import configure_logging

    # Only what goes wrong is logged; stdout holds the one-line summary alone.
    configure_logging(level="warning", console=args.log_console)

    result = check_config(_overrides(args), os.environ)
    for problem in result.problems:
        print(f"redactor: {problem}", file=sys.stderr)
    print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _add_config(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser(
        "config",
        help="check a configuration without starting anything",
        description="Commands on the configuration `serve` would use.",
    )
    config_sub = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    check = config_sub.add_parser(
        "check",
        help="validate everything `serve` would, without opening a listener or changing anything",
        description=(
            "Reads the same file, REDACTOR_* environment and flags as `serve` and checks the "
            "schema, routes, listeners, the reveal policy, the JWKS, the key ring, the audit "
            "key, the environment variables routes name and that the vault exists. Exit 0 with "
            "a one-line summary, or 1 with every problem found (file, line, route and key)."
        ),
    )
    _add_settings_flags(check)
    check.set_defaults(handler=_cmd_config_check)


def _cmd_redact(args: argparse.Namespace) -> int:
    from redactor.backfill.workers import start_scan_pool

    # The workers import detection while this process does (`backfill/workers.py`).
    pool = start_scan_pool(args.jobs) if args.jobs > 1 else None
    from redactor.backfill.run import AuditTarget, RedactRequest, redact_files, registry_for
    from redactor.ops.logconfig import configure_logging

    configure_logging(level="warning", console=False)
    try:
        vault_config, trail, key = _backfill_trail(args)
    except ConfigError as exc:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        return _start_error(exc)
    audit = AuditTarget(trail, key, registry_for(vault_config))
    request = RedactRequest(
        inputs=tuple(args.inputs),
        output=args.output,
        in_place=args.in_place,
        fmt=args.format,
        tenant=args.tenant,
        jobs=args.jobs,
        dry_run=args.dry_run,
        resume=args.resume,
    )
    return redact_files(
        request,
        vault_config=vault_config,
        audit=audit,
        stdout=sys.stdout.buffer,
        stderr=sys.stderr,
        tty=sys.stderr.isatty(),
        pool=pool,
    )


def _add_redact(sub: argparse._SubParsersAction) -> None:
    redact = sub.add_parser(
        "redact",
        help="redact stored files and exports with the proxy's detection, codecs and vault",
        description=(
            "Streams each INPUT (JSON Lines, a JSON array, CSV with a header, an .eml, an mbox, "
            "HTML or text; '-' is standard input) through the proxy's body handlers and "
            "replaces every card number and SSN with the token the proxy gives it (same vault, "
            "same tenant). Every other byte is written as it came. The vault and the audit "
            "trail are the ones `serve` uses (--config, REDACTOR_*); each run is audited."
        ),
    )
    add = redact.add_argument
    add("inputs", nargs="+", metavar="INPUT")
    where = redact.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUTPUT", help="file, directory or '-'")
    where.add_argument("--in-place", action="store_true", help="replace each input when it is done")
    add(
        "--format",
        default="auto",
        choices=["auto", "jsonl", "json", "csv", "eml", "mbox", "html", "text"],
    )
    add("--tenant", default="default", help="the vault tenant (the route's tenant in `serve`)")
    add("--jobs", type=int, default=1, metavar="N", help="worker processes that scan (default 1)")
    add("--dry-run", action="store_true", help="count what would change; no file, no vault")
    add("--resume", action="store_true", help="continue from the checkpoint beside the output")
    _add_store_flags(redact)
    redact.set_defaults(handler=_cmd_redact)


def _add_store_flags(parser: argparse.ArgumentParser) -> None:
    """The vault and audit flags of `serve` that a backfill needs."""
    for flag, meta, text in (
        ("--config", "FILE", "YAML configuration, as for serve (env REDACTOR_CONFIG)"),
        ("--data-dir", "DIR", "data directory (default ./redactor-data)"),
        ("--vault-url", "URL", "sqlite:///path/vault.db or postgresql://..."),
        ("--key-file", "FILE", "key file with the vault's key-encryption keys"),
        ("--audit-log", "FILE", "the server's audit log; the run's records go beside it"),
        ("--audit-key-file", "FILE", "the audit trail's HMAC key"),
    ):
        parser.add_argument(flag, metavar=meta, help=text)
    parser.add_argument("--dev", action="store_true", help="development mode: the dev key")


def _backfill_trail(args: argparse.Namespace):  # -> (VaultConfig, trail path, audit key)
    from redactor.ops.command_audit import cli_audit_key, cli_trail
    from redactor.settings import Overrides, load_audit_trail_config, load_vault_config

    flags = Overrides(
        config=args.config,
        data_dir=args.data_dir,
        vault_url=args.vault_url,
        key_file=args.key_file,
        dev=True if args.dev else None,
        audit_log=args.audit_log,
        audit_key_file=args.audit_key_file,
    )
    vault_config = load_vault_config(flags, os.environ)
    trail = load_audit_trail_config(flags, os.environ)
    return vault_config, cli_trail(trail), cli_audit_key(trail)


def since_date(text: str) -> datetime:
    """`--since`: a date or time in ISO 8601, UTC unless it names its own offset (an offset
    given is kept, not replaced). Raises ValueError."""
    from datetime import UTC, datetime

    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _cmd_backfill_zendesk(args: argparse.Namespace) -> int:
    from redactor.backfill.zendesk import ZendeskRequest, credentials_from, run_zendesk
    from redactor.ops.logconfig import configure_logging

    configure_logging(level="warning", console=False)
    try:
        vault_config, trail, key = _backfill_trail(args)
        since = since_date(args.since) if args.since else None
    except ConfigError as exc:
        return _start_error(exc)
    except ValueError:
        print("redactor: --since takes a date, e.g. 2024-01-31", file=sys.stderr)
        return 2
    request = ZendeskRequest(
        subdomain=args.subdomain,
        tenant=args.tenant,
        state_dir=vault_config.data_dir,
        since=int(since.timestamp()) if since else 0,
        base_url=args.base_url,
        dry_run=args.dry_run,
    )
    return run_zendesk(
        request,
        credentials_from(os.environ),
        vault_config=vault_config,
        audit_path=trail,
        audit_key=key,
        out=sys.stdout,
        err=sys.stderr,
    )


def _cmd_backfill_slack(args: argparse.Namespace) -> int:
    from redactor.backfill.slack import TOKEN_ENV, SlackRequest, credentials_from, run_slack
    from redactor.ops.logconfig import configure_logging

    if args.token_flag:
        # Never echoed: the value would be in this message, `ps` and the shell's history.
        print(
            f"redactor: a Slack token is never taken from a flag; set {TOKEN_ENV} instead",
            file=sys.stderr,
        )
        return 2
    configure_logging(level="warning", console=False)
    try:
        vault_config, trail, key = _backfill_trail(args)
        since = since_date(args.since) if args.since else None
    except ConfigError as exc:
        return _start_error(exc)
    except ValueError:
        print("redactor: --since takes a date, e.g. 2024-01-31", file=sys.stderr)
        return 2
    request = SlackRequest(
        channel=args.channel,
        tenant=args.tenant,
        since=since.timestamp() if since else None,
        base_url=args.base_url,
        dry_run=args.dry_run,
    )
    return run_slack(
        request,
        credentials_from(os.environ),
        vault_config=vault_config,
        audit_path=trail,
        audit_key=key,
        out=sys.stdout,
        err=sys.stderr,
    )


def _add_backfill_slack(kinds: argparse._SubParsersAction) -> None:
    slack = kinds.add_parser(
        "slack",
        help="redact values in a Slack channel's messages and threads (chat.update)",
        description=(
            "Walks the channel's history and threads, tokenises each value found in a "
            "message's text, blocks or attachments (vault first, then an audit record with "
            "the tokens), then rewrites the message with chat.update. Messages Slack will not "
            "edit are listed for review with their links. Token: REDACTOR_SLACK_TOKEN (a bot "
            "or user token; never a flag). Resumes from the cursor kept in the vault."
        ),
    )
    add = slack.add_argument
    add("--channel", required=True, help="the channel id, e.g. C0123456789")
    add("--since", metavar="DATE", help="first run: messages since DATE (default: all)")
    add("--base-url", metavar="URL", help="another Web API root (a stand-in, a proxy)")
    add("--tenant", default="default", help="the vault tenant")
    add("--dry-run", action="store_true", help="list what would change; no token, no change")
    # Accepted only to be refused without repeating the value (argparse would echo it).
    for flag in ("--token", "--slack-token", "--bot-token", "--user-token"):
        add(flag, dest="token_flag", metavar="TOKEN", help=argparse.SUPPRESS)
    _add_store_flags(slack)
    slack.set_defaults(handler=_cmd_backfill_slack)


def _add_backfill(sub: argparse._SubParsersAction) -> None:
    backfill = sub.add_parser("backfill", help="redact what a helpdesk already stores")
    kinds = backfill.add_subparsers(dest="backfill_command", metavar="SOURCE", required=True)
    zendesk = kinds.add_parser(
        "zendesk",
        help="redact values in Zendesk ticket comments (comment redaction API)",
        description=(
            "Walks tickets with the incremental export, tokenises each value found in a "
            "comment (vault first, then an audit record with the tokens), then redacts it with "
            "the comment-redaction endpoint. Credentials: REDACTOR_ZENDESK_EMAIL and "
            "REDACTOR_ZENDESK_API_TOKEN. Resumes from the cursor kept in the vault."
        ),
    )
    add = zendesk.add_argument
    add("--subdomain", required=True, help="SUBDOMAIN of SUBDOMAIN.zendesk.com")
    add("--since", metavar="DATE", help="first run: tickets updated since DATE (default: all)")
    add("--base-url", metavar="URL", help="another address for the API (a stand-in, a proxy)")
    add("--tenant", default="default", help="the vault tenant")
    add("--dry-run", action="store_true", help="list what would change; no token, no change")
    _add_store_flags(zendesk)
    zendesk.set_defaults(handler=_cmd_backfill_zendesk)
    _add_backfill_slack(kinds)


def _register_audit(sub: argparse._SubParsersAction) -> None:
    from redactor.ops.audit_cli import register

    register(sub)


def _register_keys_and_vault(sub: argparse._SubParsersAction) -> None:
    from redactor.ops.command_audit import audit_vault_commands
    from redactor.ops.reconcile import register_reconcile
    from vault.cli import register

    register(sub, _vault_config)
    # Reads the audit trail, so it lives in ops/ (vault/ never imports redactor).
    register_reconcile(sub)
    # After vault.cli registered them: key and vault commands are audited (vault/ cannot be).
    audit_vault_commands(sub)


def _register_agents(sub: argparse._SubParsersAction) -> None:
    from redactor.ops.agents_cli import register

    register(sub, _vault_config)


def _register_outbox(sub: argparse._SubParsersAction) -> None:
    from redactor.ops.outbox_cli import register

    register(sub, _vault_config)


# Groups whose parsers import their packages, with the one-line help of each command they
# add (tests/test_cli_imports.py checks these against the full parsers' help).
_DEFERRED_GROUPS = (
    (_register_audit, {"audit": "verify, report on and search the audit trail"}),
    (
        _register_keys_and_vault,
        {
            "keys": "rotate, re-wrap, retire and list key-encryption keys",
            "vault": "migrate the vault store, purge old tokens, erase tokens or tenants",
        },
    ),
    (
        _register_agents,
        {"agents": "revoke agent tokens by jti or subject, list and lift revocations"},
    ),
    (
        _register_outbox,
        {"outbox": "list, show, retry or drop queued messages (routes with delivery: queued)"},
    ),
)


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command `argv` names: its first word (the top-level options take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: every sub-command, the groups in `commands` (default: all) with
    their full parsers, the others as stubs that only list them in `redactor --help`."""
    parser = argparse.ArgumentParser(
        prog="redactor",
        description=(
            "Redaction proxy for support channels: finds payment card numbers and US SSNs "
            "in webhook and e-mail bodies and replaces them with vault tokens."
        ),
    )
    parser.add_argument("--version", action="version", version=f"redactor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    detect = sub.add_parser(
        "detect",
        help="find card numbers and SSNs in JSON lines read from stdin",
        description=(
            'Reads JSON lines {"id": ..., "text": ...} on stdin and writes one line per input: '
            '{"id": ..., "entities": [{"entity", "start", "end", "score"}]}, offsets being '
            "Python string offsets into text. A malformed line gets an error line on stderr "
            "(never its text) and the exit code is 1 at the end; the other lines go on."
        ),
    )
    detect.add_argument(
        "--ignore-dummy-ssns",
        action="store_true",
        help="do not report well-known sample SSNs such as 078-05-1120",
    )
    detect.add_argument(
        "--bare-ssn-needs-context",
        action="store_true",
        help="report a 9-digit number without separators only when an SSN word is nearby",
    )
    detect.add_argument(
        "--luhn-invalid-with-card-word",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="report a card-shaped number that fails the Luhn check (a typo'd card number) "
        "right after a card word, unless the text calls it invalid (default: on; "
        "--no-luhn-invalid-with-card-word leaves every Luhn-failing number alone)",
    )
    detect.add_argument(
        "--explain",
        action="store_true",
        help="add to each line, per digit run of 9+ digits, its position and digit count, the "
        "evidence for and against each card/SSN candidate in it and the decision (never a digit)",
    )
    detect.set_defaults(handler=_cmd_detect)
    _add_serve(sub)
    _add_redact(sub)
    _add_backfill(sub)
    for register, helps in _DEFERRED_GROUPS:
        if commands is None or any(name in commands for name in helps):
            register(sub)
        else:
            for name, help_text in helps.items():
                # Parsed only when named, and then the full group is built instead.
                sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _vault_config(args: argparse.Namespace, environ: Mapping[str, str]) -> VaultConfig:
    """The VaultConfig of a `keys` or `vault` command: what `serve` would use."""
    from redactor.settings import Overrides, load_vault_config
    from vault.errors import VaultConfigError

    flags = Overrides(
        config=args.config,
        data_dir=args.data_dir,
        vault_url=args.vault_url,
        key_file=args.key_file,
        dev=True if args.dev else None,
    )
    try:
        return load_vault_config(flags, environ)
    except ConfigError as exc:
        # Fixed texts naming a setting, file or line, never a secret's value.
        raise VaultConfigError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `redactor` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    parser = build_parser({command} if command else ())
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(_unknown_arguments(unknown))
    return int(args.handler(args))


_FLAG_NAME = re.compile(r"--?[A-Za-z][A-Za-z0-9_-]{0,40}")


def _unknown_arguments(unknown: Sequence[str]) -> str:
    """argparse's complaint about arguments it does not know, without their values: a
    credential typed as a flag (`--api-token X`, `--password=X`) must not reach the terminal,
    a CI log or a cron mail. Only flag names are repeated."""
    names = [
        name for arg in unknown if (name := arg.split("=", 1)[0]) and _FLAG_NAME.fullmatch(name)
    ]
    hidden = len(unknown) - len(names) + sum("=" in arg for arg in unknown)
    text = "unrecognized arguments: " + (" ".join(dict.fromkeys(names)) or "(not shown)")
    if hidden:
        text += f" ({hidden} value(s) not shown)"
    return text
