"""Pricing and routing maths: turning a venue's pool state into a quote, and choosing between quotes."""

from __future__ import annotations

from domain.events import Quote

BPS = 10_000


def quote_for(venue: str, price: float, fee_bps: int, price_impact: float, amount_in: float) -> Quote:
    """The venue's offer for `amount_in`: spot `price`, minus its fee, minus the pool's price impact."""
    effective_price = price * (1 - fee_bps / BPS) * (1 - price_impact)
    return Quote(
        venue=venue,
        price=price,
        fee_bps=fee_bps,
        effective_price=effective_price,
        amount_out=amount_in * effective_price,
    )


def best_quote(quotes: list[Quote] | tuple[Quote, ...]) -> Quote:
    """The quote that pays out most after fees; on a tie the cheaper fee, then the venue name, wins."""
    if not quotes:
        raise ValueError("no quotes to choose from")
    return max(quotes, key=lambda q: (q.amount_out, -q.fee_bps, q.venue))


def min_amount_out(quote: Quote, slippage_bps: int) -> float:
    """The least the swap may return before it is refused: the quote less the allowed slippage."""
    return quote.amount_out * (1 - slippage_bps / BPS)
