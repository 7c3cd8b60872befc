"""A loop that is stopped while its driver is mid-read ends as cancelled, not with the driver's error.

redis-py (and psycopg) can turn the cancellation of a read into a connection error of their own; raised as it
is, asyncio reports it at shutdown as an unhandled exception with a traceback, for a clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from eventstore.signal import ANY_ORDER, RedisSignal


class _PubSubLosingItsReadOnCancel:
    """A subscription whose read, when cancelled, fails as redis-py's does: "Connection closed by server"."""

    async def subscribe(self, _: str) -> None: ...

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None
        yield {}  # never reached: makes this an async generator

    async def aclose(self) -> None: ...


class _Redis:
    def pubsub(self, **_: Any) -> _PubSubLosingItsReadOnCancel:
        return _PubSubLosingItsReadOnCancel()


async def test_a_wake_up_listener_stopped_mid_read_ends_cancelled():
    listening = RedisSignal(_Redis()).listen()  # a fake of the one call it makes
    assert await anext(listening) == ANY_ORDER
    reading = asyncio.ensure_future(anext(listening))
    await asyncio.sleep(0)  # into the read
    reading.cancel()
    await asyncio.wait([reading])
    assert reading.cancelled(), reading.exception()
