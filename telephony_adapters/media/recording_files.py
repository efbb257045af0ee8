"""Recording files: the I/O side of :mod:`telephony_adapters.media.recorder`.

Each recording is ``<root>/<YYYY-MM-DD>/<call_id>.wav``. The call side hands bytes to a
:class:`Recording` (buffered, never blocking, never raising); one writer task per
:class:`RecordingFiles` takes them off a bounded queue and writes them in a worker
thread, so a slow disk never holds up a packet. A full disk, a permission error or a
writer that fell behind fails that recording only: logged once with its path, reported
in its :class:`RecordingOutcome`, and the call goes on.

The helpers below (list, export, delete, the retention sweep) serve ``cti recordings``.
Deleting a recording removes the file only: call records are the engine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

from cti.errors import TelephonyError
from telephony_adapters.media.player import WavError, read_wav_layout
from telephony_adapters.media.recorder import Recorder

log = logging.getLogger(__name__)

SUFFIX = ".wav"
#: Bytes a recording gathers before they go to the writer (1 s of 16-bit stereo).
CHUNK_BYTES = 32 * 1024
#: Chunks waiting for the writer, over every recording, before a recording is failed.
MAX_QUEUED_CHUNKS = 512

Opener = Callable[[Path], BinaryIO]


class RecordingError(TelephonyError):
    """A recording cannot be named, found, exported or deleted."""


def check_call_id(call_id: str) -> str:
    """``call_id`` if it can name a file in a day directory, else :class:`RecordingError`."""
    bad = sorted({ch for ch in call_id if ch in "/\\" or not ch.isprintable()})
    if not call_id or call_id.startswith(".") or bad:
        why = (
            "contains " + " ".join(repr(ch) for ch in bad) if bad else "is empty or starts with '.'"
        )
        raise RecordingError(f"call id {call_id!r} {why}: it cannot name a recording file")
    return call_id


def recording_path(root: Path, call_id: str, day: date) -> Path:
    return root / day.isoformat() / (check_call_id(call_id) + SUFFIX)


def open_new(path: Path) -> BinaryIO:
    """Create ``path`` (and its day directory); an existing file is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "xb")


@dataclass(frozen=True, slots=True)
class RecordingOutcome:
    path: Path
    bytes_written: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Recording:
    """The call side of one recording file: :meth:`write` WAV bytes as the recorder
    yields them, then :meth:`close` with the final header; :meth:`outcome` waits for
    the file to be done."""

    def __init__(self, files: RecordingFiles, path: Path, error: str | None = None) -> None:
        self.path = path
        self.error = error  # the first failure, as logged
        self._files = files
        self._buffer = bytearray()
        self._closing = False
        self._done = asyncio.get_running_loop().create_future()
        # the writer thread's side
        self._file: BinaryIO | None = None
        self._written = 0
        if error is not None:
            self._finish()

    def write(self, data: bytes) -> None:
        if self.error is not None or self._closing or not data:
            return
        self._buffer += data
        if len(self._buffer) >= self._files.chunk_bytes:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            self._files._submit(self, chunk, None)

    def close(self, header: bytes) -> None:
        """Write what is buffered, put ``header`` at offset 0 and close the file."""
        if self._closing:
            return
        self._closing = True
        chunk, self._buffer = (b"" if self.error else bytes(self._buffer)), bytearray()
        self._files._submit(self, chunk, header)

    async def outcome(self) -> RecordingOutcome:
        return await asyncio.shield(self._done)

    def _fail(self, why: str) -> None:
        if self.error is None:
            self.error = why
            log.error("recording %s failed, the call goes on: %s", self.path, why)

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(RecordingOutcome(self.path, self._written, self.error))


@dataclass(frozen=True, slots=True)
class _Op:
    recording: Recording
    data: bytes
    header: bytes | None  # set: the last op, patch the header and close


WRITE_BUDGET_S = 0.0005
"""Time :func:`write_due` writes for before it gives the event loop a turn."""


async def write_due(
    recordings: Iterable[tuple[Recorder, Recording]],
    now: float,
    *,
    budget_s: float = WRITE_BUDGET_S,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Append what each recording has ready by ``now``, with a turn of the event loop
    whenever it wrote for ``budget_s``: writing 200 calls' last 100 ms in one go held
    every packet waiting behind it for milliseconds (the relay's p99). A budget, not a
    count of recordings: a conference's recording (mixed as written) costs several
    plain ones."""
    started = clock()
    for recorder, recording in list(recordings):
        data = recorder.tick(now)
        if data:
            recording.write(data)
        if clock() - started >= budget_s:
            await asyncio.sleep(0)
            started = clock()


class RecordingFiles:
    """Recording files under ``root`` and the one task that writes them."""

    def __init__(
        self,
        root: Path,
        *,
        opener: Opener = open_new,
        max_queued: int = MAX_QUEUED_CHUNKS,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.root = root
        self.chunk_bytes = chunk_bytes
        self._opener = opener
        self._max_queued = max_queued
        self._queue: asyncio.Queue[_Op | None] = asyncio.Queue()
        self._data_ops = 0  # queued ops that carry data (closes always get in)
        self._task: asyncio.Task[None] | None = None

    def open(self, call_id: str, day: date) -> Recording:
        """A new recording for ``call_id`` (failed at once for a call id that cannot
        name a file: never raises)."""
        try:
            return Recording(self, recording_path(self.root, call_id, day))
        except RecordingError as exc:
            rec = Recording(self, self.root / day.isoformat() / "-", str(exc))
            log.error("recording for call %r not started: %s", call_id, exc)
            return rec

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="recording-writer")

    async def stop(self) -> None:
        """Write out everything queued, then end the writer task."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def __aenter__(self) -> RecordingFiles:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _submit(self, recording: Recording, data: bytes, header: bytes | None) -> None:
        if header is None:
            if self._data_ops >= self._max_queued:
                recording._fail(f"the disk writer fell behind ({self._data_ops} chunks queued)")
                return
            self._data_ops += 1
        self._queue.put_nowait(_Op(recording, data, header))

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty() and len(batch) < 64:
                batch.append(self._queue.get_nowait())
            ops = [op for op in batch if op is not None]
            self._data_ops -= sum(1 for op in ops if op.header is None)
            failures = await asyncio.to_thread(_apply, self._opener, ops) if ops else []
            for recording, why in failures:
                recording._fail(why)
            for op in ops:
                if op.header is not None:
                    op.recording._finish()
            if None in batch:
                return


def _apply(opener: Opener, ops: list[_Op]) -> list[tuple[Recording, str]]:
    """Carry out ``ops`` (in the worker thread); the failures, one per recording."""
    failures: list[tuple[Recording, str]] = []
    failed: set[int] = set()
    for op in ops:
        rec = op.recording
        if rec.error is not None or id(rec) in failed:
            _close_quietly(rec)
            continue
        try:
            _write(opener, rec, op.data, op.header)
        except Exception as exc:  # any fault fails this recording, never the writer task
            failed.add(id(rec))
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
            failures.append((rec, f"{why} ({rec.path})"))
            _close_quietly(rec)
    return failures


def _write(opener: Opener, rec: Recording, data: bytes, header: bytes | None) -> None:
    if rec._file is None:
        rec._file = opener(rec.path)
    if data:
        rec._file.write(data)
        rec._written += len(data)
    if header is not None:
        rec._file.seek(0)
        rec._file.write(header)
        rec._file.close()


def _close_quietly(rec: Recording) -> None:
    file, rec._file = rec._file, None
    if file is not None:
        with contextlib.suppress(OSError):  # the failure is already reported
            file.close()


# --- the recordings on disk (cti recordings) -----------------------------------------


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    call_id: str
    day: date
    path: Path
    size_bytes: int
    duration_s: float | None  # None: unfinished (no final header) or unreadable


def _day_dirs(root: Path) -> list[tuple[date, Path]]:
    days = []
    if root.is_dir():
        for entry in root.iterdir():
            try:
                day = date.fromisoformat(entry.name)
            except ValueError:
                continue
            if entry.is_dir() and len(entry.name) == 10:
                days.append((day, entry))
    return sorted(days)


def _duration(path: Path) -> float | None:
    try:
        with open(path, "rb") as handle:
            layout = read_wav_layout(handle.read(4096), str(path))
    except (OSError, WavError):
        return None
    return round(layout.duration_s, 3) if layout.data_size else None


def list_recordings(root: Path, *, day: date | None = None) -> list[RecordingInfo]:
    """Every recording under ``root`` (of one ``day``), oldest day first."""
    found = []
    for d, folder in _day_dirs(root):
        if day is not None and d != day:
            continue
        for path in sorted(folder.glob("*" + SUFFIX)):
            size = path.stat().st_size
            found.append(RecordingInfo(path.stem, d, path, size, _duration(path)))
    return found


def find_recording(root: Path, call_id: str) -> Path:
    name = check_call_id(call_id) + SUFFIX
    for _, folder in reversed(_day_dirs(root)):
        if (folder / name).is_file():
            return folder / name
    raise RecordingError(f"no recording of call {call_id!r} under {root}")


def export_recording(root: Path, call_id: str, dest: Path) -> Path:
    """Copy the recording of ``call_id`` to ``dest`` (a directory or a file name)."""
    source = find_recording(root, call_id)
    target = dest / source.name if dest.is_dir() else dest
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise RecordingError(f"cannot export {source} to {target}: {exc.strerror or exc}") from None
    return target


def delete_recording(root: Path, call_id: str) -> Path:
    """Delete the file of ``call_id``'s recording (the call record stays)."""
    path = find_recording(root, call_id)
    try:
        path.unlink()
    except OSError as exc:
        raise RecordingError(f"cannot delete {path}: {exc.strerror or exc}") from None
    return path


def sweep(root: Path, keep_days: float, today: date) -> list[Path]:
    """Delete the recordings of days before ``today - keep_days`` (rounded up to whole
    days, so nothing younger goes) and their emptied day directories; the deleted files."""
    if not keep_days > 0:
        raise RecordingError(f"retention of {keep_days} days: it must be more than 0")
    oldest_kept = today - timedelta(days=math.ceil(keep_days))
    deleted = []
    for day, folder in _day_dirs(root):
        if day >= oldest_kept:
            break
        for path in sorted(folder.glob("*" + SUFFIX)):
            try:
                path.unlink()
                deleted.append(path)
            except OSError as exc:
                log.warning("retention: cannot delete %s: %s", path, exc.strerror or exc)
        with contextlib.suppress(OSError):  # other files in it: left alone
            folder.rmdir()
    return deleted
