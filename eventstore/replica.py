"""A streaming replica of the log's database (DATABASE_READ_URL), for the reads that may be a moment behind
the primary: lists and figures of orders, and a WebSocket's catch-up on what was appended before it came.

A replica replays the primary's WAL in commit order, so at any moment it shows the primary as it was a
moment ago: each order's stream as a prefix of the primary's, the log up to a point. Whatever is read from it
is therefore either shown as possibly behind (lists, figures) or completed from the primary (catch-up).

A replica that cannot be reached takes nothing down: its reads go to the primary, at once and then for
RETRY_AFTER_S, after which the replica is tried again (a replica that is away costs no connection attempt per
request, which with a host that drops packets would be a connect timeout each).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from eventstore.base import EventStore, StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0

T = TypeVar("T")


class Replica:
    """The replica's pool (`engine`, for the read table's queries) and its log (`store`: read it, never append
    to it); `read` runs a read there, or on the primary while the replica cannot be reached."""

    def __init__(
        self,
        engine: AsyncEngine,
        store: EventStore,
        *,
        retry_after_s: float = RETRY_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.store = store
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.served = 0  # reads the replica answered
        self.fallbacks = 0  # reads that went to the primary instead (for `order_engine_replica_reads`)
        self._away_until = -float("inf")  # the replica failed: until then, reads go to the primary

    @property
    def away(self) -> bool:
        """Whether reads go to the primary now, the replica having failed less than RETRY_AFTER_S ago."""
        return self.clock() < self._away_until

    async def read(self, on_replica: Callable[[], Awaitable[T]], on_primary: Callable[[], Awaitable[T]]) -> T:
        """`on_replica()`, or `on_primary()` when the replica is away or raises StoreUnavailable (which
        `on_primary` may raise too: the primary is the store itself)."""
        if not self.away:
            try:
                result = await on_replica()
            except StoreUnavailable as error:
                self._away_until = self.clock() + self.retry_after_s
                log.warning(
                    "the read replica failed (%s); reading the primary for %g s", error, self.retry_after_s
                )
            else:
                self.served += 1
                return result
        self.fallbacks += 1
        return await on_primary()
