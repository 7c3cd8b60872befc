"""Limit and sniper orders on the monitoring page, in Debian's Chromium against the whole engine: placed
from the form, shown `waiting` with the limit beside the price that would fire it, cancelled from their row;
the launch feed follows a token from announced to launched, and a sniper order placed from it buys it."""

from __future__ import annotations

import math
from decimal import Decimal

from playwright.async_api import Page, Route, expect

from tests.browser.test_monitoring_page import LONG, http_base, monitoring_page, number_in, row
from tests.harness import Engine, engine_settings, running_engine
from tests.integration.test_limit_orders import push_sol_price

SEED = {"mock_seed": 7}
POLL = 5_000  # ms: the page reads prices and tokens every 2 s


async def sol_usdc(engine: Engine) -> dict:
    (pair,) = [
        p
        for p in (await engine.http.get("/api/prices")).json()["pairs"]
        if p["base"] == "SOL" and p["quote"] == "USDC"
    ]
    return pair


async def new_row_id(page: Page, before: set[str]) -> str:
    rows = page.get_by_test_id("order-row")
    await expect(rows).to_have_count(len(before) + 1)
    (order_id,) = set(await rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)")) - before
    return order_id


async def shown_number(locator) -> float:
    return number_in(await locator.inner_text())


async def test_a_limit_order_from_the_form_waits_beside_the_current_price_and_is_cancelled(
    browser, sqlite_url
):
    backend = {"database_url": sqlite_url, "redis_url": None}
    async with (
        running_engine(engine_settings(backend, **SEED)) as engine,
        monitoring_page(browser, http_base(engine)) as (page, _),
    ):
        await page.get_by_test_id("order-type").select_option("limit")
        await expect(page.get_by_test_id("limit-field")).to_be_visible()
        await expect(page.get_by_test_id("limit-unit")).to_have_text("USDC per SOL")  # tokenOut per tokenIn
        bid = Decimal((await sol_usdc(engine))["bid"])
        now_hint = page.get_by_test_id("limit-now")
        await expect(now_hint).to_contain_text("now ", timeout=POLL)
        assert math.isclose(await shown_number(now_hint), bid, rel_tol=1e-4)

        await page.get_by_test_id("amount-in").fill("0.5")
        await page.get_by_test_id("limit-price").fill("1000")  # far above the market: it waits
        await page.get_by_test_id("submit-order").click()
        await expect(page.get_by_test_id("form-status")).to_contain_text("submitted")
        order_id = await new_row_id(page, set())
        order_row = row(page, order_id)
        await expect(order_row).to_have_attribute("data-status", "waiting")
        await expect(order_row.get_by_test_id("status-badge")).to_have_text("waiting")
        await expect(page.get_by_test_id("count-waiting")).to_contain_text("1 waiting")
        stored = (await engine.http.get(f"/api/orders/{order_id}")).json()
        assert (stored["orderType"], stored["limitPrice"], stored["takingAmountRaw"]) == (
            "limit",
            1000,
            "500000000",
        )

        # The limit, and the best bid it waits for, in the pair's unit; it follows the market.
        await expect(order_row.get_by_test_id("limit-price")).to_have_text("1,000")
        await expect(order_row.get_by_test_id("execution-price")).to_contain_text("≥ 1,000")
        await expect(order_row.get_by_test_id("execution-price")).to_contain_text("USDC per SOL")
        current = order_row.get_by_test_id("current-price")
        await expect(current).not_to_have_text("…", timeout=POLL)
        assert math.isclose(await shown_number(current), bid, rel_tol=1e-4)
        await push_sol_price(engine, Decimal("0.02"))
        moved = Decimal((await sol_usdc(engine))["bid"])
        assert moved > bid * Decimal("1.019")
        await expect(current).to_have_text(f"{moved:,.4f}".rstrip("0").rstrip("."), timeout=POLL)

        # Its detail: the trigger, and the events that armed it, labelled.
        await order_row.click()
        detail = page.get_by_test_id("order-detail")
        await expect(detail.get_by_test_id("trigger-panel")).to_be_visible()
        await expect(detail.get_by_test_id("detail-limit-price")).to_have_text("≥ 1,000 USDC per SOL")
        await expect(detail.get_by_test_id("detail-taking-amount")).to_have_text("500 USDC")
        armed = detail.locator('[data-testid="timeline-entry"][data-type="TriggerArmed"]')
        await expect(armed).to_contain_text("Waiting for trigger")
        await expect(armed).to_contain_text("at least 500 USDC")

        await order_row.get_by_test_id("cancel-order").click()
        await expect(order_row).to_have_attribute("data-status", "cancelled")
        await expect(page.get_by_test_id("form-status")).to_contain_text("cancelled")
        await expect(order_row.get_by_test_id("cancel-order")).to_have_count(0)
        cancelled = detail.locator('[data-testid="timeline-entry"][data-type="OrderCancelled"]')
        await expect(cancelled).to_contain_text("Cancelled")
        await expect(page.get_by_test_id("count-cancelled")).to_contain_text("1 cancelled")
        assert (await engine.http.get(f"/api/orders/{order_id}")).json()["status"] == "cancelled"


async def test_a_limit_buying_the_base_shows_at_most_its_price_beside_the_ask(browser, sqlite_url):
    backend = {"database_url": sqlite_url, "redis_url": None}
    async with (
        running_engine(engine_settings(backend, **SEED)) as engine,
        monitoring_page(browser, http_base(engine)) as (page, _),
    ):
        # 0.1 SOL per USDC: buying SOL at 10 USDC or less, far below the market.
        order_id = await engine.submit(
            orderType="limit", tokenIn="USDC", tokenOut="SOL", amountIn="100", limitPrice="0.1"
        )
        order_row = row(page, order_id)
        await expect(order_row).to_have_attribute("data-status", "waiting")
        await expect(order_row.get_by_test_id("execution-price")).to_contain_text("≤ 10")
        await expect(order_row.get_by_test_id("execution-price")).to_contain_text("USDC per SOL")
        current = order_row.get_by_test_id("current-price")
        await expect(current).not_to_have_text("…", timeout=POLL)
        ask = Decimal((await sol_usdc(engine))["ask"])
        assert math.isclose(await shown_number(current), ask, rel_tol=1e-4)


async def test_the_launch_feed_follows_a_token_and_a_sniper_order_placed_from_it_buys_it(browser, sqlite_url):
    backend = {"database_url": sqlite_url, "redis_url": None}
    async with (
        running_engine(engine_settings(backend, **SEED)) as engine,
        monitoring_page(browser, http_base(engine)) as (page, _),
    ):
        await expect(page.get_by_test_id("launches-empty")).to_be_visible(timeout=POLL)
        await expect(page.get_by_test_id("launch-item")).to_have_count(
            0
        )  # the five starting tokens are not news

        assert (
            await engine.http.post("/market/tokens", json={"symbol": "PEPE", "decimals": 6})
        ).status_code == 201
        item = page.locator('[data-testid="launch-item"][data-symbol="PEPE"]')
        await expect(item).to_have_attribute("data-state", "announced", timeout=POLL)
        await expect(item.get_by_test_id("launch-state")).to_have_text("announced")
        await expect(item).to_contain_text("mint renounced")
        await expect(item).to_contain_text("no freeze")
        await expect(page.get_by_test_id("launches-empty")).to_be_hidden()

        await item.get_by_test_id("snipe-token").click()
        await expect(page.get_by_test_id("order-type")).to_have_value("sniper")
        await expect(page.get_by_test_id("sniper-token")).to_have_value("PEPE")
        await expect(page.get_by_test_id("token-out-field")).to_be_hidden()
        await page.get_by_test_id("amount-in").fill("0.1")
        await page.get_by_test_id("slippage-bps").fill("300")
        await page.get_by_test_id("min-liquidity").fill("1")
        await page.get_by_test_id("submit-order").click()
        await expect(page.get_by_test_id("form-status")).to_contain_text("submitted")
        order_id = await new_row_id(page, set())
        order_row = row(page, order_id)
        await expect(order_row).to_have_attribute("data-status", "waiting")
        await expect(order_row.get_by_test_id("awaiting")).to_have_text("awaiting launch")
        await expect(order_row).to_contain_text("SOL → PEPE")
        stored = (await engine.http.get(f"/api/orders/{order_id}")).json()
        assert (stored["orderType"], stored["tokenOut"], stored["status"]) == ("sniper", "PEPE", "waiting")

        pool = {
            "venue": "raydium",
            "quoteToken": "SOL",
            "amountRaw": str(10**15),
            "quoteAmountRaw": str(50 * 10**9),
        }
        assert (await engine.http.post("/market/tokens/PEPE/pools", json=pool)).status_code == 201
        await expect(item).to_have_attribute("data-state", "launched", timeout=POLL)
        await expect(item.get_by_test_id("launch-pool")).to_have_text("raydium-cpmm-PEPE-SOL-1")
        await expect(item.get_by_test_id("snipe-token")).to_have_count(0)

        await expect(order_row).to_have_attribute("data-status", "confirmed", timeout=LONG)
        await order_row.click()
        detail = page.get_by_test_id("order-detail")
        fired = detail.locator('[data-testid="timeline-entry"][data-type="TriggerFired"]')
        await expect(fired).to_contain_text("Trigger fired")
        await expect(fired).to_contain_text("SOL per PEPE")
        await expect(detail.get_by_test_id("detail-execution-price")).to_contain_text("SOL per PEPE")


async def test_a_cancel_that_loses_the_race_shows_the_api_s_409(browser, sqlite_url):
    backend = {"database_url": sqlite_url, "redis_url": None}
    async with (
        running_engine(engine_settings(backend, **SEED)) as engine,
        monitoring_page(browser, http_base(engine)) as (page, _),
    ):
        order_id = await engine.submit(
            orderType="limit", tokenIn="SOL", tokenOut="USDC", amountIn="0.5", limitPrice="1000"
        )
        order_row = row(page, order_id)
        await expect(order_row).to_have_attribute("data-status", "waiting")

        async def ended_first(route: Route) -> None:
            # The order ends (another client cancels it) just before the page's cancel reaches the engine.
            assert (await engine.http.post(f"/api/orders/{order_id}/cancel", json={})).status_code == 200
            await route.continue_()

        await page.route(f"**/api/orders/{order_id}/cancel", ended_first)
        await order_row.get_by_test_id("cancel-order").click()
        await expect(page.get_by_test_id("form-error")).to_have_text(
            "409: orderId: the order is cancelled; only a waiting order can be cancelled"
        )
        await expect(order_row).to_have_attribute("data-status", "cancelled")
