"""`redactor outbox list|show|retry|drop`: the operator's view of queued routes' outbox.

It reads the same --config file, REDACTOR_* environment and flags as `serve`, so it acts on
the outbox `serve` delivers from, and opens only the store (no key is needed: the outbox
holds redacted requests only, so `show` prints nothing a helpdesk would not have received).
Every action, reads included, is an audit record with the operator
(`ops/command_audit.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from vault.config import VaultConfig
    from vault.outbox import OutboxItem, OutboxStore

ConfigLoader = Callable[[argparse.Namespace, Mapping[str, str]], "VaultConfig"]

OUTBOX_EVENTS = {
    "list": "outbox_list",
    "show": "outbox_show",
    "retry": "outbox_retry",
    "drop": "outbox_drop",
}
_LIST_LIMIT = 1000
# Credentials a sender passed on to the upstream: kept for delivery, never printed.
_HIDDEN = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def _flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("configuration (the same as `redactor serve`)")
    group.add_argument("--config", metavar="FILE", help="the YAML file `serve` reads")
    group.add_argument("--data-dir", metavar="DIR", help="data directory (REDACTOR_DATA_DIR)")
    group.add_argument("--vault-url", metavar="URL", help="vault store URL (REDACTOR_VAULT_URL)")
    group.add_argument("--key-file", metavar="PATH", help=argparse.SUPPRESS)
    group.add_argument("--dev", action="store_true", default=None, help=argparse.SUPPRESS)
    common.add_argument(
        "--operator",
        metavar="NAME",
        help="who runs this, for the audit record (REDACTOR_OPERATOR; default: the OS user "
        "at this host, which is recorded anyway)",
    )
    return common


def register(sub: argparse._SubParsersAction, load_config: ConfigLoader) -> None:
    """Add the `outbox` group; every leaf is audited."""
    from redactor.ops.command_audit import audited

    group = sub.add_parser(
        "outbox",
        help="list, show, retry or drop queued messages (routes with delivery: queued)",
        description="The outbox of routes with `delivery: queued`: messages accepted (202) "
        "and waiting for delivery, or dead (their route's attempt or age limit was reached, "
        "or the upstream refused them). Every action is an audit record.",
    )
    leaves = group.add_subparsers(dest="outbox_command", metavar="COMMAND", required=True)

    def leaf(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = leaves.add_parser(
            name, help=help_text, description=help_text, parents=[_flags()]
        )
        parser.set_defaults(
            handler=audited(OUTBOX_EVENTS[name], handler), outbox_config=load_config
        )
        return parser

    listing = leaf("list", _handle_list, "list pending (or, with --dead, dead) messages")
    listing.add_argument("--dead", action="store_true", help="dead messages instead of pending")
    listing.add_argument("--route", help="only this route's")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = leaf("show", _handle_show, "print one message's redacted request")
    show.add_argument("outbox_id", metavar="ID")
    retry = leaf(
        "retry",
        _handle_retry,
        "make a message (ID) or every dead message (--dead) due now, its attempts and age "
        "counted afresh",
    )
    retry.add_argument("outbox_id", metavar="ID", nargs="?")
    retry.add_argument("--dead", action="store_true", help="every dead message")
    retry.add_argument("--route", help="with --dead: only this route's")
    drop = leaf(
        "drop", _handle_drop, "delete a message (ID) or every dead message (--dead), undelivered"
    )
    drop.add_argument("outbox_id", metavar="ID", nargs="?")
    drop.add_argument("--dead", action="store_true", help="every dead message")
    drop.add_argument("--route", help="with --dead: only this route's")


def _run(args: argparse.Namespace, action: Callable[[OutboxStore], Any]) -> int:
    """Open the store `serve` uses (never creating it), run `action` on its outbox."""
    import os

    from redactor.errors import ConfigError
    from vault.errors import VaultError
    from vault.startup import open_store

    async def main() -> int:
        config = args.outbox_config(args, os.environ)
        store = await open_store(config, create=False)
        try:
            await store.check_schema()
            result: int = await action(store.outbox())
            return result
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except (ConfigError, VaultError) as exc:
        print(f"redactor: {exc}", file=sys.stderr)
        return 2


def _summary(item: OutboxItem, now: float) -> dict[str, Any]:
    return {
        "id": item.id,
        "route": item.route,
        "state": item.state,
        "attempts": item.attempts,
        "age_s": round(now - item.created_at, 1),
        "due_in_s": round(max(0.0, item.next_at - now), 1) if item.state == "pending" else None,
        "leased": item.lease_until is not None and item.lease_until > now,
        "last_status": item.last_status,
        "last_error": item.last_error,
        "request_id": item.request_id,
    }


def _handle_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout

    async def action(outbox: OutboxStore) -> int:
        items = await outbox.items("dead" if args.dead else "pending", args.route, _LIST_LIMIT)
        now = time.time()
        rows = [_summary(item, now) for item in items]
        if args.json:
            for row in rows:
                print(json.dumps(row, sort_keys=True), file=out)
            return 0
        print(f"{len(rows)} {'dead' if args.dead else 'pending'} message(s)", file=out)
        for row in rows:
            due = "" if row["due_in_s"] is None else f" due in {row['due_in_s']}s"
            last = "" if row["last_status"] is None else f" last {row['last_status']}"
            error = "" if row["last_error"] is None else f" ({row['last_error']})"
            leased = " leased" if row["leased"] else ""
            print(
                f"{row['id']}  {row['route']}  attempts {row['attempts']}  "
                f"age {row['age_s']}s{due}{last}{error}{leased}",
                file=out,
            )
        return 0

    return _run(args, action)


def _handle_show(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout

    async def action(outbox: OutboxStore) -> int:
        item = await outbox.item(args.outbox_id)
        if item is None:
            print(f"redactor: no outbox message {args.outbox_id}", file=sys.stderr)
            return 1
        summary = _summary(item, time.time())
        for name in ("id", "route", "state", "attempts", "last_status", "last_error"):
            print(f"# {name}: {summary[name]}", file=out)
        # The redacted request, as the upstream gets it (plus Idempotency-Key).
        print(f"{item.method} {item.target}", file=out)
        for name, value in item.headers:
            shown = f"[hidden: {len(value)} characters]" if name.lower() in _HIDDEN else value
            print(f"{name}: {shown}", file=out)
        print(file=out)
        print(item.body.decode("utf-8", errors="replace"), file=out)
        return 0

    return _run(args, action)


def _one_or_dead(args: argparse.Namespace) -> str | None:
    if (args.outbox_id is None) == (not args.dead):
        return "give an ID or --dead (not both)"
    return None


def _handle_retry(args: argparse.Namespace) -> int:
    problem = _one_or_dead(args)
    if problem:
        print(f"redactor: {problem}", file=sys.stderr)
        return 2

    async def action(outbox: OutboxStore) -> int:
        count = await outbox.revive(args.outbox_id, args.route, time.time())
        print(f"{count} message(s) due now")
        return 0 if count or args.dead else 1

    return _run(args, action)


def _handle_drop(args: argparse.Namespace) -> int:
    problem = _one_or_dead(args)
    if problem:
        print(f"redactor: {problem}", file=sys.stderr)
        return 2

    async def action(outbox: OutboxStore) -> int:
        count = await outbox.drop(args.outbox_id, args.route)
        print(f"{count} message(s) dropped")
        return 0 if count or args.dead else 1

    return _run(args, action)
