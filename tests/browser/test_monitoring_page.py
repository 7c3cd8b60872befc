"""The monitoring page (web/) in a real browser: Debian's Chromium driven by Playwright, against the whole
engine (embedded SQLite, in-process worker and projector) served by the test harness.

No browser is ever downloaded: without /usr/bin/chromium these tests are skipped, or fail under
REQUIRE_SERVICES=1 (CI installs the `chromium` package).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, WebSocket, expect

from domain.pairs import pair_of
from domain.tokens import TOKENS
from tests.harness import engine_settings, running_engine
from tests.proxy import DroppableProxy

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "monitoring-page.png"
SCREENSHOT_MAX_BYTES = 300_000
FIRST_SCREEN = {"x": 0, "y": 0, "width": 1280, "height": 1150}  # what a screenshot too large keeps

TX_HASH = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{87,88}$")  # a base58 Solana signature
TERMINAL = re.compile(r"^(confirmed|failed)$")
SHORT = 10_000  # ms: one step of the page (a click, a row appearing)
LONG = 30_000  # ms: an order's whole life, a reconnection
expect.set_options(timeout=SHORT)  # every assertion below waits up to SHORT unless it says LONG


def http_base(engine: Any) -> str:
    return engine.ws_base.replace("ws://", "http://")


@dataclass
class StreamSocket:
    """One WebSocket the page opened, and every message it received."""

    url: str
    messages: list[dict[str, Any]] = field(default_factory=list)


def record_sockets(page: Page) -> list[StreamSocket]:
    sockets: list[StreamSocket] = []

    def opened(socket: WebSocket) -> None:
        recorded = StreamSocket(socket.url)
        sockets.append(recorded)
        socket.on("framereceived", lambda payload: recorded.messages.append(json.loads(payload)))

    page.on("websocket", opened)
    return sockets


@contextlib.asynccontextmanager
async def monitoring_page(
    browser: Browser, base_url: str, width: int = 1360, height: int = 1000
) -> AsyncIterator[tuple[Page, list[StreamSocket]]]:
    """The page, loaded and streaming; yields it with the WebSockets it opens. Fails on an uncaught
    script error."""
    context = await browser.new_context(viewport={"width": width, "height": height}, color_scheme="light")
    page = await context.new_page()
    page.set_default_timeout(SHORT)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sockets = record_sockets(page)
    try:
        await page.goto(f"{base_url}/")
        await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")
        yield page, sockets
        assert errors == [], f"uncaught errors in the page: {errors}"
    finally:
        await context.close()


def row(page: Page, order_id: str):
    return page.locator(f'[data-testid="order-row"][data-order-id="{order_id}"]')


async def submit_through_form(page: Page, token_in: str, token_out: str, amount: str) -> str:
    """Fill and send the form; returns the id of the order's row, which must then appear."""
    rows = page.get_by_test_id("order-row")
    before = set(await rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)"))
    await page.get_by_test_id("token-in").select_option(token_in)
    await page.get_by_test_id("token-out").select_option(token_out)
    await page.get_by_test_id("amount-in").fill(amount)
    await page.get_by_test_id("slippage-bps").fill("50")
    await page.get_by_test_id("submit-order").click()
    await expect(page.get_by_test_id("form-status")).to_contain_text("submitted")
    await expect(page.get_by_test_id("form-error")).to_be_hidden()
    await expect(rows).to_have_count(len(before) + 1)
    (order_id,) = set(await rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)")) - before
    return order_id


async def test_an_order_submitted_through_the_form_is_followed_to_confirmed(browser, sqlite_url):
    async with (
        running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine,
        monitoring_page(browser, http_base(engine)) as (page, _),
    ):
        await expect(page.get_by_test_id("orders-empty")).to_be_visible()
        order_type = page.get_by_test_id("order-type")
        await expect(order_type).to_have_value("market")
        await expect(order_type.locator("option[value=limit]")).to_be_enabled()
        await expect(order_type.locator("option[value=sniper]")).to_be_enabled()
        await expect(page.get_by_test_id("limit-field")).to_be_hidden()  # a market order has no limit
        await expect(page.get_by_test_id("slippage-bps")).to_have_value("50")

        # The API's refusal is shown next to the form, and nothing is created.
        await page.get_by_test_id("slippage-bps").fill("0")
        await page.get_by_test_id("submit-order").click()
        await expect(page.get_by_test_id("form-error")).to_contain_text("slippageBps")
        await expect(page.get_by_test_id("slippage-bps")).to_have_attribute("aria-invalid", "true")
        await expect(page.get_by_test_id("order-row")).to_have_count(0)

        order_id = await submit_through_form(page, "SOL", "USDC", "0.25")
        order_row = row(page, order_id)
        await expect(order_row).to_have_attribute("data-status", "confirmed", timeout=LONG)
        await expect(order_row.get_by_test_id("status-badge")).to_have_text("confirmed")
        await expect(order_row.get_by_test_id("tx-hash")).to_have_text(TX_HASH)
        await expect(page.get_by_test_id("form-error")).to_be_hidden()

        stored = (await engine.http.get(f"/api/orders/{order_id}")).json()
        await expect(order_row.get_by_test_id("tx-hash")).to_have_text(stored["txHash"])
        await expect(order_row).to_contain_text("SOL → USDC")
        await expect(order_row).to_contain_text("0.25 SOL")

        # The detail: every status with its time, every pool's quote, the route, the transaction.
        await order_row.click()
        detail = page.get_by_test_id("order-detail")
        await expect(detail).to_have_attribute("data-order-id", order_id)
        events = (await engine.http.get(f"/api/orders/{order_id}/events")).json()
        entries = detail.get_by_test_id("timeline-entry")
        await expect(entries).to_have_count(len(events))
        await expect(entries.get_by_test_id("status-badge")).to_have_text([e["status"] for e in events])
        (decision,) = (e for e in events if e["type"] == "VenueSelected")
        await expect_route_and_quotes(detail, stored, decision)
        assert len(stored["routePlan"]) == 1  # a small order takes one pool
        await expect(detail.get_by_test_id("route")).to_contain_text("Route: one pool")
        await expect(detail.get_by_test_id("routing-verdict")).to_contain_text(
            re.compile(r"won by \d+\.\d+% of amountOut")
        )
        await expect(detail.get_by_test_id("detail-tx-hash")).to_have_text(stored["txHash"])
        await expect(detail.get_by_test_id("detail-amount-out")).to_have_text(
            f"{exact(stored['amountOutRaw'], 'USDC')} USDC"
        )
        await order_row.click()
        await expect(detail).to_have_count(0)


async def test_a_token_launched_at_runtime_shows_with_every_digit_of_its_own_decimals(browser, sqlite_url):
    async with (
        running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine,
        monitoring_page(browser, http_base(engine)) as (page, _),
    ):
        # PEPE with 6 decimals, in a pool that pays amounts with all six: shown as a float they would round.
        token = {"symbol": "PEPE", "decimals": 6}
        assert (await engine.http.post("/market/tokens", json=token)).status_code == 201
        order = {"orderType": "sniper", "tokenIn": "SOL", "tokenOut": "PEPE", "amountIn": "0.5"}
        order_id = (await engine.http.post("/api/orders/execute", json=order)).json()["orderId"]
        order_row = row(page, order_id)
        await expect(order_row).to_have_attribute("data-status", "waiting")
        pool = {
            "venue": "raydium",
            "quoteToken": "SOL",
            "amountRaw": "9999999999999999999",
            "quoteAmountRaw": "5000000000",
        }
        assert (await engine.http.post("/market/tokens/PEPE/pools", json=pool)).status_code == 201
        await expect(order_row).to_have_attribute("data-status", "confirmed", timeout=LONG)
        stored = (await engine.http.get(f"/api/orders/{order_id}")).json()
        await order_row.click()
        detail = page.get_by_test_id("order-detail")
        shown = f"{Decimal(int(stored['amountOutRaw'])).scaleb(-6):,f} PEPE"
        assert len(stored["amountOutRaw"]) > 17, stored  # more digits than a double keeps
        await expect(detail.get_by_test_id("detail-amount-out")).to_have_text(shown)
        await expect(order_row).to_contain_text("SOL → PEPE")


async def test_a_large_order_shows_its_route_split_across_pools_with_exact_amounts(browser, sqlite_url):
    # A seeded market whose pools make 5,000 SOL pay more split (how deep each pool is varies by seed).
    backend = {"database_url": sqlite_url, "redis_url": None}
    async with (
        running_engine(engine_settings(backend, mock_seed=11)) as engine,
        monitoring_page(browser, http_base(engine)) as (page, sockets),
    ):
        order_id = await submit_through_form(page, "SOL", "USDC", "5000")
        order_row = row(page, order_id)
        await expect(order_row).to_have_attribute("data-status", "confirmed", timeout=LONG)
        stored = (await engine.http.get(f"/api/orders/{order_id}")).json()
        events = (await engine.http.get(f"/api/orders/{order_id}/events")).json()
        landed = (await engine.http.get(f"/market/transactions?order={order_id}")).json()

        # The form sent the amount as the decimal string typed, and the order is exactly that.
        (submitted,) = [
            m for s in sockets for m in s.messages if m.get("orderId") == order_id and m["version"] == 1
        ]
        assert (stored["amountInRaw"], submitted["amountInRaw"]) == ("5000000000000", "5000000000000")
        legs = stored["routePlan"]
        assert len(legs) > 1, legs  # $750k of SOL pays more spread over pools than in the best one
        assert sum(leg["percent"] for leg in legs) == 100
        assert [f["pool"] for f in landed[0]["fills"]] == [leg["pool"] for leg in legs]

        await expect(order_row.get_by_test_id("order-amount")).to_have_text("5,000 SOL")
        await expect(order_row.get_by_test_id("route-split")).to_have_text(f"{len(legs)} pools")
        await order_row.click()
        detail = page.get_by_test_id("order-detail")
        await expect(detail).to_have_attribute("data-order-id", order_id)
        (decision,) = (e for e in events if e["type"] == "VenueSelected")
        await expect_route_and_quotes(detail, stored, decision)
        await expect(detail.get_by_test_id("route")).to_contain_text(f"Route: split over {len(legs)} pools")
        await expect(detail.get_by_test_id("routing-verdict")).to_contain_text(
            "more than the best single pool"
        )
        await expect(detail.get_by_test_id("fill")).to_have_count(len(legs))
        await expect(detail.get_by_test_id("detail-amount-out")).to_have_text(
            f"{exact(stored['amountOutRaw'], 'USDC')} USDC"
        )
        await expect(detail.get_by_test_id("detail-min-amount-out")).to_have_text(
            f"{exact(stored['minAmountOutRaw'], 'USDC')} USDC"
        )


async def expect_route_and_quotes(detail: Any, stored: dict[str, Any], decision: dict[str, Any]) -> None:
    """The routing panel shows the route of the read model, leg by leg with its exact amounts, and one quote
    row per pool of the decision, with its price impact; the rows of the route's pools are marked."""
    legs = stored["routePlan"]
    shown_legs = detail.get_by_test_id("route-leg")
    await expect(shown_legs).to_have_count(len(legs))
    for shown, leg in zip(await shown_legs.all(), legs, strict=True):
        await expect(shown).to_have_attribute("data-pool", leg["pool"])
        await expect(shown).to_have_attribute("data-venue", leg["venue"])
        await expect(shown).to_have_attribute("data-percent", str(leg["percent"]))
        await expect(shown).to_contain_text(f"{leg['percent']}%")
        amounts = f"{exact(leg['amountInRaw'], stored['tokenIn'])} {stored['tokenIn']} → "
        amounts += f"{exact(leg['amountOutRaw'], stored['tokenOut'])} {stored['tokenOut']}"
        await expect(shown).to_contain_text(amounts)
    quotes = decision["quotes"]
    rows = detail.get_by_test_id("quote-row")
    await expect(rows).to_have_count(len(quotes))
    for shown, quote in zip(await rows.all(), quotes, strict=True):
        await expect(shown).to_have_attribute("data-pool", quote["pool"])
        impact = number_in(await shown.get_by_test_id("price-impact").inner_text())
        assert math.isclose(impact, quote["priceImpactBps"], abs_tol=0.01), (impact, quote)
        await expect(shown.locator("td").nth(4)).to_have_text(
            f"{exact(quote['amountOutRaw'], stored['tokenOut'])} {stored['tokenOut']}"
        )
    in_route = detail.locator('[data-testid="quote-row"].in-route')
    await expect(in_route).to_have_count(len(legs))
    largest = max(legs, key=lambda leg: int(leg["amountInRaw"]))
    winner = detail.locator('[data-testid="quote-row"].winner')
    await expect(winner).to_have_attribute("data-pool", largest["pool"])
    await expect(winner).to_have_attribute("data-venue", stored["selectedVenue"])


def exact(raw: str, token: str) -> str:
    """`raw` base units of `token` as the page shows them: every digit, grouped by thousands."""
    text = f"{Decimal(int(raw)).scaleb(-TOKENS[token].decimals):,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


async def test_fire_five_shows_five_concurrent_orders_each_reaching_a_terminal_status(browser, sqlite_url):
    backend = {"database_url": sqlite_url, "redis_url": None}
    # Slower venues so the five overlap on screen; failures so that retries (and maybe a failure) show.
    settings = engine_settings(
        backend, mock_execution_delay_ms_min=300, mock_execution_delay_ms_max=600, mock_failure_rate=0.3
    )
    async with running_engine(settings) as engine, monitoring_page(browser, http_base(engine)) as (page, _):
        first = await engine.submit()  # an order from elsewhere shows up too
        rows = page.get_by_test_id("order-row")
        await expect(rows).to_have_count(1)

        await page.get_by_test_id("fire-five").click()
        await expect(rows).to_have_count(6)
        await expect(page.get_by_test_id("form-status")).to_have_text("5 orders submitted at once")
        for index in range(6):
            await expect(rows.nth(index)).to_have_attribute("data-status", TERMINAL, timeout=LONG)

        ids = await rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)")
        assert len(set(ids)) == 6 and ids[-1] == first  # newest first
        pairs = await rows.locator("td.pair").all_inner_texts()
        assert len(set(pairs[:5])) == 5, pairs
        for order_id in ids:
            stored = (await engine.http.get(f"/api/orders/{order_id}")).json()
            order_row = row(page, order_id)
            await expect(order_row).to_have_attribute("data-status", stored["status"])
            await expect(order_row.get_by_test_id("attempts")).to_contain_text(str(stored["attempts"]))
            if stored["status"] == "confirmed":
                await expect(order_row.get_by_test_id("tx-hash")).to_have_text(stored["txHash"])
            else:  # failed: no transaction, and the reason in the detail
                await expect(order_row.get_by_test_id("tx-hash")).to_have_text("—")
                await order_row.click()
                await expect(page.get_by_test_id("failure-reason")).to_contain_text(stored["failureReason"])
                await order_row.click()
        await expect(page.get_by_test_id("counters")).to_contain_text("6 orders")


async def test_the_stream_reconnects_after_a_network_drop_and_catches_up_without_duplicates(
    browser, sqlite_url
):
    backend = {"database_url": sqlite_url, "redis_url": None}
    # Execution takes ~2 s, so the first order is still in flight when the network goes away.
    settings = engine_settings(backend, mock_execution_delay_ms_min=2000, mock_execution_delay_ms_max=2500)
    async with (
        running_engine(settings) as engine,
        DroppableProxy(http_base(engine)) as network,
        monitoring_page(browser, network.url) as (page, sockets),
    ):
        connection = page.get_by_test_id("connection")
        in_flight = await submit_through_form(page, "SOL", "USDC", "1.5")
        await expect(row(page, in_flight)).to_have_attribute("data-status", "submitted", timeout=LONG)
        received_before_drop = sum(len(socket.messages) for socket in sockets)

        network.drop()  # from outside the page: every TCP connection between browser and engine is reset
        await expect(connection).to_have_attribute("data-state", "reconnecting")
        await expect(page.get_by_test_id("connection-label")).to_contain_text("Reconnecting")

        # While the page is cut off, its order completes and another one is submitted and completes.
        submitted_meanwhile = await engine.submit(tokenIn="USDC", tokenOut="BONK", amountIn=40)
        meanwhile_events, _ = await engine.stream(submitted_meanwhile)
        in_flight_events, _ = await engine.stream(in_flight)
        assert in_flight_events[-1]["status"] == meanwhile_events[-1]["status"] == "confirmed"
        await expect(row(page, submitted_meanwhile)).to_have_count(0)
        await expect(connection).to_have_attribute("data-state", "reconnecting")

        network.restore()
        await expect(connection).to_have_attribute("data-state", "open", timeout=LONG)
        for order_id in (in_flight, submitted_meanwhile):
            await expect(row(page, order_id)).to_have_attribute("data-status", "confirmed", timeout=LONG)
            await expect(row(page, order_id)).to_have_count(1)
        await expect(page.get_by_test_id("order-row")).to_have_count(2)

        # It resumed after the last token it had, not from the start: together the sockets carried
        # each event exactly once.
        resumed = [s for s in sockets[1:] if "afterToken=" in s.url]
        assert resumed, [s.url for s in sockets]
        keys = [(m["orderId"], m["version"]) for socket in sockets for m in socket.messages]
        assert len(keys) == len(set(keys)) == len(in_flight_events) + len(meanwhile_events)
        assert len(keys) > received_before_drop
        for order_id, events in ((in_flight, in_flight_events), (submitted_meanwhile, meanwhile_events)):
            await row(page, order_id).click()
            detail = page.get_by_test_id("order-detail")
            await expect(detail).to_have_attribute("data-order-id", order_id)
            await expect(detail.get_by_test_id("timeline-entry")).to_have_count(len(events))
            await expect(detail.get_by_test_id("detail-tx-hash")).to_have_text(events[-1]["txHash"])


async def test_prices_read_in_one_orientation_per_pair_with_their_unit(browser, sqlite_url):
    async with (
        running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine,
        monitoring_page(browser, http_base(engine)) as (page, _),
    ):
        swaps = [  # both directions of SOL/USDC, a pair quoted in USDC, one quoted in SOL
            ("SOL", "USDC", 0.5, "USDC per SOL"),
            ("USDC", "SOL", 80, "USDC per SOL"),
            ("USDC", "BONK", 40, "USDC per BONK"),
            ("JUP", "SOL", 100, "SOL per JUP"),
        ]
        for token_in, token_out, amount, unit in swaps:
            order_id = await engine.submit(tokenIn=token_in, tokenOut=token_out, amountIn=amount)
            order_row = row(page, order_id)
            await expect(order_row).to_have_attribute("data-status", "confirmed", timeout=LONG)
            stored = (await engine.http.get(f"/api/orders/{order_id}")).json()
            # executionPrice keeps the swap's direction (SOL per USDC for USDC → SOL); the page turns it.
            expected = pair_of(token_in, token_out).price(token_in, Decimal(str(stored["executionPrice"])))
            await expect(order_row.get_by_test_id("price-unit")).to_have_text(unit)
            shown = await order_row.get_by_test_id("execution-price").inner_text()
            assert math.isclose(number_in(shown), expected, rel_tol=1e-3), (shown, expected)

            await order_row.click()
            detail = page.get_by_test_id("order-detail")
            await expect(detail).to_have_attribute("data-order-id", order_id)
            executed = detail.get_by_test_id("detail-execution-price")
            await expect(executed).to_have_text(re.compile(f" {unit}$"))
            assert math.isclose(number_in(await executed.inner_text()), expected, rel_tol=1e-3)
            headers = detail.locator("table.quotes thead th")
            await expect(headers).to_contain_text([f"Price ({unit})", f"Effective price ({unit})"])
            for quote in await detail.get_by_test_id("quote-row").all():
                quoted = number_in(await quote.locator("td").first.inner_text())
                assert math.isclose(quoted, expected, rel_tol=0.05), (quoted, expected)  # the same market
            await order_row.click()
            await expect(detail).to_have_count(0)


def number_in(text: str) -> float:
    """The first number of a cell as the page formats it (`1,234.5 USDC per SOL`, `0.00002`)."""
    found = re.search(r"\d[\d,]*(\.\d+)?", text)
    assert found, text
    return float(found.group(0).replace(",", ""))


@pytest.fixture
def screenshot_path(tmp_path: Path) -> Path:
    """docs/monitoring-page.png when it is missing or UPDATE_SCREENSHOTS=1; otherwise a scratch file, so
    that running the tests leaves the working tree as it was."""
    if SCREENSHOT.exists() and os.environ.get("UPDATE_SCREENSHOTS") != "1":
        return tmp_path / SCREENSHOT.name
    SCREENSHOT.parent.mkdir(exist_ok=True)
    return SCREENSHOT


async def test_screenshot_of_the_page_with_orders_and_one_detail(browser, sqlite_url, screenshot_path):
    backend = {"database_url": sqlite_url, "redis_url": None}
    settings = engine_settings(
        backend,
        mock_execution_delay_ms_min=200,
        mock_execution_delay_ms_max=400,
        mock_failure_rate=0.35,
        mock_seed=11,
    )
    async with (
        running_engine(settings) as engine,
        monitoring_page(browser, http_base(engine), width=1280, height=1400) as (page, _),
    ):
        large = await submit_through_form(page, "SOL", "USDC", "5000")
        await page.get_by_test_id("fire-five").click()
        rows = page.get_by_test_id("order-row")
        await expect(rows).to_have_count(6)
        for index in range(6):
            await expect(rows.nth(index)).to_have_attribute("data-status", TERMINAL, timeout=LONG)

        # A limit order waiting beside the price that would fire it, and a token announced, then launched.
        limit = await engine.submit(
            orderType="limit", tokenIn="SOL", tokenOut="USDC", amountIn="2", limitPrice="160"
        )
        await expect(row(page, limit).get_by_test_id("current-price")).not_to_have_text("…", timeout=LONG)
        for symbol in ("WIF", "PEPE"):
            announced = await engine.http.post("/market/tokens", json={"symbol": symbol, "decimals": 6})
            assert announced.status_code == 201, announced.text
        pool = {
            "venue": "raydium",
            "quoteToken": "SOL",
            "amountRaw": str(10**15),
            "quoteAmountRaw": str(50 * 10**9),
        }
        assert (await engine.http.post("/market/tokens/WIF/pools", json=pool)).status_code == 201
        launched = page.locator('[data-testid="launch-item"][data-symbol="WIF"]')
        await expect(launched).to_have_attribute("data-state", "launched", timeout=LONG)

        # Open the most telling order: the large one, its route split across pools.
        await row(page, large).click()
        await expect(page.get_by_test_id("order-detail")).to_be_visible()
        await page.evaluate("window.scrollTo(0, 0)")
        image = await page.screenshot(full_page=True, animations="disabled")
        if len(image) >= SCREENSHOT_MAX_BYTES:  # a long detail: the window's worth is enough
            image = await page.screenshot(animations="disabled", clip=FIRST_SCREEN)
    assert 0 < len(image) < SCREENSHOT_MAX_BYTES, f"the screenshot is {len(image)} bytes"
    await asyncio.to_thread(screenshot_path.write_bytes, image)
