"""The proxy while its audit disk fills or its audit file is deleted: what a sender, an
orchestrator (/readyz), a dashboard (/metrics) and `redactor audit verify` see."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient

from redactor.cli import main
from redactor.ingress.app import build_proxy_app
from redactor.ops.admin import build_admin_app
from redactor.resources import Resources, open_resources
from redactor.settings import ConfigError, Overrides, load_settings
from tests.audit.faults import FullDisk

PAN = "4111 1111 1111 1111"
RAW_VALUES = ("4111111111111111", PAN)
BODY = json.dumps({"ticket": {"comment": f"my card is {PAN}"}}).encode()
JSON = {"Content-Type": "application/json"}


@dataclass
class Proxy:
    client: TestClient
    admin: TestClient
    resources: Resources
    received: list[bytes] = field(default_factory=list)


@pytest.fixture
async def proxy(aiohttp_client, aiohttp_server, tmp_path: Path):
    received: list[bytes] = []

    async def record(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"ok": True})

    up = web.Application()
    up.router.add_route("*", "/{tail:.*}", record)
    upstream = await aiohttp_server(up)
    settings = load_settings(
        Overrides(
            upstream=str(upstream.make_url("/")),
            data_dir=str(tmp_path / "data"),
            dev=True,
            tenant="acme",
            audit_log=str(tmp_path / "audit" / "audit.jsonl"),
        ),
        {},
    )
    ctx = open_resources(settings)
    res = await ctx.__aenter__()
    try:
        yield Proxy(
            await aiohttp_client(build_proxy_app(res.ingress)),
            await aiohttp_client(build_admin_app(res)),
            res,
            received,
        )
    finally:
        await ctx.__aexit__(None, None, None)


def _verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(
        [
            "audit",
            "verify",
            str(tmp_path / "audit"),
            "--dev",
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )
    return code, capsys.readouterr().out


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not exported")


async def test_a_full_audit_disk_refuses_messages_reports_unready_and_verifies_after(
    proxy: Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (await proxy.client.post("/hook", data=BODY, headers=JSON)).status == 200
    ready = await proxy.admin.get("/readyz")
    assert (ready.status, (await ready.json())["audit"]) == (200, "ok")
    disk = FullDisk(monkeypatch, tmp_path / "audit")
    disk.fill(room=150)  # part of the first batch fits, then the disk is full
    with structlog.testing.capture_logs() as logs:
        answers = [await proxy.client.post("/hook", data=BODY, headers=JSON) for _ in range(5)]
        assert [a.status for a in answers] == [503] * 5
        assert {(await a.json())["error"] for a in answers} == {"audit_unavailable"}
        # The orchestrator is told, and keeps being told while the disk stays full.
        for _ in range(2):
            ready = await proxy.admin.get("/readyz")
            assert ready.status == 503
            assert await ready.json() == {
                "status": "unavailable",
                "vault": "ok",
                "audit": "audit_unavailable",
            }
        metrics = await (await proxy.admin.get("/metrics")).text()
    assert _metric(metrics, "redactor_audit_writable") == 0
    assert _metric(metrics, "redactor_audit_write_failures_total") >= 5
    assert any(e["event"] == "audit_write_failed" for e in logs)
    assert len(proxy.received) == 1  # the five refused messages were forwarded nowhere
    disk.free()  # space returns
    ready = await proxy.admin.get("/readyz")
    assert ready.status == 200
    assert (await (await proxy.admin.get("/metrics")).text()).count(
        "redactor_audit_writable 1.0"
    ) == 1
    assert (await proxy.client.post("/hook", data=BODY, headers=JSON)).status == 200
    assert len(proxy.received) == 2
    # One chain, nothing forked: the refused batches left nothing to collide with.
    code, out = _verify(tmp_path, capsys)
    assert code == 0, out
    assert "verified: ok" in out
    trail = (tmp_path / "audit" / "audit.jsonl").read_text()
    events = [json.loads(line)["event"] for line in trail.splitlines()]
    assert events.count("message_redacted") == 2
    assert events.count("audit_write_recovered") == 1
    for raw in RAW_VALUES:
        assert raw not in trail
        assert raw not in metrics
        assert raw not in json.dumps(logs, default=str)


async def test_a_deleted_audit_file_is_recreated_and_the_messages_after_are_in_it(
    proxy: Proxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = tmp_path / "audit" / "audit.jsonl"
    assert (await proxy.client.post("/hook", data=BODY, headers=JSON)).status == 200
    live.unlink()
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            assert (await proxy.client.post("/hook", data=BODY, headers=JSON)).status == 200
    records = [json.loads(line) for line in live.read_text().splitlines()]
    assert records[0]["event"] == "audit_file_replaced"
    assert records[0]["cause"] == "deleted"
    assert [r["event"] for r in records].count("message_redacted") == 3
    assert [r["event"] for r in records].count("message_delivered") == 3
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [(e["event"], e["cause"]) for e in errors] == [("audit_file_replaced", "deleted")]
    metrics = await (await proxy.admin.get("/metrics")).text()
    assert 'redactor_audit_file_replaced_total{cause="deleted"} 1.0' in metrics
    assert (await proxy.admin.get("/readyz")).status == 200
    # verify names the loss (the first records went with the deleted file) and its cause.
    code, out = _verify(tmp_path, capsys)
    assert code == 1
    assert "BROKEN at seq 0: deleted" in out
    assert "its file was deleted" in out


def test_the_fsync_policy_is_a_setting_with_batch_as_default(tmp_path: Path) -> None:
    def settings(environ: dict[str, str], config: str = "") -> str:
        path = None
        if config:
            path = tmp_path / "config.yaml"
            path.write_text(config)
        flags = Overrides(
            upstream=None if path else "http://127.0.0.1:9/",
            dev=True,
            data_dir=str(tmp_path),
            config=str(path) if path else None,
        )
        return load_settings(flags, environ).audit_fsync

    routes = (
        "routes:\n  - {name: default, path_prefix: /, upstream: 'http://127.0.0.1:9/', "
        "tenant: acme}\n"
    )

    assert settings({}) == "batch"
    assert settings({"REDACTOR_AUDIT_FSYNC": "interval"}) == "interval"
    yaml = routes + "audit_fsync: never\n"
    assert settings({}, yaml) == "never"
    assert settings({"REDACTOR_AUDIT_FSYNC": "batch"}, yaml) == "batch"  # env over file
    with pytest.raises(ConfigError, match="audit_fsync"):
        settings({"REDACTOR_AUDIT_FSYNC": "sometimes"})
    with pytest.raises(ConfigError):
        settings({}, routes + "audit_fsync: sometimes\n")  # the schema refuses it
