"""The Order aggregate: its state is the fold of its events; its methods decide the next event."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal, localcontext
from fractions import Fraction

from domain.amounts import MAX_DIGITS, AmountError, to_base_units
from domain.events import (
    Event,
    ExecutionAttemptFailed,
    ExecutionCrashed,
    Fill,
    LeftOut,
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderFailed,
    OrderSubmitted,
    Quote,
    RouteLeg,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    TriggerArmed,
    TriggerFired,
    VenueSelected,
)
from domain.order_type import OrderType
from domain.pools.base import Pool
from domain.retry import RetryPolicy
from domain.route_plan import min_amount_out_raw
from domain.routing import PRICE_DIGITS, execution_price
from domain.status import OrderStatus
from domain.tokens import (
    NATIVE_SOL,
    SNIPER_FUNDING,
    TOKEN_SYMBOL,
    TOKENS,
    Launch,
    Token,
    UnknownToken,
    token_of,
)
from domain.transitions import next_status

MIN_SLIPPAGE_BPS, MAX_SLIPPAGE_BPS, DEFAULT_SLIPPAGE_BPS = 1, 5000, 50
MAX_FLOOR_RAW = 2**63 - 1  # a limit's floor in base units fits the read side's 64-bit integers
MAX_WAIT = timedelta(days=365)  # the latest expiresAt a waiting order may have, from its submission
MAX_SNIPE_DELAY_MS = 3_600_000  # a sniper order buys within at most an hour of its token's launch
# A price as text: plain digits, above 0 (`0.5`, `150`, `150.25`; not `0`, `00.5`, `1e3`, ` 1`).
PRICE_TEXT = re.compile(r"0\.[0-9]*[1-9][0-9]*|[1-9][0-9]*(\.[0-9]+)?")
MAX_PRICE_TEXT = MAX_DIGITS  # characters: a text this long has no more digits than a price may have


class OrderRejected(Exception):
    """A request that breaks a rule of the domain; `field` names the offending input."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class OrderUnprocessable(OrderRejected):
    """A well-formed order that what is true now refuses: an expiry already past, a limit no pool could
    ever pay, a sniper order's token that the market has not announced or already trades."""


class NotWaiting(Exception):
    """A decision of the trigger stage (cancel, fire, expire) on an order that is not waiting any more."""

    def __init__(self, order_id: str, status: OrderStatus | None) -> None:
        super().__init__(f"order {order_id} is {status or 'unknown'}, not waiting")
        self.status = status


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
    limit_price: Decimal | None = None  # a limit order's limit, whole tokenOut per whole tokenIn
    taking_amount_raw: int | None = None  # ... as the least it may pay out for amountIn: its floor
    token_out_decimals: int | None = None  # a sniper order's token, launched after the engine's list
    min_liquidity_raw: int | None = None  # a sniper order buys only from pools holding this much tokenIn
    max_delay_ms: int | None = None  # ... and only this long after its token's launch
    expires_at: datetime | None = None
    armed: bool = False  # a triggered order's TriggerArmed has been applied
    buy_by: datetime | None = None  # a fired sniper order's deadline (TriggerFired.buy_by)
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
        return self._token(self.token_in, None)

    @property
    def output_token(self) -> Token:
        return self._token(self.token_out, self.token_out_decimals)

    def _token(self, symbol: str, decimals: int | None) -> Token:
        try:
            return token_of(symbol, decimals)
        except UnknownToken:
            raise InvariantViolated(f"order {self.order_id}: no precision known for {symbol}") from None

    def apply(self, event: Event) -> None:
        """Change state by one event; refuses an event the transition table does not allow."""
        self.status = next_status(self.status, event)
        self.version += 1
        match event:
            case OrderSubmitted():
                self.order_type = event.order_type
                self.token_in, self.token_out = event.token_in, event.token_out
                self.amount_in_raw, self.slippage_bps = event.amount_in_raw, event.slippage_bps
            case TriggerFired():
                self.buy_by = event.buy_by
            case TriggerArmed():
                self.limit_price, self.taking_amount_raw = event.limit_price, event.taking_amount_raw
                self.token_out_decimals, self.max_delay_ms = event.token_out_decimals, event.max_delay_ms
                self.min_liquidity_raw, self.expires_at = event.min_liquidity_raw, event.expires_at
                self.armed = True
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
        if order_type not in OrderType.__members__.values():
            raise OrderRejected("orderType", f"must be one of {', '.join(OrderType)}")
        kind = OrderType(order_type)
        if kind is OrderType.SNIPER:
            _check_sniper_tokens(token_in, token_out)
        for name, symbol in (("tokenIn", token_in), ("tokenOut", token_out)):
            if symbol not in TOKENS and not (kind is OrderType.SNIPER and name == "tokenOut"):
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

    @staticmethod
    def arm(
        submitted: OrderSubmitted,
        now: datetime,
        *,
        limit_price: Decimal | str | None = None,
        taking_amount: Decimal | str | None = None,
        taking_amount_raw: str | None = None,
        expires_at: datetime | None = None,
        launch: Launch | None = None,
        min_liquidity: Decimal | str | None = None,
        max_delay_ms: int | None = None,
    ) -> TriggerArmed | None:
        """The trigger a new order is armed with: None for a market order (which takes none of these).

        A limit order gives its limit as exactly one of `limit_price` (whole tokenOut per whole tokenIn, a
        positive decimal: a JSON number's exact value or plain digits as text), `taking_amount` (whole
        tokenOut for the whole amountIn) or `taking_amount_raw` (the same in base units, digits); and may
        give `expires_at` (timezone-aware, after `now`, within MAX_WAIT). The floor in base units is rounded
        up from a price, and the price shown to PRICE_DIGITS digits up from a floor: the order never takes
        less than its limit.

        A sniper order names its token's `launch` as the chain shows it now (None: the chain does not know
        the token), which must not be tradable yet; it may give `min_liquidity` (whole tokenIn a pool must
        hold, default 0), `max_delay_ms` (1..MAX_SNIPE_DELAY_MS after the launch; default: no limit) and
        `expires_at`. Raises `OrderRejected` naming the field."""
        kind = submitted.order_type
        sniper = {"minLiquidity": min_liquidity, "maxDelayMs": max_delay_ms}
        if kind is not OrderType.SNIPER:
            for name, value in sniper.items():
                if value is not None:
                    raise OrderRejected(name, "only sniper orders have a launch to wait for")
        limit = {
            "limitPrice": limit_price,
            "takingAmount": taking_amount,
            "takingAmountRaw": taking_amount_raw,
        }
        given = [name for name, value in limit.items() if value is not None]
        if kind is OrderType.MARKET:
            if given or expires_at is not None:
                raise OrderRejected([*given, "expiresAt"][0], "only limit orders have a limit or an expiry")
            return None
        if expires_at is not None and not now < expires_at <= now + MAX_WAIT:
            raise OrderUnprocessable(
                "expiresAt", f"must be in the future, at most {MAX_WAIT.days} days ahead"
            )
        if kind is OrderType.SNIPER:
            if given:
                raise OrderRejected(given[0], "only limit orders have a limit")
            return _arm_sniper(submitted, launch, min_liquidity, max_delay_ms, expires_at)
        if len(given) != 1:
            raise OrderRejected(
                given[1] if given else "limitPrice",
                "a limit order gives exactly one of limitPrice, takingAmount and takingAmountRaw",
            )
        token_in, token_out = TOKENS[submitted.token_in], TOKENS[submitted.token_out]
        if limit_price is not None:
            price = _positive_decimal("limitPrice", limit_price)
            if price.adjusted() > MAX_DIGITS:
                raise OrderUnprocessable("limitPrice", "is more than any pool could pay out for this order")
            # A price this small asks for less than one base unit of anything: the floor is one.
            tiny = price.adjusted() < -2 * MAX_DIGITS
            out_per_in = Fraction(price) * 10**token_out.decimals / 10**token_in.decimals  # base units
            floor = 1 if tiny else _ceil(out_per_in * submitted.amount_in_raw)
        elif taking_amount is not None:
            try:
                floor = to_base_units(taking_amount, token_out.decimals)
            except AmountError as error:
                raise OrderRejected("takingAmount", str(error)) from None
        else:
            floor = _raw_digits("takingAmountRaw", taking_amount_raw or "", token_out)
        if floor <= 0:
            raise OrderRejected(given[0], f"must come to at least {token_out.show(1)} for the whole amountIn")
        if floor > MAX_FLOOR_RAW:
            raise OrderUnprocessable(given[0], "is more than any pool could pay out for this order")
        if limit_price is None:
            with localcontext() as context:
                context.prec, context.rounding = PRICE_DIGITS, ROUND_CEILING
                price = token_out.value(floor) / token_in.value(submitted.amount_in_raw)
        return TriggerArmed(
            limit_price=price,
            taking_amount=token_out.value(floor),
            taking_amount_raw=floor,
            expires_at=expires_at,
        )

    @property
    def is_waiting(self) -> bool:
        return self.status is OrderStatus.WAITING

    def reaches_limit(self, amount_out_raw: int) -> bool:
        """Whether a route paying `amount_out_raw` for the whole amountIn meets the order's limit (an order
        without one has none to meet)."""
        return self.taking_amount_raw is None or amount_out_raw >= self.taking_amount_raw

    def fire(self, route_plan: tuple[RouteLeg, ...], buy_by: datetime | None = None) -> TriggerFired:
        """Fire a waiting order on the quote `route_plan` (legs taking the whole amountIn) gave it; a sniper
        order's attempts must start by `buy_by` (`deadline`).

        Raises `NotWaiting`, and `InvariantViolated` for a route that does not meet the limit."""
        if not self.is_waiting:
            raise NotWaiting(self.order_id, self.status)
        amount_out_raw = sum(leg.amount_out_raw for leg in route_plan)
        if sum(leg.amount_in_raw for leg in route_plan) != self.amount_in_raw:
            raise InvariantViolated(f"order {self.order_id}: the quote's legs do not add up to amountIn")
        if not self.reaches_limit(amount_out_raw):
            raise InvariantViolated(f"order {self.order_id}: fired on a quote below its limit")
        return TriggerFired(
            price=execution_price(self.amount_in_raw, self.input_token, amount_out_raw, self.output_token),
            amount_out=self.output_token.value(amount_out_raw),
            amount_out_raw=amount_out_raw,
            route_plan=route_plan,
            buy_by=buy_by,
        )

    def too_late(self, now: datetime) -> OrderFailed | None:
        """A fired sniper order whose next attempt would start after its `buy_by`: failed, as a retry
        would buy later than its owner allowed. None otherwise."""
        if self.buy_by is None or now <= self.buy_by:
            return None
        return self.abandon(
            f"not bought within maxDelayMs ({self.max_delay_ms} ms) of {self.token_out}'s launch"
        )

    def cancel(self, reason: str = "cancelled by its client") -> OrderCancelled:
        """Raises `NotWaiting` once the order has fired or ended (or is a market order)."""
        if not self.is_waiting:
            raise NotWaiting(self.order_id, self.status)
        return OrderCancelled(reason=reason)

    def is_due_to_expire(self, now: datetime) -> bool:
        return self.is_waiting and self.expires_at is not None and now >= self.expires_at

    def expire(self, now: datetime) -> OrderExpired:
        """Raises `NotWaiting`, and `InvariantViolated` before the order's expiry."""
        if not self.is_waiting:
            raise NotWaiting(self.order_id, self.status)
        if self.expires_at is None or not self.is_due_to_expire(now):
            raise InvariantViolated(f"order {self.order_id}: not due to expire at {now.isoformat()}")
        return OrderExpired(expires_at=self.expires_at)

    def snipe(self, launch: Launch, now: datetime) -> OrderFailed | OrderExpired | None:
        """A waiting sniper order's decision once its token has launched, before any pool is looked at:
        the checks sniper bots apply (the mint authority renounced, no freeze authority) fail it with the
        check that refused it; a launch seen more than `max_delay_ms` after it happened expires it; None:
        go on, buy from the pools deep enough (`deep_enough`). Raises `NotWaiting`."""
        if not self.is_waiting:
            raise NotWaiting(self.order_id, self.status)
        symbol = launch.symbol
        if launch.mint_authority is not None:
            return self.abandon(
                f"refused: {symbol}'s mint authority is not renounced ({launch.mint_authority})"
            )
        if launch.freeze_authority is not None:
            return self.abandon(f"refused: {symbol} has a freeze authority ({launch.freeze_authority})")
        return self.missed(launch, now)

    def missed(self, launch: Launch, now: datetime) -> OrderExpired | None:
        """A waiting sniper order expired (at the launch plus `max_delay_ms`) once `now` is past that, None
        before, or when it has no delay or its token has not launched: also for a token launched only
        against another quote token than the order pays with, whose pools the order cannot buy from."""
        deadline = self.deadline(launch)
        return OrderExpired(expires_at=deadline) if deadline is not None and now > deadline else None

    def deadline(self, launch: Launch) -> datetime | None:
        """The last moment a sniper order may buy: its token's launch plus `max_delay_ms` (None: no delay,
        or not launched)."""
        if launch.launched_at is None or self.max_delay_ms is None:
            return None
        return launch.launched_at + timedelta(milliseconds=self.max_delay_ms)

    def deep_enough(self, pool: Pool) -> bool:
        """Whether a sniper order may buy from `pool`: it holds at least `min_liquidity_raw` of tokenIn."""
        return pool.liquidity(self.token_in) >= (self.min_liquidity_raw or 0)

    def below_limit(self, amount_out_raw: int) -> str | None:
        """Why a route paying `amount_out_raw` may not be taken (it pays less than the limit), or None."""
        if self.reaches_limit(amount_out_raw):
            return None
        token = self.output_token
        return (
            f"the best route pays {token.show(amount_out_raw)}, below the limit's "
            f"{token.show(self.taking_amount_raw or 0)}"
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
        # A limit order never takes less than its limit, whatever slippage it allows.
        slipped = min_amount_out_raw(self.route_amount_out_raw, self.slippage_bps)
        floor = max(slipped, self.taking_amount_raw or 0)
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
        return "amountInRaw", _raw_digits("amountInRaw", amount_in_raw, token)
    if amount_in is None:
        raise OrderRejected("amountIn", "required: whole tokens in amountIn, or base units in amountInRaw")
    try:
        raw = to_base_units(amount_in, token.decimals)
    except AmountError as error:
        raise OrderRejected("amountIn", str(error)) from None
    if raw <= 0:
        raise OrderRejected("amountIn", f"must be at least {token.show(1)}, the token's smallest unit")
    return "amountIn", raw


def _raw_digits(field: str, text: str, token: Token) -> int:
    """A positive amount of `token` in base units, written as a string of digits; one longer than any
    token's maximum is read as 10**MAX_DIGITS (Python's int() refuses strings over 4,300 digits)."""
    if not (text.isascii() and text.isdigit()) or text.startswith("0"):
        raise OrderRejected(
            field,
            f"must be a positive whole number of base units as a string of digits "
            f"(1 {token.symbol} is {10**token.decimals})",
        )
    return 10**MAX_DIGITS if len(text) > MAX_DIGITS else int(text)


def _check_sniper_tokens(token_in: str, token_out: str) -> None:
    if token_in not in SNIPER_FUNDING:
        raise OrderRejected("tokenIn", f"a sniper order pays with {' or '.join(SNIPER_FUNDING)}")
    if TOKEN_SYMBOL.fullmatch(token_out) is None:
        raise OrderRejected("tokenOut", "must be a token's symbol: 2 to 10 capital letters or digits")
    if token_out in TOKENS:  # the schema lists the engine's tokens as no sniper's tokenOut
        raise OrderRejected("tokenOut", f"{token_out} trades already; a sniper order waits for a new token")


def _arm_sniper(
    submitted: OrderSubmitted,
    launch: Launch | None,
    min_liquidity: Decimal | str | None,
    max_delay_ms: int | None,
    expires_at: datetime | None,
) -> TriggerArmed:
    symbol = submitted.token_out
    if launch is None:
        raise OrderUnprocessable("tokenOut", f"unknown token '{symbol}': the market has not announced it")
    if launch.launched_at is not None:
        raise OrderUnprocessable("tokenOut", f"{symbol} trades already; a sniper order waits for a new token")
    if max_delay_ms is not None and not 1 <= max_delay_ms <= MAX_SNIPE_DELAY_MS:
        raise OrderRejected("maxDelayMs", f"must be an integer from 1 to {MAX_SNIPE_DELAY_MS}")
    token_in = TOKENS[submitted.token_in]
    liquidity_raw = 0
    if min_liquidity is not None:
        try:
            liquidity_raw = to_base_units(min_liquidity, token_in.decimals)
        except AmountError as error:
            raise OrderRejected("minLiquidity", str(error)) from None
        if liquidity_raw < 0:
            raise OrderRejected("minLiquidity", "must be 0 or more, in whole tokenIn")
        if liquidity_raw > MAX_FLOOR_RAW:
            raise OrderUnprocessable("minLiquidity", "is more than any pool could hold")
    return TriggerArmed(
        token_out_decimals=launch.decimals,
        min_liquidity=token_in.value(liquidity_raw),
        min_liquidity_raw=liquidity_raw,
        max_delay_ms=max_delay_ms,
        expires_at=expires_at,
    )


def _positive_decimal(field: str, value: Decimal | str) -> Decimal:
    """A price: a finite decimal above 0 of at most MAX_DIGITS digits; as text, plain digits
    (`PRICE_TEXT`, at most MAX_PRICE_TEXT characters)."""
    if isinstance(value, str) and (len(value) > MAX_PRICE_TEXT or PRICE_TEXT.fullmatch(value) is None):
        raise OrderRejected(
            field,
            f"must be a decimal number above 0 of plain digits, at most {MAX_PRICE_TEXT} characters, "
            "such as 150.25",
        )
    number = Decimal(value)
    if not number.is_finite() or number <= 0:
        raise OrderRejected(field, "must be a decimal number above 0")
    if len(number.as_tuple().digits) > MAX_DIGITS:
        raise OrderRejected(field, f"must have at most {MAX_DIGITS} digits")
    return number


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


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
