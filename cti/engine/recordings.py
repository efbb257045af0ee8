"""Calls' recordings on their way to the store, and their retention.

Each :class:`~cti.protocol.RecordingFinished` a line reports is queued at once (routing
never waits for the store) and written by :meth:`RecordingKeeper.serve`, in order; what
the store refuses stays queued and is tried again with backoff, as call records are
(:mod:`cti.engine.records`). A recording row sits beside its call's record, so either may
be written first. The retention (:meth:`RecordingKeeper.retention`) deletes the files
older than ``[voice] retention_days`` at start and then daily, and marks them deleted in
the store (the call records stay); a sweep that fails is logged and tried next time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from cti import log_limits
from cti.clock import RetryBackoff, real_io, wait_for_timer, wall_time
from cti.config import VoiceSettings
from cti.errors import StoreError
from cti.protocol import RecordingFinished
from cti.store.recordings import CallRecording
from telephony_adapters.media import recording_files

log = logging.getLogger(__name__)

#: Recordings (and deletions) held in memory at most while the store cannot take them.
MAX_HELD = 100_000
#: Seconds between two retention sweeps.
SWEEP_EVERY_S = 24 * 3600.0
#: Who deleted a file the retention swept (kept in the store).
BY_RETENTION = "retention"


class RecordingSink(Protocol):
    """Where recordings are kept (the store's :class:`cti.store.recordings.RecordingRows`)."""

    async def save(self, recording: CallRecording) -> None: ...

    async def mark_deleted(self, call_ids: Iterable[str], wall: float, by: str) -> int: ...


@dataclass(frozen=True, slots=True)
class Deleted:
    """Recording files deleted: to be marked so in the store."""

    call_ids: tuple[str, ...]
    wall: float
    by: str


class RecordingKeeper:
    """Writes recordings to the store and sweeps the old ones (module docstring)."""

    def __init__(
        self,
        rows: RecordingSink | None,
        now: Callable[[], float],
        settings: Callable[[], VoiceSettings],
    ) -> None:
        self.rows = rows
        """None: no store to keep recordings in (the failures are still logged)."""
        self._now = now
        self._settings = settings
        self.pending: deque[CallRecording | Deleted] = deque()
        """What the store has not taken yet, oldest first."""
        self.max_held = MAX_HELD
        self.lost = 0
        """Recordings not held (the memory spool was full): logged whole instead."""
        self.error = ""
        """Why the store last refused a write ('' while it takes them)."""
        self.retry = RetryBackoff()
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()

    def take(self, event: RecordingFinished) -> None:
        """A line closed a call's recording: queue it for the store (never waits)."""
        if event.error:
            log.warning("call %s: recording failed: %s", event.call_id, event.error)
        self._queue(
            CallRecording(
                call_id=event.call_id,
                path=event.path,
                duration_s=event.duration_s,
                paused=tuple((a, b) for a, b in event.paused),
                error=event.error,
                finished_wall=wall_time(),
            )
        )

    def deleted(self, call_ids: Iterable[str], by: str) -> None:
        """Recording files were deleted: queue marking them so in the store."""
        ids = tuple(sorted(set(call_ids)))
        if ids:
            self._queue(Deleted(ids, wall_time(), by))

    def _queue(self, item: CallRecording | Deleted) -> None:
        if self.rows is None:
            return
        if len(self.pending) >= self.max_held:
            self.lost += 1
            log.error("recording not held (%d in memory already), written here instead: %s",
                      len(self.pending), item)  # fmt: skip
            return
        self.pending.append(item)
        if not self.retry.failing:  # else the backoff says when
            self._wake.set()

    async def serve(self) -> None:
        """Write what is queued, and again with backoff what the store refused (a task)."""
        try:
            while True:
                ready = 0.0 if self.pending and not self.retry.failing else None
                await wait_for_timer(self._wake, ready, self.retry, self._now())
                await self.write_pending()
        finally:
            if self.pending:
                log.error("%d recordings not stored as the engine stops: %s",
                          len(self.pending), list(self.pending))  # fmt: skip

    async def write_pending(self) -> bool:
        """Write the queue, oldest first, until the store refuses; whether all went."""
        async with self._writing:
            while self.pending:
                item = self.pending[0]
                try:
                    await self._write(item)
                except StoreError as exc:
                    self.error = str(exc) or type(exc).__name__
                    self.retry.failed(self._now())
                    log_limits.error(log, "recordings not stored (%d waiting): %s",
                                     len(self.pending), exc, key="recordings")  # fmt: skip
                    return False
                self.pending.popleft()
            if self.error:
                log.warning("recordings: the store takes them again; none held")
                self.error = ""
            self.retry.succeeded()
            return True

    async def _write(self, item: CallRecording | Deleted) -> None:
        assert self.rows is not None  # nothing is queued without
        if isinstance(item, Deleted):
            await self.rows.mark_deleted(item.call_ids, item.wall, item.by)
        else:
            await self.rows.save(item)

    # --- retention ---------------------------------------------------------------------

    async def retention(self, every_s: float = SWEEP_EVERY_S) -> None:
        """Sweep at once, then every ``every_s`` (a task; it never ends on a failure)."""
        while True:
            await self.sweep()
            await asyncio.sleep(every_s)

    async def sweep(self) -> list[str]:
        """Delete the recordings past ``[voice] retention_days`` and queue marking them
        deleted; the call ids swept ([] when the sweep failed: logged)."""
        settings = self._settings()
        root = Path(settings.recordings_dir)
        today = date.fromtimestamp(wall_time())
        try:
            async with real_io():
                paths = await asyncio.to_thread(
                    recording_files.sweep, root, settings.retention_days, today
                )
        except Exception as exc:  # a sweep never stops the engine: next time, then
            expected = isinstance(exc, OSError | recording_files.RecordingError)
            log.error("retention of the recordings in %s failed: %s", root, exc,
                      exc_info=not expected)  # fmt: skip
            return []
        ids = [path.stem for path in paths]
        if ids:
            log.info("retention: %d recordings older than %g days deleted from %s",
                     len(ids), settings.retention_days, root)  # fmt: skip
        self.deleted(ids, BY_RETENTION)
        return ids

    async def flush(self) -> None:
        """Write what is queued now, unless the store is refusing (then it stays queued)."""
        if self.pending and not self.retry.failing:
            await self.write_pending()
