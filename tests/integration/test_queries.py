"""Queries on the read table: filters, pagination under concurrent inserts, stats."""

from __future__ import annotations

import asyncio
from statistics import mean

from tests.harness import engine_settings, project_everything, running_engine

PAIRS = [("SOL", "USDC", 0.5), ("USDC", "SOL", 20.0), ("USDC", "BONK", 10.0), ("JUP", "USDT", 3.0)]


async def test_filters_select_by_status_pair_venue_and_time(backend):
    async with running_engine(engine_settings(backend)) as engine:
        ids = []
        for token_in, token_out, amount in PAIRS * 2:
            ids.append(await engine.submit(tokenIn=token_in, tokenOut=token_out, amountIn=amount))
        await asyncio.gather(*(engine.stream(order_id) for order_id in ids))
        await project_everything(engine.services)

        async def listed(**params) -> list[dict]:
            response = await engine.http.get("/api/orders", params={"limit": 200, **params})
            assert response.status_code == 200, response.text
            return response.json()["orders"]

        everything = await listed()
        usdc_in = await listed(tokenIn="USDC")
        usdc_to_sol = await listed(tokenIn="USDC", tokenOut="SOL")
        venues = {o["selectedVenue"] for o in everything}
        by_venue = {venue: await listed(venue=venue, status="confirmed") for venue in venues}
        middle = everything[len(everything) // 2]
        older = await listed(createdBefore=middle["createdAt"])
        newer = await listed(createdAfter=middle["createdAt"])

    assert len(everything) == len(ids)
    assert [o["createdAt"] for o in everything] == sorted((o["createdAt"] for o in everything), reverse=True)
    assert len(usdc_in) == 4 and {o["tokenIn"] for o in usdc_in} == {"USDC"}
    assert len(usdc_to_sol) == 2 and {o["tokenOut"] for o in usdc_to_sol} == {"SOL"}
    assert sum(len(v) for v in by_venue.values()) == len(everything)
    assert all(o["selectedVenue"] == venue for venue, page in by_venue.items() for o in page)
    assert len(older) + len(newer) + 1 == len(everything)
    assert all(o["createdAt"] < middle["createdAt"] for o in older)


async def test_pages_never_repeat_or_skip_while_orders_keep_arriving(backend):
    async with running_engine(engine_settings(backend)) as engine:
        before = [await engine.submit() for _ in range(12)]
        await project_everything(engine.services)
        seen: list[str] = []
        cursor = None
        while True:
            # Orders keep arriving (and being projected) between pages.
            await engine.submit()
            await project_everything(engine.services)
            params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
            page = (await engine.http.get("/api/orders", params=params)).json()
            seen += [o["orderId"] for o in page["orders"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break

    assert len(seen) == len(set(seen)), "an order was shown twice"
    assert set(before) <= set(seen), "an order that existed before paging was skipped"


async def test_stats_count_statuses_venues_prices_and_retries(backend):
    # Which order draws which failure depends on timing; at this rate a mix of outcomes is all but certain.
    settings = engine_settings(backend, mock_failure_rate=0.75, mock_seed=7, retry_base_ms=10)
    async with running_engine(settings) as engine:
        ids = [await engine.submit(tokenIn=t_in, tokenOut=t_out, amountIn=a) for t_in, t_out, a in PAIRS * 3]
        results = await asyncio.gather(*(engine.stream(order_id) for order_id in ids))
        await project_everything(engine.services)
        stats = (await engine.http.get("/api/stats")).json()

    finals = [messages[-1] for messages, _ in results]
    confirmed = [m for m in finals if m["type"] == "OrderConfirmed"]
    failed = [m for m in finals if m["type"] == "OrderFailed"]
    retries = sum(1 for messages, _ in results for m in messages if m["type"] == "ExecutionAttemptFailed")
    assert stats["total"] == len(ids)
    assert stats["byStatus"] == {
        k: v for k, v in {"confirmed": len(confirmed), "failed": len(failed)}.items() if v
    }
    assert stats["successRate"] == len(confirmed) / len(ids)
    assert sum(stats["confirmedByVenue"].values()) == len(confirmed)
    assert stats["retries"] == retries
    assert retries > 0 and failed and confirmed, "the seed should give a mix of outcomes"
    prices: dict[str, list[float]] = {}
    for (messages, _), (t_in, t_out, _a) in zip(results, PAIRS * 3, strict=True):
        if messages[-1]["type"] == "OrderConfirmed":
            prices.setdefault(f"{t_in}/{t_out}", []).append(messages[-1]["executionPrice"])
    assert {p["pair"]: round(p["averageExecutionPrice"], 6) for p in stats["pairs"]} == {
        pair: round(mean(values), 6) for pair, values in prices.items()
    }


async def test_stats_count_order_types_and_waiting_orders_and_price_a_launched_token_s_pair(backend):
    sniped = {
        "venue": "raydium",
        "quoteToken": "SOL",
        "amountRaw": str(10**15),
        "quoteAmountRaw": str(50 * 10**9),
    }
    async with running_engine(engine_settings(backend, mock_seed=7)) as engine:
        market_id = await engine.submit()
        await engine.stream(market_id)
        waiting = [
            await engine.submit(
                orderType="limit", limitPrice="1000", amountIn="0.5", tokenIn="SOL", tokenOut="USDC"
            )
            for _ in range(2)
        ]
        assert (await engine.http.post(f"/api/orders/{waiting[0]}/cancel", json={})).status_code == 200
        assert (
            await engine.http.post("/market/tokens", json={"symbol": "PEPE", "decimals": 6})
        ).status_code == 201
        sniper_id = await engine.submit(orderType="sniper", tokenOut="PEPE", amountIn="0.2", slippageBps=500)
        assert (await engine.http.post("/market/tokens/PEPE/pools", json=sniped)).status_code == 201
        messages, _ = await engine.stream(sniper_id)
        await project_everything(engine.services)
        stats = (await engine.http.get("/api/stats")).json()
        waiting_page = (await engine.http.get("/api/orders?status=waiting")).json()

    assert messages[-1]["type"] == "OrderConfirmed", messages[-1]
    assert stats["byOrderType"] == {"market": 1, "limit": 2, "sniper": 1}
    assert stats["byStatus"] == {"confirmed": 2, "waiting": 1, "cancelled": 1}
    assert stats["total"] == 4 and stats["successRate"] == 1.0
    assert [o["orderId"] for o in waiting_page["orders"]] == [waiting[1]]
    (pepe,) = [p for p in stats["pairs"] if p["pair"] == "SOL/PEPE"]
    # Whole PEPE per whole SOL: the pool started at 1e9 PEPE for 50 SOL; one buy, fees and impact in.
    assert pepe["confirmed"] == 1
    assert (
        abs(pepe["averageExecutionPrice"] - messages[-1]["executionPrice"])
        <= 1e-9 * pepe["averageExecutionPrice"]
    )
    assert 1.5e7 < pepe["averageExecutionPrice"] < 2e7
