"""A call's recording on its record (virtual time): the engine stores each recording a line
closes, before or after the call's record, marks a failed one with its reason, retries
what the store refused, and its retention deletes old files and marks them deleted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from cti.clock import VIRTUAL_EPOCH
from cti.engine.recordings import message_file, message_id
from cti.errors import StoreError
from cti.events import VoiceMessage
from cti.models import AgentConfig, AgentState, CallerKind
from cti.protocol import CallOffered, PhoneHungUp, RecordingFinished, ScreenPop, decode, encode
from cti.store.database import Store
from cti.store.recordings import CallRecording, RecordingRows
from telephony_adapters.media import recording_files
from tests.cti.test_recordings_command import make
from tests.cti.test_voice_room import VoiceTrunk, answered, talking
from tests.harness import (
    Center,
    center_config,
    elapse_until,
    engine_center,
    until,
    until_async,
    virtual,
)

#: The day the engine's wall clock says on virtual time (2026-01-05).
TODAY = date.fromtimestamp(VIRTUAL_EPOCH)


@asynccontextmanager
async def recorded_center(
    tmp_path: Path, retention_days: float = 90.0
) -> AsyncIterator[tuple[Center, VoiceTrunk]]:
    trunk = VoiceTrunk()
    config = center_config(
        voice={
            "record": "all",
            "recordings_dir": str(tmp_path / "rec"),
            "retention_days": retention_days,
        },
        engine={"status_interval_s": 3600.0},
    )  # days pass: fewer updates
    agents = [AgentConfig(id="1001", queues={"general": 0.0})]
    async with engine_center(tmp_path / "cti.db", config=config, agents=agents,
                             lines=[trunk]) as c:  # fmt: skip
        yield c, trunk


async def record_stored(store: Store, call_id: str) -> None:
    """Let virtual time run (the wrap-up ends) until the call's record is in the store."""
    for _ in range(600):
        if any(r.call_id == call_id for r in await store.calls.records()):
            return
        await asyncio.sleep(1.0)
    raise AssertionError(f"no record of call {call_id} after 600 s of virtual time")


async def recording_stored(store: Store, call_id: str) -> CallRecording:
    rows = RecordingRows(store)
    return await until_async(lambda: rows.get(call_id), what=f"the recording of {call_id}")


def finished(call_id: str, **fields: object) -> RecordingFinished:
    return RecordingFinished.model_validate({"call_id": call_id, **fields})


def test_a_recording_closed_before_the_record_is_written(tmp_path: Path) -> None:
    async def body() -> None:
        async with recorded_center(tmp_path) as (c, trunk):
            call_id = await answered(c, trunk)
            trunk.phone(finished(call_id, path=f"2026-01-05/{call_id}.wav", duration_s=42.5,
                                 paused=[[10.0, 18.5]]))  # fmt: skip
            kept = await recording_stored(c.store, call_id)
            assert (kept.path, kept.duration_s, kept.paused) == (
                f"2026-01-05/{call_id}.wav", 42.5, ((10.0, 18.5),))  # fmt: skip
            trunk.phone(PhoneHungUp(call_id=call_id, agent_id="1001"))
            await record_stored(c.store, call_id)
            record = await RecordingRows(c.store).call_record(call_id)
            assert record is not None
            assert record.outcome == "answered"
            assert (await RecordingRows(c.store).get(call_id)) == kept

    virtual(body)


def test_a_recording_closed_after_the_record_is_written(tmp_path: Path) -> None:
    async def body() -> None:
        async with recorded_center(tmp_path) as (c, trunk):
            call_id = await answered(c, trunk)
            trunk.phone(PhoneHungUp(call_id=call_id, agent_id="1001"))
            await until(lambda: c.service.router.agent("1001").state is AgentState.WRAP_UP)
            await record_stored(c.store, call_id)
            assert await RecordingRows(c.store).get(call_id) is None
            trunk.phone(finished(call_id, path=f"2026-01-05/{call_id}.wav", duration_s=7.0))
            kept = await recording_stored(c.store, call_id)
            assert (kept.duration_s, kept.status, kept.summary()) == (7.0, "recorded", "7.0 s")

    virtual(body)


def test_a_failed_recording_is_marked_with_its_reason_and_the_call_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        async with recorded_center(tmp_path) as (c, trunk):
            call_id = await answered(c, trunk)
            trunk.phone(finished(call_id, error="No space left on device: rec/x.wav"))
            kept = await recording_stored(c.store, call_id)
            assert kept.status == "failed"
            assert kept.summary() == "failed: No space left on device: rec/x.wav"
            assert talking(trunk, call_id, "1001")  # the call keeps going
            assert c.service.router.agent("1001").state is AgentState.TALKING

    with caplog.at_level(logging.WARNING, logger="cti.engine.recordings"):
        virtual(body)
    assert any("recording failed: No space left" in r.getMessage() for r in caplog.records)


class FlakyRows:
    """The store's recordings, refusing while ``down`` (as a full disk or a lock would)."""

    def __init__(self, rows: RecordingRows) -> None:
        self.rows = rows
        self.down = True
        self.refused = 0

    def _check(self) -> None:
        if self.down:
            self.refused += 1
            raise StoreError("database is locked")

    async def save(self, recording: CallRecording) -> None:
        self._check()
        await self.rows.save(recording)

    async def mark_deleted(self, recording_ids: Iterable[str], wall: float, by: str) -> int:
        self._check()
        return await self.rows.mark_deleted(recording_ids, wall, by)

    async def attach_message(self, callback_id: str, message_id: str, wall: float) -> None:
        self._check()
        await self.rows.attach_message(callback_id, message_id, wall)

    async def attached(self, limit: int) -> list[tuple[str, str]]:
        self._check()
        return await self.rows.attached(limit)

    async def by_ids(self, recording_ids: Sequence[str]) -> dict[str, CallRecording]:
        self._check()
        return await self.rows.by_ids(recording_ids)


def test_a_store_failure_is_retried_in_order_and_routing_never_waits(tmp_path: Path) -> None:
    async def body() -> None:
        async with recorded_center(tmp_path) as (c, trunk):
            keeper = c.service.recordings
            flaky = FlakyRows(RecordingRows(c.store))
            keeper.rows = flaky
            call_id = await answered(c, trunk)
            trunk.phone(finished(call_id, duration_s=3.0))
            trunk.phone(finished("earlier-call", duration_s=9.0))
            await elapse_until(lambda: flaky.refused >= 2, step_s=0.1)  # refused, then again
            assert keeper.error == "database is locked"
            assert len(keeper.pending) == 2
            trunk.phone(PhoneHungUp(call_id=call_id, agent_id="1001"))  # routing goes on
            await until(lambda: c.service.router.agent("1001").state is AgentState.WRAP_UP)
            flaky.down = False
            await elapse_until(lambda: not keeper.pending)
            kept = await RecordingRows(c.store).by_ids([call_id, "earlier-call"])
            assert {k: r.duration_s for k, r in kept.items()} == {
                call_id: 3.0, "earlier-call": 9.0}  # fmt: skip
            assert keeper.error == ""
            assert not keeper.retry.failing

    virtual(body)


def test_the_retention_sweeps_at_start_and_daily_and_marks_deleted(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    old = make(root, TODAY - timedelta(days=10), "old-call", 1.0)
    aging = make(root, TODAY - timedelta(days=1), "aging-call", 1.0)
    fresh = make(root, TODAY, "fresh-call", 1.0)

    async def body() -> None:
        async with await Store.open(tmp_path / "cti.db") as store:
            rows = RecordingRows(store)
            for path in (old, aging, fresh):
                await rows.save(CallRecording(path.stem, path.name, 1.0, finished_wall=1.0))
        async with recorded_center(tmp_path, retention_days=1) as (c, _trunk):
            rows = RecordingRows(c.store)

            async def marked(call_id: str) -> bool:
                kept = await rows.get(call_id)
                return kept is not None and kept.status == "deleted"

            await until_async(lambda: marked("old-call"), what="the sweep at start")
            assert not old.exists()
            assert aging.exists()
            assert fresh.exists()
            kept = await rows.get("old-call")
            assert kept is not None
            assert kept.deleted_by == "retention"
            await asyncio.sleep(20 * 3600.0)
            assert aging.exists()  # one sweep a day, not more
            await elapse_until(lambda: not aging.exists(), step_s=3600.0, limit_s=2 * 86400.0)
            await until_async(lambda: marked("aging-call"), what="the next day's sweep")
            assert fresh.exists()
            assert not await marked("fresh-call")

    virtual(body)


def test_a_sweep_that_fails_is_logged_and_the_engine_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Path] = []

    def broken_sweep(root: Path, keep_days: float, today: date) -> list[Path]:
        calls.append(root)
        raise PermissionError(13, "Permission denied", str(root))

    monkeypatch.setattr(recording_files, "sweep", broken_sweep)

    async def body() -> None:
        async with recorded_center(tmp_path) as (c, trunk):
            await until(lambda: len(calls) == 1)
            await elapse_until(lambda: len(calls) == 2, step_s=3600.0, limit_s=2 * 86400.0)
            call_id = await answered(c, trunk)  # the engine still serves
            assert call_id

    with caplog.at_level(logging.ERROR, logger="cti.engine.recordings"):
        virtual(body)
    failures = [r for r in caplog.records if "retention of the recordings" in r.getMessage()]
    assert len(failures) == 2
    assert "Permission denied" in failures[0].getMessage()


def test_a_message_is_stored_attached_to_its_callback_and_shown_after_a_restart(
    tmp_path: Path,
) -> None:
    """A voicemail (RecordingFinished kind message) is stored beside the call's recording;
    the callback it is attached to (before the line closes it) offers it with its file
    and length; an engine started again on the store still does."""
    path = message_file("caller-1", TODAY)
    assert path == f"{TODAY.isoformat()}/caller-1.message.wav"

    async def body() -> None:
        async with recorded_center(tmp_path) as (c, trunk):
            keeper = c.service.recordings
            assert keeper.message_for("cb-1") is None
            keeper.attach_message("cb-1", message_id("caller-1"))
            shown = keeper.message_for("cb-1")
            assert shown == VoiceMessage(recording_id="caller-1.message", status="recording")
            trunk.phone(finished("caller-1", path=path, duration_s=21.5, kind="message"))
            kept = await until_async(
                lambda: RecordingRows(c.store).get("caller-1", "message"), what="the message"
            )
            assert (kept.kind, kept.path, kept.duration_s) == ("message", path, 21.5)
            assert await RecordingRows(c.store).get("caller-1") is None  # not a call's
            assert keeper.message_for("cb-1") == VoiceMessage(
                recording_id="caller-1.message", path=path, duration_s=21.5, status="recorded"
            )
            await elapse_until(lambda: not keeper.pending)
        async with recorded_center(tmp_path) as (c, _trunk):
            keeper = c.service.recordings
            await until(lambda: "cb-1" in keeper.attached)
            assert keeper.message_for("cb-1") == VoiceMessage(
                recording_id="caller-1.message", path=path, duration_s=21.5, status="recorded"
            )
            assert keeper.message_for("cb-2") is None

    virtual(body)


def test_the_retention_sweeps_messages_and_their_callbacks_show_it(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    old_day = TODAY - timedelta(days=10)
    old = make(root, old_day, "left-old.message", 1.0)
    fresh = make(root, TODAY, "left-new.message", 1.0)

    async def body() -> None:
        async with await Store.open(tmp_path / "cti.db") as store:
            rows = RecordingRows(store)
            for day, path in ((old_day, old), (TODAY, fresh)):
                call_id = path.stem.removesuffix(".message")
                await rows.save(CallRecording(call_id, message_file(call_id, day), 1.0,
                                              finished_wall=1.0, kind="message"))  # fmt: skip
            await rows.attach_message("cb-old", "left-old.message", 1.0)
            await rows.attach_message("cb-new", "left-new.message", 2.0)
        async with recorded_center(tmp_path, retention_days=1) as (c, _trunk):
            rows = RecordingRows(c.store)

            async def swept() -> bool:
                kept = await rows.get("left-old", "message")
                return kept is not None and kept.status == "deleted"

            await until_async(swept, what="the sweep at start")
            assert not old.exists()
            assert fresh.exists()
            keeper = c.service.recordings
            gone = keeper.message_for("cb-old")
            assert gone is not None
            assert gone.status == "deleted"
            kept = keeper.message_for("cb-new")
            assert kept is not None
            assert kept.status == "recorded"

    virtual(body)


def test_an_offer_carries_the_callbacks_message_within_one_bus_message() -> None:
    long_id = "x" * 5000
    pop = ScreenPop(call_id="cb-1", queue="general", ani="+15550100",
                    caller_kind=CallerKind.UNKNOWN,
                    message=VoiceMessage(recording_id=long_id, path="d/x.message.wav",
                                         duration_s=3.0, status="recorded"))  # fmt: skip
    assert pop.message is not None
    assert len(pop.message.recording_id) < 1000  # the engine's text is clipped
    offer = CallOffered(agent_id="1001", pop=pop, timeout_s=10.0, deadline_wall=1.0)
    again = decode(encode(offer))
    assert isinstance(again, CallOffered)
    assert again.pop.message == pop.message
    with pytest.raises(ValidationError):
        VoiceMessage.model_validate({"recording_id": "c1.message", "status": "lost"})
