"""Agent settings: flags, env and file; a bad policy stops the start; SIGHUP reloads it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path

import aiohttp
import pytest
import structlog

from redactor.agent.policy import Level, PolicyFileError, PolicyStore
from redactor.audit import AuditSink
from redactor.cli import main
from redactor.errors import ConfigError
from redactor.resources import Resources
from redactor.server import PolicyReloader, run_server
from redactor.settings import Overrides, load_settings
from tests.agent.conftest import AUDIENCE, ISSUER, POLICY

BAD_POLICY = POLICY.replace(
    "US_SSN: masked\n    billing_tool", "US_SSN: everything\n    billing_tool"
)


def _overrides(tmp_path: Path, **kw) -> Overrides:
    base = {
        "upstream": "http://127.0.0.1:9",
        "dev": True,
        "data_dir": str(tmp_path / "data"),
        "agent_listen": "127.0.0.1:8081",
    }
    base.update(kw)
    return Overrides(**base)


def test_env_vars_configure_the_agent_api(tmp_path, jwks_path, policy_path) -> None:
    settings = load_settings(
        _overrides(tmp_path, agent_listen=None),
        {
            "REDACTOR_AGENT_LISTEN": "127.0.0.1:7001",
            "REDACTOR_JWKS": str(jwks_path),
            "REDACTOR_JWT_ISSUER": ISSUER,
            "REDACTOR_JWT_AUDIENCE": AUDIENCE,
            "REDACTOR_POLICY": str(policy_path),
        },
    )
    agent = settings.agent
    assert agent is not None
    assert (agent.listen.port, agent.auth.issuer, agent.auth.audience) == (7001, ISSUER, AUDIENCE)
    assert agent.auth.jwks_path == jwks_path
    assert (agent.auth.subject_claim, agent.auth.tenant_claim, agent.auth.roles_claim) == (
        "sub",
        "tenant",
        "roles",
    )


def test_claim_names_come_from_the_config_file(tmp_path, jwks_path, policy_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "routes: [{name: a, path_prefix: /, upstream: 'http://127.0.0.1:9', tenant: t}]\n"
        "agent:\n  claims: {subject: email, tenant: org_id, roles: groups}\n",
        encoding="utf-8",
    )
    settings = load_settings(
        _overrides(
            tmp_path,
            config=str(config),
            upstream=None,
            jwks=str(jwks_path),
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            policy=str(policy_path),
        ),
        {},
    )
    assert settings.agent is not None
    auth = settings.agent.auth
    assert (auth.subject_claim, auth.tenant_claim, auth.roles_claim) == (
        "email",
        "org_id",
        "groups",
    )


def test_agent_listen_without_jwks_is_refused(tmp_path, policy_path) -> None:
    with pytest.raises(ConfigError, match="jwks"):
        load_settings(
            _overrides(tmp_path, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, policy=str(policy_path)),
            {},
        )


def test_outbound_destination_must_be_https_off_loopback(tmp_path, jwks_path, policy_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "routes: [{name: a, path_prefix: /, upstream: 'http://127.0.0.1:9', tenant: t}]\n"
        "agent:\n  outbound: [{name: p, destination: 'http://processor.example.com/'}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"agent\.outbound\.p"):
        load_settings(
            _overrides(
                tmp_path,
                config=str(config),
                upstream=None,
                jwks=str(jwks_path),
                jwt_issuer=ISSUER,
                jwt_audience=AUDIENCE,
                policy=str(policy_path),
            ),
            {},
        )


def test_bad_policy_refuses_to_start_naming_file_and_line(tmp_path, jwks_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_POLICY, encoding="utf-8")
    with pytest.raises(PolicyFileError) as info:
        load_settings(
            _overrides(
                tmp_path,
                jwks=str(jwks_path),
                jwt_issuer=ISSUER,
                jwt_audience=AUDIENCE,
                policy=str(bad),
            ),
            {},
        )
    assert (info.value.source, info.value.line) == (str(bad), 15)

    code = main(
        [
            "serve", "--dev", "--data-dir", str(tmp_path / "d"), "--upstream", "http://127.0.0.1:9",
            "--agent-listen", "127.0.0.1:8081", "--jwks", str(jwks_path), "--jwt-issuer", ISSUER,
            "--jwt-audience", AUDIENCE, "--policy", str(bad),
        ]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"{bad} line 15" in err
    assert "must be one of" in err


async def test_failed_reload_keeps_the_last_good_policy_and_is_audited(
    policy_path: Path, tmp_path: Path
) -> None:
    store = PolicyStore(policy_path)
    sink = AuditSink(tmp_path / "audit.jsonl", bytes(32))
    await sink.open()
    reloader = PolicyReloader(store, sink)
    await asyncio.to_thread(policy_path.write_text, BAD_POLICY, encoding="utf-8")
    with structlog.testing.capture_logs() as logs:
        reloader.request()
        await reloader.wait()
    await sink.close()
    assert store.policy.entitled_level("acme", ("support_agent",), "US_SSN") is Level.MASKED
    assert [e["event"] for e in logs] == ["policy_reload_failed"]
    assert logs[0]["line"] == 15
    [record] = [
        json.loads(line)
        for line in (tmp_path / "audit.jsonl").read_text().splitlines()
        if '"audit_checkpoint"' not in line
    ]
    assert record["event"] == "policy_reload_failed"
    assert record["line"] == 15
    assert record["policy_version"] == store.policy.version


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_server_runs_the_agent_listener_and_reloads_on_sighup(
    tmp_path, jwks_path, policy_path
) -> None:
    agent_port = _free_port()
    settings = load_settings(
        _overrides(
            tmp_path,
            listen=f"127.0.0.1:{_free_port()}",
            admin_listen=f"127.0.0.1:{_free_port()}",
            agent_listen=f"127.0.0.1:{agent_port}",
            jwks=str(jwks_path),
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            policy=str(policy_path),
            audit_log=str(tmp_path / "audit.jsonl"),
        ),
        {},
    )
    stop = asyncio.Event()
    seen: dict[str, object] = {}

    async def ready(res: Resources) -> None:
        try:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{agent_port}/v1/resolve"
                async with session.post(url, json={"tokens": []}) as resp:
                    seen["status"] = resp.status
            assert res.agent is not None
            await asyncio.to_thread(
                policy_path.write_text,
                POLICY.replace(
                    "US_SSN: masked\n    billing_tool", "US_SSN: none\n    billing_tool"
                ),
                encoding="utf-8",
            )
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(500):  # the reload has no event to wait on: poll, 5 s at most
                level = res.agent.policies.policy.entitled_level(
                    "acme", ("support_agent",), "US_SSN"
                )
                if level is Level.NONE:
                    break
                await asyncio.sleep(0.01)
            else:
                return
            seen["reloaded"] = True
        finally:
            stop.set()

    await run_server(settings, ready=ready, stop=stop)
    assert seen == {"status": 401, "reloaded": True}
    # The trail holds the start, the policy in force, the reload, and the stop.
    text = await asyncio.to_thread((tmp_path / "audit.jsonl").read_text)
    events = [json.loads(line) for line in text.splitlines()]
    names = [e["event"] for e in events]
    assert names[:2] == ["redactor_started", "policy_loaded"]
    assert names[-2:] == ["redactor_stopped", "audit_checkpoint"]
    loads = [e for e in events if e["event"] == "policy_loaded"]
    assert [e["reload"] for e in loads] == [False, True]
    assert loads[0]["policy_version"] != loads[1]["policy_version"]
    assert events[0]["version"]
    assert len(events[0]["config_digest"]) == 16
