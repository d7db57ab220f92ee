"""`redactor keys ...` and `redactor vault ...`: key rotation, migration, retention, erasure.

`register(subparsers)` adds both groups to the lead's parser. Each leaf sets
`handler(args, environ=None) -> int` (the exit code); the top-level CLI calls
`args.handler(args)`. Tests call it with an explicit `environ` mapping.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TextIO

from vault.config import VaultConfig, parse_duration_s
from vault.errors import KeyRetireError, VaultConfigError, VaultError
from vault.keyring import (
    add_kek_version,
    generate_key_material,
    read_key_file,
    remove_kek_version,
    write_key_file,
)
from vault.startup import load_key_material, open_store, open_vault, writable_key_file
from vault.tokens import TOKEN_PATTERN

Handler = Callable[..., int]

_CONFIG_EPILOG = """\
configuration (flags override the environment):
  REDACTOR_DATA_DIR   data directory (default ./redactor-data)
  REDACTOR_VAULT_URL  sqlite:///rel/path.db, sqlite:////abs/path.db or
                      postgresql://user@host:5432/db?schema=NAME
                      (default: sqlite in the data directory)
  REDACTOR_KEY_FILE   key file (JSON, base64 32-byte keys, one active version)
  REDACTOR_KEYS       the same JSON inline (cannot be rotated by this tool)
  REDACTOR_DEV        true: generate a development key into the data directory
"""


def _common_flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("vault configuration")
    group.add_argument("--data-dir", metavar="DIR", help="data directory (REDACTOR_DATA_DIR)")
    group.add_argument("--vault-url", metavar="URL", help="vault store URL (REDACTOR_VAULT_URL)")
    group.add_argument("--key-file", metavar="PATH", help="key file (REDACTOR_KEY_FILE)")
    group.add_argument(
        "--dev",
        action="store_true",
        default=None,
        help="development mode: use or generate a key in the data directory (REDACTOR_DEV)",
    )
    return common


def _leaf(
    group: Any, name: str, handler: Handler, help_text: str, description: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=_CONFIG_EPILOG,
        parents=[_common_flags()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def register(subparsers: Any) -> None:
    """Add the `keys` and `vault` command groups to an argparse subparsers object."""
    keys = subparsers.add_parser(
        "keys",
        help="rotate, re-wrap, retire and list key-encryption keys",
        description="Manage the versioned key-encryption keys (KEKs) of the vault.\n\n"
        "Rotation, step by step: `keys rotate` (new active version in the key file), restart\n"
        "the proxies so they load it, `keys rewrap` (moves data keys to it), then\n"
        "`keys retire OLD` once nothing needs the old version.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    _leaf(
        keys_sub,
        "init",
        _handle_init,
        "create a new key file (first KEK and index key) for production use",
        "Create the key file named by --key-file / REDACTOR_KEY_FILE with a new random KEK\n"
        "(version 1) and lookup index key. Written atomically with mode 0600. Refuses to\n"
        "overwrite an existing file: losing keys makes every stored value unreadable.",
    )
    _leaf(
        keys_sub,
        "rotate",
        _handle_rotate,
        "add a KEK version and make it active",
        "Add a new random KEK version to the key file and make it active for new data keys.\n"
        "Older versions stay in the file for reading. Writes the file atomically (mode 0600).\n"
        "Running proxies keep their old key ring until restarted.",
    )
    _leaf(
        keys_sub,
        "rewrap",
        _handle_rewrap,
        "re-wrap data keys under the active KEK (values are not re-encrypted)",
        "Re-wrap every data key under the active KEK. Values are not re-encrypted.\n"
        "Resumable (run it again after an interruption) and safe while proxies serve; run it\n"
        "after every proxy has been restarted with the rotated key file.",
    )
    retire = _leaf(
        keys_sub,
        "retire",
        _handle_retire,
        "remove a KEK version that nothing needs any more",
        "Remove KEK VERSION from the key file. Refused, naming what still needs it, while it\n"
        "is active or while data keys are still wrapped by it (run `keys rewrap` first).",
    )
    retire.add_argument("version", metavar="VERSION", type=int, help="KEK version to remove")
    _leaf(
        keys_sub,
        "list",
        _handle_list,
        "list KEK versions and the data keys each still wraps",
        "List the configured KEK versions, which one is active, and how many data keys\n"
        "(of how many tenants) each still wraps. Never prints key material.",
    )

    vault = subparsers.add_parser(
        "vault",
        help="migrate the vault store, purge old tokens, erase tokens or tenants",
        description="Maintain the token vault: schema, retention and erasure.",
    )
    vault_sub = vault.add_subparsers(dest="vault_command", metavar="COMMAND", required=True)
    _leaf(
        vault_sub,
        "migrate",
        _handle_migrate,
        "create or upgrade the vault schema (idempotent)",
        "Create or upgrade the vault schema. Idempotent and safe to run from several\n"
        "processes at once.",
    )
    purge = _leaf(
        vault_sub,
        "purge",
        _handle_purge,
        "delete tokens idle for longer than a duration",
        "Delete tokens neither created, seen in a message nor resolved within the duration.\n"
        "Purged tokens resolve as not found.",
    )
    purge.add_argument(
        "--older-than", required=True, metavar="DURATION", help="e.g. 90d, 12h, 30m, 45s"
    )
    erase_token = _leaf(
        vault_sub,
        "erase-token",
        _handle_erase_token,
        "erase the value behind one token",
        "Erase the value behind TOKEN. The token then resolves as erased.",
    )
    erase_token.add_argument("token", metavar="TOKEN", help="e.g. tok_v1_ssn_<id>")
    erase_token.add_argument("--tenant", required=True, metavar="TENANT", help="tenant id")
    erase_tenant = _leaf(
        vault_sub,
        "erase-tenant",
        _handle_erase_tenant,
        "crypto-shred a whole tenant (irreversible)",
        "Destroy TENANT's data keys and ciphertexts (crypto-shredding). Irreversible: every\n"
        "token of the tenant resolves as erased afterwards. Requires --yes.",
    )
    erase_tenant.add_argument("tenant", metavar="TENANT", help="tenant id")
    erase_tenant.add_argument(
        "--yes", action="store_true", help="confirm: the tenant's values cannot be recovered"
    )


def _config(args: argparse.Namespace, environ: Mapping[str, str] | None) -> VaultConfig:
    return VaultConfig.from_environ(
        os.environ if environ is None else environ,
        data_dir=args.data_dir,
        vault_url=args.vault_url,
        key_file=args.key_file,
        dev=args.dev,
    )


CommandBody = Callable[[argparse.Namespace, VaultConfig, TextIO], Coroutine[Any, Any, int]]


def _command(body: CommandBody) -> Handler:
    """A CLI handler `handler(args, environ=None, out=None, err=None) -> exit code` around an
    async command body; `_run` builds the config and maps vault errors to exit codes."""

    def handler(
        args: argparse.Namespace,
        environ: Mapping[str, str] | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> int:
        return _run(lambda config, stream: body(args, config, stream), args, environ, out, err)

    handler.__doc__ = body.__doc__
    return handler


def _run(
    body: Callable[[VaultConfig, TextIO], Coroutine[Any, Any, int]],
    args: argparse.Namespace,
    environ: Mapping[str, str] | None,
    out: TextIO | None,
    err: TextIO | None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return asyncio.run(body(_config(args, environ), out))
    except KeyRetireError as exc:
        print(f"error: {exc.code}: {exc}", file=err)
        return 1
    except VaultError as exc:
        # Messages are fixed text plus our own value-free detail: safe to print.
        print(f"error: {exc.code}: {exc}", file=err)
        return 2 if exc.status < 500 or exc.code.endswith("config_invalid") else 1


@_command
async def _handle_init(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    if config.key_file is None:
        raise VaultConfigError("keys init needs --key-file or REDACTOR_KEY_FILE")
    path = config.key_file
    if await asyncio.to_thread(path.exists):
        raise VaultConfigError("key file exists; refusing to overwrite it")
    await asyncio.to_thread(write_key_file, path, generate_key_material(secrets.token_bytes))
    print(
        f"created {path} (kek version 1). Keep a copy in your secret store: without it the\n"
        "vault cannot be read. Start with REDACTOR_KEY_FILE pointing at it.",
        file=out,
    )
    return 0


@_command
async def _handle_rotate(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    path = writable_key_file(config)
    if config.dev and config.key_file is None:
        # Loads or generates the dev key first, logging it loudly.
        material = await load_key_material(config)
    else:
        material = await asyncio.to_thread(read_key_file, path)
    rotated = add_kek_version(material, secrets.token_bytes)
    await asyncio.to_thread(write_key_file, path, rotated)
    print(
        f"kek version {rotated.active_version} is now active in {path}.\n"
        "Next: restart the proxies so they load it, then run `redactor keys rewrap`.",
        file=out,
    )
    return 0


@_command
async def _handle_rewrap(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    async with await open_vault(config) as vault:
        report = await vault.rewrap()
    print(
        f"re-wrapped {report.rewrapped} data keys; {report.skipped} changed meanwhile "
        "(run again to pick them up)",
        file=out,
    )
    if report.failed_versions:
        versions = ", ".join(str(v) for v in report.failed_versions)
        print(
            f"could not unwrap data keys of kek versions {versions}: the key file lacks "
            "them or they do not verify",
            file=out,
        )
        return 1
    return 0


@_command
async def _handle_retire(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    version: int = args.version
    path = writable_key_file(config)
    material = await asyncio.to_thread(read_key_file, path)
    if version == material.active_version:
        raise KeyRetireError(f"kek version {version} is active; rotate first")
    if version not in material.keks:
        raise KeyRetireError(f"kek version {version} is not in the key file")
    async with await open_vault(config) as vault:
        usage = {u.kek_version: u for u in await vault.kek_usage()}
    still = usage.get(version)
    if still is not None and still.deks:
        raise KeyRetireError(
            f"kek version {version} still wraps {still.deks} data keys of "
            f"{still.tenants} tenants; run `redactor keys rewrap` first"
        )
    await asyncio.to_thread(write_key_file, path, remove_kek_version(material, version))
    print(f"kek version {version} removed from {path}", file=out)
    return 0


@_command
async def _handle_list(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    material = await load_key_material(config)
    store = await open_store(config)
    try:
        await store.check_schema()
        usage = {u.kek_version: u for u in await store.kek_usage()}
    finally:
        await store.close()
    for version in material.versions:
        marker = "active" if version == material.active_version else "read-only"
        u = usage.get(version)
        deks, tenants = (u.deks, u.tenants) if u is not None else (0, 0)
        print(
            f"kek version {version} ({marker}): wraps {deks} data keys of {tenants} tenants",
            file=out,
        )
    for version in sorted(set(usage) - set(material.keks)):
        print(
            f"kek version {version} (MISSING from key ring): wraps {usage[version].deks} data keys",
            file=out,
        )
    return 0


@_command
async def _handle_migrate(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    store = await open_store(config)
    try:
        version = await store.migrate()
    finally:
        await store.close()
    print(f"vault schema is at version {version} ({config.backend})", file=out)
    return 0


@_command
async def _handle_purge(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    older_than: str = args.older_than
    seconds = parse_duration_s(older_than)
    async with await open_vault(config) as vault:
        count = await vault.purge(seconds)
    print(f"purged {count} tokens idle for more than {older_than}", file=out)
    return 0


def _handle_erase_token(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    token: str = args.token
    tenant: str = args.tenant

    async def body(config: VaultConfig, out: TextIO) -> int:
        async with await open_vault(config) as vault:
            found = await vault.erase_token(tenant, token)
        # Only a well-formed token reaches this point (erase_token parses it first).
        print(f"{token}: {'erased' if found else 'not found'}", file=out)
        return 0 if found else 1

    if TOKEN_PATTERN.fullmatch(token) is None:
        print("error: token_invalid: not a valid token", file=err or sys.stderr)
        return 2
    return _run(body, args, environ, out, err)


def _handle_erase_tenant(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    tenant: str = args.tenant

    async def body(config: VaultConfig, out: TextIO) -> int:
        async with await open_vault(config) as vault:
            count = await vault.erase_tenant(tenant)
        print(
            f"tenant {tenant}: data keys destroyed, {count} tokens now resolve as erased", file=out
        )
        return 0

    if not args.yes:
        print(
            "error: erasing a tenant is irreversible; repeat with --yes to confirm",
            file=err or sys.stderr,
        )
        return 2
    return _run(body, args, environ, out, err)
