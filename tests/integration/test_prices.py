"""How a price reads, over the API: the read model's documentation gives executionPrice's direction and the
pair's orientation, and each order's first message says which token of its pair is the base."""

from __future__ import annotations

from decimal import Decimal

from domain.pairs import pair_of
from tests.harness import engine_settings, running_engine


async def test_the_read_model_documents_execution_price_s_direction_and_unit(sqlite_url):
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        schema = (await engine.http.get("/schema/openapi.json")).json()
    (view,) = [s for name, s in schema["components"]["schemas"].items() if name.endswith("OrderView")]
    described = view["properties"]["executionPrice"]["description"]
    for words in ("tokenOut received per tokenIn", "USDC → SOL", "USDC per SOL", "quote", "base", "`pair`"):
        assert words in described, (words, described)


async def test_each_order_s_first_message_names_its_pair_the_same_both_ways(sqlite_url):
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        swaps = [("SOL", "USDC", 0.5), ("USDC", "SOL", 80), ("BONK", "USDT", 2_000_000), ("SOL", "JUP", 1)]
        for token_in, token_out, amount in swaps:
            order_id = await engine.submit(tokenIn=token_in, tokenOut=token_out, amountIn=amount)
            messages, _ = await engine.stream(order_id)
            pair = pair_of(token_in, token_out)
            assert messages[0]["pair"] == {"base": pair.base, "quote": pair.quote, "unit": pair.unit}
            assert all("pair" not in m for m in messages[1:])
            assert (await engine.http.get(f"/api/orders/{order_id}/events")).json()[0]["pair"] == messages[0][
                "pair"
            ]
            # Both directions of one market read about the same in the pair's unit.
            confirmed = messages[-1]
            assert confirmed["type"] == "OrderConfirmed", confirmed
            shown = pair.price(token_in, Decimal(str(confirmed["executionPrice"])))
            if pair.unit == "USDC per SOL":
                assert 100 < shown < 200, shown
