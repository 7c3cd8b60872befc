"""How a price is shown: in one orientation per pair of tokens, whichever way the swap goes.

Events record prices in the swap's direction (`tokenOut` per `tokenIn`), so the same market reads 151.5 for
SOL → USDC and 0.0066 for USDC → SOL. A person compares prices of one pair as one number with one unit:
`quote` per `base` (151.5 USDC per SOL both ways), as trading venues show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# Which token of a pair is the quote (the unit prices are counted in): the one earlier in this list. The
# stablecoins first, then SOL, then the rest: BONK/USDC, JUP/SOL and BONK/JUP read as they do on venues.
QUOTE_PREFERENCE = ("USDC", "USDT", "SOL", "JUP", "BONK")

SIGNIFICANT_DIGITS = 6  # what a price shows: enough to tell two venues' quotes apart


@dataclass(frozen=True, slots=True)
class Pair:
    base: str
    quote: str

    @property
    def unit(self) -> str:
        return f"{self.quote} per {self.base}"

    def price(self, token_in: str, out_per_in: Decimal) -> Decimal:
        """A price given in a swap's direction (`tokenOut` per `tokenIn`), as `quote` per `base`."""
        if out_per_in <= 0:
            raise ValueError(f"a price is positive, not {out_per_in}")
        return out_per_in if token_in == self.base else 1 / out_per_in

    def show(self, token_in: str, out_per_in: Decimal) -> str:
        """`151.612 USDC per SOL`: the price in this pair's orientation, rounded to read, with its unit."""
        return f"{readable(self.price(token_in, out_per_in))} {self.unit}"


def pair_of(token_in: str, token_out: str) -> Pair:
    """The pair a swap trades on, the same for both directions. A token not in QUOTE_PREFERENCE (one
    launched at runtime) is a base against any that is (PEPE/SOL: `SOL per PEPE`); of two such tokens, the
    first in alphabetical order is the quote."""
    if token_in == token_out:
        raise ValueError(f"a pair needs two tokens, not {token_in} twice")
    quote = min(token_in, token_out, key=_quote_rank)
    return Pair(base=token_out if quote == token_in else token_in, quote=quote)


def _quote_rank(symbol: str) -> tuple[int, str]:
    listed = symbol in QUOTE_PREFERENCE
    return (QUOTE_PREFERENCE.index(symbol) if listed else len(QUOTE_PREFERENCE), symbol)


def readable(price: Decimal) -> str:
    """`price` to SIGNIFICANT_DIGITS, without an exponent or trailing zeros (0.0000201, 151.612)."""
    text = f"{Decimal(f'{price:.{SIGNIFICANT_DIGITS}g}'):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
