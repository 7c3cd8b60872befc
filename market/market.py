"""The market as one object: its ledger (pools and transactions) and the flow that moves it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from domain.pools import PoolState
from market.flow import MarketFlow
from market.ledger import Ledger, LedgerConfig, MarketStore
from market.pools_json import PoolsJson
from market.seed import seed_pools

VENUES = ("raydium", "meteora")


@dataclass(frozen=True)
class MarketConfig:
    execution_delay_ms_min: int = 2000
    execution_delay_ms_max: int = 3000
    failure_rate: float = 0.0
    seed: int | None = None
    flow_interval_ms: int = 1000  # 0: no flow (tests move prices themselves)
    quote_delay_ms: int = 0  # how long a read of pools takes, as an RPC node's answer does


class Market:
    """`start` loads (or seeds) the state and starts the flow; `stop` stops both, pending transactions
    staying pending in the store until the next start."""

    venues = VENUES

    def __init__(
        self, store: MarketStore, config: MarketConfig, now: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.ledger = Ledger(
            store,
            LedgerConfig(
                execution_delay_ms_min=config.execution_delay_ms_min,
                execution_delay_ms_max=config.execution_delay_ms_max,
                failure_rate=config.failure_rate,
                seed=config.seed,
            ),
            now,
        )
        self.flow = MarketFlow(self.ledger, config.flow_interval_ms, config.seed)
        self._flowing: asyncio.Task[None] | None = None
        self.pools_json = PoolsJson()

    async def start(self) -> None:
        await self.ledger.start(lambda: seed_pools(self.config.seed))
        if self.config.flow_interval_ms > 0:
            self._flowing = asyncio.create_task(self.flow.run())

    async def read_pools(
        self, venue: str | None, token_in: str | None, token_out: str | None
    ) -> list[PoolState]:
        """Copies of the pools (of `venue`, trading the pair, when given), after the quote delay."""
        await self._quote_delay()
        return self.ledger.pools_for(venue, token_in, token_out)

    async def read_pools_json(self, venue: str | None, token_in: str | None, token_out: str | None) -> bytes:
        """The pools `read_pools` reads, as a JSON array of the wire's pools (venues/chain_wire.py)."""
        await self._quote_delay()
        return self.pools_json.list_of(self.ledger.pools_matching(venue, token_in, token_out))

    def pool_json(self, pool_id: str) -> bytes | None:
        """One pool as a JSON object of the wire (no quote delay: an explorer's view); None if unknown."""
        pool = self.ledger.pools.get(pool_id)
        return None if pool is None else self.pools_json.of(pool)

    async def _quote_delay(self) -> None:
        if self.config.quote_delay_ms > 0:
            await asyncio.sleep(self.config.quote_delay_ms / 1000)

    async def stop(self) -> None:
        if self._flowing is not None:
            self._flowing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flowing
            self._flowing = None
        await self.ledger.stop()
