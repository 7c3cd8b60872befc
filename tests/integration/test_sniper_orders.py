"""Sniper orders through the whole engine, in both modes: armed on a token the market has announced
(`waiting`), bought at its launch through the pools deep enough, at exactly what the pool pays; refused when
the token fails a check, expired when the launch is seen too late or the order's time runs out, cancelled
while waiting; refused at submission (400, 422) as documented. The test announces and launches the tokens
(POST /market/tokens, /market/tokens/{symbol}/pools; MARKET_SCRIPTING is on in tests)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from commands.trigger_orders import TriggerOutcome
from domain.pools import PoolState
from projections.rebuild import OrdersRebuild
from tests.fakes import FakeClock
from tests.harness import Engine, engine_settings, project_everything, running_engine
from tests.integration.test_rebuild import orders_table

AUTHORITY = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
SOL, USDC = 10**9, 10**6
SNIPER_ORDER = {
    "orderType": "sniper",
    "tokenIn": "SOL",
    "tokenOut": "PEPE",
    "amountIn": "0.5",
    "slippageBps": 50,
}
# The test's watcher rounds are the only ones after the engine's first: each round sees what the test set up.
MANUAL_ROUNDS = {"trigger_interval_ms": 3_600_000}
RUNNING = ("waiting", "pending", "routing", "building", "submitted")


async def announce(engine: Engine, symbol: str = "PEPE", decimals: int = 6, **authorities: str) -> None:
    response = await engine.http.post(
        "/market/tokens", json={"symbol": symbol, "decimals": decimals, **authorities}
    )
    assert response.status_code == 201, response.text


async def add_pool(
    engine: Engine,
    symbol: str = "PEPE",
    *,
    venue: str = "raydium",
    quote: str = "SOL",
    amount_raw: int = 10**15,
    quote_amount_raw: int = 50 * SOL,
) -> dict[str, Any]:
    """A pool of `symbol` against `quote` (the first launches the token), as the market shows it."""
    response = await engine.http.post(
        f"/market/tokens/{symbol}/pools",
        json={
            "venue": venue,
            "quoteToken": quote,
            "amountRaw": str(amount_raw),
            "quoteAmountRaw": str(quote_amount_raw),
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def token_record(engine: Engine, symbol: str) -> dict[str, Any]:
    return (await engine.http.get(f"/market/tokens/{symbol}")).json()


async def pool_state(engine: Engine, pool_id: str, token_in: str, token_out: str) -> PoolState:
    chain = engine.services.chain
    pools = [pool for venue in chain.venues for pool in await chain.pools(venue, token_in, token_out)]
    return next(pool for pool in pools if pool.pool_id == pool_id)


async def submit_sniper(engine: Engine, **changes: Any) -> str:
    response = await engine.http.post("/api/orders/execute", json={**SNIPER_ORDER, **changes})
    assert response.status_code == 201, response.text
    return response.json()["orderId"]


async def view(engine: Engine, order_id: str) -> dict[str, Any]:
    response = await engine.http.get(f"/api/orders/{order_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def trigger_round(engine: Engine, at: datetime | None = None) -> Counter[TriggerOutcome]:
    """One round of a trigger watcher on the index as the log has it now; at the moment `at` if given."""
    await project_everything(engine.services)
    watcher = engine.services.make_trigger_watcher()
    if at is not None:
        watcher.clock = FakeClock(moment=at)
    return await watcher.run_round()


def launched_at(record: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(record["launchedAt"] / 1000, UTC)


def assert_one_unbroken_stream(messages: list[dict[str, Any]]) -> None:
    """Every version once, in order, from the first."""
    assert [m["version"] for m in messages] == list(range(1, len(messages) + 1))


async def test_a_sniper_order_waits_for_its_token_and_buys_it_at_the_launch_exactly(backend):
    async with running_engine(engine_settings(backend)) as engine:
        await announce(engine)
        order_id = await submit_sniper(engine, maxDelayMs=60_000, minLiquidity="10")
        streaming = asyncio.create_task(engine.stream(order_id))
        await project_everything(engine.services)
        waiting = await view(engine, order_id)
        listed = (await engine.http.get("/api/orders", params={"status": "waiting"})).json()["orders"]

        pool = await add_pool(engine)
        before = await pool_state(engine, pool["poolId"], "SOL", "PEPE")
        expected_out = before.amount_out("SOL", SOL // 2, int(time.time()))
        messages, close_code = await streaming
        after = (await engine.http.get(f"/market/pools/{pool['poolId']}")).json()
        await project_everything(engine.services)
        confirmed_view = await view(engine, order_id)

    assert (waiting["status"], waiting["orderType"], waiting["tokenOut"]) == ("waiting", "sniper", "PEPE")
    assert (waiting["takingAmountRaw"], waiting["limitPrice"]) == (None, None)
    assert (waiting["minLiquidity"], waiting["minLiquidityRaw"], waiting["maxDelayMs"]) == (
        10,
        "10000000000",
        60_000,
    )
    assert waiting["tokenOutDecimals"] == 6
    assert [order["orderId"] for order in listed] == [order_id]

    assert close_code == 1000
    assert_one_unbroken_stream(messages)
    assert [m["type"] for m in messages] == [
        "OrderSubmitted",
        "TriggerArmed",
        "TriggerFired",
        "RoutingStarted",
        "VenueSelected",
        "TransactionBuilt",
        "TransactionSubmitted",
        "OrderConfirmed",
    ]
    statuses = [m["status"] for m in messages]
    assert statuses[:3] == ["pending", "waiting", "pending"] and statuses[-1] == "confirmed"
    assert set(statuses[3:-1]) <= set(RUNNING)
    submitted, armed, fired, confirmed = messages[0], messages[1], messages[2], messages[-1]
    assert submitted["pair"] == {"base": "PEPE", "quote": "SOL", "unit": "SOL per PEPE"}
    assert (armed["tokenOutDecimals"], armed["minLiquidityRaw"], armed["maxDelayMs"]) == (
        6,
        "10000000000",
        60_000,
    )
    # The pool's own maths for 0.5 SOL, to the base unit, as quoted, built, paid and shown.
    assert fired["amountOutRaw"] == confirmed["amountOutRaw"] == str(expected_out)
    assert Decimal(str(confirmed["amountOut"])) == Decimal(expected_out).scaleb(-6)
    assert [(f["pool"], f["amountInRaw"], f["amountOutRaw"]) for f in confirmed["fills"]] == [
        (pool["poolId"], str(SOL // 2), str(expected_out))
    ]
    assert Decimal(str(confirmed["executionPrice"])) == (Decimal(expected_out).scaleb(-6) / Decimal("0.5"))
    assert int(after["reserveXRaw"]) == 10**15 - expected_out
    assert int(after["reserveYRaw"]) > int(pool["reserveYRaw"])
    assert (confirmed_view["status"], confirmed_view["amountOutRaw"]) == ("confirmed", str(expected_out))
    assert confirmed_view["tokenOutDecimals"] == 6


@pytest.mark.parametrize(
    ("authorities", "check"),
    [
        ({"freezeAuthority": AUTHORITY}, f"refused: PEPE has a freeze authority ({AUTHORITY})"),
        ({"mintAuthority": AUTHORITY}, f"refused: PEPE's mint authority is not renounced ({AUTHORITY})"),
    ],
)
async def test_a_token_that_can_still_be_frozen_or_minted_is_refused_at_its_launch(
    backend, authorities, check
):
    async with running_engine(engine_settings(backend)) as engine:
        await announce(engine, **authorities)
        order_id = await submit_sniper(engine)
        streaming = asyncio.create_task(engine.stream(order_id))
        await project_everything(engine.services)
        pool = await add_pool(engine)
        messages, close_code = await streaming
        after = (await engine.http.get(f"/market/pools/{pool['poolId']}")).json()
        await project_everything(engine.services)
        failed = await view(engine, order_id)

    assert close_code == 1000
    assert_one_unbroken_stream(messages)
    assert [m["type"] for m in messages] == ["OrderSubmitted", "TriggerArmed", "OrderFailed"]
    assert (messages[-1]["status"], messages[-1]["reason"]) == ("failed", check)
    assert (failed["status"], failed["failureReason"]) == ("failed", check)
    assert (after["reserveXRaw"], after["reserveYRaw"]) == (pool["reserveXRaw"], pool["reserveYRaw"])


async def test_a_launch_seen_after_max_delay_expires_the_order_and_one_within_it_buys(backend):
    async with running_engine(engine_settings(backend, **MANUAL_ROUNDS)) as engine:
        await announce(engine)
        late = await submit_sniper(engine, maxDelayMs=1000)
        in_time = await submit_sniper(engine, maxDelayMs=5000)
        await add_pool(engine)
        launch = launched_at(await token_record(engine, "PEPE"))
        outcomes = await trigger_round(engine, at=launch + timedelta(milliseconds=1001))
        late_messages, _ = await engine.stream(late)
        in_time_messages, _ = await engine.stream(in_time)

    assert outcomes == Counter({TriggerOutcome.EXPIRED: 1, TriggerOutcome.FIRED: 1})
    assert [m["type"] for m in late_messages] == ["OrderSubmitted", "TriggerArmed", "OrderExpired"]
    expired = late_messages[-1]
    assert expired["status"] == "expired"
    assert datetime.fromisoformat(expired["expiresAt"]) == launch + timedelta(milliseconds=1000)
    assert in_time_messages[-1]["type"] == "OrderConfirmed"


async def test_a_pool_thinner_than_min_liquidity_is_left_out_and_a_deeper_one_is_bought_from(backend):
    async with running_engine(engine_settings(backend, **MANUAL_ROUNDS)) as engine:
        await announce(engine)
        order_id = await submit_sniper(engine, minLiquidity="10")
        # 1 SOL against 1e9 PEPE: far cheaper than the deep pool, and too thin for the order.
        thin = await add_pool(engine, quote_amount_raw=SOL)
        first = await trigger_round(engine)
        still = await view(engine, order_id)
        thin_state = await pool_state(engine, thin["poolId"], "SOL", "PEPE")
        assert thin_state.liquidity("SOL") < 10 * SOL
        deep = await add_pool(engine, quote_amount_raw=10 * SOL)  # exactly minLiquidity: deep enough
        second = await trigger_round(engine)
        messages, _ = await engine.stream(order_id)
        thin_after = (await engine.http.get(f"/market/pools/{thin['poolId']}")).json()

    assert first == Counter({TriggerOutcome.NOT_REACHED: 1})
    assert still["status"] == "waiting"
    assert second == Counter({TriggerOutcome.FIRED: 1})
    fired = next(m for m in messages if m["type"] == "TriggerFired")
    selected = next(m for m in messages if m["type"] == "VenueSelected")
    confirmed = messages[-1]
    assert confirmed["type"] == "OrderConfirmed"
    # Neither the trigger's quote nor the execution's route takes from the thin pool, cheaper as it is.
    assert {leg["pool"] for leg in fired["routePlan"]} == {deep["poolId"]}
    assert {leg["pool"] for leg in selected["routePlan"]} == {deep["poolId"]}
    assert {fill["pool"] for fill in confirmed["fills"]} == {deep["poolId"]}
    assert thin_after["reserveYRaw"] == thin["reserveYRaw"]


async def test_an_order_only_thin_pools_trade_expires_at_its_expiry(backend):
    async with running_engine(engine_settings(backend, **MANUAL_ROUNDS)) as engine:
        await announce(engine)
        expires_at = datetime.now(UTC) + timedelta(minutes=5)
        order_id = await submit_sniper(engine, minLiquidity="10", expiresAt=expires_at.isoformat())
        await add_pool(engine, quote_amount_raw=SOL)
        before = await trigger_round(engine)
        at_expiry = await trigger_round(engine, at=expires_at)
        messages, close_code = await engine.stream(order_id)

    assert before == Counter({TriggerOutcome.NOT_REACHED: 1})
    assert at_expiry == Counter({TriggerOutcome.EXPIRED: 1})
    assert [m["type"] for m in messages] == ["OrderSubmitted", "TriggerArmed", "OrderExpired"]
    assert (messages[-1]["status"], close_code) == ("expired", 1000)


async def test_a_sniper_order_cancelled_while_waiting_buys_nothing_at_the_launch(backend):
    async with running_engine(engine_settings(backend, **MANUAL_ROUNDS)) as engine:
        await announce(engine)
        order_id = await submit_sniper(engine)
        cancelled = await engine.http.post(f"/api/orders/{order_id}/cancel", json={})
        pool = await add_pool(engine)
        outcomes = await trigger_round(engine)
        messages, close_code = await engine.stream(order_id)
        after = (await engine.http.get(f"/market/pools/{pool['poolId']}")).json()

    assert (cancelled.status_code, cancelled.json()) == (200, {"orderId": order_id, "status": "cancelled"})
    assert TriggerOutcome.FIRED not in outcomes
    assert [m["type"] for m in messages] == ["OrderSubmitted", "TriggerArmed", "OrderCancelled"]
    assert (messages[-1]["status"], close_code) == ("cancelled", 1000)
    assert after["reserveYRaw"] == pool["reserveYRaw"]


@pytest.mark.parametrize(
    ("token_out", "launch", "status"),
    [
        ("WIF", False, 422),  # never announced
        ("PEPE", True, 422),  # announced and launched already
        ("USDC", False, 400),  # one of the engine's own tokens: trades already, by the schema
    ],
)
async def test_a_token_unknown_or_trading_already_is_refused_and_nothing_recorded(
    backend, token_out, launch, status
):
    async with running_engine(engine_settings(backend)) as engine:
        await announce(engine)
        if launch:
            await add_pool(engine)
        response = await engine.http.post("/api/orders/execute", json={**SNIPER_ORDER, "tokenOut": token_out})
        await project_everything(engine.services)
        page = (await engine.http.get("/api/orders")).json()

    assert response.status_code == status, response.text
    assert response.json()["field"] == "tokenOut"
    assert page["orders"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"maxDelayMs": 0}, "maxDelayMs"),
        ({"maxDelayMs": 3_600_001}, "maxDelayMs"),
        ({"maxDelayMs": "5000"}, "maxDelayMs"),
        ({"maxDelayMs": 2.5}, "maxDelayMs"),
        ({"minLiquidity": "1" + "0" * 40}, "minLiquidity"),
        ({"minLiquidity": -1}, "minLiquidity"),
        ({"minLiquidity": "-1"}, "minLiquidity"),
        ({"minLiquidity": "0.0000000001"}, "minLiquidity"),  # finer than SOL's 9 decimals
        ({"tokenIn": "USDC", "amountIn": "5", "minLiquidity": "0.0000001"}, "minLiquidity"),  # USDC has 6
        ({"limitPrice": "150"}, "limitPrice"),
        ({"takingAmountRaw": "1"}, "takingAmountRaw"),
        ({"tokenIn": "USDT"}, "tokenIn"),
        ({"tokenIn": "BONK", "amountIn": "1000"}, "tokenIn"),
        ({"tokenOut": "pepe"}, "tokenOut"),
        ({"tokenOut": "P"}, "tokenOut"),
        ({"tokenOut": "SOL"}, "tokenOut"),
        ({"orderType": "limit", "tokenOut": "USDC", "limitPrice": "150", "maxDelayMs": 5}, "maxDelayMs"),
        ({"orderType": "market", "tokenOut": "USDC", "minLiquidity": "1"}, "minLiquidity"),
    ],
)
async def test_a_bad_sniper_field_is_refused_naming_it_and_records_nothing(backend, body, field):
    async with running_engine(engine_settings(backend)) as engine:
        await announce(engine)
        response = await engine.http.post("/api/orders/execute", json={**SNIPER_ORDER, **body})
        await project_everything(engine.services)
        page = (await engine.http.get("/api/orders")).json()
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert page["orders"] == []


# -- tokens launched at runtime across the read side ------------------------------------------------------


def average_price(confirmed: list[dict[str, Any]], decimals_in: int, decimals_out: int) -> Fraction:
    """Whole tokenOut per whole tokenIn over `confirmed` (OrderConfirmed messages), exactly."""
    raw_in = sum(int(fill["amountInRaw"]) for m in confirmed for fill in m["fills"])
    raw_out = sum(int(m["amountOutRaw"]) for m in confirmed)
    return Fraction(raw_out, 10**decimals_out) / Fraction(raw_in, 10**decimals_in)


async def test_launched_tokens_read_across_the_api_the_stats_and_a_rebuild(backend):
    async with running_engine(engine_settings(backend)) as engine:
        await announce(engine, "PEPE", 6)
        await announce(engine, "WIF", 9)
        await announce(engine, "Z0", 0)
        pepe = [await submit_sniper(engine, amountIn=amount) for amount in ("0.5", "0.25")]
        wif = await submit_sniper(engine, tokenIn="USDC", tokenOut="WIF", amountIn="5")
        z0 = await submit_sniper(engine, tokenOut="Z0", amountIn=None, amountInRaw="123456789")
        market = await engine.submit()
        order_ids = (*pepe, wif, z0, market)
        streams = [asyncio.create_task(engine.stream(order_id)) for order_id in order_ids]
        await project_everything(engine.services)
        await add_pool(engine, "PEPE")
        await add_pool(engine, "WIF", quote="USDC", amount_raw=10**17, quote_amount_raw=50_000 * USDC)
        await add_pool(engine, "Z0", amount_raw=10**12, quote_amount_raw=1_000 * SOL)
        messages = {order_id: (await task)[0] for order_id, task in zip(order_ids, streams, strict=True)}
        await project_everything(engine.services)

        stats = json.loads((await engine.http.get("/api/stats")).text, parse_float=Decimal)
        pages = {
            name: (await engine.http.get("/api/orders", params=params)).json()["orders"]
            for name, params in {
                "PEPE": {"tokenOut": "PEPE"},
                "WIF": {"tokenIn": "USDC", "tokenOut": "WIF", "status": "confirmed"},
                "Z0": {"tokenOut": "Z0", "venue": "raydium"},
                "unknown": {"tokenOut": "DOGE"},
                "sold": {"tokenIn": "PEPE"},
            }.items()
        }
        views = {order_id: await view(engine, order_id) for order_id in (wif, z0, market)}
        live = await orders_table(engine)
        applied = await OrdersRebuild(
            engine.services.db, engine.services.store, engine.services.backend
        ).run()
        rebuilt = await orders_table(engine)
        stats_after_rebuild = json.loads((await engine.http.get("/api/stats")).text, parse_float=Decimal)

    confirmed = {order_id: stream[-1] for order_id, stream in messages.items()}
    assert {m["type"] for m in confirmed.values()} == {"OrderConfirmed"}
    by_pair = {p["pair"]: p for p in stats["pairs"]}
    assert set(by_pair) == {"SOL/PEPE", "USDC/WIF", "SOL/Z0", "SOL/USDC"}
    expected = {
        "SOL/PEPE": (2, average_price([confirmed[o] for o in pepe], 9, 6)),
        "USDC/WIF": (1, average_price([confirmed[wif]], 6, 9)),
        "SOL/Z0": (1, average_price([confirmed[z0]], 9, 0)),
    }
    for pair, (count, price) in expected.items():
        shown = by_pair[pair]["averageExecutionPrice"]
        assert by_pair[pair]["confirmed"] == count
        assert abs(Fraction(shown) - price) <= price / 10**17, (pair, shown, price)  # 18 digits, exact JSON
    assert stats["byStatus"] == {"confirmed": 5}
    assert stats_after_rebuild == stats

    assert [o["orderId"] for o in pages["PEPE"]] == pepe[::-1]  # newest first
    assert {o["tokenOutDecimals"] for o in pages["PEPE"]} == {6}
    assert [o["orderId"] for o in pages["WIF"]] == [wif]
    assert [o["orderId"] for o in pages["Z0"]] == [z0]
    assert pages["unknown"] == pages["sold"] == []

    wif_view, z0_view = views[wif], views[z0]
    assert (wif_view["tokenOutDecimals"], wif_view["amountOutRaw"]) == (9, confirmed[wif]["amountOutRaw"])
    assert Decimal(str(wif_view["amountOut"])) == Decimal(confirmed[wif]["amountOutRaw"]).scaleb(-9)
    assert (z0_view["amountInRaw"], z0_view["amountIn"]) == ("123456789", 0.123456789)
    assert Decimal(str(z0_view["amountOut"])) == Decimal(confirmed[z0]["amountOutRaw"])  # 0 decimals
    assert views[market]["tokenOutDecimals"] is None

    pairs = {order_id: stream[0]["pair"] for order_id, stream in messages.items()}
    assert pairs[pepe[0]] == {"base": "PEPE", "quote": "SOL", "unit": "SOL per PEPE"}
    assert pairs[wif] == {"base": "WIF", "quote": "USDC", "unit": "USDC per WIF"}
    assert pairs[z0] == {"base": "Z0", "quote": "SOL", "unit": "SOL per Z0"}
    assert pairs[market] == {"base": "SOL", "quote": "USDC", "unit": "USDC per SOL"}

    assert applied == sum(row["version"] for row in live)
    assert rebuilt == live
    assert {row["token_out_decimals"] for row in rebuilt} == {6, 9, 0, None}


async def test_a_min_liquidity_no_pool_could_hold_is_unprocessable_and_a_whole_number_float_delay_is_taken(
    backend,
):
    async with running_engine(engine_settings(backend)) as engine:
        await announce(engine)
        deeper_than_any = await engine.http.post(
            "/api/orders/execute",
            json={**SNIPER_ORDER, "minLiquidity": "10000000000"},  # 10^19 lamports
        )
        order_id = await submit_sniper(engine, maxDelayMs=5000.0)
        armed = (await engine.http.get(f"/api/orders/{order_id}/events")).json()[1]
    assert (deeper_than_any.status_code, deeper_than_any.json()["field"]) == (422, "minLiquidity")
    assert armed["maxDelayMs"] == 5000


async def test_a_launch_on_another_quote_token_runs_out_the_delay_of_an_order_it_cannot_fill(backend):
    async with running_engine(engine_settings(backend, **MANUAL_ROUNDS)) as engine:
        await announce(engine)
        with_delay = await submit_sniper(engine, maxDelayMs=1000)
        without = await submit_sniper(engine)
        await add_pool(engine, quote="USDC", quote_amount_raw=50_000 * USDC)  # PEPE/USDC only: no SOL pool
        launch = launched_at(await token_record(engine, "PEPE"))
        within = await trigger_round(engine, at=launch + timedelta(milliseconds=1000))
        past = await trigger_round(engine, at=launch + timedelta(milliseconds=1001))
        expired, _ = await engine.stream(with_delay)
        await project_everything(engine.services)
        still = await view(engine, without)

    assert within == Counter({TriggerOutcome.NOT_REACHED: 2})
    assert past == Counter({TriggerOutcome.EXPIRED: 1, TriggerOutcome.NOT_REACHED: 1})
    assert [m["type"] for m in expired] == ["OrderSubmitted", "TriggerArmed", "OrderExpired"]
    assert datetime.fromisoformat(expired[-1]["expiresAt"]) == launch + timedelta(milliseconds=1000)
    assert still["status"] == "waiting"
