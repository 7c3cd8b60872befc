"""Events the engine stored before amounts were exact (floats in whole tokens) read back as current events.

The stored dicts are written here as the old engine wrote them (`git show a11c8ba:domain/events.py`: msgspec's
builtins of the event, camelCase, tagged by `type`, floats as JSON numbers), and read through the store's own
decoding of a row (`eventstore.sql._event`), given the order's tokens as the store reads them from the
order's first event."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from domain.events import (
    Event,
    Fill,
    OrderConfirmed,
    OrderSubmitted,
    Quote,
    RouteLeg,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    VenueSelected,
)
from domain.order import Order
from domain.order_type import OrderType
from domain.status import OrderStatus
from eventstore.sql import _event
from eventstore.upcasting import OrderTokens, needs_order_tokens, upcast

ORDER_ID = "6f1c0a52-3c1e-4f7e-9a57-2b8f0d4b8c11"
TX_HASH = "4Zq8" + "1" * 84
SOL_USDC = OrderTokens("SOL", "USDC", 500_000_000)


def old_quote(
    venue: str, price: float, fee_bps: int, price_impact: float, amount_in: float
) -> dict[str, Any]:
    """A quote as the old engine computed and stored it (`quote_for` in a11c8ba's domain/routing.py)."""
    effective_price = price * (1 - fee_bps / 10_000) * (1 - price_impact)
    return {
        "venue": venue,
        "price": price,
        "feeBps": fee_bps,
        "effectivePrice": effective_price,
        "amountOut": amount_in * effective_price,
    }


def submitted_v1(amount_in: float, token_in: str = "SOL", token_out: str = "USDC") -> dict[str, Any]:
    """Before limit and sniper orders: no orderType."""
    return {
        "type": "OrderSubmitted",
        "tokenIn": token_in,
        "tokenOut": token_out,
        "amountIn": amount_in,
        "slippageBps": 50,
    }


def submitted_v2(amount_in: float) -> dict[str, Any]:
    return {**submitted_v1(amount_in), "orderType": "market"}


RAYDIUM_QUOTE = old_quote("raydium", 150.0, 25, 0.0005, 0.5)  # amountOut 74.77509375000001
METEORA_QUOTE = old_quote("meteora", 150.2, 20, 0.0005, 0.5)  # amountOut 74.9123251
SELECTED_V1 = {"type": "VenueSelected", "quotes": [RAYDIUM_QUOTE, METEORA_QUOTE], "selectedVenue": "meteora"}
BUILT_V1 = {
    "type": "TransactionBuilt",
    "venue": "meteora",
    "instructions": ["createWrappedSolAccount", "wrapSol", "swap", "closeWrappedSolAccount"],
    "minAmountOut": METEORA_QUOTE["amountOut"] * (1 - 50 / 10_000),  # 74.5377634745
}
CONFIRMED_V1 = {
    "type": "OrderConfirmed",
    "venue": "meteora",
    "txHash": TX_HASH,
    "executionPrice": 149.7,
    "amountOut": 74.85,
}


def read(stored: dict[str, Any], schema_version: int, tokens: OrderTokens | None = None) -> Event:
    """The event the store reads from a row holding `stored` (as JSON text) at `schema_version`."""
    return _event(stored["type"], msgspec.json.encode(stored).decode(), schema_version, tokens)


def tokens_of(first: dict[str, Any], schema_version: int) -> OrderTokens:
    """The order's tokens as the store reads them: from its first event, decoded from the row's JSON."""
    return OrderTokens.of(msgspec.json.decode(msgspec.json.encode(first)), schema_version)


def same_on_the_wire(upcast_event: Event, current: Event) -> None:
    assert upcast_event == current
    assert msgspec.json.encode(upcast_event) == msgspec.json.encode(
        current
    )  # the same digits, not just equal


# -- OrderSubmitted -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_in", "amount_in_raw"),
    [
        (0.5, 500_000_000),
        (0.0000000015, 2),  # 1.5 lamports: rounded half to even
        (0.0000000025, 2),  # 2.5 lamports: rounded half to even
        (0.1 + 0.2, 300_000_000),  # 0.30000000000000004: the float's noise is below a lamport
        (10_000.0, 10_000 * 10**9),
    ],
)
@pytest.mark.parametrize("schema_version", [1, 2])
def test_an_old_order_submitted_reads_as_the_order_the_engine_would_record_now(
    schema_version, amount_in, amount_in_raw
):
    stored = submitted_v1(amount_in) if schema_version == 1 else submitted_v2(amount_in)
    event = read(stored, schema_version)

    same_on_the_wire(event, Order.submit("market", "SOL", "USDC", 50, amount_in_raw=str(amount_in_raw)))
    assert isinstance(event, OrderSubmitted)
    assert event.order_type is OrderType.MARKET
    assert tokens_of(stored, schema_version) == OrderTokens("SOL", "USDC", amount_in_raw)


def test_an_old_amount_in_of_another_token_uses_that_tokens_decimals():
    event = read(submitted_v2(999_999.123456) | {"tokenIn": "USDC", "tokenOut": "SOL"}, 2)
    assert isinstance(event, OrderSubmitted)
    assert (event.amount_in, event.amount_in_raw) == (Decimal("999999.123456"), 999_999_123_456)


# -- the events that need the order's tokens -------------------------------------------------------------


def test_an_old_venue_selected_reads_as_a_route_of_one_leg_through_the_selected_venue():
    event = read(SELECTED_V1, 1, SOL_USDC)

    assert event == VenueSelected(
        quotes=(
            Quote(
                venue="raydium",
                pool="raydium",
                price=Decimal("150.0"),
                fee_bps=Decimal(25),
                effective_price=Decimal("149.55018750000002"),
                amount_out=Decimal("74.775094"),  # 74.77509375000001 rounded to USDC's 6 decimals
                amount_out_raw=74_775_094,
                price_impact_bps=Decimal("5.00"),  # the old linear impact, 0.0005
            ),
            Quote(
                venue="meteora",
                pool="meteora",
                price=Decimal("150.2"),
                fee_bps=Decimal(20),
                effective_price=Decimal("149.8246502"),
                amount_out=Decimal("74.912325"),
                amount_out_raw=74_912_325,
                price_impact_bps=Decimal("5.00"),
            ),
        ),
        selected_venue="meteora",
        route_plan=(
            RouteLeg(
                venue="meteora",
                pool="meteora",
                percent=100,
                amount_in=Decimal("0.5"),
                amount_in_raw=500_000_000,
                amount_out=Decimal("74.912325"),
                amount_out_raw=74_912_325,
            ),
        ),
        amount_out=Decimal("74.912325"),
        amount_out_raw=74_912_325,
        left_out=(),
    )


def test_an_old_venue_selected_of_a_usdc_order_counts_its_amounts_out_in_lamports():
    quote = old_quote("meteora", 1 / 150.2, 20, 0.0005, 75.0)  # amountOut 0.4980863848202398 SOL
    stored = {"type": "VenueSelected", "quotes": [quote], "selectedVenue": "meteora"}
    event = read(stored, 1, OrderTokens("USDC", "SOL", 75_000_000))

    assert isinstance(event, VenueSelected)
    assert (event.amount_out, event.amount_out_raw) == (Decimal("0.498086385"), 498_086_385)
    assert [(leg.amount_in, leg.amount_in_raw) for leg in event.route_plan] == [(Decimal(75), 75_000_000)]


def test_an_old_transaction_built_reads_with_its_minimum_in_base_units_and_its_instructions_as_they_were():
    event = read(BUILT_V1, 1, SOL_USDC)

    assert event == TransactionBuilt(
        venue="meteora",
        instructions=("createWrappedSolAccount", "wrapSol", "swap", "closeWrappedSolAccount"),
        min_amount_out=Decimal("74.537763"),  # 74.5377634745
        min_amount_out_raw=74_537_763,
    )


def test_an_old_order_confirmed_reads_with_one_fill_of_the_whole_order_at_the_venue():
    event = read(CONFIRMED_V1, 1, SOL_USDC)

    assert event == OrderConfirmed(
        venue="meteora",
        tx_hash=TX_HASH,
        execution_price=Decimal("149.7"),
        amount_out=Decimal("74.85"),
        amount_out_raw=74_850_000,
        fills=(
            Fill(
                venue="meteora",
                pool="meteora",
                amount_in=Decimal("0.5"),
                amount_in_raw=500_000_000,
                amount_out=Decimal("74.85"),
                amount_out_raw=74_850_000,
            ),
        ),
    )


def test_a_fill_of_an_order_below_a_lamport_gets_the_rounded_amount_in_of_its_order():
    tokens = tokens_of(submitted_v1(0.0000000015), 1)
    stored = CONFIRMED_V1 | {"executionPrice": 150.0, "amountOut": 0.000000225}
    event = read(stored, 1, tokens)

    assert isinstance(event, OrderConfirmed)
    assert [(f.amount_in_raw, f.amount_out_raw) for f in event.fills] == [
        (2, 0)
    ]  # 0.000000225 USDC: 0.225 units
    assert event.amount_out_raw == 0


def test_a_whole_old_history_folds_into_a_confirmed_order():
    first = submitted_v1(0.5)
    tokens = tokens_of(first, 1)
    stored: list[tuple[dict[str, Any], int]] = [
        (first, 1),
        ({"type": "RoutingStarted", "attempt": 1}, 1),
        (SELECTED_V1, 1),
        (BUILT_V1, 1),
        ({"type": "TransactionSubmitted", "venue": "meteora", "clientTxId": f"{ORDER_ID}:1"}, 1),
        (CONFIRMED_V1, 1),
    ]
    events = [
        read(data, version, tokens if needs_order_tokens(data["type"], version) else None)
        for data, version in stored
    ]

    assert [type(e) for e in events] == [
        OrderSubmitted,
        RoutingStarted,
        VenueSelected,
        TransactionBuilt,
        TransactionSubmitted,
        OrderConfirmed,
    ]
    order = Order.from_events(ORDER_ID, events)
    assert order.status == OrderStatus.CONFIRMED
    assert (
        order.amount_in_raw,
        order.route_amount_out_raw,
        order.min_amount_out_raw,
        order.amount_out_raw,
    ) == (
        500_000_000,
        74_912_325,
        74_537_763,
        74_850_000,
    )
    assert order.execution_price == Decimal("149.7")


# -- which shapes need the order's tokens ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "schema_version", "needed"),
    [
        ("VenueSelected", 1, True),
        ("TransactionBuilt", 1, True),
        ("OrderConfirmed", 1, True),
        ("OrderSubmitted", 1, False),
        ("OrderSubmitted", 2, False),
        ("RoutingStarted", 1, False),
        ("VenueSelected", VenueSelected.SCHEMA_VERSION, False),
        ("TransactionBuilt", TransactionBuilt.SCHEMA_VERSION, False),
        ("OrderConfirmed", OrderConfirmed.SCHEMA_VERSION, False),
    ],
)
def test_only_old_shapes_without_their_tokens_need_the_orders_first_event(type_name, schema_version, needed):
    assert needs_order_tokens(type_name, schema_version) is needed


@pytest.mark.parametrize("stored", [SELECTED_V1, BUILT_V1, CONFIRMED_V1], ids=lambda d: d["type"])
def test_upcasting_an_old_shape_without_the_orders_tokens_is_refused(stored):
    with pytest.raises(ValueError, match="needs the order's tokens"):
        upcast(dict(stored), 1)


def test_a_current_event_is_not_changed():
    current = msgspec.to_builtins(read(CONFIRMED_V1, 1, SOL_USDC))
    assert upcast(dict(current), OrderConfirmed.SCHEMA_VERSION) == current
