"""The CJK grams of names and companies (1- and 2-character Chinese search) as a column of
the customer's row indexed by FTS5 (migration 15, issue 23), not a row per gram: the same
customers found, best first, as the per-gram table found them, whether they came by a
small or a large import, were saved, renamed or deleted; a store made before the
migration keeps its grams; the index stays consistent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import cti.customers.csv_files as customer_import
import cti.store.customers_bulk as bulk
from cti.customers.base import CustomerBase, fold, name_grams
from cti.store.database import Store
from cti.store.migrations import MIGRATIONS
from tests.cti.test_customer_import_bulk import integrity_check
from tests.cti.test_customer_import_bulk import load as import_file

pytestmark = pytest.mark.customers

HEADER = "id,name,mobile,email,company\n"
NAMES = ("欧阳雨桐", "王伟", "王芳", "雨桐", "José Núñez", "李 静x婧", "ＡＢ王", "张伟", "章伟")
COMPANIES = ("北京星辰科技", "", "Acme Ltd", "王府井百货", "")
QUERIES = ("王", "伟", "雨桐", "阳雨", "欧阳", "星辰", "静", "婧", "府井", "王伟", "x", "科")


def rows_csv(path: Path, n: int) -> Path:
    lines = "".join(
        f",{NAMES[i % len(NAMES)]},139{i:08d},c{i}@example.com,{COMPANIES[i % len(COMPANIES)]}\n"
        for i in range(n)
    )
    path.write_text(HEADER + lines, encoding="utf-8")
    return path


async def load(base: CustomerBase, path: Path) -> None:
    report = await import_file(base, path)
    assert not report.errors


async def expected(store: Store, query: str, limit: int) -> list[int]:
    """What the per-gram table answered: the customers with the gram in their name or
    company, by id."""
    rows = await store.fetch("reading", "SELECT id, name, company FROM customers ORDER BY id")
    return [
        int(i)
        for i, name, company in rows
        if query in name_grams(fold(name)) | name_grams(fold(company))
    ][:limit]


async def assert_grams_answer(base: CustomerBase) -> None:
    for query in QUERIES:
        key = fold(query)
        found = await base._contains("searching", key, 7)
        assert found == ([] if key.isascii() else await expected(base.store, key, 7)), query
    await integrity_check(base.store, "customer_grams")


@pytest.mark.parametrize("large", [False, True], ids=["small import", "large import"])
async def test_grams_find_what_the_gram_rows_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    if large:  # the worker process, the indexes deferred and rebuilt
        monkeypatch.setattr(customer_import, "PARALLEL_MIN_ROWS", 1)
        monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 1)
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 13)
    async with await Store.open(tmp_path / "cti.db") as store:
        base = CustomerBase(store)
        await load(base, rows_csv(tmp_path / "in.csv", 60))
        await assert_grams_answer(base)
        if large:  # both indexes rebuilt with a larger hash, FTS5's default kept after
            for table in ("customer_search", "customer_grams"):
                rows = await store.fetch("reading", f"SELECT k, v FROM {table}_config")
                settings = {str(k): v for k, v in rows}
                assert settings.get("hashsize", bulk.FTS5_HASH_BYTES) == bulk.FTS5_HASH_BYTES
                await integrity_check(store, table)
        # Saved (the upsert's update trigger), renamed, given a company, deleted.
        first, second, third = await base.get_many([1, 2, 3])
        await base.save_customers(
            [
                first.model_copy(update={"name": "司马相如"}),
                second.model_copy(update={"company": "王府井百货"}),
                third,
            ]
        )
        await store.write(
            "deleting", lambda connection: connection.execute("DELETE FROM customers WHERE id = 4")
        )
        await load(base, rows_csv(tmp_path / "more.csv", 5))  # merged and new rows
        assert [c.id for c in await base.search("相如")] == [1]
        await assert_grams_answer(base)


async def test_a_store_made_before_migration_15_keeps_its_grams(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    before = tuple(m for m in MIGRATIONS if m[0] < 15)
    async with await Store.open(path, migrations=before):
        pass
    with sqlite3.connect(path) as db:
        for cid, name in ((1, "欧阳雨桐"), (2, "王伟"), (3, "Jane Doe")):
            db.execute(
                "INSERT INTO customers (id, name, name_key, search_text) VALUES (?, ?, ?, ?)",
                (cid, name, fold(name), fold(name)),
            )
            db.executemany(
                "INSERT INTO customer_name_grams (gram, customer_id) VALUES (?, ?)",
                [(gram, cid) for gram in name_grams(fold(name))],
            )
        generation = db.execute("SELECT n FROM customer_generation").fetchone()[0]
    async with await Store.open(path) as store:
        base = CustomerBase(store)
        assert [c.id for c in await base.search("雨桐")] == [1]
        assert [c.id for c in await base.search("伟")] == [2]
        rows = await store.fetch("reading", "SELECT id, grams FROM customers ORDER BY id")
        assert [(i, set(g.split())) for i, g in rows] == [
            (1, name_grams("欧阳雨桐")),
            (2, name_grams("王伟")),
            (3, set()),
        ]
        assert (await store.fetch("reading", "SELECT n FROM customer_generation"))[0][
            0
        ] > generation
        await assert_grams_answer(base)
