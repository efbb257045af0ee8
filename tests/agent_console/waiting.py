"""Waiting in the console tests: run the app and the engine until a condition holds.

Nothing sleeps: each round lets the app (``pilot.pause()``) or the event loop
(``asyncio.sleep(0)``) run. The time limit is a safety net for a loaded machine, never
a measurement; a test that reaches it has failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

LIMIT_S = 30.0


async def settle(pilot: Pilot[Any], done: Callable[[], bool], limit_s: float = LIMIT_S) -> None:
    """Let the app and the engine run until ``done()`` holds."""
    deadline = time.monotonic() + limit_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the app did not reach the expected state")
        await pilot.pause()


async def until(done: Callable[[], bool], limit_s: float = LIMIT_S) -> None:
    """Let the event loop run (no app) until ``done()`` holds."""
    deadline = time.monotonic() + limit_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the engine did not reach the expected state")
        await asyncio.sleep(0)
