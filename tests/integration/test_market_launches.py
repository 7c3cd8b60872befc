"""Token launches on the market's HTTP API, on the engine's real databases (SQLite and PostgreSQL): announced,
given a pool, traded, kept across a restart; refused with 400, 403, 404 or 409 as documented; seen through
both adapters of the port; launched from the CLI and from a schedule on a market process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.market import create_market_app
from engine.services import make_market
from eventstore.backend import backend_for
from market.in_process import InProcessChain
from market.market import Market
from market.store import SqlMarketStore
from tests.harness import engine_settings, serve_http
from tests.integration.test_market import STILL, market_environment
from tests.processes import ORDER_ENGINE, free_port, role_processes, wait_until_healthy
from venues.market_http import MarketHttpChain

AUTHORITY = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
PEPE = {"symbol": "PEPE", "decimals": 6, "freezeAuthority": AUTHORITY}
PEPE_POOL = {
    "venue": "raydium",
    "quoteToken": "SOL",
    "amountRaw": str(10**15),
    "quoteAmountRaw": str(50 * 10**9),
}
SOL = 10**9


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@asynccontextmanager
async def market_api(database_url: str, **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Market]]:
    """`order-engine market`'s app on `database_url`, served on a free port; a client of it."""
    backend = backend_for(database_url)
    db = backend.open(database_url)
    market = make_market(
        engine_settings({"database_url": database_url}, **{**STILL, **settings}), SqlMarketStore(db, backend)
    )

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        await market.start()
        yield
        await market.stop()

    try:
        async with (
            serve_http(create_market_app(market, lifespan)) as base_url,
            httpx.AsyncClient(base_url=base_url) as http,
        ):
            yield http, market
    finally:
        await db.dispose()


def swap_into(pool_id: str, token_out: str, amount_in_raw: int) -> dict[str, Any]:
    return {
        "clientTxId": f"buy-{token_out}:1",
        "orderId": f"buy-{token_out}",
        "tokenIn": "SOL",
        "tokenOut": token_out,
        "legs": [{"venue": pool_id.split("-")[0], "pool": pool_id, "amountInRaw": str(amount_in_raw)}],
        "minAmountOutRaw": "1",
        "instructions": [],
        "expiresAt": int(time.time()) + 60,
    }


async def test_a_token_is_announced_launched_traded_and_kept_across_a_restart(database_url):
    async with market_api(database_url) as (http, _):
        assert (await http.get("/tokens/PEPE")).status_code == 404
        announced = await http.post("/tokens", json=PEPE)
        assert announced.status_code == 201
        record = announced.json()
        assert record | {"announcedAt": 0} == {
            "symbol": "PEPE",
            "decimals": 6,
            "mintAuthority": None,
            "freezeAuthority": AUTHORITY,
            "announcedAt": 0,
            "launchedAt": None,
            "firstPool": None,
        }
        assert abs(record["announcedAt"] - time.time() * 1000) < 60_000
        assert (await http.get("/pools", params={"tokenIn": "PEPE"})).json() == []
        created = await http.post("/tokens/PEPE/pools", json=PEPE_POOL)
        assert created.status_code == 201, created.text
        pool = created.json()
        assert pool["poolId"] == "raydium-cpmm-PEPE-SOL-1"
        assert (pool["tokenX"], pool["tokenY"], pool["reserveXRaw"], pool["reserveYRaw"]) == (
            "PEPE",
            "SOL",
            PEPE_POOL["amountRaw"],
            PEPE_POOL["quoteAmountRaw"],
        )
        assert pool["spotPrice"] == "0.00000005"  # 50 SOL for 1e9 PEPE
        assert (await http.get(f"/pools/{pool['poolId']}")).json() == pool
        assert (await http.get("/pools", params={"tokenIn": "SOL", "tokenOut": "PEPE"})).json() == [pool]
        launched = (await http.get("/tokens/PEPE")).json()
        assert launched["firstPool"] == pool["poolId"] and launched["launchedAt"] >= record["announcedAt"]
        meteora = await http.post(
            "/tokens/PEPE/pools", json={**PEPE_POOL, "venue": "meteora", "quoteToken": "USDC"}
        )
        assert meteora.status_code == 201 and meteora.json()["activeId"] < 0
        assert (await http.get("/tokens/PEPE")).json() == launched  # a second pool launches nothing
        bought = (await http.post("/transactions", json=swap_into(pool["poolId"], "PEPE", SOL))).json()
        assert bought["status"] == "landed" and int(bought["amountOutRaw"]) > 0
        moved = (await http.get(f"/pools/{pool['poolId']}")).json()
        assert int(moved["reserveXRaw"]) == 10**15 - int(bought["amountOutRaw"])
        tokens = (await http.get("/tokens")).json()
        assert [t["symbol"] for t in tokens] == sorted(["BONK", "JUP", "PEPE", "SOL", "USDC", "USDT"])
    async with market_api(database_url) as (http, _):
        assert (await http.get("/tokens")).json() == tokens
        assert (await http.get(f"/pools/{pool['poolId']}")).json() == moved
        assert (await http.post("/tokens", json=PEPE)).status_code == 409


async def test_bad_launches_are_400_naming_the_field_and_refusals_404_or_409(sqlite_url):
    async with market_api(sqlite_url) as (http, _):
        await http.post("/tokens", json={"symbol": "DOGE", "decimals": 8})  # announced, no pool
        cases: list[tuple[str, dict[str, Any], int, str | None]] = [
            ("/tokens", {"symbol": "pepe", "decimals": 6}, 400, "symbol"),
            ("/tokens", {"symbol": "P", "decimals": 6}, 400, "symbol"),
            ("/tokens", {"symbol": "PEPE", "decimals": 10}, 400, "decimals"),
            ("/tokens", {"symbol": "PEPE", "decimals": "6"}, 400, "decimals"),
            ("/tokens", {"symbol": "PEPE"}, 400, "decimals"),
            (
                "/tokens",
                {"symbol": "PEPE", "decimals": 6, "mintAuthority": "0OIl" * 10},
                400,
                "mintAuthority",
            ),
            ("/tokens", {"symbol": "DOGE", "decimals": 6}, 409, None),
            ("/tokens/PEPE/pools", PEPE_POOL, 404, None),
            ("/tokens/DOGE/pools", {**PEPE_POOL, "venue": "orca"}, 400, "venue"),
            ("/tokens/DOGE/pools", {**PEPE_POOL, "amountRaw": "0"}, 400, "amountRaw"),
            ("/tokens/DOGE/pools", {**PEPE_POOL, "amountRaw": "18446744073709551616"}, 400, "amountRaw"),
            ("/tokens/DOGE/pools", {**PEPE_POOL, "quoteAmountRaw": 5}, 400, "quoteAmountRaw"),
            ("/tokens/DOGE/pools", {**PEPE_POOL, "quoteToken": "sol"}, 400, "quoteToken"),
            ("/tokens/DOGE/pools", {**PEPE_POOL, "quoteToken": "NOPE"}, 409, "quoteToken"),
            ("/tokens/DOGE/pools", {**PEPE_POOL, "quoteToken": "DOGE"}, 409, "quoteToken"),
            ("/tokens/DOGE/pools", {**PEPE_POOL, "amountRaw": "1", "quoteAmountRaw": "1"}, 409, "amountRaw"),
            ("/tokens/SOL/pools", {**PEPE_POOL, "quoteToken": "SOL"}, 409, "quoteToken"),
        ]
        problems = []
        for path, body, status, field in cases:
            answer = await http.post(path, json=body)
            if answer.status_code != status or answer.json().get("field") != field:
                problems.append(f"{path} {body}: {answer.status_code} {answer.text}")
            elif status == 400 and not answer.json()["message"].startswith(f"{field}: "):
                problems.append(f"{path} {body}: the message names no field: {answer.text}")
        assert not problems, "\n".join(problems)
        assert (await http.get("/tokens/NOPE")).status_code == 404
        assert (await http.get("/pools", params={"tokenIn": "sol"})).status_code == 400
        assert not (await http.get("/tokens/DOGE")).json()["firstPool"]  # nothing refused left a trace


async def test_scripting_is_refused_with_403_naming_the_setting_unless_it_is_on(sqlite_url):
    async with market_api(sqlite_url, market_scripting=False) as (http, _):
        for path, body in (
            ("/tokens", PEPE),
            ("/tokens/SOL/pools", PEPE_POOL),
            ("/swaps", {"poolId": "raydium-cpmm-SOL-USDC-1", "tokenIn": "SOL", "amountInRaw": "1"}),
            ("/tokens", {"not": "even a token"}),  # refused before the body is read
        ):
            answer = await http.post(path, json=body)
            assert answer.status_code == 403, (path, answer.text)
            assert "MARKET_SCRIPTING=true" in answer.json()["message"]
        assert (await http.get("/tokens")).status_code == 200
        assert (await http.get("/tokens/SOL")).json()["firstPool"] is not None
        assert "PEPE" not in {t["symbol"] for t in (await http.get("/tokens")).json()}


async def test_both_adapters_of_the_port_read_the_same_token_records(postgres_url):
    async with market_api(postgres_url) as (http, market):
        await http.post("/tokens", json=PEPE)
        await http.post("/tokens", json={"symbol": "WIF", "decimals": 6})
        await http.post("/tokens/WIF/pools", json={**PEPE_POOL, "venue": "meteora"})
        chain = MarketHttpChain(str(http.base_url))
        try:
            over_http = await chain.tokens()
        finally:
            await chain.aclose()
        in_process = await InProcessChain(market).tokens()
    assert over_http == in_process
    by_symbol = {record.symbol: record for record in over_http}
    assert by_symbol["PEPE"].freeze_authority == AUTHORITY and not by_symbol["PEPE"].tradable
    assert by_symbol["WIF"].first_pool == "meteora-dlmm-WIF-SOL-1" and by_symbol["WIF"].tradable
    assert by_symbol["SOL"].tradable and by_symbol["SOL"].mint_authority is None


def order_engine(*arguments: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in ("MARKET_URL", "PORT", "HOST")}
    return subprocess.run(
        [ORDER_ENGINE, *arguments], env=env | settings, cwd=cwd, capture_output=True, text=True, timeout=60
    )


async def launched(http: httpx.AsyncClient, symbol: str, timeout_s: float = 30) -> dict[str, Any]:
    """The token's record once it has a pool (another process launches it)."""
    async with asyncio.timeout(timeout_s):
        while True:  # polling the other process is the only way to know
            with contextlib.suppress(httpx.TransportError):
                answer = await http.get(f"/tokens/{symbol}")
                if answer.status_code == 200 and answer.json()["firstPool"]:
                    return dict(answer.json())
            await asyncio.sleep(0.05)


async def test_a_market_process_plays_its_schedule_and_the_cli_launches_on_it(postgres_url, tmp_path):
    schedule = tmp_path / "schedule.json"
    schedule.write_text(
        json.dumps(
            [
                {
                    "afterS": 0,
                    "symbol": "EARLY",
                    "decimals": 6,
                    "venue": "raydium",
                    "quote": "SOL",
                    "amountRaw": str(10**15),
                    "quoteAmountRaw": str(50 * SOL),
                },
                {
                    "afterS": 1,
                    "symbol": "LATE",
                    "decimals": 9,
                    "freezeAuthority": AUTHORITY,
                    "venue": "meteora",
                    "quote": "USDC",
                    "amountRaw": str(10**18),
                    "quoteAmountRaw": str(20_000 * 10**6),
                },
            ]
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = market_environment(postgres_url, port, market_launch_schedule=str(schedule))
    launch = [
        "market",
        "launch",
        "PEPE",
        "--decimals",
        "6",
        "--freeze-authority",
        AUTHORITY,
        "--quote",
        "SOL",
    ]
    launch += ["--amount-raw", str(10**15), "--quote-amount-raw", str(50 * SOL), "--market-url", url]
    async with httpx.AsyncClient(base_url=url) as http:
        with role_processes(["market"], env, tmp_path / "first"):
            await wait_until_healthy(http)
            early = await launched(http, "EARLY")
            late = await launched(http, "LATE")
            assert late["launchedAt"] - early["launchedAt"] >= 1000 and late["freezeAuthority"] == AUTHORITY
            assert late["firstPool"] == "meteora-dlmm-LATE-USDC-1"
            completed = order_engine(*launch, cwd=tmp_path)
            assert completed.returncode == 0, completed.stderr
            printed = json.loads(completed.stdout)
            assert printed == (await http.get("/tokens/PEPE")).json()
            assert (
                printed["firstPool"] == "raydium-cpmm-PEPE-SOL-1" and printed["freezeAuthority"] == AUTHORITY
            )
            again = order_engine(*launch[:-4], "--venue", "meteora", *launch[-4:], cwd=tmp_path)
            assert again.returncode == 0 and json.loads(again.stdout) == printed  # known: one more pool
            pools = (await http.get("/pools", params={"tokenIn": "PEPE"})).json()
            assert [pool["poolId"] for pool in pools] == [
                "meteora-dlmm-PEPE-SOL-1",
                "raydium-cpmm-PEPE-SOL-1",
            ]
            mistaken = order_engine(*launch[:4], "9", *launch[5:], cwd=tmp_path)  # PEPE has 6 decimals
            assert mistaken.returncode == 1, mistaken.stdout
            assert "PEPE is announced already, with decimals 6, not 9" in mistaken.stderr
            assert len((await http.get("/pools", params={"tokenIn": "PEPE"})).json()) == 2  # no pool made
        off = {**env, "MARKET_SCRIPTING": "false"}
        with role_processes(["market"], off, tmp_path / "second"):
            await wait_until_healthy(http)
            assert (await http.get("/tokens/PEPE")).json() == printed
            assert (await http.get("/tokens/LATE")).json() == late  # played again: nothing launched twice
            assert len((await http.get("/pools", params={"tokenIn": "EARLY"})).json()) == 1
            refused = order_engine(*launch[:2], "DOGE", *launch[3:], cwd=tmp_path)
            assert refused.returncode == 1 and "set MARKET_SCRIPTING=true" in refused.stderr
            assert refused.stderr.count("\n") == 1
    unreachable = order_engine(*launch, cwd=tmp_path)
    assert unreachable.returncode == 1 and f"could not reach the market at {url}" in unreachable.stderr


def test_a_schedule_that_cannot_be_played_stops_the_market_in_one_line(sqlite_url, tmp_path):
    (tmp_path / "bad.json").write_text('[{"afterS": 1, "symbol": "x"}]')
    for path, says in ((tmp_path / "missing.json", "cannot read"), (tmp_path / "bad.json", "symbol")):
        env = market_environment(sqlite_url, free_port(), market_launch_schedule=str(path))
        completed = order_engine("market", cwd=tmp_path, **env)
        assert completed.returncode == 2
        assert completed.stderr.startswith("order-engine: MARKET_LAUNCH_SCHEDULE: ")
        assert says in completed.stderr and completed.stderr.count("\n") == 1
