"""New customers written in bulk (a CSV import's new rows): one transaction per batch,
prepared statements over ready tuples, the search keys computed once per customer (the
CJK grams a column of the customer's row), the score written with the row, the search
and gram indexes filled by one statement each per batch.

The transaction holds a row of ``customer_bulk_load`` (migration 12), so the per-row
triggers (the search index, the customer generation) skip its rows; it fills the index
for its id range and bumps the generation once. Nobody else sees that row: it is
deleted before the commit.

A load large beside the base (:func:`deferred_indexes`) drops the name and e-mail
indexes first (not the phones': merging looks numbers up) and builds them after, with
the search and gram indexes rebuilt once. It drops the per-row triggers too (kept in
``customer_bulk_triggers``, migration 14, and created again from there): even skipping
the load's rows, each ran for every row written: some 30% of the writing. Meanwhile a
customer another connection adds reaches the search index with the rebuild and bumps
the generation with the next batch (each bumps it, and so does the end). A row of
``customer_bulk_pending`` (migration 13) says so meanwhile, committed with the drop: a
load that died half-way is finished by the next
:meth:`~cti.store.database.Store.open` (:func:`finish_bulk_load`). The loading process
holds a lock on a file beside the store (``<store>-bulk``) so that another process
opening the store meanwhile leaves its load alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

import aiosqlite

from cti.errors import StoreError

if TYPE_CHECKING:
    from cti.store.database import Store

#: The score columns first: each row takes the batch's score as ?1-?3 (bound once a
#: statement), and its own values after by plain ``?`` (numbered on from the largest).
_INSERT = (
    "INSERT INTO customers (value, segment, scored_at, name, language, time_zone, email,"
    " company, address, owner, name_key, search_text, grams) VALUES"
)
_INSERT_PHONE = "INSERT INTO customer_phones (customer_id, raw, e164, kind, extension) VALUES"
_INSERT_EMAIL = "INSERT INTO customer_emails (customer_id, position, email, email_key) VALUES"
#: The most parameters one statement of :func:`_insert_rows` takes (SQLite's limit
#: before 3.32; 32,766 since).
MAX_PARAMETERS = 999
_flat = itertools.chain.from_iterable  # rows' values one after the other, for one statement
_INDEX = (
    "INSERT INTO customer_search (rowid, search_text)"
    " SELECT id, search_text FROM customers WHERE id BETWEEN ? AND ?"
    " AND NOT EXISTS (SELECT 1 FROM customer_bulk_pending)"  # rebuilt at the end
)
_INDEX_GRAMS = (
    "INSERT INTO customer_grams (rowid, grams)"
    " SELECT id, grams FROM customers WHERE id BETWEEN ? AND ? AND grams <> ''"
    " AND NOT EXISTS (SELECT 1 FROM customer_bulk_pending)"  # rebuilt at the end
)
#: The indexes a large load drops and builds after it, with the statements that make them.
DEFERRED_INDEXES = {
    "idx_customers_name_key": "CREATE INDEX IF NOT EXISTS idx_customers_name_key"
    " ON customers (name_key)",
    "idx_customer_emails_key": "CREATE INDEX IF NOT EXISTS idx_customer_emails_key"
    " ON customer_emails (email_key)",
}
#: The per-row triggers a large load drops with them (migrations 2, 12 and 15): the
#: insert triggers, and the search and gram indexes' update and delete triggers, whose
#: 'delete' of a customer's old text from an index that never had it (one loaded
#: earlier in the same load: the index is rebuilt at the end) FTS5 takes for a corrupt
#: index, stopping the import ("database disk image is malformed").
DEFERRED_TRIGGERS = (
    "customer_search_insert",
    "customer_search_update",
    "customer_search_delete",
    "customer_grams_insert",
    "customer_grams_update",
    "customer_grams_delete",
    "customer_generation_customer_insert",
    "customer_generation_phone_insert",
    "customer_generation_email_insert",
)
#: A load defers the indexes when it brings at least this many rows, and more than the
#: base holds (building them again costs about what the base holds).
DEFER_MIN_ROWS = 50_000


#: The terms an FTS5 index rebuilt after a large load gathers in memory before it writes
#: them as a segment. With FTS5's default (:data:`FTS5_HASH_BYTES`) a rebuild writes a
#: small segment every few thousand customers and merges them again and again: the
#: search index's rebuild of 200,000 customers took 6.9 G instructions, 4.2 G with 16 MB;
#: its build of 1,000,000 customers 22.3 G with 16 MB, 16.1 G with 64 MB (fewer segments
#: to merge; the same at 200,000 and at 128 MB).
REBUILD_HASH_BYTES = 64 << 20
FTS5_HASH_BYTES = 1 << 20


#: The page cache of the writing connection during a bulk load (KiB, as ``cache_size``
#: takes a negative figure): the indexes' pages a batch touches stay in memory as the
#: base grows (the default 2 MB spills them from ~100,000 customers on).
BULK_CACHE_KIB = 256 * 1024


@contextlib.asynccontextmanager
async def bulk_settings(store: Store) -> AsyncIterator[None]:
    """The writing connection's page cache raised, temporary tables in memory and its
    foreign keys unchecked while the body runs; the previous settings back after.

    Unchecked: the load writes each number, address and gram in the transaction that
    writes its customer, under the id it has just given it (a check per row was a
    lookup of the customer for each, some 5 a customer); the merging writes customers
    it has read. Other connections (the engine's) check theirs as ever."""
    pragmas = ("cache_size", "temp_store", "foreign_keys")
    before = [(await store.fetch(f"reading {p}", f"PRAGMA {p}"))[0][0] for p in pragmas]
    await store.fetch("raising the cache for a bulk load", f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    await store.fetch("raising the cache for a bulk load", "PRAGMA temp_store = MEMORY")
    await store.fetch("unchecking foreign keys for a bulk load", "PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        with contextlib.suppress(StoreError):  # closed: the settings went with it
            for pragma, value in zip(pragmas, before, strict=True):
                await store.fetch(f"restoring {pragma}", f"PRAGMA {pragma} = {int(value)}")


class NewCustomer(NamedTuple):
    """A new customer ready to write, all but its id (given in the transaction). A
    tuple: made by the hundred thousand, and sent by the import's worker as one."""

    columns: tuple[object, ...]
    """name, language, time_zone, email, company, address, owner, name_key,
    search_text, grams (:func:`~cti.store.customers.gram_text`); the score is the
    batch's (:data:`NewScore`)."""
    phones: tuple[tuple[str, str, str, str], ...]
    """raw, e164, kind, extension."""
    emails: tuple[str, ...]
    """The primary address first."""


NewScore = tuple[float, str, float]
"""value, segment, scored_at: what every new customer of a batch is scored (one without
orders or contacts, scored at the import's time)."""


async def add_new_customers(
    store: Store, customers: Sequence[NewCustomer], score: NewScore
) -> list[int]:
    """Write new customers in one transaction, each scored ``score``; their ids, which
    follow the largest id."""

    async def insert(connection: aiosqlite.Connection) -> list[int]:
        cursor = await connection.execute("SELECT coalesce(max(id), 0) FROM customers")
        row = await cursor.fetchone()
        first = (int(row[0]) if row else 0) + 1
        ids = list(range(first, first + len(customers)))
        await connection.execute("INSERT INTO customer_bulk_load (id) VALUES (1)")
        # Each row takes the largest id plus one (an INTEGER PRIMARY KEY without
        # AUTOINCREMENT), in the order of the VALUES: the ids above, without a tuple
        # made per row to give them.
        await _insert_rows(connection, _INSERT, [c.columns for c in customers], score)
        cursor = await connection.execute("SELECT max(id) FROM customers")
        if await cursor.fetchone() != (ids[-1],):
            raise StoreError(f"new customers did not take the ids {first} to {ids[-1]}")
        await _insert_rows(
            connection,
            _INSERT_PHONE,
            [(cid, *p) for cid, c in zip(ids, customers, strict=True) for p in c.phones],
        )
        await _insert_rows(
            connection,
            _INSERT_EMAIL,
            [
                (cid, position, email, email.lower())
                for cid, c in zip(ids, customers, strict=True)
                for position, email in enumerate(c.emails)
            ],
        )
        await connection.execute(_INDEX, (first, ids[-1]))
        await connection.execute(_INDEX_GRAMS, (first, ids[-1]))
        await connection.execute("UPDATE customer_generation SET n = n + 1")
        await connection.execute("DELETE FROM customer_bulk_load")
        return ids

    if not customers:
        return []
    return await store.write(f"adding {len(customers)} new customers", insert)


async def _insert_rows(
    connection: aiosqlite.Connection,
    insert: str,
    rows: Sequence[tuple[object, ...]],
    shared: tuple[object, ...] = (),
) -> None:
    """``rows`` (of one width) inserted in their order by ``insert`` (``INSERT INTO t
    (columns) VALUES``), as many to a statement as :data:`MAX_PARAMETERS` allows: a
    statement's start and end (its cursors opened and closed, its halt) cost about
    as much as the row it inserts, and executemany runs one statement a row. The first
    columns take ``shared``, the same for every row: bound once a statement (?1, ?2...),
    not once a row (a text bind is some 800 instructions)."""
    if not rows:
        return
    width = len(rows[0])
    per = (MAX_PARAMETERS - len(shared)) // width
    one = "(" + ", ".join([f"?{i}" for i in range(1, len(shared) + 1)] + ["?"] * width) + ")"
    full = len(rows) - len(rows) % per
    if full:
        chunks = [(*shared, *_flat(rows[start : start + per])) for start in range(0, full, per)]
        await connection.executemany(f"{insert} {', '.join([one] * per)}", chunks)
    if full < len(rows):
        rest = (*shared, *_flat(rows[full:]))
        await connection.execute(f"{insert} {', '.join([one] * (len(rows) - full))}", rest)


@contextlib.asynccontextmanager
async def deferred_indexes(store: Store, rows: int) -> AsyncIterator[bool]:
    """The body runs with the indexes of :data:`DEFERRED_INDEXES` dropped and the search
    index left behind, if the load is large (``rows``: about how many it brings, see
    :data:`DEFER_MIN_ROWS`) and no other process is loading; it yields whether. They are
    built again after the body, whether it finished or failed."""
    lock = await _start_deferring(store, rows)
    try:
        yield lock is not None
    finally:
        if lock is not None:
            try:
                await _build_deferred(store)
            finally:
                lock.close()


async def finish_bulk_load(store: Store) -> bool:
    """Build what a load that died half-way left dropped (the store's open calls this);
    whether there was such a load. A load still running in another process is left."""
    tables = await store.fetch(
        "looking for a bulk load left half-way",
        "SELECT 1 FROM sqlite_master WHERE name = 'customer_bulk_pending'",
    )
    if not tables:
        return False  # an older schema (migrations given by hand)
    if not await store.fetch("looking for a bulk load", "SELECT 1 FROM customer_bulk_pending"):
        return False
    lock = _try_lock(store.path)
    if lock is None:
        return False
    try:
        await _build_deferred(store)
    finally:
        lock.close()
    return True


async def _start_deferring(store: Store, rows: int) -> IO[bytes] | None:
    if rows < DEFER_MIN_ROWS or str(store.path) == ":memory:":
        return None
    count = await store.fetch("counting customers", "SELECT count(*) FROM customers")
    if rows <= int(count[0][0]):
        return None
    lock = _try_lock(store.path)
    if lock is None:
        return None
    try:
        await store.write_apart("dropping the customer indexes for a bulk load", _drop)
    except BaseException:
        lock.close()
        raise
    return lock


def _drop(connection: sqlite3.Connection) -> None:
    connection.execute("BEGIN IMMEDIATE")
    connection.execute(
        "INSERT OR REPLACE INTO customer_bulk_pending (id, started_at) VALUES (1, ?)",
        (time.time(),),
    )
    for name in DEFERRED_INDEXES:
        connection.execute(f"DROP INDEX IF EXISTS {name}")
    if _has_table(connection, "customer_bulk_triggers"):
        names = ", ".join(f"'{name}'" for name in DEFERRED_TRIGGERS)
        connection.execute(
            "INSERT OR REPLACE INTO customer_bulk_triggers (name, sql)"
            f" SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({names})"
        )
        for name in DEFERRED_TRIGGERS:
            connection.execute(f"DROP TRIGGER IF EXISTS {name}")
    connection.execute("COMMIT")


async def _build_deferred(store: Store) -> None:
    path = store.path
    await store.write_apart(
        "building the customer indexes after a bulk load", lambda c: _build(c, path)
    )


def _build(connection: sqlite3.Connection, path: Path) -> None:
    """The indexes and triggers a large load dropped built again, in one transaction.

    The search index, the largest part, is built meanwhile in a thread of its own into a
    temporary database (:func:`_search_index_apart`) and its rows copied in: SQLite runs
    both builds with the GIL released, one on each core, where the import's worker is
    done and its core idle."""
    connection.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    connection.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(1) as pool:
        # Begun after BEGIN IMMEDIATE: no one else commits before this transaction does,
        # so it reads the customers this one sees.
        apart = pool.submit(_search_index_apart, path)
        try:
            _build_the_rest(connection)
        except BaseException:
            with contextlib.suppress(Exception):
                apart.result().close()
            raise
        built = apart.result()
    try:
        _copy_index(built, connection, "customer_search")
    finally:
        built.close()
    connection.execute("DELETE FROM customer_bulk_pending")
    connection.execute("COMMIT")


def _build_the_rest(connection: sqlite3.Connection) -> None:
    """What :func:`_build` builds in the store's file: the indexes, the triggers and the
    gram index."""
    for create in DEFERRED_INDEXES.values():
        connection.execute(create)
    if _has_table(connection, "customer_bulk_triggers"):
        for (create,) in connection.execute("SELECT sql FROM customer_bulk_triggers").fetchall():
            connection.execute(create)
        connection.execute("DELETE FROM customer_bulk_triggers")
        connection.execute("UPDATE customer_generation SET n = n + 1")
    if _has_table(connection, "customer_grams"):
        _rebuild(connection, "customer_grams")


def _search_index_apart(path: Path) -> sqlite3.Connection:
    """The search index (``customer_search``, the store's definition) of the customers of
    the store at ``path``, built in a temporary database (deleted when the connection
    returned closes), as FTS5's rebuild would build it with :data:`REBUILD_HASH_BYTES`."""
    built = sqlite3.connect("", isolation_level=None, check_same_thread=False)
    try:
        built.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
        built.execute("ATTACH ? AS store", (str(path),))
        (definition,) = built.execute(
            "SELECT sql FROM store.sqlite_master WHERE name = 'customer_search'"
        ).fetchone()
        built.execute("BEGIN")
        built.execute(definition)  # external content: an insert indexes what it is given
        _set_hash_size(built, "customer_search", REBUILD_HASH_BYTES)
        built.execute(
            "INSERT INTO main.customer_search (rowid, search_text)"
            " SELECT id, search_text FROM store.customers"
        )
        built.execute("COMMIT")
        built.execute("DETACH store")
    except BaseException:
        built.close()
        raise
    return built


def _copy_index(built: sqlite3.Connection, connection: sqlite3.Connection, table: str) -> None:
    """The FTS5 index ``table`` of ``connection`` replaced by ``built``'s: the rows of its
    shadow tables (segments, their index, sizes if kept) but its settings (``_config``:
    the cookie FTS5 finds changed in the index's structure makes it read them again)."""
    shadows = built.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '!'"
        " AND name <> ?",
        (f"{table}!_%", f"{table}_config"),
    ).fetchall()
    for (name,) in shadows:
        width = len(built.execute(f"PRAGMA table_info({name})").fetchall())
        connection.execute(f"DELETE FROM {name}")
        connection.executemany(
            f"INSERT INTO {name} VALUES ({', '.join(['?'] * width)})",
            built.execute(f"SELECT * FROM {name}"),
        )


def _rebuild(connection: sqlite3.Connection, table: str) -> None:
    """Rebuild the FTS5 index ``table`` from its content, with :data:`REBUILD_HASH_BYTES`
    of terms gathered before each segment is written (FTS5's ``hashsize``, kept in the
    index's settings: set back to FTS5's default after)."""
    _set_hash_size(connection, table, REBUILD_HASH_BYTES)
    connection.execute(f"INSERT INTO {table} ({table}) VALUES ('rebuild')")
    _set_hash_size(connection, table, FTS5_HASH_BYTES)


def _set_hash_size(connection: sqlite3.Connection, table: str, size: int) -> None:
    with contextlib.suppress(sqlite3.OperationalError):  # an SQLite without the setting
        connection.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('hashsize', ?)", (size,))


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    """Whether the store has the table (not in a schema of migrations given by hand)."""
    cursor = connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,))
    return cursor.fetchone() is not None


def _try_lock(path: Path) -> IO[bytes] | None:
    """The bulk-load lock of the store at ``path``, held until closed; None if another
    process holds it."""
    handle = open(f"{path}-bulk", "ab")  # noqa: SIM115 (held past this function)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle
