"""Execute an order: drive it from where its events left it to confirmed or failed.

Each step loads nothing new: it decides on the aggregate, applies the event and appends it with the
expected version. Decisions with nothing outside the engine between them (selecting the venue, building
and submitting the transaction) are appended together, in one round trip. Running this twice for one
order is safe: the second runner resumes from the log, and when two run at once, the one whose append
clashes stops quietly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from domain.events import Event, ExecutionAttemptFailed, OrderConfirmed, OrderFailed, VenueSelected
from domain.order import Order
from domain.retry import RetryPolicy
from domain.status import OrderStatus
from eventstore.base import ConcurrencyConflict, EventStore, RecordedEvent
from venues.base import SwapTransaction, Venue, VenueError

log = logging.getLogger(__name__)


class StartLimiter(Protocol):
    async def wait_for_turn(self) -> None:
        """Return once another order may start (the shared rate limit)."""
        ...


@dataclass
class Execution:
    """What executing orders needs: the log, the venues, the retry policy and the start limiter."""

    store: EventStore
    venues: list[Venue]
    policy: RetryPolicy
    limiter: StartLimiter
    jitter: random.Random = field(default_factory=random.Random)
    worker_id: str = ""  # recorded in each event's metadata: which process took the step
    # Binds the order and correlation ids to every log line written while the order runs.
    log_context: Callable[..., AbstractContextManager[Any]] = lambda **_: nullcontext()

    async def run(self, order_id: str) -> None:
        history = await self.store.read_stream(order_id)
        if not history:
            log.warning("order %s has no events; nothing to execute", order_id)
            return
        runner = _Runner(self, Order.from_events(order_id, [r.event for r in history]), history)
        try:
            with self.log_context(order_id=order_id, correlation_id=runner.correlation_id):
                await runner.run()
        except ConcurrencyConflict:
            log.info("order %s is being executed elsewhere; this delivery stops", order_id)


class _Runner:
    def __init__(self, execution: Execution, order: Order, history: list[RecordedEvent]) -> None:
        self.x = execution
        self.order = order
        self.last = history[-1]
        self.correlation_id = history[0].metadata.get("correlationId", order.order_id)

    async def run(self) -> None:
        while not self.order.is_terminal:
            await self.step()

    async def step(self) -> None:
        order = self.order
        match order.status:
            case OrderStatus.PENDING:
                await self.wait_before_attempt()
                await self.record(order.start_attempt)
            case OrderStatus.ROUTING if order.selected_venue is None:
                await self.route()
            # A log may stop between these (an earlier version appended them one by one).
            case OrderStatus.ROUTING:
                await self.record(order.build_transaction, order.submit_transaction)
            case OrderStatus.BUILDING:
                await self.record(order.submit_transaction)
            case OrderStatus.SUBMITTED:
                await self.execute()

    async def wait_before_attempt(self) -> None:
        if self.order.attempt == 0:
            await self.x.limiter.wait_for_turn()
            return
        # A retry: wait out the backoff the failure recorded, even if this run started after a crash.
        due = self.last.recorded_at.timestamp() + (self.order.last_retry_in_ms or 0) / 1000
        await asyncio.sleep(max(0.0, due - datetime.now(UTC).timestamp()))

    async def route(self) -> None:
        order = self.order
        results = await asyncio.gather(
            *(venue.quote(order.token_in, order.token_out, order.amount_in) for venue in self.x.venues),
            return_exceptions=True,
        )
        quotes = [q for q in results if not isinstance(q, BaseException)]
        if not quotes:
            reasons = "; ".join(str(e) for e in results)
            await self.fail(f"no venue quoted: {reasons}")
            return
        await self.record(
            lambda: order.select_venue(quotes), order.build_transaction, order.submit_transaction
        )

    async def execute(self) -> None:
        order = self.order
        venue = next(v for v in self.x.venues if v.name == order.selected_venue)
        quote = next(q for q in order.quotes if q.venue == order.selected_venue)
        assert order.client_tx_id is not None and order.min_amount_out is not None
        transaction = SwapTransaction(
            client_tx_id=order.client_tx_id,
            token_in=order.token_in,
            token_out=order.token_out,
            amount_in=order.amount_in,
            quoted_price=quote.effective_price,
            min_amount_out=order.min_amount_out,
            instructions=order.instructions,
        )
        try:
            fill = await venue.execute(transaction)
        except VenueError as error:
            await self.fail(error.reason)
            return
        await self.record(lambda: order.confirm(fill.tx_hash, fill.execution_price, fill.amount_out))

    async def fail(self, reason: str) -> None:
        await self.record(lambda: self.order.fail_attempt(reason, self.x.policy, self.x.jitter.random()))

    async def record(self, *decisions: Callable[[], Event]) -> None:
        """Take each decision on the state the one before left, then append them all as one.

        The aggregate runs ahead of the log until the append returns; if it fails, this runner stops
        and its aggregate goes with it."""
        expected_version = self.order.version
        events = []
        for decide in decisions:
            event = decide()
            self.order.apply(event)
            events.append(event)
        metadata: dict[str, Any] = {
            "correlationId": self.correlation_id,
            "attempt": self.order.attempt,
            "worker": self.x.worker_id,
        }
        recorded = await self.x.store.append(
            self.order.order_id, events, expected_version=expected_version, metadata=metadata
        )
        self.last = recorded[-1]
        for event in events:
            _log_step(event, {"order_id": self.order.order_id, "correlation_id": self.correlation_id})


def _log_step(event: Event, ids: dict[str, str]) -> None:
    """One line for each step of an order's story that a reader of the logs looks for."""
    match event:
        case VenueSelected(selected_venue=venue, quotes=quotes):
            chosen = next(q for q in quotes if q.venue == venue)
            others = {q.venue: q.effective_price for q in quotes if q.venue != venue}
            fields = {"venue": venue, "price": chosen.effective_price, "other_quotes": others}
            log.info("order routed", extra=ids | fields)
        case OrderConfirmed():
            fields = {"venue": event.venue, "tx_hash": event.tx_hash, "price": event.execution_price}
            log.info("order confirmed", extra=ids | fields | {"amount_out": event.amount_out})
        case ExecutionAttemptFailed():
            fields = {"attempt": event.attempt, "reason": event.reason, "retry_in_ms": event.retry_in_ms}
            log.info("order attempt failed", extra=ids | fields)
        case OrderFailed():
            log.info("order failed", extra=ids | {"reason": event.reason, "attempts": event.attempts})
