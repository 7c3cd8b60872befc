"""The API answers requests side by side: a request slow in the database holds up no unrelated one.

The tests make POSTs slow in the database by holding `order_events`' ACCESS EXCLUSIVE lock in a transaction
of their own, so that each POST's INSERT waits in PostgreSQL. Requests that do not touch `order_events` must
be answered meanwhile, and the POSTs once the lock goes. An API that serialised requests would answer the
others only after the POSTs, which wait for a release that comes only after the others' answers: every wait
is bounded, so such an API fails the test with a message instead of hanging it; and the API is a process of
its own (`order-engine api`), so that one whose event loop stops (a blocking call, say) cannot stop the
test's too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.pool import QueuePool

from eventstore.postgres import POSTGRES
from tests.processes import environment, free_port, role_processes, wait_until_healthy
from tests.settings import MARKET_ORDER

ANSWER_S = 20  # for each step: an idle API answers in milliseconds; a serialised one never does
STARTUP_S = 60  # importing the engine takes seconds, tens of them on a busy machine
# Read the read side or no table at all: none waits for `order_events`' lock (`/health` and `/metrics`
# count the log's events, so they do).
UNRELATED = ("/api/orders", "/api/stats", "/")
NO_DATABASE = ("/", "/schema/openapi.json")
EXTRA_POSTS = 8  # blocked POSTs beyond the pool's connections, which wait for one
WAITING_INSERTS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO order_events%'
"""


@asynccontextmanager
async def within(seconds: float, what: str) -> AsyncIterator[None]:
    """Fails the test, saying `what` did not happen, if the block takes longer than `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        pytest.fail(f"not within {seconds} s: {what}")


@asynccontextmanager
async def order_events_locked(database_url: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """`order_events` locked against every read and write until the block ends, or until the function it
    yields is awaited."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute("LOCK TABLE order_events IN ACCESS EXCLUSIVE MODE")
        try:
            yield conn.rollback
        finally:
            await conn.rollback()  # (nothing to do if already released)


async def inserts_waiting(database_url: str, count: int) -> None:
    """Until at least `count` INSERTs into `order_events` wait for a lock in PostgreSQL."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:  # another process's state: asking PostgreSQL is the only way to know
            row = await (await conn.execute(WAITING_INSERTS)).fetchone()
            if row is not None and row[0] >= count:
                return
            await asyncio.sleep(0.01)


@asynccontextmanager
async def started(
    requests: Sequence[Coroutine[Any, Any, httpx.Response]],
) -> AsyncIterator[list[asyncio.Task[httpx.Response]]]:
    """The requests as running tasks; those still running when the block ends are cancelled."""
    tasks = [asyncio.create_task(request) for request in requests]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def answers(http: httpx.AsyncClient, paths: Sequence[str]) -> dict[str, int]:
    """Each path's GET status, all requested at once."""
    responses = await asyncio.gather(*(http.get(path) for path in paths))
    return {path: response.status_code for path, response in zip(paths, responses, strict=True)}


def posts(http: httpx.AsyncClient, count: int) -> list[Coroutine[Any, Any, httpx.Response]]:
    return [http.post("/api/orders/execute", json=MARKET_ORDER) for _ in range(count)]


async def pool_size(database_url: str) -> int:
    """How many connections an engine process's PostgreSQL pool holds (it has no overflow)."""
    engine = POSTGRES.open(database_url)  # opens no connection
    try:
        assert isinstance(engine.pool, QueuePool)
        return engine.pool.size()
    finally:
        await engine.dispose()


@asynccontextmanager
async def api_process(database_url: str, redis_url: str, log_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """`order-engine api` on a port of its own, and a client of it with room for every request at once."""
    port = free_port()
    with role_processes(["api"], environment(database_url, redis_url, port=port), log_dir):
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60, limits=httpx.Limits(max_connections=None)
        ) as http:
            await wait_until_healthy(http, STARTUP_S)
            yield http


@pytest.mark.timeout(STARTUP_S + 4 * ANSWER_S)
@pytest.mark.parametrize("blocked", [1, 8])
async def test_posts_waiting_in_the_database_hold_up_no_unrelated_request(
    postgres_url, redis_url, tmp_path, blocked
):
    assert blocked < await pool_size(postgres_url), "the unrelated reads need a pooled connection left"
    async with (
        api_process(postgres_url, redis_url, tmp_path) as http,
        order_events_locked(postgres_url) as release,
        started(posts(http, blocked)) as submissions,
    ):
        async with within(ANSWER_S, f"{blocked} POSTs waiting for the lock at once (fewer: one by one)"):
            await inserts_waiting(postgres_url, blocked)
        async with within(ANSWER_S, f"{UNRELATED} answered while POSTs wait in the database"):
            unrelated = await answers(http, UNRELATED)
        assert not any(task.done() for task in submissions), "a POST was answered through the lock"
        await release()
        async with within(ANSWER_S, "the POSTs answered once the lock was released"):
            submitted = await asyncio.gather(*submissions)

    assert unrelated == dict.fromkeys(UNRELATED, 200)
    assert [response.status_code for response in submitted] == [201] * blocked
    assert len({response.json()["orderId"] for response in submitted}) == blocked


@pytest.mark.timeout(STARTUP_S + 5 * ANSWER_S)
async def test_posts_beyond_the_database_pool_wait_without_holding_up_requests_that_need_no_database(
    postgres_url, redis_url, tmp_path
):
    pool = await pool_size(postgres_url)
    blocked = pool + EXTRA_POSTS
    async with (
        api_process(postgres_url, redis_url, tmp_path) as http,
        order_events_locked(postgres_url) as release,
        started(posts(http, blocked)) as submissions,
    ):
        async with within(ANSWER_S, f"all {pool} pooled connections in INSERTs, waiting"):
            await inserts_waiting(postgres_url, pool)
        async with within(ANSWER_S, f"{NO_DATABASE} answered while the database pool is taken"):
            unrelated = await answers(http, NO_DATABASE)
        assert not any(task.done() for task in submissions), "a POST was answered through the lock"
        await release()
        async with within(ANSWER_S, "every POST answered after the lock"):
            submitted = await asyncio.gather(*submissions)
        async with within(ANSWER_S, "the read side answered again"):
            listed = await http.get("/api/orders")

    assert unrelated == dict.fromkeys(NO_DATABASE, 200)
    assert [response.status_code for response in submitted] == [201] * blocked
    assert len({response.json()["orderId"] for response in submitted}) == blocked
    assert listed.status_code == 200


# Past the idle timeout of httpx's pool and of uvicorn's default (5 s): a server that closed an idle
# connection first would race the client's next request on it, which then fails (seen under bursts).
CLIENT_IDLE_S = 6


@pytest.mark.timeout(STARTUP_S + CLIENT_IDLE_S + 2 * ANSWER_S)
async def test_an_idle_keep_alive_connection_is_left_for_the_client_to_close(
    postgres_url, redis_url, tmp_path
):
    async with api_process(postgres_url, redis_url, tmp_path) as http:
        reader, writer = await asyncio.open_connection("127.0.0.1", http.base_url.port)
        try:
            async with within(ANSWER_S, "the first answer on the connection"):
                first = await _get_on(reader, writer, "/")
            await asyncio.sleep(CLIENT_IDLE_S)  # the idleness itself is what is tested
            async with within(ANSWER_S, "an answer on the same connection after it was idle"):
                second = await _get_on(reader, writer, "/")
        finally:
            writer.close()
    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200"), "the server closed the idle connection first"


async def _get_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    """One keep-alive GET on an open connection: its status line and headers (the body is read, dropped)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return head
