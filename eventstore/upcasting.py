"""Upcasters: each turns one stored shape of an event into the next, so old events read as current ones.

The log is never rewritten; an event keeps the shape and schema version it was stored with, and is brought
up to date every time it is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Data = dict[str, Any]


def _order_type_defaults_to_market(data: Data) -> Data:
    """OrderSubmitted 1 -> 2: before limit and sniper orders existed, every order was a market order."""
    return {**data, "orderType": data.get("orderType", "market")}


UPCASTERS: dict[tuple[str, int], Callable[[Data], Data]] = {
    ("OrderSubmitted", 1): _order_type_defaults_to_market,
}


def upcast(data: Data, schema_version: int) -> Data:
    """`data` (an event as stored, with its `type`) brought from `schema_version` to the current shape."""
    while (step := UPCASTERS.get((data["type"], schema_version))) is not None:
        data = step(data)
        schema_version += 1
    return data
