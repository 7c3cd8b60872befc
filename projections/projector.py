"""Following the log: each projection is fed every event once, in log order, from its checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from eventstore.base import EventStore, LogPosition, RecordedEvent
from eventstore.signal import AppendSignal

log = logging.getLogger(__name__)


class Projection(Protocol):
    name: str

    async def position(self) -> LogPosition: ...

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        """Apply `batch` (the events right after `after`) and move the checkpoint with it, atomically.

        False when the checkpoint is no longer `after` (another projector got there first).
        """
        ...


class Projector:
    def __init__(
        self,
        store: EventStore,
        signal: AppendSignal,
        projections: list[Projection],
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
    ) -> None:
        self.store = store
        self.signal = signal
        self.projections = projections
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self._appended = asyncio.Event()

    async def catch_up(self, projection: Projection) -> int:
        """Apply everything the log holds for `projection` now; returns how many events it applied."""
        applied = 0
        while True:
            after = await projection.position()
            batch = await self.store.read_all(after, self.batch_size)
            if not batch:
                return applied
            if await projection.apply(after, batch):
                applied += len(batch)

    async def run(self) -> None:
        """Follow the log until cancelled, woken by appends and, as a safety net, by a timer."""
        listener = asyncio.create_task(self._listen())
        try:
            while True:
                self._appended.clear()
                for projection in self.projections:
                    try:
                        await self.catch_up(projection)
                    except Exception as error:
                        if asyncio.current_task().cancelling():  # a driver's own error for the cancellation
                            raise asyncio.CancelledError from error  # what it is: stopping, not failing
                        log.exception("projection %s failed; retrying", projection.name)
                # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a cancellation that
                # comes as the wait ends, and stopping the process then waits for this task forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval_s):
                        await self._appended.wait()
        finally:
            # Not awaited to the end: a Redis read can outlive its cancellation until its client closes.
            listener.cancel()
            await asyncio.wait([listener], timeout=1.0)

    async def _listen(self) -> None:
        async for _ in self.signal.listen():
            self._appended.set()
