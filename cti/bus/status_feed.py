"""Listeners of a changing status, and an async feed of its changes.

The MQTT bus (connected, queued, in flight) and the console's link to the engine (the
commands not yet answered) both tell a screen when their status changes: a screen adds a
listener, or a worker iterates :meth:`StatusFeed.watch`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Generic, TypeVar

from cti import log_limits

log = logging.getLogger(__name__)

S = TypeVar("S")


class StatusFeed(Generic[S]):
    """The listeners of one status; the owner calls :meth:`tell` on every change."""

    def __init__(self, current: Callable[[], S]) -> None:
        self._current = current
        self._listeners: list[Callable[[S], None]] = []

    def add_listener(self, listener: Callable[[S], None]) -> Callable[[], None]:
        """Call ``listener`` with every new status; returns a function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def watch(self) -> AsyncGenerator[S, None]:
        """The current status, then each change (for a screen's worker)."""
        queue: asyncio.Queue[S] = asyncio.Queue()
        stop = self.add_listener(queue.put_nowait)
        try:
            yield self._current()
            while True:
                yield await queue.get()
        finally:
            stop()

    def tell(self, status: S) -> None:
        """Give ``status`` to every listener; one that fails is logged, the rest go on."""
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                log_limits.exception(log, "status listener %r failed", listener)
