"""Key and vault commands leave an audit record before and after they change anything.

`vault/` cannot import redactor, so the `redactor` CLI wraps the handlers `vault.cli`
registers: a `started` record is written first (if it cannot be, the command does not run),
then `finished` or `failed` with the exit code. The records go to the trail named by
REDACTOR_AUDIT_LOG, in a file of their own (`audit.jsonl` -> `audit-cli.jsonl`, a chain per
run), or to `audit-cli.jsonl` in the data directory; `redactor audit verify` reads it with
the server's.

The settings and the audit sink are imported when a command runs, not when its parser is
built: `redactor keys --help` does not load the proxy's configuration code.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redactor import __version__
from redactor.errors import ConfigError

if TYPE_CHECKING:
    from redactor.settings import AuditTrailConfig

AUDITED_COMMANDS = {
    ("keys", "init"): "key_init",
    ("keys", "rotate"): "key_rotate",
    ("keys", "rewrap"): "key_rewrap",
    ("keys", "retire"): "key_retire",
    ("vault", "init"): "vault_init",
    ("vault", "migrate"): "vault_migrate",
    ("vault", "purge"): "vault_purge",
    ("vault", "erase-token"): "vault_erase_token",
    ("vault", "erase-tenant"): "vault_erase_tenant",
    ("vault", "accept-restore"): "vault_accept_restore",
    ("vault", "reconcile"): "vault_reconcile",
}
# Arguments worth recording (none holds a value): the record's key for each.
_DETAIL_ARGS = {
    "version": "kek_version",
    "older_than": "older_than",
    "tenant": "tenant",
    "token": "token",
    "outbox_id": "outbox_id",
    "route": "route",
    "dead": "dead",
}

Handler = Callable[..., int]
# An operator name is free text from a flag or the environment: kept short and printable.
MAX_OPERATOR_CHARS = 128
# Any run of 9+ digits (every PAN and SSN shape): never into an audit record, even as a name.
_DIGIT_RUN = re.compile(r"\d(?:[ \t.\-]{0,2}\d){8,}")


def operator_of(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Who ran the command: `operator` as named (--operator, REDACTOR_OPERATOR) or else the
    OS user at the host, and always `os_user` and `host`, so a named operator can be held
    against the account that ran the command."""
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        os_user = f"uid:{os.getuid()}"
    host = socket.gethostname()
    named = getattr(args, "operator", None) or environ.get("REDACTOR_OPERATOR") or ""
    named = "".join(c for c in named if c.isprintable())[:MAX_OPERATOR_CHARS].strip()
    named = _DIGIT_RUN.sub("[DIGITS]", named)
    return {"operator": named or f"{os_user}@{host}", "os_user": os_user, "host": host}


def key_versions(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The key ring's KEK versions and its active one (numbers only, never key material), as
    the command's own configuration finds the key file; None when there is none to read."""
    from vault.errors import VaultError
    from vault.keyring import parse_key_material, read_key_file

    load_config = getattr(args, "load_config", None)
    if load_config is None:
        return None
    try:
        config = load_config(args, environ)
        if environ.get("REDACTOR_KEYS"):
            material = parse_key_material(environ["REDACTOR_KEYS"])
        else:
            path = config.key_file or (config.dev_key_file if config.dev else None)
            if path is None or not path.exists():
                return None
            material = read_key_file(path)
    except (VaultError, OSError):
        return None
    return {"versions": material.versions, "active": material.active_version}


def _trail_config(args: argparse.Namespace, environ: Mapping[str, str]) -> AuditTrailConfig:
    # The same --config file, REDACTOR_* environment and flags as `serve` (and as the vault
    # part of these commands): one configuration for every command.
    from redactor.settings import Overrides, load_audit_trail_config

    flags = Overrides(
        config=getattr(args, "config", None),
        data_dir=getattr(args, "data_dir", None),
        dev=True if getattr(args, "dev", None) else None,
    )
    return load_audit_trail_config(flags, environ)


def cli_trail(config: AuditTrailConfig) -> Path:
    """Where a command's records go: beside the server's trail, in a file of their own."""
    if config.audit_log is not None:
        path = config.audit_log
        return path.with_name(f"{path.stem}-cli{path.suffix}")
    return config.data_dir / "audit-cli.jsonl"


def cli_audit_key(config: AuditTrailConfig) -> bytes:
    """The audit key for a command. Raises ConfigError when none is configured."""
    from redactor.audit import load_audit_key

    return load_audit_key(
        key_file=config.audit_key_file,
        inline=config.audit_key.reveal() if config.audit_key else None,
        dev_data_dir=config.data_dir if config.dev else None,
    )


def audited(event: str, handler: Handler) -> Handler:
    """`handler` with a `started` record before and a `finished`/`failed` record after."""

    def run(args: argparse.Namespace) -> int:
        from redactor.audit import AuditWriteError

        environ = os.environ
        details: dict[str, Any] = {
            name: getattr(args, attr)
            for attr, name in _DETAIL_ARGS.items()
            if getattr(args, attr, None) is not None
        }
        details["version"] = __version__
        details.update(operator_of(args, environ))
        try:
            config = _trail_config(args, environ)
            key = cli_audit_key(config)
            trail = cli_trail(config)
            return asyncio.run(_run_audited(event, handler, args, trail, key, details))
        except (ConfigError, AuditWriteError) as exc:
            print(
                f"redactor: cannot write the audit record ({exc}); nothing was changed",
                file=sys.stderr,
            )
            return 2

    run.__doc__ = handler.__doc__
    return run


async def _run_audited(
    event: str,
    handler: Handler,
    args: argparse.Namespace,
    trail: Path,
    key: bytes,
    details: dict[str, Any],
) -> int:
    from redactor.audit import AuditSink, AuditWriteError, SystemEvent, now_iso

    sink = AuditSink(trail, key, checkpoint_interval_s=0)
    await sink.open()
    environ = os.environ
    try:
        # The KEK versions before and after: what `keys rotate` added, what `retire` removed.
        before = await asyncio.to_thread(key_versions, args, environ)
        # Raises AuditWriteError: then the command does not run.
        await sink.write(
            SystemEvent(event, now_iso(), {**details, "phase": "started", "keks_before": before})
        )
        # The vault handlers run their own event loop: a thread of their own.
        code = await asyncio.to_thread(handler, args)
        phase = "finished" if code == 0 else "failed"
        after = await asyncio.to_thread(key_versions, args, environ)
        try:
            await sink.write(
                SystemEvent(
                    event,
                    now_iso(),
                    {
                        **details,
                        "phase": phase,
                        "exit_code": code,
                        "keks_before": before,
                        "keks_after": after,
                    },
                )
            )
        except AuditWriteError:
            print("redactor: the command ran but its result was not audited", file=sys.stderr)
        return code
    finally:
        await sink.close()


def audit_vault_commands(sub: argparse._SubParsersAction) -> None:
    """Wrap the handlers of the audited `keys` and `vault` commands registered on `sub`."""
    for group in ("keys", "vault"):
        parser = sub.choices[group]
        leaves = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, leaf in leaves.choices.items():
            event = AUDITED_COMMANDS.get((group, name))
            if event is not None:
                leaf.add_argument(
                    "--operator",
                    metavar="NAME",
                    help="who runs this, for the audit record (REDACTOR_OPERATOR; "
                    "default: the OS user at this host, which is recorded anyway)",
                )
                leaf.set_defaults(handler=audited(event, leaf.get_default("handler")))
