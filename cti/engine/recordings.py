"""Calls' recordings and callers' voicemail messages on their way to the store, and
their retention.

Each :class:`~cti.protocol.RecordingFinished` a line reports (``kind`` ``call`` or
``message``) is queued at once (routing never waits for the store) and written by
:meth:`RecordingKeeper.serve`, in order; what the store refuses stays queued and is tried
again with backoff, as call records are (:mod:`cti.engine.records`). A recording row sits
beside its call's record, so either may be written first. A message is attached to the
callback that returns it (:meth:`RecordingKeeper.attach_message`, before or after the
line closes it); :meth:`RecordingKeeper.message_for` gives it to the callback's offer
(:class:`~cti.events.VoiceMessage`), also after a restart (read from the store at start).
The retention (:meth:`RecordingKeeper.retention`) deletes the files, recordings and
messages alike, older than ``[voice] retention_days`` at start and then daily, and marks
them deleted in the store (the call records stay); a sweep that fails is logged and tried
next time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Protocol, TypeAlias, TypeVar

from cti import log_limits
from cti.clock import RetryBackoff, real_io, wait_for_timer, wall_time
from cti.config import VoiceSettings
from cti.errors import StoreError
from cti.events import VoiceMessage
from cti.protocol import RecordingFinished
from cti.store.recordings import CallRecording, recording_id
from telephony_adapters.media import recording_files

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Recordings (and deletions) held in memory at most while the store cannot take them.
MAX_HELD = 100_000
#: Seconds between two retention sweeps.
SWEEP_EVERY_S = 24 * 3600.0
#: Who deleted a file the retention swept (kept in the store).
BY_RETENTION = "retention"
#: Callbacks whose message is kept in memory for their offers (the newest; the store
#: keeps them all).
MAX_ATTACHED = 10_000


class RecordingSink(Protocol):
    """Where recordings are kept (the store's :class:`cti.store.recordings.RecordingRows`)."""

    async def save(self, recording: CallRecording) -> None: ...

    async def mark_deleted(self, recording_ids: Iterable[str], wall: float, by: str) -> int: ...

    async def attach_message(self, callback_id: str, message_id: str, wall: float) -> None: ...

    async def attached(self, limit: int) -> list[tuple[str, str]]: ...

    async def by_ids(self, recording_ids: Sequence[str]) -> dict[str, CallRecording]: ...


def message_file(call_id: str, day: date) -> str:
    """Where ``call_id``'s voicemail is recorded, relative to the recordings folder
    (``AudioPlan.message``): ``<day>/<call_id>.message.wav``, beside the day's call
    recordings, so ``cti recordings`` and the retention treat it as they treat them.
    A call id that cannot name a file raises :class:`~cti.errors.TelephonyError`."""
    path = recording_files.recording_path(Path(), recording_id(call_id, "message"), day)
    return path.as_posix()


def message_id(call_id: str) -> str:
    """The recording id of ``call_id``'s voicemail (for :meth:`RecordingKeeper.attach_message`)."""
    return recording_id(call_id, "message")


@dataclass(frozen=True, slots=True)
class Attached:
    """A message attached to a callback: to be written to the store."""

    callback_id: str
    message_id: str
    wall: float


@dataclass(frozen=True, slots=True)
class Deleted:
    """Recording files deleted: to be marked so in the store."""

    recording_ids: tuple[str, ...]
    wall: float
    by: str


Pending: TypeAlias = CallRecording | Deleted | Attached


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
        self.pending: deque[Pending] = deque()
        """What the store has not taken yet, oldest first."""
        self.max_held = MAX_HELD
        self.lost = 0
        """Recordings not held (the memory spool was full): logged whole instead."""
        self.error = ""
        """Why the store last refused a write ('' while it takes them)."""
        self.retry = RetryBackoff()
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()
        self.attached: OrderedDict[str, str] = OrderedDict()
        """Callback id -> the message id it returns (the newest :data:`MAX_ATTACHED`)."""
        self.messages: OrderedDict[str, CallRecording] = OrderedDict()
        """Message id -> the message as the line closed it (as many, the newest)."""

    def take(self, event: RecordingFinished) -> None:
        """A line closed a call's recording or a caller's message: queue it for the store
        (never waits)."""
        what = "message" if event.kind == "message" else "recording"
        if event.error:
            log.warning("call %s: %s failed: %s", event.call_id, what, event.error)
        recording = CallRecording(
            call_id=event.call_id,
            path=event.path,
            duration_s=event.duration_s,
            paused=tuple((a, b) for a, b in event.paused),
            error=event.error,
            finished_wall=wall_time(),
            kind=event.kind,
        )
        if recording.kind == "message":
            self._remember(self.messages, recording.recording_id, recording)
        self._queue(recording)

    def deleted(self, recording_ids: Iterable[str], by: str) -> None:
        """Recording files were deleted: queue marking them so in the store."""
        ids = tuple(sorted(set(recording_ids)))
        if ids:
            item = Deleted(ids, wall_time(), by)
            self._messages_deleted(item)
            self._queue(item)

    def _messages_deleted(self, item: Deleted) -> None:
        for gone in item.recording_ids:
            if gone in self.messages:
                self.messages[gone] = replace(
                    self.messages[gone], deleted_wall=item.wall, deleted_by=item.by
                )

    # --- messages and their callbacks --------------------------------------------------

    def attach_message(self, callback_call_id: str, message: str) -> None:
        """The callback ``callback_call_id`` (its call id in the router) returns the
        voicemail ``message`` (its recording id, :func:`message_id` of the call it was
        left on), whether the line has closed it yet or not: kept in the store (queued,
        never waits) and shown with the callback's offer (:meth:`message_for`)."""
        self._remember(self.attached, callback_call_id, message)
        self._queue(Attached(callback_call_id, message, wall_time()))

    def message_for(self, callback_call_id: str) -> VoiceMessage | None:
        """The voicemail the callback returns, for its offer's card; None: it has none."""
        message = self.attached.get(callback_call_id)
        if message is None:
            return None
        closed = self.messages.get(message)
        if closed is None:
            return VoiceMessage(recording_id=message)
        return VoiceMessage(
            recording_id=message,
            path=closed.path,
            duration_s=closed.duration_s,
            status=closed.status,  # recorded, failed or deleted
        )

    async def load_attached(self) -> None:
        """Read the newest attachments and their messages from the store (at start, so a
        restarted engine's offers still show them); a failure is logged, not raised."""
        if self.rows is None:
            return
        try:
            pairs = await self.rows.attached(MAX_ATTACHED)
            found = await self.rows.by_ids(sorted({message for _, message in pairs}))
        except StoreError as exc:
            log.error("the callbacks' messages not read from the store: %s", exc)
            return
        for callback, message in reversed(pairs):  # oldest first: the newest stay
            self.attached.setdefault(callback, message)
            if message in found:
                self.messages.setdefault(message, found[message])
        for item in self.pending:  # a sweep that ran first, not stored yet
            if isinstance(item, Deleted):
                self._messages_deleted(item)

    @staticmethod
    def _remember(book: OrderedDict[str, T], key: str, value: T) -> None:
        book[key] = value
        book.move_to_end(key)
        while len(book) > MAX_ATTACHED:
            book.popitem(last=False)

    def _queue(self, item: Pending) -> None:
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
        """Write what is queued, and again with backoff what the store refused (a task);
        the callbacks' messages are read first."""
        await self.load_attached()
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

    async def _write(self, item: Pending) -> None:
        assert self.rows is not None  # nothing is queued without
        if isinstance(item, Deleted):
            await self.rows.mark_deleted(item.recording_ids, item.wall, item.by)
        elif isinstance(item, Attached):
            await self.rows.attach_message(item.callback_id, item.message_id, item.wall)
        else:
            await self.rows.save(item)

    # --- retention ---------------------------------------------------------------------

    async def retention(self, every_s: float = SWEEP_EVERY_S) -> None:
        """Sweep at once, then every ``every_s`` (a task; it never ends on a failure)."""
        while True:
            await self.sweep()
            await asyncio.sleep(every_s)

    async def sweep(self) -> list[str]:
        """Delete the recordings and messages past ``[voice] retention_days`` and queue
        marking them deleted; the recording ids swept ([] when the sweep failed: logged)."""
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
        ids = [path.stem for path in paths]  # recording ids: call ids, messages' ids
        if ids:
            log.info("retention: %d recordings older than %g days deleted from %s",
                     len(ids), settings.retention_days, root)  # fmt: skip
        self.deleted(ids, BY_RETENTION)
        return ids

    async def flush(self) -> None:
        """Write what is queued now, unless the store is refusing (then it stays queued)."""
        if self.pending and not self.retry.failing:
            await self.write_pending()
