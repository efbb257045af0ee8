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


class RetryBackoff:
    """When to try a failed write again: after ``first_s``, doubling up to ``most_s``.

    Sans-I/O: it takes ``now``.
    """

    def __init__(self, first_s: float = 0.5, most_s: float = 30.0) -> None:
        self.first_s = first_s
        self.most_s = most_s
        self._next_at: float | None = None
        self._wait = 0.0

    @property
    def failing(self) -> bool:
        return self._next_at is not None

    def failed(self, now: float) -> None:
        self._wait = self.first_s if self._next_at is None else min(self._wait * 2, self.most_s)
        self._next_at = now + self._wait

    def succeeded(self) -> None:
        self._next_at, self._wait = None, 0.0

    def due(self, now: float) -> bool:
        return self._next_at is not None and now >= self._next_at

    def delay(self, now: float) -> float | None:
        """Seconds until the next try (None: nothing to retry)."""
        return None if self._next_at is None else max(0.0, self._next_at - now)

    def now_due(self) -> None:
        """Try at the next chance (space was freed: no need to wait)."""
        if self._next_at is not None:
            self._next_at = -float("inf")


async def wait_for_timer(
    wake: asyncio.Event, delay: float | None, retry: RetryBackoff, now: float
) -> None:
    """Wait ``delay`` seconds (None: for ever) or until ``wake`` is set, then clear it.

    After a failure (``retry`` failing) never sooner than its pause, so a timer loop whose
    step keeps failing backs off instead of spinning.
    """
    pause = retry.delay(now)
    if pause is not None:
        delay = max(delay or 0.0, pause)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            await wake.wait()
    wake.clear()


class EngineClock:
    """Engine time: the router's ``now``, monotonic seconds that read as epoch seconds.

    The loop's monotonic clock plus an offset fixed on first use so that engine time
    then equals :func:`~cti.clock.wall_time`. So it never jumps with the wall clock
    while the process lives, and across a restart it carries on where the wall clock
    is: a caller who waited 30 s before a crash and 10 s of downtime has waited 40 s.
    """

    def __init__(self) -> None:
        self._offset: float | None = None

    def now(self) -> float:
        loop_time = asyncio.get_running_loop().time()
        if self._offset is None:
            self._offset = wall_time() - loop_time
        return loop_time + self._offset

    def carry_on_from(self, floor: float | None) -> None:
        """After a restart: the wall clock, never behind the journal's last input."""
        floor = floor if floor is not None else -float("inf")
        self._offset = max(wall_time(), floor) - asyncio.get_running_loop().time()
