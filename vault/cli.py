"""`redactor keys ...` and `redactor vault ...`: key rotation, migration, retention, erasure.

`register(subparsers)` adds both groups to the lead's parser. Each leaf sets
`handler(args, environ=None) -> int` (the exit code); the top-level CLI calls
`args.handler(args)`. Tests call it with an explicit `environ` mapping.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TextIO

from vault.config import VaultConfig, parse_duration_s
from vault.crypto import check_value
from vault.errors import (
    KeyRetireError,
    KeyStateChangedError,
    VaultConfigError,
    VaultError,
    VaultMissingError,
)
from vault.keyring import (
    KeyMaterial,
    LookupKeys,
    add_kek_version,
    generate_key_material,
    read_key_file,
    remove_kek_version,
    write_key_file,
)
from vault.keystate import describe, key_ring_problems, pending_rotation, readable_time
from vault.mark import acquire_lock, advance_mark, behind, read_mark, release_lock
from vault.retention import describe_plan, iso, purge_refusals
from vault.service import Vault
from vault.startup import (
    load_key_material,
    open_store,
    open_vault,
    writable_key_file,
)
from vault.stores.base import KekRecord, TokenStore
from vault.tokens import TOKEN_PATTERN

Handler = Callable[..., int]
# This command's own clock (purge compares it with the store's and the running processes').
_clock: Callable[[], float] = time.time
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
  REDACTOR_VAULT_MARK_FILE  the vault's high-water mark (default vault-mark.json in the
                      data directory); keep it out of the vault's backups
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
        "which active version. Exits 1 when the ring does not fit the vault or the vault is\n"
        "behind its high-water mark (BEHIND: restored from an older copy). Never prints key\n"
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
        "Delete tokens neither created, seen in a message nor resolved within the duration,\n"
        "counted from the database's clock (PostgreSQL now()) or this host's (SQLite).\n"
        "Refused without --force when the cutoff is later than the vault's newest activity\n"
        "or this clock is more than 5 minutes from a running process's check-in.\n"
        "Purged tokens resolve as not found.",
    )
    purge.add_argument(
        "--older-than", required=True, metavar="DURATION", help="e.g. 90d, 12h, 30m, 45s"
    )
    purge.add_argument(
        "--dry-run",
        action="store_true",
        help="print how many tokens would go and the cutoff as a date; delete nothing",
    )
    purge.add_argument(
        "--force",
        action="store_true",
        help="purge even when the cutoff is later than the vault's newest activity or this "
        "clock is more than 5 minutes from the running processes' check-ins",
    )
    accept = leaf(
        vault_sub,
        "accept-restore",
        _handle_accept_restore,
        "put a vault restored from an older copy back in service (after reconcile)",
        "A vault restored from a backup, snapshot or point-in-time recovery is behind the\n"
        "high-water mark kept outside it (REDACTOR_VAULT_MARK_FILE, default vault-mark.json in\n"
        "the data directory) and is refused with vault_behind. When no newer copy exists,\n"
        "list what was lost (`redactor vault reconcile --audit DIR`), then accept this copy:\n"
        "its counters are raised past the mark and it may start. Requires --yes.",
    )
    accept.add_argument(
        "--yes", action="store_true", help="confirm: tokens minted after the copy stay lost"
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


def run_command(
    body: Callable[[VaultConfig, TextIO], Coroutine[Any, Any, int]],
    args: argparse.Namespace,
    environ: Mapping[str, str] | None,
    out: TextIO | None,
    err: TextIO | None,
) -> int:
    """Run an async command body with the command's VaultConfig; vault errors become exit
    codes (1: refused or failed, 2: usage or configuration) and one value-free line on `err`.
    For commands registered on the `vault` group from outside (`add_vault_command`)."""
    return _run(body, args, environ, out, err)


def add_vault_command(
    subparsers: Any, name: str, handler: Handler, help_text: str, description: str
) -> argparse.ArgumentParser:
    """Add a leaf to the `vault` group `register` created, with the same configuration flags
    and ConfigLoader as its own commands (for commands that live outside vault/)."""
    group = subparsers.choices["vault"]
    leaves = next(a for a in group._actions if isinstance(a, argparse._SubParsersAction))
    load_config = next(iter(leaves.choices.values())).get_default("load_config")
    return _leaf(leaves, name, handler, help_text, description, load_config)


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


async def open_existing_store(config: VaultConfig) -> TokenStore:
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


@contextlib.asynccontextmanager
async def _key_file_lock(path: Path) -> AsyncIterator[None]:
    """`<key file>.lock`, held across a whole rotate or retire; never waited for.

    Raises KeyCommandBusyError if another command holds it.
    """
    fd = await asyncio.to_thread(acquire_lock, path.with_name(path.name + ".lock"), wait=False)
    try:
        yield
    finally:
        release_lock(fd)


async def _confirm_key_file(path: Path, active: int, check: bytes | None) -> KeyMaterial:
    """The key file as it is now, if its active version is `active` with check value `check`.

    Read again before success is printed: a writer that replaced the file meanwhile (another
    tool, a copy restored over it) makes the command fail instead of claiming success.
    Raises KeyStateChangedError.
    """
    material = await asyncio.to_thread(read_key_file, path)
    key = material.keks.get(active)
    if (
        material.active_version != active
        or key is None
        or (check is not None and not hmac.compare_digest(check_value(key, "kek"), check))
    ):
        raise KeyStateChangedError(
            f"{path} no longer holds kek version {active} as recorded in the vault (replaced "
            "meanwhile?); run `redactor keys list`"
        )
    return material


@_command
async def _handle_rotate(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    path = writable_key_file(config)
    # Lock order, every key command: the key file's lock, then the vault's key-command lock.
    async with _key_file_lock(path):
        material = await _key_ring(config)
        async with (
            await open_vault(config, create=False, bind=False) as vault,
            vault.store.key_command_lock(),
        ):
            version, note = await _rotate(vault, material, path)
    if note:
        print(note, file=out)
    print(
        f"kek version {version} is now active in {path} and in the vault.\n"
        "Running proxies load it from the key file within their key-check interval (with\n"
        "REDACTOR_KEYS inline: restart them with the new ring). Next: `redactor keys rewrap`.",
        file=out,
    )
    return 0


async def _rotate(vault: Vault, material: KeyMaterial, path: Path) -> tuple[int, str]:
    """Rotate under both locks: (the version now active, a note for the operator).

    The new version is claimed in the vault (pending, compare-and-set on the key epoch read
    here) before the key file is touched, so a command that lost a race fails without
    writing; the vault records it as active only after the key file holds it.
    Raises KeyStateChangedError, KeyRingMismatchError, VaultConfigError.
    """
    store = vault.store
    lookup_check = LookupKeys(material.index_key).check_value
    checks = {v: check_value(k, "kek") for v, k in material.keks.items()}
    state = await store.read_key_state()
    now = int(time.time())
    note = ""
    if state is not None and state.pending_version is not None:
        pending = state.pending_version
        ours = checks.get(pending)
        if material.active_version == pending and ours is not None:
            if state.pending_check is None or not hmac.compare_digest(ours, state.pending_check):
                raise KeyStateChangedError(
                    f"kek version {pending} is pending in the vault with another key than "
                    "the key file's; run `redactor keys list`"
                )
            # Interrupted after writing the key file: record what it holds, add nothing.
            await store.record_rotation(
                KekRecord(pending, "active", ours, now), now, expected_epoch=state.epoch
            )
            await _confirm_key_file(path, pending, ours)
            return pending, "finished an interrupted rotation"
        # Interrupted before its key file was written: both locks are ours, so no command
        # is still on its way to write it. Drop the claim and rotate afresh.
        await store.clear_pending(state.epoch)
        note = f"dropped an interrupted rotation to kek version {pending} (never written)"
        state = await store.read_key_state()
    if state is not None and pending_rotation(state, checks, material.active_version, lookup_check):
        # Interrupted after writing the key file by a version without pending claims.
        version = material.active_version
        record = KekRecord(version, "active", checks[version], now)
        epoch = await store.claim_rotation(record, state.epoch)
        await store.record_rotation(record, now, expected_epoch=epoch)
        await _confirm_key_file(path, version, checks[version])
        return version, "finished an interrupted rotation"
    await vault.bind_keys()
    state = await store.read_key_state()
    if state is None:
        raise KeyStateChangedError("the vault records no key ring")
    recorded = max((k.version for k in state.keks), default=0)
    rotated = add_kek_version(material, secrets.token_bytes)
    version = rotated.active_version
    if version <= recorded:
        raise VaultConfigError("the vault records a newer kek version than the key file")
    new = KekRecord(version, "active", check_value(rotated.keks[version], "kek"), now)
    # A command that read the same epoch and got here second fails now, key file untouched.
    epoch = await store.claim_rotation(new, state.epoch)
    # Key file next: if recording fails, `keys rotate` again finds the claim and records it.
    await asyncio.to_thread(write_key_file, path, rotated)
    await store.record_rotation(new, now, expected_epoch=epoch)
    await _confirm_key_file(path, version, new.check_value)
    return version, note


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
    async with _key_file_lock(path):
        material = await _key_ring(config)
        if version == material.active_version:
            raise KeyRetireError(f"kek version {version} is active; rotate first")
        async with (
            await open_vault(config, create=False) as vault,
            vault.store.key_command_lock(),
        ):
            state = await vault.store.read_key_state()
            if state is not None and state.pending_version is not None:
                raise KeyRetireError(
                    f"a rotation to kek version {state.pending_version} is pending; "
                    "run `redactor keys rotate` to finish it first"
                )
            # Checked and recorded in one store transaction: data keys and live
            # check-ins, and the epoch read just above (CAS).
            await vault.store.record_retirement(
                version,
                int(time.time()),
                expected_epoch=None if state is None else state.epoch,
            )
            if version in material.keks:
                await asyncio.to_thread(write_key_file, path, remove_kek_version(material, version))
            after = await _confirm_key_file(path, material.active_version, None)
            if version in after.keks:
                raise KeyStateChangedError(
                    f"{path} still holds kek version {version} (replaced meanwhile?)"
                )
    print(f"kek version {version} retired in the vault and removed from {path}", file=out)
    return 0


@_command
async def _handle_list(args: argparse.Namespace, config: VaultConfig, out: TextIO) -> int:
    # The store first: a missing vault stops here, before a development key is generated.
    store = await open_existing_store(config)
    try:
        material = await _key_ring(config)
        state = await store.read_key_state()
        usage = {u.kek_version: u for u in await store.kek_usage()}
        beats = await store.live_heartbeats(int(time.time()))
        mark = await store.read_mark()
    finally:
        await store.close()
    outside = await asyncio.to_thread(read_mark, config.vault_mark_file, mark.vault_id)
    lag = behind(mark, outside)
    if lag is not None:
        print(f"BEHIND: {lag}", file=out)
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
        return 1 if lag is not None else 0
    problems = key_ring_problems(
        state,
        checks,
        material.active_version,
        LookupKeys(material.index_key).check_value,
        {v: u.deks for v, u in usage.items()},
    )
    for problem in problems:
        print(f"MISMATCH: {problem}", file=out)
    return 1 if problems or lag is not None else 0


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


def _handle_purge(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    older_than: str = args.older_than
    errors = err or sys.stderr

    async def body(config: VaultConfig, out: TextIO) -> int:
        seconds = parse_duration_s(older_than)
        async with await open_vault(config, create=False) as vault:
            plan = await vault.plan_purge(seconds, local_now=int(_clock()))
            problems = purge_refusals(plan)
            if args.dry_run:
                print(describe_plan(plan), file=out)
                for problem in problems:
                    print(f"would be refused without --force: {problem}", file=out)
                return 0
            if problems and not args.force:
                for problem in problems:
                    print(f"error: purge_refused: {problem}", file=errors)
                print(
                    "nothing purged: check this host's clock (`--dry-run` shows the cutoff); "
                    "--force purges anyway",
                    file=errors,
                )
                return 1
            count = await vault.purge_before(plan.cutoff)
        print(
            f"purged {count} tokens idle for more than {older_than} (idle since before "
            f"{iso(plan.cutoff)} by {plan.clock})",
            file=out,
        )
        return 0

    return _run(body, args, environ, out, err)


def _handle_accept_restore(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    errors = err or sys.stderr

    async def body(config: VaultConfig, out: TextIO) -> int:
        mark_file = config.vault_mark_file
        async with await open_vault(config, create=False, bind=False, check_mark=False) as vault:
            current = await vault.store.read_mark()
            recorded = await asyncio.to_thread(read_mark, mark_file, current.vault_id)
            if recorded is None or behind(current, recorded) is None:
                print(
                    f"the vault ({current.describe()}) is not behind the mark in {mark_file}; "
                    "nothing to accept",
                    file=out,
                )
                return 0
            if not args.yes:
                print(
                    f"error: the vault is at {current.describe()}, the mark at "
                    f"{recorded.describe()}: tokens minted after this copy was made are lost "
                    "for good once it is accepted (list them first with `redactor vault "
                    "reconcile --audit DIR`); repeat with --yes to accept",
                    file=errors,
                )
                return 2
            accepted = await vault.store.accept_mark(recorded)
            await asyncio.to_thread(advance_mark, mark_file, accepted)
        print(
            f"accepted: the vault was at {current.describe()}, behind {recorded.describe()}; "
            f"it is now at {accepted.describe()} and may start. Tokens minted after the copy "
            "was made resolve as not found; `redactor vault reconcile --audit DIR --record` "
            "lists them and has the vault log each one at error level when it is asked for.",
            file=out,
        )
        return 0

    return _run(body, args, environ, out, err)


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
