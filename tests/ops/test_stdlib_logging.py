"""What redactor's process writes on stderr about a malformed request: aiohttp's own loggers go
through the leak guard, an exception by its class only (issue 18, item 10)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from aiohttp import ClientSession

from redactor.ops.logconfig import configure_logging

PAN = "4111111111111111"
FORMS = (PAN, "4111 1111 1111 1111", "4111-1111-1111-1111", "536904399", "536-90-4399")

# Each breaks the HTTP parser at a different place, with a value in the bytes it quotes.
MALFORMED = (
    b"POST /hook HTTP/1.1\r\nHost: x\r\nX-Note: card\r\n 4111 1111 1111 1111\r\n\r\n",
    b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 4111111111111111x\r\n\r\n",
    b"POST /hook HTTP/1.1\r\nHost: x\r\nX-Note: ssn 536-90-4399\x00\r\n\r\n",
    b"POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4111111111111111\r\nxx\r\n",
    b"GET /" + b"a" * 9000 + b"4111111111111111 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: 4111-1111-1111-1111\r\n\r\nbody",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _send_raw(port: int, data: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            await reader.read()
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()


async def test_a_malformed_request_with_a_card_puts_no_card_on_stderr(tmp_path: Path) -> None:
    listen, admin = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", "serve", "--dev",
        "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}",
        "--upstream", "http://127.0.0.1:9/", "--data-dir", str(tmp_path),
        "--audit-log", str(tmp_path / "audit.jsonl"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with ClientSession() as session:
            for _ in range(300):  # 60 s: a loaded CI machine starts slowly
                try:
                    async with session.get(f"http://127.0.0.1:{admin}/readyz") as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("the server never became ready")
        for data in MALFORMED:
            await _send_raw(listen, data)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = (out + err).decode("utf-8", "replace")
    # The parser's complaints were logged (so this test can fail) ...
    assert '"logger":"aiohttp.server"' in text, text[-3000:]
    assert '"exc_type":"' in text
    # ... and none of them quotes a value or a traceback.
    assert not any(form in text for form in FORMS), text[-3000:]
    assert "Traceback" not in text


def test_a_stdlib_record_goes_through_the_leak_guard_with_the_exception_class_only() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        raise ValueError(f"bad bytes b'card {PAN}'")  # noqa: TRY301 - the record under test
    except ValueError:
        logging.getLogger("aiohttp.client").exception("request to %s failed", f"/c/{PAN}")
    line = stream.getvalue()
    assert '"exc_type":"ValueError"' in line
    assert '"logger":"aiohttp.client"' in line
    assert PAN not in line
    assert "bad bytes" not in line


def test_a_senders_request_id_is_adopted_only_without_nine_digits_once_separators_go() -> None:
    from aiohttp.test_utils import make_mocked_request

    from redactor.middleware import _request_id

    def adopted(given: str) -> bool:
        return (
            _request_id(make_mocked_request("GET", "/", headers={"X-Request-ID": given})) == given
        )

    assert adopted("req-123")
    assert adopted("order-12345678")  # eight digits
    assert adopted("a1b2c3d4e5f6a7b8c9d0")
    for hidden in ("4111_1111/1111~1111", "536.90.4399", "x5-3-6-9-0-4-3-9-9y", "ssn:536904399"):
        assert not adopted(hidden), hidden


def test_a_fresh_request_id_has_a_letter_and_no_run_of_thirteen_digits(monkeypatch) -> None:
    import os
    import re

    from redactor import middleware

    # Ids as drawn: 32 hex digits the log leak guard passes whole.
    for _ in range(5000):
        got = middleware.new_request_id()
        assert re.fullmatch(r"[0-9a-f]{32}", got)
        assert re.search(r"[a-f]", got)
        assert not re.search(r"[0-9]{13}", got)
    # Draws that would not pass are drawn again: all digits, then a run of thirteen.
    draws = iter(
        [
            bytes.fromhex("1234567890" * 3 + "12"),
            bytes.fromhex("a" + "1" * 13 + "b" * 18),
            bytes.fromhex("a" + "1" * 12 + "b" * 19),
        ]
    )
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    assert middleware.new_request_id() == "a" + "1" * 12 + "b" * 19
