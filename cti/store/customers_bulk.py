"""New customers written in bulk (a CSV import's new rows): one transaction per batch,
prepared statements over ready tuples, the search keys computed once per customer, the
score written with the row, the search index filled by one statement per batch.

The transaction holds a row of ``customer_bulk_load`` (migration 12), so the per-row
triggers (the search index, the customer generation) skip its rows; it fills the index
for its id range and bumps the generation once. Nobody else sees that row: it is
deleted before the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiosqlite

if TYPE_CHECKING:
    from cti.store.database import Store

_INSERT = (
    "INSERT INTO customers (id, name, value, segment, language, time_zone, email, company,"
    " address, owner, name_key, search_text, scored_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_PHONE = (
    "INSERT INTO customer_phones (customer_id, raw, e164, kind, extension) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_EMAIL = (
    "INSERT INTO customer_emails (customer_id, position, email, email_key) VALUES (?, ?, ?, ?)"
)
_INSERT_GRAM = "INSERT OR IGNORE INTO customer_name_grams (gram, customer_id) VALUES (?, ?)"
_INDEX = (
    "INSERT INTO customer_search (rowid, search_text)"
    " SELECT id, search_text FROM customers WHERE id BETWEEN ? AND ?"
)


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A new customer ready to write, all but its id (given in the transaction)."""

    columns: tuple[object, ...]
    """name, value, segment, language, time_zone, email, company, address, owner,
    name_key, search_text, scored_at."""
    phones: tuple[tuple[str, str, str, str], ...]
    """raw, e164, kind, extension."""
    emails: tuple[str, ...]
    """The primary address first."""
    grams: tuple[str, ...]


async def add_new_customers(store: Store, customers: Sequence[NewCustomer]) -> list[int]:
    """Write new customers in one transaction; their ids, which follow the largest id."""

    async def insert(connection: aiosqlite.Connection) -> list[int]:
        cursor = await connection.execute("SELECT coalesce(max(id), 0) FROM customers")
        row = await cursor.fetchone()
        first = (int(row[0]) if row else 0) + 1
        ids = list(range(first, first + len(customers)))
        await connection.execute("INSERT INTO customer_bulk_load (id) VALUES (1)")
        await connection.executemany(
            _INSERT, [(cid, *c.columns) for cid, c in zip(ids, customers, strict=True)]
        )
        await connection.executemany(
            _INSERT_PHONE,
            [(cid, *p) for cid, c in zip(ids, customers, strict=True) for p in c.phones],
        )
        await connection.executemany(
            _INSERT_EMAIL,
            [
                (cid, position, email, email.lower())
                for cid, c in zip(ids, customers, strict=True)
                for position, email in enumerate(c.emails)
            ],
        )
        await connection.executemany(
            _INSERT_GRAM,
            [(gram, cid) for cid, c in zip(ids, customers, strict=True) for gram in c.grams],
        )
        await connection.execute(_INDEX, (first, ids[-1]))
        await connection.execute("UPDATE customer_generation SET n = n + 1")
        await connection.execute("DELETE FROM customer_bulk_load")
        return ids

    if not customers:
        return []
    return await store.write(f"adding {len(customers)} new customers", insert)
