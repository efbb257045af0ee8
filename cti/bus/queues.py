"""A lean single-consumer queue (issue 23): see :class:`OneReaderQueue`."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class OneReaderQueue(Generic[T]):
    """The part of :class:`asyncio.Queue` the engine and the bus use (``put_nowait``,
    ``get``, ``get_nowait``, ``empty``, ``qsize``, ``task_done``, ``join``), unbounded,
    for one consumer at a time: the engine's effects (about ten a call) and each
    subscription's messages. asyncio's costs ~12 Python calls an item, this ~4
    (issue 23)."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._unfinished = 0
        self._joiners: list[asyncio.Future[None]] = []

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._unfinished += 1
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> T:
        while not self._items:
            if self._getter is not None:
                raise RuntimeError("OneReaderQueue has one consumer at a time")
            getter = self._getter = asyncio.get_running_loop().create_future()
            try:
                await getter
            finally:
                if self._getter is getter:
                    self._getter = None
        return self._items.popleft()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if not self._unfinished and self._joiners:
            joiners, self._joiners = self._joiners, []
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        """Wait until every item put has been marked done."""
        if self._unfinished:
            joiner = asyncio.get_running_loop().create_future()
            self._joiners.append(joiner)
            await joiner
