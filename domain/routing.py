"""The router's integer results as the decision's records, and the floor slippage puts under them."""

from __future__ import annotations

from decimal import Decimal, localcontext

from domain.events import LeftOut, Quote, RouteLeg
from domain.pools import PoolState
from domain.route_plan import RoutePlan
from domain.tokens import Token

BPS = 10_000
# A split route is taken only when it pays this much more than the best single pool: each extra leg costs
# the transaction compute units and size, and a few bps on a small order is less than that is worth.
MIN_SPLIT_GAIN_BPS = 5
PRICE_DIGITS = 18  # significant digits of a price: far past any pool's precision, and still exact to read


def execution_price(amount_in_raw: int, token_in: Token, amount_out_raw: int, token_out: Token) -> Decimal:
    """Whole `token_out` per whole `token_in`, to PRICE_DIGITS significant digits."""
    with localcontext() as context:
        context.prec = PRICE_DIGITS
        return token_out.value(amount_out_raw) / token_in.value(amount_in_raw)


def route_records(
    plan: RoutePlan, pools: list[PoolState], token_in: Token, token_out: Token
) -> tuple[tuple[Quote, ...], tuple[RouteLeg, ...], tuple[LeftOut, ...]]:
    """The plan as the decision event records it: a quote per pool that can take the whole order, the
    route's legs with their values, and the pools that cannot take it alone (they may still be a leg)."""
    spot = {pool.pool_id: pool.spot_price(token_in.symbol) for pool in pools}
    amount_in_raw = sum(leg.amount_in_raw for leg in plan.legs)
    quotes, short = [], []
    for quote in plan.quotes:
        if quote.amount_out_raw is None or quote.fee_raw is None or quote.price_impact_bps is None:
            short.append(
                LeftOut(venue=quote.venue, reason=f"{quote.pool}: too little liquidity for the order")
            )
            continue
        with localcontext() as context:
            context.prec = PRICE_DIGITS
            fee_bps = Decimal(quote.fee_raw * BPS) / amount_in_raw
            price, impact = +spot[quote.pool], +quote.price_impact_bps
        quotes.append(
            Quote(
                venue=quote.venue,
                pool=quote.pool,
                price=price,
                fee_bps=fee_bps,
                effective_price=execution_price(amount_in_raw, token_in, quote.amount_out_raw, token_out),
                amount_out=token_out.value(quote.amount_out_raw),
                amount_out_raw=quote.amount_out_raw,
                price_impact_bps=impact,
            )
        )
    legs = tuple(
        RouteLeg(
            venue=leg.venue,
            pool=leg.pool,
            percent=leg.percent,
            amount_in=token_in.value(leg.amount_in_raw),
            amount_in_raw=leg.amount_in_raw,
            amount_out=token_out.value(leg.amount_out_raw),
            amount_out_raw=leg.amount_out_raw,
        )
        for leg in plan.legs
    )
    return tuple(quotes), legs, tuple(short)
