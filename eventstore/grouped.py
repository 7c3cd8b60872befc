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
    once. A send that is cancelled (the process stopping) cancels the adds waiting for it and for the next.
    """

    def __init__(self, send: Callable[[list[T]], Awaitable[None]]) -> None:
        self._send = send
        self._next: _Batch[T] | None = None  # to be sent after the one on its way, if any
        self._sender: asyncio.Task[None] | None = None

    async def add(self, item: T) -> None:
        if self._next is None:
            self._next = _Batch()
        batch = self._next
        batch.items.append(item)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all())
        await asyncio.shield(batch.sent)  # an add cancelled must not cancel the others' send

    async def _send_all(self) -> None:
        while (batch := self._next) is not None:
            self._next = None
            try:
                await self._send(batch.items)
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
        self.items: list[T] = []
        self.sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # An add cancelled while waiting leaves no one to see an error: seen here, so none goes unreported.
        self.sent.add_done_callback(lambda sent: sent.cancelled() or sent.exception())
