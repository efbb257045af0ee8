"""The engine's effects queue and the MQTT bus's subscriptions' (cti/bus/queues.py
OneReaderQueue) behave as the part of asyncio.Queue they used: order, a waiting get
woken by a put, join until every item is done, get_nowait and empty, a cancelled get
leaves the queue usable."""

from __future__ import annotations

import asyncio

import pytest

from cti.bus.queues import OneReaderQueue


async def test_items_come_out_in_order_and_a_waiting_get_is_woken() -> None:
    queue: OneReaderQueue[int] = OneReaderQueue()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await asyncio.wait_for(waiting, 1) == 1
    assert await queue.get() == 2
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_join_waits_until_every_item_is_done() -> None:
    queue: OneReaderQueue[str] = OneReaderQueue()
    await asyncio.wait_for(queue.join(), 1)  # nothing put: at once
    queue.put_nowait("a")
    queue.put_nowait("b")
    joined = asyncio.create_task(queue.join())
    assert queue.get_nowait() == "a"
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    assert await queue.get() == "b"
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError, match="too many"):
        queue.task_done()


async def test_a_cancelled_get_leaves_the_queue_usable() -> None:
    queue: OneReaderQueue[int] = OneReaderQueue()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    queue.put_nowait(7)
    assert await asyncio.wait_for(queue.get(), 1) == 7
    assert queue.qsize() == 0
