"""The recovery sweep: the log is the outbox. Orders that have not ended and that no worker has in hand
(their enqueue failed, their worker died, Redis was flushed) are enqueued again."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from commands.queue import Enqueue
from eventstore.cancelling import stop_if_cancelled
from projections.queries import OrderQueries
from workers.claims import OrderClaims

log = logging.getLogger(__name__)


async def sweep_once(
    queries: OrderQueries, claims: OrderClaims, enqueue: Enqueue, grace_s: float
) -> list[str]:
    """Enqueue every unfinished order untouched for `grace_s` that is neither queued nor claimed."""
    quiet_since = datetime.now(UTC) - timedelta(seconds=grace_s)
    unfinished = await queries.unfinished(updated_before=quiet_since)
    candidates = sorted(set(unfinished) - await claims.held(unfinished))
    # The read table runs a moment behind the log: an order it still shows in flight may have just ended.
    orphans = [order_id for order_id in candidates if not await queries.has_ended(order_id)]
    for order_id in orphans:
        await enqueue(order_id)
    if orphans:
        log.warning("recovery sweep re-enqueued %d orders: %s", len(orphans), ", ".join(orphans[:10]))
    return orphans


async def sweep_forever(
    queries: OrderQueries, claims: OrderClaims, enqueue: Enqueue, grace_s: float, interval_s: float
) -> None:
    while True:
        try:
            await sweep_once(queries, claims, enqueue, grace_s)
        except Exception as error:
            stop_if_cancelled(error)
            log.exception("recovery sweep failed; trying again in %.0f s", interval_s)
        stop_if_cancelled()
        await asyncio.sleep(interval_s)
