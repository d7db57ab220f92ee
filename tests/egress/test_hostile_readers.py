"""Hostile requests against the real proxy (issue 18's second round): a generated card number or
SSN hidden in one of the 13 classes of issue 18, or behind two or three nested encodings, is
sent on the wire to redactor in front of a recording upstream. The oracle is this package's
own generous reader (generous.py, independent of redactor's code): in what the upstream
received (or, on a `redact_responses` route, what the client received) no reading may hold the
value; a refusal (4xx/5xx) must forward nothing; the value never reaches redactor's logs, its
audit trail or its error answers. Seeded: the same requests every run."""

from __future__ import annotations

import asyncio
import io
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from structlog.testing import capture_logs

from redactor.ingress.app import build_proxy_app
from redactor.ops.logconfig import StdlibBridge, leak_guard
from redactor.resources import open_resources
from redactor.settings import Overrides, load_settings, with_routes
from tests.egress import generous
from tests.egress.hostile import (
    CLASSES,
    JSON,
    TEXT,
    Headers,
    Req,
    Value,
    generate,
    make_value,
    multipart,
    pct,
)

# Requests per class: the builders of a class are cycled with fresh values (and, for the
# nested class, fresh chains of encodings).
COUNTS = {cls: 3 * len(builders) for cls, builders in CLASSES.items()}
COUNTS["nested"] = 90
SEED = 18


@dataclass
class Received:
    path: str
    headers: Headers
    body: bytes


@dataclass
class Stand:
    """The upstream stand-in: records what arrives, answers what the test says."""

    received: list[Received] = field(default_factory=list)
    reply: tuple[int, Headers, bytes] = (200, [("Content-Type", "application/json")], b"{}")


@dataclass
class Answer:
    status: int
    headers: Headers
    body: bytes


async def _send(port: int, req: Req) -> Answer:
    if req.raw is not None:
        data = req.raw
    else:
        lines = [f"{req.method} {req.path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in req.headers]
        if req.method != "GET" or req.body:
            lines.append(f"Content-Length: {len(req.body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + req.body
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(30):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = [tuple(line.split(": ", 1)) for line in lines[1:] if ": " in line]
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers):
        body = _unchunk(body)
    return Answer(status, headers, body)  # type: ignore[arg-type]


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


async def _start(tmp_path: Path):
    """The stand-in upstream and the proxy on 127.0.0.1 ports, with a `redact_responses`
    route for /tickets; returns (port, stand, audit path, cleanup)."""
    stand = Stand()

    async def record(request: web.Request) -> web.Response:
        stand.received.append(
            Received(
                request.raw_path,
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
                await request.read(),
            )
        )
        status, headers, body = stand.reply
        return web.Response(status=status, headers=dict(headers), body=body)

    up = web.Application(handler_args={"auto_decompress": False})
    up.router.add_route("*", "/{tail:.*}", record)
    up_runner = web.AppRunner(up)
    await up_runner.setup()
    await web.TCPSite(up_runner, "127.0.0.1", 0).start()
    settings = load_settings(
        Overrides(
            upstream=f"http://127.0.0.1:{up_runner.addresses[0][1]}/",
            data_dir=str(tmp_path / "data"),
            dev=True,
            tenant="acme",
            audit_log=str(tmp_path / "audit.jsonl"),
        ),
        {},
    )
    default = settings.routes[0]
    answers = replace(default, name="answers", path_prefix="/tickets", redact_responses=True)
    settings = with_routes(settings, (answers, *settings.routes))
    ctx = open_resources(settings)
    res = await ctx.__aenter__()
    runner = web.AppRunner(build_proxy_app(res.ingress))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()

    async def cleanup() -> None:
        await runner.cleanup()
        await ctx.__aexit__(None, None, None)
        await up_runner.cleanup()

    return runner.addresses[0][1], stand, tmp_path / "audit.jsonl", cleanup


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory):
    """One proxy for the module: starting one (keys, vault) costs more than its requests."""
    port, stand, audit, cleanup = await _start(tmp_path_factory.mktemp("hostile"))
    yield port, stand, audit
    await cleanup()


@dataclass
class Outcome:
    req: Req
    status: int
    leak: str | None


def _leak_in_forwarded(req: Req, answer: Answer, forwarded: list[Received]) -> str | None:
    digits = req.value.digits
    if req.answer is not None:
        # What the client of a `redact_responses` route reads.
        texts = generous.read_message(answer.body, headers=answer.headers)
        found = generous.find(digits, texts)
        return f"answer:{found}" if found else None
    if answer.status >= 400 and forwarded:
        return "refused but forwarded"
    for got in forwarded:
        texts = generous.read_message(got.body, path=got.path, headers=got.headers)
        found = generous.find(digits, texts)
        if found:
            return found
    found = generous.find(digits, generous.read_message(answer.body, headers=answer.headers))
    return f"error answer:{found}" if found else None


async def _run(cls: str, live, caplog) -> list[Outcome]:
    port, stand, audit = live
    caplog.set_level(logging.INFO)
    outcomes = []
    with capture_logs() as logs:
        for req in generate(cls, COUNTS[cls], SEED):
            stand.reply = req.answer or (200, [("Content-Type", "application/json")], b"{}")
            before = len(stand.received)
            answer = await _send(port, req)
            leak = _leak_in_forwarded(req, answer, stand.received[before:])
            outcomes.append(Outcome(req, answer.status, leak))
    # redactor's own output as production writes it: structured events through the leak
    # guard, stdlib records (aiohttp's access and server logs) through the bridge, the audit
    # trail.
    stream = io.StringIO()
    bridge = StdlibBridge(stream)
    for record in caplog.records:
        bridge.emit(record)
    events = [leak_guard(None, "info", dict(event)) for event in logs]
    own = repr(events) + stream.getvalue() + (audit.read_text() if audit.exists() else "")
    own_texts = [("own", generous.normalize(own))]
    for outcome in outcomes:
        if outcome.leak is None and generous.find(outcome.req.value.digits, own_texts):
            outcome.leak = "redactor's own output"
    return outcomes


def _report(outcomes: list[Outcome]) -> str:
    return "\n".join(
        f"  {o.req.name} ({o.req.value.kind}, {len(o.req.value.digits)} digits): "
        f"status {o.status}, read in {o.leak}"
        for o in outcomes
    )


# Bypasses found and not closed yet: (class, a substring of the request's name) -> why.
# Every other leak fails the test; each fix removes its line.
KNOWN_OPEN: dict[tuple[str, str], str] = {
    ("folding", "gap"): "long space runs before each line break between groups",
    ("params", "h:Authorization"): "credential headers are neither redacted nor verified",
    ("params", "h:Cookie"): "credential headers are neither redacted nor verified",
    (
        "split",
        "form;",
    ): "pieces named cc1.. or ssn_area.. in fields parted by `;` (Rack 2 splits there)",
    ("split", "objs"): "an SSN's pieces under ssn_area/ssn_group/ssn_serial in three JSON objects",
}


def _known(outcome: Outcome) -> bool:
    return any(cls == outcome.req.cls and part in outcome.req.name for cls, part in KNOWN_OPEN)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("cls", sorted(CLASSES))
async def test_no_hidden_value_gets_past_redactor(cls: str, live, caplog) -> None:
    outcomes = await _run(cls, live, caplog)
    assert len(outcomes) == COUNTS[cls]
    leaks = [o for o in outcomes if o.leak and not _known(o)]
    assert not leaks, f"{len(leaks)} of {len(outcomes)} {cls} requests leaked:\n" + _report(leaks)


@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_the_oracle_reads_every_hidden_value(cls: str) -> None:
    # The test above can fail: sent through nothing, every generated request shows its value
    # to the generous reader (and the generator covers every builder of the class).
    for req in generate(cls, len(CLASSES[cls]), SEED):
        body = req.raw if req.raw is not None else req.answer[2] if req.answer else req.body
        headers = req.answer[1] if req.answer else req.headers
        texts = generous.read_message(body, path=req.path, headers=headers)
        assert generous.find(req.value.digits, texts), req.name


# --- bypasses the generator found, kept as regressions ---------------------------------------

REGRESSIONS: dict[str, Callable[[Value], Req]] = {
    # The proxy appended its hop to the request's own `Forwarded` line, which still held the
    # value redaction had tokenised in the outgoing copy.
    "Forwarded header": lambda v: Req(
        "regression", "forwarded", v, headers=[*JSON, ("Forwarded", v.written())], body=b"{}"
    ),
    "X-Forwarded-For header": lambda v: Req(
        "regression", "xff", v, headers=[*JSON, ("X-Forwarded-For", v.written())], body=b"{}"
    ),
    # `%20` glued `20` to the value in the raw text: the detector weighed the longer run, and
    # the verifier took that as having read the value it found alone in the percent reading.
    "value after %20 in text": lambda v: Req(
        "regression",
        "pct20",
        v,
        headers=TEXT,
        body=pct(v.word).encode() + b"%20" + v.digits.encode(),
    ),
    "value after =20 in an octet-stream part": lambda v: Req(
        "regression",
        "qp20",
        v,
        headers=multipart(
            [
                (
                    'Content-Disposition: form-data; name="f"; filename="x"\r\n'
                    "Content-Type: application/octet-stream",
                    b"",
                )
            ]
        )[0],
        body=multipart(
            [
                (
                    'Content-Disposition: form-data; name="f"; filename="x"\r\n'
                    "Content-Type: application/octet-stream",
                    v.word.replace(" ", "=20").encode() + b"=20" + v.digits.encode(),
                )
            ]
        )[1],
    ),
}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("name", sorted(REGRESSIONS))
@pytest.mark.parametrize("kind", ["card", "ssn"])
async def test_a_bypass_found_before_stays_closed(name: str, kind: str, live) -> None:
    port, stand, _audit = live
    req = REGRESSIONS[name](make_value(random.Random(f"{name}:{kind}"), kind))
    before = len(stand.received)
    answer = await _send(port, req)
    assert _leak_in_forwarded(req, answer, stand.received[before:]) is None
    assert answer.status in (200, 422)
