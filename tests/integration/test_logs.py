"""What `order-engine serve` writes to its log while orders run and when it stops (JSON lines)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import websockets

from tests.harness import MARKET_ORDER, stream
from tests.processes import ORDER_ENGINE, free_port, wait_until_healthy

# The events that make an order's story, and the line each one gets.
STEPS = {
    "OrderSubmitted": "order submitted",
    "VenueSelected": "order routed",
    "OrderConfirmed": "order confirmed",
    "ExecutionAttemptFailed": "order attempt failed",
    "OrderFailed": "order failed",
}
LIFECYCLE = set(STEPS.values())
# Orders that stay in the middle of their execution for the whole test, and a stop that leaves them at once
# for the next start (SHUTDOWN_GRACE_S 0: it does not wait for them to reach their next event).
IN_FLIGHT = {
    "mock_quote_delay_ms": 5,
    "mock_execution_delay_ms_min": 30_000,
    "mock_execution_delay_ms_max": 30_000,
    "shutdown_grace_s": 0,
}


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, **settings: object) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    """`order-engine serve` on an embedded database; yields a client and the log file (complete once the
    block ends with SIGINT and the process has exited cleanly)."""
    port, log = free_port(), tmp_path / "serve.log"
    env = {name.upper(): str(value) for name, value in settings.items()}
    with log.open("w") as output:
        process = await asyncio.create_subprocess_exec(
            *[ORDER_ENGINE, "serve", "--port", str(port)],
            env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'engine.db'}", **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                await wait_until_healthy(http)
                yield http, log
        finally:
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(20):
                assert await process.wait() == 0


def lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


async def test_each_step_of_an_order_is_one_info_line_with_its_order_and_correlation_id(tmp_path):
    venues = {
        "mock_quote_delay_ms": 5,
        "mock_execution_delay_ms_min": 20,
        "mock_execution_delay_ms_max": 40,
        # With this seed the chain fails 7 of its first 8 transactions, then 2 of the next 4: orders confirmed
        # at once, after a retry, and failed twice (however the orders' attempts interleave).
        "mock_failure_rate": 0.5,
        "mock_seed": 28,
        "max_attempts": 2,
        "retry_base_ms": 20,
    }
    async with serve(tmp_path, **venues) as (http, log):
        order_ids = {}
        for n in range(8):
            request_id = f"request-{n}"
            response = await http.post(
                "/api/orders/execute", json=MARKET_ORDER, headers={"X-Request-ID": request_id}
            )
            order_ids[response.json()["orderId"]] = request_id
        ws_base = str(http.base_url).replace("http", "ws").rstrip("/")
        streams = {order_id: (await stream(ws_base, order_id))[0] for order_id in order_ids}

    records = lines(log)
    story = [r for r in records if r["event"] in LIFECYCLE]
    for order_id, request_id in order_ids.items():
        told = [r for r in story if r["order_id"] == order_id]
        assert all(r["correlation_id"] == request_id and r["level"] == "info" for r in told)
        expected = [STEPS[m["type"]] for m in streams[order_id] if m["type"] in STEPS]
        assert [r["event"] for r in told] == expected
        routes = [r for r in told if r["event"] == "order routed"]
        for routed in routes:
            assert routed["venue"] in ("raydium", "meteora") and Decimal(routed["amount_out"]) > 0
            # The route (pool -> percent) and every pool's quote for the whole order, exact decimals as text.
            assert sum(routed["route"].values()) == 100 and set(routed["route"]) <= set(routed["quotes"])
            assert all(Decimal(amount_out) > 0 for amount_out in routed["quotes"].values())
        for confirmed in (r for r in told if r["event"] == "order confirmed"):
            assert confirmed["venue"] == routes[-1]["venue"] and Decimal(confirmed["price"]) > 0
        for failed in (r for r in told if r["event"] == "order attempt failed"):
            assert failed["reason"] and failed["retry_in_ms"] >= 0 and failed["attempt"] >= 1
    outcomes = {r["event"] for r in story}
    assert {"order confirmed", "order attempt failed", "order failed"} <= outcomes, "the seed covers them all"

    sockets = [r for r in records if r["logger"] == "engine.websocket"]
    assert [r["event"] for r in sockets] == ["websocket opened", "websocket closed"] * len(order_ids)
    assert {r["order_id"] for r in sockets} == set(order_ids)
    assert all(r["code"] == 1000 for r in sockets if r["event"] == "websocket closed")
    assert not [r for r in records if r["logger"] == "uvicorn.error" and "WebSocket" in r["event"]]
    assert not [r for r in records if "task" in r["event"].lower() and "ID:" in r["event"]], "taskiq ids"


async def test_stopping_with_orders_in_flight_writes_no_error(tmp_path):
    async with serve(tmp_path, **IN_FLIGHT) as (http, log):
        order_ids = [
            (await http.post("/api/orders/execute", json=MARKET_ORDER)).json()["orderId"] for _ in "abc"
        ]
        async with asyncio.timeout(20):
            for order_id in order_ids:  # until each is in the middle of its (30 s) execution
                while (await http.get(f"/api/orders/{order_id}")).json()["status"] != "submitted":  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

    text = log.read_text()
    assert "Traceback" not in text and "CancelledError" not in text
    assert [r for r in lines(log) if r["level"] in ("error", "critical")] == []


async def test_a_client_closing_its_websocket_is_one_info_line(tmp_path):
    async with serve(tmp_path, **IN_FLIGHT) as (http, log):
        order_id = (await http.post("/api/orders/execute", json=MARKET_ORDER)).json()["orderId"]
        ws_base = str(http.base_url).replace("http", "ws").rstrip("/")
        async with websockets.connect(f"{ws_base}/api/orders/execute?orderId={order_id}") as socket:
            await socket.recv()
        # The server learns of the close when it next reads; the stop below ends the socket either way.

    sockets = [r for r in lines(log) if r["logger"] == "engine.websocket"]
    assert [r["event"] for r in sockets] == ["websocket opened", "websocket closed by the client"]
    assert sockets[1]["order_id"] == order_id and sockets[1]["code"] == 1000
    assert [r for r in lines(log) if r["level"] in ("warning", "error", "critical")] == []
