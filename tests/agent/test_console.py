"""The security console end to end, in headless Chromium (Debian's /usr/bin/chromium, driven
by Playwright; nothing is downloaded): it loads with a security token, refuses a token without
the role, draws the chart, narrows the reveals table by filter, shows a tampered chain as
broken, and never shows a value. A screenshot is saved under test-artifacts/."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from benchmarks.trailgen import write_trail
from redactor.audit import SystemEvent, now_iso
from redactor.ops.admin import build_admin_app
from redactor.ops.console import INDEX_CLIENT
from tests.agent.conftest import CARD, RAW_VALUES, SSN, TENANT, Stack

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PURPOSE = "customer disputes a charge, ticket SUP-1234"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> Browser:
    assert CHROMIUM.exists(), "install Debian's chromium (.ci/run does)"  # noqa: ASYNC240 - once, at set-up
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def _activity(stack: Stack) -> None:
    """Redactions, reveals by two subjects at two levels, a denied attempt, a failed agent
    login, a refused webhook, a key command, and a month of one agent's history with a jump
    at night on the last day (alerts)."""
    card, ssn = await stack.tokenize(f"card {CARD} ssn {SSN}")
    await stack.tokenize(f"again {CARD}")
    for _ in range(3):
        resp = await stack.agent.post(
            "/v1/resolve", json={"tokens": [card, ssn]}, headers=stack.auth(sub="alice")
        )
        assert resp.status == 200
    resp = await stack.agent.post(
        "/v1/resolve",
        json={"tokens": [card], "purpose": PURPOSE, "ticket": "SUP-1234"},
        headers=stack.auth(sub="frank", roles=["supervisor"]),
    )
    assert resp.status == 200
    resp = await stack.agent.post(
        "/v1/resolve",
        json={"tokens": [ssn]},
        headers=stack.auth(sub="mallory", roles=["card_only"]),
    )
    assert resp.status == 200  # answered, but denied per token
    resp = await stack.agent.post(
        "/v1/resolve", json={"tokens": [card]}, headers={"Authorization": "Bearer nope"}
    )
    assert resp.status == 401
    resp = await stack.proxy.post(
        f"/hooks/{TENANT}", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status >= 400
    await stack.resources.audit.write(
        SystemEvent(
            "key_rotate",
            now_iso(),
            {
                "phase": "finished",
                "exit_code": 0,
                "operator": "ops@bastion",
                "host": "bastion",
                "kek_version": 2,
            },
        )
    )
    _history(stack)


def _history(stack: Stack) -> None:
    """nora reveals twice a day at 10:00 UTC for three weeks, then 20 times at 03:00 UTC
    yesterday: a reveal-rate jump and reveals outside her usual hours. Written as a rotated
    file of the trail, chained under the trail's key."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    records = []
    for day in range(22, 1, -1):
        for minute in (5, 35):
            at = today - timedelta(days=day) + timedelta(hours=10, minutes=minute)
            records.append(_reveal("nora", at))
    for minute in range(20):
        records.append(
            _reveal("nora", today - timedelta(days=1) + timedelta(hours=3, minutes=minute))
        )
    write_trail(
        stack.audit_path.with_name("audit.20261101T000000.000000Z-000000000000.jsonl"),
        stack.resources.audit.key,
        records,
        chain="history",
    )


def _reveal(subject: str, at: datetime) -> dict[str, Any]:
    return {
        "event": "token_revealed",
        "time": at.isoformat(timespec="milliseconds"),
        "request_id": f"{subject}-{at:%m%d%H%M}",
        "route": "/v1/resolve",
        "subject": subject,
        "tenant": TENANT,
        "token": "tok_v1_card_aaaaaaaaaaaaaaaaaaaa_4242",
        "level": "masked",
        "reason": "granted",
        "purpose": None,
        "ticket": "SUP-77",
        "policy_version": "3f2a9c1b7d0e",
    }


async def _login(page: Page, url: str, token: str) -> None:
    await page.goto(url)
    await page.fill("#token", token)
    await page.click("#load")


async def _cells(page: Page, panel: str, column: str) -> list[str]:
    """The texts of one column of a panel's table, found by its header."""
    headers = await page.locator(f"#{panel} thead th").all_text_contents()
    at = next(i for i, h in enumerate(headers) if h.split(" ")[0] == column.replace("_", " "))
    return await page.locator(f"#{panel} tbody td:nth-child({at + 1})").all_text_contents()


async def test_console_in_a_real_browser(stack: Stack, aiohttp_server, browser: Browser) -> None:
    await _activity(stack)
    admin = await aiohttp_server(build_admin_app(stack.resources))
    url = str(admin.make_url("/security/"))
    page = await browser.new_page(
        viewport={"width": 1300, "height": 1400}, timezone_id="Europe/Paris"
    )

    # A valid token without the security role is refused, and nothing is shown.
    await _login(page, url, stack.token(roles=["support_agent"]))
    await page.wait_for_selector("#status.error")
    assert "security role" in await page.text_content("#status")
    assert await page.is_hidden("#console")
    # A forged one too.
    await _login(page, url, stack.token(roles=["security"]) + "x")
    # A selector, not wait_for_function: the console's CSP (script-src 'self') rightly
    # refuses the string evaluation that wait_for_function needs.
    await page.wait_for_selector("#status:has-text('not valid')")

    # With the role, over the last 30 days: the chart draws both series with labelled axes,
    # the tables fill, the chain verifies.
    await page.goto(url)
    await page.fill("#token", stack.token(sub="sec-officer", roles=["security"]))
    await page.select_option("#range", "30")
    await page.click("#load")
    await page.wait_for_selector("#console:not([hidden])")
    for series in ("redactions", "reveals"):
        points = await page.get_attribute(f"#chart polyline.series-{series}", "points")
        assert points is not None
        assert len(points.split()) >= 30  # a point a day
        assert len({p.split(",")[1] for p in points.split()}) > 1
    # Readable axes: several ticks on each axis, day labels on the time axis, in the zone.
    assert await page.locator("#chart .tick-y").count() >= 3
    assert await page.locator("#chart .tick-y2").count() >= 3
    assert await page.locator("#chart .tick-x").count() >= 5
    titles = await page.locator("#chart .axis-title").all_text_contents()
    assert titles == ["values redacted", "reveals", "day (Europe/Paris)"]

    reveals = page.locator("#reveals tbody tr")
    assert await reveals.count() == 50  # one page
    assert "of 69" in await page.text_content("#panel-reveals .where")  # 7 + nora's 62
    assert "(69 in the period)" in await page.text_content("#panel-reveals .count")
    # Times in the viewer's zone, to the second: no microseconds, no ISO "T".
    times = await _cells(page, "reveals", "time")
    assert all(len(t) == 19 and "T" not in t for t in times)
    assert "Europe/Paris" in await page.text_content("#reveals thead th:first-child")
    # The analyst's columns.
    headers = await page.locator("#reveals thead th").all_text_contents()
    for column in ("ticket", "request id", "route", "policy version"):
        assert column in headers
    # Paging: the next page holds the rest, and says so.
    await page.click("#panel-reveals .next")
    await expect(reveals).to_have_count(19)
    assert "rows 51–69 of 69" in await page.text_content("#panel-reveals .where")
    # Sort by subject, ascending: alice first.
    await page.click("#reveals th[data-column=subject]")
    await page.click("#reveals th[data-column=subject]")
    await expect(page.locator("#reveals tbody tr").first).to_contain_text("alice")

    # mallory's denied token, and the refused console view above (same tenant).
    assert sorted(await _cells(page, "denials", "event")) == ["console_denied", "token_denied"]
    # The agent API's failed login, and the forged token shown to the console above.
    assert sorted(await _cells(page, "auth_failures", "event")) == [
        "agent_unauthenticated",
        "console_unauthenticated",
    ]
    assert await _cells(page, "webhooks", "kind") == ["other"]
    assert await _cells(page, "commands", "versions") == ["kek 2"]
    assert await _cells(page, "commands", "operator") == ["ops@bastion"]
    kinds = await _cells(page, "alerts", "kind")
    assert "reveal_rate_jump" in kinds
    assert "reveals_out_of_hours" in kinds
    assert set(await _cells(page, "alerts", "subject")) == {"nora"}  # not alice on day one

    assert "Every chain verifies" in await page.text_content("#trail-state")
    assert await page.locator("#chains .chain-broken").count() == 0
    # The integrity sentence comes first, above the chart; every row is vouched for.
    assert (await page.text_content("#integrity")).startswith("Integrity: verified through seq ")
    assert await page.locator("#console > :first-child#integrity").count() == 1
    assert await page.locator("tr.unverified").count() == 0

    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator("#chart").screenshot(path=str(ARTIFACTS / "security-console-chart.png"))
    for panel in ("alerts", "reveals", "denials", "auth_failures", "webhooks", "commands"):
        await page.locator(f"#panel-{panel}").screenshot(
            path=str(ARTIFACTS / f"security-console-{panel}.png")
        )

    # Filters apply to every panel with the column, and to the chart's reveals.
    await page.fill("#filter-subject", "frank")
    await expect(reveals).to_have_count(1)
    assert await _cells(page, "reveals", "level") == ["full"]
    assert await _cells(page, "reveals", "ticket") == ["SUP-1234"]
    await expect(page.locator("#denials tbody tr")).to_have_count(0)
    await page.fill("#filter-subject", "")
    await page.select_option("#filter-level", "masked")
    await expect(reveals).to_have_count(50)
    await page.select_option("#filter-level", "")
    await page.fill("#filter-purpose", "dispute")
    await expect(reveals).to_have_count(1)
    await page.fill("#filter-purpose", "")
    await expect(reveals).to_have_count(50)

    # Any panel exports, whole, as CSV and JSON.
    async with page.expect_download() as download:
        await page.click("#panel-reveals .export-csv")
    text = Path(await (await download.value).path()).read_text()  # noqa: ASYNC240 - a small file
    lines = text.splitlines()
    assert lines[0].startswith("time,subject,token,level,purpose,ticket,request_id,route")
    assert len(lines) == 1 + 69
    async with page.expect_download() as download:
        await page.click("#panel-denials .export-json")
    doc = json.loads(Path(await (await download.value).path()).read_text())  # noqa: ASYNC240
    assert doc["total"] == 2
    assert len(doc["rows"]) == 2
    assert doc["integrity"].startswith("verified through")

    content = await page.content()
    for raw in RAW_VALUES:
        assert raw not in content
        assert raw not in text

    # Someone edits frank's reveal in the trail: it now claims alice revealed the card in
    # full. The console says the trail does not verify, first, and marks that row and every
    # later one of the chain in the table itself.
    lines = stack.audit_path.read_text().splitlines(keepends=True)
    index = next(
        i
        for i, line in enumerate(lines)
        if '"subject":"frank"' in line and '"event":"token_revealed"' in line
    )
    lines[index] = lines[index].replace('"subject":"frank"', '"subject":"alice"')
    stack.audit_path.write_text("".join(lines))
    await page.click("#load")
    await page.wait_for_selector("#chains .chain-broken")
    broken = await page.text_content("#chains .chain-broken td:nth-child(3)")
    record = json.loads(lines[index])
    assert broken == f"BROKEN at seq {record['seq']}: edited"
    assert "does not verify" in await page.text_content("#trail-state")
    assert await page.locator("#console > :first-child#integrity.integrity-broken").count() == 1
    assert (await page.text_content("#integrity")).startswith(
        f"Integrity: does not verify: chain {record['chain']} broken at seq {record['seq']} (edited"
    )
    forged = page.locator("#reveals tbody tr", has_text="alice").filter(has_text="full")
    assert await forged.count() == 1
    assert await forged.get_attribute("class") == "unverified"
    assert await forged.locator("td").last.text_content() == "UNVERIFIED"
    # alice's masked reveals came before the edited record: still vouched for.
    await page.fill("#filter-subject", "alice")
    masked = page.locator("#reveals tbody tr", has_text="masked")
    await expect(masked).to_have_count(6)
    assert await masked.locator("td.row-verified").count() == 6
    await page.fill("#filter-subject", "")
    await expect(reveals).to_have_count(50)
    # The denied attempts (after it in the chain) are marked too.
    assert await page.locator("#denials tbody tr.unverified").count() >= 1

    await page.screenshot(path=str(ARTIFACTS / "security-console.png"), full_page=True)
    await page.close()


async def test_console_api_refuses_without_a_token_and_audits_it(
    stack: Stack, aiohttp_client
) -> None:
    admin = await aiohttp_client(build_admin_app(stack.resources))
    resp = await admin.get("/security/api/summary")
    assert resp.status == 401
    resp = await admin.get(
        "/security/api/summary", headers=stack.auth(sub="eve", roles=["support_agent"])
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "security_role_required"
    events = [(e["event"], e["reason"]) for e in stack.audit() if e["event"].startswith("console")]
    assert events == [
        ("console_unauthenticated", "token_missing"),
        ("console_denied", "security_role_required"),
    ]
    resp = await admin.get("/security/api/summary", headers=stack.auth(roles=["security"]))
    assert resp.status == 200
    doc = await resp.json()
    assert next(iter(doc)) == "integrity"  # said first
    assert doc["integrity"]["ok"] is True
    assert doc["integrity"]["headline"].startswith("verified through seq ")
    assert all(row["verified"] for row in doc["panels"]["denials"]["rows"])
    page = await admin.get("/security/")
    assert page.status == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_a_workers_console_reads_every_workers_files(tmp_path: Path) -> None:
    from redactor.ops.console import trail_files

    logs = tmp_path / "logs"
    logs.mkdir()
    names = [
        "audit-w1.jsonl",
        "audit-w2.jsonl",
        "audit-w1.20261129T231500.000000Z-000000000042.jsonl",
        "audit-cli.jsonl",
        "audit-w1.jsonl.checkpoints",
        "other.jsonl",
    ]
    for name in names:
        (logs / name).touch()
    found = {p.name for p in trail_files(logs / "audit-w2.jsonl")}
    assert found == set(names[:4])


async def test_console_panels_page_sort_and_refuse_bad_queries(
    stack: Stack, aiohttp_client
) -> None:
    await _activity(stack)
    admin = await aiohttp_client(build_admin_app(stack.resources))
    auth = stack.auth(roles=["security"])
    since = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    resp = await admin.get(
        "/security/api/panel/reveals",
        params={"since": since, "limit": "10", "offset": "60", "tz": "America/New_York"},
        headers=auth,
    )
    assert resp.status == 200
    doc = await resp.json()
    assert next(iter(doc)) == "integrity"
    assert (doc["total"], doc["offset"], len(doc["rows"])) == (69, 60, 9)
    resp = await admin.get(
        "/security/api/panel/reveals",
        params={"since": since, "sort": "subject", "order": "asc", "limit": "1"},
        headers=auth,
    )
    assert (await resp.json())["rows"][0]["subject"] == "alice"
    resp = await admin.get(
        "/security/api/panel/denials", params={"since": since, "format": "csv"}, headers=auth
    )
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == 'attachment; filename="redactor-denials.csv"'
    assert (await resp.text()).splitlines()[0].startswith("time,subject,token,reason")
    for params in (
        {"tz": "Mars/Olympus"},
        {"sort": "secret"},
        {"limit": "100000"},
        {"since": "yesterday"},
        {"format": "xml"},
    ):
        resp = await admin.get("/security/api/panel/reveals", params=params, headers=auth)
        assert resp.status == 400, params
    resp = await admin.get("/security/api/panel/nothing", headers=auth)
    assert resp.status == 400


async def test_the_index_worker_is_started_again_after_it_dies(
    stack: Stack, aiohttp_client
) -> None:
    admin = await aiohttp_client(build_admin_app(stack.resources))
    auth = stack.auth(roles=["security"])
    resp = await admin.get("/security/api/summary", headers=auth)
    assert resp.status == 200
    client = admin.app[INDEX_CLIENT]
    proc = client._proc
    assert proc is not None
    assert proc.pid != os.getpid()  # the index lives in a process of its own
    proc.kill()
    await proc.wait()
    resp = await admin.get("/security/api/summary", headers=auth)
    assert resp.status in (200, 503)  # the answer in flight is lost, never a wrong one
    resp = await admin.get("/security/api/summary", headers=auth)
    assert resp.status == 200
    assert (await resp.json())["integrity"]["ok"] is True
    assert client._proc is not None
    assert client._proc.pid != proc.pid
