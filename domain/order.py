"""The Order aggregate: its state is the fold of its events; its methods decide the next event."""

from __future__ import annotations

import math
from dataclasses import dataclass

from domain.events import (
    Event,
    ExecutionAttemptFailed,
    ExecutionCrashed,
    OrderConfirmed,
    OrderFailed,
    OrderSubmitted,
    Quote,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    VenueSelected,
)
from domain.order_type import PLANNED_ORDER_TYPES, SUPPORTED_ORDER_TYPES, OrderType
from domain.retry import RetryPolicy
from domain.routing import best_quote, min_amount_out
from domain.status import OrderStatus
from domain.tokens import NATIVE_SOL, TOKENS
from domain.transitions import next_status

MIN_SLIPPAGE_BPS, MAX_SLIPPAGE_BPS, DEFAULT_SLIPPAGE_BPS = 1, 5000, 50


class OrderRejected(Exception):
    """A request that breaks a rule of the domain; `field` names the offending input."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class OrderNotSupported(OrderRejected):
    """A well-formed request for something the engine does not do yet."""


class InvariantViolated(Exception):
    """The order's state breaks a rule the engine itself keeps (a bug, or a log no code of ours wrote).

    Raised instead of `assert`, which `python -O` removes."""


@dataclass(slots=True)
class Order:
    order_id: str
    version: int = 0
    status: OrderStatus | None = None
    order_type: OrderType | None = None
    token_in: str = ""
    token_out: str = ""
    amount_in: float = 0.0
    slippage_bps: int = 0
    attempt: int = 0
    quotes: tuple[Quote, ...] = ()
    selected_venue: str | None = None
    instructions: tuple[str, ...] = ()
    min_amount_out: float | None = None
    client_tx_id: str | None = None
    tx_hash: str | None = None
    execution_price: float | None = None
    amount_out: float | None = None
    failure_reason: str | None = None
    last_retry_in_ms: int | None = None
    crashed_runs: int = 0

    # -- folding --------------------------------------------------------------------------------------

    @classmethod
    def from_events(cls, order_id: str, events: list[Event]) -> Order:
        order = cls(order_id)
        for event in events:
            order.apply(event)
        return order

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def is_terminal(self) -> bool:
        return self.status is not None and self.status.is_terminal

    @property
    def selected_quote(self) -> Quote:
        """The quote of the venue routing chose."""
        for quote in self.quotes:
            if quote.venue == self.selected_venue:
                return quote
        raise InvariantViolated(f"order {self.order_id} has no quote from its selected venue")

    def apply(self, event: Event) -> None:
        """Change state by one event; refuses an event the transition table does not allow."""
        self.status = next_status(self.status, event)
        self.version += 1
        match event:
            case OrderSubmitted():
                self.order_type = event.order_type
                self.token_in, self.token_out = event.token_in, event.token_out
                self.amount_in, self.slippage_bps = event.amount_in, event.slippage_bps
            case RoutingStarted():
                self.attempt = event.attempt
                self.quotes, self.selected_venue, self.instructions = (), None, ()
                self.min_amount_out = self.client_tx_id = None
            case VenueSelected():
                self.quotes, self.selected_venue = event.quotes, event.selected_venue
            case TransactionBuilt():
                self.instructions, self.min_amount_out = event.instructions, event.min_amount_out
            case TransactionSubmitted():
                self.client_tx_id = event.client_tx_id
            case OrderConfirmed():
                self.selected_venue, self.tx_hash = event.venue, event.tx_hash
                self.execution_price, self.amount_out = event.execution_price, event.amount_out
            case ExecutionAttemptFailed():
                self.failure_reason, self.last_retry_in_ms = event.reason, event.retry_in_ms
            case ExecutionCrashed():
                self.failure_reason, self.last_retry_in_ms = event.reason, event.retry_in_ms
                self.crashed_runs += 1
            case OrderFailed():
                self.failure_reason = event.reason

    # -- decisions ------------------------------------------------------------------------------------

    @staticmethod
    def submit(
        order_type: str, token_in: str, token_out: str, amount_in: float, slippage_bps: int
    ) -> OrderSubmitted:
        """Check a new order against the rules; the first rule broken is reported with its field."""
        if order_type in PLANNED_ORDER_TYPES:
            raise OrderNotSupported("orderType", f"'{order_type}' orders are not supported yet; use 'market'")
        if order_type not in SUPPORTED_ORDER_TYPES:
            raise OrderRejected("orderType", f"must be one of {', '.join(SUPPORTED_ORDER_TYPES)}")
        kind = OrderType(order_type)
        for name, symbol in (("tokenIn", token_in), ("tokenOut", token_out)):
            if symbol not in TOKENS:
                raise OrderRejected(name, f"unknown token '{symbol}'; supported: {', '.join(TOKENS)}")
        if token_in == token_out:
            raise OrderRejected("tokenOut", "must differ from tokenIn")
        token = TOKENS[token_in]
        if not math.isfinite(amount_in) or amount_in <= 0:
            raise OrderRejected("amountIn", "must be a finite number greater than 0")
        if amount_in > token.max_amount_in:
            raise OrderRejected("amountIn", f"must be at most {token.max_amount_in:g} {token_in}")
        if amount_in < token.smallest_unit:
            raise OrderRejected("amountIn", f"must be at least {token.smallest_unit:g} {token_in}")
        if not MIN_SLIPPAGE_BPS <= slippage_bps <= MAX_SLIPPAGE_BPS:
            raise OrderRejected(
                "slippageBps", f"must be an integer from {MIN_SLIPPAGE_BPS} to {MAX_SLIPPAGE_BPS}"
            )
        return OrderSubmitted(
            order_type=kind,
            token_in=token_in,
            token_out=token_out,
            amount_in=amount_in,
            slippage_bps=slippage_bps,
        )

    def start_attempt(self) -> RoutingStarted:
        return RoutingStarted(attempt=self.attempt + 1)

    def select_venue(self, quotes: list[Quote]) -> VenueSelected:
        return VenueSelected(quotes=tuple(quotes), selected_venue=best_quote(quotes).venue)

    def build_transaction(self) -> TransactionBuilt:
        quote = self.selected_quote
        return TransactionBuilt(
            venue=quote.venue,
            instructions=swap_instructions(self.token_in, self.token_out),
            min_amount_out=min_amount_out(quote, self.slippage_bps),
        )

    def submit_transaction(self) -> TransactionSubmitted:
        # One id per attempt: resubmitting the same attempt after a crash must not swap twice.
        venue = self.selected_quote.venue
        return TransactionSubmitted(venue=venue, client_tx_id=f"{self.order_id}:{self.attempt}")

    def confirm(self, tx_hash: str, execution_price: float, amount_out: float) -> OrderConfirmed:
        return OrderConfirmed(
            venue=self.selected_quote.venue,
            tx_hash=tx_hash,
            execution_price=execution_price,
            amount_out=amount_out,
        )

    def fail_attempt(
        self, reason: str, policy: RetryPolicy, jitter_draw: float
    ) -> ExecutionAttemptFailed | OrderFailed:
        """Retry while attempts remain (with the policy's backoff), otherwise fail the order for good."""
        if policy.may_retry(self.attempt):
            return ExecutionAttemptFailed(
                attempt=self.attempt, reason=reason, retry_in_ms=policy.delay_ms(self.attempt, jitter_draw)
            )
        return OrderFailed(reason=reason, attempts=self.attempt)

    def record_crash(
        self, reason: str, policy: RetryPolicy, jitter_draw: float
    ) -> ExecutionCrashed | OrderFailed:
        """A run crashed on our own error: run again after the backoff while crashed runs remain, else fail
        the order for good rather than let the recovery sweep start it over forever."""
        crashed_runs = self.crashed_runs + 1
        if policy.may_run_again(crashed_runs):
            return ExecutionCrashed(
                attempt=self.attempt, reason=reason, retry_in_ms=policy.delay_ms(crashed_runs, jitter_draw)
            )
        return OrderFailed(reason=f"{reason} (crashed {crashed_runs} runs)", attempts=self.attempt)


def swap_instructions(token_in: str, token_out: str) -> tuple[str, ...]:
    """The transaction's instructions; native SOL is wrapped into wSOL before and unwrapped after."""
    before: tuple[str, ...] = ("createWrappedSolAccount", "wrapSol") if token_in == NATIVE_SOL else ()
    if token_out == NATIVE_SOL:
        before = ("createWrappedSolAccount",)
    after: tuple[str, ...] = ("closeWrappedSolAccount",) if NATIVE_SOL in (token_in, token_out) else ()
    return (*before, "swap", *after)
