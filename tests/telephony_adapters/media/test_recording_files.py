"""Recording files: written off the call's path, failures (full disk, no permission, a
writer behind) reported and logged once while the call goes on; list, export, delete and
the retention sweep."""

from __future__ import annotations

import asyncio
import errno
import io
import itertools
import logging
from datetime import date
from pathlib import Path
from typing import BinaryIO

import pytest

from telephony_adapters.media import g711
from telephony_adapters.media.recorder import Recorder, Side
from telephony_adapters.media.recording_files import (
    Recording,
    RecordingError,
    RecordingFiles,
    check_call_id,
    delete_recording,
    export_recording,
    find_recording,
    list_recordings,
    open_new,
    recording_path,
    sweep,
    write_due,
)
from tests.audio import tone_power_ratio
from tests.telephony_adapters.media._recordings import channels

DAY = date(2026, 12, 6)
T0 = 50.0


def record(recording: Recording, seconds: float) -> Recorder:
    """Feed ``recording`` a recorder's bytes for ``seconds`` of a 1 kHz caller."""
    recorder = Recorder(T0)
    frame = g711.to_bytes_list([(-3000, 0, 3000, 0)[n % 4] for n in range(160)])  # 2 kHz
    for k in range(round(seconds / 0.02)):
        recording.write(recorder.add(Side.CALLER, frame, T0 + k * 0.02))
    summary = recorder.close(T0 + seconds)
    recording.write(summary.tail)
    recording.close(summary.header)
    return recorder


class FullDisk(io.BytesIO):
    """A file on a disk that fills up after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def files_under(root: Path) -> list[Path]:
    return list(root.rglob("*"))


async def test_a_recording_is_written_and_its_header_patched(tmp_path: Path) -> None:
    async with RecordingFiles(tmp_path, chunk_bytes=4096) as files:
        rec = files.open("sip-1-abc-7", DAY)
        record(rec, 3.0)
        outcome = await rec.outcome()
    path = tmp_path / "2026-12-06" / "sip-1-abc-7.wav"
    assert outcome.ok
    assert outcome.path == path
    assert outcome.bytes_written == path.stat().st_size
    [info] = list_recordings(tmp_path)
    assert (info.call_id, info.day, info.duration_s) == ("sip-1-abc-7", DAY, 3.0)
    data = path.read_bytes()
    left, right = channels(data)
    assert tone_power_ratio(left, 2000) > 0.95
    assert not any(right)


async def test_a_full_disk_fails_the_recording_not_the_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disks: list[FullDisk] = []

    def opener(path: Path) -> BinaryIO:
        disks.append(FullDisk(room=10_000))
        return disks[-1]

    caplog.set_level(logging.ERROR)
    async with RecordingFiles(tmp_path, opener=opener, chunk_bytes=1000) as files:
        rec = files.open("call-9", DAY)
        record(rec, 2.0)  # 128 KB into 10 KB: no call-side write raises
        rec.write(b"more after the failure")
        outcome = await rec.outcome()
    assert not outcome.ok
    assert outcome.error is not None
    assert "No space left on device" in outcome.error
    assert str(tmp_path / "2026-12-06" / "call-9.wav") in outcome.error
    failures = [r for r in caplog.records if "call-9" in r.getMessage()]
    assert len(failures) == 1  # logged once, not once per chunk
    assert disks[0].closed
    assert outcome.bytes_written <= 10_000


async def test_one_failed_recording_leaves_the_others_alone(tmp_path: Path) -> None:
    def opener(path: Path) -> BinaryIO:
        if path.stem == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        if path.stem == "buggy":
            raise RuntimeError("a fault nobody foresaw")
        return open_new(path)

    async with RecordingFiles(tmp_path, opener=opener, chunk_bytes=2048) as files:
        recs = [files.open(call_id, DAY) for call_id in ("locked", "buggy", "fine")]
        for rec in recs:
            record(rec, 1.0)
        locked, buggy, fine = [await rec.outcome() for rec in recs]
    assert locked.error is not None
    assert "Permission denied" in locked.error
    assert buggy.error is not None
    assert "a fault nobody foresaw" in buggy.error
    assert fine.ok
    assert [i.call_id for i in list_recordings(tmp_path)] == ["fine"]


async def test_a_writer_that_falls_behind_fails_the_recording(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = RecordingFiles(tmp_path, max_queued=2, chunk_bytes=10)
    rec = files.open("busy", DAY)
    for _ in range(5):  # the writer task is not running: the queue fills
        rec.write(b"x" * 10)
    assert rec.error is not None
    assert "fell behind" in rec.error
    rec.close(b"header")
    files.start()
    outcome = await rec.outcome()
    await files.stop()
    assert outcome.error == rec.error
    assert sum("busy" in r.getMessage() for r in caplog.records) == 1


async def test_a_call_id_that_cannot_name_a_file_is_refused_without_raising(
    tmp_path: Path,
) -> None:
    async with RecordingFiles(tmp_path / "rec") as files:
        rec = files.open("../../etc/passwd", DAY)
        rec.write(b"data")
        rec.close(b"")
        outcome = await rec.outcome()
    assert outcome.error is not None
    assert "'/'" in outcome.error
    assert files_under(tmp_path) == []


async def test_an_existing_recording_is_never_overwritten(tmp_path: Path) -> None:
    async with RecordingFiles(tmp_path) as files:
        first = files.open("same", DAY)
        record(first, 0.5)
        assert (await first.outcome()).ok
        size = recording_path(tmp_path, "same", DAY).stat().st_size
        second = files.open("same", DAY)
        record(second, 1.0)
        outcome = await second.outcome()
    assert outcome.error is not None
    assert "exists" in outcome.error
    assert recording_path(tmp_path, "same", DAY).stat().st_size == size


class _CountedRecorder(Recorder):
    ticked = 0  # over all of them

    def tick(self, now: float) -> bytes:
        _CountedRecorder.ticked += 1
        return super().tick(now)


@pytest.mark.parametrize(("budget", "seen"), [(2.0, {2, 4}), (1e9, set())])
async def test_the_flush_gives_the_loop_a_turn_each_time_its_budget_is_spent(
    tmp_path: Path, budget: float, seen: set[int]
) -> None:
    """write_due writes every recording, and lets the loop run whenever it wrote for its
    budget (a clock that moves 1 a reading: a turn after every second recording)."""
    async with RecordingFiles(tmp_path) as files:
        calls = [(_CountedRecorder(T0), files.open(f"c{n}", DAY)) for n in range(6)]
        _CountedRecorder.ticked = 0
        observed: list[int] = []

        async def other_work() -> None:
            for _ in range(10):
                observed.append(_CountedRecorder.ticked)
                await asyncio.sleep(0)

        other = asyncio.create_task(other_work())
        await asyncio.sleep(0)  # it runs first
        clock = itertools.count()
        await write_due(calls, T0 + 1.0, budget_s=budget, clock=lambda: float(next(clock)))
        await other
        for recorder, recording in calls:
            summary = recorder.close(T0 + 1.0)
            recording.write(summary.tail)
            recording.close(summary.header)
        outcomes = [await recording.outcome() for _, recording in calls]
    assert _CountedRecorder.ticked == 6
    assert {n for n in observed if 0 < n < 6} == seen
    assert all(o.ok and o.bytes_written > 8000 * 4 for o in outcomes)


@pytest.mark.parametrize("call_id", ["", "a/b", "a\\b", "nul\0", ".hidden", "..", "tab\tid"])
def test_call_ids_that_are_not_file_names(call_id: str) -> None:
    with pytest.raises(RecordingError, match="cannot name a recording file"):
        check_call_id(call_id)


def test_ordinary_call_ids_are_file_names() -> None:
    for call_id in ("sip-main-1a2b3c-42", "trunk-7", "modem:1@x~y=z"):
        assert check_call_id(call_id) == call_id


def make(root: Path, day: str, call_id: str, data: bytes = b"RIFF") -> Path:
    path = root / day / f"{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_list_export_delete(tmp_path: Path) -> None:
    make(tmp_path, "2026-12-01", "old")
    make(tmp_path, "2026-12-06", "new")
    (tmp_path / "notes").mkdir()
    (tmp_path / "2026-12-06" / "readme.txt").write_text("not a recording")
    listed = list_recordings(tmp_path)
    assert [(i.day.isoformat(), i.call_id, i.duration_s) for i in listed] == [
        ("2026-12-01", "old", None),  # no readable header: unfinished
        ("2026-12-06", "new", None),
    ]
    assert [i.call_id for i in list_recordings(tmp_path, day=DAY)] == ["new"]
    out = tmp_path / "out"
    out.mkdir()
    assert export_recording(tmp_path, "old", out) == out / "old.wav"
    assert export_recording(tmp_path, "old", out / "x.wav").read_bytes() == b"RIFF"
    assert delete_recording(tmp_path, "old") == tmp_path / "2026-12-01" / "old.wav"
    assert [i.call_id for i in list_recordings(tmp_path)] == ["new"]
    assert (out / "old.wav").exists()
    with pytest.raises(RecordingError, match="no recording of call 'old'"):
        find_recording(tmp_path, "old")
    with pytest.raises(RecordingError, match="cannot name"):
        delete_recording(tmp_path, "../new")


def test_the_sweep_deletes_only_what_is_past_retention(tmp_path: Path) -> None:
    gone = [make(tmp_path, "2026-09-01", "a"), make(tmp_path, "2026-09-06", "b")]
    kept = [make(tmp_path, "2026-09-07", "c"), make(tmp_path, "2026-12-06", "d")]
    (tmp_path / "2026-09-01" / "keep.txt").write_text("someone else's")
    (tmp_path / "misc").mkdir()
    deleted = sweep(tmp_path, 90, DAY)
    assert deleted == gone
    assert all(p.exists() for p in kept)
    assert (tmp_path / "2026-09-01" / "keep.txt").exists()  # only recordings go
    assert not (tmp_path / "2026-09-06").exists()  # emptied day directories go
    assert (tmp_path / "misc").exists()
    assert sweep(tmp_path, 0.5, DAY) == [kept[0]]  # half a day: yesterday stays
    with pytest.raises(RecordingError, match="more than 0"):
        sweep(tmp_path, 0, DAY)
    assert sweep(tmp_path / "none", 30, DAY) == []
