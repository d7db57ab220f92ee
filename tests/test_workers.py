"""`redactor serve --workers 2`: processes share the ports, all stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, web

from redactor.audit import load_audit_key
from redactor.audit.verify import verify_paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_two_workers_serve_the_same_port_and_stop_together(
    tmp_path: Path, aiohttp_server
) -> None:
    received: list[bytes] = []

    async def upstream(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", upstream)
    server = await aiohttp_server(app)
    listen, admin = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", "serve", "--dev", "--workers", "2",
        "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}",
        "--upstream", str(server.make_url("/")), "--data-dir", str(tmp_path),
        "--audit-log", str(tmp_path / "logs" / "audit.jsonl"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    seen: list[bytes] = []
    try:
        # Both workers up (each logs redactor_started) before anything is sent or stopped.
        async with asyncio.timeout(60):
            while sum(b"redactor_started" in line for line in seen) < 2:
                line = await proc.stderr.readline()
                assert line, b"".join(seen).decode(errors="replace")[-2000:]
                seen.append(line)
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
                raise AssertionError("workers never became ready")
            # New connections each time, so the kernel may hand them to either worker; every
            # one is redacted with the same vault and key.
            for _ in range(10):
                async with (
                    ClientSession() as fresh,
                    fresh.post(
                        f"http://127.0.0.1:{listen}/t", json={"text": "card 4111 1111 1111 1111"}
                    ) as resp,
                ):
                    assert resp.status == 200
            # A large body with a card goes through a worker's scan process (forked by the
            # worker before its first thread).
            big = {"notes": [f"order {i} shipped" for i in range(2000)], "card": "4111111111111111"}
            async with (
                ClientSession() as fresh,
                fresh.post(f"http://127.0.0.1:{listen}/t", json=big) as resp,
            ):
                assert resp.status == 200
        assert len(received) == 11
        assert len(set(received[:10])) == 1
        assert b"tok_v1_card_" in received[0]
        assert len(received[10]) > 16 * 1024
        assert b"4111111111111111" not in received[10]
        assert b"tok_v1_card_" in received[10]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(proc.communicate(), timeout=60)
        stderr = b"".join(seen) + rest
    assert proc.returncode == 0, stderr.decode(errors="replace")[-2000:]
    assert stderr.count(b"redactor_stopped") == 2
    assert stderr.count(b"dev_key_generated") == 1
    assert stderr.count(b"dev_audit_key_generated") == 1
    # Each worker wrote its own file and chain; both verify under the one audit key.
    key = await asyncio.to_thread(load_audit_key, key_file=None, inline=None, dev_data_dir=tmp_path)
    result = await asyncio.to_thread(verify_paths, key, [tmp_path / "logs"])
    assert result.ok
    assert len(result.chains) == 2
    assert all(chain.closed for chain in result.chains.values())
    assert sorted(p.name for p in (tmp_path / "logs").glob("*.jsonl")) == [
        "audit-w1.jsonl",
        "audit-w2.jsonl",
    ]


def _luhn_card(n: int) -> str:
    """A Luhn-valid 16-digit Visa-range card number, distinct for each n."""
    body = f"4{n:014d}"
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


async def test_rotate_rewrap_retire_under_traffic_with_two_workers_loses_nothing(
    deployment, tmp_path: Path
) -> None:
    """The README runbook, on a live two-worker deployment, while messages keep coming."""
    from vault import find_tokens
    from vault.keyring import read_key_file
    from vault.service import Resolved
    from vault.startup import open_vault

    tenants = [f"t{i}" for i in range(6)]
    config = tmp_path / "redactor.yaml"
    config.write_text(
        json.dumps(
            {
                "routes": [
                    {"name": t, "path_prefix": f"/{t}", "upstream": deployment.upstream_url,
                     "tenant": t}
                    for t in tenants
                ]
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    env = {**deployment.env, "REDACTOR_CONFIG": str(config), "REDACTOR_KEY_CHECK_INTERVAL_S": "0.2"}
    assert (await deployment.cli("vault", "init", env=env))[0] == 0
    listen, admin = _free_port(), _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", "serve", "--workers", "2",
        "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}",
        # stdout is the audit stream: unread here, so not a pipe that fills and blocks writers.
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    seen: list[bytes] = []
    minted: dict[tuple[str, str], str] = {}  # (tenant, card) -> token
    statuses: list[int] = []
    stop = asyncio.Event()

    async def traffic(first_tenants: list[str]) -> None:
        n = 0
        while not stop.is_set():
            tenant = first_tenants[n % len(first_tenants)]
            card = _luhn_card(n % 40)
            n += 1
            async with (
                # A new connection each time: either worker may take it.
                ClientSession(timeout=ClientTimeout(total=30)) as fresh,
                fresh.post(f"http://127.0.0.1:{listen}/{tenant}", json={"c": f"card {card}"}) as r,
            ):
                statuses.append(r.status)
                if r.status == 200:
                    (token,) = find_tokens(await r.text())
                    assert minted.setdefault((tenant, card), token) == token

    try:
        async with asyncio.timeout(60):
            while sum(b"redactor_started" in line for line in seen) < 2:
                line = await proc.stderr.readline()
                assert line, b"".join(seen).decode(errors="replace")[-2000:]
                seen.append(line)
        drain = asyncio.create_task(_drain(proc.stderr, seen))
        runner = asyncio.create_task(traffic(tenants[:3]))
        await _until(lambda: len(statuses) >= 20, [runner, drain])

        code, out, err = await deployment.cli("keys", "rotate", env=env)
        assert code == 0, err
        # New tenants' first messages now get data keys: only ever under version 2.
        late = asyncio.create_task(traffic(tenants[3:]))
        tasks = [runner, late, drain]
        retired = False
        async with asyncio.timeout(90):
            while not retired:
                code, out, err = await deployment.cli("keys", "rewrap", env=env)
                assert code == 0, err
                code, out, err = await deployment.cli("keys", "retire", "1", env=env)
                retired = code == 0
                if not retired:
                    # Only ever refused for a reason that passes: a worker not yet on v2.
                    assert "still hold kek version 1" in err or "still wraps" in err, err
                    await asyncio.sleep(0.2)
        count = len(statuses)
        await _until(lambda: len(statuses) >= count + 20, tasks)
        stop.set()
        await asyncio.gather(runner, late)
        code, out, _ = await deployment.cli("keys", "list", env=env)
        assert code == 0, out
        assert "kek version 1: retired since" in out
        assert "MISSING" not in out
        async with ClientSession() as session, session.get(f"http://127.0.0.1:{admin}/readyz") as r:
            assert r.status == 200
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=60)
    drain.cancel()
    stderr = b"".join(seen)
    assert proc.returncode == 0, stderr.decode(errors="replace")[-3000:]
    assert set(statuses) == {200}, stderr.decode(errors="replace")[-3000:]
    assert read_key_file(deployment.key_file).versions == [2]
    assert {t for t, _ in minted} == set(tenants)

    # Nothing lost: every token resolves with the ring that is left (version 2 only).
    settings_env = {k: v for k, v in env.items() if k.startswith("REDACTOR_")}
    from vault.config import VaultConfig

    vault_config = VaultConfig.from_environ(settings_env)
    async with await open_vault(vault_config, create=False) as vault:
        for tenant in tenants:
            mine = {token: card for (t, card), token in minted.items() if t == tenant}
            results = await vault.resolve_many(tenant, list(mine))
            assert {tok: r.value for tok, r in results.items() if isinstance(r, Resolved)} == mine
            # Same value, same token, after all of it.
            card, token = next(iter(mine.items()))[::-1]
            (again,) = await vault.tokenize_many(tenant, [("card", card)])
            assert again.text == token


async def _until(condition: Callable[[], bool], tasks: list[asyncio.Task[None]]) -> None:
    """Wait (bounded) until `condition` holds; fail at once if a background task failed."""
    async with asyncio.timeout(90):
        while not condition():
            for task in tasks:
                if task.done():
                    task.result()  # raises what the task raised
                    raise AssertionError("a background task ended early")
            await asyncio.sleep(0.05)


async def _drain(stream: asyncio.StreamReader, into: list[bytes]) -> None:
    while line := await stream.readline():
        into.append(line)


def test_a_serving_process_collects_rarely_and_never_walks_what_it_loaded() -> None:
    import gc

    from redactor.server import settle_heap

    thresholds = gc.get_threshold()
    try:
        settle_heap()
        # What was loaded before serving is out of the collector's reach, and the young
        # generation is large enough that a request's own objects are freed before a pass.
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] >= 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
