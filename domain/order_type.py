"""The kinds of order the engine knows; execution dispatches on them (`commands/execute_order.py`)."""

from __future__ import annotations

from enum import StrEnum


class OrderType(StrEnum):
    MARKET = "market"  # executed at once at the best venue's price
    LIMIT = "limit"  # planned: waits until the price reaches a limit
    SNIPER = "sniper"  # planned: waits for a token's launch or migration

    @property
    def is_supported(self) -> bool:
        return self in SUPPORTED_ORDER_TYPES


SUPPORTED_ORDER_TYPES = (OrderType.MARKET,)
PLANNED_ORDER_TYPES = tuple(kind for kind in OrderType if kind not in SUPPORTED_ORDER_TYPES)
