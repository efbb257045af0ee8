"""The store's recordings (cti/store/recordings.py): beside the call records, either first."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.errors import StoreError
from cti.models import CallDetailRecord, CallerKind, Segment
from cti.store.database import Store
from cti.store.recordings import CallRecording, RecordingRows


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
        found = await rows.of_calls(["before", "after", "none"])
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
