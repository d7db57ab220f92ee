"""Two replicas (two `redactor serve` processes) on one vault behave as one server: the same
value gets the same token on both, the full-reveal limit holds across both, a token revoked
with `redactor agents revoke` is refused by both (and accepted again after `unrevoke`), and
killing one mid-load loses no request the other accepted."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import jwt
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

from redactor.ops.devtoken import (
    DEMO_POLICY,
    DEV_AUDIENCE,
    DEV_ISSUER,
    ensure_dev_signing_key,
    mint_dev_token,
)
from tests.test_workers import _luhn_card, _until
from vault import find_tokens

LIMIT = 3
# The documented delay is 5 s (README, "Revoking agent tokens"); this only bounds a broken
# test, it asserts no speed.
REVOCATION_BOUND_S = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Replica:
    proc: asyncio.subprocess.Process
    listen: int
    admin: int
    agent: int
    log: Path


async def _start(deployment, tmp_path: Path, name: str, jwks: Path, policy: Path) -> Replica:
    listen, admin, agent = _free_port(), _free_port(), _free_port()
    log = tmp_path / f"{name}.log"
    # stderr to a file, not a pipe: a killed replica's scan worker would hold a pipe open.
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "redactor", "serve",
            "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}",
            "--agent-listen", f"127.0.0.1:{agent}", "--jwks", str(jwks),
            "--jwt-issuer", DEV_ISSUER, "--jwt-audience", DEV_AUDIENCE, "--policy", str(policy),
            "--upstream", deployment.upstream_url, "--tenant", "acme",
            "--audit-log", str(tmp_path / f"audit-{name}.jsonl"),
            env=deployment.env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    async with ClientSession() as session, asyncio.timeout(60):
        while True:
            assert proc.returncode is None, log.read_text()[-2000:]
            try:
                async with session.get(f"http://127.0.0.1:{admin}/readyz") as r:
                    if r.status == 200:
                        break
            except ClientError:
                pass
            await asyncio.sleep(0.1)
    return Replica(proc, listen, admin, agent, log)


async def test_two_replicas_on_one_vault_behave_as_one_server(deployment, tmp_path: Path) -> None:
    assert (await deployment.cli("vault", "init"))[0] == 0
    jwks = ensure_dev_signing_key(tmp_path / "idp")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        DEMO_POLICY.read_text().replace("max_reveals: 10", f"max_reveals: {LIMIT}"),
        encoding="utf-8",
    )
    one = await _start(deployment, tmp_path, "one", jwks, policy)
    two = await _start(deployment, tmp_path, "two", jwks, policy)
    token = mint_dev_token(tmp_path / "idp", role="fraud_investigator", tenant="acme")
    auth = {"Authorization": f"Bearer {token}"}
    try:
        async with ClientSession(
            connector=TCPConnector(force_close=True), timeout=ClientTimeout(total=30)
        ) as session:

            async def send(replica: Replica, card: str) -> tuple[int, str | None]:
                url = f"http://127.0.0.1:{replica.listen}/hook"
                async with session.post(url, json={"c": f"card {card}"}) as r:
                    if r.status != 200:
                        return r.status, None
                    (minted,) = find_tokens(await r.text())
                    return r.status, minted

            async def reveal(replica: Replica, minted: str) -> int:
                url = f"http://127.0.0.1:{replica.agent}/v1/resolve"
                body = {"tokens": [minted], "purpose": "CHARGEBACK_DISPUTE"}
                async with session.post(url, json=body, headers=auth) as r:
                    return r.status

            # The same value, the same token, whichever replica tokenised it.
            card = _luhn_card(7)
            assert (await send(one, card)) == (await send(two, card))
            minted = (await send(one, card))[1]
            assert minted is not None

            # Three full reveals spread over both replicas pass; the fourth, on either, not.
            assert [await reveal(r, minted) for r in (one, two, one)] == [200, 200, 200]
            assert [await reveal(r, minted) for r in (two, one)] == [429, 429]

            # A token revoked through the CLI is refused by both replicas; unrevoke lifts it.
            other = mint_dev_token(
                tmp_path / "idp", role="support_agent", tenant="acme", subject="agent-r"
            )
            jti = jwt.decode(other, options={"verify_signature": False})["jti"]

            async def answers(bearer: str) -> list[tuple[int, str | None]]:
                found = []
                for replica in (one, two):
                    url = f"http://127.0.0.1:{replica.agent}/v1/resolve"
                    headers = {"Authorization": f"Bearer {bearer}"}
                    async with session.post(url, json={"tokens": [minted]}, headers=headers) as r:
                        found.append((r.status, (await r.json()).get("error")))
                return found

            async def until_both(bearer: str, expected: tuple[int, str | None]) -> None:
                async with asyncio.timeout(REVOCATION_BOUND_S):
                    while await answers(bearer) != [expected, expected]:  # noqa: ASYNC110 - another process's state
                        await asyncio.sleep(0.2)

            assert await answers(other) == [(200, None), (200, None)]
            code, out, err = await deployment.cli(
                "agents", "revoke", "--jti", jti, "--operator", "replica-test"
            )
            assert code == 0, err
            assert out.startswith(f"revoked jti {jti} in every tenant until")
            await until_both(other, (401, "token_revoked"))
            # The caller's other tokens are not affected.
            fresh = mint_dev_token(
                tmp_path / "idp", role="support_agent", tenant="acme", subject="agent-r"
            )
            assert await answers(fresh) == [(200, None), (200, None)]
            code, _, err = await deployment.cli("agents", "unrevoke", "--jti", jti)
            assert code == 0, err
            await until_both(other, (200, None))

            # One replica dies mid-load: the other answers every request it accepts.
            on_two: list[tuple[int, str | None, str]] = []
            stop = asyncio.Event()

            async def load(replica: Replica, into: list[tuple[int, str | None, str]]) -> None:
                n = 100
                while not stop.is_set():
                    n += 1
                    c = _luhn_card(n)
                    try:
                        status, tok = await send(replica, c)
                    except (ClientError, OSError):
                        into.append((0, None, c))  # refused or cut by the dying replica
                        continue
                    into.append((status, tok, c))

            on_one: list[tuple[int, str | None, str]] = []
            tasks = [
                asyncio.create_task(load(one, on_one)),
                asyncio.create_task(load(two, on_two)),
            ]
            await _until(lambda: len(on_two) >= 20 and len(on_one) >= 20, tasks)
            one.proc.kill()
            async with asyncio.timeout(60):
                await one.proc.wait()
            count = len(on_two)
            await _until(lambda: len(on_two) >= count + 20, tasks[1:])
            stop.set()
            async with asyncio.timeout(60):
                await asyncio.gather(*tasks)
            assert {status for status, _, _ in on_two} == {200}
            # Every value the survivor tokenised resolves to a token the vault holds.
            for _, tok, c in on_two[-5:]:
                assert (await send(two, c))[1] == tok
    finally:
        for replica in (one, two):
            if replica.proc.returncode is None:
                replica.proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(replica.proc.wait(), timeout=60)
    assert two.proc.returncode == 0, two.log.read_text()[-3000:]
    assert one.proc.returncode == -signal.SIGKILL
    # The survivor's trail holds every message it accepted, and its stop record.
    trail = (tmp_path / "audit-two.jsonl").read_text(encoding="utf-8")
    assert trail.count('"message_redacted"') >= len(on_two)
    assert '"redactor_stopped"' in trail
