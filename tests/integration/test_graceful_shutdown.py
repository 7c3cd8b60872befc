"""SIGTERM, role by role (README, "Stopping gracefully"): an API drains (its WebSockets close 1001 and their
clients resume elsewhere with afterVersion; /health answers 503 `draining`), a worker lets its orders in hand
reach their next event and hands them back at once, a projector stops at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import httpx
import msgspec
import websockets

from api.draining import CLOSE_GOING_AWAY, Draining
from domain.events import (
    OrderConfirmed,
    OrderSubmitted,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    VenueSelected,
)
from engine.cli import build_app
from engine.services import Services
from tests.harness import engine_settings, running_engine, serve_http, stream
from tests.processes import environment, free_port, role_processes, wait_for_workers, wait_until_healthy
from tests.settings import MARKET_ORDER


async def _messages_until_closed(socket: websockets.ClientConnection, into: list[dict]) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in socket:
            into.append(msgspec.json.decode(raw))


async def test_a_draining_api_closes_its_websockets_1001_and_reports_draining(postgres_url, redis_url):
    slow = {"mock_execution_delay_ms_min": 2000, "mock_execution_delay_ms_max": 2000}
    settings = engine_settings({"database_url": postgres_url, "redis_url": redis_url}, **slow)
    services = Services(settings)
    draining = Draining()
    app = build_app(services, worker=True, projector=True, market=True, draining=draining)
    async with serve_http(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        assert (await http.get("/health")).json()["status"] == "ok"
        order_id = (await http.post("/api/orders/execute", json=MARKET_ORDER)).json()["orderId"]
        ws_base = base_url.replace("http", "ws", 1)
        before: list[dict] = []
        async with websockets.connect(f"{ws_base}/api/orders/execute?orderId={order_id}") as socket:
            while not before or before[-1]["status"] != "submitted":
                before.append(msgspec.json.decode(await socket.recv()))
            draining.begin()
            await _messages_until_closed(socket, before)
        health = await http.get("/health")
        # A WebSocket opened while the server drains is sent away too (to resume on another server).
        after, close_code = await stream(ws_base, order_id, before[-1]["version"])

    assert socket.close_code == CLOSE_GOING_AWAY
    assert "reconnect" in (socket.close_reason or "")
    assert health.status_code == 503 and health.json()["status"] == "draining"
    assert close_code == CLOSE_GOING_AWAY
    versions = [m["version"] for m in before + after]
    assert versions == list(range(1, len(versions) + 1))


async def test_an_api_stopped_with_sigterm_sends_1001_and_its_client_resumes_on_the_other(
    postgres_url, redis_url, tmp_path
):
    slow = {"mock_execution_delay_ms_min": 3000, "mock_execution_delay_ms_max": 3000}
    ports = [free_port(), free_port()]
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend, **slow)) as engine:  # the worker and projector
        env = [environment(postgres_url, redis_url, port=port, shutdown_grace_s=10) for port in ports]
        with (
            role_processes(["api"], env[0], tmp_path / "a") as (a,),
            role_processes(["api"], env[1], tmp_path / "b"),
        ):
            for port in ports:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    await wait_until_healthy(http, 120)
            order_id = await engine.submit()
            before: list[dict] = []
            url = f"ws://127.0.0.1:{ports[0]}/api/orders/execute?orderId={order_id}"
            async with websockets.connect(url) as socket:
                while not before or before[-1]["status"] != "submitted":
                    before.append(msgspec.json.decode(await socket.recv()))
                a.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
                await _messages_until_closed(socket, before)
            closed_after_s = time.monotonic() - stopped_at
            after, close_code = await stream(f"ws://127.0.0.1:{ports[1]}", order_id, before[-1]["version"])
            exit_code = await asyncio.to_thread(a.wait, 30)
        complete, _ = await engine.stream(order_id)

    assert socket.close_code == CLOSE_GOING_AWAY, (socket.close_code, socket.close_reason)
    assert closed_after_s < 2.5, "the socket closes at once, not when the order ends (3 s later)"
    # uvicorn, its shutdown done, raises the signal again to end as SIGTERM would.
    assert exit_code in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in (tmp_path / "a" / "api-0.log").read_text()
    assert close_code == 1000
    assert before + after == complete
    assert [m["version"] for m in before + after] == list(range(1, len(complete) + 1))


async def test_a_worker_stopped_with_sigterm_takes_its_order_to_the_next_event_and_hands_it_back(
    postgres_url, redis_url, tmp_path
):
    # The market is slow to quote (within the worker's 2 s quote timeout): the order is caught while its
    # worker routes it.
    slow = {"mock_quote_delay_ms": 1500}
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend, **slow), worker=False) as engine:
        # A lease far longer than the test: the second worker gets the order because the first handed it
        # back, not because its claim ran out. The sweep finds only orders no worker holds.
        env = environment(
            postgres_url, redis_url, worker_lease_s=300, shutdown_grace_s=30, market_url=engine.market_url
        )
        with role_processes(["worker"], env, tmp_path / "first") as (first,):
            await wait_for_workers(redis_url, 1, 120)
            order_id = await engine.submit()
            async with websockets.connect(
                f"{engine.ws_base}/api/orders/execute?orderId={order_id}"
            ) as socket:
                while msgspec.json.decode(await socket.recv())["status"] != "routing":
                    pass
            # Well inside the 1.5 s read of the pools: nothing outside the worker tells when its run has
            # gone from appending RoutingStarted into that read (a stop before it leaves the order there).
            await asyncio.sleep(0.5)
            first.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(first.wait, 30)
        left = await engine.services.store.read_stream(order_id)
        with role_processes(["worker"], env, tmp_path / "second"):
            messages, close_code = await asyncio.wait_for(engine.stream(order_id), 120)
        complete = await engine.services.store.read_stream(order_id)
    first_log = (tmp_path / "first" / "worker-0.log").read_text()

    assert exit_code == 0
    # The routing in progress when SIGTERM came was finished and recorded (with the transaction it decided
    # on, appended together); nothing after it: the swap was never sent by the first worker.
    assert [type(r.event) for r in left] == [
        OrderSubmitted,
        RoutingStarted,
        VenueSelected,
        TransactionBuilt,
        TransactionSubmitted,
    ]
    first_worker = left[-1].metadata["worker"]
    assert "handed back 1 orders" in first_log
    assert close_code == 1000 and isinstance(complete[-1].event, OrderConfirmed)
    rest = complete[len(left) :]
    assert rest and all(r.metadata["worker"] != first_worker for r in rest)
    assert [r.version for r in complete] == list(range(1, len(complete) + 1))
    assert messages[-1]["status"] == "confirmed"


async def test_a_projector_stopped_with_sigterm_exits_at_once(postgres_url, redis_url, tmp_path):
    heartbeat = tmp_path / "heartbeat"
    env = environment(postgres_url, redis_url, heartbeat_file=heartbeat, shutdown_grace_s=30)
    async with running_engine(engine_settings({"database_url": postgres_url, "redis_url": redis_url})):
        with role_processes(["projector"], env, tmp_path) as (projector,):
            async with asyncio.timeout(120):  # its first heartbeat: it runs
                while not heartbeat.exists():  # noqa: ASYNC110 (another process's file)
                    await asyncio.sleep(0.1)
            projector.send_signal(signal.SIGTERM)
            started = time.monotonic()
            exit_code = await asyncio.to_thread(projector.wait, 30)
            took_s = time.monotonic() - started

    assert exit_code == 0
    # Not the grace period: a projector has nothing to finish (an apply is one transaction).
    assert took_s < 10, f"a projector holds nothing to finish; it took {took_s:.1f} s"
