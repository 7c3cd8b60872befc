"""Reading what the engine under measurement recorded: its event log, from the bench's own process."""

from __future__ import annotations

import asyncio

import psycopg

TERMINAL = ("OrderConfirmed", "OrderFailed")


async def terminal_times(database_url: str, order_ids: list[str], timeout_s: float) -> dict[str, float]:
    """When each order's (first) terminal event was appended, once every one of them has one (epoch s)."""
    async with asyncio.timeout(timeout_s):
        while True:  # the orders end in other processes; the log is where to look
            with psycopg.connect(database_url) as conn:
                rows = conn.execute(
                    "SELECT order_id, extract(epoch FROM min(recorded_at)) FROM order_events "
                    "WHERE type = ANY(%s) AND order_id = ANY(%s) GROUP BY order_id",
                    (list(TERMINAL), order_ids),
                ).fetchall()
            if len(rows) == len(order_ids):
                return {order_id: float(at) for order_id, at in rows}
            await asyncio.sleep(0.2)
