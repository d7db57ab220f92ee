"""The outbox holds redacted requests only: known card numbers and SSNs pushed through a queued
route (in the body, the query and a header) appear nowhere in the database's bytes."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import asyncpg

from tests.outbox.conftest import Site
from tests.vault.conftest import PG_DSN

# Luhn-valid test PANs and valid-shaped SSNs; each also searched for without separators.
VALUES = ["4111 1111 1111 1111", "5555-5555-5555-4444", "6011 1111 1111 1117", "219-09-9999"]


def _forms(value: str) -> list[bytes]:
    digits = "".join(c for c in value if c.isdigit())
    return [value.encode(), digits.encode(), digits.encode("utf-16-le")]


def _leaks(data: bytes) -> list[str]:
    return [value for value in VALUES for form in _forms(value) if form in data]


async def _push(site: Site, server) -> None:
    for n, value in enumerate(VALUES):
        resp = await server.client.post(
            f"/hook?q=card+or+ssn+{value.replace(' ', '+')}",
            json={"comment": f"my card is {value}", "n": n, "nested": {"note": value}},
            headers={"X-Customer-Note": f"call me about {value}"},
        )
        assert resp.status == 202


async def test_no_raw_value_reaches_the_sqlite_file_or_its_wal(site: Site) -> None:
    if site.backend != "sqlite":
        return await _postgres_case(site)
    server = await site.start(deliver=False)
    await _push(site, server)
    depth = await server.res.vault.outbox.depth()
    assert depth[0].pending == len(VALUES)
    db = Path(site.vault_url.removeprefix("sqlite:///"))
    files = [db, db.with_name(db.name + "-wal")]
    # While queued (the WAL holds the fresh pages) and after delivery and a checkpoint.
    for path in files:
        assert path.exists() or path.name.endswith("-wal")
    data = b"".join(p.read_bytes() for p in files if p.exists())
    # The queued bodies are in these bytes (so a raw value there would be found)...
    assert data.count(b"my card is") >= len(VALUES)
    # ...and no raw value is.
    assert _leaks(data) == []
    await server.res.ingress.start_delivery()
    await site.helpdesk.wait_for(len(VALUES))
    await site.close()
    data = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.is_file())
    assert _leaks(data) == []
    # What the helpdesk got is redacted too, headers and query included.
    for delivery in site.helpdesk.received:
        assert (
            _leaks(delivery.body + delivery.path.encode() + repr(delivery.headers).encode()) == []
        )
    return None


async def _postgres_case(site: Site) -> None:
    server = await site.start(deliver=False)
    await _push(site, server)
    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": site.schema or ""})
    try:
        rows = await conn.fetch("SELECT * FROM outbox")
        assert len(rows) == len(VALUES)
        data = b"".join(
            v if isinstance(v, bytes) else json.dumps(v, default=str).encode()
            for row in rows
            for v in row.values()
        )
        assert data.count(b"my card is") == len(VALUES)
        assert _leaks(data) == []
    finally:
        await conn.close()
    pg_dump = shutil.which("pg_dump")
    if pg_dump is not None:
        # The whole schema as pg_dump writes it (bytea as hex, so search those too).
        proc = await asyncio.create_subprocess_exec(
            pg_dump, "--data-only", "--schema", site.schema or "", PG_DSN,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0
        assert b"COPY" in out
        hex_forms = [f.hex().encode() for v in VALUES for f in _forms(v)]
        assert _leaks(out) == []
        assert [h for h in hex_forms if h in out] == []
