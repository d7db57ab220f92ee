"""The load suites' own tools do what the suites rely on: the leak search finds a value in
any grouping or encoding and nothing in a token, the fault proxy refuses, stalls, cuts and
resumes, and the stand-in upstream misbehaves as asked and records what it got."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientError, ClientSession, ClientTimeout

from tests.load.faultproxy import FaultProxy
from tests.load.messages import find_known, generate, known_digits
from tests.load.standin import StandInUpstream

CARD = "4111111111111111"
SSN = "536904399"


@pytest.mark.parametrize(
    "data",
    [
        b"card 4111 1111 1111 1111.",
        b"4111-1111-1111-1111",
        b"x4111111111111111y",
        "card 4111111111111111".encode("utf-16-le"),
        b"\x00\x01" + "ssn 536-90-4399".encode("utf-16-be"),
        b"ssn 536 90 4399",
    ],
)
def test_the_leak_search_finds_a_value_however_it_is_written(data: bytes) -> None:
    assert set(find_known(data, {CARD, SSN}))


def test_the_leak_search_finds_nothing_in_tokens_and_other_numbers() -> None:
    clean = b"tok_v1_card_abcdefghijklmnopqrst_1111 tok_v1_ssn_abcdefghijklmnopqrst 4111 1111"
    assert not set(find_known(clean + b" 2026-12-07T10:00:00Z 555-0100", {CARD, SSN}))


def test_generated_messages_carry_their_values_in_every_shape() -> None:
    messages = generate(24, seed=5)
    assert len({m.shape for m in messages}) == 12
    for message in messages:
        assert message.values
        own = {v.digits for v in message.values}
        assert own & set(find_known(message.body, own)) or message.shape.endswith(("eml", "mime"))
    assert len(known_digits(messages)) > 24


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _roundtrip(port: int, timeout_s: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"ping")
        await writer.drain()
        return await asyncio.wait_for(reader.read(4), timeout_s)
    finally:
        writer.close()


async def test_the_fault_proxy_passes_refuses_stalls_cuts_and_resumes() -> None:
    server = await _echo_server()
    async with server, FaultProxy(server.sockets[0].getsockname()[1]) as proxy:
        assert await _roundtrip(proxy.port) == b"ping"

        await proxy.refuse()
        with pytest.raises(ConnectionRefusedError):
            await _roundtrip(proxy.port)
        await proxy.resume()
        assert await _roundtrip(proxy.port) == b"ping"

        proxy.hang()
        with pytest.raises(TimeoutError):
            await _roundtrip(proxy.port, timeout_s=0.3)
        await proxy.resume()

        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        assert await reader.read(4) == b"ping"
        assert proxy.cut() == 1
        try:
            after = await asyncio.wait_for(reader.read(4), 2)
        except ConnectionResetError:
            after = b""
        assert after == b""  # reset or closed: the live connection is gone
        writer.close()


async def test_the_stand_in_upstream_answers_as_told_and_records_every_request() -> None:
    upstream = StandInUpstream(retry_after_s=7)
    await upstream.start()
    try:
        async with ClientSession(timeout=ClientTimeout(total=2)) as session:

            async def post(key: str) -> tuple[int, str | None]:
                headers = {"X-Load-Message": key, "Idempotency-Key": key}
                async with session.post(upstream.url + "x", data=b"{}", headers=headers) as r:
                    await r.read()
                    return r.status, r.headers.get("Retry-After")

            assert await post("a") == (200, None)
            await upstream.set_mode("error")
            assert (await post("b"))[0] == 500
            await upstream.set_mode("throttle")
            assert await post("c") == (429, "7")
            await upstream.set_mode("cut")
            for key in ("d", "e"):
                with pytest.raises(ClientError):
                    await post(key)
            await upstream.set_mode("refuse")
            with pytest.raises(ClientError):
                await post("f")
            await upstream.set_mode("ok")
            assert (await post("g"))[0] == 200
        got = [(r.message_id, r.answer, r.idempotency_key) for r in upstream.received]
        assert got == [
            ("a", 200, "a"),
            ("b", 500, "b"),
            ("c", 429, "c"),
            ("d", 0, "d"),
            ("e", 200, "e"),  # the status line went out, then the connection
            ("g", 200, "g"),
        ]
        assert [r.message_id for r in upstream.delivered()] == ["a", "e", "g"]
    finally:
        await upstream.stop()
