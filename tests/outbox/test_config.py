"""A route's `delivery` and `outbox` settings: defaults, what `config check` refuses, and the
retry policy they drive (backoff, Retry-After, attempt and age limits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redactor.ingress.config import DeliverySettings
from redactor.ingress.delivery import backoff_s, decide, parse_retry_after
from redactor.ops.config_check import check_config
from redactor.settings import Overrides, load_settings
from vault.outbox import OutboxItem

ROUTE = "  - {name: chat, path_prefix: /chat/, upstream: 'http://127.0.0.1:9000', tenant: t"


def _config(tmp_path: Path, route_rest: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"routes:\n{ROUTE}{route_rest}}}\n")
    return path


def test_a_route_is_sync_by_default_and_queued_takes_the_documented_defaults(
    tmp_path: Path,
) -> None:
    sync = load_settings(Overrides(config=str(_config(tmp_path, "")), dev=True), {})
    assert sync.routes[0].delivery == DeliverySettings()
    assert sync.routes[0].delivery.queued is False

    path = _config(tmp_path, ", delivery: queued")
    queued = load_settings(Overrides(config=str(path), dev=True), {}).routes[0].delivery
    assert queued == DeliverySettings(mode="queued")
    assert (queued.answer_status, queued.max_attempts, queued.max_age_s) == (202, 12, 86400.0)
    assert (queued.high_water_items, queued.high_water_age_s) == (10_000, None)
    assert (queued.backoff_base_s, queued.backoff_cap_s, queued.conversation) == (1.0, 300.0, None)


def test_config_check_accepts_every_outbox_setting(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        ", delivery: queued, outbox: {answer_status: 200, max_attempts: 5, max_age_s: 3600,"
        " high_water_items: 500, high_water_age_s: 600, backoff_base_s: 0.5,"
        " backoff_cap_s: 60, conversation: /event/channel}",
    )
    result = check_config(Overrides(config=str(path), dev=True), {})
    assert result.problems == []
    assert result.settings is not None
    delivery = result.settings.routes[0].delivery
    assert delivery == DeliverySettings(
        mode="queued", answer_status=200, max_attempts=5, max_age_s=3600.0,
        high_water_items=500, high_water_age_s=600.0, backoff_base_s=0.5, backoff_cap_s=60.0,
        conversation="/event/channel",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("route_rest", "problem"),
    [
        (", delivery: later", "delivery"),
        (", outbox: {max_attempts: 3}", "only a route with `delivery: queued` has an outbox"),
        (", delivery: queued, redact_responses: true", "redact_responses needs `delivery: sync`"),
        (", delivery: queued, outbox: {answer_status: 201}", "answer_status"),
        (", delivery: queued, outbox: {max_attempts: 0}", "max_attempts"),
        (", delivery: queued, outbox: {max_age_s: 0}", "max_age_s"),
        (", delivery: queued, outbox: {backoff_base_s: 10, backoff_cap_s: 1}", "below"),
        (", delivery: queued, outbox: {conversation: ticket.id}", "conversation"),
        (", delivery: queued, outbox: {retries: 3}", "retries"),
    ],
)
def test_config_check_refuses_a_bad_outbox_setting_naming_it(
    tmp_path: Path, route_rest: str, problem: str
) -> None:
    path = _config(tmp_path, route_rest)
    result = check_config(Overrides(config=str(path), dev=True), {})
    assert len(result.problems) == 1
    assert problem in result.problems[0]
    assert "line 2" in result.problems[0]


def _item(attempts: int, age_from: float = 1000.0) -> OutboxItem:
    return OutboxItem(
        seq=1, id="ob_x", route="r", tenant="t", request_id="q", method="POST", target="/",
        headers=(), body=b"", attempts=attempts, created_at=age_from, age_from=age_from,
    )  # fmt: skip


DELIVERY = DeliverySettings(
    mode="queued", max_attempts=4, max_age_s=100.0, backoff_base_s=1.0, backoff_cap_s=8.0
)


def test_backoff_doubles_up_to_its_cap_with_jitter_over_the_upper_half() -> None:
    assert [backoff_s(DELIVERY, n, lambda: 1.0) for n in (1, 2, 3, 4, 5, 40)] == [
        1.0, 2.0, 4.0, 8.0, 8.0, 8.0,
    ]  # fmt: skip
    assert [backoff_s(DELIVERY, n, lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("status", "retry_after", "attempts", "expected"),
    [
        (200, None, 1, ("delivered", None, None)),
        (204, None, 4, ("delivered", None, None)),
        (500, None, 1, ("retrying", None, 1001.0)),
        (None, None, 2, ("retrying", "upstream_unavailable", 1002.0)),
        (429, 30.0, 1, ("retrying", None, 1030.0)),
        (503, 7.0, 1, ("retrying", None, 1007.0)),
        (500, 30.0, 1, ("retrying", None, 1001.0)),  # Retry-After only on 429 and 503
        (408, None, 1, ("retrying", None, 1001.0)),
        (500, None, 4, ("dead", "attempts_exhausted", None)),
        (429, 500.0, 1, ("dead", "max_age_exceeded", None)),
        (400, None, 1, ("dead", "upstream_rejected", None)),
        (301, None, 1, ("dead", "upstream_rejected", None)),
    ],
)
def test_an_attempts_outcome(
    status: int | None,
    retry_after: float | None,
    attempts: int,
    expected: tuple[str, str | None, float | None],
) -> None:
    failure = "upstream_unavailable" if status is None else None
    decision = decide(DELIVERY, _item(attempts), status, retry_after, 1000.0, lambda: 1.0, failure)
    assert (decision.outcome, decision.code, decision.next_at) == expected


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:00 GMT", now) == 100.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
