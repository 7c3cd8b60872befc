"""An API process that is stopping (SIGTERM): it drains. `/health` answers 503 `draining`, so the proxy sends
it nothing new, and each WebSocket is closed with 1001 (going away), so its client reconnects through the
proxy to another API and resumes with `afterVersion` (or `afterToken`) after the last message it got."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

CLOSE_GOING_AWAY = 1001
GOING_AWAY_REASON = "the server is going away; reconnect and resume after the last message received"


class Draining:
    """Whether this process drains, and the WebSockets it still has open."""

    def __init__(self) -> None:
        self._begun = asyncio.Event()
        self._open_sockets = 0
        self._all_closed = asyncio.Event()
        self._all_closed.set()

    @property
    def begun(self) -> bool:
        return self._begun.is_set()

    def begin(self) -> None:
        self._begun.set()

    async def wait(self) -> None:
        """Return once draining has begun."""
        await self._begun.wait()

    @contextlib.contextmanager
    def socket(self) -> Iterator[None]:
        """Count a WebSocket as open for as long as the block runs."""
        self._open_sockets += 1
        self._all_closed.clear()
        try:
            yield
        finally:
            self._open_sockets -= 1
            if self._open_sockets == 0:
                self._all_closed.set()

    async def sockets_closed(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` seconds for every WebSocket to close; returns how many are still open."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._all_closed.wait()
        return self._open_sockets
