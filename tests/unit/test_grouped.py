"""Grouped round trips: what arrives while a send is on its way goes in the next one, and every add learns
its own send's outcome."""

from __future__ import annotations

import asyncio

import pytest

from eventstore.grouped import Grouped


class Sends:
    """A send that holds each call until the test lets it go, recording what each call carried."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self, items: list[str]) -> None:
        self.calls.append(list(items))
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error


async def test_items_added_while_a_send_is_on_its_way_go_together_in_the_next():
    sends = Sends()
    grouped = Grouped(sends)
    first = asyncio.create_task(grouped.add("a"))
    await sends.started.wait()
    later = [asyncio.create_task(grouped.add(item)) for item in ("b", "c", "d")]
    await asyncio.sleep(0)  # let them join the next batch
    assert not first.done()
    sends.release.set()
    await asyncio.gather(first, *later)
    assert sends.calls == [["a"], ["b", "c", "d"]]


async def test_an_item_alone_is_sent_at_once():
    sends = Sends()
    sends.release.set()
    grouped = Grouped(sends)
    await grouped.add("a")
    await grouped.add("b")
    assert sends.calls == [["a"], ["b"]]


async def test_a_failed_send_raises_in_every_add_it_carried_and_the_next_still_goes():
    sends = Sends()
    grouped = Grouped(sends)
    first = asyncio.create_task(grouped.add("a"))
    await sends.started.wait()
    sends.error = ConnectionError("down")
    sends.release.set()
    with pytest.raises(ConnectionError):
        await first
    sends.error = None
    await grouped.add("b")
    assert sends.calls == [["a"], ["b"]]


async def test_an_add_cancelled_once_its_batch_is_on_its_way_does_not_stop_the_send():
    sends = Sends()
    grouped = Grouped(sends)
    first, second = asyncio.create_task(grouped.add("a")), asyncio.create_task(grouped.add("b"))
    await sends.started.wait()
    first.cancel()
    sends.release.set()
    await second
    assert first.cancelled()
    assert sends.calls == [["a", "b"]]


async def test_an_add_cancelled_before_its_batch_is_taken_is_left_out_of_the_send():
    sends = Sends()
    grouped = Grouped(sends)
    first = asyncio.create_task(grouped.add("a"))
    await sends.started.wait()
    leaving, staying = asyncio.create_task(grouped.add("b")), asyncio.create_task(grouped.add("c"))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.sleep(0)
    sends.release.set()
    await asyncio.gather(first, staying)
    assert sends.calls == [["a"], ["c"]]
