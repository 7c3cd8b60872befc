"""A client that stops reading an order's WebSocket: the others get every event without waiting on it; it is
closed with 1013 once more than MAX_BACKLOG events have come for it since its socket last took one, and
resumes with afterVersion from the last message it got, without a gap or a duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from urllib.parse import urlsplit

import msgspec
import websockets

from domain.events import ExecutionAttemptFailed, OrderFailed
from domain.order import Order
from projections.feed import MAX_BACKLOG
from tests.harness import engine_settings, running_engine

FAST_CLIENTS = 3
BATCH = 100  # events per append
# Big messages (a long failure reason), so that the socket buffers between the server and a client that
# reads nothing fill after hundreds of events, not tens of thousands.
REASON = "venue error: " + "x" * 2000
MOST_EVENTS = 20_000  # far more than the buffers hold: the slow client must have been dropped long before


class FastClient:
    """Reads every message as it comes; `reached(v)` once it has version v."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.versions: list[int] = []
        self.close_code: int | None = None
        self._progress = asyncio.Condition()

    async def run(self) -> None:
        async with websockets.connect(self.url, max_size=None) as ws:
            with contextlib.suppress(websockets.ConnectionClosedError):
                async for raw in ws:
                    async with self._progress:
                        self.versions.append(msgspec.json.decode(raw)["version"])
                        self._progress.notify_all()
        self.close_code = ws.close_code

    async def reached(self, version: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: bool(self.versions) and self.versions[-1] >= version)


def small_receive_buffer(url: str) -> socket.socket:
    """A connected TCP socket that buffers little: a client that stops reading is felt by the server soon."""
    parts = urlsplit(url)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((parts.hostname, parts.port))
    raw.setblocking(False)
    return raw


async def test_a_client_that_stops_reading_is_closed_1013_and_resumes_without_a_gap(postgres_url, redis_url):
    settings = engine_settings({"database_url": postgres_url, "redis_url": redis_url})
    async with running_engine(settings, worker=False, projector=False) as engine:
        store, feed = engine.services.store, engine.services.feed
        order_id = str(uuid.uuid4())
        await store.append(order_id, [Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")], 0)
        url = f"{engine.ws_base}/api/orders/execute?orderId={order_id}"

        fast = [FastClient(url) for _ in range(FAST_CLIENTS)]
        readers = [asyncio.create_task(client.run()) for client in fast]
        # The slow client takes the replayed first event, then reads nothing (its library stops taking
        # frames from the socket once one is queued). Uncompressed, as the engine's server sends: deflate
        # would shrink these messages, all alike, to almost nothing.
        slow = await websockets.connect(
            url, sock=small_receive_buffer(url), max_queue=1, max_size=None, compression=None
        )
        slow_first = msgspec.json.decode(await slow.recv())
        for client in fast:
            await client.reached(1)
        assert feed.subscriber_count == FAST_CLIENTS + 1

        version = 1
        while feed.subscriber_count > FAST_CLIENTS:
            assert version < MOST_EVENTS, "the client that reads nothing was never dropped"
            failures = [
                ExecutionAttemptFailed(attempt=version + n, reason=REASON, retry_in_ms=50)
                for n in range(BATCH)
            ]
            await store.append(order_id, failures, version)
            version += BATCH
            for client in fast:  # the server's read of the batch (which drops the slow one) came first
                await client.reached(version)
        await store.append(order_id, [OrderFailed(reason="venue error", attempts=version)], version)
        version += 1
        await asyncio.gather(*readers)

        got = [slow_first["version"]]
        with contextlib.suppress(websockets.ConnectionClosedError):
            async for raw in slow:  # reading again: what was on its way, then the close frame
                got.append(msgspec.json.decode(raw)["version"])
        assert slow.close_code == 1013
        assert slow.close_reason == f"fell behind; reconnect with afterVersion={got[-1]}"
        resumed, resumed_close = await engine.stream(order_id, after_version=got[-1])

    everything = list(range(1, version + 1))
    assert all(client.versions == everything and client.close_code == 1000 for client in fast)
    assert got == list(range(1, len(got) + 1))
    assert version - len(got) > MAX_BACKLOG  # it was dropped far behind, not near the end
    assert got + [message["version"] for message in resumed] == everything
    assert resumed_close == 1000
    assert feed.subscriber_count == 0
