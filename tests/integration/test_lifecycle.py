"""A market order from POST to confirmed, watched over a real WebSocket, on both backends."""

from __future__ import annotations

import re

from tests.harness import engine_settings, project_everything, running_engine

EXPECTED_TYPES = [
    "OrderSubmitted",
    "RoutingStarted",
    "VenueSelected",
    "TransactionBuilt",
    "TransactionSubmitted",
    "OrderConfirmed",
]
EXPECTED_STATUSES = ["pending", "routing", "routing", "building", "submitted", "confirmed"]
SIGNATURE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{87,88}$")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_order_streams_every_step_until_confirmed(backend):
    async with running_engine(engine_settings(backend)) as engine:
        order_id = await engine.submit()
        messages, close_code = await engine.stream(order_id)

        assert close_code == 1000
        assert [m["type"] for m in messages] == EXPECTED_TYPES
        assert [m["status"] for m in messages] == EXPECTED_STATUSES
        assert [m["version"] for m in messages] == [1, 2, 3, 4, 5, 6]
        assert {m["orderId"] for m in messages} == {order_id}
        assert all(ISO_UTC.match(m["timestamp"]) for m in messages)

        routing = messages[2]
        assert {q["venue"] for q in routing["quotes"]} == {"raydium", "meteora"}
        assert set(routing["quotes"][0]) == {
            "venue",
            "pool",
            "price",
            "feeBps",
            "effectivePrice",
            "amountOut",
            "amountOutRaw",
            "priceImpactBps",
        }
        # 0.5 SOL is too small to be worth splitting: the best pool takes it all.
        best = max(routing["quotes"], key=lambda q: int(q["amountOutRaw"]))
        (leg,) = routing["routePlan"]
        assert (leg["pool"], leg["percent"], leg["amountInRaw"]) == (best["pool"], 100, "500000000")
        assert routing["selectedVenue"] == best["venue"]
        assert messages[3]["instructions"] == [
            "createAssociatedTokenAccountIdempotent:wSOL",
            "transfer:wSOL",
            "syncNative:wSOL",
            f"swap:{best['pool']}",
            "closeAccount:wSOL",
        ]

        confirmed = messages[-1]
        assert SIGNATURE.match(confirmed["txHash"])
        assert confirmed["venue"] == routing["selectedVenue"]
        assert int(confirmed["amountOutRaw"]) >= int(messages[3]["minAmountOutRaw"])
        assert [fill["pool"] for fill in confirmed["fills"]] == [best["pool"]]
        assert confirmed["executionPrice"] > 0

        events = (await engine.http.get(f"/api/orders/{order_id}/events")).json()
        assert events == messages


async def test_read_model_answers_right_after_the_post_and_ends_confirmed(backend):
    async with running_engine(engine_settings(backend)) as engine:
        order_id = await engine.submit(tokenIn="USDC", tokenOut="SOL", amountIn=25)
        first = await engine.http.get(f"/api/orders/{order_id}")
        assert first.status_code == 200
        assert first.json()["orderId"] == order_id
        assert first.json()["tokenIn"] == "USDC"

        messages, _ = await engine.stream(order_id)
        await project_everything(engine.services)
        view = (await engine.http.get(f"/api/orders/{order_id}")).json()
        assert view["status"] == "confirmed"
        assert view["version"] == len(messages)
        assert view["txHash"] == messages[-1]["txHash"]
        assert view["selectedVenue"] == messages[-1]["venue"]
        assert view["attempts"] == 1
        pool = messages[2]["routePlan"][0]["pool"]
        assert messages[3]["instructions"] == [
            "createAssociatedTokenAccountIdempotent:wSOL",
            f"swap:{pool}",
            "closeAccount:wSOL",
        ]

        page = (await engine.http.get("/api/orders", params={"status": "confirmed"})).json()
        assert [o["orderId"] for o in page["orders"]] == [order_id]


async def test_unknown_and_malformed_order_ids_close_with_4404_and_4400(backend):
    async with running_engine(engine_settings(backend)) as engine:
        _, unknown = await engine.stream("6f1c0a52-3c1e-4f7e-9a57-2b8f0d4b8c11")
        _, malformed = await engine.stream("not-a-uuid")
        assert (unknown, malformed) == (4404, 4400)
        assert (await engine.http.get("/api/orders/6f1c0a52-3c1e-4f7e-9a57-2b8f0d4b8c11")).status_code == 404


async def test_health_names_each_dependency(backend):
    async with running_engine(engine_settings(backend)) as engine:
        response = await engine.http.get("/health")
        assert response.status_code == 200
        expected = {"database"} | ({"redis"} if backend["redis_url"] else set())
        assert set(response.json()["dependencies"]) == expected
        assert set(response.json()["dependencies"].values()) == {"up"}
