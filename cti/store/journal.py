"""The engine's write-ahead journal: every router input, in SQLite, before it is applied.

The router is deterministic and sans-I/O, and every change of routing state enters
through :meth:`cti.engine.service.EngineService.route`. So the sequence of ``(engine time,
input)`` pairs *is* the router's state: the service appends each input here before
the router sees it, and after a crash a router built from the same configuration
replays the journal to exactly the state the old one had (event sourcing). The
journal stays generic: it stores any :mod:`queue_engine.inputs` value through
:data:`queue_engine.inputs.INPUT` and never looks at the kind of an input, except to
tell configuration from traffic when it is cut (see :meth:`Journal.cut`).

Where and how
    A SQLite file of its own beside the store (:func:`journal_path_for`), written by one
    stdlib ``sqlite3`` connection, synchronously, on the event-loop thread, in WAL mode
    with ``synchronous=NORMAL``: an append is one small WAL write, about 13 us median and
    50 us at the 99th percentile for a known caller's arrival (the largest input) on
    the reference machine (``benchmarks/bench_journal.py``), so the loop is not held
    up. A committed append survives the engine being killed (``kill -9``): it is in the
    operating system once ``append`` returns. It may not survive a power cut or a
    kernel crash; ``synchronous="FULL"`` adds an fsync per input for that (4 to 8 ms
    each on the reference machine's disk: too slow for the loop thread). The WAL is
    never checkpointed by an append (that would fsync on the loop);
    :meth:`Journal.checkpoint` does it from a worker thread, which the service calls
    every thousand appends.

    Why not the store's own file: the store writes through aiosqlite, whose
    transactions hold the file's write lock across turns of the event loop
    (``BEGIN IMMEDIATE`` ... ``await`` ... ``COMMIT``). An append on the loop thread to
    the same file could then wait for a lock whose holder needs the loop to let go of
    it. With a file each, each has one writer and an append never waits for a lock.
    Nothing needs both files in one transaction: the journal is written first, and the
    records in the store are derived from it again after a crash (idempotently).

Disk full (or any failed write)
    Routing goes on from memory. An append or a remembered line that cannot be written
    is held, in order, in a bounded in-memory spool (:attr:`Journal.spooled`); while
    anything is held, later writes join it behind, so the order on disk stays that of
    the router. :meth:`Journal.write_back` writes the spool out (the service retries
    with :class:`~cti.clock.RetryBackoff`). If the spool is full, traffic inputs are lost from the
    journal (configuration inputs are still held): :attr:`Journal.lost` says which (how
    many, their ``seq`` and time range, their calls), is logged, and is kept in the file
    when it is written back, so a restart reports that its replay is incomplete
    (:attr:`RecoveryReport.lost_inputs`) until the next cut. See ``docs/durability.md``.

Bad rows
    A row that does not decode (corrupt JSON, a kind this program does not know) does
    not stop a restart: :meth:`Journal.replay` logs it with its ``seq``, skips it, and
    lists it in :attr:`Journal.bad_rows`.

Cutting (compaction)
    The journal is cut only when the center is empty: no call the router has not
    finished (waiting, offered, talking, in wrap-up, or a scheduled callback), no agent
    logged in, and every call record it produced safely in the store. Then a router
    built from the configuration plus the journal's *configuration* inputs is the same,
    as far as calls, agents and records go, as the live one, so everything else can go
    (:meth:`Journal.cut`). The service tries after a restart and then once per status
    interval. Soft state is not kept across a cut (what the router learned: average
    handle time, per-agent counters, the round-robin position, its random generator),
    so a router recovered after a cut starts those afresh, as any restart of a closed
    center would. A center that never empties never cuts its journal; its replay time
    grows with the inputs since the last cut: about 40 to 80 us of replay per call on
    the reference machine (``benchmarks/bench_journal.py``), so a minute per million
    calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from pydantic import ValidationError

from cti import log_limits
from cti.clock import real_io
from cti.errors import StoreError
from cti.store.migrations import JOURNAL_MIGRATIONS, Migration
from queue_engine.inputs import INPUT, AnyInput, TimePasses

log = logging.getLogger(__name__)

_APPEND = "INSERT INTO router_journal (seq, at, input) VALUES (?, ?, ?)"
_REPLAY = "SELECT seq, at, input FROM router_journal WHERE seq > ? ORDER BY seq LIMIT ?"
_REMEMBER_LINE = "INSERT OR REPLACE INTO call_lines (call_id, line) VALUES (?, ?)"
_SET_META = "INSERT OR REPLACE INTO engine_meta (key, value) VALUES (?, ?)"
_REPLAY_BATCH = 2000
_CUT_SEQ = "cut_seq"
_LOST = "lost_inputs"
#: Undecodable rows logged one by one in a replay; the rest are counted in one line.
_BAD_ROWS_LOGGED = 20
#: Items (inputs and remembered lines) the spool holds while the journal cannot be written.
SPOOL_LIMIT = 100_000
#: Items written back per transaction (each a turn of the loop).
_WRITE_BACK_BATCH = 5000
#: Call ids of lost inputs kept to say which calls a restart cannot bring back.
_LOST_CALLS_KEPT = 1000


@dataclass
class LostInputs:
    """Inputs the journal could not keep (its spool was full): the router applied them,
    but a replay of this journal will not have them."""

    count: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    calls: list[str] = field(default_factory=list)
    """The calls they named (the first thousand)."""

    def add(self, seq: int, at: float, event: AnyInput) -> None:
        if self.count == 0:
            self.first_seq, self.first_at = seq, at
        self.count += 1
        self.last_seq, self.last_at = seq, at
        call_id = getattr(event, "call_id", None)
        fits = len(self.calls) < _LOST_CALLS_KEPT
        if fits and isinstance(call_id, str) and call_id not in self.calls:
            self.calls.append(call_id)

    def __str__(self) -> str:
        more = "" if len(self.calls) < _LOST_CALLS_KEPT else " and more"
        return (
            f"{self.count} inputs (seq {self.first_seq} to {self.last_seq}, engine time"
            f" {self.first_at:.3f} to {self.last_at:.3f}) of calls {', '.join(self.calls)}{more}"
        )


_Held = tuple[Literal["input"], int, float, str] | tuple[Literal["line"], str, str]


def journal_path_for(store_path: str | os.PathLike[str]) -> Path:
    """The journal file that goes with a store file: ``cti.db`` -> ``cti.journal.db``."""
    path = Path(store_path)
    return path.with_name(f"{path.stem}.journal{path.suffix or '.db'}")


def is_configuration(event: AnyInput) -> bool:
    """Whether ``event`` configures the router rather than carries traffic.

    An input that names no call and no agent (it has neither a ``call_id`` nor an
    ``agent_id`` field), other than the passing of time: a queue or an agent
    (re)configured. Such inputs outlive a cut of the journal. The rule is structural,
    so a new kind of input is classified without being listed here; when in doubt it
    errs towards keeping.
    """
    if isinstance(event, TimePasses):
        return False
    fields = type(event).model_fields
    return "call_id" not in fields and "agent_id" not in fields


class Journal:
    """The write-ahead journal of router inputs (see the module docstring).

    Open with :meth:`open`, close with :meth:`close` (or use it as a context manager).
    Every method but :meth:`checkpoint` is synchronous and meant for the event-loop
    thread. Failures come out as :class:`~cti.errors.StoreError`.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        """Wrap an open, migrated connection; use :meth:`open` instead."""
        self.path = path
        self._connection: sqlite3.Connection | None = connection
        self.bad_rows: list[int] = []
        """The ``seq`` of every row the last :meth:`replay` skipped as undecodable."""
        self._last_seq = 0
        self._last_at: float | None = None
        self._cut_seq = 0
        self._appended_since_checkpoint = 0
        self.spool_limit = SPOOL_LIMIT
        """Items held in memory at most while the journal cannot be written."""
        self._spool: deque[_Held] = deque()
        self.lost = LostInputs()
        """Inputs the full spool could not hold, since the last cut."""
        self.write_error: str = ""
        """Why the last write failed ('' once everything held is written)."""
        self.stored_lost: LostInputs | None = None
        """Lost inputs a previous run recorded in the file (see :meth:`replay`)."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        migrations: tuple[Migration, ...] = JOURNAL_MIGRATIONS,
    ) -> Self:
        """Open (creating it and its folder if need be) and migrate the journal at ``path``."""
        db_path = Path(path)
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(db_path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"opening the journal at {db_path}: {exc}") from exc
        journal = cls(db_path, connection)
        try:
            with journal._doing("setting up the journal"):
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute(f"PRAGMA synchronous = {synchronous}")
                # Appends never checkpoint (an fsync on the loop thread); see checkpoint().
                connection.execute("PRAGMA wal_autocheckpoint = 0")
            journal._migrate(migrations)
            with journal._doing("reading the journal's end"):
                (seq,) = connection.execute("SELECT max(seq) FROM router_journal").fetchone()
                (at,) = connection.execute(
                    "SELECT max(at) FROM router_journal WHERE typeof(at) IN ('real', 'integer')"
                ).fetchone()
                cut = connection.execute(
                    "SELECT value FROM engine_meta WHERE key = ?", (_CUT_SEQ,)
                ).fetchone()
            journal._cut_seq = int(cut[0]) if cut else 0
            # seq never goes back, not even past rows a cut removed.
            journal._last_seq = max(int(seq or 0), journal._cut_seq)
            journal._last_at = None if at is None else float(at)
            with journal._doing("reading what the journal lost"):
                lost = connection.execute(
                    "SELECT value FROM engine_meta WHERE key = ?", (_LOST,)
                ).fetchone()
            if lost:
                journal.stored_lost = _lost_from_json(str(lost[0]))
        except BaseException:
            journal.close()
            raise
        return journal

    def close(self) -> None:
        """Close the journal; closing twice is harmless."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------

    def append(self, at: float, event: AnyInput) -> int:
        """Journal ``event`` as handled at engine time ``at``; return its ``seq``.

        Committed when this returns (one WAL append; see the module docstring), or held
        in the spool if the journal cannot be written (:attr:`spooled`; lost, and listed
        in :attr:`lost`, if the spool is full). Raises :class:`StoreError` only if the
        journal is closed.
        """
        text = INPUT.dump_json(event).decode()
        seq = self._last_seq + 1
        connection = self._open()
        if not self._spool:
            try:
                connection.execute(_APPEND, (seq, at, text))
            except sqlite3.Error as exc:
                self._start_spooling(f"journaling a {event.kind} input", exc)
            else:
                self._appended(seq, at)
                return seq
        if len(self._spool) < self.spool_limit or is_configuration(event):
            self._spool.append(("input", seq, at, text))
        else:
            if self.lost.count == 0:
                log.error(
                    "journal %s: %d items held in memory, no room for more: from seq %d on,"
                    " inputs are routed but not journaled; a restart before the journal is"
                    " cut will not bring their calls back",
                    self.path,
                    len(self._spool),
                    seq,
                )
            self.lost.add(seq, at, event)
        self._appended(seq, at)
        return seq

    def remember_line(self, call_id: str, line: str) -> None:
        """Keep which line carries ``call_id``, for :meth:`lines` after a restart."""
        connection = self._open()
        if not self._spool:
            try:
                connection.execute(_REMEMBER_LINE, (call_id, line))
                return
            except sqlite3.Error as exc:
                self._start_spooling(f"keeping the line of call {call_id!r}", exc)
        if len(self._spool) < self.spool_limit:
            self._spool.append(("line", call_id, line))
        else:
            log_limits.error(log, "journal %s: line of call %r not kept", self.path, call_id)

    @property
    def spooled(self) -> int:
        """Inputs and lines held in memory, not yet written (the journal could not be)."""
        return len(self._spool)

    def write_back(self) -> bool:
        """Write what the spool holds, oldest first, a batch per transaction.

        Returns True once nothing is held (and what was lost, if anything, is recorded in
        the file); False if a write failed again (logged, rate-limited). Synchronous, on
        the loop thread, like :meth:`append`; call it until it returns True.
        """
        connection = self._open()
        while self._spool:
            batch = [self._spool[i] for i in range(min(_WRITE_BACK_BATCH, len(self._spool)))]
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    for item in batch:
                        if item[0] == "input":
                            connection.execute(_APPEND, item[1:])
                        else:
                            connection.execute(_REMEMBER_LINE, item[1:])
                    if self.lost.count and len(batch) == len(self._spool):
                        connection.execute(_SET_META, (_LOST, _lost_to_json(self.lost)))
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self.write_error = str(exc)
                log_limits.error(log, "journal %s: still not written: %s", self.path, exc)
                return False
            for _ in batch:
                self._spool.popleft()
        if self.write_error:
            log.warning("journal %s: written again; nothing held in memory", self.path)
            self.write_error = ""
        return True

    def _start_spooling(self, doing: str, exc: sqlite3.Error) -> None:
        self.write_error = str(exc)
        log.error(
            "journal %s: %s failed: %s; routing goes on, inputs are held in memory (up to %d)"
            " and written when the journal can be written again",
            self.path,
            doing,
            exc,
            self.spool_limit,
        )

    def _appended(self, seq: int, at: float) -> None:
        self._last_seq = seq
        self._last_at = at if self._last_at is None else max(self._last_at, at)
        self._appended_since_checkpoint += 1

    # -- reading --------------------------------------------------------------------

    def replay(self) -> Iterator[tuple[float, AnyInput]]:
        """Every journaled input, oldest first, as ``(at, input)``; bad rows skipped.

        Each skipped row is logged with its ``seq`` and listed in :attr:`bad_rows`.
        Rows are read in batches, so a long journal is not held in memory at once.
        """
        self.bad_rows = []
        after = 0
        while True:
            with self._doing("reading the journal"):
                rows = self._open().execute(_REPLAY, (after, _REPLAY_BATCH)).fetchall()
            if not rows:
                if len(self.bad_rows) > _BAD_ROWS_LOGGED:
                    log.error(
                        "journal %s: %d rows skipped in all (the first %d logged): seq %s",
                        *(self.path, len(self.bad_rows), _BAD_ROWS_LOGGED, self.bad_rows),
                    )
                return
            for seq, at, text in rows:
                after = seq
                try:
                    event = INPUT.validate_json(text)
                    when = float(at)
                except (ValidationError, TypeError, ValueError) as exc:
                    self.bad_rows.append(seq)
                    reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc
                    if len(self.bad_rows) > _BAD_ROWS_LOGGED:
                        continue  # counted at the end
                    log.error(
                        "journal %s: row %d skipped, it does not decode: %s",
                        self.path,
                        seq,
                        reason,
                    )
                    continue
                yield when, event

    def lines(self) -> dict[str, str]:
        """Call id -> line name, for every call whose line was remembered since the last cut."""
        with self._doing("reading the lines of calls"):
            rows = self._open().execute("SELECT call_id, line FROM call_lines").fetchall()
        return {str(call_id): str(line) for call_id, line in rows}

    @property
    def last_at(self) -> float | None:
        """The latest engine time journaled (None if the journal is empty)."""
        return self._last_at

    def __len__(self) -> int:
        with self._doing("counting the journal's rows"):
            (count,) = self._open().execute("SELECT count(*) FROM router_journal").fetchone()
        return int(count)

    # -- cutting and checkpointing --------------------------------------------------

    @property
    def has_uncut_rows(self) -> bool:
        """Whether inputs were journaled since the last cut (so a cut could remove any)."""
        return self._last_seq > self._cut_seq

    def cut(self) -> int:
        """Remove every input but configuration ones, and every remembered line.

        Call only when the center is empty and every call record the journal produced
        is stored (see the module docstring): the journal then replays to a router with
        this configuration, no calls, and every agent logged out. Rows that no longer
        decode go too (they were skipped by every replay). Returns how many rows went.
        """
        if self._spool:
            raise StoreError(f"the journal at {self.path} is not cut while inputs wait in memory")
        doomed: list[tuple[int]] = []
        after = self._cut_seq
        with self._doing("reading the journal to cut it"):
            rows = (
                self._open()
                .execute(
                    "SELECT seq, input FROM router_journal WHERE seq > ? ORDER BY seq", (after,)
                )
                .fetchall()
            )
        for seq, text in rows:
            try:
                keep = is_configuration(INPUT.validate_json(text))
            except (ValidationError, TypeError, ValueError):
                keep = False
            if not keep:
                doomed.append((seq,))
        connection = self._open()
        with self._doing("cutting the journal"):
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany("DELETE FROM router_journal WHERE seq = ?", doomed)
                connection.execute("DELETE FROM call_lines")
                connection.execute(_SET_META, (_CUT_SEQ, str(self._last_seq)))
                connection.execute("DELETE FROM engine_meta WHERE key = ?", (_LOST,))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        self._cut_seq = self._last_seq
        # What was lost is of calls now over: the journal tells the whole story again.
        self.lost, self.stored_lost = LostInputs(), None
        return len(doomed)

    @property
    def appended_since_checkpoint(self) -> int:
        return self._appended_since_checkpoint

    async def checkpoint(self) -> None:
        """Copy the WAL into the journal file from a worker thread (fsyncs off the loop).

        A passive checkpoint: it never waits for, nor holds up, the appends.
        """
        self._appended_since_checkpoint = 0

        def run() -> None:
            connection = sqlite3.connect(self.path, isolation_level=None)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                connection.close()

        async with real_io():
            try:
                await asyncio.to_thread(run)
            except sqlite3.Error as exc:
                raise StoreError(f"checkpointing the journal at {self.path}: {exc}") from exc

    # -- plumbing -------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError(f"the journal at {self.path} is closed")
        return self._connection

    @contextlib.contextmanager
    def _doing(self, doing: str) -> Iterator[None]:
        """Turn sqlite failures inside into a StoreError that says what was being done."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{doing} in the journal at {self.path}: {exc}") from exc

    def _migrate(self, migrations: tuple[Migration, ...]) -> None:
        connection = self._open()
        with self._doing("reading the journal's schema version"):
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY,"
                " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            applied = {int(v) for (v,) in connection.execute("SELECT version FROM schema_version")}
        newest = max((number for number, _ in migrations), default=0)
        if applied and max(applied) > newest:
            raise StoreError(
                f"the journal at {self.path} has schema version {max(applied)}, newer than"
                f" this program knows ({newest}); open it with a newer CTI Desk"
            )
        for number, sql in migrations:
            if number in applied:
                continue
            with self._doing(f"applying journal migration {number}"):
                try:
                    connection.executescript(
                        f"BEGIN IMMEDIATE; {sql};"
                        f" INSERT INTO schema_version (version) VALUES ({int(number)}); COMMIT;"
                    )
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise


@dataclass
class RecoveryReport:
    """What the engine found in its journal when it started (and did about it)."""

    inputs: int = 0
    """Inputs replayed."""
    refused: int = 0
    """Of those, refused by the router (as they were when first handled)."""
    failed: int = 0
    """Of those, that raised an unexpected error (logged)."""
    bad_rows: list[int] = field(default_factory=list)
    """The ``seq`` of rows that did not decode and were skipped."""
    records_restored: int = 0
    """Call records the replay produced that the store did not have."""
    adopted: int = 0
    """Unfinished calls a line still had."""
    dropped: int = 0
    """Unfinished calls no line had any more: routed as hung up by the caller."""
    cut: int = 0
    """Rows cut from the journal since (the center was empty)."""
    record_conflicts: int = 0
    """Records stored again that met a different record under their call id (kept
    under a suffixed id: see :meth:`cti.store.calls.CallRecords.record_calls`)."""
    lost_inputs: str = ""
    """Inputs the journal lost before this start (its spool was full; see
    :class:`LostInputs`): the replay is incomplete for their calls. '' if none."""


def _lost_to_json(lost: LostInputs) -> str:
    return json.dumps(dataclasses.asdict(lost))


def _lost_from_json(text: str) -> LostInputs:
    try:
        return LostInputs(**json.loads(text))
    except (ValueError, TypeError) as exc:
        return LostInputs(count=-1, calls=[f"(unreadable record of lost inputs: {exc})"])
