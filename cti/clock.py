"""Clocks (placeholder; the engine's clock module replaces this)."""
from __future__ import annotations
import contextlib
from collections.abc import AsyncIterator

@contextlib.asynccontextmanager
async def real_io() -> AsyncIterator[None]:
    yield
