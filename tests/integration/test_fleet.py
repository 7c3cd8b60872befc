"""docker-compose.yml's fleet, run as plain processes: one URL (Caddy, deploy/Caddyfile) in front of two
APIs, with two workers, two projectors and the market behind them."""

from __future__ import annotations

import asyncio
import collections

import httpx

from tests.fleet import fleet
from tests.harness import MARKET_ORDER, stream

STATUSES = ["pending", "routing", "routing", "building", "submitted", "confirmed"]


async def test_orders_submitted_and_streamed_through_the_proxy_are_spread_over_both_apis(
    postgres_url, redis_url, tmp_path
):
    async with (
        fleet(postgres_url, redis_url, tmp_path) as engine,
        httpx.AsyncClient(base_url=engine.url, timeout=30) as http,
    ):
        responses = [await http.post("/api/orders/execute", json=MARKET_ORDER) for _ in range(6)]
        assert [r.status_code for r in responses] == [201] * 6
        order_ids = [r.json()["orderId"] for r in responses]
        # Each order's WebSocket, through the proxy's upgrade, from the first event to the close.
        streams = await asyncio.gather(*(stream(engine.ws_url, order_id) for order_id in order_ids))
        async with asyncio.timeout(10):  # the list comes from the read table, which the projectors fill
            while len((await http.get("/api/orders?status=confirmed")).json()["orders"]) < 6:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        landed = collections.Counter()
        for order_id in order_ids:
            (tx,) = (await http.get(f"{engine.market_url}/transactions", params={"order": order_id})).json()
            landed[tx["txHash"]] += 1

    for messages, close_code in streams:
        assert close_code == 1000
        assert [m["status"] for m in messages] == STATUSES
    assert len(landed) == 6 and set(landed.values()) == {1}
    # Which API served each WebSocket: every API process logs a line per WebSocket with its orderId.
    served = [
        sum(order_id in (tmp_path / f"api-{n}" / "api-0.log").read_text() for order_id in order_ids)
        for n in (1, 2)
    ]
    assert all(count > 0 for count in served), f"the proxy should use both APIs: {served}"
