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
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TextIO

from vault.config import VaultConfig, parse_duration_s
from vault.crypto import check_value
from vault.errors import KeyRetireError, VaultConfigError, VaultError, VaultMissingError
from vault.keyring import (
    KeyMaterial,
    LookupKeys,
    add_kek_version,
    generate_key_material,
    remove_kek_version,
    write_key_file,
)
from vault.keystate import describe, key_ring_problems, pending_rotation, readable_time
from vault.startup import (
    load_key_material,
    open_store,
    open_vault,
    writable_key_file,
)
from vault.stores.base import KekRecord, TokenStore
from vault.tokens import TOKEN_PATTERN

Handler = Callable[..., int]
# Builds the VaultConfig of a command from its flags and the environment. `redactor` passes
# one that also reads --config FILE, so admin commands see exactly what `serve` sees.
ConfigLoader = Callable[[argparse.Namespace, Mapping[str, str]], VaultConfig]

_CONFIG_EPILOG = """\
configuration (the same as `redactor serve`: --config FILE, then the environment,
then flags):
  REDACTOR_CONFIG     YAML configuration file (data_dir, vault.url, vault.key_file)
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
    group.add_argument(
        "--config", metavar="FILE", help="the YAML file `serve` reads (REDACTOR_CONFIG)"
    )
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
    group: Any,
    name: str,
    handler: Handler,
    help_text: str,
    description: str,
    load_config: ConfigLoader,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=_CONFIG_EPILOG,
        parents=[_common_flags()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler, load_config=load_config)
    return parser


def config_from_flags(args: argparse.Namespace, environ: Mapping[str, str]) -> VaultConfig:
    """The default ConfigLoader: REDACTOR_* environment and flags (no --config file).

    Raises VaultConfigError if --config is given: reading it takes the `redactor` command.
    """
    if getattr(args, "config", None):
        raise VaultConfigError("--config is read by the `redactor` command")
    return VaultConfig.from_environ(
        environ,
        data_dir=args.data_dir,
        vault_url=args.vault_url,
        key_file=args.key_file,
        dev=args.dev,
    )


def register(subparsers: Any, load_config: ConfigLoader = config_from_flags) -> None:
    """Add the `keys` and `vault` command groups to an argparse subparsers object.

    `load_config` turns flags and environment into the VaultConfig of each command.
    """

    def leaf(
        group: Any, name: str, handler: Handler, help_text: str, description: str
    ) -> argparse.ArgumentParser:
        return _leaf(group, name, handler, help_text, description, load_config)

    keys = subparsers.add_parser(
        "keys",
        help="rotate, re-wrap, retire and list key-encryption keys",
        description="Manage the versioned key-encryption keys (KEKs) of the vault.\n\n"
        "Rotation, step by step: `keys rotate` (new active version in the key file and in the\n"
        "vault; running proxies load it from the key file within their key-check interval),\n"
        "`keys rewrap` (moves data keys to it), then `keys retire OLD` (refused while a data\n"
        "key or a running process still needs the old version).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    leaf(
        keys_sub,
        "init",
        _handle_init,
        "create a new key file (first KEK and index key) for production use",
        "Create the key file named by --key-file / REDACTOR_KEY_FILE with a new random KEK\n"
        "(version 1) and lookup index key. Written atomically with mode 0600. Refuses to\n"
        "overwrite an existing file: losing keys makes every stored value unreadable.",
    )
    leaf(
        keys_sub,
        "rotate",
        _handle_rotate,
        "add a KEK version and make it active",
        "Add a new random KEK version to the key file and make it active for new data keys.\n"
        "Older versions stay in the file for reading. Writes the file atomically (mode 0600),\n"
        "then records the new version in the vault. Running proxies see the record within\n"
        "their key-check interval and re-read the key file (inline REDACTOR_KEYS: restart\n"
        "them with the new ring; until then they refuse to create new data keys).",
    )
    leaf(
        keys_sub,
        "rewrap",
        _handle_rewrap,
        "re-wrap data keys under the active KEK (values are not re-encrypted)",
        "Re-wrap every data key under the active KEK. Values are not re-encrypted.\n"
        "Resumable (run it again after an interruption) and safe while proxies serve; run it\n"
        "after every proxy has been restarted with the rotated key file.",
    )
    retire = leaf(
        keys_sub,
        "retire",
        _handle_retire,
        "remove a KEK version that nothing needs any more",
        "Record KEK VERSION as retired in the vault and remove it from the key file. Refused,\n"
        "naming what still needs it, while it is active, while data keys are still wrapped by\n"
        "it (run `keys rewrap` first) or while a running process that checked in recently\n"
        "still holds it as its active version.",
    )
    retire.add_argument("version", metavar="VERSION", type=int, help="KEK version to remove")
    leaf(
        keys_sub,
        "list",
        _handle_list,
        "list KEK versions and the data keys each still wraps",
        "List the KEK versions of the key ring and of the vault: state and since when, how\n"
        "many data keys (of how many tenants) each still wraps, which running processes hold\n"
        "which active version. Exits 1 when the ring does not fit the vault. Never prints key\n"
        "material. Never creates a vault.",
    )

    vault = subparsers.add_parser(
        "vault",
        help="migrate the vault store, purge old tokens, erase tokens or tenants",
        description="Maintain the token vault: schema, retention and erasure.",
    )
    vault_sub = vault.add_subparsers(dest="vault_command", metavar="COMMAND", required=True)
    leaf(
        vault_sub,
        "init",
        _handle_vault_init,
        "create the vault and record the key ring it is made with (first run)",
        "Create the vault (SQLite file or PostgreSQL schema) and record the key ring's check\n"
        "values. `redactor serve` never creates a vault outside --dev unless given\n"
        "--create-vault: a missing vault is an error, not a fresh empty one. Safe to run again:\n"
        "an existing vault is only checked against the key ring.",
    )
    leaf(
        vault_sub,
        "migrate",
        _handle_migrate,
        "create or upgrade the vault schema (idempotent)",
        "Upgrade the schema of an existing vault. Idempotent and safe to run from several\n"
        "processes at once. A missing vault is an error (create it with `vault init`).",
    )
    purge = leaf(
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
    erase_token = leaf(
        vault_sub,
        "erase-token",
        _handle_erase_token,
        "erase the value behind one token",
        "Erase the value behind TOKEN. The token then resolves as erased.",
    )
    erase_token.add_argument("token", metavar="TOKEN", help="e.g. tok_v1_ssn_<id>")
    erase_token.add_argument("--tenant", required=True, metavar="TENANT", help="tenant id")
    erase_tenant = leaf(
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
    load: ConfigLoader = getattr(args, "load_config", config_from_flags)
    return load(args, os.environ if environ is None else environ)


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


async def _open_existing_store(config: VaultConfig) -> TokenStore:
    """The store of an existing, migrated vault; never creates one.

    Raises VaultMissingError, VaultSchemaError, VaultUnavailableError.
    """
    store = await open_store(config, create=False)
    opened = False
    try:
        if await store.exists():
            await store.check_schema()
            opened = True
    finally:
        if not opened:
            await store.close()
    if not opened:
        raise VaultMissingError("no vault at the configured location; run `redactor vault init`")
    return store


async def _key_ring(config: VaultConfig) -> KeyMaterial:
    dev_key = config.dev and config.key_file is None and config.inline_keys is None
    # Loads the dev key, never generates one: the vault exists, so its dev key does too.
    if dev_key and not await asyncio.to_thread(config.dev_key_file.exists):
        raise VaultConfigError("no development key in the data directory")
    return await load_key_material(config)


@_command
async def _handle_vault_init(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    probe = await open_store(config, create=False) if config.backend == "postgresql" else None
    existed = False
    if probe is not None:
        try:
            existed = await probe.exists()
        finally:
            await probe.close()
    elif await asyncio.to_thread(config.sqlite_path.exists):
        existed = True
    async with await open_vault(config, create=True) as vault:
        state = await vault.store.read_key_state()
    versions = ", ".join(f"{k.version} ({k.state})" for k in state.keks) if state else ""
    where = config.sqlite_path if config.backend == "sqlite" else f"schema {config.pg_schema}"
    verb = "exists; its key records match the key ring" if existed else "created"
    print(f"vault at {where} {verb}: kek versions {versions}", file=out)
    return 0


@_command
async def _handle_rotate(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    path = writable_key_file(config)
    material = await _key_ring(config)
    async with await open_vault(config, create=False, bind=False) as vault:
        store = vault.store
        lookup_check = LookupKeys(material.index_key).check_value
        checks = {v: check_value(k, "kek") for v, k in material.keks.items()}
        state = await store.read_key_state()
        now = int(time.time())
        if state is not None and pending_rotation(
            state, checks, material.active_version, lookup_check
        ):
            # A rotation interrupted after writing the key file: record it, add nothing.
            version = material.active_version
            await store.record_rotation(KekRecord(version, "active", checks[version], now), now)
        else:
            await vault.bind_keys()
            state = await store.read_key_state()
            recorded = max((k.version for k in state.keks), default=0) if state else 0
            rotated = add_kek_version(material, secrets.token_bytes)
            version = rotated.active_version
            if version <= recorded:
                raise VaultConfigError("the vault records a newer kek version than the key file")
            # Key file first: if recording fails, running `keys rotate` again records it.
            await asyncio.to_thread(write_key_file, path, rotated)
            new = KekRecord(version, "active", check_value(rotated.keks[version], "kek"), now)
            await store.record_rotation(new, now)
    print(
        f"kek version {version} is now active in {path} and in the vault.\n"
        "Running proxies load it from the key file within their key-check interval (with\n"
        "REDACTOR_KEYS inline: restart them with the new ring). Next: `redactor keys rewrap`.",
        file=out,
    )
    return 0


@_command
async def _handle_rewrap(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    async with await open_vault(config, create=False) as vault:
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
    material = await _key_ring(config)
    if version == material.active_version:
        raise KeyRetireError(f"kek version {version} is active; rotate first")
    async with await open_vault(config, create=False) as vault:
        # Checked and recorded in one store transaction: data keys and live check-ins.
        await vault.store.record_retirement(version, int(time.time()))
    if version in material.keks:
        await asyncio.to_thread(write_key_file, path, remove_kek_version(material, version))
    print(f"kek version {version} retired in the vault and removed from {path}", file=out)
    return 0


@_command
async def _handle_list(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    # The store first: a missing vault stops here, before a development key is generated.
    store = await _open_existing_store(config)
    try:
        material = await _key_ring(config)
        state = await store.read_key_state()
        usage = {u.kek_version: u for u in await store.kek_usage()}
        beats = await store.live_heartbeats(int(time.time()))
    finally:
        await store.close()
    checks = {v: check_value(k, "kek") for v, k in material.keks.items()}
    recorded = {k.version: k for k in state.keks} if state else {}
    for version in sorted(set(checks) | set(recorded) | set(usage)):
        record = recorded.get(version)
        in_vault = describe(record) if record else "not recorded in the vault"
        if version in checks:
            in_ring = "in key ring"
        elif record is not None and record.state == "retired":
            in_ring = "not in key ring (no longer needed)"
        else:
            in_ring = "MISSING from key ring"
        if version == material.active_version:
            in_ring += " (ring's active)"
        u = usage.get(version)
        deks, tenants = (u.deks, u.tenants) if u is not None else (0, 0)
        print(
            f"kek version {version}: {in_vault}; {in_ring}; wraps {deks} data keys of "
            f"{tenants} tenants",
            file=out,
        )
    for beat in beats:
        print(
            f"process {beat.process_id}: active kek version {beat.active_version}, "
            f"checked in at {readable_time(beat.seen_at)}",
            file=out,
        )
    if state is None:
        print("the vault records no key ring yet (it is recorded at the next start)", file=out)
        return 0
    problems = key_ring_problems(
        state,
        checks,
        material.active_version,
        LookupKeys(material.index_key).check_value,
        {v: u.deks for v, u in usage.items()},
    )
    for problem in problems:
        print(f"MISMATCH: {problem}", file=out)
    return 1 if problems else 0


@_command
async def _handle_migrate(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    store = await open_store(config, create=False)
    try:
        if not await store.exists():
            raise VaultMissingError("no vault to migrate; create it with `redactor vault init`")
        version = await store.migrate()
    finally:
        await store.close()
    print(f"vault schema is at version {version} ({config.backend})", file=out)
    return 0


@_command
async def _handle_purge(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    older_than: str = args.older_than
    seconds = parse_duration_s(older_than)
    async with await open_vault(config, create=False) as vault:
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
        async with await open_vault(config, create=False) as vault:
            found = await vault.erase_token(tenant, token)
        # Only a well-formed token reaches this point (erase_token parses it first).
        if found:
            print(f"{token}: erased", file=out)
            return 0
        print(f"error: not_found: no token {token} in tenant {tenant}", file=err or sys.stderr)
        return 1

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
        async with await open_vault(config, create=False) as vault:
            count = await vault.erase_tenant(tenant)
        if count is None:
            print(
                f"error: not_found: the vault holds nothing of tenant {tenant}; nothing erased",
                file=err or sys.stderr,
            )
            return 1
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
