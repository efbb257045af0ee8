"""How a line's shell lets callers wait for its state to change, without polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

WAIT_LIMIT_S = 10.0
"""How long :meth:`Changes.until` waits at most: a safety net, never a pace."""


class Changes:
    """The shell calls :meth:`notify` after each batch of outputs it carries out; a
    waiter wakes then and looks again."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Something changed: wake every waiter (later ones wait anew)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def next(self) -> None:
        """Until the next :meth:`notify`."""
        await self._event.wait()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds, checked at once and after each :meth:`notify`;
        TimeoutError after :data:`WAIT_LIMIT_S` (a caller wanting less wraps it in
        ``asyncio.timeout``)."""
        async with asyncio.timeout(WAIT_LIMIT_S):
            while not predicate():
                await self._event.wait()
