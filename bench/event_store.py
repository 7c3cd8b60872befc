"""Event store: appends per second beside the eventsourcing library and pgbench, and a follower's read.

Every writer appends one event per transaction to orders of its own (a new order every
`EVENTS_PER_ORDER` appends, each append expecting the version before it), for a fixed time. The same event
payload is appended by our `PostgresEventStore`, by the `eventsourcing` library's PostgreSQL recorder (by
default and with its database functions), and inserted by pgbench into a scratch table: PostgreSQL's own
ceiling for one-row transactions on this machine.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from multiprocessing.synchronize import Barrier
from pathlib import Path

import msgspec
import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from sqlalchemy.engine import make_url

from bench import follower_read
from bench.results import Figure, Measured, Size
from bench.servers import Backends
from domain.events import OrderSubmitted
from domain.order import Order
from eventstore.postgres import POSTGRES
from eventstore.signal import InProcessSignal

WRITERS = {Size.SMOKE: (2,), Size.FULL: (1, 8, 32)}  # smoke: two writer processes, each kind once
# Each kind runs `ROUNDS` times, the kinds taking turns, so that a change in the machine's load over the
# part (other work on it) falls on all of them alike. pgbench runs whole seconds, at least one.
ROUNDS = {Size.SMOKE: 1, Size.FULL: 4}
SECONDS_PER_ROUND = {Size.SMOKE: 0.5, Size.FULL: 2.0}
# Within the engine's pool (PostgresBackend.open): past it, QueuePool closes each returned overflow connection
# that finds the pool full of idle ones, and opens one again at the next checkout (160 reconnects in 3 s at 16
# writers).
WRITERS_PER_PROCESS = 8
EVENTS_PER_ORDER = 10
EVENT: OrderSubmitted = Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")
PAYLOAD = msgspec.json.encode(EVENT)
TOPIC = "domain.events:OrderSubmitted"
PGBENCH = "pgbench"
TOOLS = {"pgbench": "comes with the PostgreSQL server packages (apt-get install postgresql)"}
SCRATCH_TABLE = "CREATE TABLE bench_one_row (id bigserial PRIMARY KEY, payload jsonb NOT NULL)"


class Writer(StrEnum):
    OURS = "ours"
    EVENTSOURCING = "eventsourcing recorder"
    EVENTSOURCING_FUNCTIONS = "eventsourcing recorder, database functions"
    PGBENCH = "pgbench one-row INSERT"


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    url, rounds, seconds = backends.database_url, ROUNDS[size], SECONDS_PER_ROUND[size]
    judged = size is Size.FULL  # a smoke run is too short to judge goals by
    _create_tables(url)
    figures: list[Figure] = []
    for n in WRITERS[size]:
        rates = dict.fromkeys(Writer, 0.0)
        for _ in range(rounds):
            for writer in Writer:
                rates[writer] += _appends_per_second(writer, url, n, seconds, work_dir) / rounds
        # Each reference with the goal ours must reach against it (a multiple of its rate), if any.
        comparisons = (
            (Writer.EVENTSOURCING, "appends/s", 3 if n > 1 else None),
            (Writer.EVENTSOURCING_FUNCTIONS, "appends/s vs eventsourcing with database functions", None),
            (Writer.PGBENCH, "appends/s vs PostgreSQL ceiling", 0.5),
        )
        figures += [
            Figure(
                name=f"{label}, {_writers(n)}",
                value=rates[Writer.OURS],
                unit="events/s",
                reference=writer.value,
                reference_value=rates[writer],
                goal=f"≥ {factor}x reference" if factor else None,
                met=rates[Writer.OURS] >= factor * rates[writer] if judged and factor else None,
            )
            for writer, label, factor in comparisons
        ]
    figures += asyncio.run(follower_read.measure(url, size))
    return Measured(
        title="Event store: appends and follower reads",
        settings={
            "writers": ", ".join(map(str, WRITERS[size])),
            "rounds": rounds,
            "seconds_per_round": seconds,
            "events_per_append": 1,
            "events_per_order": EVENTS_PER_ORDER,
            "event_bytes": len(PAYLOAD),
        },
        figures=figures,
        notes=[
            "Harness, the same for every writer kind: N writers are split over max(min(N, 2), N / 8)"
            " processes (at least one per core, as pgbench's `-j`; at most 8 writers each, within the"
            " engine's connection pool), each writer with a connection of its own, all started"
            " together once every connection is open; ours run as asyncio tasks (the store is async, as in"
            " the engine's workers), the sync eventsourcing recorder's as threads, one recorder (with its"
            " default pool of one connection) per thread. Each figure is the mean of `rounds` runs, the"
            " kinds taking turns.",
            f"Event: `OrderSubmitted`, {len(PAYLOAD)} bytes of JSON; the eventsourcing recorder stores the"
            " same bytes as its `state`, pgbench inserts them as `jsonb` into a table with a bigserial key"
            " and no other index (our `order_events` also keeps its (order_id, version) and follower"
            " indexes). pgbench runs `-n -c N -j min(N, 2) -T seconds` with a one-INSERT script.",
            "Our append is one round trip, its INSERT in autocommit; it signals through `InProcessSignal`"
            " here, where the engine's `RedisSignal` adds one Redis PUBLISH round trip after the commit.",
            "The eventsourcing recorder's default takes `LOCK TABLE ... IN EXCLUSIVE MODE` in every insert"
            " transaction, so its writers take turns whatever their number (that is how it keeps"
            " notification ids in commit order); with POSTGRES_ENABLE_DB_FUNCTIONS it calls a plpgsql"
            " function that inserts without that lock. Our followers get the same guarantee from"
            " transaction ids instead (eventstore/postgres.py), so writers never wait for each other.",
            "Follower reads (bench/follower_read.py): `read_all` on the log the appends left, at its head"
            " (nothing new: what a live projector or stream mostly reads) and from its start (a full"
            f" batch), {follower_read.READS[size]} times each, ours and the reference taking turns. Ours"
            " reads below the oldest running transaction of our own database (`pg_stat_activity` looked"
            " up in the same statement); the reference is the server-wide `pg_snapshot_xmin` it replaced.",
        ],
    )


# -- one measurement: writers of one kind ----------------------------------------------------------


def _appends_per_second(writer: Writer, url: str, writers: int, seconds: float, work_dir: Path) -> float:
    """Starts `writers` writers over a few processes and counts their appends in `seconds`."""
    if writer is Writer.PGBENCH:
        return _pgbench(url, writers, seconds, work_dir)
    processes = max(min(writers, 2), math.ceil(writers / WRITERS_PER_PROCESS))
    context = multiprocessing.get_context("fork")  # everything is imported already: starts in ms
    ready = context.Barrier(processes + 1)
    counts: multiprocessing.Queue[int] = context.Queue()
    started = [
        context.Process(
            target=_writer_process,
            args=(writer, url, len(range(p, writers, processes)), seconds, ready, counts),
        )
        for p in range(processes)
    ]
    for process in started:
        process.start()
    ready.wait(timeout=60)
    total = sum(counts.get(timeout=seconds + 60) for _ in started)
    for process in started:
        process.join(timeout=30)
        if process.exitcode != 0:
            raise RuntimeError(f"{writer} writer process ended with {process.exitcode}")
    return total / seconds


def _writer_process(
    writer: Writer,
    url: str,
    writers: int,
    seconds: float,
    ready: Barrier,
    counts: multiprocessing.Queue[int],
) -> None:
    if writer is Writer.OURS:
        count = asyncio.run(_our_writers(url, writers, seconds, ready))
    else:
        count = _eventsourcing_writers(url, writers, seconds, ready, writer is Writer.EVENTSOURCING_FUNCTIONS)
    counts.put(count)


async def _our_writers(url: str, writers: int, seconds: float, ready: Barrier) -> int:
    store = POSTGRES.event_store(POSTGRES.open(url), InProcessSignal())
    try:
        # One append each first, so that every writer's connection is open before the clock starts.
        await asyncio.gather(*(store.append(str(uuid.uuid4()), [EVENT], 0) for _ in range(writers)))
        await asyncio.to_thread(ready.wait, 60)
        deadline = time.monotonic() + seconds

        async def append_until_deadline() -> int:
            count, order_id, version = 0, str(uuid.uuid4()), 0
            while True:
                await store.append(order_id, [EVENT], version)
                if time.monotonic() > deadline:
                    return count
                count, version = count + 1, version + 1
                if version == EVENTS_PER_ORDER:
                    order_id, version = str(uuid.uuid4()), 0

        return sum(await asyncio.gather(*(append_until_deadline() for _ in range(writers))))
    finally:
        await store.engine.dispose()


def _eventsourcing_writers(url: str, writers: int, seconds: float, ready: Barrier, db_functions: bool) -> int:
    recorders = [_eventsourcing_recorder(url, db_functions) for _ in range(writers)]
    for recorder in recorders:  # open each recorder's connection before the clock starts
        recorder.insert_events([_stored_event(uuid.uuid4(), 1)])
    ready.wait(60)
    deadline = time.monotonic() + seconds
    counts = [0] * writers

    def append_until_deadline(writer: int) -> None:
        order_id, version = uuid.uuid4(), 1
        while True:
            recorders[writer].insert_events([_stored_event(order_id, version)])
            if time.monotonic() > deadline:
                return
            counts[writer], version = counts[writer] + 1, version + 1
            if version > EVENTS_PER_ORDER:
                order_id, version = uuid.uuid4(), 1

    _run_threads([lambda w=w: append_until_deadline(w) for w in range(writers)])
    for recorder in recorders:
        recorder.datastore.close()
    return sum(counts)


def _run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _eventsourcing_recorder(url: str, db_functions: bool = False) -> PostgresApplicationRecorder:
    """The recorder with the library's defaults (as its PostgresFactory makes it from the environment)."""
    parts = make_url(url)
    datastore = PostgresDatastore(
        dbname=parts.database or "",
        host=parts.host or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "",
        password=parts.password or "",
        enable_db_functions=db_functions,
    )
    return PostgresApplicationRecorder(datastore)


def _stored_event(order_id: uuid.UUID, version: int) -> StoredEvent:
    return StoredEvent(originator_id=order_id, originator_version=version, topic=TOPIC, state=PAYLOAD)


def _create_tables(url: str) -> None:
    """The eventsourcing recorder's table, type and function, and pgbench's scratch table."""
    recorder = _eventsourcing_recorder(url)
    recorder.create_table()
    recorder.datastore.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCRATCH_TABLE)


def _writers(n: int) -> str:
    return f"{n} writer{'s' if n > 1 else ''}"


# -- PostgreSQL's ceiling --------------------------------------------------------------------------


def _pgbench(url: str, clients: int, seconds: float, work_dir: Path) -> float:
    """Transactions per second of one-row INSERTs of the same payload, by pgbench."""
    script = work_dir / "one-row-insert.sql"
    # pgbench substitutes `:name` variables in scripts; the payload's `":` never starts one.
    script.write_text(f"INSERT INTO bench_one_row (payload) VALUES ('{PAYLOAD.decode()}');\n")
    clients_and_time = ["-c", str(clients), "-j", str(min(clients, 2)), "-T", str(max(1, round(seconds)))]
    out = subprocess.run(
        [PGBENCH, "-n", "-f", script, *clients_and_time, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"^tps = ([\d.]+)", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no tps in pgbench's output:\n{out}")
    return float(found.group(1))
