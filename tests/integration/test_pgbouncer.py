"""The engine behind PgBouncer in transaction mode (README, "Behind PgBouncer"): every transaction may get
another server connection, so the engine keeps no session state there, and prepares no statement with
DATABASE_PREPARED_STATEMENTS=false."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from eventstore.postgres import POSTGRES
from tests.harness import MARKET_ORDER, stream
from tests.pgbouncer import pgbouncer
from tests.processes import (
    ORDER_ENGINE,
    environment,
    free_port,
    role_processes,
    wait_for_workers,
    wait_until_healthy,
)

ORDERS = 12  # each statement of the pipeline runs more often than psycopg's prepare threshold (5)
COUNT = sa.text("SELECT count(*) FROM order_events WHERE version > :v")


async def _same_statement_on_two_connections(url: str, *, prepared_statements: bool) -> None:
    """Two client connections take turns on PgBouncer's one server connection, each running one statement
    often enough for psycopg to prepare it."""
    engine = POSTGRES.open(url, prepared_statements=prepared_statements)
    try:
        async with engine.connect() as first, engine.connect() as second:
            for _ in range(8):
                for conn in (first, second):
                    await conn.execute(
                        sa.text("SELECT count(*) FROM order_events WHERE version > :v"), {"v": 0}
                    )
                    await conn.commit()
    finally:
        await engine.dispose()


async def test_prepared_statements_break_on_a_shared_server_connection_unless_turned_off(postgres_url):
    with pgbouncer(postgres_url, pool_size=1) as url:
        with pytest.raises(sa.exc.DBAPIError) as refused:
            await _same_statement_on_two_connections(url, prepared_statements=True)
        await _same_statement_on_two_connections(url, prepared_statements=False)
    assert isinstance(refused.value.orig, psycopg.errors.DatabaseError)
    assert "prepared statement" in str(refused.value.orig)


async def test_orders_run_and_stream_to_confirmed_through_pgbouncer_in_transaction_mode(
    postgres_url, redis_url, tmp_path
):
    port, market_port = free_port(), free_port()
    market_url = f"http://127.0.0.1:{market_port}"
    # Fewer server connections than the processes' pools ask for: transactions share them in turn.
    with pgbouncer(postgres_url, pool_size=6) as url:
        migrate = await asyncio.to_thread(
            subprocess.run, [ORDER_ENGINE, "migrate", "--database-url", url], capture_output=True, text=True
        )
        env = environment(
            url,
            redis_url,
            port=port,
            market_port=market_port,
            market_url=market_url,
            database_prepared_statements="false",
        )
        with role_processes(["market", "api", "worker", "projector"], env, tmp_path):
            async with (
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
                httpx.AsyncClient(base_url=market_url) as market,
            ):
                await wait_until_healthy(market, 120)
                await wait_until_healthy(http, 120)
                await wait_for_workers(redis_url, 1, 120)
                responses = await asyncio.gather(
                    *(http.post("/api/orders/execute", json=MARKET_ORDER) for _ in range(ORDERS))
                )
                assert [r.status_code for r in responses] == [201] * ORDERS
                order_ids = [r.json()["orderId"] for r in responses]
                streams = await asyncio.gather(
                    *(stream(f"ws://127.0.0.1:{port}", order_id) for order_id in order_ids)
                )
                async with asyncio.timeout(20):  # the projector fills the read table a moment behind
                    while len((await http.get("/api/orders?status=confirmed")).json()["orders"]) < ORDERS:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                views = [(await http.get(f"/api/orders/{order_id}")).json() for order_id in order_ids]
    logs = "".join(log.read_text() for log in tmp_path.glob("*.log"))

    assert migrate.returncode == 0, migrate.stderr
    for messages, close_code in streams:
        assert close_code == 1000
        assert messages[-1]["status"] == "confirmed"
        assert [m["version"] for m in messages] == list(range(1, len(messages) + 1))
    assert [view["status"] for view in views] == ["confirmed"] * ORDERS
    assert "prepared statement" not in logs
