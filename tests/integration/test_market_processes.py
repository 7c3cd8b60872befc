"""The engine on the one shared market, every role its own process: `order-engine market`, `api`, two
`worker`s and a `projector` on PostgreSQL + Redis. Routing decisions are seen over the WebSocket and checked
against the chain's own record (`GET {MARKET_URL}/pools`, `/transactions?order=`)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import websockets

from tests.harness import MARKET_ORDER, stream
from tests.processes import environment, free_port, role_processes, wait_for_workers, wait_until_healthy

ROLES = ["market", "api", "worker", "worker", "projector"]


@dataclass
class Fleet:
    api: httpx.AsyncClient
    market: httpx.AsyncClient
    ws_base: str
    processes: dict[str, list[subprocess.Popen]]
    env: dict[str, str]

    async def submit(self, **changes: Any) -> str:
        response = await self.api.post("/api/orders/execute", json={**MARKET_ORDER, **changes})
        assert response.status_code == 201, response.text
        return response.json()["orderId"]

    async def run(self, **changes: Any) -> list[dict[str, Any]]:
        """Submit an order and follow it to its end: its messages."""
        order_id = await self.submit(**changes)
        messages, close_code = await stream(self.ws_base, order_id)
        assert close_code == 1000
        return messages

    def worker(self, pid: int) -> list[subprocess.Popen]:
        return [process for process in self.processes["worker"] if process.pid == pid]

    async def pools(self) -> dict[str, dict[str, Any]]:
        answer = await self.market.get("/pools", params={"tokenIn": "SOL", "tokenOut": "USDC"})
        return {pool["poolId"]: pool for pool in answer.json()}

    async def landed(self, order_id: str) -> list[dict[str, Any]]:
        return (await self.market.get("/transactions", params={"order": order_id})).json()


@asynccontextmanager
async def fleet(postgres_url: str, redis_url: str, log_dir: Path, **settings: Any) -> AsyncIterator[Fleet]:
    port, market_port = free_port(), free_port()
    market_url = f"http://127.0.0.1:{market_port}"
    env = environment(
        postgres_url, redis_url, port=port, market_port=market_port, market_url=market_url, **settings
    )
    with role_processes(ROLES, env, log_dir) as started:
        processes: dict[str, list[subprocess.Popen]] = {}
        for role, process in zip(ROLES, started, strict=True):
            processes.setdefault(role, []).append(process)
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as api,
            httpx.AsyncClient(base_url=market_url, timeout=30) as market,
        ):
            await wait_until_healthy(market)
            await wait_until_healthy(api)
            await wait_for_workers(redis_url, 2)
            yield Fleet(api, market, f"ws://127.0.0.1:{port}", processes, env)


def decision(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m for m in messages if m["type"] == "VenueSelected")


def last_worker_pid(database_url: str, order_id: str) -> int:
    """The process that appended the order's last event (each event's metadata names its worker)."""
    with psycopg.connect(database_url) as conn:
        (worker,) = conn.execute(
            "SELECT metadata->>'worker' FROM order_events WHERE order_id = %s ORDER BY version DESC LIMIT 1",
            (order_id,),
        ).fetchone()
    return int(worker.rsplit(":", 1)[1])


async def test_a_small_order_takes_one_pool_a_large_one_splits_and_the_next_order_sees_the_pools_moved(
    postgres_url, redis_url, tmp_path
):
    # Seeded pools, whose depths make 5,000 SOL worth splitting (an unseeded market may hold one pool deep
    # enough to take it alone).
    async with fleet(postgres_url, redis_url, tmp_path, mock_seed=7) as engine:
        small = await engine.run(amountIn="0.1")
        before = await engine.pools()
        large = await engine.run(amountIn="5000", slippageBps=300)
        after = await engine.pools()
        # The next order, after the worker that ran the large one has gone: the other worker routes it.
        (large_id,) = {m["orderId"] for m in large}
        (ran_it,) = [
            w for w in engine.processes["worker"] if w.pid == last_worker_pid(postgres_url, large_id)
        ]
        ran_it.send_signal(signal.SIGTERM)
        ran_it.wait(timeout=20)
        following = await engine.run(amountIn="0.1")
        landed = await engine.landed(large_id)

    assert [m["status"] for m in small][-1] == "confirmed"
    (leg,) = decision(small)["routePlan"]
    assert leg["percent"] == 100 and leg["amountInRaw"] == "100000000"

    route = decision(large)["routePlan"]
    assert len(route) >= 2, "a $750k order is worth splitting across pools"
    assert sum(leg["percent"] for leg in route) == 100
    assert sum(int(leg["amountInRaw"]) for leg in route) == 5000 * 10**9
    best_single = max(int(q["amountOutRaw"]) for q in decision(large)["quotes"])
    assert int(decision(large)["amountOutRaw"]) > best_single
    confirmed = large[-1]
    assert confirmed["type"] == "OrderConfirmed"
    # What the chain records is what the order says: one transaction, a fill per leg, the pools moved by it.
    (transaction,) = landed
    assert transaction["txHash"] == confirmed["txHash"]
    assert [(f["pool"], f["amountOutRaw"]) for f in transaction["fills"]] == [
        (f["pool"], f["amountOutRaw"]) for f in confirmed["fills"]
    ]
    assert sum(int(f["amountOutRaw"]) for f in confirmed["fills"]) == int(confirmed["amountOutRaw"])
    for fill in transaction["fills"]:
        pool_before, pool_after = before[fill["pool"]], after[fill["pool"]]
        assert Decimal(pool_after["spotPrice"]) < Decimal(pool_before["spotPrice"])  # SOL sold: cheaper
    # The next order's quotes are the pools as the large order left them.
    for quote in decision(following)["quotes"]:
        spot = Decimal(after[quote["pool"]]["spotPrice"])
        assert abs(Decimal(str(quote["price"])) - spot) <= spot * Decimal("1e-12")  # a double on the wire
    assert last_worker_pid(postgres_url, following[-1]["orderId"]) != ran_it.pid


async def test_a_worker_killed_after_submitting_leaves_exactly_one_landed_swap(
    postgres_url, redis_url, tmp_path
):
    landing = {"mock_execution_delay_ms_min": 2000, "mock_execution_delay_ms_max": 2000, "worker_lease_s": 1}
    async with fleet(postgres_url, redis_url, tmp_path, **landing) as engine:
        order_id = await engine.submit()
        async with websockets.connect(f"{engine.ws_base}/api/orders/execute?orderId={order_id}") as socket:
            while msgspec.json.decode(await socket.recv())["status"] != "submitted":
                pass
        (holder,) = [
            w for w in engine.processes["worker"] if w.pid == last_worker_pid(postgres_url, order_id)
        ]
        holder.kill()  # the transaction is on its way to the chain; its answer dies with the worker
        holder.wait()
        messages, close_code = await stream(engine.ws_base, order_id)
        landed = await engine.landed(order_id)
        finisher = last_worker_pid(postgres_url, order_id)

    assert close_code == 1000 and messages[-1]["type"] == "OrderConfirmed"
    assert finisher != holder.pid
    # The other worker asked the chain about the same transaction instead of sending another.
    assert [m["clientTxId"] for m in messages if m["type"] == "TransactionSubmitted"] == [f"{order_id}:1"]
    (transaction,) = landed
    assert transaction["clientTxId"] == f"{order_id}:1"
    assert transaction["txHash"] == messages[-1]["txHash"]


async def test_a_market_restarted_mid_flight_forgets_no_landed_swap(postgres_url, redis_url, tmp_path):
    async with fleet(postgres_url, redis_url, tmp_path) as engine:
        done = [await engine.run(amountIn=amount) for amount in ("1", "2500")]
        landed = {m[-1]["orderId"]: await engine.landed(m[-1]["orderId"]) for m in done}
        pools = await engine.pools()
        (market,) = engine.processes["market"]
        market.send_signal(signal.SIGTERM)
        market.wait(timeout=20)
        with role_processes(["market"], engine.env, tmp_path / "again"):
            await wait_until_healthy(engine.market)
            assert {order_id: await engine.landed(order_id) for order_id in landed} == landed
            assert await engine.pools() == pools
            after_restart = await engine.run(amountIn="1")

    assert all(len(transactions) == 1 for transactions in landed.values())
    assert after_restart[-1]["type"] == "OrderConfirmed"
