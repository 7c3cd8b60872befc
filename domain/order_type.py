"""The kinds of order the engine knows; execution dispatches on them (`commands/execute_order.py`)."""

from __future__ import annotations

from enum import StrEnum


class OrderType(StrEnum):
    MARKET = "market"  # executed at once at the best venue's price
    LIMIT = "limit"  # waits until a quote for its whole amount reaches its limit, then runs as market
    SNIPER = "sniper"  # waits for a new token's first pool, then buys it as a market order

    @property
    def is_triggered(self) -> bool:
        """Whether the order waits for a trigger (armed at submission) before it runs as a market order."""
        return self is not OrderType.MARKET
