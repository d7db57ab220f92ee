"""`redactor demo` + `redactor dev-token` + the printed curl: a newcomer resolves a token with no
file written by hand."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import jwt
import pytest

from redactor.ops.devtoken import DEV_AUDIENCE, DEV_ISSUER, DEV_KID, dev_jwks_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACTOR_")}
    return {**env, **extra}


async def _run(*argv: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_demo_dev_token_and_the_printed_curl_resolve_a_token(tmp_path: Path) -> None:
    ports = {name: _free_port() for name in ("listen", "admin", "agent", "upstream")}
    data_dir = tmp_path / "redactor-demo-data"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "redactor", "demo", "--data-dir", str(data_dir),
        "--listen", f"127.0.0.1:{ports['listen']}",
        "--admin-listen", f"127.0.0.1:{ports['admin']}",
        "--agent-listen", f"127.0.0.1:{ports['agent']}",
        "--upstream-listen", f"127.0.0.1:{ports['upstream']}",
        env=_env(), cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("Stop with Ctrl-C" in line for line in seen):
                line = (await proc.stderr.readline()).decode()
                assert line, "".join(seen)[-3000:]
                seen.append(line)
        text = "".join(seen)
        proxy_curl = next(x.strip() for x in seen if "/tickets" in x and "curl" in x)
        resolve_curl = next(x.strip() for x in seen if "/v1/resolve" in x)
        # The printed lines, as a newcomer pastes them into a shell.
        code, out, err = await _run("bash", "-c", proxy_curl, env=_env(), cwd=tmp_path)
        assert code == 0, err
        assert "tok_v1_card_" in out
        assert "4111 1111 1111 1111" not in out
        code, out, err = await _run("bash", "-c", resolve_curl, env=_env(), cwd=tmp_path)
        assert code == 0, err
        doc = json.loads(out)
        [result] = doc["results"]
        assert result["level"] == "masked"
        assert result["value"] == "•••• 1111"
        # The token it resolved is the one the proxy curl's card got.
        assert result["token"] in text
        code, out, err = await _run(
            "curl", "-s", f"http://127.0.0.1:{ports['agent']}/openapi.json",
            env=_env(), cwd=tmp_path,
        )  # fmt: skip
        assert json.loads(out)["openapi"].startswith("3.1")
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), timeout=60)
    # Every file is the demo's own: the key, its JWKS, the vault.
    jwks = json.loads(dev_jwks_path(data_dir).read_text())
    assert [k["kid"] for k in jwks["keys"]] == [DEV_KID]
    assert "d" not in jwks["keys"][0]  # the public half only
    assert (data_dir / "dev-jwt-key.pem").stat().st_mode & 0o077 == 0


async def test_dev_token_claims_and_lifetime(tmp_path: Path) -> None:
    from redactor.ops.devtoken import ensure_dev_signing_key

    ensure_dev_signing_key(tmp_path)
    code, out, err = await _run(
        sys.executable, "-m", "redactor", "dev-token", "--role", "fraud_investigator",
        "--tenant", "acme", "--ttl", "120", "--data-dir", str(tmp_path),
        env=_env(), cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    token = out.strip()
    keys = jwt.PyJWKSet.from_json(dev_jwks_path(tmp_path).read_text())
    claims = jwt.decode(
        token, keys[DEV_KID].key, algorithms=["ES256"], audience=DEV_AUDIENCE, issuer=DEV_ISSUER
    )
    assert claims["roles"] == ["fraud_investigator"]
    assert claims["tenant"] == "acme"
    assert claims["exp"] - claims["iat"] == 120
    assert jwt.get_unverified_header(token)["kid"] == DEV_KID


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"REDACTOR_KEY_FILE": "/etc/redactor/keys.json"}, "production key material"),
        ({"REDACTOR_KEYS": "x"}, "production key material"),
        (
            {"REDACTOR_VAULT_URL": "postgresql://postgres@127.0.0.1:5432/test"},
            "PostgreSQL vault",
        ),
    ],
)
async def test_dev_token_refuses_a_production_configuration(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    from redactor.ops.devtoken import ensure_dev_signing_key

    ensure_dev_signing_key(tmp_path)
    code, out, err = await _run(
        sys.executable, "-m", "redactor", "dev-token", "--role", "support_agent",
        "--data-dir", str(tmp_path), env=_env(**env), cwd=tmp_path,
    )  # fmt: skip
    assert code == 2
    assert out == ""
    assert says in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--ttl", "0"], "--ttl"),
        (["--ttl", "864000"], "--ttl"),
        (["--data-dir", "elsewhere"], "no development key"),
    ],
)
async def test_dev_token_refuses_bad_arguments(tmp_path: Path, args: list[str], says: str) -> None:
    from redactor.ops.devtoken import ensure_dev_signing_key

    ensure_dev_signing_key(tmp_path)
    argv = ["--data-dir", str(tmp_path), *args]
    code, out, err = await _run(
        sys.executable, "-m", "redactor", "dev-token", "--role", "support_agent", *argv,
        env=_env(), cwd=tmp_path,
    )  # fmt: skip
    assert code == 2
    assert out == ""
    assert says in err
