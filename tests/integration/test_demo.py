"""`order-engine demo` against a running engine: every order shown to its end, then a summary."""

from __future__ import annotations

from rich.console import Console

from engine.demo import run_demo
from tests.harness import engine_settings, running_engine


async def test_demo_follows_every_order_to_its_end(sqlite_url):
    console = Console(record=True, width=160, force_terminal=False)
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        base_url = engine.ws_base.replace("ws://", "http://")
        orders = await run_demo(base_url, 5, console)

    assert len(orders) == 5
    assert {o.status for o in orders} == {"confirmed"}
    assert all(len(o.tx_hash) >= 87 for o in orders)
    assert "5 orders: 5 confirmed, 0 failed" in console.export_text()
