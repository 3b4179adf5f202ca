"""The dashboard in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium, installed
by scripts/ensure-services.sh; Playwright's own browser download is never used)."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (make services)")


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _sign_in(page, base, token):
    page.goto(base + "/")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")


def test_a_user_signs_in_sees_trades_and_chart_pauses_and_resumes(server, browser):
    base, world = server
    page = browser.new_page()
    _sign_in(page, base, world.tokens["ada"])
    assert page.url == base + "/account"
    trades = page.locator("#trades tbody tr")
    assert trades.count() == len(world.orders["ada"])
    text = page.locator("#trades").inner_text()
    assert "rsi_reversion period=14" in text and "data-ada-" in text and "ben" not in text
    chart = page.locator("#equity-chart polyline")
    assert chart.count() == 1
    assert len(chart.get_attribute("points").split()) == 12  # one point per recorded bar
    assert page.locator("#control").inner_text() == "active"
    page.click("#pause")
    assert page.locator("#control").inner_text() == "paused"
    page.click("#resume")
    assert page.locator("#control").inner_text() == "active"
    page.goto(base + "/xray")  # a user is not the operator
    assert "operator only" in page.content()


def test_a_bad_token_is_refused(server, browser):
    base, _ = server
    page = browser.new_page()
    _sign_in(page, base, "xr_not-a-token")
    assert page.locator("#error").count() == 1
    page.goto(base + "/account")
    assert page.url == base + "/"  # sent back to sign in


def test_the_operator_sees_the_market_xray_models_and_operations(server, browser):
    base, world = server
    page = browser.new_page()
    _sign_in(page, base, world.tokens["operator"])
    assert page.url == base + "/xray"
    assert page.locator("h1").inner_text() == "Market X-ray"
    assert "data quality: gaps and zero prices" in page.locator("#universe").inner_text()
    assert page.locator("#heatmap rect").count() == 4  # 2 × 2 clustered symbols
    assert page.locator("#bundle tbody tr").count() == 2 and page.locator("#sentiment tbody tr").count() == 1
    assert "model wins: model gbm v1" in page.locator("#bundle").inner_text()
    page.click("text=Operations")
    assert page.locator("#processes").inner_text().count("embedded") == 1
    page.click("text=Models")
    assert page.locator("h1").inner_text() == "Models"
    headers = page.locator("#models thead th").all_inner_texts()
    assert "shadow record" in headers and "gate" in headers
    rows = page.locator("#models tbody tr")
    assert rows.count() == 2  # xray-gbm v1 (champion) and v2 (challenger)
    shadow = rows.nth(1).locator("td").nth(headers.index("shadow record")).inner_text()
    assert shadow.startswith("48 bars (48 of 96 book-bars long, 2 symbols)") and "Sharpe" in shadow
