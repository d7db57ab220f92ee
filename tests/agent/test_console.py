"""The security console end to end, in headless Chromium (Debian's /usr/bin/chromium, driven
by Playwright; nothing is downloaded): it loads with a security token, refuses a token without
the role, draws the chart, narrows the reveals table by filter, shows a tampered chain as
broken, and never shows a value. A screenshot is saved under test-artifacts/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from redactor.ops.admin import build_admin_app
from tests.agent.conftest import CARD, RAW_VALUES, SSN, Stack

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
    """Redactions, reveals by two subjects at two levels, and a denied attempt."""
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


async def _login(page: Page, url: str, token: str) -> None:
    await page.goto(url)
    await page.fill("#token", token)
    await page.click("#load")


async def test_console_in_a_real_browser(stack: Stack, aiohttp_server, browser: Browser) -> None:
    await _activity(stack)
    admin = await aiohttp_server(build_admin_app(stack.resources))
    url = str(admin.make_url("/security/"))
    page = await browser.new_page(viewport={"width": 1100, "height": 1400})

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

    # With the role: the chart draws both series, the tables fill, the chain verifies.
    await _login(page, url, stack.token(sub="sec-officer", roles=["security"]))
    await page.wait_for_selector("#console:not([hidden])")
    for series in ("redactions", "reveals"):
        points = await page.get_attribute(f"#chart polyline.series-{series}", "points")
        assert points is not None
        heights = {p.split(",")[1] for p in points.split()}
        assert len(points.split()) >= 7  # a point a day over the default week
        assert len(heights) > 1  # today's activity rises above the zero line
    reveals = page.locator("#reveals tbody tr")
    total = await reveals.count()
    assert total == 7  # alice: 3 x 2 tokens (masked), frank: 1 (full)
    # mallory's denied token, and the refused console view above (same tenant).
    denied = await page.locator("#denied tbody td:nth-child(5)").all_text_contents()
    assert sorted(denied) == ["console_denied", "token_denied"]
    assert "Every chain verifies" in await page.text_content("#trail-state")
    assert await page.locator("#chains .chain-broken").count() == 0
    # The integrity sentence comes first, above the chart; every row is vouched for.
    assert (await page.text_content("#integrity")).startswith("Integrity: verified through seq ")
    assert await page.locator("#console > :first-child#integrity").count() == 1
    assert await page.locator("tr.unverified").count() == 0

    # Filtering narrows the table: by subject, then by level.
    await page.fill("#filter-subject", "frank")
    assert await reveals.count() == 1
    assert await reveals.first.locator("td").nth(3).text_content() == "full"
    await page.fill("#filter-subject", "")
    await page.select_option("#filter-level", "masked")
    assert await reveals.count() == 6
    await page.select_option("#filter-level", "")
    await page.fill("#filter-purpose", "dispute")
    assert await reveals.count() == 1
    await page.fill("#filter-purpose", "")
    assert await reveals.count() == 7

    content = await page.content()
    for raw in RAW_VALUES:
        assert raw not in content

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
    masked = page.locator("#reveals tbody tr", has_text="masked")
    assert await masked.count() == 6
    assert await masked.locator("td.row-verified").count() == 6
    # The denied attempts (after it in the chain) are marked too.
    assert await page.locator("#denied tbody tr.unverified").count() >= 1

    ARTIFACTS.mkdir(exist_ok=True)
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
    assert all(row["verified"] for row in doc["denied"])
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
