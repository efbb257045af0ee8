"""Call records on their way to the store: each finished call's record, its script run
and its customer's interaction, written in order; what the store cannot take now is
held in memory and written back with backoff (docs/durability.md)."""

from __future__ import annotations

import logging
import operator
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from cti import log_limits
from cti.bus.queues import OneReaderQueue
from cti.clock import RetryBackoff
from cti.engine.directory import CallRecorder
from cti.engine.script_runs import ScriptRuns
from cti.errors import CtiError, StoreError
from cti.models import CallDetailRecord, Interaction
from cti.protocol import SaveScriptRun
from cti.store.calls import RecordConflict
from queue_engine.actions import RecordLeg

log = logging.getLogger(__name__)

#: Call records held in memory at most while the store cannot take them.
MAX_HELD_RECORDS = 100_000

_FIELDS = CallDetailRecord.__slots__  # a slotted dataclass: its fields, in order
_values = operator.attrgetter(*_FIELDS)


def started(cdr: CallDetailRecord, started_wall: float) -> CallDetailRecord:
    """A copy of the router's record with its wall-clock start: what
    ``dataclasses.replace(cdr, started_wall=...)`` makes (the class has no
    ``__post_init__``), without its look at every field's definition (~2.7 -> 1.1 us
    warm, once a call: issue 23)."""
    record = object.__new__(CallDetailRecord)
    for name, value in zip(_FIELDS, _values(cdr), strict=True):
        setattr(record, name, value)
    record.started_wall = started_wall
    return record


@dataclass(slots=True)
class HeldRecord:
    """A call record on its way to the store, and the steps of it done so far."""

    cdr: CallDetailRecord
    restored: bool = False
    """Decided before a restart (its script run is not in memory)."""
    stored: bool = False
    new: bool = False
    """The store did not have it (so its interaction is added)."""
    partial: SaveScriptRun | None = None
    interaction: bool = False


class RecordKeeper:
    """Writes call records (module docstring). ``forget``: drop what the engine kept
    about a call once its record is written; ``trouble``: the engine's health may have
    changed; ``wake``: a write-back is due sooner than the retry loop thinks."""

    def __init__(
        self,
        recorder: CallRecorder | None,
        runs: ScriptRuns,
        now: Callable[[], float],
        *,
        forget: Callable[[str], object],
        trouble: Callable[[], None],
        wake: Callable[[], None],
    ) -> None:
        self.recorder = recorder
        self._runs = runs
        self._now = now
        self._forget = forget
        self._trouble = trouble
        self._wake = wake
        self.held: deque[HeldRecord] = deque()
        """Call records the store could not take yet, oldest first. At most :attr:`max_held`."""
        self.max_held = MAX_HELD_RECORDS
        self.lost = 0
        """Records the full memory spool could not hold (logged whole; the journal still
        has them, so a restart stores them again)."""
        self.conflicts = 0
        """Records the store kept under a suffixed id (their call id was taken)."""
        self.unstored = 0
        """Call records decided but not yet in the store: the journal is not cut meanwhile."""
        self.error = ""
        """Why the store last refused a record ('' while it takes them)."""
        self.retry = RetryBackoff()
        self._queue: OneReaderQueue[CallDetailRecord] = OneReaderQueue()
        """Records put and not yet taken (:meth:`serve`)."""

    def put(self, cdr: CallDetailRecord) -> None:
        """A finished call's record, to be taken in turn by :meth:`serve`."""
        self._queue.put_nowait(cdr)

    async def serve(self) -> None:
        """Take the records put, in order (the engine's records task)."""
        while True:
            cdr = await self._queue.get()
            try:
                await self.take(cdr)
            finally:
                self._queue.task_done()

    async def join(self) -> None:
        """Wait until every record put so far is taken."""
        await self._queue.join()

    async def drain(self) -> None:
        """Take here the records put that no task took (the engine has stopped)."""
        while not self._queue.empty():
            await self.take(self._queue.get_nowait())
            self._queue.task_done()

    async def take(self, cdr: CallDetailRecord) -> None:
        """Write a finished call's record now, or hold it behind those waiting."""
        held = HeldRecord(cdr)
        if self.held:  # behind those waiting for the store: in order
            self.hold(held, self.error)
        elif error := await self.write(held):
            self.hold(held, error)

    async def write(self, held: HeldRecord) -> str:
        """Store a finished call's record, its script run and its interaction (the steps
        not done yet); '' once done, else why the store refused (to try again later)."""
        cdr = held.cdr
        try:
            if self.recorder is not None:
                if not held.stored:
                    stored = await self.recorder.calls.record_call(cdr)
                    held.stored, held.new = True, held.new or stored is not False
                if not held.restored:
                    await self._write_partial_run(held)
                if held.new and not held.interaction:
                    await self.add_interaction(cdr)
                held.interaction = True
        except StoreError as exc:
            log_limits.error(log, "call record %s not stored: %s", cdr.call_id, exc)
            return str(exc) or type(exc).__name__
        except CtiError as exc:  # not the store's: it will not go better next time
            log.error("call record %s: %s", cdr.call_id, exc)
        self.unstored -= 1
        self._runs.answers.pop(cdr.call_id, None)
        self._forget(cdr.call_id)
        return ""

    async def _write_partial_run(self, held: HeldRecord) -> None:
        partial = self._runs.partial.pop(held.cdr.call_id, None)
        if partial is not None:  # no wrap-up of its own: the run saved last
            held.partial = partial
        if held.partial is not None:
            await self._runs.store(held.partial, outbox=True, customer_id=held.cdr.customer_id)
            held.partial = None

    async def add_interaction(self, cdr: CallDetailRecord) -> None:
        """Add an answered call of a known customer to the customer's history."""
        if self.recorder is not None and cdr.customer_id is not None and cdr.outcome == "answered":
            await self.recorder.add_interaction(
                cdr.customer_id,
                Interaction(
                    at=cdr.started_wall,
                    channel="call",
                    disposition=cdr.disposition,
                    agent_id=cdr.agent_id or "",
                    note=cdr.note,
                    call_id=cdr.call_id,
                    script_answers=self._runs.answers.pop(cdr.call_id, {}),
                ),
            )

    async def add_leg(self, leg: RecordLeg, wall: float) -> None:
        """An agent who handed a call on finished its wrap-up: its disposition goes in
        the customer's history (the call's record comes when the call ends)."""
        if self.recorder is None or leg.customer_id is None:
            return
        await self.recorder.add_interaction(
            leg.customer_id,
            Interaction(
                at=wall,
                channel="call",
                disposition=leg.disposition,
                agent_id=leg.agent_id,
                note=leg.note or f"handed on (queue {leg.queue})",
                call_id=leg.call_id,
            ),
        )

    def hold(self, held: HeldRecord, error: str) -> None:
        """Keep a record the store could not take, to write it back later in order."""
        self.error = error
        if len(self.held) >= self.max_held:
            self.lost += 1  # still in the journal: a restart stores it again
            log.error("call record not held (%d in memory already), written here instead: %s",
                      len(self.held), held.cdr)  # fmt: skip
        else:
            self.held.append(held)
        if not self.retry.failing:
            self.retry.failed(self._now())
            self._wake()
        self._trouble()

    async def write_back(self) -> None:
        """Write the held records, oldest first, until the store refuses one."""
        while self.held:
            error = await self.write(self.held[0])
            if error:
                self.error = error
                self.retry.failed(self._now())
                return
            self.held.popleft()
        self.retry.succeeded()
        if self.error:
            log.warning("call records: the store takes them again; none held")
            self.error = ""

    def on_conflict(self, conflict: RecordConflict) -> None:
        self.conflicts += 1
        self._trouble()
