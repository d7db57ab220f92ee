"""The ingress side's settings: its routes and how long it waits for slow clients.

`redactor.settings` (the composition root) reads the file, environment and flags and builds
these; the ingress side only ever sees the types below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from yarl import URL

from redactor.bodies.limits import BodyLimits
from redactor.detection import DetectionOptions
from redactor.errors import ConfigError
from redactor.ingress.signatures import DEFAULT_REPLAY_WINDOW_S, SignatureConfig

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_TENANT = "default"
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
# Seconds one step (scan, rebuild or verify) of a body may take in a scan worker.
DEFAULT_SCAN_TIMEOUT_S = 10.0
# Bodies up to this size go to the medium lane's scan worker, larger ones to the large
# lane's: a webhook never waits behind a hostile 9 MB body (issue 18: a 22 KB webhook
# waited 6-15 s).
DEFAULT_SCAN_LANE_BYTES = 256 * 1024


# Queued delivery (`delivery: queued`): what a route allows its outbox before it answers 503.
DEFAULT_MAX_ATTEMPTS = 12
DEFAULT_MAX_AGE_S = 24 * 3600.0
DEFAULT_HIGH_WATER_ITEMS = 10_000
DEFAULT_BACKOFF_BASE_S = 1.0
DEFAULT_BACKOFF_CAP_S = 300.0
ANSWER_STATUSES = (200, 202, 204)
# An RFC 6901 JSON pointer: `/ticket/id`, `/event/channel` (`~0` is `~`, `~1` is `/`).
_POINTER = re.compile(r"^(/([^~/]|~[01])*)+$")


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """How a route delivers: `sync` (call the upstream, answer with its answer) or `queued`
    (answer once the redacted request is in the outbox; deliver later, at least once)."""

    mode: Literal["sync", "queued"] = "sync"
    # What a queued route answers once the message is in the outbox.
    answer_status: int = 202
    # An item is dead (dead-letter state) after this many attempts or this age.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_age_s: float = DEFAULT_MAX_AGE_S
    # Above either, the route answers 503 with Retry-After instead of queueing (None: no limit).
    high_water_items: int | None = DEFAULT_HIGH_WATER_ITEMS
    high_water_age_s: float | None = None
    # Exponential backoff between attempts: base * 2^(attempt-1), capped, with jitter.
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S
    # Where the conversation id is in a JSON body: items of one conversation are delivered
    # in order. None: no order is kept between items.
    conversation: str | None = None

    @property
    def queued(self) -> bool:
        return self.mode == "queued"


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
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    # Parts that are not text (a PDF, an image, an archive): forwarded and listed in the
    # audit record (`pass`), replaced by a placeholder text part (`strip`) or refused with
    # 415 unreadable_part (`reject`). One whose text layer holds a value is stripped even
    # under `pass`: it cannot be rewritten in place.
    unreadable_parts: Literal["pass", "strip", "reject"] = "pass"

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
class IngressSettings:
    """The routes, and what the proxy allows a client before giving up on it."""

    routes: tuple[RouteSettings, ...]
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    min_body_rate_bytes_s: float = DEFAULT_MIN_BODY_RATE_BYTES_S
    # One log line per forwarded message (off by default: the audit trail has a record each).
    access_log: bool = False

    def route_for(self, path: str) -> RouteSettings | None:
        """The route with the longest matching prefix, or None."""
        return route_for(self.routes, path)


def route_for(routes: tuple[RouteSettings, ...], path: str) -> RouteSettings | None:
    """The route with the longest matching prefix, or None."""
    best = None
    for route in routes:
        if route.matches(path) and (best is None or len(route.path_prefix) > len(best.path_prefix)):
            best = route
    return best


def check_http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL")
    return value


def _secret_from_env(environ: Mapping[str, str], var: str | None, what: str, where: str) -> bytes:
    if not var:
        raise ConfigError(f"{where}: {what} is required for this signature scheme")
    value = environ.get(var)
    if not value:
        raise ConfigError(f"{where}: environment variable {var} ({what}) is not set")
    return value.encode()


def parse_route(raw: Mapping[str, Any], environ: Mapping[str, str]) -> RouteSettings:
    """One route of the (schema-checked) file. Raises ConfigError naming the route."""
    where = f"routes.{raw['name']}"
    sig_raw = raw.get("signature", {"scheme": "none"})
    scheme = sig_raw["scheme"]
    signature = SignatureConfig(scheme=scheme)
    if scheme in ("slack", "zendesk", "intercom"):
        signature = SignatureConfig(
            scheme=scheme,
            sender_secret=_secret_from_env(
                environ, sig_raw.get("sender_secret_env"), "sender_secret_env", where
            ),
            upstream_secret=_secret_from_env(
                environ, sig_raw.get("upstream_secret_env"), "upstream_secret_env", where
            ),
            replay_window_s=sig_raw.get("replay_window_s", DEFAULT_REPLAY_WINDOW_S),
        )
    det = raw.get("detection", {})
    lim = raw.get("limits", {})
    delivery = parse_delivery(raw, where)
    unscanned = raw.get("unscanned_headers")
    return RouteSettings(
        name=raw["name"],
        path_prefix=raw["path_prefix"],
        upstream=check_http_url(raw["upstream"], f"{where}.upstream"),
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
        delivery=delivery,
        unreadable_parts=_unreadable_policy(raw.get("unreadable_parts", "pass"), where),
    )


def parse_delivery(raw: Mapping[str, Any], where: str) -> DeliverySettings:
    """A route's `delivery` and `outbox` settings. Raises ConfigError naming the key."""
    mode = raw.get("delivery", "sync")
    box = raw.get("outbox")
    if mode != "queued":
        if box is not None:
            raise ConfigError(f"{where}.outbox: only a route with `delivery: queued` has an outbox")
        return DeliverySettings()
    if raw.get("redact_responses"):
        # A queued sender gets 202, never the upstream's answer: there is none to redact.
        raise ConfigError(f"{where}: redact_responses needs `delivery: sync`")
    box = box or {}
    settings = DeliverySettings(
        mode="queued",
        answer_status=int(box.get("answer_status", 202)),
        max_attempts=int(box.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
        max_age_s=float(box.get("max_age_s", DEFAULT_MAX_AGE_S)),
        high_water_items=box.get("high_water_items", DEFAULT_HIGH_WATER_ITEMS),
        high_water_age_s=box.get("high_water_age_s"),
        backoff_base_s=float(box.get("backoff_base_s", DEFAULT_BACKOFF_BASE_S)),
        backoff_cap_s=float(box.get("backoff_cap_s", DEFAULT_BACKOFF_CAP_S)),
        conversation=box.get("conversation"),
    )
    check_delivery(settings, where)
    return settings


def check_delivery(settings: DeliverySettings, where: str) -> None:
    """What the schema cannot say about a route's outbox. Raises ConfigError."""
    if settings.answer_status not in ANSWER_STATUSES:
        raise ConfigError(f"{where}.outbox.answer_status must be one of 200, 202, 204")
    if settings.max_attempts < 1:
        raise ConfigError(f"{where}.outbox.max_attempts must be at least 1")
    for name in ("max_age_s", "backoff_base_s", "backoff_cap_s", "high_water_age_s"):
        value = getattr(settings, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{where}.outbox.{name} must be positive")
    if settings.high_water_items is not None and settings.high_water_items < 1:
        raise ConfigError(f"{where}.outbox.high_water_items must be at least 1")
    if settings.backoff_cap_s < settings.backoff_base_s:
        raise ConfigError(f"{where}.outbox.backoff_cap_s is below backoff_base_s")
    if settings.conversation is not None and not _POINTER.match(settings.conversation):
        raise ConfigError(f"{where}.outbox.conversation must be a JSON pointer such as /ticket/id")


def _unreadable_policy(value: Any, where: str) -> Literal["pass", "strip", "reject"]:
    if value == "pass":
        return "pass"
    if value == "strip":
        return "strip"
    if value == "reject":
        return "reject"
    raise ConfigError(f"{where}.unreadable_parts must be pass, strip or reject")


def route_conflicts(routes: tuple[RouteSettings, ...]) -> list[str]:
    """Every inconsistency between routes, each naming the routes involved."""
    problems: list[str] = []
    by_name: dict[str, list[int]] = {}
    by_prefix: dict[str, list[str]] = {}
    for index, route in enumerate(routes):
        by_name.setdefault(route.name, []).append(index)
        by_prefix.setdefault(route.path_prefix, []).append(route.name)
    for name, places in by_name.items():
        if len(places) > 1:
            problems.append(f"route name {name!r} is used by {len(places)} routes")
    for prefix, names in by_prefix.items():
        if len(names) > 1:
            # The longest-prefix match would pick one of them silently; the other never runs.
            problems.append(
                f"routes {', '.join(repr(n) for n in names)} have the same path_prefix {prefix!r}"
            )
    return problems
