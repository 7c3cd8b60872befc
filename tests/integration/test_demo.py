"""`order-engine demo` against a running engine: every order shown to its end, then a summary."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from rich.console import Console

from engine.demo import LimitPlan, SniperPlan, best_prices, limit_price, run_demo
from engine.launch import LaunchFailed
from tests.harness import engine_settings, running_engine


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
async def test_demo_follows_every_order_to_its_end(sqlite_url, terminal: bool):
    console = Console(record=True, width=160, force_terminal=terminal)
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        base_url = engine.ws_base.replace("ws://", "http://")
        orders = await run_demo(base_url, 5, console)

    assert len(orders) == 5
    assert {o.status for o in orders} == {"confirmed"}
    assert all(len(o.tx_hash) >= 87 for o in orders)
    assert "5 orders: 5 confirmed, 0 failed" in console.export_text()


async def test_piped_to_a_file_the_table_is_whole_the_summary_apart_and_prices_carry_their_unit(sqlite_url):
    piped = io.StringIO()
    console = Console(file=piped)  # what `order-engine demo > file` gets: not a terminal, 80 columns
    assert not console.is_terminal and console.width == 80
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        orders = await run_demo(engine.ws_base.replace("ws://", "http://"), 6, console)

    lines = piped.getvalue().splitlines()
    assert {o.status for o in orders} == {"confirmed"}
    for order in orders:
        (line,) = [line for line in lines if order.order_id[:8] in line]  # the table, printed once
        for cell in (
            f"{order.token_in}→{order.token_out}",
            f"{order.amount_in:g} {order.token_in}",
            "confirmed",
            order.venue,
            order.tx_hash[:20],
        ):
            assert cell in line, (cell, line)
        # One orientation per pair, with its unit: USDC per SOL for SOL → USDC and USDC → SOL alike.
        price, unit = order.shown_price().split(" ", 1)
        assert unit == f"{order.pair.quote} per {order.pair.base}" and f"{price} {unit}" in line, line
        assert "…" not in line.replace(order.tx_hash[:20] + "…", ""), line  # no other cell cut short

    summary = lines[-1]
    assert summary.startswith("6 orders: 6 confirmed, 0 failed; confirmed on "), summary
    assert lines[-2] == "", "a blank line between the table and the summary"
    assert "[" not in summary and "'" not in summary, f"venues as plain text: {summary}"
    for venue in {o.venue for o in orders}:
        assert f"{venue} {sum(o.venue == venue for o in orders)}" in summary


async def test_limit_orders_below_the_market_fire_and_those_above_it_expire(sqlite_url):
    console = Console(file=io.StringIO(), width=200)
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        base_url = engine.ws_base.replace("ws://", "http://")
        best = await best_prices(engine.http)
        marketable = await run_demo(base_url, 1, console, limits=LimitPlan(3, offset_bps=-100, expires_s=60))
        out_of_reach = await run_demo(base_url, 0, console, limits=LimitPlan(2, offset_bps=3000, expires_s=1))
        stored = {o.order_id: (await engine.http.get(f"/api/orders/{o.order_id}")).json() for o in marketable}

    assert [o.order_type for o in marketable] == ["market", "limit", "limit", "limit"]
    assert {o.status for o in marketable} == {"confirmed"}
    for order in marketable[1:]:
        # The limit sent is 1 % below the best price in the order's direction when it was placed.
        now = limit_price(best, order.token_in, order.token_out, 0)
        assert order.limit is not None and order.limit == limit_price(
            best, order.token_in, order.token_out, -100
        )
        assert order.limit < now and abs(order.limit / now - Decimal("0.99")) < Decimal("1e-8")
        view = stored[order.order_id]
        assert (view["orderType"], Decimal(str(view["limitPrice"]))) == ("limit", order.limit)
        assert order.price is not None and order.price >= order.limit  # never executed below its limit
    assert [(o.order_type, o.status) for o in out_of_reach] == [("limit", "expired")] * 2
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "4 orders: 4 confirmed, 0 failed" in text
    assert "2 orders: 0 confirmed, 0 failed, 2 expired" in text


async def test_sniper_orders_buy_the_token_the_demo_announces_then_launches(sqlite_url):
    piped = io.StringIO()
    console = Console(file=piped, width=200)
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        base_url = engine.ws_base.replace("ws://", "http://")
        plan = SniperPlan(2, market_url=f"{base_url}/market", launch_after_s=0)
        orders = await run_demo(base_url, 0, console, snipers=plan)
        (symbol,) = {o.token_out for o in orders}
        token = (await engine.http.get(f"/market/tokens/{symbol}")).json()
        events = (await engine.http.get(f"/api/orders/{orders[0].order_id}/events")).json()

    assert symbol.startswith("DEMO") and token["firstPool"] == f"raydium-cpmm-{symbol}-SOL-1"
    assert token["mintAuthority"] is None and token["freezeAuthority"] is None
    assert [(o.order_type, o.status) for o in orders] == [("sniper", "confirmed")] * 2
    assert [e["type"] for e in events[:3]] == ["OrderSubmitted", "TriggerArmed", "TriggerFired"]
    assert events[-1]["type"] == "OrderConfirmed"
    for order in orders:
        (line,) = [line for line in piped.getvalue().splitlines() if order.order_id[:8] in line]
        assert f"SOL→{symbol}" in line and f"SOL per {symbol}" in line, line
    assert "2 orders: 2 confirmed, 0 failed" in piped.getvalue()


async def test_without_market_scripting_the_sniper_demo_stops_naming_the_setting(sqlite_url):
    settings = engine_settings({"database_url": sqlite_url, "redis_url": None}, market_scripting=False)
    async with running_engine(settings) as engine:
        base_url = engine.ws_base.replace("ws://", "http://")
        with pytest.raises(LaunchFailed, match="MARKET_SCRIPTING"):
            await run_demo(
                base_url, 0, Console(file=io.StringIO()), snipers=SniperPlan(1, f"{base_url}/market")
            )
        assert (await engine.http.get("/api/orders")).json()["orders"] == [], "nothing placed"
