"""The API docs at /schema in Chromium with no network beyond the engine: every file the page needs comes
from the engine itself, and the page renders the OpenAPI document."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.async_api import Browser, Route, expect

from tests.browser.test_monitoring_page import http_base
from tests.harness import engine_settings, running_engine

ASSET_URL = re.compile(r"""(?:src|href)=['"]([^'"]+)['"]""")


async def test_docs_page_loads_everything_from_the_engine_and_renders_offline(browser: Browser, sqlite_url):
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        base = http_base(engine)
        html = (await engine.http.get("/schema")).text
        assets = ASSET_URL.findall(html)
        answers = {asset: (await engine.http.get(asset)).status_code for asset in assets}

        elsewhere: list[str] = []

        async def offline(route: Route) -> None:
            if urlsplit(route.request.url).netloc == urlsplit(base).netloc:
                await route.continue_()
            else:  # there is no network: anything from another host fails, and is noted
                elsewhere.append(route.request.url)
                await route.abort()

        page = await browser.new_page()
        await page.route("**/*", offline)
        await page.goto(f"{base}/schema")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Order execution engine")
        await expect(page.locator(".opblock-summary-path").first).to_be_visible()
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        await page.close()

    assert len(assets) >= 3 and all(asset.startswith("/schema/") for asset in assets), assets
    assert set(answers.values()) == {200}, answers
    assert elsewhere == []
    assert any("/api/orders/{orderId}" in path.replace("\u200b", "") for path in paths), paths
