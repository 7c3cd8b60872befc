"""The event log's contract, kept by every store (in memory, SQLite, PostgreSQL): expected-version appends,
reads in version and log order; and on PostgreSQL, a follower that never passes over a late commit."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
import psycopg
import pytest
import sqlalchemy as sa

from domain.events import RoutingStarted
from domain.order import Order
from eventstore.backend import backend_for
from eventstore.base import LOG_START, ConcurrencyConflict, EventStore, ReadHorizon, RecordedEvent
from eventstore.memory import InMemoryEventStore
from eventstore.signal import InProcessSignal
from eventstore.sql import SqlEventStore
from eventstore.tables import order_events

SUBMITTED = Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")


def open_store(database_url: str) -> SqlEventStore:
    backend = backend_for(database_url)
    return backend.event_store(backend.open(database_url), InProcessSignal())


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EventStore]:
    """Every event store, for the contract they all keep (the in-memory one is the unit tests' fake)."""
    if request.param == "memory":
        yield InMemoryEventStore()
        return
    store = open_store(request.getfixturevalue(f"{request.param}_url"))
    yield store
    await store.engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def sql_store(request: pytest.FixtureRequest) -> AsyncIterator[SqlEventStore]:
    store = open_store(request.getfixturevalue(f"{request.param}_url"))
    yield store
    await store.engine.dispose()


async def test_racing_appends_at_one_version_store_exactly_one(store):
    order_id = str(uuid.uuid4())
    await store.append(order_id, [SUBMITTED], expected_version=0)

    async def attempt(n: int) -> bool:
        try:
            await store.append(order_id, [RoutingStarted(attempt=n)], expected_version=1)
        except ConcurrencyConflict:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(1, 21)))

    assert results.count(True) == 1
    stream = await store.read_stream(order_id)
    assert [r.version for r in stream] == [1, 2]


async def test_a_stale_expected_version_is_refused_and_nothing_is_stored(store):
    order_id = str(uuid.uuid4())
    await store.append(order_id, [SUBMITTED, RoutingStarted(attempt=1)], expected_version=0)
    with pytest.raises(ConcurrencyConflict):
        await store.append(
            order_id, [RoutingStarted(attempt=2), RoutingStarted(attempt=3)], expected_version=1
        )
    assert [r.version for r in await store.read_stream(order_id)] == [1, 2]


async def test_a_new_order_at_a_taken_first_version_is_refused(store):
    order_id = str(uuid.uuid4())
    await store.append(order_id, [SUBMITTED], expected_version=0)
    with pytest.raises(ConcurrencyConflict) as refused:
        await store.append(order_id, [SUBMITTED], expected_version=0)
    assert (refused.value.order_id, refused.value.expected_version) == (order_id, 0)
    assert len(await store.read_stream(order_id)) == 1


async def test_appends_return_what_reads_give_back(store):
    order_id = str(uuid.uuid4())
    appended = await store.append(
        order_id, [SUBMITTED, RoutingStarted(attempt=1)], expected_version=0, metadata={"worker": "w"}
    )
    assert [r.version for r in appended] == [1, 2]
    assert appended == await store.read_stream(order_id)
    assert appended == await store.read_all(LOG_START, 10)
    assert appended[0].recorded_at.tzinfo is not None


async def test_the_whole_log_reads_in_log_order_from_any_position(store):
    orders = [str(uuid.uuid4()) for _ in range(3)]
    for order_id in orders:  # interleaved: each order's second event after every order's first
        await store.append(order_id, [SUBMITTED], expected_version=0)
    for order_id in orders:
        await store.append(order_id, [RoutingStarted(attempt=1)], expected_version=1)

    everything = await store.read_all(LOG_START, 100)
    assert [(r.order_id, r.version) for r in everything] == [(o, v) for v in (1, 2) for o in orders]
    positions = [r.log_position for r in everything]
    assert positions == sorted(positions) and len(set(positions)) == 6
    assert await store.read_all(positions[1], 3) == everything[2:5]
    assert await store.read_all(positions[-1], 10) == []
    assert [await store.count_after(p) for p in (LOG_START, positions[2], positions[-1])] == [6, 3, 0]
    assert await store.log_position(positions[3].position) == positions[3]
    assert await store.log_position(positions[-1].position + 1000) is None
    assert await store.read_horizon() == ReadHorizon()  # nothing holds followers back here


async def test_an_unknown_order_has_an_empty_stream(store):
    assert await store.read_stream(str(uuid.uuid4())) == []


async def test_streams_read_back_in_version_order_with_metadata(store):
    order_id = str(uuid.uuid4())
    await store.append(order_id, [SUBMITTED], expected_version=0, metadata={"correlationId": "c-1"})
    await store.append(order_id, [RoutingStarted(attempt=1)], expected_version=1, metadata={"attempt": 1})
    stream = await store.read_stream(order_id)
    assert [type(r.event) for r in stream] == [type(SUBMITTED), RoutingStarted]
    assert stream[0].event == SUBMITTED
    assert [r.metadata for r in stream] == [{"correlationId": "c-1"}, {"attempt": 1}]
    assert await store.read_stream(order_id, after_version=1) == stream[1:]


async def test_the_log_reads_without_metadata_for_readers_that_never_look_at_it(sql_store):
    order_id = str(uuid.uuid4())
    appended = await sql_store.append(
        order_id, [SUBMITTED, RoutingStarted(attempt=1)], expected_version=0, metadata={"worker": "w"}
    )
    without = [msgspec.structs.replace(recorded, metadata={}) for recorded in appended]
    assert await sql_store.read_all(LOG_START, 10, metadata=False) == without
    async with sql_store.engine.connect() as conn:
        assert await sql_store.read_all_in(conn, LOG_START, 10, metadata=False) == without
    assert await sql_store.read_all(LOG_START, 10) == appended  # with it, by default


async def test_recorded_at_reads_back_in_utc_to_the_microsecond(sql_store):
    order_id = str(uuid.uuid4())
    (appended,) = await sql_store.append(order_id, [SUBMITTED], expected_version=0)
    landing = datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC)  # before the epoch, to the microsecond
    async with sql_store.engine.begin() as conn:
        await conn.execute(
            sa.update(order_events).where(order_events.c.order_id == order_id).values(recorded_at=landing)
        )
    for (recorded,) in (await sql_store.read_all(LOG_START, 10), await sql_store.read_stream(order_id)):
        assert recorded.recorded_at == landing
        assert recorded.recorded_at.tzinfo is UTC
    assert appended.recorded_at.tzinfo is UTC


# -- the follower -----------------------------------------------------------------------------------------

WRITERS = 12
ORDERS_PER_WRITER = 6
EVENTS_PER_ORDER = 5
TOTAL = WRITERS * ORDERS_PER_WRITER * EVENTS_PER_ORDER


async def _slow_writer(database_url: str, writer: int, rng: random.Random) -> None:
    """Appends as the store does, but holds each transaction open a while after taking its position, so
    that transactions commit in a different order from the positions they were given."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for n in range(ORDERS_PER_WRITER):
            order_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{writer}:{n}"))
            for version in range(1, EVENTS_PER_ORDER + 1):
                event = SUBMITTED if version == 1 else RoutingStarted(attempt=version - 1)
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO order_events"
                        " (order_id, version, type, data, metadata, recorded_at, schema_version)"
                        " VALUES (%s, %s, %s, %s, '{}', %s, %s)",
                        (
                            order_id,
                            version,
                            type(event).__name__,
                            msgspec.json.encode(event).decode(),
                            datetime.now(UTC),
                            event.SCHEMA_VERSION,
                        ),
                    )
                    await asyncio.sleep(rng.uniform(0, 0.02))


async def _follow(store: SqlEventStore, done: asyncio.Event) -> list[RecordedEvent]:
    """Reads until the writers are done and it has as many events as they wrote. (A follower that skipped
    events never gets there, and the test's timeout says so.)"""
    seen: list[RecordedEvent] = []
    after = LOG_START
    while True:
        finished = done.is_set()  # read once more after the writers are done
        batch = await store.read_all(after, 50)
        seen += batch
        if batch:
            after = batch[-1].log_position
        elif finished and len(seen) >= TOTAL:
            return seen
        await asyncio.sleep(0.001)


async def _follow_by_position_alone(database_url: str, done: asyncio.Event) -> set[tuple[str, int]]:
    """The naive follower (`position > last`), to show that the race this store guards against happens."""
    seen: set[tuple[str, int]] = set()
    last = 0
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            finished = done.is_set()
            rows = await (
                await conn.execute(
                    "SELECT position, order_id, version FROM order_events"
                    " WHERE position > %s ORDER BY position",
                    (last,),
                )
            ).fetchall()
            seen |= {(order_id, version) for _, order_id, version in rows}
            if rows:
                last = rows[-1][0]
            elif finished:
                return seen
            await asyncio.sleep(0.001)


async def test_follower_sees_every_event_once_in_order_while_writers_commit_out_of_order(postgres_url):
    store = open_store(postgres_url)
    done = asyncio.Event()

    async def writers() -> None:
        await asyncio.gather(*(_slow_writer(postgres_url, w, random.Random(w)) for w in range(WRITERS)))
        done.set()

    try:
        async with asyncio.timeout(60):
            followed, naive, _ = await asyncio.gather(
                _follow(store, done),
                _follow_by_position_alone(postgres_url, done),
                writers(),
            )
    finally:
        await store.engine.dispose()

    keys = [(r.order_id, r.version) for r in followed]
    assert len(keys) == TOTAL, "the follower missed events"
    assert len(set(keys)) == TOTAL, "the follower saw an event twice"
    positions = [r.log_position for r in followed]
    assert positions == sorted(positions), "the follower went backwards"
    for order_id in {r.order_id for r in followed}:
        versions = [r.version for r in followed if r.order_id == order_id]
        assert versions == list(range(1, EVENTS_PER_ORDER + 1))
    # The same run with a position-only cursor loses events: the scenario really has late commits.
    assert len(naive) < TOTAL


async def test_an_event_stored_in_an_old_shape_reads_back_in_the_current_one(sql_store):
    """OrderSubmitted version 1 predates order types: it reads back as a market order."""
    store = sql_store
    order_id = str(uuid.uuid4())
    old_shape = {
        "type": "OrderSubmitted",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amountIn": 2.0,
        "slippageBps": 30,
    }
    async with store.engine.begin() as conn:
        await conn.execute(
            order_events.insert().values(
                order_id=order_id,
                version=1,
                type="OrderSubmitted",
                data=old_shape,
                metadata={},
                recorded_at=datetime.now(UTC),
                schema_version=1,
                **({"transaction_id": 0} if store.engine.dialect.name == "sqlite" else {}),
            )
        )
    (recorded,) = await store.read_stream(order_id)
    assert recorded.event == Order.submit("market", "SOL", "USDC", 30, amount_in="2.0")

    await store.append(order_id, [RoutingStarted(attempt=1)], expected_version=1)
    async with store.engine.connect() as conn:
        versions = (
            await conn.execute(
                sa.select(order_events.c.schema_version).where(order_events.c.order_id == order_id)
            )
        ).scalars()
        assert list(versions) == [1, RoutingStarted.SCHEMA_VERSION]
