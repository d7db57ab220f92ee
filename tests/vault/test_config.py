"""VaultConfig.from_environ: env names, flag precedence, validation without echoing secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault.config import VaultConfig, parse_duration_s
from vault.errors import VaultConfigError


def test_defaults_put_sqlite_and_dev_key_in_the_data_dir() -> None:
    config = VaultConfig.from_environ({})
    assert config.backend == "sqlite"
    assert config.sqlite_path == Path("redactor-data/vault.db")
    assert config.dev_key_file == Path("redactor-data/dev-keys.json")
    assert config.key_file is None
    assert config.dev is False


def test_environment_is_read_and_flags_win() -> None:
    environ = {
        "REDACTOR_DATA_DIR": "/srv/redactor",
        "REDACTOR_KEY_FILE": "/etc/redactor/keys.json",
        "REDACTOR_DEV": "true",
    }
    config = VaultConfig.from_environ(environ)
    assert config.sqlite_path == Path("/srv/redactor/vault.db")
    assert config.key_file == Path("/etc/redactor/keys.json")
    assert config.dev is True
    flagged = VaultConfig.from_environ(environ, data_dir="/srv/other", dev=False, key_file="k.json")
    assert flagged.sqlite_path == Path("/srv/other/vault.db")
    assert flagged.key_file == Path("k.json")
    assert flagged.dev is False


def test_postgres_url_schema_parameter_is_split_off() -> None:
    config = VaultConfig.from_environ(
        {"REDACTOR_VAULT_URL": "postgresql://u:pw@db:5432/app?schema=tenant_vault&sslmode=require"}
    )
    assert config.backend == "postgresql"
    assert config.pg_schema == "tenant_vault"
    assert config.vault_url.reveal() == "postgresql://u:pw@db:5432/app?sslmode=require"


def test_secrets_never_show_in_repr() -> None:
    config = VaultConfig.from_environ(
        {"REDACTOR_VAULT_URL": "postgresql://u:hunter2@db/app", "REDACTOR_KEYS": "{secret-json}"}
    )
    assert "hunter2" not in repr(config)
    assert "secret-json" not in repr(config)


@pytest.mark.parametrize(
    ("environ", "flags"),
    [
        ({"REDACTOR_VAULT_URL": "mysql://db/app"}, {}),
        ({"REDACTOR_VAULT_URL": "sqlite://host/x.db"}, {}),
        ({"REDACTOR_VAULT_URL": "postgresql://db/app?schema=Bad-Name"}, {}),
        ({"REDACTOR_DEV": "maybe"}, {}),
        ({"REDACTOR_KEY_FILE": "k.json", "REDACTOR_KEYS": "{}"}, {}),
        ({}, {"statement_timeout_s": 0}),
        ({}, {"pool_min_size": 5, "pool_max_size": 2}),
    ],
)
def test_invalid_settings_are_refused_at_start(
    environ: dict[str, str], flags: dict[str, object]
) -> None:
    with pytest.raises(VaultConfigError):
        VaultConfig.from_environ(environ, **flags)


@pytest.mark.parametrize(("text", "seconds"), [("90d", 7_776_000), ("12h", 43_200), ("45s", 45)])
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "90", "0d", "-1d", "1w", "1.5d", "d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(VaultConfigError):
        parse_duration_s(text)
