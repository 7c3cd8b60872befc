"""The projector's loop on the in-memory log: a projection reset behind its back is rebuilt from the log."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from commands.submit_order import SubmitOrder, submit_order
from domain.order_type import OrderType
from eventstore.base import LOG_START, LogPosition, RecordedEvent
from eventstore.memory import InMemoryEventStore
from eventstore.signal import InProcessSignal
from projections.projector import Projector


class Recording:
    """A projection that keeps the events it was given; `forget` is what a flushed Redis does to the trigger
    index: the state and its checkpoint gone together."""

    name = "recording"

    def __init__(self) -> None:
        self.at = LOG_START
        self.seen: list[RecordedEvent] = []
        self.applied = asyncio.Event()

    async def position(self) -> LogPosition:
        return self.at

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        if after != self.at:
            return False
        self.seen += batch
        if batch:
            self.at = batch[-1].log_position
        self.applied.set()
        return True

    def forget(self) -> None:
        self.at, self.seen = LOG_START, []


async def test_a_projection_reset_while_the_log_is_quiet_is_rebuilt_without_waiting_for_an_append():
    signal = InProcessSignal()
    store = InMemoryEventStore(signal)
    projection = Recording()
    projector = Projector(store, signal, [projection], poll_interval_s=0.05, gather_s=0)
    running = asyncio.create_task(projector.run())
    try:
        command = SubmitOrder(
            order_type=OrderType.LIMIT,
            token_in="SOL",
            token_out="USDC",
            amount_in=Decimal("0.5"),
            slippage_bps=50,
            limit_price="1000",
        )
        await submit_order(command, store)
        async with asyncio.timeout(5):
            while len(projection.seen) < 2:  # OrderSubmitted, TriggerArmed
                projection.applied.clear()
                await projection.applied.wait()
        projection.forget()  # nothing is appended from here on
        projection.applied.clear()
        async with asyncio.timeout(5):
            await projection.applied.wait()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    assert [type(r.event).__name__ for r in projection.seen] == ["OrderSubmitted", "TriggerArmed"]
    assert projection.at == (await store.read_all(LOG_START, 10))[-1].log_position
