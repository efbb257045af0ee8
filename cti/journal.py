"""The engine's write-ahead journal: every router input, in SQLite, before it is applied.

The router is deterministic and sans-I/O, and every change of routing state enters
through :meth:`cti.service.EngineService.route`. So the sequence of ``(engine time,
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
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from pydantic import ValidationError

from cti.clock import real_io
from cti.errors import StoreError
from cti.migrations import JOURNAL_MIGRATIONS, Migration
from queue_engine.inputs import INPUT, AnyInput, TimePasses

log = logging.getLogger(__name__)

_APPEND = "INSERT INTO router_journal (seq, at, input) VALUES (?, ?, ?)"
_REPLAY = "SELECT seq, at, input FROM router_journal WHERE seq > ? ORDER BY seq LIMIT ?"
_REPLAY_BATCH = 2000
_CUT_SEQ = "cut_seq"


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

        Committed when this returns (one WAL append; see the module docstring).
        """
        text = INPUT.dump_json(event).decode()
        seq = self._last_seq + 1
        with self._doing(f"journaling a {event.kind} input"):
            self._open().execute(_APPEND, (seq, at, text))
        self._last_seq = seq
        self._last_at = at if self._last_at is None else max(self._last_at, at)
        self._appended_since_checkpoint += 1
        return seq

    def remember_line(self, call_id: str, line: str) -> None:
        """Keep which line carries ``call_id``, for :meth:`lines` after a restart."""
        with self._doing(f"keeping the line of call {call_id!r}"):
            self._open().execute(
                "INSERT OR REPLACE INTO call_lines (call_id, line) VALUES (?, ?)", (call_id, line)
            )

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
                return
            for seq, at, text in rows:
                after = seq
                try:
                    event = INPUT.validate_json(text)
                    when = float(at)
                except (ValidationError, TypeError, ValueError) as exc:
                    self.bad_rows.append(seq)
                    reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc
                    log.error(
                        "journal %s: row %d skipped, it does not decode: %s", self.path, seq, reason
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
                connection.execute(
                    "INSERT OR REPLACE INTO engine_meta (key, value) VALUES (?, ?)",
                    (_CUT_SEQ, str(self._last_seq)),
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        self._cut_seq = self._last_seq
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
