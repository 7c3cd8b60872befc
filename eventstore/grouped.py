"""Round trips shared by the calls that come together, as a database's group commit shares a flush."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Grouped(Generic[T]):
    """`await grouped.add(item)` sends `item` in one call of `send(items)` with every other item added while
    the send before was on its way, and returns once that call has returned, raising what it raised.

    Under load a process makes one round trip for many items instead of one each; alone, an item goes at
    once. An add cancelled before its items are taken leaves them out of the send (nobody is told of them);
    once taken, they are sent whatever becomes of the add. A send that is cancelled (the process stopping)
    cancels the adds waiting for it and for the next.
    """

    def __init__(self, send: Callable[[list[T]], Awaitable[None]]) -> None:
        self._send = send
        self._next: _Batch[T] | None = None  # to be sent after the one on its way, if any
        self._sender: asyncio.Task[None] | None = None

    async def add(self, item: T) -> None:
        if self._next is None:
            self._next = _Batch()
        batch = self._next
        entry = [item]  # an entry of its own, to be left out by identity if this add is cancelled
        batch.entries.append(entry)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all())
        try:
            await asyncio.shield(batch.sent)  # an add cancelled must not cancel the others' send
        except asyncio.CancelledError:
            if batch is self._next:  # not taken yet: it goes without this item
                batch.entries.remove(entry)
            raise

    async def _send_all(self) -> None:
        while (batch := self._next) is not None:
            self._next = None
            if not batch.entries:  # every add of it was cancelled
                batch.sent.set_result(None)
                continue
            try:
                await self._send([item for (item,) in batch.entries])
            except asyncio.CancelledError:
                for waiting in (batch, self._next):
                    if waiting is not None:
                        waiting.sent.cancel()
                self._next = None
                raise
            except Exception as error:
                batch.sent.set_exception(error)
            else:
                batch.sent.set_result(None)


class _Batch(Generic[T]):
    def __init__(self) -> None:
        self.entries: list[list[T]] = []
        self.sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # An add cancelled while waiting leaves no one to see an error: seen here, so none goes unreported.
        self.sent.add_done_callback(lambda sent: sent.cancelled() or sent.exception())
