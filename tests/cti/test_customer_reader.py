"""The screen-pop's read path (cti.store.customers_read): lookups and cards on the event
loop's thread, and its cache of hot numbers, which never serves a customer as it was
before a change, whoever made it."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from cti.customers.base import CustomerBase
from cti.customers.csv_files import ImportReport, import_customers, read_csv
from cti.models import (
    CallDetailRecord,
    CallerKind,
    Customer,
    Interaction,
    Order,
    PhoneNumber,
    Segment,
)
from cti.store.database import Store

pytestmark = pytest.mark.customers

NOW = 1_767_600_000.0
NUMBER = "+8613812345678"
OTHER = "+8613900000002"


def customer(cid: int, name: str, *numbers: str) -> Customer:
    return Customer(
        id=cid,
        name=name,
        phones=tuple(PhoneNumber(raw=n, e164=n) for n in numbers),
        language="zh",
        time_zone="Asia/Shanghai",
    )


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[CustomerBase]:
    async with await Store.open(tmp_path / "cti.db") as store:
        await store.add_customers([customer(1, "张伟", NUMBER), customer(2, "李娜", OTHER)])
        yield CustomerBase(store)


async def cached(store: Store, e164: str) -> list[Customer]:
    """Look ``e164`` up twice; the second answer must come from the cache."""
    assert store.reader is not None
    await store.find_by_number(e164)
    hits = store.reader.hits
    found = await store.find_by_number(e164)
    assert store.reader.hits == hits + 1
    return found


async def test_lookups_and_cards_make_no_trip_to_the_store_thread(
    base: CustomerBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await base.add_interaction(1, Interaction(at=NOW, disposition="sale", note="回电"))
    await base.open_service_item(1, "退款", now=NOW)
    trips: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(repr(fn))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    [found] = await base.store.find_by_number(NUMBER)
    card = await base.store.customer_card(found.id)
    assert trips == []
    assert (found.name, [p.e164 for p in found.phones]) == ("张伟", [NUMBER])
    assert [i.note for i in card.history] == ["回电"]
    assert [i.title for i in card.service_items] == ["退款"]
    assert await base.store.find_by_number("+8613700000000") == []


async def test_the_reader_answers_as_the_store_connection_does(base: CustomerBase) -> None:
    await base.add_interaction(1, Interaction(at=NOW, script_answers={"满意": "是"}))
    await base.add_orders([Order(customer_id=1, ordered_at=NOW, amount=10.0)])
    await base.rescore(NOW)
    store = base.store
    assert store.reader is not None
    reader, store.reader = store.reader, None  # the store's own connection
    try:
        expected = (await store.find_by_number(NUMBER), await store.customer_card(1))
    finally:
        store.reader = reader
    assert (await store.find_by_number(NUMBER), await store.customer_card(1)) == expected


async def rename(base: CustomerBase) -> None:
    [current] = await base.get_many([1])
    await base.save_customers([current.model_copy(update={"name": "张伟伟"})])


async def rescore(base: CustomerBase) -> None:
    await base.add_orders([Order(customer_id=1, ordered_at=NOW, amount=90_000.0)])
    await base.rescore(NOW)


async def number_taken_away(base: CustomerBase) -> None:
    [current] = await base.get_many([1])
    await base.save_customers([current.model_copy(update={"phones": ()})])


async def number_given_to_another(base: CustomerBase) -> None:
    await base.save_customers([customer(0, "王芳", NUMBER)])


async def imported(base: CustomerBase) -> None:
    path = base.store.path.parent / "more.csv"
    path.write_text("name,mobile,email\n张伟,13812345678,zw@example.com\n", encoding="utf-8")
    _, rows, _ = read_csv(path)
    report = ImportReport("customers")
    await import_customers(
        base, rows, default_region="CN", time_zone="Asia/Shanghai", now=NOW, report=report
    )
    assert (report.updated, report.errors) == (1, [])


async def another_process(base: CustomerBase) -> None:
    """A plain sqlite3 connection, as `cti customers` in another process or an admin's."""
    with sqlite3.connect(base.store.path) as db:
        db.execute("UPDATE customers SET name = '张伟伟', value = 50 WHERE id = 1")


async def phone_edited_by_hand(base: CustomerBase) -> None:
    with sqlite3.connect(base.store.path) as db:
        db.execute("UPDATE customer_phones SET extension = '12' WHERE customer_id = 1")


EDITS: dict[str, tuple[Callable[[CustomerBase], Awaitable[None]], Callable[[list[Customer]], bool]]]
EDITS = {
    "renamed": (rename, lambda found: [c.name for c in found] == ["张伟伟"]),
    "rescored": (rescore, lambda found: found[0].value > 0 and found[0].segment != Segment.BASIC),
    "number taken away": (number_taken_away, lambda found: found == []),
    "number shared": (number_given_to_another, lambda found: len(found) == 2),
    "imported": (imported, lambda found: found[0].email == "zw@example.com"),
    "another process": (another_process, lambda found: found[0].name == "张伟伟"),
    "phone by hand": (phone_edited_by_hand, lambda found: found[0].phones[0].extension == "12"),
}


@pytest.mark.parametrize("edit", list(EDITS))
async def test_an_edited_customer_is_never_served_stale(base: CustomerBase, edit: str) -> None:
    change, shows_it = EDITS[edit]
    before = await cached(base.store, NUMBER)
    assert not shows_it(before)
    await change(base)
    assert shows_it(await base.store.find_by_number(NUMBER))


async def test_an_unknown_number_cached_is_found_once_given(base: CustomerBase) -> None:
    assert await cached(base.store, "+8613700000000") == []
    await base.save_customers([customer(0, "新客户", "+8613700000000")])
    assert [c.name for c in await base.store.find_by_number("+8613700000000")] == ["新客户"]


async def test_writes_that_are_not_customers_keep_the_cache(base: CustomerBase) -> None:
    await cached(base.store, NUMBER)
    record = CallDetailRecord(
        call_id="c1", queue="sales", ani=NUMBER, caller_kind=CallerKind.KNOWN, customer_id=1,
        segment=Segment.BASIC, value=0.0, arrived_at=0.0, ended_at=1.0, outcome="answered",
    )  # fmt: skip
    await base.store.calls.record_call(record)
    await base.add_interaction(1, Interaction(at=NOW))
    assert base.store.reader is not None
    hits = base.store.reader.hits
    await base.store.find_by_number(NUMBER)
    assert base.store.reader.hits == hits + 1


async def test_a_reader_that_fails_leaves_the_answer_to_the_store(base: CustomerBase) -> None:
    assert base.store.reader is not None
    base.store.reader._db.close()  # any sqlite error: locked, schema changing, closed
    [found] = await base.store.find_by_number(NUMBER)
    assert found.name == "张伟"
    assert (await base.store.customer_card(1)).history == ()


async def test_an_in_memory_store_has_no_reader_and_still_finds() -> None:
    async with await Store.open(":memory:") as store:
        await store.add_customers([customer(1, "张伟", NUMBER)])
        assert store.reader is None
        assert [c.id for c in await store.find_by_number(NUMBER)] == [1]


async def test_a_bulk_import_of_new_customers_drops_the_cache(base: CustomerBase) -> None:
    assert await cached(base.store, "+8613700000000") == []
    path = base.store.path.parent / "new.csv"
    path.write_text("name,mobile\n欧阳明月,137 0000 0000\n", encoding="utf-8")
    _, rows, _ = read_csv(path)
    report = ImportReport("customers")
    await import_customers(
        base, rows, default_region="CN", time_zone="Asia/Shanghai", now=NOW, report=report
    )
    assert report.created == 1
    assert [c.name for c in await base.store.find_by_number("+8613700000000")] == ["欧阳明月"]
