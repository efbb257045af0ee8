"""The store: one SQLite file through aiosqlite, the one database object the
repositories work over (customers here and in :mod:`cti.store.customers`, call records
in :mod:`cti.store.calls`, script runs and the outbox in :mod:`cti.store.script_runs`,
campaigns in :mod:`cti.store.campaigns`).

WAL mode, ``synchronous=NORMAL``, foreign keys on; the schema comes from the numbered
migrations of :mod:`cti.store.migrations`. One connection per store; an asyncio lock keeps each
write transaction whole when several tasks write at once. Every database call goes
through :func:`_io`, inside :func:`cti.clock.real_io`, and every sqlite failure comes out
as a :class:`~cti.errors.StoreError` that says what was being done and where.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import aiosqlite

from cti.clock import real_io
from cti.errors import StoreError
from cti.models import Customer, Interaction
from cti.store.calls import CallRecords
from cti.store.customers import CustomerCard, CustomerRows
from cti.store.customers_bulk import finish_bulk_load
from cti.store.customers_read import (
    CUSTOMERS_BY_IDS_SQL,
    FIND_BY_NUMBER_SQL,
    RECENT_INTERACTIONS_SQL,
    CustomerReader,
    customers_from_rows,
    interactions_from_rows,
)
from cti.store.migrations import MIGRATIONS, Migration
from cti.store.script_runs import ScriptRunRows

T = TypeVar("T")

#: The migration that adds the search keys the program fills (see :meth:`Store.open`).
_SEARCH_MIGRATION = 7

_PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON")

_CREATE_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""

_INSERT_INTERACTION = (
    "INSERT INTO interactions"
    " (customer_id, at, channel, disposition, agent_id, note, call_id, script_answers)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


async def _io(doing: str, op: Callable[[], Awaitable[T]], lock: asyncio.Lock | None = None) -> T:
    """Await one database operation as real I/O, under ``lock`` if given.

    sqlite errors (and aiosqlite's "connection closed") become :class:`StoreError`.
    """
    async with real_io():
        try:
            async with lock if lock is not None else contextlib.nullcontext():
                return await op()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"{doing}: {exc}") from exc


class Store:
    """The one connection to the database, its transactions, and the repositories over it:
    customers, their phones and interactions here; :attr:`calls`, :attr:`script_runs`.

    Open with ``await Store.open(path)`` and close with ``await store.close()``, or use
    ``async with await Store.open(path) as store``. Not closing leaves a thread behind.
    """

    def __init__(self, path: Path, connection: aiosqlite.Connection) -> None:
        """Wrap an open connection; use :meth:`open` instead."""
        self.path = path
        self._connection: aiosqlite.Connection | None = connection
        self._write_lock = asyncio.Lock()
        self.calls = CallRecords(self)
        """The call records and their conflicts (:mod:`cti.store.calls`)."""
        self.script_runs = ScriptRunRows(self)
        """What calls' scripts recorded, and the outbox (:mod:`cti.store.script_runs`)."""
        self.reader: CustomerReader | None = None
        """The screen-pop's read path on the caller's thread (:mod:`cti.store.customers_read`);
        None for an in-memory store."""

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, migrations: Sequence[Migration] = MIGRATIONS
    ) -> Self:
        """Open (creating it and its folders if need be) and migrate the store at ``path``.

        ``":memory:"`` opens a private in-memory store.
        """
        db_path = _store_path(path)
        connection = await _io(
            f"opening the store at {db_path}",
            lambda: aiosqlite.connect(db_path, isolation_level=None),
        )
        store = cls(db_path, connection)
        try:
            for pragma in _PRAGMAS:
                await store.fetch("setting up the connection", pragma)
            await store._migrate(migrations)
            if any(number == _SEARCH_MIGRATION for number, _ in migrations):
                await store._index_for_search()
            await finish_bulk_load(store)
            if str(path) != ":memory:":
                store.reader = CustomerReader.open(db_path)
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Close the store after the writes under way; closing twice is harmless."""
        connection, self._connection = self._connection, None
        reader, self.reader = self.reader, None
        if reader is not None:
            reader.close()
        if connection is not None:
            await _io(f"closing the store at {self.path}", connection.close, self._write_lock)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- customers ------------------------------------------------------------------

    async def add_customers(self, customers: Iterable[Customer]) -> int:
        """Insert customers with their phones and e-mails in one transaction; return how
        many (see :meth:`cti.store.customers.CustomerRows.add_customers`).

        Phones are stored as given: their ``e164`` must already be normalised. A
        duplicate id fails the whole batch.
        """
        return await CustomerRows(self).add_customers(customers)

    async def customer_count(self) -> int:
        """How many customers the store holds."""
        rows = await self.fetch("counting customers", "SELECT count(*) FROM customers")
        return int(rows[0][0])

    async def find_by_number(self, e164: str) -> list[Customer]:
        """Every customer with a phone of this E.164 number, each with all its phones."""
        if self.reader is not None:
            found = self.reader.find_by_number(e164)
            if found is not None:
                return found
        rows = await self.fetch(
            f"looking up customers by number {e164!r}", FIND_BY_NUMBER_SQL, (e164,)
        )
        return customers_from_rows(rows)

    async def get_customer(self, customer_id: int) -> Customer | None:
        """The customer with this id, or None."""
        found = await self._customers_by_ids(f"reading customer {customer_id}", [customer_id])
        return found[0] if found else None

    async def customers_by_ids(self, ids: Sequence[int]) -> list[Customer]:
        """The customers with these ids, by id (missing ids are left out)."""
        return await self._customers_by_ids(f"reading {len(ids)} customers", ids)

    async def customer_card(self, customer_id: int) -> CustomerCard:
        """History, open service items and value inputs for the screen-pop."""
        if self.reader is not None:
            card = self.reader.card(customer_id)
            if card is not None:
                return card
        return await CustomerRows(self).card(customer_id)

    async def sample_customers(self, n: int, seed: int) -> list[Customer]:
        """``min(n, count)`` distinct customers drawn at random, the same for a seed."""
        rows = await self.fetch("listing customer ids", "SELECT id FROM customers ORDER BY id")
        ids = [int(row[0]) for row in rows]
        chosen = random.Random(seed).sample(ids, min(n, len(ids)))
        by_id = {
            c.id: c
            for c in await self._customers_by_ids(f"reading {len(chosen)} customers", chosen)
        }
        return [by_id[i] for i in chosen]

    # -- interactions ---------------------------------------------------------------

    async def add_interaction(self, customer_id: int, interaction: Interaction) -> None:
        """Record one past contact with a customer (who must exist)."""
        await self.add_interactions([(customer_id, interaction)])

    async def add_interactions(self, interactions: Iterable[tuple[int, Interaction]]) -> int:
        """Record past contacts as ``(customer_id, interaction)`` in one transaction."""
        rows = [
            (
                cid,
                i.at,
                i.channel,
                i.disposition,
                i.agent_id,
                i.note,
                i.call_id,
                json.dumps(i.script_answers, ensure_ascii=False),
            )
            for cid, i in interactions
        ]
        ids = sorted({row[0] for row in rows})
        doing = (
            f"adding interactions for customer {ids[0]}"
            if len(ids) == 1
            else (f"adding {len(rows)} interactions for {len(ids)} customers")
        )

        async def insert(connection: aiosqlite.Connection) -> None:
            await connection.executemany(_INSERT_INTERACTION, rows)

        await self.write(doing, insert)
        return len(rows)

    async def recent_interactions(
        self, customer_id: int, limit: int = 5
    ) -> tuple[Interaction, ...]:
        """A customer's latest ``limit`` interactions, newest first."""
        rows = await self.fetch(
            f"reading the interactions of customer {customer_id}",
            RECENT_INTERACTIONS_SQL,
            (customer_id, limit),
        )
        return interactions_from_rows(rows)

    # -- plumbing -------------------------------------------------------------------

    def _open_connection(self, doing: str) -> aiosqlite.Connection:
        if self._connection is None:
            raise StoreError(f"{doing}: the store at {self.path} is closed")
        return self._connection

    async def fetch(self, doing: str, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Run one statement and return its rows. It waits for a transaction under way:
        on the one connection it would see that transaction's rows before they are
        committed (or rolled back)."""
        connection = self._open_connection(doing)
        rows = await _io(
            f"{doing} in the store at {self.path}",
            lambda: connection.execute_fetchall(sql, params),
            self._write_lock,
        )
        return list(rows)

    async def write(self, doing: str, body: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``body`` as one transaction, alone among this store's writers."""
        connection = self._open_connection(doing)

        async def transaction() -> T:
            await connection.execute("BEGIN IMMEDIATE")
            try:
                result = await body(connection)
                await connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await connection.rollback()
                raise
            return result

        return await _io(f"{doing} in the store at {self.path}", transaction, self._write_lock)

    async def write_apart(self, doing: str, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` in a thread on a plain sqlite3 connection of its own to the store's
        file (autocommit: ``body`` begins and commits; closed after, which rolls back what
        it left open), alone among this store's writers. For work in SQLite's C code that
        may run in two threads at once (the GIL released), where the store's one
        connection would run it in turn: the build after a large import."""

        def run() -> T:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                connection.execute("PRAGMA synchronous = NORMAL")
                return body(connection)
            finally:
                connection.close()

        async def op() -> T:
            return await asyncio.to_thread(run)

        self._open_connection(doing)
        return await _io(f"{doing} in the store at {self.path}", op, self._write_lock)

    async def _customers_by_ids(self, doing: str, ids: Sequence[int]) -> list[Customer]:
        if not ids:
            return []
        rows = await self.fetch(doing, CUSTOMERS_BY_IDS_SQL, (json.dumps(list(ids)),))
        return customers_from_rows(rows)

    async def _index_for_search(self) -> None:
        """Give customers stored before the search migration their search keys."""
        rows = await self.fetch(
            "looking for customers not indexed for search",
            "SELECT 1 FROM customers WHERE name_key IS NULL LIMIT 1",
        )
        if rows:
            await CustomerRows(self).reindex(only_missing=True)

    async def _migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply, each in its own transaction, the migrations not applied yet."""
        numbers = [number for number, _ in migrations]
        if numbers != sorted(set(numbers)) or any(number < 1 for number in numbers):
            raise StoreError(f"migrations must be numbered upwards from 1; got {numbers}")

        async def create_version_table(connection: aiosqlite.Connection) -> None:
            await connection.execute(_CREATE_SCHEMA_VERSION)

        await self.write("creating the schema_version table", create_version_table)
        rows = await self.fetch("reading the schema version", "SELECT version FROM schema_version")
        applied = {int(row[0]) for row in rows}
        newest_known = max(numbers, default=0)
        if applied and max(applied) > newest_known:
            raise StoreError(
                f"the store at {self.path} has schema version {max(applied)}, newer than"
                f" this program knows ({newest_known}); open it with a newer CTI Desk"
            )
        for number, sql in migrations:
            if number in applied:
                continue

            async def apply(
                connection: aiosqlite.Connection, number: int = number, sql: str = sql
            ) -> None:
                for statement in _statements(sql):
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (number,)
                )

            await self.write(f"applying migration {number}", apply)


def _store_path(path: str | os.PathLike[str]) -> Path:
    """``path`` checked (a file, not a folder) with its folders made (once, at open)."""
    db_path = Path(path)
    if db_path.is_dir():
        raise StoreError(
            f"the store path {db_path} is a folder; give a file in it, such as {db_path / 'cti.db'}"
        )
    if str(path) != ":memory:":
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"creating the folder of the store at {db_path}: {exc}") from exc
    return db_path


def _statements(script: str) -> list[str]:
    """Split an SQL script into its statements (semicolons in strings are kept)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        statements.append(pending)  # unterminated: let sqlite report it
    return statements
