"""Upcasters: each turns one stored shape of an event into the next, so old events read as current ones.

The log is never rewritten; an event keeps the shape and schema version it was stored with, and is brought
up to date every time it is read.

Before amounts were exact, events held them as JSON floats in whole tokens. Those are read as the decimal
the float prints as (`0.1` is 0.1, not the float's binary expansion), rounded half-even to the token's base
units. Some of those events do not name their tokens: their upcasters are given the order's tokens, which
the store reads from the order's first event (`needs_order_tokens`), for old events only.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from domain.tokens import token_of

Data = dict[str, Any]


class OrderTokens(NamedTuple):
    """What the order's first event says that later events of the old shapes leave out."""

    token_in: str
    token_out: str
    amount_in_raw: int

    @classmethod
    def of(cls, submitted: Data, schema_version: int) -> OrderTokens:
        """From the order's OrderSubmitted as stored, with the schema version it was stored with."""
        current = upcast(submitted, schema_version)
        return cls(current["tokenIn"], current["tokenOut"], current["amountInRaw"])


def _given(tokens: OrderTokens | None) -> OrderTokens:
    if tokens is None:
        raise ValueError("this upcaster needs the order's tokens (see needs_order_tokens)")
    return tokens


def _legacy_raw(value: float | int, symbol: str) -> int:
    """A float amount of whole tokens as base units (of one of the engine's tokens: events of the old shapes
    predate tokens launched at runtime)."""
    decimals = token_of(symbol).decimals
    return int(Decimal(repr(value)).scaleb(decimals).quantize(Decimal(1), ROUND_HALF_EVEN))


def _legacy_decimal(value: float | int) -> str:
    return repr(value)


def _value(raw: int, symbol: str) -> str:
    return str(token_of(symbol).value(raw))


def _order_type_defaults_to_market(data: Data, _: OrderTokens | None) -> Data:
    """OrderSubmitted 1 -> 2: before limit and sniper orders existed, every order was a market order."""
    return {**data, "orderType": data.get("orderType", "market")}


def _exact_amount_in(data: Data, _: OrderTokens | None) -> Data:
    """OrderSubmitted 2 -> 3: a float amountIn as base units (at least one: the old engine took amounts finer
    than the token's smallest unit)."""
    raw = max(1, _legacy_raw(data["amountIn"], data["tokenIn"]))
    return {**data, "amountIn": _value(raw, data["tokenIn"]), "amountInRaw": raw}


def _route_plan_of_one_venue(data: Data, tokens: OrderTokens | None) -> Data:
    """VenueSelected 1 -> 2: float quotes, one pool per venue (named after it), the whole order in one leg."""
    token_in, token_out, amount_in_raw = _given(tokens)
    quotes = []
    for quote in data["quotes"]:
        raw_out = _legacy_raw(quote["amountOut"], token_out)
        price, effective = Decimal(repr(quote["price"])), Decimal(repr(quote["effectivePrice"]))
        after_fee = price * (1 - Decimal(quote["feeBps"]) / 10_000)
        impact = (1 - effective / after_fee) * 10_000 if after_fee else Decimal(0)
        quotes.append(
            {
                "venue": quote["venue"],
                "pool": quote["venue"],
                "price": _legacy_decimal(quote["price"]),
                "feeBps": str(quote["feeBps"]),
                "effectivePrice": _legacy_decimal(quote["effectivePrice"]),
                "amountOut": _value(raw_out, token_out),
                "amountOutRaw": raw_out,
                "priceImpactBps": str(impact.quantize(Decimal("0.01"))),
            }
        )
    chosen = next(q for q in quotes if q["venue"] == data["selectedVenue"])
    return {
        **data,
        "quotes": quotes,
        "routePlan": [
            {
                "venue": chosen["venue"],
                "pool": chosen["pool"],
                "percent": 100,
                "amountIn": _value(amount_in_raw, token_in),
                "amountInRaw": amount_in_raw,
                "amountOut": chosen["amountOut"],
                "amountOutRaw": chosen["amountOutRaw"],
            }
        ],
        "amountOut": chosen["amountOut"],
        "amountOutRaw": chosen["amountOutRaw"],
        "leftOut": [],
    }


def _exact_min_amount_out(data: Data, tokens: OrderTokens | None) -> Data:
    """TransactionBuilt 1 -> 2: a float minAmountOut as base units."""
    token_out = _given(tokens).token_out
    raw = _legacy_raw(data["minAmountOut"], token_out)
    return {**data, "minAmountOut": _value(raw, token_out), "minAmountOutRaw": raw}


def _exact_fill(data: Data, tokens: OrderTokens | None) -> Data:
    """OrderConfirmed 1 -> 2: float amounts as base units; one fill, at the venue that confirmed."""
    token_in, token_out, amount_in_raw = _given(tokens)
    raw = _legacy_raw(data["amountOut"], token_out)
    fill = {
        "venue": data["venue"],
        "pool": data["venue"],
        "amountIn": _value(amount_in_raw, token_in),
        "amountInRaw": amount_in_raw,
        "amountOut": _value(raw, token_out),
        "amountOutRaw": raw,
    }
    return {
        **data,
        "executionPrice": _legacy_decimal(data["executionPrice"]),
        "amountOut": fill["amountOut"],
        "amountOutRaw": raw,
        "fills": [fill],
    }


UPCASTERS: dict[tuple[str, int], Callable[[Data, OrderTokens | None], Data]] = {
    ("OrderSubmitted", 1): _order_type_defaults_to_market,
    ("OrderSubmitted", 2): _exact_amount_in,
    ("VenueSelected", 1): _route_plan_of_one_venue,
    ("TransactionBuilt", 1): _exact_min_amount_out,
    ("OrderConfirmed", 1): _exact_fill,
}
# event type -> the last schema version whose upcaster needs the order's tokens
_NEED_ORDER_TOKENS = {"VenueSelected": 1, "TransactionBuilt": 1, "OrderConfirmed": 1}


def needs_order_tokens(type_name: str, schema_version: int) -> bool:
    """Whether upcasting this stored shape needs the order's tokens (see `upcast`)."""
    return schema_version <= _NEED_ORDER_TOKENS.get(type_name, 0)


def upcast(data: Data, schema_version: int, order_tokens: OrderTokens | None = None) -> Data:
    """`data` (an event as stored, with its `type`) brought from `schema_version` to the current shape;
    `order_tokens` is required when `needs_order_tokens` says so."""
    while (step := UPCASTERS.get((data["type"], schema_version))) is not None:
        data = step(data, order_tokens)
        schema_version += 1
    return data
