"""Large bodies: proved clean on the loop when the JSON fast path can, else scanned by the
scan worker; either way a value never gets through."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from redactor.detection import Detector
from redactor.ingress.pipeline import Pipeline
from redactor.redaction.rewrite import Rewriter

PAN = "4111 1111 1111 1111"


class _Vault:
    async def tokenize_many(self, tenant: str, items: Sequence[tuple[str, str]]) -> list[str]:
        return [f"tok_v1_card_{'a' * 20}_{digits[-4:]}" for _entity, digits in items]


class _InlineRunner:
    """Stands in for the scan worker: runs the function here and records that it was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def run(self, fn: Callable[..., Any], *args: Any, size: int = 0) -> Any:
        self.calls.append(fn.__name__)
        return fn(*args)


def _thread(extra: str = "") -> bytes:
    # A 40 KB e-mail thread in a webhook: dates, times and order numbers, but no value.
    lines = [
        f"On Tue, Nov {d % 28 + 1}, 2026 at {d % 12 + 1}:{d % 60:02d} PM Dana wrote:\n"
        f"> Order A-{4000 + d} left our warehouse; trace TR{d}. Call 555-01{d % 90 + 10}."
        for d in range(400)
    ]
    return json.dumps({"ticket": {"comment": {"body": extra + "\n".join(lines)}}}).encode()


async def _redact(runner: _InlineRunner, body: bytes):
    pipeline = Pipeline(Detector(), Rewriter(), _Vault(), 5.0, scan_pool=runner)
    return await pipeline.redact(
        body, content_type="application/json", content_encoding=None, tenant="acme"
    )


async def test_a_large_clean_webhook_is_proved_clean_without_the_scan_worker() -> None:
    runner = _InlineRunner()
    body = _thread()
    assert len(body) > 32 * 1024
    redaction = await _redact(runner, body)
    assert redaction.body == body
    assert not redaction.changed
    assert runner.calls == []


async def test_a_large_webhook_with_a_card_goes_to_the_scan_worker_and_is_tokenised() -> None:
    runner = _InlineRunner()
    redaction = await _redact(runner, _thread(f"my card is {PAN}\n"))
    assert runner.calls == ["scan_in_worker", "rebuild_in_worker"]
    assert PAN.encode() not in redaction.body
    assert redaction.counts == {"CREDIT_CARD": 1}
