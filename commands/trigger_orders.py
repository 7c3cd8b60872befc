"""The trigger stage: decide, for a waiting order, whether the market has reached its limit or its expiry.

Load, decide, append, as every command: the order is read from the log, the decision taken on it, and the
event appended with the order's version as the expected one. So of a fire, a cancel and an expiry racing
for one order (several trigger watchers, a client's cancel), exactly one is appended; the others find the
order no longer waiting. A fired order is handed to the workers like a new market order (when that hand-over
fails, the recovery sweep finds it pending); it then routes afresh, its limit the transaction's floor.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum

from commands.queue import Enqueue
from domain.events import Event, OrderFailed, TriggerFired
from domain.order import Order
from domain.order_type import OrderType
from domain.pools import PoolState
from domain.pools.base import InsufficientLiquidity
from domain.route_plan import plan_route
from domain.routing import MIN_SPLIT_GAIN_BPS, route_records
from domain.tokens import Launch
from eventstore.base import ConcurrencyConflict, EventStore

log = logging.getLogger(__name__)


class TriggerOutcome(StrEnum):
    FIRED = "fired"
    EXPIRED = "expired"
    REFUSED = "refused"  # a sniper order whose token failed a check: failed
    NOT_REACHED = "not reached"  # still waiting: the best route pays less than its limit
    NOT_WAITING = "not waiting"  # fired, cancelled or expired already (here or elsewhere), or unknown


async def check_trigger(
    order_id: str,
    pools: Sequence[PoolState],
    now: datetime,
    store: EventStore,
    enqueue: Enqueue,
    worker_id: str = "",
    launches: Mapping[str, Launch] | None = None,
) -> TriggerOutcome:
    """Expire the order if it is due (by `now`); else fire it if the best route through `pools` (those of
    its pair, as they are now) pays at least its limit for the whole amountIn. A sniper order is decided
    on its token as `launches` (by symbol) shows it: failed by a check it fails, expired past its delay,
    fired through the pools deep enough. Raises what the store raises when it is unreachable."""
    history = await store.read_stream(order_id)
    order = Order.from_events(order_id, [recorded.event for recorded in history])
    if not order.is_waiting:
        return TriggerOutcome.NOT_WAITING
    event = decide_trigger(order, pools, now, launches or {})
    if event is None:
        return TriggerOutcome.NOT_REACHED
    metadata = {"correlationId": history[0].correlation_id, "worker": worker_id}
    try:
        await store.append(order_id, [event], expected_version=order.version, metadata=metadata)
    except ConcurrencyConflict:  # fired, cancelled or expired by another since it was read
        return TriggerOutcome.NOT_WAITING
    if isinstance(event, OrderFailed):
        log.info("order refused at launch", extra={"order_id": order_id, "reason": event.reason})
        return TriggerOutcome.REFUSED
    if not isinstance(event, TriggerFired):
        log.info("order expired", extra={"order_id": order_id})
        return TriggerOutcome.EXPIRED
    log.info(
        "order triggered",
        extra={"order_id": order_id, "price": str(event.price), "amount_out": str(event.amount_out)},
    )
    try:
        await enqueue(order_id)
    except Exception:  # the log is the outbox: the recovery sweep finds it pending
        log.exception("order %s fired but not enqueued; the recovery sweep will pick it up", order_id)
    return TriggerOutcome.FIRED


def decide_trigger(
    order: Order, pools: Sequence[PoolState], now: datetime, launches: Mapping[str, Launch]
) -> Event | None:
    """The event that ends a waiting order's wait now, or None while it goes on waiting."""
    if order.is_due_to_expire(now):
        return order.expire(now)
    pair = {order.token_in, order.token_out}
    pair_pools = [pool for pool in pools if {pool.token_x, pool.token_y} == pair]
    buy_by = None
    if order.order_type is OrderType.SNIPER:
        launch = launches.get(order.token_out)
        if launch is None or launch.launched_at is None:
            return None
        if not pair_pools:  # launched against another quote token only: nothing to buy, the delay runs
            return order.missed(launch, now)
        verdict = order.snipe(launch, now)
        if verdict is not None:
            return verdict
        pair_pools = [pool for pool in pair_pools if order.deep_enough(pool)]
        buy_by = order.deadline(launch)
    if not pair_pools:
        return None
    try:
        plan = plan_route(
            pair_pools,
            order.token_in,
            order.amount_in_raw,
            int(now.timestamp()),
            min_split_gain_bps=MIN_SPLIT_GAIN_BPS,
        )
    except InsufficientLiquidity:
        return None
    if not order.reaches_limit(plan.amount_out_raw):
        return None
    _, legs, _ = route_records(plan, pair_pools, order.input_token, order.output_token)
    return order.fire(legs, buy_by)
