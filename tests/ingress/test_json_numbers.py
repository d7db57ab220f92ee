"""Card numbers and SSNs sent as JSON numbers, however they are written (issue 18, item 1)."""

from __future__ import annotations

import json

import pytest

from redactor.bodies.json_prescan import plain_json_texts
from redactor.bodies.limits import BodyLimits


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"card": 4111111111111111.0}', "card"),
        (b'{"card": 4.111111111111111e15}', "card"),
        (b'{"payment": {"pan": 4111111111111111E+0}}', "pan"),
        (b'{"ssn": 536904399}', "ssn"),
        (b'{"ssn": 5.36904399e8}', "ssn"),
    ],
)
async def test_a_value_written_as_a_number_reaches_the_upstream_as_a_token(
    proxy, body: bytes, key: str
) -> None:
    resp = await proxy.client.post("/hook", data=body, headers={"Content-Type": "application/json"})

    assert resp.status == 200
    got = proxy.upstream.received[0].body
    assert b"4111" not in got
    assert b"536904399" not in got
    doc = json.loads(got)
    value = doc[key] if key in doc else doc["payment"][key]
    assert isinstance(value, str)
    assert value.startswith("tok_v1_")


async def test_ids_written_as_numbers_stay_numbers(proxy) -> None:
    body = b'{"ticket_id": 536904399, "requester_id": 366201234, "amount": 12.5}'

    resp = await proxy.client.post("/hook", data=body, headers={"Content-Type": "application/json"})

    assert resp.status == 200
    assert proxy.upstream.received[0].body == body


def test_the_fast_path_hands_large_floats_to_the_codec() -> None:
    assert (
        plain_json_texts(b'{"n": 4111111111111111.0}', "application/json", None, BodyLimits())
        is None
    )
