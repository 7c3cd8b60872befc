"""The Order aggregate: its state is the fold of its events; its methods decide the next event."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.amounts import MAX_DIGITS, AmountError, to_base_units
from domain.events import (
    Event,
    ExecutionAttemptFailed,
    ExecutionCrashed,
    Fill,
    LeftOut,
    OrderConfirmed,
    OrderFailed,
    OrderSubmitted,
    Quote,
    RouteLeg,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    VenueSelected,
)
from domain.order_type import PLANNED_ORDER_TYPES, SUPPORTED_ORDER_TYPES, OrderType
from domain.retry import RetryPolicy
from domain.route_plan import min_amount_out_raw
from domain.routing import execution_price
from domain.status import OrderStatus
from domain.tokens import NATIVE_SOL, TOKENS, Token
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
    amount_in_raw: int = 0
    slippage_bps: int = 0
    attempt: int = 0
    quotes: tuple[Quote, ...] = ()
    route_plan: tuple[RouteLeg, ...] = ()
    selected_venue: str | None = None
    route_amount_out_raw: int | None = None  # what the route plan was quoted to pay out
    instructions: tuple[str, ...] = ()
    min_amount_out_raw: int | None = None
    client_tx_id: str | None = None
    tx_hash: str | None = None
    execution_price: Decimal | None = None
    amount_out_raw: int | None = None
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
    def input_token(self) -> Token:
        return TOKENS[self.token_in]

    @property
    def output_token(self) -> Token:
        return TOKENS[self.token_out]

    def apply(self, event: Event) -> None:
        """Change state by one event; refuses an event the transition table does not allow."""
        self.status = next_status(self.status, event)
        self.version += 1
        match event:
            case OrderSubmitted():
                self.order_type = event.order_type
                self.token_in, self.token_out = event.token_in, event.token_out
                self.amount_in_raw, self.slippage_bps = event.amount_in_raw, event.slippage_bps
            case RoutingStarted():
                self.attempt = event.attempt
                self.quotes, self.route_plan, self.selected_venue, self.instructions = (), (), None, ()
                self.route_amount_out_raw = self.min_amount_out_raw = self.client_tx_id = None
            case VenueSelected():
                self.quotes, self.route_plan = event.quotes, event.route_plan
                self.selected_venue, self.route_amount_out_raw = event.selected_venue, event.amount_out_raw
            case TransactionBuilt():
                self.instructions, self.min_amount_out_raw = event.instructions, event.min_amount_out_raw
            case TransactionSubmitted():
                self.client_tx_id = event.client_tx_id
            case OrderConfirmed():
                self.selected_venue, self.tx_hash = event.venue, event.tx_hash
                self.execution_price, self.amount_out_raw = event.execution_price, event.amount_out_raw
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
        order_type: str,
        token_in: str,
        token_out: str,
        slippage_bps: int,
        *,
        amount_in: Decimal | str | None = None,
        amount_in_raw: str | None = None,
    ) -> OrderSubmitted:
        """Check a new order against the rules; the first rule broken is reported with its field.

        The amount comes either as whole tokens (`amount_in`, a decimal with at most the token's decimals) or
        as base units (`amount_in_raw`, a string of digits)."""
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
        field, raw = _amount_in_raw(token, amount_in, amount_in_raw)
        if raw > token.max_amount_in_raw:
            raise OrderRejected(field, f"must be at most {token.show(token.max_amount_in_raw)}")
        if not MIN_SLIPPAGE_BPS <= slippage_bps <= MAX_SLIPPAGE_BPS:
            raise OrderRejected(
                "slippageBps", f"must be an integer from {MIN_SLIPPAGE_BPS} to {MAX_SLIPPAGE_BPS}"
            )
        return OrderSubmitted(
            order_type=kind,
            token_in=token_in,
            token_out=token_out,
            amount_in=token.value(raw),
            amount_in_raw=raw,
            slippage_bps=slippage_bps,
        )

    def start_attempt(self) -> RoutingStarted:
        return RoutingStarted(attempt=self.attempt + 1)

    def select_route(
        self, quotes: tuple[Quote, ...], route_plan: tuple[RouteLeg, ...], left_out: tuple[LeftOut, ...]
    ) -> VenueSelected:
        """Record the router's decision; `route_plan`'s legs take the whole amount in."""
        if not route_plan:
            raise InvariantViolated(f"order {self.order_id}: a route needs at least one leg")
        if sum(leg.amount_in_raw for leg in route_plan) != self.amount_in_raw:
            raise InvariantViolated(f"order {self.order_id}: the route's legs do not add up to amountIn")
        amount_out_raw = sum(leg.amount_out_raw for leg in route_plan)
        largest = max(route_plan, key=lambda leg: (leg.amount_in_raw, leg.amount_out_raw))
        return VenueSelected(
            quotes=quotes,
            selected_venue=largest.venue,
            route_plan=route_plan,
            amount_out=self.output_token.value(amount_out_raw),
            amount_out_raw=amount_out_raw,
            left_out=left_out,
        )

    def build_transaction(self) -> TransactionBuilt:
        if self.route_amount_out_raw is None or self.selected_venue is None:
            raise InvariantViolated(f"order {self.order_id}: no route to build a transaction for")
        floor = min_amount_out_raw(self.route_amount_out_raw, self.slippage_bps)
        return TransactionBuilt(
            venue=self.selected_venue,
            instructions=swap_instructions(self.token_in, self.token_out, self.route_plan),
            min_amount_out=self.output_token.value(floor),
            min_amount_out_raw=floor,
        )

    def submit_transaction(self) -> TransactionSubmitted:
        # One id per attempt: resubmitting the same attempt after a crash must not swap twice.
        if self.selected_venue is None:
            raise InvariantViolated(f"order {self.order_id}: no route to submit")
        return TransactionSubmitted(venue=self.selected_venue, client_tx_id=f"{self.order_id}:{self.attempt}")

    def landed_as_sent(self, fills: tuple[tuple[str, str, int, int], ...]) -> bool:
        """Whether a landed transaction's `fills` ((venue, pool, amount_in_raw, amount_out_raw) per leg) are
        this order's route as built: the same legs, paying at least the transaction's minimum. A chain that
        answers with another transaction under this one's id is not believed."""
        sent = sorted((leg.venue, leg.pool, leg.amount_in_raw) for leg in self.route_plan)
        landed = sorted((venue, pool, amount_in) for venue, pool, amount_in, _ in fills)
        paid = sum(amount_out for *_, amount_out in fills)
        return sent == landed and self.min_amount_out_raw is not None and paid >= self.min_amount_out_raw

    def abandon(self, reason: str) -> OrderFailed:
        """Fail the order now, without another attempt: `reason` will not change by trying again."""
        return OrderFailed(reason=reason, attempts=self.attempt)

    def confirm(self, tx_hash: str, fills: tuple[tuple[str, str, int, int], ...]) -> OrderConfirmed:
        """The landed transaction: `fills` are (venue, pool, amount_in_raw, amount_out_raw) per leg."""
        if self.selected_venue is None:
            raise InvariantViolated(f"order {self.order_id}: confirmed without a route")
        token_in, token_out = self.input_token, self.output_token
        amount_out_raw = sum(fill[3] for fill in fills)
        return OrderConfirmed(
            venue=self.selected_venue,
            tx_hash=tx_hash,
            execution_price=execution_price(self.amount_in_raw, token_in, amount_out_raw, token_out),
            amount_out=token_out.value(amount_out_raw),
            amount_out_raw=amount_out_raw,
            fills=tuple(
                Fill(
                    venue=venue,
                    pool=pool,
                    amount_in=token_in.value(raw_in),
                    amount_in_raw=raw_in,
                    amount_out=token_out.value(raw_out),
                    amount_out_raw=raw_out,
                )
                for venue, pool, raw_in, raw_out in fills
            ),
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


def _amount_in_raw(
    token: Token, amount_in: Decimal | str | None, amount_in_raw: str | None
) -> tuple[str, int]:
    """The order's amount in base units, and the field it came from."""
    if amount_in is not None and amount_in_raw is not None:
        raise OrderRejected("amountInRaw", "give amountIn or amountInRaw, not both")
    if amount_in_raw is not None:
        if not (amount_in_raw.isascii() and amount_in_raw.isdigit()) or amount_in_raw.startswith("0"):
            raise OrderRejected(
                "amountInRaw",
                f"must be a positive whole number of base units as a string of digits "
                f"(1 {token.symbol} is {10**token.decimals})",
            )
        # Longer than any token's maximum: Python's int() refuses strings over 4,300 digits, so not parsed.
        too_long = len(amount_in_raw) > MAX_DIGITS
        return "amountInRaw", 10**MAX_DIGITS if too_long else int(amount_in_raw)
    if amount_in is None:
        raise OrderRejected("amountIn", "required: whole tokens in amountIn, or base units in amountInRaw")
    try:
        raw = to_base_units(amount_in, token.decimals)
    except AmountError as error:
        raise OrderRejected("amountIn", str(error)) from None
    if raw <= 0:
        raise OrderRejected("amountIn", f"must be at least {token.show(1)}, the token's smallest unit")
    return "amountIn", raw


WRAPPED_SOL = "wSOL"


def swap_instructions(token_in: str, token_out: str, route_plan: tuple[RouteLeg, ...]) -> tuple[str, ...]:
    """The transaction's instructions, as `name:account`: one swap per leg of the route; native SOL is
    wrapped into wSOL before (its associated token account created idempotently, lamports transferred into
    it, `syncNative`) and the account closed after, which unwraps what is left or received."""
    swaps = tuple(f"swap:{leg.pool}" for leg in route_plan)
    if NATIVE_SOL not in (token_in, token_out):
        return swaps
    open_account = f"createAssociatedTokenAccountIdempotent:{WRAPPED_SOL}"
    wrap = (f"transfer:{WRAPPED_SOL}", f"syncNative:{WRAPPED_SOL}") if token_in == NATIVE_SOL else ()
    return (open_account, *wrap, *swaps, f"closeAccount:{WRAPPED_SOL}")
