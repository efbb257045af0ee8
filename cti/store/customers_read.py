"""The screen-pop's read path: who holds a number, and their card, read on the event
loop's own thread through a reader connection of the store's file (WAL: readers never
wait for the writer), with a small cache of hot numbers.

The store's writes go through aiosqlite's thread (:class:`~cti.store.database.Store`);
a lookup through it pays a trip to that thread and its queue, which on a busy machine
costs milliseconds. An indexed read of a few rows costs tens of microseconds, so it is
cheaper done in place. The statements are prepared once (sqlite3's statement cache).

The cache holds the answers for the last :data:`CACHE_NUMBERS` numbers looked up
(customers are frozen models), and is dropped whenever the customer base changed: each
lookup reads ``PRAGMA data_version`` (changes when any other connection, in any
process, committed) and, when it moved, the base's generation (migration 12: triggers
bump it on every change to customers, phones and e-mails; a bulk load bumps it itself).
Writes that are not customers (call records, audit) only cost that second read.

Any sqlite error here (a lock, a schema change under way, another thread) returns None:
the store then answers through its connection, which reports errors as StoreErrors.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cti.models import Customer, Interaction, PhoneNumber, PhoneType, Scalar
from cti.store.customers import (
    VALUE_INPUTS_SQL,
    CustomerCard,
    service_item_from_row,
    service_items_sql,
    value_inputs_from_row,
)

#: How many numbers' answers the cache keeps (the most recently asked).
CACHE_NUMBERS = 4096

_SELECT_CUSTOMERS = """
SELECT c.id, c.name, c.value, c.segment, c.language, c.time_zone, c.email,
       c.company, c.address, c.owner,
       (SELECT json_group_array(e.email) FROM customer_emails AS e  -- in key order
        WHERE e.customer_id = c.id AND e.position > 0),
       p.raw, p.e164, p.kind, p.extension
FROM customers AS c LEFT JOIN customer_phones AS p ON p.customer_id = c.id
WHERE {where}
ORDER BY c.id, p.rowid
"""

#: The customers holding one E.164 number, with all their phones: one indexed query.
FIND_BY_NUMBER_SQL = _SELECT_CUSTOMERS.format(
    where="c.id IN (SELECT customer_id FROM customer_phones WHERE e164 = ?)"
)
CUSTOMERS_BY_IDS_SQL = _SELECT_CUSTOMERS.format(where="c.id IN (SELECT value FROM json_each(?))")
RECENT_INTERACTIONS_SQL = (
    "SELECT at, channel, disposition, agent_id, note, call_id, script_answers FROM interactions"
    " WHERE customer_id = ? ORDER BY at DESC, id DESC LIMIT ?"
)
_OPEN_ITEMS_SQL = service_items_sql(open_only=True)
_GENERATION_SQL = "SELECT n FROM customer_generation WHERE id = 1"


class CustomerReader:
    """Lookups by number and screen-pop cards on the calling thread (module docstring).

    Use from one thread (the event loop's); every method returns None when it could
    not answer, and the caller asks the store's connection instead.
    """

    def __init__(self, connection: sqlite3.Connection, cache_numbers: int = CACHE_NUMBERS) -> None:
        self._db = connection
        self._cache: OrderedDict[str, tuple[Customer, ...]] = OrderedDict()
        self._cache_numbers = cache_numbers
        self._data_version: int | None = None
        self._generation: int | None = None
        self.hits = 0
        """Lookups answered from the cache (for tests and benchmarks)."""

    @classmethod
    def open(cls, path: Path, cache_numbers: int = CACHE_NUMBERS) -> CustomerReader | None:
        """A reader of the store file at ``path``, or None if it cannot be opened."""
        try:
            connection = sqlite3.connect(
                path, timeout=0, isolation_level=None, cached_statements=64
            )
            connection.execute("PRAGMA query_only = ON")
            connection.execute("PRAGMA mmap_size = 268435456")  # index pages without a read()
        except sqlite3.Error:
            return None
        return cls(connection, cache_numbers)

    def close(self) -> None:
        self._cache.clear()
        self._db.close()

    def find_by_number(self, e164: str) -> list[Customer] | None:
        """Every customer holding ``e164``, each with all its phones (None: ask the store)."""
        try:
            self._drop_if_changed()
            cached = self._cache.get(e164)
            if cached is not None:
                self._cache.move_to_end(e164)
                self.hits += 1
                return list(cached)
            found = customers_from_rows(self._db.execute(FIND_BY_NUMBER_SQL, (e164,)).fetchall())
        except (sqlite3.Error, ValueError):
            return None
        if self._generation is not None:  # a store without migration 12 is not cached
            self._cache[e164] = tuple(found)
            if len(self._cache) > self._cache_numbers:
                self._cache.popitem(last=False)
        return found

    def card(self, customer_id: int, history_limit: int = 5) -> CustomerCard | None:
        """Recent history, open service items and value inputs (None: ask the store)."""
        try:
            history = self._db.execute(RECENT_INTERACTIONS_SQL, (customer_id, history_limit))
            interactions = interactions_from_rows(history.fetchall())
            items = self._db.execute(_OPEN_ITEMS_SQL, (customer_id, 10)).fetchall()
            inputs = self._db.execute(VALUE_INPUTS_SQL, (customer_id,)).fetchall()
        except (sqlite3.Error, ValueError):
            return None
        return CustomerCard(
            history=interactions,
            service_items=tuple(service_item_from_row(row) for row in items),
            value_inputs=value_inputs_from_row(inputs[0]) if inputs else None,
        )

    def _drop_if_changed(self) -> None:
        """Drop the cache if the customer base changed since the last lookup."""
        [(version,)] = self._db.execute("PRAGMA data_version").fetchall()
        if version == self._data_version:
            return
        self._data_version = version
        try:
            rows = self._db.execute(_GENERATION_SQL).fetchall()
        except sqlite3.OperationalError:  # no migration 12: no cache
            rows = []
        generation = int(rows[0][0]) if rows else None
        if generation is None or generation != self._generation:
            self._cache.clear()
        self._generation = generation


def customers_from_rows(rows: Iterable[Sequence[Any]]) -> list[Customer]:
    """Customers from rows of the customer queries above (one row per phone, by id)."""
    customers: list[Customer] = []
    for _, group in itertools.groupby(rows, key=lambda row: row[0]):
        customer_rows = list(group)
        cid, name, value, segment, language, time_zone, email, company, address, owner = (
            customer_rows[0][:10]
        )
        stored = {
            "value": value,
            "segment": segment,
            "language": language,
            "time_zone": time_zone,
            "email": email,
            "company": company,
            "address": address,
            "owner": owner,
        }
        phones = tuple(
            PhoneNumber(
                raw=raw or "",
                e164=e164,
                kind=PhoneType(kind or PhoneType.OTHER),
                extension=extension or "",
            )
            for *_, raw, e164, kind, extension in customer_rows
            if e164 is not None
        )
        other_emails = tuple(json.loads(customer_rows[0][10] or "[]"))
        customers.append(
            Customer.model_validate(
                {"id": cid, "name": name, "phones": phones, "other_emails": other_emails}
                | {key: v for key, v in stored.items() if v is not None}
            )
        )
    return customers


def interactions_from_rows(rows: Iterable[Sequence[Any]]) -> tuple[Interaction, ...]:
    """Interactions from rows of :data:`RECENT_INTERACTIONS_SQL`, as they were."""
    return tuple(
        Interaction(
            at=at,
            channel=channel,
            disposition=disposition,
            agent_id=agent,
            note=note,
            call_id=call_id,
            script_answers=_answers(answers),
        )
        for at, channel, disposition, agent, note, call_id, answers in rows
    )


def _answers(text: str | None) -> dict[str, Scalar]:
    """Script answers stored as a JSON object (anything else reads as none)."""
    try:
        answers = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(answers, dict):
        return {}
    return {str(k): v for k, v in answers.items() if v is None or isinstance(v, str | int | float)}
