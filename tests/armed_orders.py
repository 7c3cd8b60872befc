"""Arming many limit orders at once, through the command handler onto the log (as the API submits them,
without the HTTP): 10,000 in seconds, for tests and benchmarks of the trigger stage. They reach the trigger
index as any order does, through the projector."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from commands.submit_order import SubmitOrder, submit_order
from domain.order_type import OrderType
from eventstore.base import EventStore

SUBMITS_AT_ONCE = 32


async def arm_limit_orders(store: EventStore, limits: list[str], amount_in: Decimal) -> list[str]:
    """Limit orders selling `amount_in` SOL for USDC, one at each of `limits` (USDC per SOL): their ids, in
    the order of `limits`."""
    slots = asyncio.Semaphore(SUBMITS_AT_ONCE)

    async def submit(limit: str) -> str:
        command = SubmitOrder(
            order_type=OrderType.LIMIT,
            token_in="SOL",
            token_out="USDC",
            amount_in=amount_in,
            slippage_bps=50,
            limit_price=limit,
        )
        async with slots:
            return (await submit_order(command, store)).order_id

    return list(await asyncio.gather(*(submit(limit) for limit in limits)))
