"""`order-engine demo` against a running engine: every order shown to its end, then a summary."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from engine.demo import run_demo
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
