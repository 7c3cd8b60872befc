"""docker-compose.yml's fleet, run as plain processes: one URL (Caddy, deploy/Caddyfile) in front of two
APIs, with two workers, two projectors and the market behind them."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
from pathlib import Path

import httpx
import msgspec
import websockets

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
    served = [sum(_opened_socket(tmp_path / f"api-{n}", order_id) for order_id in order_ids) for n in (1, 2)]
    assert all(count > 0 for count in served), f"the proxy should use both APIs: {served}"


async def test_a_client_of_an_api_stopped_with_sigterm_resumes_through_the_proxy_without_gap(
    postgres_url, redis_url, tmp_path
):
    slow = {"mock_execution_delay_ms_min": 3000, "mock_execution_delay_ms_max": 3000}
    async with (
        fleet(postgres_url, redis_url, tmp_path, shutdown_grace_s=10, **slow) as engine,
        httpx.AsyncClient(base_url=engine.url, timeout=30) as http,
    ):
        order_id = (await http.post("/api/orders/execute", json=MARKET_ORDER)).json()["orderId"]
        before: list[dict] = []
        async with websockets.connect(f"{engine.ws_url}/api/orders/execute?orderId={order_id}") as socket:
            while not before or before[-1]["status"] != "submitted":
                before.append(msgspec.json.decode(await socket.recv()))
            # Whichever API the proxy chose for this socket is stopped.
            (serving,) = [n for n in (0, 1) if _opened_socket(tmp_path / f"api-{n + 1}", order_id)]
            engine.apis[serving].send_signal(signal.SIGTERM)
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in socket:
                    before.append(msgspec.json.decode(raw))
        # The same URL: the proxy takes the reconnect to the API still running.
        after, close_code = await stream(engine.ws_url, order_id, before[-1]["version"])
        events = (await http.get(f"/api/orders/{order_id}/events")).json()
        exit_code = await asyncio.to_thread(engine.apis[serving].wait, 30)

    assert socket.close_code == 1001
    assert close_code == 1000 and after[-1]["status"] == "confirmed"
    assert [m["version"] for m in before + after] == list(range(1, len(before + after) + 1))
    assert before + after == events  # every event once, as the log holds them
    assert exit_code in (0, -signal.SIGTERM)  # uvicorn raises the signal again once it has shut down


def _opened_socket(log_dir: Path, order_id: str) -> bool:
    """Whether the API process logging in `log_dir` served a WebSocket of `order_id` (its log's line)."""
    return any(
        '"websocket opened"' in line and order_id in line
        for line in (log_dir / "api-0.log").read_text().splitlines()
    )
