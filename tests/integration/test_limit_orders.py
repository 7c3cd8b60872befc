"""Limit orders through the whole engine, in both modes: armed at submission (`waiting`), fired when the
market's price reaches the limit and not before, executed as a market order never below its limit; or
cancelled, or expired. The market's price is moved by the test, with outside swaps (POST /market/swaps)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from commands.trigger_orders import TriggerOutcome
from tests import market_moves
from tests.harness import Engine, engine_settings, project_everything, running_engine

LIMIT_ORDER = {
    "orderType": "limit",
    "tokenIn": "SOL",
    "tokenOut": "USDC",
    "amountIn": "0.5",
    "slippageBps": 50,
}
SEED = {"mock_seed": 7}


async def best_spot(engine: Engine) -> Decimal:
    """USDC per SOL at the best SOL/USDC pool of the market inside the engine, before fees."""
    return await market_moves.best_spot(engine.http, "/market")


async def push_sol_price(engine: Engine, up: Decimal) -> None:
    """Buy SOL with USDC in every SOL/USDC pool until each pool's spot price is `up` (a fraction) higher."""
    await market_moves.push_sol_price(engine.http, up, "/market")


async def submit_limit(engine: Engine, **changes: Any) -> str:
    response = await engine.http.post("/api/orders/execute", json={**LIMIT_ORDER, **changes})
    assert response.status_code == 201, response.text
    return response.json()["orderId"]


async def cancel(engine: Engine, order_id: str) -> Any:
    # JSON, as every command (a page of another site cannot send one unless CORS allows it).
    return await engine.http.post(f"/api/orders/{order_id}/cancel", json={})


async def trigger_round(engine: Engine) -> Counter[TriggerOutcome]:
    """One round of a trigger watcher on the index as the log has it now."""
    await project_everything(engine.services)
    return await engine.services.make_trigger_watcher().run_round()


async def test_a_limit_order_waits_fires_when_the_price_reaches_it_and_never_takes_less(backend):
    async with running_engine(engine_settings(backend, **SEED)) as engine:
        limit_price = (await best_spot(engine) * Decimal("1.005")).quantize(Decimal("0.01"))
        order_id = await submit_limit(engine, limitPrice=str(limit_price))

        assert (await trigger_round(engine))[TriggerOutcome.FIRED] == 0
        view = (await engine.http.get(f"/api/orders/{order_id}")).json()
        assert (view["status"], view["limitPrice"], view["takingAmountRaw"]) == (
            "waiting",
            float(limit_price),
            str(int(limit_price * Decimal("0.5") * 10**6)),
        )
        waiting = (await engine.http.get("/api/orders", params={"status": "waiting"})).json()["orders"]
        assert [order["orderId"] for order in waiting] == [order_id]

        await push_sol_price(engine, Decimal("0.02"))
        messages, close_code = await engine.stream(order_id)

    assert close_code == 1000
    assert [m["status"] for m in messages[:3]] == ["pending", "waiting", "pending"]
    assert [m["type"] for m in messages[:3]] == ["OrderSubmitted", "TriggerArmed", "TriggerFired"]
    armed, fired, confirmed = messages[1], messages[2], messages[-1]
    built = next(m for m in messages if m["type"] == "TransactionBuilt")
    floor = int(armed["takingAmountRaw"])
    assert Decimal(str(armed["limitPrice"])) == limit_price
    assert int(fired["amountOutRaw"]) >= floor
    assert int(built["minAmountOutRaw"]) >= floor
    assert confirmed["type"] == "OrderConfirmed"
    assert int(confirmed["amountOutRaw"]) >= floor
    assert Decimal(str(confirmed["executionPrice"])) >= limit_price


async def test_a_limit_given_as_the_least_amount_out_in_base_units(backend):
    async with running_engine(engine_settings(backend, **SEED)) as engine:
        order_id = await submit_limit(engine, takingAmountRaw="1")  # reached at once
        messages, _ = await engine.stream(order_id)
    assert messages[1]["takingAmountRaw"] == "1"
    assert messages[-1]["type"] == "OrderConfirmed"


async def test_cancel_while_waiting_ends_the_order_and_only_once(backend):
    async with running_engine(engine_settings(backend, **SEED)) as engine:
        order_id = await submit_limit(engine, limitPrice="100000")
        cancelled, again = await cancel(engine, order_id), await cancel(engine, order_id)
        messages, close_code = await engine.stream(order_id)
        await project_everything(engine.services)
        view = (await engine.http.get(f"/api/orders/{order_id}")).json()

    assert (cancelled.status_code, cancelled.json()) == (200, {"orderId": order_id, "status": "cancelled"})
    assert again.status_code == 409
    assert again.json()["status"] == "cancelled"
    assert again.json()["error"] == "not_waiting"
    assert [m["type"] for m in messages] == ["OrderSubmitted", "TriggerArmed", "OrderCancelled"]
    assert (messages[-1]["status"], close_code, view["status"]) == ("cancelled", 1000, "cancelled")


async def test_cancel_after_the_fire_or_of_a_market_order_answers_409_with_the_status(backend):
    async with running_engine(engine_settings(backend, **SEED)) as engine:
        fired = await submit_limit(engine, takingAmountRaw="1")
        await engine.stream(fired)
        market = await engine.submit()
        await engine.stream(market)
        answers = [await cancel(engine, order_id) for order_id in (fired, market)]
        unknown = await cancel(engine, "00000000-0000-4000-8000-000000000000")
        malformed = await cancel(engine, "not-an-id")

    assert [(a.status_code, a.json()["status"]) for a in answers] == [(409, "confirmed"), (409, "confirmed")]
    assert (unknown.status_code, malformed.status_code) == (404, 400)


async def test_a_waiting_order_expires_at_its_expiry(backend):
    async with running_engine(engine_settings(backend, **SEED)) as engine:
        expires_at = datetime.now(UTC) + timedelta(seconds=1)
        order_id = await submit_limit(engine, limitPrice="100000", expiresAt=expires_at.isoformat())
        messages, close_code = await engine.stream(order_id)

    assert [m["type"] for m in messages] == ["OrderSubmitted", "TriggerArmed", "OrderExpired"]
    assert messages[-1]["status"] == "expired"
    assert datetime.fromisoformat(messages[-1]["timestamp"]) >= expires_at
    assert close_code == 1000


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "limitPrice"),
        ({"limitPrice": "150", "takingAmountRaw": "1"}, 400, "takingAmountRaw"),
        ({"limitPrice": "-1"}, 400, "limitPrice"),
        ({"limitPrice": "1e3"}, 400, "limitPrice"),
        ({"limitPrice": 0}, 400, "limitPrice"),
        ({"takingAmount": "1.0000001"}, 400, "takingAmount"),
        ({"takingAmountRaw": "01"}, 400, "takingAmountRaw"),
        ({"limitPrice": "150", "expiresAt": "tomorrow"}, 400, "expiresAt"),
        ({"limitPrice": "150", "orderType": "market"}, 400, "limitPrice"),
        # Well formed, refused for the moment it is sent at or what the pools could pay.
        ({"limitPrice": "150", "expiresAt": "2020-01-01T00:00:00Z"}, 422, "expiresAt"),
        ({"limitPrice": "150", "expiresAt": "2999-01-01T00:00:00Z"}, 422, "expiresAt"),
        ({"limitPrice": "1" + "0" * 30}, 422, "limitPrice"),
    ],
)
async def test_a_bad_limit_is_refused_naming_its_field_and_records_nothing(backend, body, status, field):
    async with running_engine(engine_settings(backend)) as engine:
        response = await engine.http.post("/api/orders/execute", json={**LIMIT_ORDER, **body})
        await project_everything(engine.services)
        page = (await engine.http.get("/api/orders")).json()
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert page["orders"] == []
