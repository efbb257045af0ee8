"""A large customer import into a small base (issue 23): the name, e-mail and gram
indexes dropped while it loads and built after, the search index rebuilt once; a load
that died half-way is finished by the next open; the bulk-load settings restored."""

from __future__ import annotations

import asyncio
import io
import itertools
import marshal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

import cti.customers.csv_files as customer_import
import cti.customers.merge as merge
import cti.store.customers_bulk as bulk
from cti.customers.base import CustomerBase
from cti.customers.csv_files import (
    ImportReport,
    KeptApart,
    Merge,
    check_header,
    import_customers,
    read_csv,
)
from cti.customers.csv_worker import work
from cti.models import Customer, PhoneNumber, PhoneType
from cti.store.customers_bulk import NewCustomer, NewScore
from cti.store.database import Store

pytestmark = pytest.mark.customers

NOW = 1_767_600_000.0
SCORE: NewScore = (0.0, "basic", NOW)
HEADER = "id,name,mobile,home_phone,email,company,language,time_zone\n"


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[CustomerBase]:
    async with await Store.open(tmp_path / "cti.db") as store:
        yield CustomerBase(store)


def customers_csv(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "in.csv"
    lines = "".join(
        f",欧阳明月{i},139{i:08d},,m{i}@example.com,星辰科技,zh,\n" for i in range(rows)
    )
    path.write_text(HEADER + lines + ",Bad Phone,12345,,,,,\n", encoding="utf-8")
    return path


async def load(base: CustomerBase, path: Path) -> ImportReport:
    names, rows, _ = read_csv(path)
    report = ImportReport(check_header(names, path))
    await import_customers(
        base, rows, default_region="CN", time_zone="Asia/Shanghai", now=NOW, report=report
    )
    return report


async def indexes(store: Store) -> set[str]:
    """The names of the store's indexes and triggers (each trigger's with its text)."""
    rows = await store.fetch(
        "listing", "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
    )
    return {str(name) for name, _ in rows} | {f"{name}: {sql}" for name, sql in rows}


async def integrity_check(store: Store, table: str) -> None:
    """FTS5's check of the index ``table`` against its content (raises if they differ)."""

    async def check(connection: aiosqlite.Connection) -> None:
        await connection.execute(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")

    await store.write("checking", check)


DEFERRED = set(bulk.DEFERRED_INDEXES) | set(bulk.DEFERRED_TRIGGERS)


async def pending(store: Store) -> int:
    rows = await store.fetch("reading", "SELECT count(*) FROM customer_bulk_pending")
    return int(rows[0][0])


async def assert_searchable(base: CustomerBase, n: int) -> None:
    assert len(await base.search("明月", limit=50)) == n  # the 1-2 character index
    assert len(await base.search("欧阳明", limit=50)) == n  # the trigram index
    assert len(await base.search("星辰科", limit=50)) == n  # the company
    assert [c.name for c in await base.search("m3@example.com")] == ["欧阳明月3"]
    assert [c.name for c in await base.search("+8613900000004")] == ["欧阳明月4"]


async def test_a_large_import_drops_the_indexes_while_it_loads_and_builds_them_after(
    base: CustomerBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 10)
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 7)
    seen: list[tuple[set[str], int]] = []
    add = bulk.add_new_customers

    async def spy(store: Store, customers: list[NewCustomer], score: NewScore) -> list[int]:
        seen.append((await indexes(store), await pending(store)))
        return await add(store, customers, score)

    monkeypatch.setattr("cti.customers.merge.add_new_customers", spy)
    before = await indexes(base.store)
    report = await load(base, customers_csv(tmp_path, 20))
    assert (report.created, [e.line for e in report.errors]) == (20, [22])
    assert len(seen) == 3
    for during, marker in seen:
        assert marker == 1
        assert not during & DEFERRED
        assert "idx_customer_phones_e164" in during  # merging looks numbers up
    assert await indexes(base.store) == before
    assert await pending(base.store) == 0
    await assert_searchable(base, 20)


async def test_after_a_large_import_its_triggers_index_and_count_customers_again(
    base: CustomerBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def generation() -> int:
        rows = await base.store.fetch("reading", "SELECT n FROM customer_generation")
        return int(rows[0][0])

    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 10)
    first = await generation()
    await load(base, customers_csv(tmp_path, 20))
    loaded = await generation()
    assert loaded > first
    phone = PhoneNumber(raw="13700000001", e164="+8613700000001", kind=PhoneType.MOBILE)
    await base.save_customers([Customer(id=0, name="司马新客", phones=(phone,))])
    assert await generation() > loaded  # the triggers, not the load, bumped it
    assert [c.name for c in await base.search("司马新")] == ["司马新客"]  # trigram index
    assert await base.store.fetch("reading", "SELECT * FROM customer_bulk_triggers") == []


async def test_a_large_import_updates_customers_it_loaded_in_an_earlier_batch(
    base: CustomerBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each update of a customer ran the search and gram indexes' update triggers, whose
    # 'delete' of text never indexed (the index is rebuilt after the load) FTS5 took for
    # a corrupt index: "database disk image is malformed", and the import stopped.
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 10)
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 7)
    path = customers_csv(tmp_path, 20)
    with path.open("a", encoding="utf-8") as rows:
        rows.write(f",欧阳明月3,139{3:08d},,new3@example.com,,,\n")  # merged: its number
        rows.write("5,司马光,,,,王府井百货,,\n")  # by its id: renamed, a company
    report = await load(base, path)
    assert (report.created, report.updated, [m.line for m in report.merges]) == (20, 2, [23, 24])
    assert [c.name for c in await base.search("new3@example.com")] == ["欧阳明月3"]
    assert [c.name for c in await base.search("司马")] == ["司马光"]  # the gram index
    assert [c.name for c in await base.search("王府井")] == ["司马光"]  # the trigram index
    assert len(await base.search("欧阳明", limit=50)) == 19
    for table in ("customer_search", "customer_grams"):
        await integrity_check(base.store, table)


async def test_a_small_import_or_one_into_a_larger_base_keeps_the_indexes(
    base: CustomerBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 11)
    calls: list[int] = []
    build = bulk._build_deferred

    async def spy(store: Store) -> None:
        calls.append(1)
        await build(store)

    monkeypatch.setattr(bulk, "_build_deferred", spy)
    await load(base, customers_csv(tmp_path, 9))  # 10 rows: below the threshold
    assert calls == []
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 5)
    (tmp_path / "more").mkdir()
    await load(base, customers_csv(tmp_path / "more", 8))  # 9 rows: no more than the base
    assert calls == []
    await load(base, customers_csv(tmp_path / "more", 30))
    assert calls == [1]


async def test_an_import_that_fails_half_way_still_builds_the_indexes(
    base: CustomerBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "DEFER_MIN_ROWS", 10)
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 7)
    add = bulk.add_new_customers
    written: list[int] = []

    async def failing(store: Store, customers: list[NewCustomer], score: NewScore) -> list[int]:
        if written:
            raise RuntimeError("disk gone")
        written.extend(await add(store, customers, score))
        return written

    monkeypatch.setattr("cti.customers.merge.add_new_customers", failing)
    before = await indexes(base.store)
    with pytest.raises(RuntimeError, match="disk gone"):
        await load(base, customers_csv(tmp_path, 20))
    assert await indexes(base.store) == before
    assert await pending(base.store) == 0
    assert len(await base.search("欧阳明", limit=50)) == 7  # the first batch, indexed


async def test_a_load_that_died_half_way_is_finished_by_the_next_open(tmp_path: Path) -> None:
    db = tmp_path / "cti.db"
    async with await Store.open(db) as store:
        before = await indexes(store)
        lock = await bulk._start_deferring(store, 10**6)  # as a large import starts
        assert lock is not None
        names = [(f"欧阳明月{i}", f"m{i}@example.com") for i in range(5)]
        await bulk.add_new_customers(
            store, [new(name, email, i) for i, (name, email) in enumerate(names)], SCORE
        )
        # The process dies here: its lock goes with it, the indexes stay dropped.
        lock.close()
        assert not await indexes(store) & DEFERRED
    async with await Store.open(db) as store:
        assert await indexes(store) == before
        assert await pending(store) == 0
        assert len(await CustomerBase(store).search("欧阳明")) == 5
        assert len(await CustomerBase(store).search("明月")) == 5


async def test_an_open_leaves_alone_a_load_another_process_is_running(tmp_path: Path) -> None:
    db = tmp_path / "cti.db"
    async with await Store.open(db) as store:
        lock = await bulk._start_deferring(store, 10**6)
        assert lock is not None
        async with await Store.open(db) as other:  # another process opens the store
            assert await pending(other) == 1
            assert not await indexes(other) & DEFERRED
        assert bulk._try_lock(db) is None  # held: by the load
        lock.close()
        free = bulk._try_lock(db)
        assert free is not None
        free.close()
    async with await Store.open(db) as store:
        assert await pending(store) == 0


async def test_the_bulk_settings_are_restored_after_an_import(
    base: CustomerBase, tmp_path: Path
) -> None:
    async def settings() -> list[int]:
        return [
            int((await base.store.fetch("reading", f"PRAGMA {p}"))[0][0])
            for p in ("cache_size", "temp_store", "foreign_keys")
        ]

    before = await settings()
    assert before[2] == 1  # the store checks foreign keys
    await load(base, customers_csv(tmp_path, 3))
    assert await settings() == before


def new(name: str, email: str, i: int) -> NewCustomer:
    from cti.store.customers import search_keys_of

    name_key, text, grams = search_keys_of(name, "", [email])
    columns = (name, "zh", "Asia/Shanghai", email, "", "", "", name_key, text, grams)
    phone = (f"139{i:08d}", f"+86139{i:08d}", "mobile", "")
    return NewCustomer(columns=columns, phones=(phone,), emails=(email,))


MIXED = (
    HEADER
    + ",张伟,138 1234 5678,,zhang.wei@example.com,星辰科技,zh,\n"  # 2
    + ",Bad Phone,12345,,,,,\n"  # 3
    + ",Two Errors,139 0000 1111,,not-mail,,,Mars/Base\n"  # 4
    + ",Five,13700000009,,,,,\n"  # 5
    + "\n"  # 6: blank
    + ",张伟,+86 138-1234-5678,010-6234 5678,zw@example.com,,,\n"  # 7: merged into line 2
    + ",章伟,13812345678,,,,,\n"  # 8: a family phone, kept apart
    + ",'=HYPERLINK(1),13700000001,,,,,\n"  # 9: a neutralised formula, kept as text
    + ',"Quote Open,13700000002,,,,,\n'  # 10: a quote never closed
    + ",Ni\x00l,13700000003,,,,,\n"  # 11: a NUL
    + f",Evil{chr(0x202E)}txt,13700000004,,,,,\n"  # 12: a bidi override
    + ",Latin \xff,13700000005,,,,,\n"  # 13: not UTF-8 (below)
    + "42,Given Id,13700000006,,,,,\n"  # 14
    + ",,13600000000,,,,,\n"  # 15: a new customer needs a name
    + ",欧阳明月,0086 139 0000 2222,,OY@example.com;oy@example.com,,zh,\n"  # 16
)


def mixed_csv(path: Path) -> Path:
    path.write_bytes(MIXED.encode("utf-8").replace("\xff".encode(), b"\xff"))
    return path


Summary = tuple[int, int, int, int, list[tuple[int, str]], list[Merge], list[KeptApart]]


def summary(report: ImportReport) -> Summary:
    return (
        report.rows,
        report.created,
        report.updated,
        report.rescored,
        [(e.line, e.reason) for e in report.errors],
        report.merges,
        report.kept_apart,
    )


async def test_a_file_read_in_a_worker_process_imports_as_one_read_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = []
    for parallel_from in (10**9, 1):  # here; in a worker
        monkeypatch.setattr(customer_import, "PARALLEL_MIN_ROWS", parallel_from)
        monkeypatch.setattr(customer_import, "BATCH_ROWS", 4)
        folder = tmp_path / str(parallel_from)
        folder.mkdir()
        async with await Store.open(folder / "cti.db") as store:
            base = CustomerBase(store)
            report = await load(base, mixed_csv(folder / "in.csv"))
            customers = await base.get_many(range(1, 60))
            found = [c.name for c in await base.search("明月")]
            results.append((summary(report), customers, found))
    assert results[0] == results[1]
    (rows, created, updated, _, errors, merges, kept_apart), customers, found = results[1]
    assert (rows, created, updated) == (14, 6, 1)
    assert [line for line, _ in errors] == [3, 4, 10, 11, 12, 13, 15]  # sorted by line
    assert [m.line for m in merges] == [7]
    assert [k.line for k in kept_apart] == [8]
    assert "=HYPERLINK(1)" in [c.name for c in customers]  # text, as given
    assert found == ["欧阳明月"]


async def test_the_first_batch_is_checked_here_while_the_worker_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(customer_import, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(customer_import, "BATCH_ROWS", 4)
    checked_here: list[int] = []
    check = customer_import.check_rows

    def spy(rows: list[tuple[int, object]], *args: Any) -> None:
        checked_here.extend(line for line, _ in rows)
        check(rows, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(customer_import, "check_rows", spy)
    path = mixed_csv(tmp_path / "in.csv")
    async with await Store.open(tmp_path / "cti.db") as store:
        report = await load(CustomerBase(store), path)
    assert report.rows == 14
    assert checked_here == [2, 3, 4, 5]  # the rest in the worker, which skipped these
    for skip in (4, 9):  # past a blank line; past a quote never closed (line 10)
        out = io.BytesIO()
        work(path, "utf-8-sig", "CN", 4, "Asia/Shanghai", out, skip=skip)
        size = int.from_bytes(out.getvalue()[:8], "little")
        assert marshal.loads(out.getvalue()[8 : 8 + size]) == (0, 0, [], [])  # started
        count, _, good, bad = marshal.loads(out.getvalue()[16 + size :])
        expected = [line for line, _ in itertools.islice(read_csv(path)[1], skip, skip + 4)]
        assert (count, sorted([g[0] for g in good] + [b[0] for b in bad])) == (4, expected)


async def test_a_worker_that_cannot_read_the_file_stops_the_import_saying_why(
    base: CustomerBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(customer_import, "PARALLEL_MIN_ROWS", 1)
    path = customers_csv(tmp_path, 5)
    _, rows, _ = read_csv(path)
    path.unlink()  # gone before the worker reads it
    with pytest.raises(customer_import.CsvImportError, match=r"reading .*in\.csv: cannot read"):
        await import_customers(
            base, rows, default_region="CN", time_zone="Asia/Shanghai", now=NOW,
            report=ImportReport("customers"),
        )  # fmt: skip
    assert await base.store.customer_count() == 0


ROOT = Path(__file__).resolve().parents[2]
KILLED_LOAD = """
import asyncio, sys
from cti.store import customers_bulk as bulk
from cti.store.database import Store
from tests.cti.test_customer_import_bulk import SCORE, new

async def main() -> None:
    store = await Store.open(sys.argv[1])
    lock = await bulk._start_deferring(store, 10**6)  # held until the process dies
    assert lock is not None
    names = [(f"欧阳明月{i}", f"m{i}@example.com") for i in range(5)]
    await bulk.add_new_customers(store, [new(n, e, i) for i, (n, e) in enumerate(names)], SCORE)
    print("loading", flush=True)
    sys.stdin.read()  # until killed

asyncio.run(main())
"""


async def test_a_load_killed_half_way_is_finished_by_the_next_open(tmp_path: Path) -> None:
    db = tmp_path / "cti.db"
    async with await Store.open(db) as store:
        before = await indexes(store)
    loader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_LOAD, str(db),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )  # fmt: skip
    assert loader.stdout is not None
    try:
        assert await loader.stdout.readline() == b"loading\n"
        async with await Store.open(db) as store:  # while it loads: left alone
            assert await pending(store) == 1
            assert not await indexes(store) & DEFERRED
    finally:
        loader.kill()
        await loader.wait()
    async with await Store.open(db) as store:
        assert await indexes(store) == before
        assert await pending(store) == 0
        assert len(await CustomerBase(store).search("欧阳明")) == 5
        assert len(await CustomerBase(store).search("明月")) == 5
        assert [c.name for c in await CustomerBase(store).search("m3@example.com")] == ["欧阳明月3"]


async def test_new_customers_written_many_to_a_statement_keep_their_order(
    base: CustomerBase,
) -> None:
    """More customers, numbers and addresses than one statement takes, and a remainder:
    each written in the order given, under the id its customer was given."""
    made = []
    for i in range(1, 401):
        one = new(f"客户{i}", f"c{i}@example.com", i)
        phones = tuple(
            (f"137{i:04d}{k:04d}", f"+86137{i:04d}{k:04d}", "home", "") for k in range(i % 4)
        )
        emails = tuple(f"c{i}.{k}@Example.com" for k in range(i % 3))
        made.append(one._replace(phones=one.phones + phones, emails=one.emails + emails))
    ids = await bulk.add_new_customers(base.store, made, SCORE)

    assert ids == list(range(1, 401))
    store = base.store
    customers = await store.fetch(
        "", "SELECT id, name, time_zone, value, segment, scored_at FROM customers ORDER BY id"
    )
    assert [tuple(r) for r in customers] == [
        (cid, c.columns[0], c.columns[2], *SCORE) for cid, c in zip(ids, made, strict=True)
    ]  # each its own columns and the score bound once a statement
    written = await store.fetch(
        "", "SELECT customer_id, raw, e164 FROM customer_phones ORDER BY rowid"
    )
    assert [tuple(r) for r in written] == [
        (cid, raw, e164) for cid, c in zip(ids, made, strict=True) for raw, e164, _, _ in c.phones
    ]
    addresses = await store.fetch(
        "",
        "SELECT customer_id, position, email, email_key FROM customer_emails"
        " ORDER BY customer_id, position",
    )
    assert [tuple(r) for r in addresses] == [
        (cid, k, e, e.lower())
        for cid, c in zip(ids, made, strict=True)
        for k, e in enumerate(c.emails)
    ]


INTERLEAVED = (
    HEADER
    + ",Ann,13700000001,,,,,\n"  # 2: alone
    + ",张伟,13800000001,,,,,\n"  # 3: its number comes again (line 5)
    + ",Bob,13700000002,,,,,\n"  # 4: alone
    + ",张伟,13800000001,13700000003,,,,\n"  # 5: merged into line 3
    + ",,13800000002,,,,,\n"  # 6: no name, its number comes again: refused
    + ",Eve,13800000002,,,,,\n"  # 7: line 6 refused, no one to be kept apart from
    + ",Cy,13700000004,,,,,\n"  # 8: alone
    + "42,Given,13700000005,,,,,\n"  # 9: an id
    + ",Dee,13700000005,13700000006,,,,\n"  # 10: kept apart from 42
    + ",Fay,,,,,,\n"  # 11: alone, no number
)


@pytest.mark.parametrize("parallel_from", [10**9, 1])  # here; in a worker
async def test_rows_that_make_a_customer_alone_import_as_through_the_matching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_from: int
) -> None:
    """merge._alone takes the rows no other row or customer can meet past the row by
    row matching; with every row matched, the report and customers are the same."""
    monkeypatch.setattr(customer_import, "PARALLEL_MIN_ROWS", parallel_from)
    results = []
    for matched in (False, True):
        if matched:
            monkeypatch.setattr(merge, "_alone", lambda batch, *_: ([], list(batch)))
        path = tmp_path / f"{matched}.csv"
        path.write_text(INTERLEAVED, encoding="utf-8")
        async with await Store.open(tmp_path / f"{matched}.db") as store:
            base = CustomerBase(store)
            report = await load(base, path)
            customers = [(c.id, c.name, c.phones) for c in await base.get_many(range(1, 50))]
            results.append((summary(report), customers))
    assert results[0] == results[1]
    (rows, created, updated, _, errors, merges, kept_apart), customers = results[0]
    # 42 is saved first, then the new customers take the ids after it in the file's order
    assert sorted((cid, name) for cid, name, _ in customers) == [
        (42, "Given"), (43, "Ann"), (44, "张伟"), (45, "Bob"), (46, "Eve"), (47, "Cy"),
        (48, "Dee"), (49, "Fay"),
    ]  # fmt: skip
    assert [(m.line, m.customer_id) for m in merges] == [(5, 44)]
    assert [(k.line, k.customer_id, k.others) for k in kept_apart] == [(10, 48, (42,))]
    assert (rows, created, updated, [line for line, _ in errors]) == (10, 8, 1, [6])
