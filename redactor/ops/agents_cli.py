"""`redactor agents revoke | list-revoked | unrevoke`: the agent API's revocation list.

The list lives in the vault's database (vault/revocations.py), so these commands read the same
configuration as `serve` (--config, REDACTOR_*, flags) and need no key ring. Every running
server process polls the list and refuses a revoked token within REVOCATION_DELAY_S
(redactor/agent/revocations.py). `revoke` and `unrevoke` leave an audit record before and
after (ops/command_audit.py), naming the operator.

Exit codes: 0 done; 1 refused (nothing to unrevoke) or the vault cannot be reached; 2 a usage
or configuration error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from redactor.errors import ConfigError
from redactor.ops.command_audit import MAX_OPERATOR_CHARS, audit_vault_commands, operator_of
from vault.cli import open_existing_store, run_command
from vault.config import VaultConfig, parse_duration_s
from vault.errors import VaultConfigError
from vault.revocations import (
    ANY_TENANT,
    MAX_REASON_CHARS,
    PURGE_AFTER_S,
    REVOCATION_DELAY_S,
    Revocation,
    RevocationInputError,
    check_entry,
)

ConfigLoader = Callable[[argparse.Namespace, Mapping[str, str]], VaultConfig]
# Any run of 9+ digits (every PAN and SSN shape): never into the list or an audit record.
_DIGIT_RUN = re.compile(r"\d(?:[ \t.\-]{0,2}\d){8,}")
# Far enough for any token lifetime, near enough that a typo'd year is caught.
MAX_REVOCATION_S = 10 * 366 * 86400

_EPILOG = f"""\
A revoked token is refused by every worker of every replica within {REVOCATION_DELAY_S:g} s
(401 token_revoked). Configuration: the same as `redactor serve` (--config FILE, then
REDACTOR_CONFIG, REDACTOR_DATA_DIR, REDACTOR_VAULT_URL, then flags). The operator recorded is
--operator, else REDACTOR_OPERATOR, else the OS user at this host.
"""


def clean_reason(text: str) -> str:
    """A reason fit for the database and the audit trail: printable, at most
    MAX_REASON_CHARS, any card- or SSN-shaped digit run replaced by [DIGITS]."""
    text = "".join(c for c in text if c.isprintable())[:MAX_REASON_CHARS].strip()
    return _DIGIT_RUN.sub("[DIGITS]", text)


def parse_until(text: str, now: float) -> int:
    """Epoch seconds from `2026-12-08`, `2026-12-08T10:00`, `...Z`, `...+02:00` (a time
    without a zone is UTC) or epoch seconds (a token's `exp`). Raises RevocationInputError."""
    text = text.strip()
    if text.isdigit():
        when = int(text)
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise RevocationInputError(
                "--until takes a date and time such as 2026-12-08T10:00Z, or epoch seconds"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        when = int(parsed.timestamp())
    if when <= now:
        raise RevocationInputError("--until is in the past")
    if when - now > MAX_REVOCATION_S:
        raise RevocationInputError("--until is more than 10 years away")
    return when


def readable(epoch_s: int) -> str:
    """`2026-12-07 09:30:00 UTC`."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def span(seconds: float) -> str:
    """`3d 4h`, `2h 5m`, `4m 10s`, `12s`: the two largest units."""
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _target(args: argparse.Namespace) -> tuple[str, str, str]:
    """(kind, tenant, value) named by --jti or --subject [--tenant]. Raises RevocationInputError."""
    if args.jti is not None:
        if args.tenant is not None:
            raise RevocationInputError("--tenant goes with --subject; a jti is revoked everywhere")
        kind, tenant, value = "jti", ANY_TENANT, args.jti
    else:
        kind, tenant, value = "subject", args.tenant or ANY_TENANT, args.subject
    check_entry(kind, tenant, value)
    return kind, tenant, value


def _describe(kind: str, tenant: str, value: str) -> str:
    where = "in every tenant" if tenant == ANY_TENANT else f"in tenant {tenant}"
    return f"{kind} {value} {where}"


def _revoke_body(args: argparse.Namespace, environ: Mapping[str, str], jti_ttl_s: int) -> Any:
    async def body(config: VaultConfig, out: TextIO) -> int:
        kind, tenant, value = _target(args)
        now = time.time()
        if args.until is not None:
            expires_at = parse_until(args.until, now)
        elif args.duration is not None:
            try:
                seconds = parse_duration_s(args.duration)
            except VaultConfigError:
                raise RevocationInputError("--for takes 90d, 12h, 30m or 45s") from None
            if seconds > MAX_REVOCATION_S:
                raise RevocationInputError("--for is more than 10 years")
            expires_at = int(now) + seconds
        elif kind == "jti":
            # The token's own exp is not known here (pass it with --until); the configured
            # longest token lifetime outlasts it.
            expires_at = int(now) + jti_ttl_s
        else:
            raise RevocationInputError("--subject needs --for DURATION or --until TIME")
        operator = operator_of(args, environ)["operator"]
        entry = Revocation(
            kind="jti" if kind == "jti" else "subject",
            tenant=tenant,
            value=value,
            expires_at=expires_at,
            operator=operator,
            created_at=int(now),
            reason=args.reason or None,
        )
        store = await open_existing_store(config)
        try:
            new = await store.add_revocation(entry)
            await store.purge_revocations(int(now) - PURGE_AFTER_S)
        finally:
            await store.close()
        args.audit_outcome = {"expires_at": readable(expires_at), "replaced": not new}
        verb = "revoked" if new else "revoked again (the earlier entry is replaced):"
        print(
            f"{verb} {_describe(kind, tenant, value)} until {readable(expires_at)} "
            f"(for {span(expires_at - int(now))}); every server refuses it within "
            f"{REVOCATION_DELAY_S:g} s",
            file=out,
        )
        return 0

    return body


def _unrevoke_body(args: argparse.Namespace) -> Any:
    async def body(config: VaultConfig, out: TextIO) -> int:
        kind, tenant, value = _target(args)
        store = await open_existing_store(config)
        try:
            removed = await store.remove_revocation(kind, tenant, value)
        finally:
            await store.close()
        args.audit_outcome = {"removed": removed}
        if not removed:
            print(
                f"error: not_revoked: no revocation of that {kind} "
                f"{'in every tenant' if tenant == ANY_TENANT else 'in that tenant'}; "
                "`redactor agents list-revoked --all` lists the entries",
                file=args.err or sys.stderr,
            )
            return 1
        print(
            f"unrevoked {_describe(kind, tenant, value)}; every server accepts it again "
            f"within {REVOCATION_DELAY_S:g} s",
            file=out,
        )
        return 0

    return body


def _list_body(args: argparse.Namespace) -> Any:
    async def body(config: VaultConfig, out: TextIO) -> int:
        now = time.time()
        store = await open_existing_store(config)
        try:
            entries = await store.read_revocations(None if args.all else int(now))
        finally:
            await store.close()
        if not entries:
            print("no revocations" + ("" if args.all else " in force"), file=out)
            return 0
        rows = [("KIND", "TENANT", "VALUE", "EXPIRES", "", "BY", "SINCE", "REASON")]
        for e in entries:
            left = e.expires_at - now
            rows.append(
                (
                    e.kind,
                    "*" if e.tenant == ANY_TENANT else e.tenant,
                    e.value,
                    readable(e.expires_at),
                    f"in {span(left)}" if left > 0 else f"expired {span(-left)} ago",
                    e.operator[:MAX_OPERATOR_CHARS],
                    readable(e.created_at),
                    e.reason or "",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
            print("  ".join([*cells, r[-1]]).rstrip(), file=out)
        return 0

    return body


def _handler(
    make_body: Callable[[argparse.Namespace], Any],
) -> Callable[..., int]:
    def handler(
        args: argparse.Namespace,
        environ: Mapping[str, str] | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> int:
        args.err = err
        try:
            body = make_body(args)
        except ConfigError as exc:
            print(f"error: config_invalid: {exc.detail or exc}", file=err or sys.stderr)
            return 2
        return run_command(body, args, environ, out, err)

    return handler


def _revoke_handler(args: argparse.Namespace) -> Any:
    from redactor.settings import Overrides, load_revocation_settings

    environ = os.environ
    flags = Overrides(config=args.config, data_dir=args.data_dir, dev=True if args.dev else None)
    ttl = load_revocation_settings(flags, environ).jti_ttl_s
    return _revoke_body(args, environ, ttl)


def _flags(parser: argparse.ArgumentParser, load_config: ConfigLoader) -> None:
    group = parser.add_argument_group("configuration (as for serve)")
    group.add_argument("--config", metavar="FILE", help="the YAML file `serve` reads")
    group.add_argument("--data-dir", metavar="DIR", help="data directory (REDACTOR_DATA_DIR)")
    group.add_argument("--vault-url", metavar="URL", help="vault store URL (REDACTOR_VAULT_URL)")
    group.add_argument(
        "--dev", action="store_true", default=None, help="development mode (REDACTOR_DEV)"
    )
    # The vault's config loader wants these; the revocation list needs no key ring.
    parser.set_defaults(key_file=None, load_config=load_config)


def _target_flags(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--jti", metavar="JTI", help="the token's `jti` claim")
    which.add_argument(
        "--subject", metavar="SUBJECT", help="the caller, as the configured subject claim reads"
    )
    parser.add_argument(
        "--tenant",
        metavar="TENANT",
        help="with --subject: only in this tenant (default: in every tenant)",
    )


def register(sub: argparse._SubParsersAction, load_config: ConfigLoader) -> None:
    """Add the `agents` group (revoke, list-revoked, unrevoke), its changes audited."""
    agents = sub.add_parser(
        "agents",
        help="revoke agent tokens by jti or subject, list and lift revocations",
        description="The agent API's revocation list, in the vault's database.",
    )
    leaves = agents.add_subparsers(dest="agents_command", metavar="COMMAND", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    revoke = leaves.add_parser(
        "revoke",
        help="refuse a token (by jti) or a caller (by subject) until an expiry",
        description=(
            "Add an entry to the revocation list. --jti: that token, in every tenant, until\n"
            "--until/--for or else agent.revocations.jti_ttl (default 24h; pass the token's\n"
            "exp as --until EPOCH when you know it). --subject: every token of that caller\n"
            "(in --tenant only, or in every tenant) until --until/--for, which it requires.\n"
            "Revoking an entry again replaces its expiry, reason and operator."
        ),
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    _target_flags(revoke)
    until = revoke.add_mutually_exclusive_group()
    until.add_argument(
        "--for", dest="duration", metavar="DURATION", help="how long: 90d, 12h, 30m or 45s"
    )
    until.add_argument(
        "--until",
        metavar="TIME",
        help="until when: 2026-12-08T10:00Z (UTC unless a zone is given) or epoch seconds",
    )
    revoke.add_argument(
        "--reason",
        type=clean_reason,
        metavar="TEXT",
        help="why, for the list and the audit trail (digit runs are masked)",
    )
    _flags(revoke, load_config)
    revoke.set_defaults(handler=_handler(_revoke_handler))

    listing = leaves.add_parser(
        "list-revoked",
        help="list the revocations in force",
        description=(
            "List the entries in force: kind, tenant (* for every tenant), jti or subject,\n"
            "expiry (UTC, and how far off), operator, when and why. --all adds entries that\n"
            "expired in the last day (older ones are deleted)."
        ),
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    listing.add_argument("--all", action="store_true", help="include recently expired entries")
    _flags(listing, load_config)
    listing.set_defaults(handler=_handler(_list_body))

    unrevoke = leaves.add_parser(
        "unrevoke",
        help="lift a revocation",
        description=(
            "Remove an entry: the same --jti, or --subject with the same --tenant (or none)\n"
            "as it was revoked with. Exit 1 if there is no such entry."
        ),
        epilog=_EPILOG,
        formatter_class=fmt,
    )
    _target_flags(unrevoke)
    _flags(unrevoke, load_config)
    unrevoke.set_defaults(handler=_handler(_unrevoke_body))
    # Each change leaves a record before and after, naming the operator (--operator added).
    audit_vault_commands(sub, groups=("agents",))
