"""A streaming replica of the log's database (DATABASE_READ_URL), for the reads that may be a moment behind
the primary: lists and figures of orders, and a WebSocket's catch-up on what was appended before it came.

A replica replays the primary's WAL in commit order, so at any moment it shows the primary as it was a
moment ago: each order's stream as a prefix of the primary's, the log up to a point. Whatever is read from it
is therefore either shown as possibly behind (lists, figures) or completed from the primary (catch-up).

A replica that fails takes nothing down: its reads go to the primary, at once and then for RETRY_AFTER_S,
after which the replica is tried again (a replica that is away costs no connection attempt per request, which
with a host that drops packets would be a connect timeout each). Failing is any error of the read (refused,
dropped, or a schema the replica has not replayed yet: a migration the primary ran a moment ago), and an
answer that takes longer than READ_TIMEOUT_S (a frozen server, a network cut after connecting, where no
driver timeout fires): the read is then left to end in the background, and the primary answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from eventstore.base import EventStore, StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0
READ_TIMEOUT_S = 2.0

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
        read_timeout_s: float = READ_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.store = store
        self.retry_after_s = retry_after_s
        self.read_timeout_s = read_timeout_s
        self.clock = clock
        self.failure: str | None = None  # why the replica was last left for the primary
        self.served = 0  # reads the replica answered
        self.fallbacks = 0  # reads that went to the primary instead (for `order_engine_replica_reads`)
        self._away_until = -float("inf")  # the replica failed: until then, reads go to the primary
        self._abandoned: set[asyncio.Future[Any]] = set()  # reads past their timeout, ending meanwhile

    @property
    def away(self) -> bool:
        """Whether reads go to the primary now, the replica having failed less than RETRY_AFTER_S ago."""
        return self.clock() < self._away_until

    async def read(self, on_replica: Callable[[], Awaitable[T]], on_primary: Callable[[], Awaitable[T]]) -> T:
        """`on_replica()`, or `on_primary()` when the replica is away, or fails or takes longer than
        `read_timeout_s` now (`on_primary` raises what the primary's read raises: StoreUnavailable)."""
        if not self.away:
            answered, result = await self._attempt(on_replica)
            if answered:
                self.served += 1
                return cast(T, result)
        self.fallbacks += 1
        return await on_primary()

    async def check(self) -> str | None:
        """Why reads go to the primary now (None: the replica answers), asking the replica unless it is
        away already (then it costs nothing: `/health` is asked often, and must answer quickly)."""
        if not self.away:
            await self._attempt(self.store.ping)
        return self.failure if self.away else None

    async def _attempt(self, on_replica: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """(True, what `on_replica()` returned), or (False, None) having left the replica for the
        primary for RETRY_AFTER_S because it failed or took longer than `read_timeout_s`."""
        reading = asyncio.ensure_future(on_replica())
        try:
            # Shielded: a read past its time is not waited for while the driver tries to cancel it on a
            # server that does not answer; it ends in the background.
            async with asyncio.timeout(self.read_timeout_s):
                return True, await asyncio.shield(reading)
        except asyncio.CancelledError:
            reading.cancel()
            raise
        except Exception as error:
            self._leave_for_the_primary(reading, error)
            return False, None

    def _leave_for_the_primary(self, reading: asyncio.Future[Any], error: Exception) -> None:
        if not reading.done():
            reading.cancel()
            self._abandoned.add(reading)
            reading.add_done_callback(self._forget)
            self.failure = f"no answer within {self.read_timeout_s:g} s"
        else:
            self.failure = _why(error)
        self._away_until = self.clock() + self.retry_after_s
        log.warning(
            "the read replica failed (%s); reading the primary for %g s", self.failure, self.retry_after_s
        )

    def _forget(self, reading: asyncio.Future[Any]) -> None:
        self._abandoned.discard(reading)
        if not reading.cancelled():
            reading.exception()  # retrieved: its failure was logged when it was left


def _why(error: Exception) -> str:
    """What failed, for /health and the log: for StoreUnavailable, the driver's error under it (a database
    that does not exist, a password refused), which says more than "cannot be reached"."""
    cause = error.__cause__ if isinstance(error, StoreUnavailable) and error.__cause__ is not None else error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
