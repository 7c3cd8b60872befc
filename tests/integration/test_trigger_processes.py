"""Limit orders with every role its own process on PostgreSQL + Redis (`order-engine market`, `api`, two
`worker`s, each with its trigger watcher, and a `projector`), the market's price moved by the test with
outside swaps (POST /swaps): cancels racing the watchers of two processes, armed orders outliving a restart
of every process and a flushed Redis, and 10,000 armed orders of which a price move crosses a known few.

What each order did is read from the log (`order_events`), polled with a deadline: the processes give no
other sign."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from redis.asyncio import Redis

from engine.services import Services
from projections.trigger_index import RedisTriggerIndex
from tests.armed_orders import arm_limit_orders
from tests.harness import engine_settings
from tests.market_moves import best_spot, push_sol_price
from tests.processes import (
    environment,
    free_port,
    role_processes,
    stop_processes,
    until,
    wait_for_workers,
    wait_until_healthy,
)

LIMIT_ORDER = {
    "orderType": "limit",
    "tokenIn": "SOL",
    "tokenOut": "USDC",
    "amountIn": "0.1",
    "slippageBps": 50,
}
SOL_USDC = ("SOL", "USDC")
EVERY_PRICE = Decimal(10**12)  # above any limit: `crossed` at it lists every armed SOL/USDC order
TERMINAL = ("OrderConfirmed", "OrderFailed")
ENDS_OF_THE_WAIT = ("TriggerFired", "OrderCancelled", "OrderExpired")
# Watchers that look often: a price move is seen within a few tens of milliseconds, as a cancel is answered.
WATCHING = {"mock_seed": 7, "trigger_interval_ms": 20}
ROLES = ["market", "api", "worker", "worker", "projector"]


@dataclass
class Fleet:
    api: httpx.AsyncClient
    market: httpx.AsyncClient
    env: dict[str, str]
    redis_url: str
    log_dir: Path
    processes: list[subprocess.Popen]  # those running now, in the order of ROLES

    @asynccontextmanager
    async def running(self, name: str) -> AsyncIterator[None]:
        """Every role started (again, on the same ports and databases), until each answers."""
        with role_processes(ROLES, self.env, self.log_dir / name) as self.processes:
            await wait_until_healthy(self.market)
            await wait_until_healthy(self.api)
            await wait_for_workers(self.redis_url, 2)
            yield

    def stop(self) -> None:
        """Stop every process as a deployment does (SIGTERM), and wait for each to exit."""
        stop_processes(self.processes)


@asynccontextmanager
async def fleet(postgres_url: str, redis_url: str, log_dir: Path, **settings: Any) -> AsyncIterator[Fleet]:
    """`order-engine market`, `api`, two `worker`s and a `projector`, each its own process, running."""
    port, market_port = free_port(), free_port()
    market_url = f"http://127.0.0.1:{market_port}"
    env = environment(
        postgres_url, redis_url, port=port, market_port=market_port, market_url=market_url, **settings
    )
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as api,
        httpx.AsyncClient(base_url=market_url, timeout=30) as market,
    ):
        engine = Fleet(api, market, env, redis_url, log_dir, [])
        async with engine.running("first"):
            yield engine


def limit_at(spot: Decimal, above: Decimal) -> str:
    """A limit price `above` (a fraction) over `spot`, in USDC per SOL, as a client writes it."""
    return str((spot * (1 + above)).quantize(Decimal("0.0001")))


async def submit_limit(api: httpx.AsyncClient, **changes: Any) -> str:
    response = await api.post("/api/orders/execute", json={**LIMIT_ORDER, **changes})
    assert response.status_code == 201, response.text
    return response.json()["orderId"]


async def cancel(api: httpx.AsyncClient, order_id: str) -> httpx.Response:
    return await api.post(f"/api/orders/{order_id}/cancel", json={})


async def logged(database_url: str, order_ids: list[str]) -> dict[str, list[tuple[str, str | None]]]:
    """Each order's events in the log, in version order: (type, the worker that appended it)."""
    events: dict[str, list[tuple[str, str | None]]] = {order_id: [] for order_id in order_ids}
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await conn.execute(
            "SELECT order_id, type, metadata->>'worker' FROM order_events WHERE order_id = ANY(%s) "
            "ORDER BY order_id, version",
            (order_ids,),
        )
        for order_id, kind, worker in await rows.fetchall():
            events[order_id].append((kind, worker))
    return events


async def until_ended(database_url: str, order_ids: list[str], timeout_s: float = 60) -> None:
    """Until every order has ended in the log: cancelled, expired or failed waiting, or fired and then
    confirmed or failed."""

    async def ended() -> bool:
        events = await logged(database_url, order_ids)
        return all(
            kinds and kinds[-1][0] in (*TERMINAL, "OrderCancelled", "OrderExpired")
            for kinds in events.values()
        )

    await until(ended, timeout_s, f"{len(order_ids)} orders ended")


@asynccontextmanager
async def trigger_index(redis_url: str) -> AsyncIterator[RedisTriggerIndex]:
    """The trigger index the projector process keeps in Redis, read from this process."""
    redis = Redis.from_url(redis_url)
    try:
        yield RedisTriggerIndex(redis)
    finally:
        await redis.aclose()


async def until_armed(index: RedisTriggerIndex, order_ids: list[str], timeout_s: float = 60) -> None:
    """Until the index (the projector's work) holds every one of `order_ids`."""

    async def armed() -> bool:
        return set(order_ids) <= set(await index.crossed(SOL_USDC, EVERY_PRICE))

    await until(armed, timeout_s, f"{len(order_ids)} orders in the trigger index")


@pytest.mark.timeout(300)
async def test_a_cancel_racing_the_watchers_of_two_processes_ends_each_order_exactly_once(
    postgres_url, redis_url, tmp_path
):
    rounds, per_round = 6, 8
    answers: dict[str, httpx.Response] = {}
    async with (
        fleet(postgres_url, redis_url, tmp_path, **WATCHING) as engine,
        trigger_index(redis_url) as index,
    ):
        for _ in range(rounds):
            spot = await best_spot(engine.market)
            # Every limit within a 2 % move (the route, its fee and impact in, pays about 1.7 % more).
            order_ids = await asyncio.gather(
                *(
                    submit_limit(engine.api, limitPrice=limit_at(spot, Decimal("0.002") + Decimal(n) / 1000))
                    for n in range(per_round)
                )
            )
            await until_armed(index, order_ids)
            # The price crosses every limit (both watchers fire what they see crossed) while half the orders'
            # cancels are on their way, and the other half's are sent as the move ends: the early ones
            # mostly win, the late ones race the watchers' next rounds.
            early, late = order_ids[: per_round // 2], order_ids[per_round // 2 :]
            early_cancels, _ = await asyncio.gather(
                asyncio.gather(*(cancel(engine.api, order_id) for order_id in early)),
                push_sol_price(engine.market, Decimal("0.02")),
            )
            late_cancels = await asyncio.gather(*(cancel(engine.api, order_id) for order_id in late))
            cancels = [*early_cancels, *late_cancels]
            answers.update(zip(order_ids, cancels, strict=True))
            await until_ended(postgres_url, order_ids)
            await push_sol_price(engine.market, Decimal("-0.02"))  # back, for the pools' depth to last
        events = await logged(postgres_url, list(answers))

    won, lost = [], []
    for order_id, answer in answers.items():
        kinds = [kind for kind, _ in events[order_id]]
        ends = Counter(kind for kind in kinds if kind in ENDS_OF_THE_WAIT)
        assert sum(ends.values()) == 1, (order_id, kinds)  # never both a fire and a cancel
        assert kinds[:2] == ["OrderSubmitted", "TriggerArmed"], kinds
        if answer.status_code == 200:
            won.append(order_id)
            assert answer.json() == {"orderId": order_id, "status": "cancelled"}
            assert kinds == ["OrderSubmitted", "TriggerArmed", "OrderCancelled"]
        else:
            lost.append(order_id)
            assert answer.status_code == 409, answer.text
            assert answer.json()["error"] == "not_waiting"
            # The status it had when the cancel read it: fired, on its way, or already ended.
            assert answer.json()["status"] not in ("waiting", "cancelled", "expired"), answer.json()
            assert kinds[2] == "TriggerFired", kinds
            assert sum(kind in TERMINAL for kind in kinds) == 1, kinds
            assert kinds[-1] == "OrderConfirmed", kinds
    assert len(won) + len(lost) == rounds * per_round
    print(f"cancels won {len(won)}, lost {len(lost)} to a watcher")
    firing_workers = {
        worker for order_id in lost for kind, worker in events[order_id] if kind == "TriggerFired"
    }
    assert won and lost, "the race should have gone both ways over the rounds"
    assert len(firing_workers) == 2, "the watchers of both worker processes should have fired orders"


@pytest.mark.timeout(300)
async def test_armed_orders_outlive_a_restart_of_every_process_and_a_flushed_redis(
    postgres_url, redis_url, tmp_path
):
    async with (
        fleet(postgres_url, redis_url, tmp_path, **WATCHING) as engine,
        trigger_index(redis_url) as index,
    ):
        spot = await best_spot(engine.market)
        limits = [limit_at(spot, Decimal("0.005") + Decimal(n) / 1000) for n in range(5)]
        before_restart = [await submit_limit(engine.api, limitPrice=limit) for limit in limits]
        await until_armed(index, before_restart)

        engine.stop()
        async with engine.running("restarted"):
            views = [(await engine.api.get(f"/api/orders/{order_id}")).json() for order_id in before_restart]
            assert [view["status"] for view in views] == ["waiting"] * len(before_restart)
            assert set(before_restart) <= set(await index.crossed(SOL_USDC, EVERY_PRICE))

            before_flush = [await submit_limit(engine.api, limitPrice=limit) for limit in limits]
            armed = before_restart + before_flush
            await until_armed(index, armed)
            await index.redis.flushdb()  # the index, its checkpoint, the queue: all gone, the log untouched
            # Nothing is appended meanwhile: the projector finds the index gone and builds it again.
            await until_armed(index, armed)
            assert await index.count() == len(armed)

            await push_sol_price(engine.market, Decimal("0.03"))
            await until_ended(postgres_url, armed)
            events = await logged(postgres_url, armed)

    for order_id in armed:
        kinds = [kind for kind, _ in events[order_id]]
        assert kinds[:3] == ["OrderSubmitted", "TriggerArmed", "TriggerFired"], kinds
        assert kinds.count("TriggerFired") == 1
        assert kinds[-1] == "OrderConfirmed" and sum(kind in TERMINAL for kind in kinds) == 1, kinds


ARMED = 10_000
CROSSED_EVERY = 50  # every 50th order's limit is within the price move: 200 orders fire, 9,800 stay armed


@pytest.mark.timeout(420)
async def test_a_price_move_among_10000_armed_orders_fires_exactly_the_crossed_ones_once(
    postgres_url, redis_url, tmp_path
):
    rate_limit, window_s = 50, 1.0
    settings = {**WATCHING, "rate_limit_max": rate_limit, "rate_limit_window_s": window_s}
    services = Services(engine_settings({"database_url": postgres_url, "redis_url": redis_url}))
    try:
        async with (
            fleet(postgres_url, redis_url, tmp_path, **settings) as engine,
            trigger_index(redis_url) as index,
        ):
            spot = await best_spot(engine.market)
            # The crossed ones within 1 % of the price (a 3 % move reaches them), the others 10 % above it
            # and more; every limit distinct.
            limits = [
                limit_at(
                    spot,
                    Decimal(n) / 10**6 + (Decimal("0.001") if n % CROSSED_EVERY == 0 else Decimal("0.1")),
                )
                for n in range(ARMED)
            ]
            order_ids = await arm_limit_orders(services.store, limits, Decimal("0.01"))
            crossed = [order_id for n, order_id in enumerate(order_ids) if n % CROSSED_EVERY == 0]
            await until(lambda: _equals(index.count(), ARMED), 120, f"{ARMED} orders armed")
            moved_at = datetime.now(UTC)
            await push_sol_price(engine.market, Decimal("0.03"))
            await until_ended(postgres_url, crossed, timeout_s=120)
            await until(lambda: _equals(index.count(), ARMED - len(crossed)), 30, "the fired ones unindexed")
            async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
                fired = await (
                    await conn.execute(
                        "SELECT order_id, count(*) FROM order_events WHERE type = 'TriggerFired' "
                        "GROUP BY order_id"
                    )
                ).fetchall()
                starts = await (
                    await conn.execute(
                        "SELECT extract(epoch FROM recorded_at) FROM order_events "
                        "WHERE type = 'RoutingStarted' AND (data->>'attempt')::int = 1 ORDER BY 1"
                    )
                ).fetchall()
            events = await logged(postgres_url, crossed)
    finally:
        await services.stop()

    # Exactly the crossed ones fired, each once; none of the 9,800 others.
    assert {order_id for order_id, _ in fired} == set(crossed)
    assert all(count == 1 for _, count in fired)
    for order_id in crossed:
        kinds = [kind for kind, _ in events[order_id]]
        assert kinds[:3] == ["OrderSubmitted", "TriggerArmed", "TriggerFired"], kinds
        assert kinds[-1] == "OrderConfirmed" and sum(kind in TERMINAL for kind in kinds) == 1, kinds
    assert len({worker for kinds in events.values() for kind, worker in kinds if kind == "TriggerFired"}) == 2
    # They ran through the rate limit: never more than its count of starts within one window.
    times = [float(at) for (at,) in starts]
    assert len(times) == len(crossed) and times[0] >= moved_at.timestamp()
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + window_s - 0.05) <= rate_limit
    assert times[-1] - times[0] >= (len(crossed) // rate_limit - 1) * window_s - 0.1


async def _equals(count: Awaitable[int], expected: int) -> bool:
    return await count == expected
