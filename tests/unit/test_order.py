"""The Order aggregate: the transition table, folding events into state, and the decisions it makes."""

from __future__ import annotations

import itertools
import math

import msgspec
import pytest

from domain.events import (
    EVENT_TYPES,
    Event,
    ExecutionAttemptFailed,
    ExecutionCrashed,
    OrderConfirmed,
    OrderFailed,
    OrderSubmitted,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    VenueSelected,
)
from domain.order import InvariantViolated, Order, OrderNotSupported, OrderRejected, swap_instructions
from domain.order_type import OrderType
from domain.retry import RetryPolicy
from domain.routing import quote_for
from domain.status import OrderStatus
from domain.tokens import TOKENS
from domain.transitions import InvalidTransition, next_status

ORDER_ID = "6f1c0a52-3c1e-4f7e-9a57-2b8f0d4b8c11"
POLICY = RetryPolicy(max_attempts=3, base_ms=500)
TX_HASH = "4Zq8" + "1" * 84

P, R, B, S, C, F = (
    OrderStatus.PENDING,
    OrderStatus.ROUTING,
    OrderStatus.BUILDING,
    OrderStatus.SUBMITTED,
    OrderStatus.CONFIRMED,
    OrderStatus.FAILED,
)
QUOTES = (
    quote_for("raydium", 150.0, 25, 0.0005, 0.5),
    quote_for("meteora", 150.2, 20, 0.0005, 0.5),
)

# One sample of every event type.
SAMPLES: dict[type[Event], Event] = {
    OrderSubmitted: OrderSubmitted(
        order_type="market", token_in="SOL", token_out="USDC", amount_in=0.5, slippage_bps=50
    ),
    RoutingStarted: RoutingStarted(attempt=1),
    VenueSelected: VenueSelected(quotes=QUOTES, selected_venue="meteora"),
    TransactionBuilt: TransactionBuilt(
        venue="meteora", instructions=("swap",), min_amount_out=QUOTES[1].amount_out * 0.995
    ),
    TransactionSubmitted: TransactionSubmitted(venue="meteora", client_tx_id=f"{ORDER_ID}:1"),
    OrderConfirmed: OrderConfirmed(venue="meteora", tx_hash=TX_HASH, execution_price=149.9, amount_out=74.95),
    ExecutionAttemptFailed: ExecutionAttemptFailed(attempt=1, reason="venue error", retry_in_ms=500),
    ExecutionCrashed: ExecutionCrashed(attempt=1, reason="internal error: KeyError: 'x'", retry_in_ms=500),
    OrderFailed: OrderFailed(reason="venue error", attempts=3),
}

# The state machine as specified: event type -> {status before: status after}; None is "no order yet".
ALLOWED: dict[type[Event], dict[OrderStatus | None, OrderStatus]] = {
    OrderSubmitted: {None: P},
    RoutingStarted: {P: R},
    VenueSelected: {R: R},
    TransactionBuilt: {R: B},
    TransactionSubmitted: {B: S},
    OrderConfirmed: {S: C},
    ExecutionAttemptFailed: {R: P, B: P, S: P},
    ExecutionCrashed: {P: P, R: P, B: P, S: P},
    OrderFailed: {P: F, R: F, B: F, S: F},
}
STATUSES: list[OrderStatus | None] = [None, *OrderStatus]
ALL_PAIRS = list(itertools.product(STATUSES, SAMPLES))
ALLOWED_PAIRS = [(status, kind) for status, kind in ALL_PAIRS if status in ALLOWED[kind]]
REFUSED_PAIRS = [(status, kind) for status, kind in ALL_PAIRS if status not in ALLOWED[kind]]


def pair_id(pair: tuple[OrderStatus | None, type[Event]]) -> str:
    status, kind = pair
    return f"{status or 'none'}-{kind.__name__}"


def drive_to(order: Order, target: OrderStatus, events: list[Event] | None = None) -> list[Event]:
    """Let `order` decide and apply the happy path's events until it is in `target`.

    Returns the events applied, appended to `events` when it is given.
    """
    events = events if events is not None else []

    def step(event: Event) -> None:
        order.apply(event)
        events.append(event)

    if not order.exists:
        step(Order.submit("market", "SOL", "USDC", 0.5, 50))
    while order.status != target:
        match order.status:
            case OrderStatus.PENDING:
                step(order.start_attempt())
                step(order.select_venue(list(QUOTES)))
            case OrderStatus.ROUTING:
                step(order.build_transaction())
            case OrderStatus.BUILDING:
                step(order.submit_transaction())
            case OrderStatus.SUBMITTED:
                step(order.confirm(TX_HASH, 149.9, 74.95))
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
        order.apply(SAMPLES[OrderConfirmed])

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
    assert (order.token_in, order.token_out, order.amount_in, order.slippage_bps) == ("SOL", "USDC", 0.5, 50)
    assert order.quotes == QUOTES
    assert order.selected_venue == "meteora"
    assert order.instructions == (
        "createWrappedSolAccount",
        "wrapSol",
        "swap",
        "closeWrappedSolAccount",
    )
    assert order.min_amount_out == pytest.approx(QUOTES[1].amount_out * (1 - 50 / 10_000))
    assert order.client_tx_id == f"{ORDER_ID}:1"
    assert order.tx_hash == TX_HASH
    assert order.execution_price == 149.9
    assert order.amount_out == 74.95
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
    assert order.selected_venue is None
    assert order.instructions == ()
    assert order.min_amount_out is None
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

VALID = {"order_type": "market", "token_in": "SOL", "token_out": "USDC", "amount_in": 0.5, "slippage_bps": 50}
REJECTED = [
    ("unknown order type", {"order_type": "foo"}, "orderType"),
    ("unknown token in", {"token_in": "DOGE"}, "tokenIn"),
    ("unknown token out", {"token_out": "DOGE"}, "tokenOut"),
    ("lower-case token", {"token_in": "sol"}, "tokenIn"),
    ("same token in and out", {"token_out": "SOL"}, "tokenOut"),
    ("amount zero", {"amount_in": 0.0}, "amountIn"),
    ("amount negative", {"amount_in": -1.0}, "amountIn"),
    ("amount NaN", {"amount_in": math.nan}, "amountIn"),
    ("amount inf", {"amount_in": math.inf}, "amountIn"),
    ("amount -inf", {"amount_in": -math.inf}, "amountIn"),
    ("amount above SOL max", {"amount_in": 10_000.001}, "amountIn"),
    ("amount above USDC max", {"token_in": "USDC", "token_out": "SOL", "amount_in": 1_000_001}, "amountIn"),
    ("amount above BONK max", {"token_in": "BONK", "amount_in": 50_000_000_001}, "amountIn"),
    ("amount below SOL unit", {"amount_in": 1e-10}, "amountIn"),
    ("amount below BONK unit", {"token_in": "BONK", "amount_in": 1e-6}, "amountIn"),
    ("slippage zero", {"slippage_bps": 0}, "slippageBps"),
    ("slippage above max", {"slippage_bps": 5001}, "slippageBps"),
    ("slippage negative", {"slippage_bps": -50}, "slippageBps"),
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


@pytest.mark.parametrize("order_type", ["limit", "sniper"])
def test_submit_refuses_planned_order_types_as_not_supported(order_type):
    with pytest.raises(OrderNotSupported) as raised:
        Order.submit(**{**VALID, "order_type": order_type})
    assert raised.value.field == "orderType"
    assert isinstance(raised.value, OrderRejected)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"amount_in": 10_000},
        {"amount_in": 1e-9},
        {"slippage_bps": 1},
        {"slippage_bps": 5000},
        {"token_in": "USDC", "token_out": "SOL", "amount_in": 1_000_000},
        {"token_in": "BONK", "token_out": "JUP", "amount_in": 1e-5},
    ],
    ids=["typical", "SOL max", "SOL unit", "slippage 1", "slippage 5000", "USDC max", "BONK unit"],
)
def test_submit_accepts_a_valid_order_and_returns_its_values(changes):
    values = {**VALID, **changes}
    event = Order.submit(**values)
    assert event == OrderSubmitted(**values)


def test_every_listed_token_is_accepted_as_input():
    for symbol, token in TOKENS.items():
        other = "USDC" if symbol != "USDC" else "SOL"
        event = Order.submit("market", symbol, other, token.max_amount_in, 50)
        assert event.token_in == symbol


# -- building and submitting the transaction --------------------------------------------------------


@pytest.mark.parametrize(
    ("token_in", "token_out", "expected"),
    [
        ("SOL", "USDC", ("createWrappedSolAccount", "wrapSol", "swap", "closeWrappedSolAccount")),
        ("USDC", "SOL", ("createWrappedSolAccount", "swap", "closeWrappedSolAccount")),
        ("USDC", "BONK", ("swap",)),
        ("JUP", "USDT", ("swap",)),
    ],
    ids=["sol in wraps then closes", "sol out creates then unwraps", "no sol", "no sol either"],
)
def test_swap_instructions_wrap_and_unwrap_native_sol(token_in, token_out, expected):
    assert swap_instructions(token_in, token_out) == expected


def test_built_transaction_carries_the_instructions_and_min_amount_of_the_selected_quote():
    order = Order(ORDER_ID)
    order.apply(Order.submit("market", "USDC", "SOL", 25, 100))
    order.apply(order.start_attempt())
    order.apply(order.select_venue(list(QUOTES)))

    built = order.build_transaction()

    assert built.venue == "meteora"
    assert built.instructions == ("createWrappedSolAccount", "swap", "closeWrappedSolAccount")
    assert built.min_amount_out == pytest.approx(QUOTES[1].amount_out * 0.99)


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


def test_decisions_on_a_selected_venue_without_its_quote_raise_invariant_violated():
    order = Order(ORDER_ID)
    drive_to(order, P)
    order.apply(order.start_attempt())
    order.selected_venue = "orca"  # a state no event leads to
    confirm = lambda: order.confirm(TX_HASH, 1.0, 1.0)  # noqa: E731
    for decide in (order.build_transaction, order.submit_transaction, confirm):
        with pytest.raises(InvariantViolated):
            decide()


def test_order_type_is_an_enum_with_the_wire_values():
    event = Order.submit("market", "SOL", "USDC", 0.5, 50)
    assert event.order_type is OrderType.MARKET
    assert msgspec.json.decode(msgspec.json.encode(event), type=OrderSubmitted).order_type is OrderType.MARKET
    assert [str(kind) for kind in OrderType] == ["market", "limit", "sniper"]
