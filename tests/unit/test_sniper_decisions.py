"""A waiting sniper order's decisions on its token's launch, pure: refused by a check, expired past its
delay (also when its token launched against another quote token only), or left waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from commands.trigger_orders import decide_trigger
from domain.events import OrderExpired, OrderFailed, TriggerFired
from domain.order import Order, OrderRejected, OrderUnprocessable
from domain.pools import CpmmPool
from domain.tokens import Launch

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
AUTHORITY = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


def launch(launched_at: datetime | None = NOW, **authorities: str) -> Launch:
    return Launch(
        symbol="PEPE",
        decimals=6,
        mint_authority=authorities.get("mint"),
        freeze_authority=authorities.get("freeze"),
        launched_at=launched_at,
    )


def waiting(**sniper) -> Order:
    submitted = Order.submit("sniper", "SOL", "PEPE", 50, amount_in="0.5")
    armed = Order.arm(submitted, NOW - timedelta(minutes=1), launch=launch(None), **sniper)
    assert armed is not None
    return Order.from_events("o-1", [submitted, armed])


@pytest.mark.parametrize(
    ("after_ms", "expired"), [(0, False), (1000, False), (1001, True), (3_600_000, True)]
)
def test_the_delay_runs_from_the_launch_and_ends_the_wait_just_past_it(after_ms, expired):
    order = waiting(max_delay_ms=1000)
    decision = order.missed(launch(), NOW + timedelta(milliseconds=after_ms))
    assert decision == (OrderExpired(expires_at=NOW + timedelta(seconds=1)) if expired else None)


def test_without_a_delay_or_a_launch_nothing_runs_out():
    assert waiting().missed(launch(), NOW + timedelta(days=30)) is None
    assert waiting(max_delay_ms=1).missed(launch(None), NOW + timedelta(days=30)) is None


def test_a_token_launched_against_another_quote_only_expires_the_order_past_its_delay_and_no_sooner():
    order = waiting(max_delay_ms=1000)
    launches = {"PEPE": launch(freeze=AUTHORITY)}  # not refused: it has nothing to buy from yet
    assert decide_trigger(order, [], NOW + timedelta(milliseconds=1000), launches) is None
    assert isinstance(decide_trigger(order, [], NOW + timedelta(milliseconds=1001), launches), OrderExpired)
    assert decide_trigger(waiting(), [], NOW + timedelta(days=1), launches) is None


@pytest.mark.parametrize(
    ("authorities", "reason"),
    [
        ({"mint": AUTHORITY}, f"refused: PEPE's mint authority is not renounced ({AUTHORITY})"),
        ({"freeze": AUTHORITY}, f"refused: PEPE has a freeze authority ({AUTHORITY})"),
    ],
)
def test_a_check_refuses_before_the_delay_is_looked_at(authorities, reason):
    decision = waiting(max_delay_ms=1).snipe(launch(**authorities), NOW + timedelta(hours=1))
    assert isinstance(decision, OrderFailed) and decision.reason == reason


@pytest.mark.parametrize(
    ("liquidity", "error"),
    [(Decimal(-1), OrderRejected), ("0.0000000001", OrderRejected), ("10000000000", OrderUnprocessable)],
)
def test_a_min_liquidity_below_zero_finer_than_the_token_or_beyond_any_pool_is_refused(liquidity, error):
    with pytest.raises(error) as refused:
        waiting(min_liquidity=liquidity)
    assert refused.value.field == "minLiquidity"
    assert type(refused.value) is error


def test_min_liquidity_is_kept_in_base_units_and_zero_by_default():
    assert (waiting(min_liquidity="10").min_liquidity_raw, waiting().min_liquidity_raw) == (10 * 10**9, 0)


def pepe_pool() -> CpmmPool:
    """PEPE's first pool: 1e9 PEPE (6 decimals) against 50 SOL."""
    return CpmmPool(
        pool_id="raydium-cpmm-PEPE-SOL-1",
        venue="raydium",
        token_x="PEPE",
        token_y="SOL",
        decimals_x=6,
        decimals_y=9,
        reserve_x=10**15,
        reserve_y=50 * 10**9,
    )


def test_a_sniper_order_fires_with_its_deadline_so_no_retry_buys_later():
    order = waiting(max_delay_ms=1000)
    fired = decide_trigger(order, [pepe_pool()], NOW + timedelta(milliseconds=400), {"PEPE": launch()})
    assert isinstance(fired, TriggerFired) and fired.buy_by == NOW + timedelta(seconds=1)
    order.apply(fired)

    assert order.too_late(NOW + timedelta(seconds=1)) is None
    too_late = order.too_late(NOW + timedelta(milliseconds=1001))
    assert too_late == OrderFailed(
        reason="not bought within maxDelayMs (1000 ms) of PEPE's launch", attempts=0
    )


def test_a_sniper_order_without_a_delay_has_no_deadline_after_firing():
    order = waiting()
    fired = decide_trigger(order, [pepe_pool()], NOW + timedelta(days=1), {"PEPE": launch()})
    assert isinstance(fired, TriggerFired) and fired.buy_by is None
    order.apply(fired)
    assert order.too_late(NOW + timedelta(days=365)) is None
