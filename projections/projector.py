"""Following the log: each projection is fed every event once, in log order, from its checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from eventstore.base import EventStore, LogPosition, RecordedEvent
from eventstore.cancellation import raise_if_cancelled
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
        gather_s: float = 0.02,
    ) -> None:
        self.store = store
        self.signal = signal
        self.projections = projections
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.gather_s = gather_s  # how long after a wake-up a round waits for more appends
        self._appended = asyncio.Event()
        # Where each projection stands after its latest apply in `run`: asked of the projection itself only
        # at first, after a refusal or a failure, and after a poll interval without appends. A stale one
        # costs a refused apply, never a wrong one.
        self._positions: dict[Projection, LogPosition] = {}

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
                await self._apply_appended()
                raise_if_cancelled()
                # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a cancellation that
                # comes as the wait ends, and stopping the process then waits for this task forever.
                woken = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval_s):
                        await self._appended.wait()
                        woken = True
                if not woken:
                    # A quiet log: ask each projection where it stands instead of trusting what it said last.
                    # One reset behind this process's back (a flushed Redis takes the trigger index and the
                    # active-order cache with their checkpoints) would otherwise be found only by the next
                    # append's refused apply, and armed orders would wait unindexed until then.
                    self._positions.clear()
                # Appends come in runs (an order's steps, a burst of orders): a moment's wait lets one round
                # take many of them, where a round per wake-up cost a few round trips for an event or two.
                await asyncio.sleep(self.gather_s)
        finally:
            # Not awaited to the end: a Redis read can outlive its cancellation until its client closes.
            listener.cancel()
            await asyncio.wait([listener], timeout=1.0)

    async def _apply_appended(self) -> None:
        """Apply what the log holds now to every projection, each batch read once for all the projections
        that stand where it begins (both usually do). A projection is done at a batch shorter than
        `batch_size`: an event appended after that read signals, so its append (or the timer) starts the
        next round, and reading on until a read finds nothing would only cost one more read per round."""
        behind: dict[Projection, LogPosition] = {}
        for projection in self.projections:
            try:
                behind[projection] = await self._position(projection)
            except Exception as error:
                self._retry_later(error, f"projection {projection.name}")
        while behind:
            after = min(behind.values())
            try:
                batch = await self.store.read_all(after, self.batch_size)
            except Exception as error:
                self._retry_later(error, "reading the log")
                return
            for projection in [p for p, at in behind.items() if at == after]:
                del behind[projection]
                if not batch:
                    continue
                try:
                    if (reads_on := await self._apply(projection, after, batch)) is not None:
                        behind[projection] = reads_on
                except Exception as error:
                    self._positions.pop(projection, None)  # the apply may have committed or not: ask again
                    self._retry_later(error, f"projection {projection.name}")

    async def _apply(
        self, projection: Projection, after: LogPosition, batch: list[RecordedEvent]
    ) -> LogPosition | None:
        """Apply `batch` to `projection`: where it reads on from in this round, None when it is done."""
        if not await projection.apply(after, batch):  # moved by another projector: go on from there
            del self._positions[projection]
            return await self._position(projection)
        self._positions[projection] = batch[-1].log_position
        return batch[-1].log_position if len(batch) == self.batch_size else None

    async def _position(self, projection: Projection) -> LogPosition:
        if projection not in self._positions:
            self._positions[projection] = await projection.position()
        return self._positions[projection]

    @staticmethod
    def _retry_later(error: Exception, what: str) -> None:
        """Log `error` (in an `except` block) to try again in the next round; or raise CancelledError when it
        is a driver's own error for the task's cancellation: stopping, not failing."""
        if asyncio.current_task().cancelling():  # type: ignore[union-attr]
            raise asyncio.CancelledError from error
        log.exception("%s failed; retrying", what)

    async def _listen(self) -> None:
        async for _ in self.signal.listen():
            self._appended.set()
