"""The calls' recordings in the store: per call id its file (relative to the recordings
folder), length, the spans it was paused, why it failed, and when its file was deleted.

A row sits beside the call's record (same call id, no foreign key): a recording may
close before or after its call's record is written, and deleting the file keeps both
rows. :class:`RecordingRows` works over a :class:`~cti.store.database.Store`'s
connection, like :class:`~cti.store.campaigns.CampaignStore`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiosqlite

from cti.models import CallDetailRecord

if TYPE_CHECKING:
    from cti.store.database import Store

Span = tuple[float, float]

_FIELDS = "call_id, path, duration_s, paused, error, finished_wall, deleted_wall, deleted_by"
#: A recording closed again (a line that reports twice) keeps its deletion.
_SAVE = (
    f"INSERT INTO call_recordings ({_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, NULL, '')"
    " ON CONFLICT (call_id) DO UPDATE SET path = excluded.path,"
    " duration_s = excluded.duration_s, paused = excluded.paused, error = excluded.error,"
    " finished_wall = excluded.finished_wall"
)
_OF_CALLS = (
    f"SELECT {_FIELDS} FROM call_recordings WHERE call_id IN (SELECT value FROM json_each(?))"
)
_MARK_DELETED = (
    "UPDATE call_recordings SET deleted_wall = ?, deleted_by = ?"
    " WHERE deleted_wall IS NULL AND call_id IN (SELECT value FROM json_each(?))"
)
_CDR_FIELDS = CallDetailRecord.field_names()
_RECORD_OF_CALL = f"SELECT {', '.join(_CDR_FIELDS)} FROM call_records WHERE call_id = ?"


@dataclass(frozen=True, slots=True)
class CallRecording:
    """One call's recording as the store keeps it."""

    call_id: str
    path: str = ""
    duration_s: float = 0.0
    paused: tuple[Span, ...] = ()
    error: str = ""
    """Why the recording failed ('' if it did not)."""
    finished_wall: float = 0.0
    deleted_wall: float | None = None
    deleted_by: str = ""
    """What deleted the file: ``retention`` or ``cti recordings delete``."""

    @property
    def status(self) -> str:
        """One word for a listing: recorded, failed or deleted."""
        if self.deleted_wall is not None:
            return "deleted"
        return "failed" if self.error else "recorded"

    def summary(self) -> str:
        """The recording as a call record shows it (one line, no path)."""
        if self.error:
            text = f"failed: {self.error}"
        else:
            text = f"{self.duration_s:.1f} s"
            if self.paused:
                spans = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in self.paused)
                text += f", paused {spans}"
        if self.deleted_wall is not None:
            text += f"; deleted ({self.deleted_by or 'file removed'})"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "duration_s": self.duration_s,
            "paused": [list(span) for span in self.paused],
            "error": self.error,
            "status": self.status,
            "deleted_wall": self.deleted_wall,
            "deleted_by": self.deleted_by,
        }


class RecordingRows:
    """Recordings, written and read through the store's transactions; a failure comes out
    as :class:`~cti.errors.StoreError` naming what was being done."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def save(self, recording: CallRecording) -> None:
        """Keep a call's closed recording (again: its fields are replaced, a deletion kept)."""
        row = (
            recording.call_id,
            recording.path,
            recording.duration_s,
            json.dumps([list(span) for span in recording.paused]),
            recording.error,
            recording.finished_wall,
        )

        async def upsert(connection: aiosqlite.Connection) -> None:
            await connection.execute(_SAVE, row)

        await self.store.write(f"keeping the recording of call {recording.call_id!r}", upsert)

    async def mark_deleted(self, call_ids: Iterable[str], wall: float, by: str) -> int:
        """Mark the recordings of ``call_ids`` deleted (their rows stay); how many were
        marked now (a recording the store does not know, or deleted already, is not)."""
        ids = sorted(set(call_ids))
        if not ids:
            return 0

        async def update(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(_MARK_DELETED, (wall, by, json.dumps(ids)))
            return cursor.rowcount

        doing = f"marking the recording of call {ids[0]!r}" if len(ids) == 1 else (
            f"marking {len(ids)} recordings")  # fmt: skip
        return await self.store.write(f"{doing} deleted", update)

    async def of_calls(self, call_ids: Sequence[str]) -> dict[str, CallRecording]:
        """The recordings kept for these calls, by call id (calls without one left out)."""
        if not call_ids:
            return {}
        rows = await self.store.fetch(
            f"reading the recordings of {len(call_ids)} calls",
            _OF_CALLS,
            (json.dumps(list(call_ids)),),
        )
        return {str(row[0]): _recording(row) for row in rows}

    async def get(self, call_id: str) -> CallRecording | None:
        """The recording kept for ``call_id``, or None."""
        return (await self.of_calls([call_id])).get(call_id)

    async def call_record(self, call_id: str) -> CallDetailRecord | None:
        """The call's record (the one under its own id), or None: to show it in full."""
        rows = await self.store.fetch(
            f"reading the record of call {call_id!r}", _RECORD_OF_CALL, (call_id,)
        )
        if not rows:
            return None
        return CallDetailRecord.from_row(dict(zip(_CDR_FIELDS, rows[0], strict=True)))


def _recording(row: Sequence[Any]) -> CallRecording:
    call_id, path, duration, paused, error, finished, deleted, by = row
    spans = tuple((float(a), float(b)) for a, b in json.loads(str(paused or "[]")))
    return CallRecording(
        call_id=str(call_id),
        path=str(path),
        duration_s=float(duration),
        paused=spans,
        error=str(error),
        finished_wall=float(finished),
        deleted_wall=None if deleted is None else float(deleted),
        deleted_by=str(by),
    )
