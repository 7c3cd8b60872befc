"""Limit orders in the domain: the limit read exactly (as a price or as the least amount out), the wait
ended by exactly one of a fire, a cancel or an expiry, and the limit as the transaction's floor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.events import OrderCancelled, OrderExpired, RouteLeg, TriggerArmed, TriggerFired
from domain.order import InvariantViolated, NotWaiting, Order, OrderRejected, OrderUnprocessable
from domain.status import OrderStatus
from domain.tokens import TOKENS

ORDER_ID = "0b7e3c1a-6f7e-4a57-9c11-2b8f0d4b8c11"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SOL, USDC = TOKENS["SOL"], TOKENS["USDC"]


def submitted(order_type: str = "limit", amount_in: str = "0.5"):
    return Order.submit(order_type, "SOL", "USDC", 50, amount_in=amount_in)


def armed(**limit) -> TriggerArmed:
    event = Order.arm(submitted(), NOW, **(limit or {"limit_price": Decimal(150)}))
    assert event is not None
    return event


def waiting_order(**limit) -> Order:
    return Order.from_events(ORDER_ID, [submitted(), armed(**limit)])


def route(amount_out_raw: int, amount_in_raw: int = 500_000_000) -> tuple[RouteLeg, ...]:
    return (
        RouteLeg(
            venue="raydium",
            pool="raydium-cpmm-SOL-USDC-1",
            percent=100,
            amount_in=SOL.value(amount_in_raw),
            amount_in_raw=amount_in_raw,
            amount_out=USDC.value(amount_out_raw),
            amount_out_raw=amount_out_raw,
        ),
    )


# -- the limit, read exactly ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "price", "floor_raw"),
    [
        ({"limit_price": Decimal(150)}, Decimal(150), 75_000_000),
        ({"limit_price": "150"}, Decimal(150), 75_000_000),
        # 150.0000001 x 0.5 = 75.00000005 USDC: one base unit more, never less than the price asks
        ({"limit_price": "150.0000001"}, Decimal("150.0000001"), 75_000_001),
        ({"taking_amount": Decimal(75)}, Decimal(150), 75_000_000),
        ({"taking_amount": "75.000001"}, Decimal("150.000002"), 75_000_001),
        ({"taking_amount_raw": "75000001"}, Decimal("150.000002"), 75_000_001),
        # 1 / 3 per SOL is shown rounded up, to 18 digits: the floor stays what was asked
        ({"taking_amount_raw": "1"}, Decimal("0.000002"), 1),
    ],
)
def test_the_limit_is_kept_as_the_least_amount_out_in_base_units(limit, price, floor_raw):
    event = armed(**limit)
    assert (event.limit_price, event.taking_amount_raw) == (price, floor_raw)
    assert event.taking_amount == USDC.value(floor_raw)


def test_a_price_that_does_not_divide_is_shown_rounded_up_never_down():
    event = Order.arm(submitted(amount_in="3"), NOW, taking_amount_raw="1000000")  # 1 USDC for 3 SOL
    assert event is not None
    assert event.limit_price == Decimal("0.333333333333333334")
    assert event.limit_price * 3 >= 1


@given(
    amount_in_raw=st.integers(min_value=1, max_value=10**13),
    price=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**6), places=6),
)
def test_the_floor_is_the_smallest_amount_out_at_or_above_the_price(amount_in_raw, price):
    order = Order.submit("limit", "SOL", "USDC", 50, amount_in_raw=str(amount_in_raw))
    event = Order.arm(order, NOW, limit_price=price)
    assert event is not None
    floor = event.taking_amount_raw
    exact = Fraction(price) * amount_in_raw * 10**6 / 10**9  # whole-token maths, in base units of USDC
    assert floor >= exact > floor - 1  # rounded up: even a price worth less than one base unit asks one


@pytest.mark.parametrize(
    ("limit", "field"),
    [
        ({}, "limitPrice"),
        ({"limit_price": Decimal(150), "taking_amount": Decimal(75)}, "takingAmount"),
        ({"limit_price": "0"}, "limitPrice"),
        ({"limit_price": Decimal(-1)}, "limitPrice"),
        ({"limit_price": Decimal("NaN")}, "limitPrice"),
        ({"limit_price": Decimal("Infinity")}, "limitPrice"),
        ({"limit_price": " 150"}, "limitPrice"),
        ({"limit_price": "1_50"}, "limitPrice"),
        ({"limit_price": "\uff11\uff15\uff10"}, "limitPrice"),  # full-width digits
        ({"limit_price": "1e3"}, "limitPrice"),
        ({"limit_price": "1." + "0" * 37 + "1"}, "limitPrice"),  # more than 38 digits
        ({"limit_price": "1" * 41}, "limitPrice"),  # longer than 40 characters
        ({"limit_price": "00.5"}, "limitPrice"),
        ({"limit_price": "0.0"}, "limitPrice"),
        ({"limit_price": Decimal("1E+400")}, "limitPrice"),
        ({"taking_amount": "75.0000001"}, "takingAmount"),  # more decimals than USDC has
        ({"taking_amount": "0"}, "takingAmount"),
        ({"taking_amount_raw": "075"}, "takingAmountRaw"),
        ({"taking_amount_raw": "7.5"}, "takingAmountRaw"),
        ({"taking_amount_raw": "9" * 20}, "takingAmountRaw"),  # more than any pool can pay
        ({"taking_amount_raw": "9" * 5000}, "takingAmountRaw"),
        ({"limit_price": Decimal(150), "expires_at": NOW}, "expiresAt"),
        ({"limit_price": Decimal(150), "expires_at": NOW - timedelta(seconds=1)}, "expiresAt"),
        ({"limit_price": Decimal(150), "expires_at": NOW + timedelta(days=366)}, "expiresAt"),
    ],
)
def test_a_limit_that_breaks_a_rule_is_refused_naming_its_field(limit, field):
    with pytest.raises(OrderRejected) as refused:
        Order.arm(submitted(), NOW, **limit)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("limit", "field"),
    [
        ({"limit_price": Decimal("1E+400")}, "limitPrice"),
        ({"limit_price": "1" + "0" * 30}, "limitPrice"),
        ({"taking_amount_raw": "9" * 20}, "takingAmountRaw"),
        ({"limit_price": Decimal(150), "expires_at": NOW}, "expiresAt"),
        ({"limit_price": Decimal(150), "expires_at": NOW + timedelta(days=366)}, "expiresAt"),
    ],
)
def test_a_limit_the_moment_or_the_pools_refuse_is_unprocessable(limit, field):
    with pytest.raises(OrderUnprocessable) as refused:
        Order.arm(submitted(), NOW, **limit)
    assert refused.value.field == field


def test_a_price_too_small_to_ask_one_base_unit_asks_one():
    event = Order.arm(submitted(), NOW, limit_price=Decimal("1E-100"))
    assert event is not None
    assert event.taking_amount_raw == 1


@pytest.mark.parametrize(
    ("limit", "field"),
    [
        ({"limit_price": Decimal(150)}, "limitPrice"),
        ({"taking_amount_raw": "75000000"}, "takingAmountRaw"),
        ({"expires_at": NOW + timedelta(hours=1)}, "expiresAt"),
    ],
)
def test_a_market_order_takes_no_limit_and_no_expiry(limit, field):
    with pytest.raises(OrderRejected) as refused:
        Order.arm(submitted("market"), NOW, **limit)
    assert refused.value.field == field
    assert Order.arm(submitted("market"), NOW) is None


# -- the wait, and exactly one way out of it --------------------------------------------------------------


def test_an_armed_order_waits_with_its_limit_and_expiry():
    expires_at = NOW + timedelta(hours=1)
    order = waiting_order(limit_price=Decimal(150), expires_at=expires_at)
    assert order.status is OrderStatus.WAITING
    assert (order.limit_price, order.taking_amount_raw, order.expires_at) == (150, 75_000_000, expires_at)


def test_a_route_at_the_limit_fires_and_one_below_does_not():
    order = waiting_order()
    assert not order.reaches_limit(74_999_999)
    assert order.reaches_limit(75_000_000)
    fired = order.fire(route(75_000_000))
    assert isinstance(fired, TriggerFired)
    assert (fired.amount_out_raw, fired.price) == (75_000_000, Decimal(150))
    order.apply(fired)
    assert order.status is OrderStatus.PENDING


def test_a_route_below_the_limit_is_never_fired_on():
    with pytest.raises(InvariantViolated):
        waiting_order().fire(route(74_999_999))


def test_a_route_that_does_not_take_the_whole_amount_is_not_fired_on():
    with pytest.raises(InvariantViolated):
        waiting_order().fire(route(80_000_000, amount_in_raw=400_000_000))


@pytest.mark.parametrize("end", ["fire", "cancel", "expire"])
def test_once_the_wait_has_ended_nothing_else_can_end_it(end):
    order = waiting_order(limit_price=Decimal(150), expires_at=NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=2)
    ends = {
        "fire": lambda: order.fire(route(75_000_000)),
        "cancel": order.cancel,
        "expire": lambda: order.expire(later),
    }
    order.apply(ends[end]())
    for other in ends.values():
        with pytest.raises(NotWaiting):
            other()


def test_a_market_order_cannot_be_cancelled():
    order = Order.from_events(ORDER_ID, [submitted("market")])
    with pytest.raises(NotWaiting) as refused:
        order.cancel()
    assert refused.value.status is OrderStatus.PENDING


def test_an_order_expires_at_its_expiry_not_before():
    expires_at = NOW + timedelta(minutes=1)
    order = waiting_order(limit_price=Decimal(150), expires_at=expires_at)
    assert not order.is_due_to_expire(expires_at - timedelta(microseconds=1))
    with pytest.raises(InvariantViolated):
        order.expire(expires_at - timedelta(microseconds=1))
    assert order.is_due_to_expire(expires_at)
    expired = order.expire(expires_at)
    assert expired == OrderExpired(expires_at=expires_at)
    order.apply(expired)
    assert order.status is OrderStatus.EXPIRED
    assert order.is_terminal


def test_an_order_without_expiry_never_expires():
    order = waiting_order()
    assert not order.is_due_to_expire(NOW + timedelta(days=3650))


def test_a_cancelled_order_has_ended():
    order = waiting_order()
    order.apply(order.cancel())
    assert order.status is OrderStatus.CANCELLED
    assert order.is_terminal
    assert isinstance(Order.from_events(ORDER_ID, [submitted(), armed(), OrderCancelled(reason="x")]), Order)


# -- the limit as the floor -------------------------------------------------------------------------------


def fired_and_routed(amount_out_raw: int, slippage_bps: int = 50) -> Order:
    order = Order.from_events(
        ORDER_ID, [Order.submit("limit", "SOL", "USDC", slippage_bps, amount_in="0.5"), armed()]
    )
    for decide in (
        lambda: order.fire(route(75_100_000)),
        order.start_attempt,
        lambda: order.select_route((), route(amount_out_raw), ()),
    ):
        order.apply(decide())
    return order


def test_the_transaction_never_pays_less_than_the_limit_whatever_the_slippage():
    # 75.1 USDC less 50 bps is 74.7245: below the limit's 75, so the floor is the limit
    assert fired_and_routed(75_100_000).build_transaction().min_amount_out_raw == 75_000_000


def test_a_route_well_above_the_limit_keeps_its_slippage_floor():
    # 80 USDC less 50 bps is 79.6: above the limit
    assert fired_and_routed(80_000_000).build_transaction().min_amount_out_raw == 79_600_000


def test_a_route_that_fell_below_the_limit_after_the_fire_says_so():
    order = waiting_order()
    assert order.below_limit(75_000_000) is None
    assert order.below_limit(74_900_000) == "the best route pays 74.9 USDC, below the limit's 75 USDC"
