"""A loop that is stopped while its driver is mid-read ends as cancelled, not with the driver's error.

redis-py (and psycopg) can turn the cancellation of a read into a connection error of their own; raised as it
is, asyncio reports it at shutdown as an unhandled exception with a traceback, for a clean stop. redis-py can
also swallow it and answer the command (eventstore/cancelling.py): a loop that went on would keep its
process from exiting. (On the real Redis: tests/integration/test_lost_cancellations.py.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from types import SimpleNamespace
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from domain.order import Order
from eventstore.base import LOG_START, LogPosition, RecordedEvent
from eventstore.memory import InMemoryEventStore
from eventstore.signal import ANY_ORDER, InProcessSignal, RedisSignal
from projections.projector import Projector
from projections.trigger_index import InMemoryTriggerIndex, Pair
from tests.fakes import FakeChain, FakeClock
from workers import consumers, presence
from workers.limits import RedisStartLimiter
from workers.recovery import sweep_forever
from workers.triggers import TriggerWatcher


class _PubSubLosingItsReadOnCancel:
    """A subscription whose read, when cancelled, fails as redis-py's does: "Connection closed by server"."""

    async def subscribe(self, _: str) -> None: ...

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None
        yield {}  # never reached: makes this an async generator

    async def aclose(self) -> None: ...


class _Redis:
    def pubsub(self, **_: Any) -> _PubSubLosingItsReadOnCancel:
        return _PubSubLosingItsReadOnCancel()


async def test_a_wake_up_listener_stopped_mid_read_ends_cancelled():
    listening = RedisSignal(_Redis()).listen()  # a fake of the one call it makes
    assert await anext(listening) == ANY_ORDER
    reading = asyncio.ensure_future(anext(listening))
    await asyncio.sleep(0)  # into the read
    reading.cancel()
    await asyncio.wait([reading])
    assert reading.cancelled(), reading.exception()


class _IndexSwallowingTheCancel(InMemoryTriggerIndex):
    """An index whose read, when cancelled the first time, answers anyway, as redis-py's client often does."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()
        self.swallowed = False

    async def armed_pairs(self) -> set[Pair]:
        self.reading.set()
        if self.swallowed:
            await asyncio.Event().wait()  # a second cancellation ends it (the test's teardown, if it fails)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        self.swallowed = True
        return set()


async def test_a_trigger_watcher_stopped_mid_read_ends_even_if_its_driver_swallows_the_cancellation():
    async def never(_: str) -> None: ...

    index = _IndexSwallowingTheCancel()
    watcher = TriggerWatcher(index, FakeChain(), InMemoryEventStore(), never, FakeClock(), interval_s=0.001)
    watching = asyncio.create_task(watcher.run_forever())
    await index.reading.wait()
    watching.cancel()
    done, _ = await asyncio.wait([watching], timeout=5)
    assert done == {watching} and watching.cancelled()


class _AnswersWhenCancelled:
    """A server call that, cancelled the first time, answers `answer` anyway (as redis-py's client often
    does); a second call waits until it is cancelled."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.called = asyncio.Event()
        self.swallowed = False

    async def __call__(self, *_: object, **__: object) -> object:
        self.called.set()
        if self.swallowed:
            await asyncio.Event().wait()  # the loop went on: a second cancellation ends it (the teardown)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        self.swallowed = True
        return self.answer


async def _ends_once_cancelled(loop: Coroutine[Any, Any, None], call: _AnswersWhenCancelled) -> None:
    running = asyncio.create_task(loop)
    await call.called.wait()
    running.cancel()
    done, _ = await asyncio.wait([running], timeout=5)
    if not done:  # the loop went on past the swallowed cancellation
        running.cancel()
    assert done == {running} and running.cancelled(), "the loop went on after its cancellation"


async def _no_keys(**_: object) -> AsyncIterator[bytes]:
    return
    yield b""


async def test_the_presence_renewal_ends_even_if_its_driver_swallows_the_cancellation(monkeypatch):
    monkeypatch.setattr(presence, "RENEW_EVERY_S", 0)
    redis = SimpleNamespace(set=_AnswersWhenCancelled(True))
    await _ends_once_cancelled(presence.announce_forever(redis, "worker-1"), redis.set)  # type: ignore[arg-type]


async def test_the_dead_worker_reaper_ends_even_if_its_driver_swallows_the_cancellation(monkeypatch):
    async def never(_: str) -> None: ...

    monkeypatch.setattr(consumers, "RENEW_EVERY_S", 0)
    redis = SimpleNamespace(xinfo_consumers=_AnswersWhenCancelled([]), scan_iter=_no_keys)
    reaping = consumers.reap_forever(redis, None, never)  # type: ignore[arg-type]
    await _ends_once_cancelled(reaping, redis.xinfo_consumers)


async def test_the_recovery_sweep_ends_even_if_its_driver_swallows_the_cancellation():
    async def never(_: str) -> None: ...

    queries = SimpleNamespace(unfinished=_AnswersWhenCancelled([]))
    claims = SimpleNamespace(held=lambda _: asyncio.sleep(0, set()))
    sweeping = sweep_forever(queries, claims, never, grace_s=0, interval_s=0)  # type: ignore[arg-type]
    await _ends_once_cancelled(sweeping, queries.unfinished)


async def test_the_start_limiter_ends_its_wait_even_if_its_driver_swallows_the_cancellation():
    take_turn = _AnswersWhenCancelled(1)  # its script's answer: wait 1 ms
    limiter = RedisStartLimiter(SimpleNamespace(register_script=lambda _: take_turn), 1, 1.0)  # type: ignore[arg-type]
    await _ends_once_cancelled(limiter.wait_for_turn(), take_turn)


class _ProjectionSwallowingTheCancel:
    """A projection whose apply, cancelled the first time, applies anyway, as redis-py's script call can."""

    name = "swallowing"

    def __init__(self) -> None:
        self.applying = asyncio.Event()
        self.at = LOG_START
        self.swallowed = False

    async def position(self) -> LogPosition:
        return self.at

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        self.applying.set()
        if not self.swallowed:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
            self.swallowed = True
        self.at = batch[-1].log_position
        return True


async def test_a_projector_stopped_mid_apply_ends_even_if_its_driver_swallows_the_cancellation():
    store = InMemoryEventStore()
    order = Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")
    await store.append("o-1", [order], expected_version=0)
    projection = _ProjectionSwallowingTheCancel()
    projecting = asyncio.create_task(Projector(store, InProcessSignal(), [projection]).run())
    await projection.applying.wait()
    projecting.cancel()
    done, _ = await asyncio.wait([projecting], timeout=5)
    assert done == {projecting} and projecting.cancelled()
