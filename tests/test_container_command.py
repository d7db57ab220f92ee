"""The Dockerfile's documented commands, run for real with the image's environment.

No Docker engine runs here, so this runs the same entry point and commands with the final
stage's REDACTOR_* environment, and gives each command exactly the files its documented
`docker run` mounts: a path the image's environment names but the command does not mount
stays missing, as it would in the container (that is how `vault init` without the audit
key failed). Listen addresses move to free loopback ports. Then it checks what the
HEALTHCHECK checks, that a webhook is redacted, and that SIGTERM stops it cleanly.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
from pathlib import Path

from aiohttp import ClientSession, web

from redactor.audit import write_audit_key_file
from tests.dockerfile import DocumentedRun, documented_runs, final_stage
from vault.keyring import generate_key_material, write_key_file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env_for(
    run: DocumentedRun, host_files: dict[str, Path], image_env: dict[str, str]
) -> dict[str, str]:
    """The image's environment with each mounted container path replaced by the host file
    the test made for it; unmounted paths keep their (missing) container value."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    for name, value in image_env.items():
        if not name.startswith("REDACTOR_"):
            continue
        source = run.mounts.get(value)
        env[name] = str(host_files[source]) if source is not None else value
    return env


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
    # The host side of every mount the header names: $PWD files and the named data volume.
    host_files = {
        "$PWD/config.yaml": config,
        "$PWD/keys.json": keys,
        "$PWD/audit.key": audit_key,
        "$PWD/jwks.json": tmp_path / "jwks.json",
        "redactor-data": tmp_path / "data",
    }
    image = final_stage()
    first_run, serve_run = documented_runs()
    assert first_run.args == ["vault", "init"], "the header documents a first-run `vault init`"
    assert serve_run.args == [], "then the image's own command"
    init_env = _env_for(first_run, host_files, image.env)
    env = _env_for(serve_run, host_files, image.env)
    env.update(
        REDACTOR_LISTEN=f"127.0.0.1:{listen}",
        REDACTOR_ADMIN_LISTEN=f"127.0.0.1:{admin}",
    )
    # The working directory is nobody's business: nothing may be written there.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    assert image.entrypoint == ["redactor"]
    command = [sys.executable, "-m", "redactor", *image.cmd]
    health = [sys.executable, "-m", "redactor", *image.healthcheck[1:]]
    assert health[-1] == "http://127.0.0.1:9090/readyz"
    health[-1] = f"http://127.0.0.1:{admin}/readyz"

    # On a fresh volume, serve refuses to start (no silent empty vault) and says what to do.
    refused = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, refusal = await asyncio.wait_for(refused.communicate(), timeout=60)
    assert refused.returncode == 2
    assert b"vault init" in refusal
    assert not (tmp_path / "data" / "vault.db").exists()
    init = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redactor",
        *first_run.args,
        env=init_env,
        cwd=workdir,
        stderr=asyncio.subprocess.PIPE,
    )
    _, init_err = await asyncio.wait_for(init.communicate(), timeout=60)
    assert init.returncode == 0, init_err.decode(errors="replace")

    proc = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
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

        async with (
            ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{listen}/tickets",
                json={"comment": "card 4111 1111 1111 1111"},
            ) as resp,
        ):
            assert resp.status == 200
        assert b"tok_v1_card_" in received[0]
        assert b"4111 1111" not in received[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0
    assert b"4111 1111 1111 1111" not in stderr
    assert b"redactor_stopped" in stderr
    assert list(workdir.iterdir()) == []
    # The vault and the records of `vault init` are on the data volume.
    assert (tmp_path / "data" / "vault.db").exists()
    assert (tmp_path / "data" / "audit-cli.jsonl").exists()
