"""The engine's write-back task: what the journal and the store could not take, written
again with backoff (apart from :mod:`cti.engine.service`, which holds the per-call path)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cti.engine.service import EngineService


async def serve_retries(service: EngineService) -> None:
    """Write back, with backoff, what the journal and the store could not take
    (:meth:`EngineService.retry_writes` makes it try at once)."""
    while True:
        now = service.now()
        waits = [service.records.retry.delay(now), service.journal_retry.delay(now)]
        delay = min((w for w in waits if w is not None), default=None)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await service.retry_now.wait()
        service.retry_now.clear()
        now = service.now()
        journal = service.journal
        if journal is not None and service.journal_retry.due(now):
            if journal.write_back():
                service.journal_retry.succeeded()
            else:
                service.journal_retry.failed(now)
        if service.records.retry.due(now):
            await service.records.write_back()
        service.health_watch.check()
