"""The trigger watcher: each round, reads the pools of every pair with armed orders and checks only the
orders the price can have reached, and those due to expire (and, while sniper orders wait, the chain's
record of the tokens, one read: for their checks once their pair has a pool, and to expire those whose token
launched against another quote token only once their delay has run out).

Every worker process runs one. Several may check one order at once; the log lets exactly one decision in
(`commands/trigger_orders.py`). A process that dies between a price crossing and its `TriggerFired` has
recorded nothing: the order is still armed in the index (a projection of the log), and the next round of any
watcher fires it. A venue that fails to answer is left out of a round: with fewer pools the best route can
only pay less, so an order never fires on a price it did not get.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

from commands.clock import Clock
from commands.queue import Enqueue
from commands.trigger_orders import TriggerOutcome, check_trigger
from domain.pools import PoolState
from domain.tokens import TOKENS, Launch
from eventstore.base import EventStore
from eventstore.cancelling import stop_if_cancelled
from projections.trigger_index import Pair, TriggerIndex
from venues.base import VENUE_FAILURES
from venues.chain import Chain, as_launch

log = logging.getLogger(__name__)

CHECKS_AT_ONCE = 16  # orders checked side by side in a round (each is a read and perhaps an append)


class TriggerWatcher:
    def __init__(
        self,
        index: TriggerIndex,
        chain: Chain,
        store: EventStore,
        enqueue: Enqueue,
        clock: Clock,
        interval_s: float,
        worker_id: str = "",
        on_outcome: Callable[[TriggerOutcome], None] = lambda _: None,
    ) -> None:
        self.index = index
        self.chain = chain
        self.store = store
        self.enqueue = enqueue
        self.clock = clock
        self.interval_s = interval_s
        self.worker_id = worker_id
        self.on_outcome = on_outcome  # counts outcomes for the metrics
        # The venues whose pools the latest rounds could not read: told once when one stops answering and
        # once when it answers again, not every round (five times a second per venue while a market is down).
        self.venues_away: set[str] = set()

    async def run_round(self) -> Counter[TriggerOutcome]:
        """One round: expire what is due, fire what the pools now reach; returns what happened."""
        now = self.clock.now()
        checks: dict[str, list[PoolState]] = {order_id: [] for order_id in await self.index.due(now)}
        new_tokens: set[str] = set()  # tokens not in the engine's list that sniper orders wait for
        unpooled: list[Pair] = []  # ... whose pairs have no pool yet
        for pair in await self.index.armed_pairs():
            pools = await self._pools(pair)
            if pair[1] not in TOKENS:
                new_tokens.add(pair[1])
                if not pools:
                    unpooled.append(pair)
            if not pools:
                continue
            best_spot = max(pool.spot_price(pair[0]) for pool in pools)
            for order_id in await self.index.crossed(pair, best_spot):
                checks[order_id] = pools
        launches = await self._launches() if new_tokens else {}
        for pair in unpooled:
            launch = launches.get(pair[1])
            if launch is not None and launch.launched_at is not None:
                # Launched against another quote token: the orders cannot buy, but their delay runs out.
                for order_id in await self.index.crossed(pair, Decimal(0)):
                    checks.setdefault(order_id, [])
        # Decided as of now, after the reads: a launch the reads saw happened before this moment, so a
        # sniper order's delay is never judged shorter than it is.
        now = self.clock.now()
        slots = asyncio.Semaphore(CHECKS_AT_ONCE)

        async def check(order_id: str, pools: list[PoolState]) -> TriggerOutcome:
            async with slots:
                return await check_trigger(
                    order_id, pools, now, self.store, self.enqueue, self.worker_id, launches
                )

        outcomes = await asyncio.gather(*(check(order_id, pools) for order_id, pools in checks.items()))
        for outcome in outcomes:
            self.on_outcome(outcome)
        return Counter(outcomes)

    async def _pools(self, pair: Pair) -> list[PoolState]:
        venues = self.chain.venues
        answers = await asyncio.gather(
            *(self.chain.pools(venue, *pair) for venue in venues), return_exceptions=True
        )
        pools: list[PoolState] = []
        for venue, answer in zip(venues, answers, strict=True):
            if isinstance(answer, list):
                pools.extend(answer)
                if venue in self.venues_away:
                    self.venues_away.discard(venue)
                    log.info("trigger rounds read %s again", venue)
            elif isinstance(answer, VENUE_FAILURES):
                if venue not in self.venues_away:
                    self.venues_away.add(venue)
                    log.warning("trigger rounds go on without %s until it answers: %s", venue, answer)
            elif isinstance(answer, BaseException):
                raise answer
        return pools

    async def _launches(self) -> dict[str, Launch]:
        """Every token as the chain shows it now (one read), for the sniper orders' checks."""
        return {record.symbol: as_launch(record) for record in await self.chain.tokens()}

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_round()
            except Exception as error:
                stop_if_cancelled(error)
                log.exception("trigger round failed; trying again in %.2f s", self.interval_s)
            stop_if_cancelled()  # a round that returned while this task is being cancelled stops here
            await asyncio.sleep(self.interval_s)
