"""The call records of the store: one row per finished call, never dropped, and the
conflicts (a different record under a call id already held). :class:`CallRecords`
works over a :class:`~cti.store.database.Store`'s connection; the store keeps one, as
``store.calls``, so its conflict count and listeners last as long as the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import aiosqlite

from cti.clock import wall_time
from cti.models import CallDetailRecord

if TYPE_CHECKING:
    from cti.store.database import Store

log = logging.getLogger(__name__)

_CDR_FIELDS = CallDetailRecord.field_names()
_INSERT_CDR = (
    f"INSERT INTO call_records ({', '.join(_CDR_FIELDS)})"
    f" VALUES ({', '.join('?' for _ in _CDR_FIELDS)})"
)
_SELECT_CDRS = f"SELECT {', '.join(_CDR_FIELDS)} FROM call_records ORDER BY id"
_TAKEN_CALL_IDS = (
    "SELECT call_id FROM call_records WHERE call_id IN (SELECT value FROM json_each(?))"
)
#: The records holding a call id: its own, and those kept under a suffix for conflicts.
_RECORDS_OF_CALL = (
    f"SELECT {', '.join(_CDR_FIELDS)} FROM call_records WHERE call_id = ?"
    " OR call_id IN (SELECT stored_as FROM call_record_conflicts WHERE call_id = ?) ORDER BY id"
)
#: Fields that may differ between a call's record and the same record stored again after
#: a restart: the wall clock of arrival is derived anew, and the customer an agent chose
#: for the call is not journaled.
_DERIVED_FIELDS = frozenset({"started_wall", "customer_id", "call_id"})


def same_call_record(a: CallDetailRecord, b: CallDetailRecord) -> bool:
    """Whether ``b`` is ``a`` again (as a restart stores it), not another call.

    Call ids are not compared: ``a`` may be stored under a conflict's suffixed id.
    """
    return all(
        getattr(a, name) == getattr(b, name) for name in _CDR_FIELDS if name not in _DERIVED_FIELDS
    )


@dataclass(frozen=True, slots=True)
class RecordConflict:
    """A call record whose call id a different record holds already: it was kept under
    ``stored_as`` (``<call id>.conflict<n>``) and listed in ``call_record_conflicts``."""

    call_id: str
    stored_as: str
    existing: CallDetailRecord
    new: CallDetailRecord


class CallRecords:
    """Call detail records, written and read through the store's transactions; a
    failure comes out as :class:`~cti.errors.StoreError` naming what was being done."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conflicts = 0
        """Call records stored under a suffixed id since the store was opened (see
        :meth:`record_calls`)."""
        self.conflict_listeners: list[Callable[[RecordConflict], None]] = []
        """Called with each conflict once its transaction is committed."""

    async def record_call(self, cdr: CallDetailRecord) -> bool:
        """Store a call detail record; False if this same record is in already.

        See :meth:`record_calls` for a record whose call id another record holds.
        """
        return await self.record_calls([cdr]) == 1

    async def record_calls(self, cdrs: Iterable[CallDetailRecord]) -> int:
        """Store call detail records in one transaction; return how many were stored now.

        A record is never dropped. The same record again (a restart storing what the
        journal decided: :func:`same_call_record`) is skipped. A *different* record with
        a call id already held (an id reused) is a conflict: it is stored under
        ``<call id>.conflict<n>``, listed in ``call_record_conflicts``, logged as an error
        with both records, counted in :attr:`conflicts` and passed to each of
        :attr:`conflict_listeners`.
        """
        batch = list(cdrs)
        if not batch:
            return 0
        first = f"call {batch[0].call_id!r}" if len(batch) == 1 else f"{len(batch)} calls"
        found: list[RecordConflict] = []

        async def insert(connection: aiosqlite.Connection) -> int:
            ids = json.dumps([cdr.call_id for cdr in batch])
            taken = {row[0] for row in await connection.execute_fetchall(_TAKEN_CALL_IDS, (ids,))}
            fresh: list[CallDetailRecord] = []
            contested: list[CallDetailRecord] = []
            for cdr in batch:
                (contested if cdr.call_id in taken else fresh).append(cdr)
                taken.add(cdr.call_id)
            await connection.executemany(_INSERT_CDR, [_cdr_row(cdr) for cdr in fresh])
            stored = len(fresh)
            for cdr in contested:
                conflict = await _store_contested(connection, cdr)
                if conflict is not None:
                    found.append(conflict)
                    stored += 1
            return stored

        stored = await self.store.write(f"recording {first}", insert)
        for conflict in found:
            self._report(conflict)
        return stored

    async def records(self) -> list[CallDetailRecord]:
        """Every stored call detail record, in the order they were recorded."""
        rows = await self.store.fetch("reading call records", _SELECT_CDRS)
        return [_cdr_from_row(row) for row in rows]

    async def stored_conflicts(self) -> list[tuple[str, str, float]]:
        """Every conflict stored: ``(call id, stored as, wall clock when found)``, oldest first."""
        rows = await self.store.fetch(
            "reading call record conflicts",
            "SELECT call_id, stored_as, detected_wall FROM call_record_conflicts ORDER BY rowid",
        )
        return [(str(a), str(b), float(c)) for a, b, c in rows]

    def _report(self, conflict: RecordConflict) -> None:
        """Count, log and pass on a conflict whose transaction is committed."""
        self.conflicts += 1
        log.error(  # each one: the log says which records they were
            "call record conflict: call id %r is held by %s; the new record %s is kept as %r",
            conflict.call_id,
            conflict.existing,
            conflict.new,
            conflict.stored_as,
        )
        for listener in self.conflict_listeners:
            listener(conflict)


def _cdr_row(cdr: CallDetailRecord) -> tuple[object, ...]:
    return tuple(getattr(cdr, field) for field in _CDR_FIELDS)


def _cdr_from_row(row: Iterable[object]) -> CallDetailRecord:
    return CallDetailRecord.from_row(dict(zip(_CDR_FIELDS, row, strict=True)))


async def _store_contested(
    connection: aiosqlite.Connection, cdr: CallDetailRecord
) -> RecordConflict | None:
    """Store ``cdr``, whose call id is held, under a suffix unless it is stored already."""
    rows = await connection.execute_fetchall(_RECORDS_OF_CALL, (cdr.call_id, cdr.call_id))
    held = [_cdr_from_row(row) for row in rows]
    if any(same_call_record(record, cdr) for record in held):
        return None
    n = len(held) + 1
    while await connection.execute_fetchall(_TAKEN_CALL_IDS, (json.dumps([_suffixed(cdr, n)]),)):
        n += 1
    stored_as = _suffixed(cdr, n)
    await connection.execute(_INSERT_CDR, _cdr_row(replace(cdr, call_id=stored_as)))
    await connection.execute(
        "INSERT INTO call_record_conflicts (stored_as, call_id, detected_wall) VALUES (?, ?, ?)",
        (stored_as, cdr.call_id, wall_time()),
    )
    return RecordConflict(cdr.call_id, stored_as, existing=held[0], new=cdr)


def _suffixed(cdr: CallDetailRecord, n: int) -> str:
    return f"{cdr.call_id}.conflict{n}"
