"""The one frozen Settings object: config file, then `REDACTOR_*` environment, then flags.

Everything is validated here, at start: a bad value stops the start with the setting's name
(never a secret's value). No other module reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redactor.agent.config import (
    DEFAULT_AGENT_MAX_BODY_BYTES,
    DEFAULT_MAX_TOKENS_PER_REQUEST,
    AgentSettings,
    OutboundRoute,
    RevocationSettings,
    parse_agent,
    parse_revocations,
)
from redactor.agent.policy import load_policy
from redactor.config.listen import Listen, parse_listen
from redactor.config.yamlschema import load_yaml_file
from redactor.errors import ConfigError, file_problem
from redactor.ingress.config import (
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MIN_BODY_RATE_BYTES_S,
    DEFAULT_SCAN_LANE_BYTES,
    DEFAULT_SCAN_TIMEOUT_S,
    DEFAULT_TENANT,
    DEFAULT_UNSCANNED_HEADERS,
    IngressSettings,
    RouteSettings,
    check_http_url,
    parse_route,
    route_conflicts,
    route_for,
)
from vault.config import Secret, VaultConfig
from vault.errors import VaultError

# Re-exported: the composition root is where callers (tests, the demo) find every settings type.
__all__ = [
    "DEFAULT_AGENT_MAX_BODY_BYTES",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_TOKENS_PER_REQUEST",
    "DEFAULT_UNSCANNED_HEADERS",
    "AgentSettings",
    "AuditTrailConfig",
    "IngressSettings",
    "Listen",
    "OutboundRoute",
    "Overrides",
    "RouteSettings",
    "Settings",
    "listener_clash",
    "load_audit_trail_config",
    "load_settings",
    "load_vault_config",
    "parse_listen",
    "paths_resolved",
    "pick",
    "resolve_file_paths",
    "with_routes",
]

POLICIES_DIR = Path(__file__).resolve().parents[1] / "policies"
ROUTES_SCHEMA = POLICIES_DIR / "routes.schema.json"
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_ADMIN_LISTEN = "127.0.0.1:9090"
DEFAULT_MAX_CONNECTIONS = 1024
# aiohttp's own default: enough for a sidecar; a busy one in front of a slow helpdesk needs more.
DEFAULT_UPSTREAM_POOL_SIZE = 100
DEFAULT_AUDIT_MAX_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    listen: Listen
    admin_listen: Listen
    routes: tuple[RouteSettings, ...]
    vault: VaultConfig
    dev: bool = False
    audit_log: Path | None = None
    # The audit trail's HMAC key: a file of its own, or REDACTOR_AUDIT_KEY; never the KEK.
    audit_key_file: Path | None = None
    audit_key: Secret | None = None
    audit_max_bytes: int = DEFAULT_AUDIT_MAX_BYTES
    audit_checkpoint_interval_s: float = 60.0
    # When audit records reach stable storage: "batch" (before their callers go on),
    # "interval" (within a second) or "never" (the page cache only). See AuditSink.
    audit_fsync: str = "batch"
    upstream_timeout_s: float = 30.0
    upstream_connect_timeout_s: float = 5.0
    # Connections to all upstreams together; a request waits for a free one up to the connect
    # timeout, then gets 504 upstream_connect_timeout (never sent).
    upstream_pool_size: int = DEFAULT_UPSTREAM_POOL_SIZE
    vault_timeout_s: float = 2.0
    log_level: str = "info"
    log_console: bool = False
    agent: AgentSettings | None = None
    # Server processes sharing the listeners (SO_REUSEPORT): one event loop per core.
    workers: int = 1
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    min_body_rate_bytes_s: float = DEFAULT_MIN_BODY_RATE_BYTES_S
    # Concurrent connections per listener; more are closed at once.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # Seconds one step of a body may take in a scan worker before the worker is replaced and
    # the message refused (503 scan_timeout); bodies up to `scan_lane_bytes` have a worker
    # of their own, so they never wait behind a larger one.
    scan_timeout_s: float = DEFAULT_SCAN_TIMEOUT_S
    scan_lane_bytes: int = DEFAULT_SCAN_LANE_BYTES
    # "uvloop" (libuv's loop, the default where it is installed) or "asyncio" (the stdlib's).
    event_loop: str = "uvloop"
    # One log line per forwarded message. Off by default: the audit trail already holds a
    # record per message (request id, route, counts, outcome, status), and the line cost a
    # tenth of a clean message's CPU (issue 14).
    access_log: bool = False
    # Set by the supervisor of `--workers N` (never read from a file or the environment):
    # where every worker's metric files live, so /metrics sums all of them. Out of the repr:
    # a fresh directory per run must not change the config digest.
    metrics_dir: Path | None = field(default=None, repr=False)
    # Set by the supervisor of `--workers N` for each worker (never read from a file or the
    # environment): its number, for the audit chain registry ("worker 2"). Out of the repr,
    # like metrics_dir: every worker reports the same config digest.
    worker: int | None = field(default=None, repr=False)

    def route_for(self, path: str) -> RouteSettings | None:
        """The route with the longest matching prefix, or None."""
        return route_for(self.routes, path)

    def ingress(self) -> IngressSettings:
        """The ingress side's share of the settings."""
        return IngressSettings(
            routes=self.routes,
            header_timeout_s=self.header_timeout_s,
            min_body_rate_bytes_s=self.min_body_rate_bytes_s,
            access_log=self.access_log,
        )


def _positive(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive")
    return number


@dataclass(frozen=True, slots=True)
class Overrides:
    """Values given as flags; None means "not given"."""

    config: str | None = None
    listen: str | None = None
    admin_listen: str | None = None
    agent_listen: str | None = None
    jwks: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    policy: str | None = None
    upstream: str | None = None
    tenant: str | None = None
    data_dir: str | None = None
    vault_url: str | None = None
    key_file: str | None = None
    dev: bool | None = None
    create_vault: bool | None = None
    audit_log: str | None = None
    audit_key_file: str | None = None
    log_level: str | None = None
    log_console: bool | None = None
    max_body_bytes: int | None = None
    workers: int | None = None
    event_loop: str | None = None
    access_log: bool | None = None


def pick(
    flag: Any, environ: Mapping[str, str], env_name: str, file_value: Any, default: Any
) -> Any:
    """The value in force: the flag, else the environment variable, else the file, else the
    default (the precedence README documents)."""
    if flag is not None:
        return flag
    if environ.get(env_name):
        return environ[env_name]
    return file_value if file_value is not None else default


def _config_doc(flags: Overrides, environ: Mapping[str, str]) -> dict[str, Any]:
    config_path = flags.config or environ.get("REDACTOR_CONFIG")
    if not config_path:
        return {}
    path = Path(config_path)
    return paths_resolved(load_yaml_file(path, ROUTES_SCHEMA), path, flags, environ)


def paths_resolved(
    doc: Mapping[str, Any], config_path: Path, flags: Overrides, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The file's document with its relative paths resolved by the one rule, the data
    directory taken from the flag or the environment when given."""
    data_dir = flags.data_dir or environ.get("REDACTOR_DATA_DIR")
    return resolve_file_paths(
        doc, config_path.resolve().parent, Path(data_dir) if data_dir else None
    )


def resolve_file_paths(
    doc: Mapping[str, Any], config_dir: Path, data_dir: Path | None
) -> dict[str, Any]:
    """The file's relative paths made absolute, by one rule (README, "Paths in a config file"):

    - what redactor *writes* (the audit trail, a SQLite vault) resolves against the data
      directory: `REDACTOR_DATA_DIR` or `--data-dir` when given, else the file's `data_dir`,
      else the config file's folder;
    - what it *reads* (`data_dir` itself, key files, the JWKS, the policy) resolves against
      the config file's folder.

    Never the working directory: in the image it is a read-only folder owned by root.
    """
    out: dict[str, Any] = {**doc}

    def read(value: str) -> str:
        return os.path.normpath(config_dir / value) if not Path(value).is_absolute() else value

    if isinstance(out.get("data_dir"), str):
        out["data_dir"] = read(out["data_dir"])
    written = data_dir or (Path(out["data_dir"]) if "data_dir" in out else config_dir)

    def write(value: str) -> str:
        return os.path.normpath(written / value) if not Path(value).is_absolute() else value

    if isinstance(out.get("audit_log"), str) and out["audit_log"] != "-":
        out["audit_log"] = write(out["audit_log"])
    if isinstance(out.get("audit_key_file"), str):
        out["audit_key_file"] = read(out["audit_key_file"])
    if isinstance(out.get("vault"), Mapping):
        vault = out["vault"] = {**out["vault"]}
        url = vault.get("url")
        # sqlite:///rel/vault.db is relative, sqlite:////abs/vault.db absolute (SQLAlchemy's way).
        if isinstance(url, str) and url.startswith("sqlite:///") and url[10:11] != "/":
            vault["url"] = "sqlite:///" + write(url[10:])
        if isinstance(vault.get("key_file"), str):
            vault["key_file"] = read(vault["key_file"])
    if isinstance(out.get("agent"), Mapping):
        agent = out["agent"] = {**out["agent"]}
        if isinstance(agent.get("policy"), str):
            agent["policy"] = read(agent["policy"])
        jwks = agent.get("jwks")
        if isinstance(jwks, str) and not jwks.startswith(("http://", "https://")):
            agent["jwks"] = read(jwks)
    return out


def _truthy(raw: Any) -> bool:
    return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")


def _dev(flags: Overrides, environ: Mapping[str, str]) -> bool:
    return _truthy(pick(flags.dev, environ, "REDACTOR_DEV", None, False))


def _vault_config(
    flags: Overrides, environ: Mapping[str, str], doc: Mapping[str, Any]
) -> VaultConfig:
    vault_doc = doc.get("vault", {})
    data_dir = pick(flags.data_dir, environ, "REDACTOR_DATA_DIR", doc.get("data_dir"), None)
    extra: dict[str, Any] = {"create": bool(flags.create_vault)}
    if "key_check_interval_s" in vault_doc and not environ.get("REDACTOR_KEY_CHECK_INTERVAL_S"):
        extra["key_check_interval_s"] = float(vault_doc["key_check_interval_s"])
    try:
        return VaultConfig.from_environ(
            environ,
            data_dir=data_dir,
            vault_url=flags.vault_url
            or (None if environ.get("REDACTOR_VAULT_URL") else vault_doc.get("url")),
            key_file=flags.key_file
            or (
                None
                if environ.get("REDACTOR_KEY_FILE") or environ.get("REDACTOR_KEYS")
                else vault_doc.get("key_file")
            ),
            dev=_dev(flags, environ),
            **extra,
        )
    except VaultError as exc:
        raise ConfigError(str(exc)) from None


def load_vault_config(flags: Overrides, environ: Mapping[str, str]) -> VaultConfig:
    """The vault part of Settings alone, for `keys` and `vault` commands: the same file,
    environment and flags as `serve`, without needing its routes or agent settings.

    Raises ConfigError (or YamlFileError) naming what is wrong.
    """
    return _vault_config(flags, environ, _config_doc(flags, environ))


def load_revocation_settings(flags: Overrides, environ: Mapping[str, str]) -> RevocationSettings:
    """The `agent.revocations` part of Settings alone, for `agents revoke`: the same file as
    `serve` (the agent listener itself need not be configured). Raises ConfigError."""
    agent = _config_doc(flags, environ).get("agent", {})
    return parse_revocations(agent.get("revocations", {}))


@dataclass(frozen=True, slots=True)
class AuditTrailConfig:
    """Where a `keys` or `vault` command writes its audit records, and under which key."""

    audit_log: Path | None
    audit_key_file: Path | None
    audit_key: Secret | None
    data_dir: Path
    dev: bool


def load_audit_trail_config(flags: Overrides, environ: Mapping[str, str]) -> AuditTrailConfig:
    """The audit part of Settings alone, for `keys` and `vault` commands: the same file,
    environment and flags as `serve`. Raises ConfigError (or YamlFileError)."""
    doc = _config_doc(flags, environ)
    audit = pick(flags.audit_log, environ, "REDACTOR_AUDIT_LOG", doc.get("audit_log"), None)
    key_file = pick(
        flags.audit_key_file, environ, "REDACTOR_AUDIT_KEY_FILE", doc.get("audit_key_file"), None
    )
    if key_file and environ.get("REDACTOR_AUDIT_KEY"):
        raise ConfigError("set REDACTOR_AUDIT_KEY_FILE or REDACTOR_AUDIT_KEY, not both")
    data_dir = pick(flags.data_dir, environ, "REDACTOR_DATA_DIR", doc.get("data_dir"), None)
    return AuditTrailConfig(
        audit_log=None if audit in (None, "-") else Path(audit),
        audit_key_file=Path(key_file) if key_file else None,
        audit_key=_audit_key(environ),
        data_dir=Path(data_dir) if data_dir else Path("redactor-data"),
        dev=_dev(flags, environ),
    )


def load_settings(flags: Overrides, environ: Mapping[str, str]) -> Settings:
    """Build Settings. Raises ConfigError (or YamlFileError) naming what is wrong."""
    doc = _config_doc(flags, environ)
    vault_doc = doc.get("vault", {})
    dev = _dev(flags, environ)
    vault = _vault_config(flags, environ, doc)

    upstream = pick(flags.upstream, environ, "REDACTOR_UPSTREAM", None, None)
    routes: list[RouteSettings] = [parse_route(r, environ) for r in doc.get("routes", [])]
    # A flag (or REDACTOR_MAX_BODY_BYTES) overrides every route's limit, as flags override
    # the file everywhere.
    given_max_body = pick(flags.max_body_bytes, environ, "REDACTOR_MAX_BODY_BYTES", None, None)
    max_body = _whole(given_max_body, "max_body_bytes") if given_max_body is not None else None
    if max_body is not None:
        routes = [replace(r, max_body_bytes=max_body) for r in routes]
    if upstream:
        # The catch-all route of `--upstream`: every path, one tenant.
        tenant = pick(flags.tenant, environ, "REDACTOR_TENANT", None, DEFAULT_TENANT)
        routes.append(
            RouteSettings(
                name="default",
                path_prefix="/",
                upstream=check_http_url(upstream, "upstream"),
                tenant=tenant,
                max_body_bytes=max_body or DEFAULT_MAX_BODY_BYTES,
            )
        )
    if not routes:
        raise ConfigError("no route: give --upstream URL or a --config file with routes")
    conflicts = route_conflicts(tuple(routes))
    if conflicts:
        raise ConfigError("; ".join(conflicts))

    audit = pick(flags.audit_log, environ, "REDACTOR_AUDIT_LOG", doc.get("audit_log"), None)
    audit_key_file = pick(
        flags.audit_key_file, environ, "REDACTOR_AUDIT_KEY_FILE", doc.get("audit_key_file"), None
    )
    if audit_key_file and environ.get("REDACTOR_AUDIT_KEY"):
        raise ConfigError("set REDACTOR_AUDIT_KEY_FILE or REDACTOR_AUDIT_KEY, not both")
    agent = pick(
        flags.agent_listen, environ, "REDACTOR_AGENT_LISTEN", doc.get("agent_listen"), None
    )
    agent_listen = parse_listen(agent, "agent_listen") if agent else None
    settings = Settings(
        listen=parse_listen(
            pick(flags.listen, environ, "REDACTOR_LISTEN", doc.get("listen"), DEFAULT_LISTEN),
            "listen",
        ),
        admin_listen=parse_listen(
            pick(
                flags.admin_listen,
                environ,
                "REDACTOR_ADMIN_LISTEN",
                doc.get("admin_listen"),
                DEFAULT_ADMIN_LISTEN,
            ),
            "admin_listen",
        ),
        routes=tuple(routes),
        vault=vault,
        dev=dev,
        audit_log=None if audit in (None, "-") else Path(audit),
        audit_key_file=Path(audit_key_file) if audit_key_file else None,
        audit_key=_audit_key(environ),
        audit_max_bytes=int(
            _positive(
                pick(
                    None,
                    environ,
                    "REDACTOR_AUDIT_MAX_BYTES",
                    doc.get("audit_max_bytes"),
                    DEFAULT_AUDIT_MAX_BYTES,
                ),
                "audit_max_bytes",
            )
        ),
        audit_checkpoint_interval_s=_positive(
            doc.get("audit_checkpoint_interval_s", 60.0), "audit_checkpoint_interval_s"
        ),
        audit_fsync=_audit_fsync(
            pick(None, environ, "REDACTOR_AUDIT_FSYNC", doc.get("audit_fsync"), "batch")
        ),
        upstream_timeout_s=_positive(
            pick(None, environ, "REDACTOR_UPSTREAM_TIMEOUT_S", doc.get("upstream_timeout_s"), 30.0),
            "upstream_timeout_s",
        ),
        upstream_connect_timeout_s=_positive(
            pick(
                None,
                environ,
                "REDACTOR_UPSTREAM_CONNECT_TIMEOUT_S",
                doc.get("upstream_connect_timeout_s"),
                5.0,
            ),
            "upstream_connect_timeout_s",
        ),
        upstream_pool_size=_whole(
            pick(
                None,
                environ,
                "REDACTOR_UPSTREAM_POOL_SIZE",
                doc.get("upstream_pool_size"),
                DEFAULT_UPSTREAM_POOL_SIZE,
            ),
            "upstream_pool_size",
        ),
        vault_timeout_s=_positive(
            pick(None, environ, "REDACTOR_VAULT_TIMEOUT_S", vault_doc.get("timeout_s"), 2.0),
            "vault_timeout_s",
        ),
        log_level=str(pick(flags.log_level, environ, "REDACTOR_LOG_LEVEL", None, "info")).lower(),
        log_console=bool(flags.log_console),
        agent=_agent(flags, environ, doc, agent_listen),
        workers=_workers(pick(flags.workers, environ, "REDACTOR_WORKERS", doc.get("workers"), 1)),
        header_timeout_s=_positive(
            pick(
                None,
                environ,
                "REDACTOR_HEADER_TIMEOUT_S",
                doc.get("header_timeout_s"),
                DEFAULT_HEADER_TIMEOUT_S,
            ),
            "header_timeout_s",
        ),
        min_body_rate_bytes_s=_positive(
            pick(
                None,
                environ,
                "REDACTOR_MIN_BODY_RATE_BYTES_S",
                doc.get("min_body_rate_bytes_s"),
                DEFAULT_MIN_BODY_RATE_BYTES_S,
            ),
            "min_body_rate_bytes_s",
        ),
        max_connections=int(
            _positive(
                pick(
                    None,
                    environ,
                    "REDACTOR_MAX_CONNECTIONS",
                    doc.get("max_connections"),
                    DEFAULT_MAX_CONNECTIONS,
                ),
                "max_connections",
            )
        ),
        scan_timeout_s=_positive(
            pick(
                None,
                environ,
                "REDACTOR_SCAN_TIMEOUT_S",
                doc.get("scan_timeout_s"),
                DEFAULT_SCAN_TIMEOUT_S,
            ),
            "scan_timeout_s",
        ),
        scan_lane_bytes=int(
            _positive(
                pick(
                    None,
                    environ,
                    "REDACTOR_SCAN_LANE_BYTES",
                    doc.get("scan_lane_bytes"),
                    DEFAULT_SCAN_LANE_BYTES,
                ),
                "scan_lane_bytes",
            )
        ),
        event_loop=_event_loop(
            pick(flags.event_loop, environ, "REDACTOR_EVENT_LOOP", doc.get("event_loop"), "auto")
        ),
        access_log=_truthy(
            pick(flags.access_log, environ, "REDACTOR_ACCESS_LOG", doc.get("access_log"), False)
        ),
    )
    if settings.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError("log_level must be debug, info, warning or error")
    listeners = {"listen": settings.listen, "admin_listen": settings.admin_listen}
    if settings.agent is not None:
        listeners["agent_listen"] = settings.agent.listen
    clash = listener_clash(listeners)
    if clash:
        raise ConfigError(clash)
    return settings


def listener_clash(listeners: Mapping[str, Listen]) -> str | None:
    """Two listeners on one address (the second bind would fail, or share the port)."""
    seen: dict[Listen, str] = {}
    for name, listen in listeners.items():
        if listen in seen and listen.port != 0:
            return f"{seen[listen]} and {name} are both {listen}"
        seen[listen] = name
    return None


def _whole(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive")
    return number


def _agent(
    flags: Overrides, environ: Mapping[str, str], doc: Mapping[str, Any], listen: Listen | None
) -> AgentSettings | None:
    raw: Mapping[str, Any] = doc.get("agent", {})
    jwks = pick(flags.jwks, environ, "REDACTOR_JWKS", raw.get("jwks"), None)
    issuer = pick(flags.jwt_issuer, environ, "REDACTOR_JWT_ISSUER", raw.get("issuer"), None)
    audience = pick(flags.jwt_audience, environ, "REDACTOR_JWT_AUDIENCE", raw.get("audience"), None)
    policy = pick(flags.policy, environ, "REDACTOR_POLICY", raw.get("policy"), None)
    given = {"jwks": jwks, "jwt_issuer": issuer, "jwt_audience": audience, "policy": policy}
    if listen is None:
        if any(given.values()) or raw:
            raise ConfigError("agent settings are given but agent_listen is not")
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ConfigError(f"agent_listen needs {', '.join(missing)}")
    agent = parse_agent(
        raw,
        listen=listen,
        jwks=str(jwks),
        issuer=str(issuer),
        audience=str(audience),
        policy_path=Path(str(policy)),
    )
    if agent.auth.jwks_path is not None and not agent.auth.jwks_path.is_file():
        try:
            agent.auth.jwks_path.open("rb").close()
        except OSError as exc:
            raise ConfigError(f"agent.jwks: {file_problem(agent.auth.jwks_path, exc)}") from None
        raise ConfigError(f"agent.jwks: {agent.auth.jwks_path} is not a file")
    # Refuse to start on a bad policy: the error names the file, the line and the reason.
    load_policy(agent.policy_path)
    return agent


def _audit_key(environ: Mapping[str, str]) -> Secret | None:
    inline = environ.get("REDACTOR_AUDIT_KEY")
    return Secret(inline) if inline else None


def _audit_fsync(value: Any) -> str:
    policy = str(value).lower()
    if policy not in ("batch", "interval", "never"):
        raise ConfigError("audit_fsync must be batch, interval or never")
    return policy


def _workers(value: Any) -> int:
    try:
        workers = int(value)
    except (TypeError, ValueError):
        raise ConfigError("workers must be a whole number") from None
    if not 1 <= workers <= 64:
        raise ConfigError("workers must be between 1 and 64")
    return workers


def _event_loop(value: Any) -> str:
    """ "auto" is uvloop when it is installed, else asyncio; asking for a missing uvloop fails."""
    name = str(value).lower()
    if name not in ("auto", "uvloop", "asyncio"):
        raise ConfigError("event_loop must be auto, uvloop or asyncio")
    if name == "asyncio":
        return name
    try:
        import uvloop  # noqa: F401 - only whether it imports
    except ImportError:
        if name == "uvloop":
            raise ConfigError("event_loop is uvloop but uvloop is not installed") from None
        return "asyncio"
    return "uvloop"


def with_routes(settings: Settings, routes: tuple[RouteSettings, ...]) -> Settings:
    """A copy of `settings` with other routes (tests and the demo use it)."""
    return replace(settings, routes=routes)
