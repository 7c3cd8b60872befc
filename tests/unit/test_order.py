"""The Order aggregate: the transition table, folding events into state, and the decisions it makes."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.events import (
    EVENT_TYPES,
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
from domain.order import InvariantViolated, Order, OrderRejected, swap_instructions
from domain.order_type import OrderType
from domain.retry import RetryPolicy
from domain.status import OrderStatus
from domain.tokens import TOKENS
from domain.transitions import InvalidTransition, next_status

ORDER_ID = "6f1c0a52-3c1e-4f7e-9a57-2b8f0d4b8c11"
POLICY = RetryPolicy(max_attempts=3, base_ms=500)
TX_HASH = "4Zq8" + "1" * 84
RAYDIUM, METEORA = "raydium-cpmm-SOL-USDC-1", "meteora-cpmm-SOL-USDC-1"

W, X, E = OrderStatus.WAITING, OrderStatus.CANCELLED, OrderStatus.EXPIRED
P, R, B, S, C, F = (
    OrderStatus.PENDING,
    OrderStatus.ROUTING,
    OrderStatus.BUILDING,
    OrderStatus.SUBMITTED,
    OrderStatus.CONFIRMED,
    OrderStatus.FAILED,
)


def quote(venue: str, pool: str, amount_out_raw: int) -> Quote:
    """A quote for 0.5 SOL in (USDC out has 6 decimals)."""
    amount_out = TOKENS["USDC"].value(amount_out_raw)
    return Quote(
        venue=venue,
        pool=pool,
        price=Decimal("150.2"),
        fee_bps=Decimal(25),
        effective_price=amount_out / Decimal("0.5"),
        amount_out=amount_out,
        amount_out_raw=amount_out_raw,
        price_impact_bps=Decimal("0.03"),
    )


def leg(venue: str, pool: str, percent: int, amount_in_raw: int, amount_out_raw: int) -> RouteLeg:
    return RouteLeg(
        venue=venue,
        pool=pool,
        percent=percent,
        amount_in=TOKENS["SOL"].value(amount_in_raw),
        amount_in_raw=amount_in_raw,
        amount_out=TOKENS["USDC"].value(amount_out_raw),
        amount_out_raw=amount_out_raw,
    )


QUOTES = (quote("raydium", RAYDIUM, 74_800_000), quote("meteora", METEORA, 74_912_345))
ROUTE = (leg("meteora", METEORA, 100, 500_000_000, 74_912_345),)
SPLIT = (
    leg("raydium", RAYDIUM, 60, 300_000_000, 44_950_000),
    leg("meteora", METEORA, 40, 200_000_000, 29_980_000),
)
FILLS = (("meteora", METEORA, 500_000_000, 74_880_000),)

# One sample of every event type.
SAMPLES: dict[type[Event], Event] = {
    OrderSubmitted: OrderSubmitted(
        order_type=OrderType.MARKET,
        token_in="SOL",
        token_out="USDC",
        amount_in=Decimal("0.5"),
        amount_in_raw=500_000_000,
        slippage_bps=50,
    ),
    TriggerArmed: TriggerArmed(
        limit_price=Decimal(150), taking_amount=Decimal(75), taking_amount_raw=75_000_000, expires_at=None
    ),
    TriggerFired: TriggerFired(
        price=Decimal("149.824690"),
        amount_out=Decimal("74.912345"),
        amount_out_raw=74_912_345,
        route_plan=ROUTE,
    ),
    OrderCancelled: OrderCancelled(reason="cancelled by its client"),
    OrderExpired: OrderExpired(expires_at=datetime(2026, 12, 1, tzinfo=UTC)),
    RoutingStarted: RoutingStarted(attempt=1),
    VenueSelected: VenueSelected(
        quotes=QUOTES,
        selected_venue="meteora",
        route_plan=ROUTE,
        amount_out=Decimal("74.912345"),
        amount_out_raw=74_912_345,
    ),
    TransactionBuilt: TransactionBuilt(
        venue="meteora",
        instructions=(f"swap:{METEORA}",),
        min_amount_out=Decimal("74.537783"),
        min_amount_out_raw=74_537_783,
    ),
    TransactionSubmitted: TransactionSubmitted(venue="meteora", client_tx_id=f"{ORDER_ID}:1"),
    OrderConfirmed: OrderConfirmed(
        venue="meteora",
        tx_hash=TX_HASH,
        execution_price=Decimal("149.76"),
        amount_out=Decimal("74.88"),
        amount_out_raw=74_880_000,
        fills=(),
    ),
    ExecutionAttemptFailed: ExecutionAttemptFailed(attempt=1, reason="venue error", retry_in_ms=500),
    ExecutionCrashed: ExecutionCrashed(attempt=1, reason="internal error: KeyError: 'x'", retry_in_ms=500),
    OrderFailed: OrderFailed(reason="venue error", attempts=3),
}

# The state machine as specified: event type -> {status before: status after}; None is "no order yet".
ALLOWED: dict[type[Event], dict[OrderStatus | None, OrderStatus]] = {
    OrderSubmitted: {None: P},
    TriggerArmed: {P: W},
    TriggerFired: {W: P},
    OrderCancelled: {W: X},
    OrderExpired: {W: E},
    RoutingStarted: {P: R},
    VenueSelected: {R: R},
    TransactionBuilt: {R: B},
    TransactionSubmitted: {B: S},
    OrderConfirmed: {S: C, P: C},  # from pending: a crashed run's transaction that landed after all
    ExecutionAttemptFailed: {R: P, B: P, S: P},
    ExecutionCrashed: {P: P, R: P, B: P, S: P},
    OrderFailed: {P: F, R: F, B: F, S: F, W: F},  # from waiting: a sniper check that refused
}
STATUSES: list[OrderStatus | None] = [None, *OrderStatus]
ALL_PAIRS = list(itertools.product(STATUSES, SAMPLES))
ALLOWED_PAIRS = [(status, kind) for status, kind in ALL_PAIRS if status in ALLOWED[kind]]
REFUSED_PAIRS = [(status, kind) for status, kind in ALL_PAIRS if status not in ALLOWED[kind]]


def pair_id(pair: tuple[OrderStatus | None, type[Event]]) -> str:
    status, kind = pair
    return f"{status or 'none'}-{kind.__name__}"


def submit_sol(amount_in: str = "0.5", slippage_bps: int = 50) -> OrderSubmitted:
    return Order.submit("market", "SOL", "USDC", slippage_bps, amount_in=amount_in)


def drive_to(
    order: Order, target: OrderStatus, events: list[Event] | None = None, route: tuple[RouteLeg, ...] = ROUTE
) -> list[Event]:
    """Let `order` decide and apply the happy path's events (0.5 SOL to USDC along `route`) until it is in
    `target`.

    Returns the events applied, appended to `events` when it is given.
    """
    events = events if events is not None else []

    def step(event: Event) -> None:
        order.apply(event)
        events.append(event)

    if not order.exists:
        step(submit_sol())
    while order.status != target:
        match order.status:
            case OrderStatus.PENDING:
                step(order.start_attempt())
                step(order.select_route(QUOTES, route, ()))
            case OrderStatus.ROUTING:
                step(order.build_transaction())
            case OrderStatus.BUILDING:
                step(order.submit_transaction())
            case OrderStatus.SUBMITTED:
                step(order.confirm(TX_HASH, FILLS))
            case _:
                raise AssertionError(f"cannot drive an order from {order.status} to {target}")
    assert order.status == target
    return events


# -- the transition table ---------------------------------------------------------------------------


def test_samples_and_table_cover_every_event_type():
    assert set(SAMPLES) == set(EVENT_TYPES.values()) == set(ALLOWED)


@pytest.mark.parametrize(("status", "kind"), ALLOWED_PAIRS, ids=[pair_id(p) for p in ALLOWED_PAIRS])
def test_allowed_transition_leads_to_the_listed_status(status, kind):
    assert next_status(status, SAMPLES[kind]) == ALLOWED[kind][status]


@pytest.mark.parametrize(("status", "kind"), REFUSED_PAIRS, ids=[pair_id(p) for p in REFUSED_PAIRS])
def test_any_other_transition_is_refused(status, kind):
    event = SAMPLES[kind]
    with pytest.raises(InvalidTransition) as raised:
        next_status(status, event)
    assert raised.value.status == status
    assert raised.value.event is event


def test_terminal_statuses_accept_no_event():
    for status, kind in itertools.product((C, F), SAMPLES):
        with pytest.raises(InvalidTransition):
            next_status(status, SAMPLES[kind])


def test_apply_in_a_wrong_status_raises_and_leaves_the_order_unchanged():
    order = Order(ORDER_ID)
    drive_to(order, P)
    before = Order.from_events(ORDER_ID, [SAMPLES[OrderSubmitted]])

    with pytest.raises(InvalidTransition):
        order.apply(SAMPLES[TransactionSubmitted])

    assert order.version == 1
    assert order.status == P
    assert order.tx_hash is None
    assert order == before


def test_apply_refuses_a_second_order_submitted():
    order = Order.from_events(ORDER_ID, [SAMPLES[OrderSubmitted]])
    with pytest.raises(InvalidTransition):
        order.apply(SAMPLES[OrderSubmitted])
    assert order.version == 1


def test_from_events_refuses_a_history_that_does_not_start_with_order_submitted():
    with pytest.raises(InvalidTransition):
        Order.from_events(ORDER_ID, [RoutingStarted(attempt=1)])


# -- folding ----------------------------------------------------------------------------------------


def test_full_confirmed_history_folds_into_a_confirmed_order():
    events = drive_to(Order(ORDER_ID), C)

    order = Order.from_events(ORDER_ID, events)

    assert [type(e) for e in events] == [
        OrderSubmitted,
        RoutingStarted,
        VenueSelected,
        TransactionBuilt,
        TransactionSubmitted,
        OrderConfirmed,
    ]
    assert order.status == C
    assert order.is_terminal
    assert order.version == 6
    assert order.attempt == 1
    assert (order.token_in, order.token_out, order.amount_in_raw, order.slippage_bps) == (
        "SOL",
        "USDC",
        500_000_000,
        50,
    )
    assert order.quotes == QUOTES
    assert order.route_plan == ROUTE
    assert order.selected_venue == "meteora"
    assert order.route_amount_out_raw == 74_912_345
    assert order.instructions == (
        "createAssociatedTokenAccountIdempotent:wSOL",
        "transfer:wSOL",
        "syncNative:wSOL",
        f"swap:{METEORA}",
        "closeAccount:wSOL",
    )
    assert order.min_amount_out_raw == 74_537_783  # 74.912345 USDC less 0.5 %, rounded down, in base units
    assert order.client_tx_id == f"{ORDER_ID}:1"
    assert order.tx_hash == TX_HASH
    assert order.execution_price == Decimal("149.76")
    assert order.amount_out_raw == 74_880_000
    assert order.failure_reason is None


def test_new_order_does_not_exist_until_submitted():
    order = Order(ORDER_ID)
    assert not order.exists
    assert order.status is None
    order.apply(SAMPLES[OrderSubmitted])
    assert order.exists
    assert order.status == P
    assert not order.is_terminal


def test_retried_history_folds_into_attempt_two_confirmed():
    order = Order(ORDER_ID)
    events = drive_to(order, S)
    failed = order.fail_attempt("venue error", POLICY, 0.5)
    assert isinstance(failed, ExecutionAttemptFailed)
    order.apply(failed)
    events.append(failed)
    drive_to(order, C, events)

    folded = Order.from_events(ORDER_ID, events)

    assert folded.status == C
    assert folded.attempt == 2
    assert folded.version == len(events) == 11
    assert folded.client_tx_id == f"{ORDER_ID}:2"
    assert folded.tx_hash == TX_HASH
    assert folded.last_retry_in_ms == failed.retry_in_ms
    assert [e.attempt for e in events if isinstance(e, RoutingStarted)] == [1, 2]


def test_a_failed_attempt_sends_the_order_back_to_pending_and_the_next_attempt_starts_clean():
    order = Order(ORDER_ID)
    drive_to(order, S)
    order.apply(order.fail_attempt("venue error", POLICY, 0.0))
    assert order.status == P
    assert order.failure_reason == "venue error"

    order.apply(order.start_attempt())

    assert order.attempt == 2
    assert order.status == R
    assert order.quotes == ()
    assert order.route_plan == ()
    assert order.selected_venue is None
    assert order.route_amount_out_raw is None
    assert order.instructions == ()
    assert order.min_amount_out_raw is None
    assert order.client_tx_id is None


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_fail_attempt_retries_with_growing_delays_then_fails_at_the_last_attempt(draw):
    order = Order(ORDER_ID)
    decisions: list[ExecutionAttemptFailed | OrderFailed] = []
    for _ in range(POLICY.max_attempts):
        drive_to(order, B)
        decision = order.fail_attempt("venue error", POLICY, draw)
        order.apply(decision)
        decisions.append(decision)

    *retries, last = decisions
    assert all(isinstance(d, ExecutionAttemptFailed) for d in retries)
    assert [d.attempt for d in retries] == [1, 2]
    assert all(d.reason == "venue error" for d in decisions)
    delays = [d.retry_in_ms for d in retries]
    assert delays[0] > 0
    assert all(later > earlier for earlier, later in itertools.pairwise(delays)), delays
    assert last == OrderFailed(reason="venue error", attempts=3)
    assert order.status == F
    assert order.is_terminal
    assert order.failure_reason == "venue error"


@pytest.mark.parametrize(("first_draw", "second_draw"), list(itertools.product([0.0, 0.5, 0.999], repeat=2)))
def test_each_retry_delay_is_longer_than_the_previous_whatever_the_draws(first_draw, second_draw):
    order = Order(ORDER_ID)
    drive_to(order, R)
    first = order.fail_attempt("venue error", POLICY, first_draw)
    order.apply(first)
    drive_to(order, R)
    second = order.fail_attempt("venue error", POLICY, second_draw)

    assert isinstance(first, ExecutionAttemptFailed)
    assert isinstance(second, ExecutionAttemptFailed)
    assert second.retry_in_ms > first.retry_in_ms


# -- submitting -------------------------------------------------------------------------------------

VALID = {
    "order_type": "market",
    "token_in": "SOL",
    "token_out": "USDC",
    "slippage_bps": 50,
    "amount_in": "0.5",
}
TOO_LONG = "1" * 5000  # past the 4,300 digits Python's int() parses
REJECTED = [
    ("unknown order type", {"order_type": "foo"}, "orderType"),
    ("unknown token in", {"token_in": "DOGE"}, "tokenIn"),
    ("unknown token out", {"token_out": "DOGE"}, "tokenOut"),
    ("lower-case token", {"token_in": "sol"}, "tokenIn"),
    ("same token in and out", {"token_out": "SOL"}, "tokenOut"),
    ("slippage zero", {"slippage_bps": 0}, "slippageBps"),
    ("slippage above max", {"slippage_bps": 5001}, "slippageBps"),
    ("slippage negative", {"slippage_bps": -50}, "slippageBps"),
    # amountIn: whole tokens, a number (Decimal once decoded) or a decimal string
    ("amount zero", {"amount_in": Decimal(0)}, "amountIn"),
    ("amount zero string", {"amount_in": "0"}, "amountIn"),
    ("amount zero with decimals", {"amount_in": "0.000000000"}, "amountIn"),
    ("amount negative", {"amount_in": Decimal(-1)}, "amountIn"),
    ("amount negative string", {"amount_in": "-0.5"}, "amountIn"),
    ("amount NaN", {"amount_in": Decimal("NaN")}, "amountIn"),
    ("amount inf", {"amount_in": "Infinity"}, "amountIn"),
    ("amount -inf", {"amount_in": Decimal("-Infinity")}, "amountIn"),
    ("amount not a number", {"amount_in": "half"}, "amountIn"),
    ("amount empty", {"amount_in": ""}, "amountIn"),
    ("amount above SOL max", {"amount_in": "10000.000000001"}, "amountIn"),
    (
        "amount above USDC max",
        {"token_in": "USDC", "token_out": "SOL", "amount_in": "1000000.000001"},
        "amountIn",
    ),
    ("amount above BONK max", {"token_in": "BONK", "amount_in": Decimal(50_000_000_001)}, "amountIn"),
    ("more decimals than SOL", {"amount_in": "0.0000000001"}, "amountIn"),
    (
        "more decimals than SOL by one digit far out",
        {"amount_in": "1.0000000000000000000000000000001"},
        "amountIn",
    ),
    ("more decimals than BONK", {"token_in": "BONK", "amount_in": "0.000001"}, "amountIn"),
    (
        "more decimals than USDC",
        {"token_in": "USDC", "token_out": "SOL", "amount_in": "0.0000005"},
        "amountIn",
    ),
    ("exponent that does not reduce", {"amount_in": "1.5e-9"}, "amountIn"),
    ("exponent that does not reduce, as a number", {"amount_in": Decimal("15E-10")}, "amountIn"),
    ("tiny exponent", {"amount_in": "1e-999999999"}, "amountIn"),
    ("huge exponent", {"amount_in": "1e999999999"}, "amountIn"),
    ("huge exponent, as a number", {"amount_in": Decimal("1E+999999999")}, "amountIn"),
    # amountInRaw: base units, a string of digits
    ("raw zero", {"amount_in": None, "amount_in_raw": "0"}, "amountInRaw"),
    ("raw leading zero", {"amount_in": None, "amount_in_raw": "0500000000"}, "amountInRaw"),
    ("raw negative", {"amount_in": None, "amount_in_raw": "-500000000"}, "amountInRaw"),
    ("raw decimal", {"amount_in": None, "amount_in_raw": "500000000.0"}, "amountInRaw"),
    ("raw exponent", {"amount_in": None, "amount_in_raw": "5e8"}, "amountInRaw"),
    ("raw letters", {"amount_in": None, "amount_in_raw": "12a"}, "amountInRaw"),
    ("raw spaces", {"amount_in": None, "amount_in_raw": " 500000000"}, "amountInRaw"),
    ("raw underscores", {"amount_in": None, "amount_in_raw": "500_000_000"}, "amountInRaw"),
    ("raw empty", {"amount_in": None, "amount_in_raw": ""}, "amountInRaw"),
    ("raw non-ascii digits", {"amount_in": None, "amount_in_raw": "\u0665\u0660\u0660"}, "amountInRaw"),
    ("raw above SOL max", {"amount_in": None, "amount_in_raw": "10000000000001"}, "amountInRaw"),
    ("raw far too long", {"amount_in": None, "amount_in_raw": TOO_LONG}, "amountInRaw"),
    ("both amounts", {"amount_in_raw": "500000000"}, "amountInRaw"),
    ("neither amount", {"amount_in": None}, "amountIn"),
]


@pytest.mark.parametrize(
    ("changes", "field"), [(c, f) for _, c, f in REJECTED], ids=[n for n, _, _ in REJECTED]
)
def test_submit_rejects_a_broken_rule_naming_its_field(changes, field):
    with pytest.raises(OrderRejected) as raised:
        Order.submit(**{**VALID, **changes})
    assert type(raised.value) is OrderRejected
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"amount_in": "0.0000000001"}, "has more than 9 decimals, the token's smallest unit"),
        ({"amount_in": "0"}, "must be at least 0.000000001 SOL, the token's smallest unit"),
        ({"amount_in": "10000.000000001"}, "must be at most 10000 SOL"),
        ({"amount_in": None, "amount_in_raw": TOO_LONG}, "must be at most 10000 SOL"),
        ({"amount_in_raw": "500000000"}, "give amountIn or amountInRaw, not both"),
    ],
)
def test_amount_rules_say_what_they_check(changes, rule):
    with pytest.raises(OrderRejected) as raised:
        Order.submit(**{**VALID, **changes})
    assert raised.value.rule == rule


@pytest.mark.parametrize(
    "amount_in",
    [
        "1_000",
        " 0.5",
        "0.5 ",
        "+1",
        "-1",
        "\uff11",  # a full-width 1
        "\u0663",  # an Arabic-Indic 3
        "1e-9",
        "1.",
        ".5",
        "0x10",
        "NaN",
        "Infinity",
        "",
        "1,5",
    ],
)
def test_a_decimal_string_is_plain_ascii_digits_with_at_most_one_point(amount_in):
    """What Python's Decimal would also read (underscores, spaces, signs, exponents, other scripts' digits)
    is not what the API documents: refused, never read as some other amount."""
    with pytest.raises(OrderRejected) as raised:
        Order.submit(**{**VALID, "amount_in": amount_in})
    assert (raised.value.field, raised.value.rule) == (
        "amountIn",
        "must be a decimal number of plain digits, such as 0.5",
    )


@pytest.mark.parametrize(
    "amount_in",
    [Decimal("1e999999999"), Decimal("-1e999999999"), Decimal("1e-999999999"), "9" * 100_000],
)
def test_an_amount_with_a_huge_exponent_or_length_is_refused_at_once(amount_in):
    started = time.perf_counter()
    with pytest.raises(OrderRejected):
        Order.submit(**{**VALID, "amount_in": amount_in})
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("order_type", ["stop", "MARKET", ""])
def test_submit_refuses_an_order_type_it_does_not_know(order_type):
    with pytest.raises(OrderRejected) as raised:
        Order.submit(**{**VALID, "order_type": order_type})
    assert raised.value.field == "orderType"


@pytest.mark.parametrize(
    ("changes", "amount_in_raw"),
    [
        ({}, 500_000_000),
        ({"amount_in": Decimal("0.5")}, 500_000_000),
        ({"amount_in": None, "amount_in_raw": "500000000"}, 500_000_000),
        ({"amount_in": Decimal("15E-1")}, 1_500_000_000),  # a JSON number, read exactly
        ({"amount_in": Decimal("1500000000e-9")}, 1_500_000_000),
        ({"amount_in": "1.50000000000000"}, 1_500_000_000),
        ({"amount_in": Decimal("0.5E+1")}, 5_000_000_000),
        ({"amount_in": Decimal("1e-9")}, 1),
        ({"amount_in": None, "amount_in_raw": "1"}, 1),
        ({"amount_in": "10000"}, 10_000 * 10**9),
        ({"amount_in": None, "amount_in_raw": "10000000000000"}, 10_000 * 10**9),
        ({"slippage_bps": 1}, 500_000_000),
        ({"slippage_bps": 5000}, 500_000_000),
        ({"token_in": "USDC", "token_out": "SOL", "amount_in": "1000000"}, 10**12),
        ({"token_in": "USDC", "token_out": "SOL", "amount_in": "999999.123456"}, 999_999_123_456),
        ({"token_in": "BONK", "token_out": "JUP", "amount_in": "0.00001"}, 1),
    ],
    ids=[
        "decimal string",
        "number",
        "raw",
        "exponent that reduces",
        "large exponent that reduces",
        "trailing zeros past the decimals",
        "positive exponent",
        "SOL unit",
        "SOL unit raw",
        "SOL max",
        "SOL max raw",
        "slippage 1",
        "slippage 5000",
        "USDC max",
        "USDC with all its decimals",
        "BONK unit",
    ],
)
def test_submit_accepts_a_valid_order_and_records_its_amount_both_ways(changes, amount_in_raw):
    values = {**VALID, **changes}
    event = Order.submit(**values)
    token = TOKENS[values["token_in"]]
    assert event == OrderSubmitted(
        order_type=OrderType.MARKET,
        token_in=values["token_in"],
        token_out=values["token_out"],
        amount_in=token.value(amount_in_raw),
        amount_in_raw=amount_in_raw,
        slippage_bps=values["slippage_bps"],
    )
    assert event.amount_in.scaleb(token.decimals) == amount_in_raw  # the value is exact, not rounded


def test_every_listed_token_is_accepted_as_input_up_to_its_maximum():
    for symbol, token in TOKENS.items():
        other = "USDC" if symbol != "USDC" else "SOL"
        event = Order.submit("market", symbol, other, 50, amount_in_raw=str(token.max_amount_in_raw))
        assert (event.token_in, event.amount_in_raw) == (symbol, token.max_amount_in_raw)


@given(
    symbol=st.sampled_from(sorted(TOKENS)),
    data=st.data(),
)
def test_an_amount_given_either_way_is_one_event_that_survives_the_wire_exactly(symbol, data):
    token = TOKENS[symbol]
    raw = data.draw(st.integers(1, token.max_amount_in_raw))
    other = "USDC" if symbol != "USDC" else "SOL"
    by_value = Order.submit("market", symbol, other, 50, amount_in=f"{token.value(raw):f}")
    by_raw = Order.submit("market", symbol, other, 50, amount_in_raw=str(raw))

    assert by_value == by_raw
    assert by_value.amount_in_raw == raw
    decoded = msgspec.json.decode(msgspec.json.encode(by_value), type=OrderSubmitted)
    assert decoded == by_value
    assert (decoded.amount_in_raw, decoded.amount_in.scaleb(token.decimals)) == (raw, raw)


# -- routing, building and submitting the transaction ------------------------------------------------


def test_the_selected_venue_is_the_largest_legs_and_the_route_pays_its_legs_sum():
    order = Order(ORDER_ID)
    drive_to(order, P)
    order.apply(order.start_attempt())
    left_out = (LeftOut(venue="orca", reason="venue did not answer in time"),)

    selected = order.select_route(QUOTES, SPLIT, left_out)

    assert selected == VenueSelected(
        quotes=QUOTES,
        selected_venue="raydium",
        route_plan=SPLIT,
        amount_out=Decimal("74.93"),
        amount_out_raw=74_930_000,
        left_out=left_out,
    )


@pytest.mark.parametrize(
    "route",
    [(), (leg("meteora", METEORA, 100, 499_999_999, 74_912_345),), SPLIT[:1]],
    ids=["no leg", "one base unit short", "a leg of a split missing"],
)
def test_a_route_that_does_not_take_the_whole_amount_is_our_error(route):
    order = Order(ORDER_ID)
    drive_to(order, P)
    order.apply(order.start_attempt())
    with pytest.raises(InvariantViolated):
        order.select_route(QUOTES, route, ())


@pytest.mark.parametrize(
    ("token_in", "token_out", "expected"),
    [
        (
            "SOL",
            "USDC",
            (
                "createAssociatedTokenAccountIdempotent:wSOL",
                "transfer:wSOL",
                "syncNative:wSOL",
                f"swap:{RAYDIUM}",
                f"swap:{METEORA}",
                "closeAccount:wSOL",
            ),
        ),
        (
            "USDC",
            "SOL",
            (
                "createAssociatedTokenAccountIdempotent:wSOL",
                f"swap:{RAYDIUM}",
                f"swap:{METEORA}",
                "closeAccount:wSOL",
            ),
        ),
        ("USDC", "BONK", (f"swap:{RAYDIUM}", f"swap:{METEORA}")),
        ("JUP", "USDT", (f"swap:{RAYDIUM}", f"swap:{METEORA}")),
    ],
    ids=["sol in wraps then closes", "sol out creates then unwraps", "no sol", "no sol either"],
)
def test_swap_instructions_swap_once_per_leg_and_wrap_native_sol_around_them(token_in, token_out, expected):
    assert swap_instructions(token_in, token_out, SPLIT) == expected


@pytest.mark.parametrize(
    ("slippage_bps", "min_amount_out_raw"),
    [(50, 74_537_783), (1, 74_904_853), (5000, 37_456_172), (33, 74_665_134)],
)
def test_built_transaction_carries_one_swap_per_leg_and_the_route_less_slippage_rounded_down(
    slippage_bps, min_amount_out_raw
):
    order = Order(ORDER_ID)
    order.apply(submit_sol(slippage_bps=slippage_bps))
    order.apply(order.start_attempt())
    order.apply(order.select_route(QUOTES, ROUTE, ()))

    built = order.build_transaction()

    assert built == TransactionBuilt(
        venue="meteora",
        instructions=(
            "createAssociatedTokenAccountIdempotent:wSOL",
            "transfer:wSOL",
            "syncNative:wSOL",
            f"swap:{METEORA}",
            "closeAccount:wSOL",
        ),
        min_amount_out=TOKENS["USDC"].value(min_amount_out_raw),
        min_amount_out_raw=min_amount_out_raw,
    )


def test_confirmation_records_each_legs_fill_and_the_exact_execution_price():
    order = Order(ORDER_ID)
    drive_to(order, S, route=SPLIT)

    confirmed = order.confirm(
        TX_HASH,
        (("raydium", RAYDIUM, 300_000_000, 44_940_000), ("meteora", METEORA, 200_000_000, 29_970_001)),
    )

    assert confirmed == OrderConfirmed(
        venue="raydium",
        tx_hash=TX_HASH,
        execution_price=Decimal("149.820002"),  # 74.910001 USDC / 0.5 SOL
        amount_out=Decimal("74.910001"),
        amount_out_raw=74_910_001,
        fills=(
            Fill(
                venue="raydium",
                pool=RAYDIUM,
                amount_in=Decimal("0.3"),
                amount_in_raw=300_000_000,
                amount_out=Decimal("44.94"),
                amount_out_raw=44_940_000,
            ),
            Fill(
                venue="meteora",
                pool=METEORA,
                amount_in=Decimal("0.2"),
                amount_in_raw=200_000_000,
                amount_out=Decimal("29.970001"),
                amount_out_raw=29_970_001,
            ),
        ),
    )
    order.apply(confirmed)
    assert (order.status, order.amount_out_raw, order.execution_price) == (
        C,
        74_910_001,
        Decimal("149.820002"),
    )


def test_client_tx_id_is_stable_within_an_attempt_and_differs_between_attempts():
    order = Order(ORDER_ID)
    drive_to(order, B)
    first = order.submit_transaction().client_tx_id
    assert order.submit_transaction().client_tx_id == first

    drive_to(order, S)
    order.apply(order.fail_attempt("venue error", POLICY, 0.5))
    drive_to(order, B)
    second = order.submit_transaction().client_tx_id

    assert second != first
    assert second == order.submit_transaction().client_tx_id
    assert (first, second) == (f"{ORDER_ID}:1", f"{ORDER_ID}:2")


def test_client_tx_id_differs_between_orders_at_the_same_attempt():
    ids = set()
    for order_id in (ORDER_ID, "0b6c1f7e-52d8-4a57-8f0e-9d1c2b3a4e5f"):
        order = Order(order_id)
        drive_to(order, B)
        ids.add(order.submit_transaction().client_tx_id)
    assert len(ids) == 2


# -- crashed runs and invariants ------------------------------------------------------------------------


def test_record_crash_runs_again_with_backoff_then_fails_after_the_policys_crashed_runs():
    policy = RetryPolicy(max_attempts=3, base_ms=500, max_crashed_runs=3)
    order = Order(ORDER_ID)
    drive_to(order, S)
    decisions = []
    for _ in range(3):
        decision = order.record_crash("internal error: KeyError: 'x'", policy, 0.5)
        order.apply(decision)
        decisions.append(decision)

    *crashes, last = decisions
    assert [type(d) for d in crashes] == [ExecutionCrashed, ExecutionCrashed]
    assert [d.retry_in_ms for d in crashes] == [500, 1000]
    assert order.crashed_runs == 2
    assert last == OrderFailed(reason="internal error: KeyError: 'x' (crashed 3 runs)", attempts=1)
    assert order.status == F


def test_a_crash_before_the_first_attempt_is_counted_too():
    order = Order(ORDER_ID)
    drive_to(order, P)
    crash = order.record_crash("internal error: boom", POLICY, 0.0)
    order.apply(crash)
    assert crash == ExecutionCrashed(attempt=0, reason="internal error: boom", retry_in_ms=400)
    assert (order.status, order.crashed_runs) == (P, 1)


def test_decisions_that_need_a_route_raise_invariant_violated_without_one():
    order = Order(ORDER_ID)
    drive_to(order, P)
    order.apply(order.start_attempt())
    confirm = lambda: order.confirm(TX_HASH, FILLS)  # noqa: E731
    for decide in (order.build_transaction, order.submit_transaction, confirm):
        with pytest.raises(InvariantViolated):
            decide()


def test_order_type_is_an_enum_with_the_wire_values():
    event = submit_sol()
    assert event.order_type is OrderType.MARKET
    assert msgspec.json.decode(msgspec.json.encode(event), type=OrderSubmitted).order_type is OrderType.MARKET
    assert [str(kind) for kind in OrderType] == ["market", "limit", "sniper"]
