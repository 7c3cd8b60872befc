"""Execute an order: drive it from where its events left it to confirmed or failed.

Each step loads nothing new: it decides on the aggregate, applies the event and appends it with the
expected version. Decisions with nothing outside the engine between them (selecting the venue, building
and submitting the transaction) are appended together, in one round trip. Running this twice for one
order is safe: the second runner resumes from the log, and when two run at once, the one whose append
clashes stops quietly.

Routing reads every venue's pools from the chain at once (each within `quote_timeout_s`; a venue that fails
is left out of the attempt, and the decision says so) and routes on them with the pools' own maths: one pool,
or a split when that pays more. The transaction is one per attempt, with one id: before sending it, and
whenever the chain's answer is lost (a timeout, a crash), the runner asks the chain what became of that id,
for as long as the chain gives no answer. Only a definite answer lets a new attempt start: dropped, or not
landed and past its expiry (the chain never lands an expired transaction). Before each new attempt the last
one's transaction is asked about again, in case a crashed run left it unrecorded: if it landed, it confirms
the order. So a swap never lands twice for one order.

Errors, by whose they are:
- the chain's (`venues.base.VENUE_FAILURES`): a failed attempt with the chain's reason, retried with backoff;
- ours (any other error of a chain adapter, a broken invariant): `EngineFault`; the run is logged with its
  traceback and recorded as `ExecutionCrashed`, and after the retry policy's `max_crashed_runs` the order
  fails, so the recovery sweep never starts a poison order over and over;
- the infrastructure's (the log or Redis unreachable): raised to the worker, which holds the delivery; the
  order is resumed from the log later.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from commands.clock import Clock, SystemClock
from domain.events import (
    Event,
    ExecutionAttemptFailed,
    LeftOut,
    OrderConfirmed,
    OrderFailed,
    TransactionSubmitted,
    VenueSelected,
)
from domain.order import InvariantViolated, Order
from domain.order_type import OrderType
from domain.pools import PoolState
from domain.pools.base import InsufficientLiquidity
from domain.retry import RetryPolicy
from domain.route_plan import plan_route
from domain.routing import MIN_SPLIT_GAIN_BPS, route_records
from domain.status import OrderStatus
from eventstore.base import ConcurrencyConflict, EventStore, RecordedEvent
from venues.base import VENUE_FAILURES, failure_reason
from venues.chain import TRANSACTION_LIFETIME_S, Chain, Dropped, Landed, SwapLeg, SwapTransaction

log = logging.getLogger(__name__)
T = TypeVar("T")
# A transaction is taken as expired only this long after its expiry by our clock: the chain decides by its
# own, which may be behind ours.
EXPIRY_GRACE_S = 30


class StartLimiter(Protocol):
    async def wait_for_turn(self) -> None:
        """Return once another order may start (the shared rate limit)."""
        ...


class EngineFault(Exception):
    """An error of the engine's own while running an order; `__cause__` is the original error, if any."""

    @property
    def reason(self) -> str:
        """What the order's events say: `internal error: KeyError: 'price'`."""
        if self.__cause__ is None:
            return f"internal error: {self}"
        return f"internal error: {type(self.__cause__).__name__}: {self.__cause__}"


@dataclass
class Execution:
    """What executing orders needs: the log, the chain, the retry policy, the start limiter and the clock."""

    store: EventStore
    chain: Chain
    policy: RetryPolicy
    limiter: StartLimiter
    clock: Clock = field(default_factory=SystemClock)
    quote_timeout_s: float = 2.0  # a venue whose pools take longer is left out of the attempt
    status_poll_s: float = 1.0  # while the chain's answer about a sent transaction is lost, ask again after
    jitter: random.Random = field(default_factory=random.Random)
    worker_id: str = ""  # recorded in each event's metadata: which process took the step
    # Binds the order and correlation ids to every log line written while the order runs.
    log_context: Callable[..., AbstractContextManager[Any]] = lambda **_: nullcontext()
    # Set when the worker stops: each run ends at its next event (a step in progress appends what it was
    # about to; a wait for a backoff or the rate limit ends at once), leaving the order to another worker.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def unless_stopping(self, waiting: Awaitable[None]) -> bool:
        """Await `waiting`: True once it is done; False, with it cancelled, if the worker stops first."""
        wait = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({wait, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (wait, stop):
                task.cancel()
        if wait.done() and not wait.cancelled():
            wait.result()  # its error, if it failed
            return True
        return False

    async def run(self, order_id: str) -> None:
        history = await self.store.read_stream(order_id)
        if not history:
            log.warning("order %s has no events; nothing to execute", order_id)
            return
        runner = _Runner(self, history)
        try:
            with self.log_context(order_id=order_id, correlation_id=runner.correlation_id):
                await runner.run()
        except ConcurrencyConflict:
            log.info("order %s is being executed elsewhere; this delivery stops", order_id)


class _Runner:
    def __init__(self, execution: Execution, history: list[RecordedEvent]) -> None:
        self.execution = execution
        self.order_id = history[0].order_id
        self.correlation_id = history[0].correlation_id
        # The transaction this run recorded as submitted and has not sent yet: the chain cannot know it,
        # so it is sent without asking first (any other is asked about: a run before may have sent it).
        self.unsent: str | None = None
        self.resume(history)

    def resume(self, history: list[RecordedEvent]) -> None:
        self.order = Order.from_events(self.order_id, [r.event for r in history])
        self.last = history[-1]

    @property
    def ids(self) -> dict[str, str]:
        return {"order_id": self.order_id, "correlation_id": self.correlation_id}

    async def run(self) -> None:
        # A waiting order is the trigger stage's until it fires (commands/trigger_orders.py).
        while not (self.order.is_terminal or self.order.is_waiting):
            if self.execution.stopping.is_set():
                log.info("order %s left at version %d: this worker stops", self.order_id, self.order.version)
                return
            try:
                await self.step()
            except EngineFault as fault:
                await self.record_crash(fault)

    async def step(self) -> None:
        """One step of the order's own kind of execution."""
        match self.order.order_type:
            case OrderType.LIMIT | OrderType.SNIPER if not self.order.armed:  # a log no code of ours wrote:
                # run, it would ignore the limit or the checks it was never given
                raise EngineFault(f"a {self.order.order_type} order never armed cannot be executed")
            case OrderType.MARKET | OrderType.LIMIT | OrderType.SNIPER:  # once fired, as a market order
                await self.market_step()
            case other:  # an order type accepted by a newer engine, or a log no code of ours wrote
                raise EngineFault(f"{other} orders cannot be executed yet")

    async def market_step(self) -> None:
        order = self.order
        match order.status:
            case OrderStatus.PENDING:
                if not await self.execution.unless_stopping(self.wait_before_attempt()):
                    return  # nothing was started: the next worker waits out the rest
                if not await self.landed_after_all():
                    now = self.execution.clock.now()  # a sniper order past its buy_by ends instead
                    await self.record(lambda: order.too_late(now) or order.start_attempt())
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
        # After a failed attempt or a crashed run: wait out the backoff it recorded, even if this run
        # started after a crash of its own (the order is pending, so the last event is that failure).
        if self.order.last_retry_in_ms is not None:
            clock = self.execution.clock
            due = self.last.recorded_at.timestamp() + self.order.last_retry_in_ms / 1000
            await clock.sleep(max(0.0, due - clock.now().timestamp()))
        if self.order.attempt == 0:  # the order's first start counts against the shared rate limit
            await self.execution.limiter.wait_for_turn()

    async def route(self) -> None:
        order = self.order
        pools: list[PoolState] = []
        left_out: list[LeftOut] = []
        venues = self.execution.chain.venues
        for venue, result in zip(venues, await self.pools(venues), strict=True):
            if isinstance(result, list):
                pools.extend(result)
            elif isinstance(result, VENUE_FAILURES):
                left_out.append(LeftOut(venue=venue, reason=failure_reason(result)))
                log.warning(
                    "venue left out of this attempt",
                    extra=self.ids | {"venue": venue, "reason": failure_reason(result)},
                )
            elif isinstance(result, Exception):
                raise EngineFault(f"{venue} failed to answer with its pools") from result
            else:  # a cancellation, or the process exiting: not the order's fault
                raise result
        # A sniper order's minLiquidity holds for its execution as for its trigger: a thin pool, however
        # well it pays, is one its owner can be rugged in.
        deep = [pool for pool in pools if order.deep_enough(pool)]
        shallow = "no pool holds the order's minLiquidity" if pools and not deep else None
        pools = deep
        if not pools:
            reasons = (
                "; ".join(f"{o.venue}: {o.reason}" for o in left_out) or shallow or "no pool trades this pair"
            )
            await self.fail(f"no venue quoted: {reasons}")
            return
        now = int(self.execution.clock.now().timestamp())
        try:
            plan = plan_route(
                pools, order.token_in, order.amount_in_raw, now, min_split_gain_bps=MIN_SPLIT_GAIN_BPS
            )
        except InsufficientLiquidity:  # too small to buy anything, or more than the pools hold: not retried
            reason = f"the pools cannot pay out for {order.input_token.show(order.amount_in_raw)}"
            await self.record(lambda: order.abandon(reason))
            return
        below_limit = order.below_limit(plan.amount_out_raw)
        if below_limit is not None:  # the price moved back since the trigger fired: try again later
            await self.fail(below_limit)
            return
        quotes, legs, short = route_records(plan, pools, order.input_token, order.output_token)
        await self.record(
            lambda: order.select_route(quotes, legs, (*left_out, *short)),
            order.build_transaction,
            order.submit_transaction,
        )

    async def pools(self, venues: tuple[str, ...]) -> list[list[PoolState] | BaseException]:
        """Every venue's pools for the order's pair, or what reading them raised instead."""
        order, chain, timeout = self.order, self.execution.chain, self.execution.quote_timeout_s
        return await asyncio.gather(
            *(
                asyncio.wait_for(chain.pools(venue, order.token_in, order.token_out), timeout)
                for venue in venues
            ),
            return_exceptions=True,
        )

    def transaction(self) -> SwapTransaction:
        """The attempt's transaction, the same however often it is rebuilt: it expires a fixed time after
        it was first recorded as submitted."""
        order = self.order
        if order.client_tx_id is None or order.min_amount_out_raw is None:
            raise EngineFault("a submitted order has no transaction") from InvariantViolated(order.order_id)
        submitted_at = int(self.last.recorded_at.timestamp())
        return SwapTransaction(
            client_tx_id=order.client_tx_id,
            order_id=order.order_id,
            token_in=order.token_in,
            token_out=order.token_out,
            legs=tuple(
                SwapLeg(venue=leg.venue, pool=leg.pool, amount_in_raw=leg.amount_in_raw)
                for leg in order.route_plan
            ),
            min_amount_out_raw=order.min_amount_out_raw,
            instructions=order.instructions,
            expires_at=submitted_at + TRANSACTION_LIFETIME_S,
        )

    async def execute(self) -> None:
        tx = self.transaction()
        outcome = await self.until_answered(lambda: self.outcome(tx), tx.client_tx_id)
        if isinstance(outcome, Dropped):
            await self.fail(outcome.reason)
        elif not self.order.landed_as_sent(_fills(outcome)):
            await self.fail(f"the chain's transaction {tx.client_tx_id} is not the one sent")
        else:
            await self.confirm(outcome)

    async def outcome(self, tx: SwapTransaction) -> Landed | Dropped:
        """What became of the transaction. One this run has just recorded is sent; any other is asked about
        first (a run that died before recording the answer may have sent it), and sent only when the chain
        has not settled it (sending again is harmless). Past its expiry, a chain that never saw it, or sees
        it still pending, will never land it: it is dropped."""
        chain = self.execution.chain
        if self.unsent == tx.client_tx_id:
            self.unsent = None
            return await chain.send_transaction(tx)
        status = await chain.transaction_status(tx.client_tx_id)
        if isinstance(status, Landed | Dropped):
            return status
        if self.execution.clock.now().timestamp() > tx.expires_at + EXPIRY_GRACE_S:
            return Dropped(client_tx_id=tx.client_tx_id, reason="transaction expired before it landed")
        return await chain.send_transaction(tx)

    async def landed_after_all(self) -> bool:
        """Before another attempt: did the last attempt's transaction land after all (its run crashed before
        recording the answer, say)? If so the order is confirmed by it, and no second swap is sent."""
        client_tx_id = self.order.client_tx_id
        if client_tx_id is None:  # the last attempt sent nothing
            return False
        chain = self.execution.chain
        status = await self.until_answered(lambda: chain.transaction_status(client_tx_id), client_tx_id)
        if not isinstance(status, Landed):
            return False
        if not self.order.landed_as_sent(_fills(status)):
            log.error(
                "the chain's transaction is not the one sent", extra=self.ids | {"client_tx_id": client_tx_id}
            )
            return False
        await self.confirm(status)
        return True

    async def until_answered(self, ask: Callable[[], Awaitable[T]], client_tx_id: str) -> T:
        """`ask()`'s answer, asked again for as long as the chain does not give one: while a transaction's
        fate is unknown, no other transaction may be sent for the order (it could swap twice)."""
        while True:
            try:
                return await ask()
            except VENUE_FAILURES as error:
                log.warning(
                    "transaction outcome unknown; asking the chain again",
                    extra=self.ids | {"client_tx_id": client_tx_id, "reason": failure_reason(error)},
                )
            except Exception as error:
                raise EngineFault("the chain adapter failed") from error
            await self.execution.clock.sleep(self.execution.status_poll_s)

    async def confirm(self, landed: Landed) -> None:
        await self.record(lambda: self.order.confirm(landed.tx_hash, _fills(landed)))

    async def fail(self, reason: str) -> None:
        policy, jitter = self.execution.policy, self.execution.jitter
        await self.record(lambda: self.order.fail_attempt(reason, policy, jitter.random()))

    async def record_crash(self, fault: EngineFault) -> None:
        """Log the traceback, then record the crashed run on the order as the log has it (the aggregate may
        have run ahead of the log when a decision broke)."""
        log.error("order run crashed", exc_info=fault, extra=self.ids | {"reason": fault.reason})
        self.resume(await self.execution.store.read_stream(self.order_id))
        if self.order.is_terminal:
            return
        execution = self.execution
        crash = self.order.record_crash(fault.reason, execution.policy, execution.jitter.random())
        self.order.apply(crash)
        await self.append([crash], expected_version=self.order.version - 1)

    async def record(self, *decisions: Callable[[], Event]) -> None:
        """Take each decision on the state the one before left, then append them all as one.

        The aggregate runs ahead of the log until the append returns; if it fails, this runner stops
        and its aggregate goes with it. A decision that breaks is our error (`EngineFault`)."""
        expected_version = self.order.version
        events = []
        for decide in decisions:
            try:
                event = decide()
                self.order.apply(event)
            except Exception as error:
                raise EngineFault("a decision broke") from error
            events.append(event)
        await self.append(events, expected_version)

    async def append(self, events: list[Event], expected_version: int) -> None:
        metadata: dict[str, Any] = {
            "correlationId": self.correlation_id,
            "attempt": self.order.attempt,
            "worker": self.execution.worker_id,
        }
        recorded = await self.execution.store.append(
            self.order_id, events, expected_version=expected_version, metadata=metadata
        )
        self.last = recorded[-1]
        for event in events:
            if isinstance(event, TransactionSubmitted):
                self.unsent = event.client_tx_id
            _log_step(event, self.ids)


def _fills(landed: Landed) -> tuple[tuple[str, str, int, int], ...]:
    return tuple((f.venue, f.pool, f.amount_in_raw, f.amount_out_raw) for f in landed.fills)


def _log_step(event: Event, ids: dict[str, str]) -> None:
    """One line for each step of an order's story that a reader of the logs looks for."""
    match event:
        case VenueSelected():
            route = {leg.pool: leg.percent for leg in event.route_plan}
            quotes = {q.pool: str(q.amount_out) for q in event.quotes}
            decision: dict[str, object] = {"venue": event.selected_venue, "route": route, "quotes": quotes}
            log.info("order routed", extra=ids | decision | {"amount_out": str(event.amount_out)})
        case OrderConfirmed():
            fields = {"venue": event.venue, "tx_hash": event.tx_hash, "price": str(event.execution_price)}
            log.info("order confirmed", extra=ids | fields | {"amount_out": str(event.amount_out)})
        case ExecutionAttemptFailed():
            failure: dict[str, object] = {"attempt": event.attempt, "reason": event.reason}
            log.info("order attempt failed", extra=ids | failure | {"retry_in_ms": event.retry_in_ms})
        case OrderFailed():
            log.info("order failed", extra=ids | {"reason": event.reason, "attempts": event.attempts})
