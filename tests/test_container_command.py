"""The Dockerfile's command, run for real: `redactor serve` configured the way the image is.

No Docker engine runs here, so this starts the same entry point and command with the image's
REDACTOR_* environment (listen addresses moved to free loopback ports) and checks what the
HEALTHCHECK checks, then that a webhook is redacted and SIGTERM stops it cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import signal
import socket
import sys
from pathlib import Path

from aiohttp import ClientSession, web

from redactor.audit import write_audit_key_file
from vault.keyring import generate_key_material, write_key_file

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _image_env() -> dict[str, str]:
    block = re.search(r"^ENV (.*?)(?=^\S)", DOCKERFILE, re.DOTALL | re.MULTILINE)
    assert block
    pairs = shlex.split(block.group(1).replace("\\\n", " "))
    return dict(p.split("=", 1) for p in pairs)


def _exec_form(instruction: str) -> list[str]:
    match = re.search(rf"^{instruction} (\[.*\])$", DOCKERFILE, re.MULTILINE)
    assert match, instruction
    return json.loads(match.group(1))


def _first_run() -> list[str]:
    # The documented first-run step: the arguments after the image name.
    match = re.search(
        r"^#\s+-v redactor-data:/var/lib/redactor redactor (vault init)$", DOCKERFILE, re.M
    )
    assert match, "the Dockerfile documents a first-run `vault init`"
    return match.group(1).split()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_image_command_serves_redacts_reports_health_and_stops_on_sigterm(
    tmp_path: Path, aiohttp_server
) -> None:
    received: list[bytes] = []

    async def upstream_handler(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"stored": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", upstream_handler)
    upstream = await aiohttp_server(app)

    listen, admin = _free_port(), _free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        "routes:\n"
        "  - name: helpdesk\n"
        "    path_prefix: /\n"
        f"    upstream: {upstream.make_url('/')}\n"
        "    tenant: acme\n",
        encoding="utf-8",
    )
    keys = tmp_path / "keys.json"
    write_key_file(keys, generate_key_material(secrets.token_bytes))
    audit_key = tmp_path / "audit.key"
    write_audit_key_file(audit_key)

    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    env.update(_image_env())
    env.update(
        REDACTOR_CONFIG=str(config),
        REDACTOR_KEY_FILE=str(keys),
        REDACTOR_AUDIT_KEY_FILE=str(audit_key),
        REDACTOR_DATA_DIR=str(tmp_path / "data"),
        REDACTOR_LISTEN=f"127.0.0.1:{listen}",
        REDACTOR_ADMIN_LISTEN=f"127.0.0.1:{admin}",
    )
    entry = _exec_form("ENTRYPOINT")
    assert entry == ["redactor"]
    command = [sys.executable, "-m", "redactor", *_exec_form("CMD")]
    health = [
        sys.executable,
        "-m",
        "redactor",
        *_exec_form(
            "HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \\\\\n  CMD"
        )[1:],
    ]
    health[-1] = f"http://127.0.0.1:{admin}/readyz"

    # On a fresh volume, serve refuses to start (no silent empty vault) and says what to do.
    refused = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, refusal = await asyncio.wait_for(refused.communicate(), timeout=60)
    assert refused.returncode == 2
    assert b"vault init" in refusal
    assert not (tmp_path / "data" / "vault.db").exists()
    init = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", *_first_run(), env=env, stderr=asyncio.subprocess.PIPE
    )
    _, init_err = await asyncio.wait_for(init.communicate(), timeout=60)
    assert init.returncode == 0, init_err.decode(errors="replace")

    proc = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        for _ in range(100):
            check = await asyncio.create_subprocess_exec(
                *health, env=env, stderr=asyncio.subprocess.DEVNULL
            )
            if await check.wait() == 0:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("redactor serve never became ready")

        async with ClientSession() as session, session.post(
            f"http://127.0.0.1:{listen}/tickets",
            json={"comment": "card 4111 1111 1111 1111"},
        ) as resp:
            assert resp.status == 200
        assert b"tok_v1_card_" in received[0]
        assert b"4111 1111" not in received[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0
    assert b"4111 1111 1111 1111" not in stderr
    assert b"redactor_stopped" in stderr
