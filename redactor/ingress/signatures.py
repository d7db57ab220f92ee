"""Webhook signatures: verify the sender's, then sign the rewritten body for the upstream.

Rewriting a body breaks the sender's signature, and the support system behind the proxy checks
it. So, per route, redactor checks the sender's signature with the sender's secret and signs
the body it forwards with a secret it shares with the upstream, in the same scheme, so the
upstream's own verification keeps working unchanged. Pure functions: time is passed in.

Schemes:
- slack: `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))` with
  `X-Slack-Request-Timestamp` inside a replay window (Slack's "Verifying requests").
- zendesk: `X-Zendesk-Webhook-Signature: base64(HMAC-SHA256(secret, ts + body))` with
  `X-Zendesk-Webhook-Signature-Timestamp` (Zendesk "Verifying webhook authenticity").
- intercom: `X-Hub-Signature: sha1=hex(HMAC-SHA1(client_secret, body))` (no timestamp).
- mailgun: the signature covers only the `timestamp` and `token` form fields, which redactor
  never changes, so it passes through untouched and the upstream verifies it as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from redactor.errors import AuthError

SCHEMES = ("none", "slack", "zendesk", "intercom", "mailgun")
DEFAULT_REPLAY_WINDOW_S = 300


class SignatureMissingError(AuthError):
    code = "signature_missing"
    message = "webhook signature is missing"


class SignatureInvalidError(AuthError):
    code = "signature_invalid"
    message = "webhook signature does not match"


class SignatureStaleError(AuthError):
    code = "signature_stale"
    message = "webhook timestamp is outside the replay window"


@dataclass(frozen=True, slots=True)
class SignatureConfig:
    scheme: str = "none"
    sender_secret: bytes = field(default=b"", repr=False)
    upstream_secret: bytes = field(default=b"", repr=False)
    replay_window_s: int = DEFAULT_REPLAY_WINDOW_S


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureMissingError(name)
    return value


def _check_fresh(timestamp: str, now: float, window_s: int) -> None:
    try:
        ts = int(timestamp) if timestamp.isdigit() else datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        raise SignatureInvalidError("timestamp") from None
    if abs(now - float(ts)) > window_s:
        raise SignatureStaleError()


def _same(expected: str, given: str) -> None:
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureInvalidError()


def _slack_mac(secret: bytes, ts: str, body: bytes) -> str:
    digest = hmac.new(secret, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return "v0=" + digest


def _zendesk_mac(secret: bytes, ts: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret, ts.encode() + body, hashlib.sha256).digest()).decode()


def _intercom_mac(secret: bytes, body: bytes) -> str:
    return "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()


def verify(config: SignatureConfig, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Check the sender's signature on the body as received.

    Raises SignatureMissingError, SignatureInvalidError or SignatureStaleError (all 401).
    """
    if config.scheme == "slack":
        ts = _header(headers, "X-Slack-Request-Timestamp")
        _check_fresh(ts, now, config.replay_window_s)
        _same(_slack_mac(config.sender_secret, ts, body), _header(headers, "X-Slack-Signature"))
    elif config.scheme == "zendesk":
        ts = _header(headers, "X-Zendesk-Webhook-Signature-Timestamp")
        _check_fresh(ts, now, config.replay_window_s)
        given = _header(headers, "X-Zendesk-Webhook-Signature")
        _same(_zendesk_mac(config.sender_secret, ts, body), given)
    elif config.scheme == "intercom":
        _same(_intercom_mac(config.sender_secret, body), _header(headers, "X-Hub-Signature"))


def sign(config: SignatureConfig, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """Headers to set on the forwarded request: the scheme's signature over the new body.

    The sender's timestamp is kept, so the upstream's replay check sees the original time.
    """
    if config.scheme == "slack":
        ts = headers["X-Slack-Request-Timestamp"]
        return {"X-Slack-Signature": _slack_mac(config.upstream_secret, ts, body)}
    if config.scheme == "zendesk":
        ts = headers["X-Zendesk-Webhook-Signature-Timestamp"]
        return {"X-Zendesk-Webhook-Signature": _zendesk_mac(config.upstream_secret, ts, body)}
    if config.scheme == "intercom":
        return {"X-Hub-Signature": _intercom_mac(config.upstream_secret, body)}
    return {}

