"""The taskiq task: a thin entry point that hands the order to this process's executor."""

from __future__ import annotations

from typing import Annotated

from taskiq import Context, TaskiqDepends

EXECUTE_ORDER = "execute_order"


async def execute_order(order_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    await context.state.executor.execute(order_id)
