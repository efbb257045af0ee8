"""The search index (FTS5 trigram over the customers' search_text) keeps no document
sizes since migration 16 (issue 23: a row a customer that nothing read, some 40% of its
rebuild after a large import): a store made before it finds what it found, and the
index stays consistent as customers are saved, renamed, deleted and imported."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import cti.store.customers_bulk as bulk
from cti.customers.base import CustomerBase, fold
from cti.models import Customer
from cti.store.database import Store
from cti.store.migrations import MIGRATIONS
from tests.cti.test_customer_import_bulk import integrity_check, load
from tests.cti.test_customer_import_grams import rows_csv

pytestmark = pytest.mark.customers

NAMES = ("José Núñez", "Jane Doe", "欧阳雨桐", "O'Brien Smith", "Müller-Lüdenscheidt")
QUERIES = ("nun", "jose", "doe", "欧阳雨", "brien", "o'b", "müll", "lüden", "smith", "xyz")


async def answers(base: CustomerBase) -> list[list[int]]:
    return [await base._contains("searching", fold(query), 10) for query in QUERIES]


def sizes_kept(path: Path) -> bool:
    with sqlite3.connect(path) as db:
        return bool(
            db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'customer_search_docsize'"
            ).fetchall()
        )


async def test_a_store_made_before_migration_16_finds_what_it_found(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with await Store.open(
        path, migrations=tuple(m for m in MIGRATIONS if m[0] < 16)
    ) as store:
        base = CustomerBase(store)
        for name in NAMES:
            await base.create_customer(Customer(id=0, name=name, company="Acme Smithy"))
        before = await answers(base)
    assert sizes_kept(path)
    assert [len(found) for found in before] == [1, 1, 1, 1, 1, 1, 1, 1, 5, 0]
    async with await Store.open(path) as store:
        base = CustomerBase(store)
        assert not sizes_kept(path)
        assert await answers(base) == before
        await integrity_check(store, "customer_search")
        await store.write("deleting", lambda c: c.execute("DELETE FROM customers WHERE id = 1"))
        await store.write(
            "renaming",
            lambda c: c.execute(
                "UPDATE customers SET name = 'Jane Roe', search_text = 'jane roe' WHERE id = 2"
            ),
        )
        assert [await base._contains("searching", q, 10) for q in ("nun", "doe", "roe")] == [
            [],
            [],
            [2],
        ]
        await integrity_check(store, "customer_search")


async def test_the_index_without_sizes_is_consistent_after_a_large_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 10)
    async with await Store.open(tmp_path / "cti.db") as store:
        base = CustomerBase(store)
        await load(base, rows_csv(tmp_path / "rows.csv", 40))  # rebuilt after the load
        await load(base, rows_csv(tmp_path / "more.csv", 5))  # merged: the triggers
        assert len(await base._contains("searching", "example", 100)) == 40
        await integrity_check(store, "customer_search")


async def test_the_index_built_apart_after_a_large_import_answers_as_a_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a large load the search index is built in a temporary database by a thread of
    # its own and its rows copied in (customers_bulk._build): the store's connection,
    # which read the index before, must read the new one, and keep it whole as it writes.
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 10)
    async with await Store.open(tmp_path / "cti.db") as store:
        base = CustomerBase(store)
        await load(base, rows_csv(tmp_path / "few.csv", 3))  # indexed by the triggers
        assert await answers(base)  # the store's connection has read the index
        await load(base, rows_csv(tmp_path / "rows.csv", 40))  # built apart
        for query in ("exa", "ple", "欧阳雨", "núñ", "doe", "xyz"):
            key = fold(query)
            scan = await store.fetch(
                "scanning",
                "SELECT id FROM customers WHERE instr(search_text, ?) ORDER BY id",
                (key,),
            )
            assert await base._contains("searching", key, 1000) == [r[0] for r in scan]
        await integrity_check(store, "customer_search")
        first, second = await base.get_many([1, 2])
        await base.save_customers([first.model_copy(update={"name": "Zed Quux"}), second])
        await store.write(
            "deleting", lambda connection: connection.execute("DELETE FROM customers WHERE id = 5")
        )
        assert await base._contains("searching", "quux", 10) == [1]
        await integrity_check(store, "customer_search")
