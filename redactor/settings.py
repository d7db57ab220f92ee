"""The one frozen Settings object: config file, then `REDACTOR_*` environment, then flags.

Everything is validated here, at start: a bad value stops the start with the setting's name
(never a secret's value). No other module reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from yarl import URL

from redactor.agent.auth import AuthSettings
from redactor.agent.jwks import is_https_or_loopback_http
from redactor.agent.policy import load_policy
from redactor.bodies.limits import BodyLimits
from redactor.detection import DetectionOptions
from redactor.errors import ConfigError
from redactor.ingress.signatures import DEFAULT_REPLAY_WINDOW_S, SignatureConfig
from redactor.ops.yamlschema import load_yaml_file
from vault.config import Secret, VaultConfig
from vault.errors import VaultError

POLICIES_DIR = Path(__file__).resolve().parents[1] / "policies"
ROUTES_SCHEMA = POLICIES_DIR / "routes.schema.json"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_TENANT = "default"
# Agent requests are small JSON documents; a megabyte is far above any real one.
DEFAULT_AGENT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_TOKENS_PER_REQUEST = 100
# Request headers that never carry free text: structure, routing, credentials and webhook
# signatures (rewriting a signature would break it; a token in Authorization is useless).
# Every other header is scanned. A route may give its own list (`unscanned_headers`).
DEFAULT_UNSCANNED_HEADERS = frozenset(
    {
        "content-type", "content-length", "content-encoding", "transfer-encoding", "host",
        "connection", "accept", "accept-encoding", "authorization", "proxy-authorization",
        "cookie", "x-slack-signature", "x-slack-request-timestamp",
        "x-zendesk-webhook-signature", "x-zendesk-webhook-signature-timestamp",
        "x-hub-signature", "x-hub-signature-256", "x-twilio-signature", "x-request-id",
        # Opaque validators and trace ids: a long digit run in them is an id, and rewriting
        # one would break caching or tracing.
        "etag", "if-match", "if-none-match", "traceparent", "tracestate", "x-amzn-trace-id",
    }
)  # fmt: skip
# Slow clients: the header block must arrive within this many seconds (and an idle
# keep-alive connection is closed after it); the body gets the same grace plus its size at
# the minimum rate.
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_MIN_BODY_RATE_BYTES_S = 4096
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_AUDIT_MAX_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RouteSettings:
    """One ingress route: which requests, to which upstream, for which tenant, how."""

    name: str
    path_prefix: str
    upstream: str
    tenant: str
    strip_prefix: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    unknown_content_types: Literal["text", "refuse"] = "text"
    redact_responses: bool = False
    signature: SignatureConfig = field(default_factory=SignatureConfig)
    detection: DetectionOptions = field(default_factory=DetectionOptions)
    limits: BodyLimits = field(default_factory=BodyLimits)
    unscanned_headers: frozenset[str] = DEFAULT_UNSCANNED_HEADERS

    def matches(self, path: str) -> bool:
        return path.startswith(self.path_prefix)

    def upstream_url(self, raw_path: str, raw_query: str) -> URL:
        """The upstream URL for a request's raw (still percent-encoded) path and query.

        With `strip_prefix` the part after the route's prefix is appended to `upstream`;
        without it `upstream` is a base URL and the whole path is appended.
        """
        rest = raw_path
        if self.strip_prefix and raw_path.startswith(self.path_prefix):
            rest = raw_path[len(self.path_prefix) :]
        base = self.upstream.rstrip("/")
        if rest.lstrip("/"):
            url = base + "/" + rest.lstrip("/")
        else:
            url = base + ("/" if self.upstream.endswith("/") else "")
        # encoded=True: the raw path goes on exactly as the sender wrote it (no re-quoting).
        return URL(f"{url}?{raw_query}" if raw_query else url, encoded=True)


@dataclass(frozen=True, slots=True)
class OutboundRoute:
    """An allow-listed destination for `/out/<name>/...` (the `use` level)."""

    name: str
    destination: str
    max_body_bytes: int = DEFAULT_AGENT_MAX_BODY_BYTES


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """The agent API: its listener, how callers are verified, the reveal policy, the routes out."""

    listen: Listen
    auth: AuthSettings
    policy_path: Path
    max_body_bytes: int = DEFAULT_AGENT_MAX_BODY_BYTES
    max_tokens_per_request: int = DEFAULT_MAX_TOKENS_PER_REQUEST
    outbound: tuple[OutboundRoute, ...] = ()

    def outbound_route(self, name: str) -> OutboundRoute | None:
        """The allow-listed route called `name`, or None."""
        return next((r for r in self.outbound if r.name == name), None)


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
    # "uvloop" (libuv's loop, the default where it is installed) or "asyncio" (the stdlib's).
    event_loop: str = "uvloop"
    # One log line per forwarded message. Off by default: the audit trail already holds a
    # record per message (request id, route, counts, outcome, status), and the line cost a
    # tenth of a clean message's CPU (issue 14).
    access_log: bool = False

    def route_for(self, path: str) -> RouteSettings | None:
        """The route with the longest matching prefix, or None."""
        best = None
        for route in self.routes:
            if route.matches(path) and (
                best is None or len(route.path_prefix) > len(best.path_prefix)
            ):
                best = route
        return best


def parse_listen(value: str, name: str) -> Listen:
    """`HOST:PORT` (IPv6 in brackets). Raises ConfigError naming the setting."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be HOST:PORT")
    return Listen(host.strip("[]"), int(port))


def _check_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL")
    return value


def _positive(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive")
    return number


def _secret_from_env(environ: Mapping[str, str], var: str | None, what: str) -> bytes:
    if not var:
        raise ConfigError(f"{what} is required for this signature scheme")
    value = environ.get(var)
    if not value:
        raise ConfigError(f"environment variable {var} ({what}) is not set")
    return value.encode()


def _route(raw: Mapping[str, Any], environ: Mapping[str, str]) -> RouteSettings:
    sig_raw = raw.get("signature", {"scheme": "none"})
    scheme = sig_raw["scheme"]
    signature = SignatureConfig(scheme=scheme)
    if scheme in ("slack", "zendesk", "intercom"):
        signature = SignatureConfig(
            scheme=scheme,
            sender_secret=_secret_from_env(
                environ, sig_raw.get("sender_secret_env"), "sender_secret_env"
            ),
            upstream_secret=_secret_from_env(
                environ, sig_raw.get("upstream_secret_env"), "upstream_secret_env"
            ),
            replay_window_s=sig_raw.get("replay_window_s", DEFAULT_REPLAY_WINDOW_S),
        )
    det = raw.get("detection", {})
    lim = raw.get("limits", {})
    unscanned = raw.get("unscanned_headers")
    return RouteSettings(
        name=raw["name"],
        path_prefix=raw["path_prefix"],
        upstream=_check_url(raw["upstream"], f"routes.{raw['name']}.upstream"),
        tenant=raw["tenant"],
        strip_prefix=raw.get("strip_prefix", False),
        max_body_bytes=raw.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES),
        unknown_content_types="refuse" if raw.get("unknown_content_types") == "refuse" else "text",
        redact_responses=raw.get("redact_responses", False),
        signature=signature,
        detection=DetectionOptions(
            ignore_dummy_ssns=det.get("ignore_dummy_ssns", False),
            bare_ssn_needs_context=det.get("bare_ssn_needs_context", False),
            luhn_invalid_with_card_word=det.get("luhn_invalid_with_card_word", True),
        ),
        limits=BodyLimits(**{k: int(v) for k, v in lim.items()}),
        unscanned_headers=DEFAULT_UNSCANNED_HEADERS
        if unscanned is None
        else frozenset(h.lower() for h in unscanned),
    )


def _check_destination(value: str, name: str) -> str:
    # Card numbers leave in this request: plain http only to this host (a local sidecar or a
    # test double), https everywhere else.
    parts = urlsplit(value)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{name} must be a plain base URL (no query, fragment or user)")
    if not is_https_or_loopback_http(value):
        raise ConfigError(f"{name} must be an https URL (http only to a loopback address)")
    return value


def _agent(
    flags: Overrides, environ: Mapping[str, str], doc: Mapping[str, Any], listen: Listen | None
) -> AgentSettings | None:
    raw: Mapping[str, Any] = doc.get("agent", {})
    jwks = _pick(flags.jwks, environ, "REDACTOR_JWKS", raw.get("jwks"), None)
    issuer = _pick(flags.jwt_issuer, environ, "REDACTOR_JWT_ISSUER", raw.get("issuer"), None)
    audience = _pick(
        flags.jwt_audience, environ, "REDACTOR_JWT_AUDIENCE", raw.get("audience"), None
    )
    policy = _pick(flags.policy, environ, "REDACTOR_POLICY", raw.get("policy"), None)
    given = {"jwks": jwks, "jwt_issuer": issuer, "jwt_audience": audience, "policy": policy}
    if listen is None:
        if any(given.values()) or raw:
            raise ConfigError("agent settings are given but agent_listen is not")
        return None
    for name, value in given.items():
        if not value:
            raise ConfigError(f"agent_listen needs {name}")
    jwks = str(jwks)
    remote = jwks.startswith(("http://", "https://"))
    claims = raw.get("claims", {})
    auth = AuthSettings(
        issuer=str(issuer),
        audience=str(audience),
        jwks_path=None if remote else Path(jwks),
        jwks_url=jwks if remote else None,
        allowed_algorithms=tuple(raw.get("algorithms", ("RS256", "ES256"))),
        leeway_s=float(raw.get("leeway_s", 30.0)),
        subject_claim=claims.get("subject", "sub"),
        tenant_claim=claims.get("tenant", "tenant"),
        roles_claim=claims.get("roles", "roles"),
        require_nbf=raw.get("require_nbf", False),
        revoked_kids=frozenset(raw.get("revoked_kids", ())),
        revoked_jtis=frozenset(raw.get("revoked_jtis", ())),
    )
    if not remote and not Path(jwks).is_file():
        raise ConfigError("jwks: file not found")
    policy_path = Path(str(policy))
    # Refuse to start on a bad policy: the error names the file, the line and the reason.
    load_policy(policy_path)
    outbound = tuple(
        OutboundRoute(
            name=r["name"],
            destination=_check_destination(r["destination"], f"agent.outbound.{r['name']}"),
            max_body_bytes=r.get("max_body_bytes", DEFAULT_AGENT_MAX_BODY_BYTES),
        )
        for r in raw.get("outbound", ())
    )
    if len({r.name for r in outbound}) != len(outbound):
        raise ConfigError("agent.outbound names must be unique")
    return AgentSettings(
        listen=listen,
        auth=auth,
        policy_path=policy_path,
        max_body_bytes=raw.get("max_body_bytes", DEFAULT_AGENT_MAX_BODY_BYTES),
        max_tokens_per_request=raw.get("max_tokens_per_request", DEFAULT_MAX_TOKENS_PER_REQUEST),
        outbound=outbound,
    )


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


def _pick(
    flag: Any, environ: Mapping[str, str], env_name: str, file_value: Any, default: Any
) -> Any:
    if flag is not None:
        return flag
    if environ.get(env_name):
        return environ[env_name]
    return file_value if file_value is not None else default


def _config_doc(flags: Overrides, environ: Mapping[str, str]) -> dict[str, Any]:
    config_path = flags.config or environ.get("REDACTOR_CONFIG")
    return load_yaml_file(Path(config_path), ROUTES_SCHEMA) if config_path else {}


def _truthy(raw: Any) -> bool:
    return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")


def _dev(flags: Overrides, environ: Mapping[str, str]) -> bool:
    return _truthy(_pick(flags.dev, environ, "REDACTOR_DEV", None, False))


def _vault_config(
    flags: Overrides, environ: Mapping[str, str], doc: Mapping[str, Any]
) -> VaultConfig:
    vault_doc = doc.get("vault", {})
    data_dir = _pick(flags.data_dir, environ, "REDACTOR_DATA_DIR", doc.get("data_dir"), None)
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
    audit = _pick(flags.audit_log, environ, "REDACTOR_AUDIT_LOG", doc.get("audit_log"), None)
    key_file = _pick(
        flags.audit_key_file, environ, "REDACTOR_AUDIT_KEY_FILE", doc.get("audit_key_file"), None
    )
    if key_file and environ.get("REDACTOR_AUDIT_KEY"):
        raise ConfigError("set REDACTOR_AUDIT_KEY_FILE or REDACTOR_AUDIT_KEY, not both")
    data_dir = _pick(flags.data_dir, environ, "REDACTOR_DATA_DIR", doc.get("data_dir"), None)
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

    upstream = _pick(flags.upstream, environ, "REDACTOR_UPSTREAM", None, None)
    routes: list[RouteSettings] = [_route(r, environ) for r in doc.get("routes", [])]
    max_body = int(
        _pick(
            flags.max_body_bytes, environ, "REDACTOR_MAX_BODY_BYTES", None, DEFAULT_MAX_BODY_BYTES
        )
    )
    if upstream:
        # The catch-all route of `--upstream`: every path, one tenant.
        tenant = _pick(flags.tenant, environ, "REDACTOR_TENANT", None, DEFAULT_TENANT)
        routes.append(
            RouteSettings(
                name="default",
                path_prefix="/",
                upstream=_check_url(upstream, "upstream"),
                tenant=tenant,
                max_body_bytes=max_body,
            )
        )
    if not routes:
        raise ConfigError("no route: give --upstream URL or a --config file with routes")
    names = [r.name for r in routes]
    if len(set(names)) != len(names):
        raise ConfigError("route names must be unique")

    audit = _pick(flags.audit_log, environ, "REDACTOR_AUDIT_LOG", doc.get("audit_log"), None)
    audit_key_file = _pick(
        flags.audit_key_file, environ, "REDACTOR_AUDIT_KEY_FILE", doc.get("audit_key_file"), None
    )
    if audit_key_file and environ.get("REDACTOR_AUDIT_KEY"):
        raise ConfigError("set REDACTOR_AUDIT_KEY_FILE or REDACTOR_AUDIT_KEY, not both")
    agent = _pick(
        flags.agent_listen, environ, "REDACTOR_AGENT_LISTEN", doc.get("agent_listen"), None
    )
    agent_listen = parse_listen(agent, "agent_listen") if agent else None
    settings = Settings(
        listen=parse_listen(
            _pick(flags.listen, environ, "REDACTOR_LISTEN", doc.get("listen"), "127.0.0.1:8080"),
            "listen",
        ),
        admin_listen=parse_listen(
            _pick(
                flags.admin_listen,
                environ,
                "REDACTOR_ADMIN_LISTEN",
                doc.get("admin_listen"),
                "127.0.0.1:9090",
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
                _pick(
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
            _pick(None, environ, "REDACTOR_AUDIT_FSYNC", doc.get("audit_fsync"), "batch")
        ),
        upstream_timeout_s=_positive(
            _pick(
                None, environ, "REDACTOR_UPSTREAM_TIMEOUT_S", doc.get("upstream_timeout_s"), 30.0
            ),
            "upstream_timeout_s",
        ),
        vault_timeout_s=_positive(
            _pick(None, environ, "REDACTOR_VAULT_TIMEOUT_S", vault_doc.get("timeout_s"), 2.0),
            "vault_timeout_s",
        ),
        log_level=str(_pick(flags.log_level, environ, "REDACTOR_LOG_LEVEL", None, "info")).lower(),
        log_console=bool(flags.log_console),
        agent=_agent(flags, environ, doc, agent_listen),
        workers=_workers(_pick(flags.workers, environ, "REDACTOR_WORKERS", doc.get("workers"), 1)),
        header_timeout_s=_positive(
            _pick(
                None,
                environ,
                "REDACTOR_HEADER_TIMEOUT_S",
                doc.get("header_timeout_s"),
                DEFAULT_HEADER_TIMEOUT_S,
            ),
            "header_timeout_s",
        ),
        min_body_rate_bytes_s=_positive(
            _pick(
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
                _pick(
                    None,
                    environ,
                    "REDACTOR_MAX_CONNECTIONS",
                    doc.get("max_connections"),
                    DEFAULT_MAX_CONNECTIONS,
                ),
                "max_connections",
            )
        ),
        event_loop=_event_loop(
            _pick(flags.event_loop, environ, "REDACTOR_EVENT_LOOP", doc.get("event_loop"), "auto")
        ),
        access_log=_truthy(
            _pick(flags.access_log, environ, "REDACTOR_ACCESS_LOG", doc.get("access_log"), False)
        ),
    )
    if settings.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError("log_level must be debug, info, warning or error")
    if max_body <= 0:
        raise ConfigError("max_body_bytes must be positive")
    return settings


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
    """"auto" is uvloop when it is installed, else asyncio; asking for a missing uvloop fails."""
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
