"""Time for the asyncio shells: real, or virtual for runs faster than the wall clock.

The cores never read a clock; the shells use ``asyncio.get_running_loop().time()`` as
monotonic "now" and :func:`wall_time` for records. :class:`VirtualTimeLoop` is an
ordinary selector event loop whose clock jumps straight to the next timer whenever
nothing is ready to run, so ``asyncio.sleep(60)`` returns at once with ``loop.time()``
sixty seconds later. Everything written for the real loop (the engine service, the
simulator trunk, bot agents) runs on it unchanged: a day of traffic in seconds.

Real I/O done in threads (the SQLite store) must not let virtual time run on while
it is in flight; such work is wrapped in :func:`real_io`, which holds the virtual clock
still until it completes. Time then behaves as if the store answered instantly, and a
seeded run gives the same result every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Wall-clock epoch that virtual time 0 corresponds to: 2026-01-05 08:00 UTC, a Monday.
VIRTUAL_EPOCH = 1767600000.0


class _VirtualSelector(selectors.DefaultSelector):
    """A selector that, instead of blocking until a timer is due, advances the clock."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.io_in_flight = 0

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        ready: list[tuple[Any, int]] = super().select(0)
        if ready or timeout == 0:
            return ready
        if self.io_in_flight > 0 or timeout is None:
            # Real work is pending in a thread (or nothing is scheduled at all):
            # wait for it in real time while virtual time stands still.
            return list(super().select(timeout if self.io_in_flight == 0 else 0.05))
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (see the module docstring)."""

    def __init__(self) -> None:
        self._vselector = _VirtualSelector()
        super().__init__(self._vselector)

    def time(self) -> float:
        return self._vselector.now

    @property
    def io_in_flight(self) -> int:
        return self._vselector.io_in_flight

    def _hold(self, delta: int) -> None:
        self._vselector.io_in_flight += delta


def is_virtual(loop: asyncio.AbstractEventLoop | None = None) -> bool:
    loop = loop or asyncio.get_running_loop()
    return isinstance(loop, VirtualTimeLoop)


def wall_time() -> float:
    """Wall-clock epoch seconds: real on a real loop, ``VIRTUAL_EPOCH + t`` on a virtual one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return time.time()
    if isinstance(loop, VirtualTimeLoop):
        return VIRTUAL_EPOCH + loop.time()
    return time.time()


@contextlib.asynccontextmanager
async def real_io() -> AsyncIterator[None]:
    """Hold virtual time still while real I/O (a thread, a socket) completes."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualTimeLoop):
        yield
        return
    loop._hold(+1)
    try:
        yield
    finally:
        loop._hold(-1)


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a fresh :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())
