"""Virtual time: sleeps return at once with the clock moved on; real I/O holds it still."""

from __future__ import annotations

import asyncio
import threading
import time

from cti.clock import VIRTUAL_EPOCH, real_io, run_virtual, wall_time


def test_virtual_sleeps_jump_the_clock_in_order() -> None:
    async def main() -> tuple[list[tuple[str, float]], float]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[str, float]] = []

        async def sleeper(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            seen.append((name, loop.time()))

        started = time.perf_counter()
        await asyncio.gather(sleeper("hour", 3600), sleeper("minute", 60), sleeper("day", 86400))
        return seen, time.perf_counter() - started

    seen, _ = run_virtual(main)
    assert seen == [("minute", 60.0), ("hour", 3600.0), ("day", 86400.0)]


def test_wall_time_follows_virtual_time() -> None:
    async def main() -> float:
        await asyncio.sleep(90)
        return wall_time()

    assert run_virtual(main) == VIRTUAL_EPOCH + 90


def test_virtual_time_stands_still_during_real_io() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        timer_fired_at: list[float] = []

        async def timer() -> None:
            await asyncio.sleep(10)
            timer_fired_at.append(loop.time())

        t = asyncio.create_task(timer())
        await asyncio.sleep(0)
        done = asyncio.Event()

        def work() -> None:
            time.sleep(0.05)
            loop.call_soon_threadsafe(done.set)

        async with real_io():
            threading.Thread(target=work).start()
            await done.wait()
        during = loop.time()
        await t
        return during, timer_fired_at[0]

    during, fired = run_virtual(main)
    assert during == 0.0  # the thread's real 50 ms did not let the 10 s timer jump ahead
    assert fired == 10.0
