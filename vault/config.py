"""Vault configuration: one frozen object built from an environment mapping plus flags.

`VaultConfig.from_environ` is pure: it reads only the mapping it is given (the CLI passes
`os.environ`), touches no disk and validates everything it can without I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from vault.errors import VaultConfigError

DEFAULT_DATA_DIR = Path("redactor-data")
DEV_KEY_FILE_NAME = "dev-keys.json"
# The vault's high-water mark (vault/mark.py), in the data directory unless set elsewhere.
MARK_FILE_NAME = "vault-mark.json"
DEFAULT_PG_SCHEMA = "redactor_vault"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Secret:
    """A string that never shows itself in a repr, str or log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret text; call only where it is used."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class VaultConfig:
    """Everything the vault needs at start. Build it with `from_environ`."""

    data_dir: Path
    # The URL may hold a database password, hence Secret.
    vault_url: Secret
    key_file: Path | None
    inline_keys: Secret | None = field(default=None)
    dev: bool = False
    pg_schema: str = DEFAULT_PG_SCHEMA
    pool_min_size: int = 2
    pool_max_size: int = 10
    acquire_timeout_s: float = 2.0
    statement_timeout_s: float = 5.0
    # Policy default: a card token shows the last four digits, an SSN token nothing.
    card_last4: bool = True
    # Create a missing vault (`serve --create-vault`, `vault init`); development mode
    # always may. Otherwise a missing vault stops the start: an empty one loses every token.
    create: bool = False
    # How often a serving process reads the vault's key state and checks in (heartbeat).
    key_check_interval_s: float = 2.0
    # Where the vault's high-water mark is kept (REDACTOR_VAULT_MARK_FILE); None: the data
    # directory. Keep it out of the vault's backups, or a restore brings the old mark back too.
    mark_file: Path | None = None

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return "sqlite" if self.vault_url.reveal().startswith("sqlite:") else "postgresql"

    @property
    def sqlite_path(self) -> Path:
        """The database file of a SQLite URL.

        SQLAlchemy's convention: `sqlite:///rel/vault.db` is relative to the working
        directory, `sqlite:////abs/vault.db` is absolute.
        """
        return Path(urlsplit(self.vault_url.reveal()).path[1:])

    @property
    def dev_key_file(self) -> Path:
        """Where development mode keeps its generated key."""
        return self.data_dir / DEV_KEY_FILE_NAME

    @property
    def vault_mark_file(self) -> Path:
        """The mark file: REDACTOR_VAULT_MARK_FILE, or `vault-mark.json` in the data directory."""
        return self.mark_file if self.mark_file is not None else self.data_dir / MARK_FILE_NAME

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        data_dir: str | Path | None = None,
        vault_url: str | None = None,
        key_file: str | Path | None = None,
        dev: bool | None = None,
        **overrides: object,
    ) -> VaultConfig:
        """Build the config from `environ` (REDACTOR_* names), flags taking precedence.

        Raises VaultConfigError naming the setting that is invalid (never its value).
        """
        resolved_dir = Path(data_dir or environ.get("REDACTOR_DATA_DIR") or DEFAULT_DATA_DIR)
        url = (
            vault_url
            or environ.get("REDACTOR_VAULT_URL")
            or f"sqlite:///{resolved_dir / 'vault.db'}"
        )
        url, schema = _parse_vault_url(url)
        key_path = key_file or environ.get("REDACTOR_KEY_FILE") or None
        inline = environ.get("REDACTOR_KEYS") or None
        dev_mode = (
            dev if dev is not None else _parse_bool(environ.get("REDACTOR_DEV", ""), "REDACTOR_DEV")
        )
        if key_path is not None and inline is not None:
            raise VaultConfigError("set REDACTOR_KEY_FILE or REDACTOR_KEYS, not both")
        interval = environ.get("REDACTOR_KEY_CHECK_INTERVAL_S")
        if interval and "key_check_interval_s" not in overrides:
            try:
                overrides["key_check_interval_s"] = float(interval)
            except ValueError:
                raise VaultConfigError("REDACTOR_KEY_CHECK_INTERVAL_S must be a number") from None
        mark_file = environ.get("REDACTOR_VAULT_MARK_FILE")
        if mark_file and "mark_file" not in overrides:
            overrides["mark_file"] = Path(mark_file)
        config = cls(
            data_dir=resolved_dir,
            vault_url=Secret(url),
            key_file=Path(key_path) if key_path is not None else None,
            inline_keys=Secret(inline) if inline is not None else None,
            dev=dev_mode,
            pg_schema=schema,
            **overrides,  # type: ignore[arg-type]
        )
        config.validate()
        return config

    def validate(self) -> None:
        """Raises VaultConfigError if a limit or timeout is not positive."""
        if self.acquire_timeout_s <= 0 or self.statement_timeout_s <= 0:
            raise VaultConfigError("vault timeouts must be positive")
        if not 0 < self.key_check_interval_s <= 3600:
            raise VaultConfigError("key_check_interval_s must be between 0 and 3600 seconds")
        if not 1 <= self.pool_min_size <= self.pool_max_size:
            raise VaultConfigError("pool sizes must satisfy 1 <= min <= max")
        if _SCHEMA_NAME.fullmatch(self.pg_schema) is None:
            raise VaultConfigError("schema must be a lowercase SQL identifier")


def _parse_bool(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise VaultConfigError(f"{name} must be true or false")


def _parse_vault_url(url: str) -> tuple[str, str]:
    """Check the URL scheme; split off `?schema=` (PostgreSQL schema of the vault tables)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise VaultConfigError("REDACTOR_VAULT_URL does not parse") from None
    if parts.scheme == "sqlite":
        if len(parts.path) < 2 or parts.netloc:
            raise VaultConfigError("REDACTOR_VAULT_URL must look like sqlite:///path/vault.db")
        return url, DEFAULT_PG_SCHEMA
    if parts.scheme not in ("postgresql", "postgres"):
        raise VaultConfigError("REDACTOR_VAULT_URL must start with sqlite:/// or postgresql://")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_PG_SCHEMA)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration_s(text: str) -> int:
    """Seconds in a duration like `90d`, `12h`, `30m`, `45s`.

    Raises VaultConfigError if `text` is not a positive whole number with one unit.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise VaultConfigError("duration must look like 90d, 12h, 30m or 45s")
    return int(match[1]) * _UNIT_S[match[2]]
