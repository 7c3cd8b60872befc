"""The composition root: the one place that reads settings and wires every concrete adapter."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Coroutine
from functools import cached_property
from typing import TYPE_CHECKING, Any

from redis.asyncio import BlockingConnectionPool, Redis

from commands.clock import Clock, SystemClock
from commands.queue import Enqueue
from domain.tokens import Launch
from engine.exiting import where_it_waits
from engine.settings import Settings, launch_schedule
from eventstore.backend import backend_for
from eventstore.base import EventStore
from eventstore.replica import Replica
from eventstore.signal import AppendSignal, InProcessSignal, RedisSignal
from market.market import Market, MarketConfig
from market.store import SqlMarketStore
from projections.active_orders import InMemoryActiveOrders, RedisActiveOrders
from projections.feed import LiveFeed
from projections.orders import OrdersProjection
from projections.projector import Projection, Projector
from projections.queries import OrderQueries
from projections.trigger_index import InMemoryTriggerIndex, RedisTriggerIndex, TriggerIndex
from venues.chain import Chain
from workers.claims import InMemoryClaims, OrderClaims, RedisClaims
from workers.relay import InMemoryOrderRelay, RedisOrderRelay

# taskiq and the execution path are imported when a role needs them: `order-engine projections status`
# builds `Services` too, and its start time is mostly imports.
if TYPE_CHECKING:
    from taskiq import AsyncBroker

    from workers.executor import OrderExecutor
    from workers.triggers import TriggerWatcher

log = logging.getLogger(__name__)

# The process's Redis connections: a request past them waits for one to be free (redis-py's default pool
# raises `MaxConnectionsError` instead, which under a burst left orders to the recovery sweep).
REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT_S = 10.0
QUEUED_TTL_S = 120.0  # a queued order whose message got lost is swept again after this
CLOSE_TIMEOUT_S = 5.0  # for background tasks to end once cancelled, and for connections to close
# How long the relay waits after a wake-up for the appends that come with it: latency added to each order's
# start, traded for one log read and one queue write per round under load.
RELAY_GATHER_S = 0.005


class Services:
    """Everything a role needs, built from `Settings`; `start` runs the chosen roles in this process."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: EventStore | None = None,
        chain: Chain | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`store`, `chain` and `clock` replace the ones the settings would build (tests inject them)."""
        self.settings = settings
        self.clock = clock or SystemClock()
        if chain is not None:
            self.chain = chain
        self.backend = backend_for(settings.database_url)  # the one place the database's kind is chosen
        self.db = self.backend.open(
            settings.database_url, prepared_statements=settings.database_prepared_statements
        )
        self.redis = _redis(settings.redis_url) if settings.redis_url else None
        self.signal: AppendSignal = RedisSignal(self.redis) if self.redis else InProcessSignal()
        self.store: EventStore = store or self.backend.event_store(self.db, self.signal)
        # Reads that may be a moment behind (lists, figures, WebSocket catch-up) go to the replica, if any;
        # one order's read, commands, the live tail and the projections stay on the primary.
        self.replica = self._replica(settings.database_read_url) if settings.database_read_url else None
        self.queries = OrderQueries(self.db, self.store, self.backend, self.replica)
        self.active_orders = RedisActiveOrders(self.redis) if self.redis else InMemoryActiveOrders()
        self.claims: OrderClaims = (
            RedisClaims(self.redis, settings.worker_lease_s, QUEUED_TTL_S)
            if self.redis
            else InMemoryClaims(QUEUED_TTL_S)
        )
        self.trigger_index: TriggerIndex = (
            RedisTriggerIndex(self.redis) if self.redis else InMemoryTriggerIndex()
        )
        self.feed = LiveFeed(self.store, self.signal, replica=self.replica)
        self.projector = Projector(
            self.store,
            self.signal,
            [OrdersProjection(self.db, self.backend), self.active_orders, self.trigger_index],
        )
        # The log is the outbox: every worker process follows it with the relay, which hands each submitted
        # market order to the queue. A follower of its own: a write the read side waits for (a lock on the
        # orders table, a rebuild's swap) must not hold orders back from the workers.
        self.order_relay = (
            RedisOrderRelay(self.redis, self.queue_entry, QUEUED_TTL_S)
            if self.redis
            else InMemoryOrderRelay(lambda order_id: self.enqueue(order_id))
        )
        self.relay = Projector(self.store, self.signal, [self.order_relay], gather_s=RELAY_GATHER_S)
        self.executor: OrderExecutor | None = None
        self.enqueue_fallbacks = 0  # orders fired or handed back but not queued by this process (`enqueue`)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._background: list[asyncio.Task[Any]] = []

    @property
    def projections(self) -> list[Projection]:
        """Every follower of the log with a checkpoint: the read side's projections and the relay."""
        return [*self.projector.projections, self.order_relay]

    def _replica(self, url: str) -> Replica:
        engine = self.backend.open(url, prepared_statements=self.settings.database_prepared_statements)
        return Replica(engine, self.backend.event_store(engine, self.signal))

    @cached_property
    def broker(self) -> AsyncBroker:
        from workers.broker import make_broker

        return make_broker(self.settings.redis_url, consumer_name=self.worker_id)

    def queue_entry(self, order_id: str) -> bytes:
        """The queue entry that has a worker execute `order_id` (the relay writes it to the queue)."""
        from workers.broker import queue_entry

        return queue_entry(self.broker, order_id)

    @cached_property
    def enqueue(self) -> Enqueue:
        """Hands an order to the workers (a fired one, one handed back or swept; the embedded relay's): each
        failure is counted (`order_engine_enqueue_fallbacks`: under load it must stay at zero); the recovery
        sweep, or the relay's next round, queues the order again."""
        from workers.broker import make_enqueue

        enqueue = make_enqueue(self.broker, self.claims)

        async def counted(order_id: str) -> None:
            try:
                await enqueue(order_id)
            except Exception:
                self.enqueue_fallbacks += 1
                raise

        return counted

    @cached_property
    def market(self) -> Market:
        """The market in this process (MARKET_URL unset: `serve`'s embedded one), on the engine's database."""
        return make_market(self.settings, SqlMarketStore(self.db, self.backend))

    @cached_property
    def chain(self) -> Chain:
        """The engine's way to the market: over HTTP at MARKET_URL, else the market in this process."""
        if self.settings.market_url is not None:
            from venues.market_http import MarketHttpChain

            return MarketHttpChain(self.settings.market_url)
        from market.in_process import InProcessChain

        return InProcessChain(self.market)

    async def start(
        self, *, api: bool = False, worker: bool = False, projector: bool = False, market: bool = False
    ) -> None:
        """Start the roles asked for; `market` starts the embedded market (when MARKET_URL is unset)."""
        if market and self.settings.market_url is None:
            await self.market.start()
        await self.broker.startup()
        if api:
            await self.feed.start()
        if projector:
            self._spawn(self.projector.run())
        if worker:
            await self._start_worker()

    async def _start_worker(self) -> None:
        from taskiq.api import run_receiver_task

        from workers.recovery import sweep_forever

        self.executor = self.make_executor()
        self.broker.state.executor = self.executor
        if self.redis is not None:
            from workers.consumers import reap_forever
            from workers.presence import announce, announce_forever

            # Announced before it reads the queue: live workers hand back the deliveries of consumers
            # that have not announced themselves.
            await announce(self.redis, self.worker_id)
            self._spawn(
                run_receiver_task(
                    self.broker,
                    max_async_tasks=self.settings.worker_concurrency,
                    propagate_exceptions=False,
                )
            )
            self._spawn(announce_forever(self.redis, self.worker_id))
            self._spawn(reap_forever(self.redis, self.broker, self.enqueue))
        self._spawn(self.relay.run())
        self._spawn(self.make_trigger_watcher().run_forever())
        self._spawn(
            sweep_forever(
                self.queries,
                self.claims,
                self.enqueue,
                grace_s=self.settings.recovery_grace_s,
                interval_s=self.settings.recovery_interval_s,
            )
        )

    async def stop(self) -> None:
        """Stop every role started, within the settings' SHUTDOWN_GRACE_S and CLOSE_TIMEOUT_S: the queue's
        receiver first (no new delivery), a projector at once (an apply in progress is one transaction:
        it commits or rolls back, and the other projectors go on from the checkpoint), then the orders in
        hand reach their next event and go back to the queue (`_hand_back`)."""
        # The orders in hand start towards their next event at once, while the receiver stops.
        executor, grace_s = self.executor, self.settings.shutdown_grace_s
        orders_stopped = asyncio.create_task(executor.stop(grace_s)) if executor is not None else None
        for task in self._background:
            task.cancel()
        # A task whose driver turned its cancellation into a wait (a Redis read, a psycopg cancel) ends
        # when its connections close below; stopping does not wait for it past the grace period.
        if self._background:
            _, lingering = await asyncio.wait(self._background, timeout=CLOSE_TIMEOUT_S)
            if lingering:
                log.warning(
                    "%d background tasks outlived their cancellation",
                    len(lingering),
                    extra={"where": [where_it_waits(task) for task in lingering]},
                )
        self._background.clear()
        if executor is not None and orders_stopped is not None:
            # Once the receiver is gone, so that a delivery it handed over meanwhile goes back too.
            await self._hand_back([*await orders_stopped, *executor.refused])
        if "market" in self.__dict__:
            await self.market.stop()
        if "chain" in self.__dict__ and hasattr(self.chain, "aclose"):
            await self.chain.aclose()
        await self.feed.stop()
        # A server that stopped answering must not keep this process from exiting: connections still
        # closing after the grace period are left behind (some client libraries ignore cancellation here).
        closing = [asyncio.create_task(self.db.dispose())]
        if self.replica is not None:
            closing.append(asyncio.create_task(self.replica.engine.dispose()))
        if "broker" in self.__dict__:  # built only by the roles that queue or execute orders
            closing.append(asyncio.create_task(self.broker.shutdown()))
        if self.redis is not None:
            closing.append(asyncio.create_task(self.redis.aclose()))
        done, stuck = await asyncio.wait(closing, timeout=CLOSE_TIMEOUT_S)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("while shutting down: %r", task.exception())
        if stuck:
            log.warning("%d connections did not close within %.0f s", len(stuck), CLOSE_TIMEOUT_S)

    async def _hand_back(self, stopped: list[str]) -> None:
        """Give the orders this worker stopped back to the queue at once, for another worker to resume
        (without Redis the queue ends with this process, and the next start's sweep finds them)."""
        stopped = list(dict.fromkeys(stopped))
        if self.redis is None:
            return
        from workers.consumers import hand_back
        from workers.presence import withdraw

        try:
            handed_back = await hand_back(self.redis, self.broker, self.worker_id, self.enqueue, stopped)
            await withdraw(self.redis, self.worker_id)
        except Exception as error:  # Redis away: the live workers hand them back once this one is gone
            log.warning("could not hand back this worker's orders: %r", error)
            return
        log.info(
            "worker stopped; handed back %d orders",
            len(handed_back),
            extra={"order_ids": handed_back, "worker": self.worker_id},
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        task.add_done_callback(_report_failure)
        self._background.append(task)

    async def launch_of(self, symbol: str) -> Launch | None:
        """A token as the chain shows it now (None: not announced), for sniper orders; raises as the chain
        does (`venues.base.VENUE_FAILURES`)."""
        from venues.chain import as_launch

        records = {record.symbol: record for record in await self.chain.tokens()}
        return as_launch(records[symbol]) if symbol in records else None

    def make_trigger_watcher(self) -> TriggerWatcher:
        from workers.triggers import TriggerWatcher

        return TriggerWatcher(
            self.trigger_index,
            self.chain,
            self.store,
            self.enqueue,
            self.clock,
            interval_s=self.settings.trigger_interval_ms / 1000,
            worker_id=self.worker_id,
        )

    def make_executor(self) -> OrderExecutor:
        import structlog

        from commands.execute_order import Execution, StartLimiter
        from domain.retry import RetryPolicy
        from workers.executor import OrderExecutor
        from workers.limits import InMemoryStartLimiter, RedisStartLimiter

        s = self.settings
        limiter: StartLimiter = (
            RedisStartLimiter(self.redis, s.rate_limit_max, s.rate_limit_window_s)
            if self.redis
            else InMemoryStartLimiter(s.rate_limit_max, s.rate_limit_window_s)
        )
        execution = Execution(
            store=self.store,
            chain=self.chain,
            policy=RetryPolicy(
                max_attempts=s.max_attempts, base_ms=s.retry_base_ms, max_crashed_runs=s.max_crashed_runs
            ),
            limiter=limiter,
            clock=self.clock,
            jitter=random.Random(s.mock_seed),
            worker_id=self.worker_id,
            log_context=structlog.contextvars.bound_contextvars,
        )
        return OrderExecutor(execution, self.claims, s.worker_concurrency)


def _redis(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url, max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_POOL_TIMEOUT_S
    )
    return Redis.from_pool(pool)  # closing the client closes its pool


def _report_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped", task.get_coro(), exc_info=task.exception())


def make_market(settings: Settings, store: SqlMarketStore) -> Market:
    return Market(
        store,
        MarketConfig(
            execution_delay_ms_min=settings.mock_execution_delay_ms_min,
            execution_delay_ms_max=settings.mock_execution_delay_ms_max,
            failure_rate=settings.mock_failure_rate,
            seed=settings.mock_seed,
            flow_interval_ms=settings.market_flow_interval_ms,
            quote_delay_ms=settings.mock_quote_delay_ms,
            scripting=settings.market_scripting,
            launch_schedule=launch_schedule(settings),
        ),
    )
