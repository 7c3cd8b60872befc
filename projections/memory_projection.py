"""What the projections kept in this process's memory share (the embedded default): a checkpoint held beside
the projection and moved once a batch is applied; both start again from the log's start with the process."""

from __future__ import annotations

from eventstore.base import LOG_START, LogPosition, RecordedEvent


class InMemoryProjection:
    """A projection in memory; a subclass applies a batch in `_apply_batch`."""

    name: str

    def __init__(self) -> None:
        self._position = LOG_START

    async def position(self) -> LogPosition:
        return self._position

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        """Apply `batch` (the events right after `after`) and move the checkpoint past it; False, and nothing
        applied, when the checkpoint is no longer `after`."""
        if after != self._position:
            return False
        await self._apply_batch(batch)
        if batch:
            self._position = batch[-1].log_position
        return True

    async def _apply_batch(self, batch: list[RecordedEvent]) -> None:
        raise NotImplementedError
