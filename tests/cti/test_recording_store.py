"""The store's recordings (cti/store/recordings.py): beside the call records, either first."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

from cti.errors import StoreError
from cti.models import CallDetailRecord, CallerKind, Segment
from cti.store.database import Store
from cti.store.migrations import MIGRATIONS
from cti.store.recordings import CallRecording, RecordingRows, kind_of, recording_id


def cdr(call_id: str) -> CallDetailRecord:
    return CallDetailRecord(
        call_id=call_id, queue="general", ani="+15550100", caller_kind=CallerKind.KNOWN,
        customer_id=None, segment=Segment.BRONZE, value=0.0, arrived_at=10.0,
        ended_at=70.0, outcome="answered", agent_id="1001", answered_at=20.0,
    )  # fmt: skip


async def test_a_recording_beside_its_record_in_either_order(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "cti.db") as store:
        rows = RecordingRows(store)
        await rows.save(CallRecording("before", "2026-01-05/before.wav", 61.5, ((3.0, 9.5),),
                                      finished_wall=100.0))  # fmt: skip
        await store.calls.record_call(cdr("before"))
        await store.calls.record_call(cdr("after"))
        await rows.save(CallRecording("after", error="disk full", finished_wall=101.0))
        found = await rows.by_ids(["before", "after", "none"])
        assert sorted(found) == ["after", "before"]
        assert found["before"].paused == ((3.0, 9.5),)
        assert found["before"].summary() == "61.5 s, paused 3.0-9.5 s"
        assert found["after"].status == "failed"
        assert found["after"].summary() == "failed: disk full"
        record = await rows.call_record("before")
        assert record is not None
        assert record.agent_id == "1001"
        assert await rows.call_record("none") is None


async def test_deleted_marked_once_and_kept_when_saved_again(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "cti.db") as store:
        rows = RecordingRows(store)
        await rows.save(CallRecording("c1", "d/c1.wav", 5.0, finished_wall=1.0))
        assert await rows.mark_deleted(["c1", "unknown"], 50.0, "retention") == 1
        assert await rows.mark_deleted(["c1"], 60.0, "cti recordings delete") == 0
        await rows.save(CallRecording("c1", "d/c1.wav", 5.0, finished_wall=2.0))
        kept = await rows.get("c1")
        assert kept is not None
        assert (kept.deleted_wall, kept.deleted_by, kept.status) == (50.0, "retention", "deleted")
        assert kept.summary() == "5.0 s; deleted (retention)"
        assert await rows.mark_deleted([], 1.0, "x") == 0


async def test_a_closed_store_names_the_call(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "cti.db")
    await store.close()
    with pytest.raises(StoreError, match="recording of call 'c9'"):
        await RecordingRows(store).save(CallRecording("c9"))


async def test_a_message_beside_the_calls_recording_and_attached_in_either_order(
    tmp_path: Path,
) -> None:
    async with await Store.open(tmp_path / "cti.db") as store:
        rows = RecordingRows(store)
        await rows.attach_message("cb-1", "c1.message", 10.0)  # before the line closes it
        await rows.save(CallRecording("c1", "d/c1.wav", 30.0, finished_wall=1.0))
        await rows.save(CallRecording("c1", "d/c1.message.wav", 12.5, finished_wall=2.0,
                                      kind="message"))  # fmt: skip
        await rows.save(CallRecording("c2", "d/c2.message.wav", 4.0, kind="message"))
        await rows.attach_message("cb-2", "c2.message", 11.0)  # after
        found = await rows.by_ids(["c1", "c1.message", "c2.message", "c2"])
        assert sorted(found) == ["c1", "c1.message", "c2.message"]
        assert (found["c1"].kind, found["c1"].duration_s) == ("call", 30.0)
        message = await rows.get("c1", "message")
        assert message is not None
        assert (message.kind, message.call_id, message.recording_id) == (
            "message", "c1", "c1.message")  # fmt: skip
        assert message.to_json()["kind"] == "message"
        assert await rows.get("c2") is None  # c2 left a message, no call recording
        assert await rows.attached(10) == [("cb-2", "c2.message"), ("cb-1", "c1.message")]
        assert await rows.attached(1) == [("cb-2", "c2.message")]
        assert await rows.callbacks_of(["c1.message", "c2.message", "c1"]) == {
            "c1.message": "cb-1", "c2.message": "cb-2"}  # fmt: skip
        assert await rows.mark_deleted(["c1.message"], 50.0, "retention") == 1
        kept = await rows.get("c1")
        assert kept is not None
        assert kept.status == "recorded"  # the call's recording is not the message
        await rows.attach_message("cb-1", "c2.message", 12.0)  # attached again: replaced
        assert await rows.callbacks_of(["c2.message"]) == {"c2.message": "cb-1"}  # the newest
        assert await rows.attached(10) == [("cb-1", "c2.message"), ("cb-2", "c2.message")]


async def test_a_store_of_recordings_before_messages_is_migrated(tmp_path: Path) -> None:
    """Migration 71 keys rows by recording id: an older store's rows keep their call id,
    as call recordings."""
    older = tuple(m for m in MIGRATIONS if m[0] < 71)
    async with await Store.open(tmp_path / "cti.db", migrations=older) as store:

        async def insert(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT INTO call_recordings (call_id, path, duration_s, finished_wall)"
                " VALUES ('old-1', 'd/old-1.wav', 9.0, 1.0)"
            )

        await store.write("writing an old row", insert)
    async with await Store.open(tmp_path / "cti.db") as store:
        kept = await RecordingRows(store).get("old-1")
        assert kept == CallRecording("old-1", "d/old-1.wav", 9.0, finished_wall=1.0)
        assert kept.kind == "call"


def test_a_recording_id_names_the_kind() -> None:
    assert recording_id("c1") == "c1"
    assert recording_id("c1", "message") == "c1.message"
    assert (kind_of("c1"), kind_of("c1.message")) == ("call", "message")
