"""The calls' recordings and the voicemail messages callers leave, in the store: per
recording its file (relative to the recordings folder), length, the spans it was paused,
why it failed, and when its file was deleted; per callback the message it returns.

A row is keyed by its recording id, its file's name: a call's recording is its call id,
a message ``<call_id>.message`` (:func:`recording_id`), so a call may have both. A row
sits beside the call's record (same call id, no foreign key): a recording may close
before or after its call's record is written, and deleting the file keeps both rows.
A message is attached to its callback (:meth:`RecordingRows.attach_message`) before or
after its row is written. :class:`RecordingRows` works over a
:class:`~cti.store.database.Store`'s connection, like
:class:`~cti.store.campaigns.CampaignStore`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import aiosqlite

from cti.models import CallDetailRecord

if TYPE_CHECKING:
    from cti.store.database import Store

Span = tuple[float, float]
RecordingKind = Literal["call", "message"]
KINDS: Final[tuple[RecordingKind, ...]] = ("call", "message")
#: What a message's recording id adds to its call id (the file is ``<id>.wav``).
MESSAGE_SUFFIX: Final = ".message"

_FIELDS = (
    "recording_id, call_id, kind, path, duration_s, paused, error, finished_wall,"
    " deleted_wall, deleted_by"
)
#: A recording closed again (a line that reports twice) keeps its deletion.
_SAVE = (
    f"INSERT INTO call_recordings ({_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, '')"
    " ON CONFLICT (recording_id) DO UPDATE SET path = excluded.path,"
    " duration_s = excluded.duration_s, paused = excluded.paused, error = excluded.error,"
    " finished_wall = excluded.finished_wall"
)
_BY_IDS = (
    f"SELECT {_FIELDS} FROM call_recordings WHERE recording_id IN (SELECT value FROM json_each(?))"
)
_MARK_DELETED = (
    "UPDATE call_recordings SET deleted_wall = ?, deleted_by = ?"
    " WHERE deleted_wall IS NULL AND recording_id IN (SELECT value FROM json_each(?))"
)
_ATTACH = (
    "INSERT INTO callback_messages (callback_id, recording_id, attached_wall) VALUES (?, ?, ?)"
    " ON CONFLICT (callback_id) DO UPDATE SET recording_id = excluded.recording_id,"
    " attached_wall = excluded.attached_wall"
)
_ATTACHED = (
    "SELECT callback_id, recording_id FROM callback_messages"
    " ORDER BY attached_wall DESC, rowid DESC LIMIT ?"
)
_CALLBACKS_OF = (
    "SELECT recording_id, callback_id FROM callback_messages"
    " WHERE recording_id IN (SELECT value FROM json_each(?)) ORDER BY attached_wall"
)
_CDR_FIELDS = CallDetailRecord.field_names()
_RECORD_OF_CALL = f"SELECT {', '.join(_CDR_FIELDS)} FROM call_records WHERE call_id = ?"


def recording_id(call_id: str, kind: RecordingKind = "call") -> str:
    """The id (and file name, without ``.wav``) of ``call_id``'s recording of ``kind``."""
    return call_id + MESSAGE_SUFFIX if kind == "message" else call_id


def kind_of(recording: str) -> RecordingKind:
    """The kind a recording id names (a file the store has no row for is told by its name)."""
    return "message" if recording.endswith(MESSAGE_SUFFIX) else "call"


@dataclass(frozen=True, slots=True)
class CallRecording:
    """One call's recording, or a message the caller left, as the store keeps it."""

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
    kind: RecordingKind = "call"
    """``call`` (the conversation, stereo) or ``message`` (a voicemail, the caller alone)."""

    @property
    def recording_id(self) -> str:
        """Its key in the store and its file's name (:func:`recording_id`)."""
        return recording_id(self.call_id, self.kind)

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
            "recording_id": self.recording_id,
            "call_id": self.call_id,
            "kind": self.kind,
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
        """Keep a closed recording or message (again: its fields are replaced, a deletion
        and an attachment kept)."""
        row = (
            recording.recording_id,
            recording.call_id,
            recording.kind,
            recording.path,
            recording.duration_s,
            json.dumps([list(span) for span in recording.paused]),
            recording.error,
            recording.finished_wall,
        )

        async def upsert(connection: aiosqlite.Connection) -> None:
            await connection.execute(_SAVE, row)

        what = "message" if recording.kind == "message" else "recording"
        await self.store.write(f"keeping the {what} of call {recording.call_id!r}", upsert)

    async def mark_deleted(self, recording_ids: Iterable[str], wall: float, by: str) -> int:
        """Mark the recordings ``recording_ids`` deleted (their rows stay); how many were
        marked now (a recording the store does not know, or deleted already, is not)."""
        ids = sorted(set(recording_ids))
        if not ids:
            return 0

        async def update(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(_MARK_DELETED, (wall, by, json.dumps(ids)))
            return cursor.rowcount

        doing = f"marking the recording {ids[0]!r}" if len(ids) == 1 else (
            f"marking {len(ids)} recordings")  # fmt: skip
        return await self.store.write(f"{doing} deleted", update)

    async def by_ids(self, recording_ids: Sequence[str]) -> dict[str, CallRecording]:
        """The recordings kept of these ids, by id (ids the store does not know left out);
        a call's recording id is its call id."""
        if not recording_ids:
            return {}
        rows = await self.store.fetch(
            f"reading {len(recording_ids)} recordings",
            _BY_IDS,
            (json.dumps(list(recording_ids)),),
        )
        return {str(row[0]): _recording(row) for row in rows}

    async def get(self, call_id: str, kind: RecordingKind = "call") -> CallRecording | None:
        """``call_id``'s recording (or its message, ``kind="message"``), or None."""
        key = recording_id(call_id, kind)
        return (await self.by_ids([key])).get(key)

    async def attach_message(self, callback_id: str, message_id: str, wall: float) -> None:
        """The callback ``callback_id`` returns the message ``message_id`` (a recording id;
        its row may be written before or after). Attaching again replaces it."""

        async def upsert(connection: aiosqlite.Connection) -> None:
            await connection.execute(_ATTACH, (callback_id, message_id, wall))

        await self.store.write(
            f"attaching the message {message_id!r} to callback {callback_id!r}", upsert
        )

    async def attached(self, limit: int) -> list[tuple[str, str]]:
        """The newest ``limit`` attachments, newest first: (callback id, message id)."""
        rows = await self.store.fetch("reading the callbacks' messages", _ATTACHED, (limit,))
        return [(str(row[0]), str(row[1])) for row in rows]

    async def callbacks_of(self, recording_ids: Sequence[str]) -> dict[str, str]:
        """The callback each of these messages is attached to, by message id."""
        if not recording_ids:
            return {}
        rows = await self.store.fetch(
            f"reading the callbacks of {len(recording_ids)} messages",
            _CALLBACKS_OF,
            (json.dumps(list(recording_ids)),),
        )
        return {str(row[0]): str(row[1]) for row in rows}

    async def call_record(self, call_id: str) -> CallDetailRecord | None:
        """The call's record (the one under its own id), or None: to show it in full."""
        rows = await self.store.fetch(
            f"reading the record of call {call_id!r}", _RECORD_OF_CALL, (call_id,)
        )
        if not rows:
            return None
        return CallDetailRecord.from_row(dict(zip(_CDR_FIELDS, rows[0], strict=True)))


def _recording(row: Sequence[Any]) -> CallRecording:
    _id, call_id, kind, path, duration, paused, error, finished, deleted, by = row
    spans = tuple((float(a), float(b)) for a, b in json.loads(str(paused or "[]")))
    return CallRecording(
        call_id=str(call_id),
        kind="message" if kind == "message" else "call",
        path=str(path),
        duration_s=float(duration),
        paused=spans,
        error=str(error),
        finished_wall=float(finished),
        deleted_wall=None if deleted is None else float(deleted),
        deleted_by=str(by),
    )
