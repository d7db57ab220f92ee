"""A small body dense with digits or markup goes to the scan worker (and its time budget)
like a large one (issue 18, bounded cost: 16 KB of one digit per line cost 1.7 s of
detection on the event loop, benchmarks/inline_hostile.py); ordinary webhooks stay inline."""

from __future__ import annotations

import json

import pytest

from redactor.ingress.pipeline import dense


@pytest.mark.parametrize(
    "body",
    [
        b"4\n" * 8000,
        b"<p>" + b"&#52;" * 3000 + b"</p>",
        b"<a" + b' x="y"' * 2000 + b">",
        b"<b>1</b>" * 2000,
        b"<table>" + b"<td>4111</td>" * 1000 + b"</table>",
        json.dumps({"card": list(range(1000, 2000))}).encode(),
    ],
)
def test_dense_bodies_leave_the_loop(body: bytes) -> None:
    assert len(body) <= 16 * 1024
    assert dense(body)


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(
            {"event": {"type": "message", "text": "hi, card 4111 1111 1111 1111", "ts": "1.2"}}
        ).encode(),
        json.dumps({"ticket": {"id": 123456789, "comments": ["see you at 10:30"] * 100}}).encode(),
        b"<p>Hello</p>" * 1000,
        b"",
    ],
)
def test_ordinary_webhooks_stay_inline(body: bytes) -> None:
    assert not dense(body)
