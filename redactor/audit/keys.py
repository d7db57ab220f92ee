"""The audit key: 32 random bytes of its own (never the vault's KEK), from a file or the
environment; development mode generates one into the data directory, loudly.

A key file holds the key as base64 on one line. Blocking I/O: call at start, or through
`asyncio.to_thread`.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

import structlog

from redactor.audit.chain import KEY_BYTES, key_id
from redactor.errors import ConfigError, file_problem

log = structlog.get_logger()

DEV_AUDIT_KEY_FILE_NAME = "dev-audit-key"


def parse_audit_key(text: str, name: str) -> bytes:
    """Decode base64 key text. Raises ConfigError naming `name` (never the text)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{name} must decode to 32 bytes")
    return key


def write_audit_key_file(path: Path) -> bytes:
    """Create `path` (mode 0600) with a new random key; refuses to overwrite. Returns the key."""
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError("audit key file exists; refusing to overwrite it") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


def load_audit_key(
    *, key_file: Path | None, inline: str | None, dev_data_dir: Path | None
) -> bytes:
    """The audit key from `key_file`, else `inline` (REDACTOR_AUDIT_KEY), else, in development
    mode (`dev_data_dir` given), the generated key in the data directory.

    Raises ConfigError naming the setting when none is configured or it does not decode.
    """
    if key_file is not None:
        try:
            text = key_file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"audit_key_file: {file_problem(key_file, exc)}") from None
        return parse_audit_key(text, "audit_key_file")
    if inline is not None:
        return parse_audit_key(inline, "REDACTOR_AUDIT_KEY")
    if dev_data_dir is None:
        raise ConfigError(
            "an audit key is required: set REDACTOR_AUDIT_KEY_FILE (create one with "
            "`redactor audit init-key FILE`) or REDACTOR_AUDIT_KEY"
        )
    path = dev_data_dir / DEV_AUDIT_KEY_FILE_NAME
    if path.exists():
        return parse_audit_key(path.read_text(encoding="ascii"), str(path))
    key = write_audit_key_file(path)
    log.warning(
        "dev_audit_key_generated",
        message="DEVELOPMENT MODE: a generated key in the data directory signs the audit trail. "
        "Anyone who can read it can forge audit records.",
        path=str(path),
        kid=key_id(key),
    )
    return key
