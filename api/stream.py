"""The WebSockets: one order's events (GET upgrade on the submit path) and the whole log."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect

from api import wire
from api.draining import CLOSE_GOING_AWAY, GOING_AWAY_REASON, Draining
from api.messages import event_message, log_message
from eventstore.base import (
    LOG_START,
    MAX_POSITION,
    MAX_VERSION,
    EventStore,
    LogPosition,
    RecordedEvent,
    StoreUnavailable,
)
from projections.feed import FellBehind, LiveFeed, UnknownOrder

CLOSE_NORMAL = 1000
CLOSE_UNAVAILABLE = 1011  # the client resumes with afterVersion / afterPosition once the server is back
CLOSE_TRY_AGAIN_LATER = 1013  # fell behind (see LiveFeed.follow): the client resumes with afterVersion
STALLED_CLOSE_S = 30.0  # how long a client dropped for falling behind has to take its close frame
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404


@websocket("/api/orders/execute")
async def order_stream(
    socket: WebSocket, feed: NamedDependency[LiveFeed], draining: NamedDependency[Draining]
) -> None:
    """`?orderId=<uuid>[&afterVersion=N]`: every event of the order so far, then each new one, in version
    order; closes 1000 after the terminal event, 4404 for an unknown order, 4400 for a malformed request,
    1001 when this server shuts down (resume on another with afterVersion)."""
    with draining.socket():
        await _order_stream(socket, feed, draining)


async def _order_stream(socket: WebSocket, feed: LiveFeed, draining: Draining) -> None:
    await socket.accept()
    params = socket.query_params
    if await _refused_repeated_parameter(socket):
        return
    try:
        order_id = str(uuid.UUID(params.get("orderId", "")))
        after_version = _non_negative(params.get("afterVersion", "0"), MAX_VERSION)
    except ValueError:
        await socket.close(
            CLOSE_BAD_REQUEST, f"orderId must be a UUID and afterVersion an integer in 0..{MAX_VERSION}"
        )
        return
    # An unknown order is found by the feed's first read (UnknownOrder), which a known one needs anyway.
    await _send_until_done(
        socket,
        lambda fell_behind: feed.follow(order_id, after_version, fell_behind),
        _ORDER_MESSAGES.text,
        draining,
    )


@websocket("/api/orders/stream")
async def log_stream(
    socket: WebSocket,
    feed: NamedDependency[LiveFeed],
    store: NamedDependency[EventStore],
    draining: NamedDependency[Draining],
) -> None:
    """`[?afterToken=T | ?afterPosition=N]`: every event of every order in log order, then each new one; each
    message carries its `resumeToken` and `position`. Resume with the last token received: tokens strictly
    increase along the stream (compare them as strings). Positions are unique but, in PostgreSQL, handed out
    before commit, so along the stream they do not always increase; `afterPosition` resumes all the same.
    Closes 1001 when this server shuts down (resume on another with the last token)."""
    with draining.socket():
        await _log_stream(socket, feed, store, draining)


async def _log_stream(socket: WebSocket, feed: LiveFeed, store: EventStore, draining: Draining) -> None:
    await socket.accept()
    params = socket.query_params
    if await _refused_repeated_parameter(socket):
        return
    if "afterToken" in params and "afterPosition" in params:
        await socket.close(CLOSE_BAD_REQUEST, "give afterToken or afterPosition, not both")
        return
    if "afterToken" in params:
        try:
            after: LogPosition | None = LogPosition.from_resume_token(params["afterToken"])
        except ValueError:
            await socket.close(CLOSE_BAD_REQUEST, "afterToken must be a resumeToken as the stream sends them")
            return
    else:
        try:
            after_position = _non_negative(params.get("afterPosition", "0"))
        except ValueError:
            await socket.close(CLOSE_BAD_REQUEST, f"afterPosition must be an integer in 0..{MAX_POSITION}")
            return
        after = LOG_START if after_position == 0 else await store.log_position(after_position)
    if after is None:
        await socket.close(CLOSE_NOT_FOUND, "no event at that position")
        return
    await _send_until_done(socket, lambda _: feed.follow_log(after), _log_message_text, draining)


class _MessageTexts:
    """Each order event's message, encoded once however many clients it goes to (building and encoding it
    per client was 7% of the API's CPU with 1,000 clients on one order). An event's message never changes,
    so its text can be kept; the `size` latest are."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._texts: dict[tuple[str, int], str] = {}  # in the order they were made

    def text(self, recorded: RecordedEvent) -> str:
        key = (recorded.order_id, recorded.version)
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = wire.encode(event_message(recorded)).decode()
            if len(self._texts) > self.size:
                del self._texts[next(iter(self._texts))]
        return text


_ORDER_MESSAGES = _MessageTexts(size=4096)


def _log_message_text(recorded: RecordedEvent) -> str:
    return wire.encode(log_message(recorded)).decode()


async def _refused_repeated_parameter(socket: WebSocket) -> bool:
    """Close 4400 (and say True) when a query parameter is given more than once: which one the client meant
    cannot be known, and taking either would resume it somewhere it did not ask for."""
    names = [name for name, _ in socket.query_params.multi_items()]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        await socket.close(CLOSE_BAD_REQUEST, f"{repeated} is given more than once")
    return repeated is not None


def _non_negative(raw: str, maximum: int = MAX_POSITION) -> int:
    """Digits only (`int()` would also take `1_0`, ` 5` and other scripts' digits), at most `maximum`: a
    number the database cannot hold is the client's error, not a failed query."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(maximum)) or int(raw) > maximum:
        raise ValueError(raw)
    return int(raw)


async def _send_until_done(
    socket: WebSocket,
    follow: Callable[[Callable[[FellBehind], Any]], AsyncIterator[RecordedEvent]],
    to_text: Callable[[RecordedEvent], str],
    draining: Draining,
) -> None:
    """Send each event of `follow(fell_behind)` until the feed ends (then close 1000; 1011 when it cannot read
    the log, 4404 when it has no such order), the client leaves, the feed drops the client for falling behind
    (then close 1013, once its socket takes the close frame: after every message it was given, so it resumes
    from the last one it got without a gap), or this server drains (then close 1001, after the message being
    sent, if any: the client resumes after the last one)."""
    dropped: list[FellBehind] = []

    def fell_behind(behind: FellBehind) -> None:
        dropped.append(behind)
        sender.cancel()  # it may be waiting for the socket to take a message: the others do not wait on it

    events = follow(fell_behind)

    async def send() -> None:
        try:
            # aclosing: a client that leaves mid-stream gives its subscription back at once, not at GC.
            async with contextlib.aclosing(events):
                async for recorded in events:
                    await socket.send_data(to_text(recorded))
        except StoreUnavailable:
            await socket.close(CLOSE_UNAVAILABLE, "the database is unavailable; reconnect and resume")
            return
        except UnknownOrder:
            await socket.close(CLOSE_NOT_FOUND, "unknown order")
            return
        # The order's other subscribers got the last event at the same moment: let them all send it before
        # any socket spends time on its closing handshake.
        await asyncio.sleep(0)
        await socket.close(CLOSE_NORMAL)

    async def until_disconnect() -> None:
        # Frames from the client mean nothing here; reading them is how a disconnect is noticed.
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await socket.receive_data("text")

    sender = asyncio.create_task(send())
    watcher = asyncio.create_task(until_disconnect())
    going_away = asyncio.create_task(draining.wait())
    tasks = (sender, watcher, going_away)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        client_left = watcher.done()
        drained = going_away.done() and not sender.done()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
    if dropped and not client_left:
        await _close_fallen_behind(socket, dropped[0])
    elif drained and not client_left:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await socket.close(CLOSE_GOING_AWAY, GOING_AWAY_REASON)


async def _close_fallen_behind(socket: WebSocket, behind: FellBehind) -> None:
    """Close 1013 once the socket takes the frame; a client that reads nothing for STALLED_CLOSE_S is left
    without it (the server closes the connection)."""
    reason = f"fell behind; reconnect with afterVersion={behind.sent}"
    with contextlib.suppress(TimeoutError, WebSocketDisconnect, RuntimeError):
        async with asyncio.timeout(STALLED_CLOSE_S):
            await socket.close(CLOSE_TRY_AGAIN_LATER, reason)
