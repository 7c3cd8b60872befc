"""Fan-out: delivery latency from append to WebSocket client with 1,000 clients.

Two scenarios, each against its own `order-engine api` process on PostgreSQL + Redis: one order followed by
N clients, and N orders followed by one client each. The bench appends the orders' events to the log itself,
through the engine's store and Redis wake-up, exactly as a worker would (no worker runs, so the append times
are ours). Clients run in separate processes; once every socket has the replayed OrderSubmitted (so all are
subscribed), the bench appends the rest of each order, noting when each append committed.
Latency is receipt at the client minus that commit, on the machine's one monotonic clock. Every client must
get every version exactly once, in order, and the close code 1000, or the part fails.

The reference is the same path with a single client on a single order, in the same API process.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import resource
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvloop
import websockets
from redis.asyncio import Redis

from bench.results import Figure, Measured, Size
from bench.servers import STARTUP_TIMEOUT_S, Backends, EngineProcesses, engine_processes
from domain.events import (
    Event,
    ExecutionAttemptFailed,
    OrderConfirmed,
    OrderSubmitted,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    VenueSelected,
)
from domain.order import Order
from domain.route_plan import plan_route
from domain.routing import route_records
from eventstore.postgres import POSTGRES, PostgresEventStore
from eventstore.signal import RedisSignal
from market.seed import seed_pools
from tests.processes import wait_until_healthy

GOAL_MS = 100.0
COMPRESSION: str | None = "deflate"  # the clients offer permessage-deflate, as browsers do
CLIENT_PROCESSES = 2  # the clients' own CPU is real on 2 cores; two processes keep one from queueing them all
CONNECTING_AT_ONCE = 50  # per client process: each connect costs the API a query; don't flood its pool
REFERENCE_ORDERS = 10  # one client each, one after another
ROUND_TIMEOUT_S = 300  # connecting 1,000 clients and 50 s of appends, on a busy machine


def _decided_events() -> tuple[OrderSubmitted, VenueSelected, TransactionBuilt, OrderConfirmed]:
    """An order's events as the engine decides them (0.5 SOL routed on the market's seeded pools), so the
    messages are the size they are in production."""
    order = Order("bench")
    submitted = Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")
    order.apply(submitted)
    order.apply(order.start_attempt())
    pools = [p for p in seed_pools(1) if {p.token_x, p.token_y} == {"SOL", "USDC"}]
    plan = plan_route(pools, "SOL", order.amount_in_raw, 0)
    quotes, route, _ = route_records(plan, pools, order.input_token, order.output_token)
    selected = order.select_route(quotes, route, ())
    order.apply(selected)
    built = order.build_transaction()
    fills = tuple((leg.venue, leg.pool, leg.amount_in_raw, leg.amount_out_raw) for leg in route)
    return submitted, selected, built, order.confirm("bench", fills)


SUBMITTED, SELECTED, BUILT, CONFIRMED = _decided_events()


@dataclass(frozen=True)
class Plan:
    clients: int  # N: clients on the one order, and orders with one client each
    attempts: int  # the live events of each order: 5 per attempt, every attempt but the last failing
    event_gap_s: float  # one order, N clients: between two appends
    events_per_s: float  # N orders: appends a second in all, each order's next one in turn

    @property
    def live_events(self) -> int:
        return 5 * self.attempts


PLANS = {
    Size.SMOKE: Plan(clients=20, attempts=1, event_gap_s=0.05, events_per_s=200),
    # 200 events/s: about what one worker gets through (pipeline part), so every order moves once in 5 s.
    Size.FULL: Plan(clients=1000, attempts=2, event_gap_s=0.1, events_per_s=200),
}


@dataclass(frozen=True)
class Outcome:
    latencies_ms: list[float]  # live events only: the replayed OrderSubmitted is not a delivery
    reference_ms: list[float]  # one client on one order, same process, same events
    memory_per_client_kib: float


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    plan = PLANS[size]
    n = plan.clients
    _allow_open_files(4 * n + 1024)  # the API process and the client processes inherit it
    with _client_processes() as clients, contextlib.ExitStack() as later:
        # An API process per scenario, so each counts only its own clients' memory. Both start at once (an
        # API takes seconds to start on a busy machine); the first is stopped before the second is used.
        with _api(backends, work_dir / "one-order") as first:
            second = later.enter_context(_api(backends, work_dir / "many-orders"))
            one = asyncio.run(_measure(first, backends, clients, plan, orders=1, clients_per_order=n))
        many = asyncio.run(_measure(second, backends, clients, plan, orders=n, clients_per_order=1))
    judged = size is Size.FULL
    one_name, many_name = f"one order, {n} clients", f"{n} orders, 1 client each"
    figures = []
    for name, outcome in ((one_name, one), (many_name, many)):
        figures += [
            *(_delivery(name, outcome, percentile, judged) for percentile in (50, 99)),
            Figure(name=f"{name}: server memory per client", value=outcome.memory_per_client_kib, unit="KiB"),
        ]
    return Measured(
        title=f"Fan-out: append to WebSocket client, {n:,} clients",
        settings={
            "clients": n,
            "client_processes": CLIENT_PROCESSES,
            "live_events_per_order": plan.live_events,
            "one_order_event_gap_ms": round(plan.event_gap_s * 1000),
            "many_orders_events_per_s": plan.events_per_s,
        },
        figures=figures,
        samples={one_name: one.latencies_ms, many_name: many.latencies_ms},
        notes=[
            "Latency runs from the append's commit (noted by the bench, which appends as a worker would) to "
            "the client's receipt of the event, through the Redis wake-up, the API's read of the log and the "
            "WebSocket; the replayed OrderSubmitted is not counted.",
            f"The clients ({CLIENT_PROCESSES} processes, uvloop, the websockets library with its default "
            "permessage-deflate, as browsers offer it) share the 2 cores with the API, PostgreSQL and Redis.",
            "Memory per client: the API process's RSS with every client subscribed minus before they "
            "connected, divided by the clients.",
            "Every client got every version exactly once, in order, then the close code 1000.",
        ],
    )


@contextlib.contextmanager
def _api(backends: Backends, log_dir: Path) -> Iterator[EngineProcesses]:
    """One API process and nothing else: the bench appends as a worker would."""
    with engine_processes(backends, log_dir, apis=1, workers=0, projectors=0) as engine:
        yield engine


async def _measure(
    engine: EngineProcesses,
    backends: Backends,
    clients: _Clients,
    plan: Plan,
    *,
    orders: int,
    clients_per_order: int,
) -> Outcome:
    (url,), (api_pid,) = engine.urls, engine.pids["api"]
    ws_base = url.replace("http://", "ws://", 1)
    async with httpx.AsyncClient(base_url=url) as http:
        await wait_until_healthy(http, STARTUP_TIMEOUT_S)
    async with _appender(backends) as (store, clock):
        # The reference also warms the API up, so what it allocates once is not counted per client.
        reference = []
        for _ in range(REFERENCE_ORDERS):
            order_id = await _submit(store)
            await clients.subscribe(ws_base, [order_id])
            await _append_live(store, [order_id], plan, gap_s=plan.event_gap_s / 5)
            reference += _latencies(await clients.received(), clock, plan)
        rss_before = _rss_kib(api_pid)

        order_ids = [await _submit(store) for _ in range(orders)]
        await clients.subscribe(
            ws_base, [order_id for order_id in order_ids for _ in range(clients_per_order)]
        )
        await asyncio.sleep(0.5)  # let the API settle before reading its memory
        rss_after = _rss_kib(api_pid)
        if orders == 1:
            await _append_live(store, order_ids, plan, gap_s=plan.event_gap_s)
        else:
            await _append_live(store, order_ids, plan, gap_s=0.0, step_s=orders / plan.events_per_s)
        received = await clients.received()
    return Outcome(
        latencies_ms=_latencies(received, clock, plan),
        reference_ms=reference,
        memory_per_client_kib=(rss_after - rss_before) / (orders * clients_per_order),
    )


# -- appending, as a worker does -----------------------------------------------------------------------------


class _CommitClock:
    """The engine's Redis wake-up, noting when each append committed: the store publishes right after."""

    def __init__(self, signal: RedisSignal) -> None:
        self.signal = signal
        self.committed: dict[str, list[int]] = defaultdict(list)  # order id -> ns, version 1 first

    async def publish(self, order_id: str) -> None:
        self.committed[order_id].append(time.monotonic_ns())
        await self.signal.publish(order_id)

    def listen(self) -> AsyncIterator[str]:
        return self.signal.listen()


@contextlib.asynccontextmanager
async def _appender(backends: Backends) -> AsyncIterator[tuple[PostgresEventStore, _CommitClock]]:
    engine = POSTGRES.open(backends.database_url)
    redis = Redis.from_url(backends.redis_url)
    clock = _CommitClock(RedisSignal(redis))
    try:
        yield PostgresEventStore(engine, clock), clock
    finally:
        await redis.aclose()
        await engine.dispose()


async def _submit(store: PostgresEventStore) -> str:
    order_id = str(uuid.uuid4())
    await store.append(order_id, [SUBMITTED], expected_version=0)
    return order_id


def _live_events(order_id: str, attempts: int) -> list[Event]:
    events: list[Event] = []
    for attempt in range(1, attempts + 1):
        events += [
            RoutingStarted(attempt=attempt),
            SELECTED,
            BUILT,
            TransactionSubmitted(venue=SELECTED.selected_venue, client_tx_id=f"{order_id}:{attempt}"),
        ]
        if attempt < attempts:
            events.append(ExecutionAttemptFailed(attempt=attempt, reason="venue error", retry_in_ms=50))
    events.append(CONFIRMED)
    return events


async def _append_live(
    store: PostgresEventStore, order_ids: Sequence[str], plan: Plan, *, gap_s: float, step_s: float = 0.0
) -> None:
    """Each order's live events, one step at a time: a step appends the next event of every order, spread
    evenly over `step_s` (then waits `gap_s`), and ends when all of them have committed."""
    events = {order_id: _live_events(order_id, plan.attempts) for order_id in order_ids}
    for step in range(plan.live_events):
        started = time.monotonic()
        appends = []
        for n, order_id in enumerate(order_ids):
            await asyncio.sleep(max(0.0, started + step_s * n / len(order_ids) - time.monotonic()))
            appends.append(asyncio.create_task(store.append(order_id, [events[order_id][step]], step + 1)))
        await asyncio.gather(*appends)
        await asyncio.sleep(max(0.0, started + step_s - time.monotonic()) + gap_s)


# -- the clients ---------------------------------------------------------------------------------------------

Received = tuple[str, list[tuple[int, int]], int | None]  # order id, (version, receipt ns) each, close code


async def _follow(
    ws_base: str, order_id: str, subscribed: asyncio.Event
) -> tuple[list[tuple[int, int]], int | None]:
    """One client: every message until the server closes, with the time each arrived."""
    received: list[tuple[int, int]] = []
    url = f"{ws_base}/api/orders/execute?orderId={order_id}"
    connecting = websockets.connect(url, open_timeout=60, ping_interval=None, compression=COMPRESSION)
    async with connecting as socket:
        with contextlib.suppress(websockets.ConnectionClosedError):  # a close code other than 1000
            async for raw in socket:
                arrived = time.monotonic_ns()
                received.append((msgspec.json.decode(raw)["version"], arrived))
                if len(received) == 1:
                    subscribed.set()
    return received, socket.close_code


class _Clients:
    """The client processes, from the bench's side: they share out the sockets of a round."""

    def __init__(self, pipes: list[Connection]) -> None:
        self.pipes = pipes
        self._busy: list[Connection] = []

    async def subscribe(self, ws_base: str, sockets: list[str]) -> None:
        """Open a socket per order id given (one id may come many times); return once all are subscribed."""
        self._busy = self.pipes[: len(sockets)]
        for n, pipe in enumerate(self._busy):
            pipe.send((ws_base, sockets[n :: len(self._busy)]))
        await asyncio.gather(*(_expect(pipe, "subscribed") for pipe in self._busy))

    async def received(self) -> list[Received]:
        """What every socket of the round received, once the server closed them all."""
        return [row for pipe in self._busy for row in await _expect(pipe, "received")]


@contextlib.contextmanager
def _client_processes() -> Iterator[_Clients]:
    # Forked before the bench opens any loop, thread or connection, so they share nothing live, and start at
    # once: spawning would import the engine again, seconds on a busy machine.
    fork = multiprocessing.get_context("fork")
    pipes: list[Connection] = []
    processes: list[BaseProcess] = []
    try:
        for _ in range(CLIENT_PROCESSES):
            ours, theirs = fork.Pipe()
            process = fork.Process(target=_client_process, args=(theirs,), daemon=True)
            process.start()
            theirs.close()
            pipes.append(ours)
            processes.append(process)
        yield _Clients(pipes)
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


async def _expect(pipe: Connection, what: str) -> Any:
    kind, value = await asyncio.to_thread(_receive, pipe)
    if kind != what:
        raise RuntimeError(f"a client process {kind}: {value}")
    return value


def _receive(pipe: Connection) -> tuple[str, Any]:
    if not pipe.poll(ROUND_TIMEOUT_S + 60):
        raise TimeoutError("a client process went quiet")
    return pipe.recv()


def _client_process(pipe: Connection) -> None:
    """Rounds until told to stop: each opens the sockets it is given, and says when all are subscribed and
    then what they received."""
    while (round_ := pipe.recv()) is not None:
        ws_base, order_ids = round_
        try:
            uvloop.run(_clients(ws_base, order_ids, pipe))
        except Exception as error:  # the bench must fail, not wait for an answer that never comes
            pipe.send(("failed", repr(error)))


async def _clients(ws_base: str, order_ids: list[str], pipe: Connection) -> None:
    connecting = asyncio.Semaphore(CONNECTING_AT_ONCE)
    subscribed = [asyncio.Event() for _ in order_ids]

    async def client(order_id: str, ready: asyncio.Event) -> Received:
        async with connecting:  # held until the replay arrives, so connects don't queue at the API's pool
            follower = asyncio.create_task(_follow(ws_base, order_id, ready))
            await asyncio.wait({follower, asyncio.create_task(ready.wait())}, return_when="FIRST_COMPLETED")
        return (order_id, *await follower)

    clients = [asyncio.create_task(client(o, ready)) for o, ready in zip(order_ids, subscribed, strict=True)]
    everyone = asyncio.gather(*(ready.wait() for ready in subscribed))
    async with asyncio.timeout(ROUND_TIMEOUT_S):
        await next(asyncio.as_completed([everyone, *clients]))  # a client failing first: no waiting in vain
        pipe.send(("subscribed", None))
        pipe.send(("received", await asyncio.gather(*clients)))


# -- checking and counting -----------------------------------------------------------------------------------


def _latencies(received: list[Received], clock: _CommitClock, plan: Plan) -> list[float]:
    """Receipt minus commit of each live event, once checked that every client got every version once, in
    order, and the close code 1000."""
    expected = list(range(1, plan.live_events + 2))
    latencies = []
    for order_id, messages, close_code in received:
        versions = [version for version, _ in messages]
        assert versions == expected, f"client of {order_id}: versions {versions}, closed {close_code}"
        assert close_code == 1000, f"client of {order_id} closed with {close_code}"
        committed = clock.committed[order_id]
        latencies += [(arrived - committed[v - 1]) / 1e6 for v, arrived in messages[1:]]
    return latencies


def _delivery(name: str, outcome: Outcome, percentile: int, judged: bool) -> Figure:
    """The delivery time at `percentile`, beside one client's; p99 carries the goal."""
    value = _percentile(outcome.latencies_ms, percentile)
    goal = percentile == 99
    return Figure(
        name=f"{name}: p{percentile} delivery",
        value=value,
        unit="ms",
        reference="1 client",
        reference_value=_percentile(outcome.reference_ms, percentile),
        goal=f"p99 < {GOAL_MS:.0f} ms" if goal else None,
        met=(value < GOAL_MS) if goal and judged else None,
    )


def _percentile(samples: list[float], p: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _allow_open_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
