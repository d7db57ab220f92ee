"""The light commands stay light: what `redactor --version`, `health` and the help pages import.

A container runs `redactor health` as its HEALTHCHECK every few seconds, so its cost is paid
all day. Each command runs in a fresh interpreter with `-X importtime`, which lists every
module it imported; a heavy package there fails with the chain that pulled it in.
benchmarks/cli_startup.py measures the time this keeps short (no timing here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from redactor.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]

# What serving, detection and the vault load; none belongs in a command that only answers.
HEAVY = (
    "aiohttp",
    "asyncpg",
    "cryptography",
    "jsonschema",
    "presidio_analyzer",
    "presidio_anonymizer",
    "prometheus_client",
    "spacy",
    "structlog",
    "uvloop",
    "yaml",
    "redactor.settings",
    "redactor.detection",
    "vault",
)
# Group help pages may load their own group (the vault package and cryptography for
# `keys`/`vault`, structlog with the audit package), never the proxy's stack.
PROXY_STACK = ("aiohttp", "presidio_analyzer", "spacy", "redactor.settings", "redactor.detection")


def _imported(*argv: str) -> dict[str, list[str]]:
    """Each module `python -m redactor ARGV` imports, with the chain of importers above it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "-X", "importtime", "-m", "redactor", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    chains: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []
    # importtime prints a module after the modules it imported, two spaces deeper per level:
    # read backwards, a module's importer is the nearest line before it that is less deep.
    for line in reversed(proc.stderr.splitlines()):
        if not line.startswith("import time:") or "|" not in line:
            continue
        field = line.rsplit("|", 1)[1]
        name = field.strip()
        if name == "imported package":
            continue
        depth = (len(field) - len(field.lstrip()) - 1) // 2
        while stack and stack[-1][0] >= depth:
            stack.pop()
        chains[name] = [n for _, n in stack] + [name]
        stack.append((depth, name))
    assert "redactor.cli" in chains, proc.stderr[-2000:]
    return chains


def _loaded(chains: dict[str, list[str]], packages: tuple[str, ...]) -> list[str]:
    return [
        " <- ".join(reversed(chain))
        for name, chain in chains.items()
        if any(name == p or name.startswith(p + ".") for p in packages)
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ("--version",),
        ("--help",),
        # Port 9 (discard) on loopback: nothing listens, the check fails fast with exit 1.
        ("health", "--url", "http://127.0.0.1:9/readyz", "--timeout-s", "1"),
        ("serve", "--help"),
        ("health", "--help"),
    ],
    ids=" ".join,
)
def test_light_commands_import_no_heavy_package(argv: tuple[str, ...]) -> None:
    assert _loaded(_imported(*argv), HEAVY) == []


@pytest.mark.parametrize("group", ["keys", "vault", "audit", "agents"])
def test_group_help_loads_its_group_but_not_the_proxy(group: str) -> None:
    assert _loaded(_imported(group, "--help"), PROXY_STACK) == []


def test_the_import_check_sees_a_heavy_import() -> None:
    # `keys --help` builds the vault commands' parsers, which import the vault package: if
    # the check did not see that, the checks above would prove nothing.
    loaded = _loaded(_imported("keys", "--help"), HEAVY)
    assert any(line.startswith("vault") for line in loaded)
    # `detect --help` only parses: the detector (presidio) is built when detect runs.
    assert _loaded(_imported("detect", "--help"), HEAVY) == []


def test_the_deferred_groups_are_listed_with_their_own_help() -> None:
    # `redactor --help` shows stubs for the groups it did not build: same names, same help.
    def helps(parser) -> dict[str, str | None]:
        sub = next(a for a in parser._actions if a.dest == "command")
        return {choice.dest: choice.help for choice in sub._choices_actions}

    assert helps(build_parser(())) == helps(build_parser())
    assert list(helps(build_parser(()))) == list(helps(build_parser()))


def test_a_named_group_gets_its_full_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["vault", "erase-tenant", "--help"])
    assert exc.value.code == 0
    assert "--yes" in capsys.readouterr().out


async def test_health_exits_0_on_a_ready_admin_listener_and_1_otherwise(aiohttp_server) -> None:
    import asyncio

    async def ready(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def unready(_request: web.Request) -> web.Response:
        return web.json_response({"status": "unavailable"}, status=503)

    app = web.Application()
    app.router.add_get("/readyz", ready)
    app.router.add_get("/down", unready)
    server = await aiohttp_server(app)

    def health(url: str) -> int:
        return main(["health", "--url", url, "--timeout-s", "5"])

    # The probe blocks (urllib): off the loop that serves the test app.
    assert await asyncio.to_thread(health, str(server.make_url("/readyz"))) == 0
    assert await asyncio.to_thread(health, str(server.make_url("/down"))) == 1
    assert await asyncio.to_thread(health, "http://127.0.0.1:9/readyz") == 1

    # Only a local admin listener: a probe is never pointed at another host.
    for url in (
        "http://example.com/readyz",
        "https://127.0.0.1:9090/readyz",
        "http://127.0.0.1:x/",
    ):
        assert health(url) == 2


async def test_health_fails_on_an_answer_that_is_not_http() -> None:
    import asyncio

    async def garbage(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"200 OK but not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"http://127.0.0.1:{port}/readyz"
        assert await asyncio.to_thread(main, ["health", "--url", url, "--timeout-s", "5"]) == 1
    finally:
        server.close()
        await server.wait_closed()
