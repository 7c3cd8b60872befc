"""The market as one object: its ledger (pools and transactions), its tokens, and the flow that moves it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from domain.pools import PoolState
from domain.tokens import TOKENS
from market.flow import MarketFlow
from market.launch import RefusedPool, new_pool, pool_id_for
from market.ledger import Ledger, LedgerConfig, MarketStore
from market.pools_json import PoolsJson
from market.schedule import ScheduledLaunch, play
from market.seed import seed_pools
from market.tokens import TokenRegistry, seeded_record
from venues.chain import TokenRecord

log = logging.getLogger(__name__)

VENUES = ("raydium", "meteora")


@dataclass(frozen=True)
class MarketConfig:
    execution_delay_ms_min: int = 2000
    execution_delay_ms_max: int = 3000
    failure_rate: float = 0.0
    seed: int | None = None
    flow_interval_ms: int = 1000  # 0: no flow (tests move prices themselves)
    quote_delay_ms: int = 0  # how long a read of pools takes, as an RPC node's answer does
    # MARKET_SCRIPTING: the API's launches (POST /tokens, POST /tokens/{symbol}/pools) and outside swaps
    # (POST /swaps) answer; off, they are refused (403), as a real chain takes no such orders from anyone.
    scripting: bool = False
    launch_schedule: tuple[ScheduledLaunch, ...] = ()  # MARKET_LAUNCH_SCHEDULE's launches, played at start


class Market:
    """`start` loads (or seeds) the state and starts the flow (and the launch schedule); `stop` stops them,
    pending transactions staying pending in the store until the next start."""

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
        self.now = now
        self.registry = TokenRegistry()
        self._launching = asyncio.Lock()  # one announcement or new pool at a time: ids and symbols are unique
        self._flowing: asyncio.Task[None] | None = None
        self._scheduled: asyncio.Task[None] | None = None
        self.pools_json = PoolsJson()

    async def start(self) -> None:
        await self.ledger.start(lambda: seed_pools(self.config.seed))
        await self._load_tokens()
        if self.config.flow_interval_ms > 0:
            self._flowing = asyncio.create_task(self.flow.run())
        if self.config.launch_schedule:
            self._scheduled = asyncio.create_task(play(self, self.config.launch_schedule))
            self._scheduled.add_done_callback(_report_schedule_failure)

    async def _load_tokens(self) -> None:
        """The stored token records, and a record for each starting token that has none yet (a new market,
        or one whose database predates them), launched now by its first pool."""
        self.registry = TokenRegistry(await self.ledger.store.load_tokens())
        now_ms = self._now_ms()
        missing = [
            seeded_record(symbol, now_ms, self._first_pool_of(symbol))
            for symbol in TOKENS
            if symbol not in self.registry
        ]
        if missing:
            await self.ledger.store.save_tokens(missing, [])
            self.registry.keep(missing)

    def _first_pool_of(self, symbol: str) -> str | None:
        return min(
            (p.pool_id for p in self.ledger.pools.values() if symbol in (p.token_x, p.token_y)), default=None
        )

    def _now_ms(self) -> int:
        return int(self.now() * 1000)

    # -- tokens and launches ----------------------------------------------------------------------------

    async def announce(
        self, symbol: str, decimals: int, mint_authority: str | None, freeze_authority: str | None
    ) -> TokenRecord:
        """Announce a new token (its mint exists; it has no pool yet), written before it is told.
        Raises TokenExists for a known symbol; what the store raises when it cannot be written."""
        async with self._launching:
            record = self.registry.announced(
                symbol, decimals, mint_authority, freeze_authority, self._now_ms()
            )
            await self.ledger.store.save_tokens([record], [])
            self.registry.keep([record])
            return record

    async def create_pool(
        self, symbol: str, venue: str, quote: str, amount_raw: int, quote_amount_raw: int
    ) -> PoolState:
        """Create a pool of `symbol` and `quote` on `venue` from the two deposits (base units), as the
        venue's program initialises one (market/launch.py); the token's first pool launches it. The pool
        and the token's record are written together before either is seen.

        Raises UnknownToken for `symbol`; RefusedPool for a `quote` that is not tradable or deposits the
        program refuses; what the store raises when it cannot be written."""
        async with self._launching:
            token = self.registry.get(symbol)
            if quote not in self.registry or not self.registry.get(quote).tradable:
                raise RefusedPool("quoteToken", f"{quote} is not a tradable token (it has no pool)")
            pool_id = pool_id_for(venue, symbol, quote, self.ledger.pools)
            pool = new_pool(venue, pool_id, token, self.registry.get(quote), amount_raw, quote_amount_raw)
            record = self.registry.launched(symbol, pool_id, self._now_ms())
            await self.ledger.store.save_tokens([record], [pool])
            self.ledger.pools[pool_id] = pool
            self.registry.keep([record])
            return pool

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
        running = [task for task in (self._flowing, self._scheduled) if task is not None]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)  # (a schedule that failed has reported it already)
        self._flowing = self._scheduled = None
        await self.ledger.stop()


def _report_schedule_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the launch schedule stopped", exc_info=task.exception())
