"""The market on the engine's real databases (PostgreSQL and SQLite), in process, embedded in `serve`'s app,
and as its own process (`order-engine market`) behind the HTTP adapter: a transaction lands once, whatever
is sent again and whatever restarts; a refused one changes nothing; a restart forgets no landed swap."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine.cli import build_app
from engine.services import Services, make_market
from eventstore.backend import backend_for, driver_url
from market.ledger import TransactionRecord
from market.market import Market
from market.store import SqlMarketStore
from market.tables import market_pools, market_transactions
from market.tables import metadata as market_metadata
from tests.harness import engine_settings, serve_http
from tests.processes import ORDER_ENGINE, free_port, role_processes, wait_until_healthy
from tests.settings import FAST
from venues.base import VenueError
from venues.chain import Dropped, Landed, Pending, SwapLeg, SwapTransaction
from venues.market_http import MarketHttpChain

POOL = "raydium-cpmm-SOL-USDC-1"
SOL = 10**9
STILL = {"market_flow_interval_ms": 0, "mock_seed": 11}  # prices move only when a test moves them


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


def transaction(client_tx_id: str = "order-1:1", amount: int = SOL, minimum: int = 0, pool: str = POOL):
    return SwapTransaction(
        client_tx_id=client_tx_id,
        order_id=client_tx_id.split(":")[0],
        token_in="SOL",
        token_out="USDC",
        legs=(SwapLeg(venue=pool.split("-")[0], pool=pool, amount_in_raw=amount),),
        min_amount_out_raw=minimum,
        instructions=(),
        expires_at=int(time.time()) + 60,
    )


@asynccontextmanager
async def running_market(database_url: str, **settings: Any) -> AsyncIterator[tuple[Market, SqlMarketStore]]:
    backend = backend_for(database_url)
    db = backend.open(database_url)
    store = SqlMarketStore(db, backend)
    market = make_market(engine_settings({"database_url": database_url}, **{**STILL, **settings}), store)
    await market.start()
    try:
        yield market, store
    finally:
        await market.stop()
        await db.dispose()


async def rows(database_url: str, table: sa.Table) -> list[dict[str, Any]]:
    backend = backend_for(database_url)
    db = backend.open(database_url)
    try:
        async with db.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(sa.select(table))]
    finally:
        await db.dispose()


async def test_a_transaction_sent_twice_at_once_and_after_a_restart_lands_once(database_url):
    tx = transaction()
    async with running_market(database_url) as (market, _):
        first, second = await asyncio.gather(market.ledger.send(tx), market.ledger.send(tx))
        pools = market.ledger.pools_for()
    assert isinstance(first, Landed) and first == second
    async with running_market(database_url) as (restarted, _):
        assert await restarted.ledger.send(tx) == first
        assert restarted.ledger.pools_for() == pools  # the landing's pools, read back
        assert restarted.ledger.landed_of_order("order-1") == [first]
    recorded = [row for row in await rows(database_url, market_transactions) if row["order_id"] == "order-1"]
    assert [(row["client_tx_id"], row["status"]) for row in recorded] == [("order-1:1", "landed")]


async def test_a_transaction_pending_when_the_market_stopped_lands_at_the_next_start(database_url):
    now_ms = int(time.time() * 1000)
    pending, stale = transaction("order-1:1"), msgspec.structs.replace(transaction("order-2:1"), expires_at=1)
    async with running_market(database_url) as (market, store):
        before = market.ledger.pools[POOL]
        # What a market that died between recording a transaction and landing it leaves behind.
        await store.record_sent(
            [
                TransactionRecord(transaction=tx, sent_at=now_ms, lands_at=now_ms, failure=None)
                for tx in (pending, stale)
            ]
        )
    async with running_market(database_url) as (restarted, _):
        landed = await restarted.ledger.send(pending)
        assert isinstance(landed, Landed)
        assert restarted.ledger.pools[POOL].reserve_y == before.reserve_y - landed.amount_out_raw  # type: ignore[union-attr]
        assert await restarted.ledger.send(stale) == Dropped(
            client_tx_id="order-2:1", reason="blockhash expired"
        )
    statuses = {row["client_tx_id"]: row["status"] for row in await rows(database_url, market_transactions)}
    assert statuses == {"order-1:1": "landed", "order-2:1": "dropped"}


async def test_a_swap_refused_for_slippage_changes_nothing(database_url):
    async with running_market(database_url) as (market, _):
        pools_before = await rows(database_url, market_pools)
        outcome = await market.ledger.send(transaction(minimum=10**15))
        assert isinstance(outcome, Dropped) and outcome.reason.startswith("slippage exceeded: would pay 1")
        assert outcome.reason.endswith("< minimum 1000000000 USDC")
        assert await rows(database_url, market_pools) == pools_before
        assert market.ledger.landed_of_order("order-1") == []
    (row,) = await rows(database_url, market_transactions)
    assert row["status"] == "dropped" and row["outcome"]["reason"] == outcome.reason


async def test_serve_mounts_the_market_and_the_http_adapter_reads_it(sqlite_url):
    settings = engine_settings({"database_url": sqlite_url, "redis_url": None}, **STILL)
    services = Services(settings)
    app = build_app(services, worker=False, projector=False, market=True)
    async with serve_http(app) as base_url:
        chain = MarketHttpChain(f"{base_url}/market")
        try:
            await check_the_http_adapter(chain, base_url + "/market")
        finally:
            await chain.aclose()


async def check_the_http_adapter(chain: MarketHttpChain, market_url: str) -> None:
    pools = await chain.pools("raydium", "USDC", "SOL")
    assert pools and {(pool.venue, pool.token_x, pool.token_y) for pool in pools} == {
        ("raydium", "SOL", "USDC")
    }
    assert {pool.venue for pool in await chain.pools("meteora", "SOL", "USDC")} == {"meteora"}
    (pool,) = [pool for pool in pools if pool.pool_id == POOL]
    tx = transaction(amount=2 * SOL)
    landed, again = await asyncio.gather(chain.send_transaction(tx), chain.send_transaction(tx))
    assert isinstance(landed, Landed)
    assert landed.amount_out_raw == pool.quote("SOL", 2 * SOL, 0).amount_out_raw  # one swap, not two
    assert again == landed == await chain.send_transaction(tx)
    assert await chain.transaction_status(tx.client_tx_id) == landed
    assert await chain.transaction_status("never-sent:1") is None
    assert await chain.landed_of_order("order-1") == [landed]
    refused = await chain.send_transaction(transaction("order-3:1", pool="raydium-cpmm-SOL-USDC-99"))
    assert isinstance(refused, Dropped) and "no pool" in refused.reason
    refused = await chain.send_transaction(msgspec.structs.replace(tx, min_amount_out_raw=1))
    assert isinstance(refused, Dropped) and "other content" in refused.reason
    async with httpx.AsyncClient(base_url=market_url) as http:
        body = {"poolId": POOL, "tokenIn": "USDC", "amountInRaw": str(100_000 * 10**6)}
        answer = (await http.post("/swaps", json=body)).json()
        assert answer["status"] == "landed" and answer["pool"]["poolId"] == POOL
        (moved,) = [pool for pool in await chain.pools("raydium", "SOL", "USDC") if pool.pool_id == POOL]
        assert moved.spot_price("SOL") > pool.spot_price("SOL")  # USDC bought SOL: SOL is dearer
        assert (await http.get(f"/pools/{POOL}")).json()["reserveYRaw"] == str(moved.reserve_y)  # type: ignore[union-attr]
        assert (await http.get("/pools/nope")).status_code == 404
        assert (await http.get("/health")).json()["status"] == "ok"


def market_environment(database_url: str, port: int, **settings: object) -> dict[str, str]:
    values = {**FAST, **STILL, "market_port": port, "database_url": database_url, **settings}
    return {name.upper(): str(value) for name, value in values.items()}


async def test_a_market_process_killed_and_restarted_forgets_no_landed_transaction(postgres_url, tmp_path):
    port = free_port()
    env = market_environment(
        postgres_url, port, mock_execution_delay_ms_min=1000, mock_execution_delay_ms_max=1000
    )
    url = f"http://127.0.0.1:{port}"
    chain = MarketHttpChain(url)
    impatient = MarketHttpChain(url, send_timeout_s=0.05)
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            with role_processes(["market"], env, tmp_path / "first") as (process,):
                await wait_until_healthy(http)
                await check_the_http_adapter(chain, url)
                landed_before = await chain.landed_of_order("order-1")
                pool_before = (await http.get(f"/pools/{POOL}")).json()
                in_flight = transaction("order-2:1")
                with pytest.raises(TimeoutError):
                    await impatient.send_transaction(in_flight)
                assert isinstance(await chain.transaction_status(in_flight.client_tx_id), Pending)
                process.send_signal(signal.SIGKILL)  # dies with order-2's transaction in flight
                process.wait()
            with role_processes(["market"], env, tmp_path / "second"):
                await wait_until_healthy(http)
                assert await chain.landed_of_order("order-1") == landed_before
                landed = await chain.send_transaction(in_flight)  # landed once, at the start, by its rules
                assert isinstance(landed, Landed)
                assert await chain.landed_of_order("order-2") == [landed]
                pool_after = (await http.get(f"/pools/{POOL}")).json()
                assert (
                    int(pool_after["reserveYRaw"]) == int(pool_before["reserveYRaw"]) - landed.amount_out_raw
                )
        with pytest.raises(VenueError, match="cannot be reached"):
            await chain.pools("raydium", "SOL", "USDC")
    finally:
        await chain.aclose()
        await impatient.aclose()


def test_a_market_whose_port_is_taken_says_so_in_one_line(sqlite_url, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**os.environ, **market_environment(sqlite_url, port)}
        completed = subprocess.run(
            [ORDER_ENGINE, "market"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    assert completed.returncode == 1
    assert completed.stderr.strip().endswith("choose another with --market-port or MARKET_PORT")


def test_the_migration_makes_the_market_tables_as_declared(database_url):
    def only_the_market(name: str | None, kind: str, _: object) -> bool:  # the other tables are not ours
        return kind != "table" or (name or "").startswith("market_")

    engine = sa.create_engine(driver_url(database_url, asynchronous=False))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": only_the_market})
            assert compare_metadata(context, market_metadata) == []
    finally:
        engine.dispose()
