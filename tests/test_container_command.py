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
import json
import os
import secrets
import signal
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import ClientSession, web

from redactor.audit import write_audit_key_file
from tests.dockerfile import ROOT, DocumentedRun, documented_runs, final_stage
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
        for _ in range(300):  # 60 s and more: a loaded CI machine starts slowly
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


async def _wait_ready(health: list[str], env: dict[str, str], proc) -> bool:
    for _ in range(150):
        if proc.returncode is not None:
            return False
        check = await asyncio.create_subprocess_exec(
            *health, env=env, stderr=asyncio.subprocess.DEVNULL
        )
        if await check.wait() == 0:
            return True
        await asyncio.sleep(0.2)
    return False


@pytest.mark.parametrize(
    ("config", "extra_env"),
    [
        ("/etc/redactor/config.yaml", {}),
        # The example as the image ships it, with the variables its header documents.
        (
            "/etc/redactor/example/routes.example.yaml",
            dict.fromkeys(
                [
                    "ZENDESK_WEBHOOK_SECRET",
                    "ZENDESK_UPSTREAM_SECRET",
                    "SLACK_SIGNING_SECRET",
                    "SLACK_UPSTREAM_SECRET",
                ],
                "s" * 40,
            ),
        ),
    ],
)
async def test_the_shipped_config_serves_in_the_image_layout(
    tmp_path: Path, config: str, extra_env: dict[str, str]
) -> None:
    # The image's file system in tmp_path: /etc/redactor as the Dockerfile fills it (the
    # shipped config and policy) plus the documented mounts, the data volume, an empty
    # working directory. Only the listen addresses move to free loopback ports.
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    image = final_stage()
    root = tmp_path / "image"
    layout: dict[str, Path] = {}
    for words in image.copies:
        args = [w for w in words if not w.startswith("--")]
        if any(w.startswith("--from") for w in words):
            continue
        *sources, dest = args
        for source in sources:
            target = dest + Path(source).name if dest.endswith("/") else dest
            path = root / target.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((ROOT / source).read_bytes())
            layout[target] = path
    _, serve_run = documented_runs()
    mounted = {
        "$PWD/keys.json": root / "run/secrets/redactor-keys",
        "$PWD/audit.key": root / "run/secrets/redactor-audit-key",
        "$PWD/jwks.json": root / "etc/redactor/jwks.json",
    }
    mounted["$PWD/keys.json"].parent.mkdir(parents=True)
    write_key_file(mounted["$PWD/keys.json"], generate_key_material(secrets.token_bytes))
    write_audit_key_file(mounted["$PWD/audit.key"])
    jwk = RSAAlgorithm.to_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), as_dict=True
    )
    mounted["$PWD/jwks.json"].write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    data = root / "var/lib/redactor"
    data.mkdir(parents=True)
    host_files = {
        **mounted,
        "$PWD/config.yaml": layout[image.env["REDACTOR_CONFIG"]],
        "redactor-data": data,
    }
    env = _env_for(serve_run, host_files, image.env)
    env.update(extra_env, REDACTOR_CONFIG=str(layout[config]))
    listen, admin, agent = _free_port(), _free_port(), _free_port()
    env.update(
        REDACTOR_LISTEN=f"127.0.0.1:{listen}",
        REDACTOR_ADMIN_LISTEN=f"127.0.0.1:{admin}",
        REDACTOR_AGENT_LISTEN=f"127.0.0.1:{agent}",
    )
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    redactor = [sys.executable, "-m", "redactor"]
    init = await asyncio.create_subprocess_exec(
        *redactor, "vault", "init", env=env, cwd=workdir, stderr=asyncio.subprocess.PIPE
    )
    _, init_err = await asyncio.wait_for(init.communicate(), timeout=60)
    assert init.returncode == 0, init_err.decode(errors="replace")
    proc = await asyncio.create_subprocess_exec(
        *redactor, *image.cmd, env=env, cwd=workdir, stderr=asyncio.subprocess.PIPE
    )
    try:
        health = [*redactor, *image.healthcheck[1:-1], f"http://127.0.0.1:{admin}/readyz"]
        ready = await _wait_ready(health, env, proc)
        if ready:
            async with (
                ClientSession() as session,
                session.post(f"http://127.0.0.1:{agent}/v1/resolve", json={}) as resp,
            ):
                # No JWT: the agent API refuses it, which shows it is up.
                agent_status = resp.status
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert ready, stderr.decode(errors="replace")[-2000:]
    assert agent_status == 401
    assert list(workdir.iterdir()) == []
    assert (data / "audit.jsonl").exists()
