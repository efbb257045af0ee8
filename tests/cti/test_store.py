"""The SQLite store: schema, migrations, lookups, records, and its errors."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

import cti.store.calls
import cti.store.database
from cti.errors import StoreError
from cti.models import (
    CallDetailRecord,
    CallerKind,
    Customer,
    Interaction,
    PhoneNumber,
    PhoneType,
    Segment,
)
from cti.phone import normalise
from cti.store.customers_read import FIND_BY_NUMBER_SQL
from cti.store.database import Store
from cti.store.migrations import MIGRATIONS

MARKUP = Customer(
    id=1,
    name="[bold]Markup[/bold] Test",
    phones=(
        PhoneNumber(raw="138 1234 5678", e164="+8613812345678"),
        PhoneNumber(raw="010-6234 5678", e164="+861062345678", kind=PhoneType.HOME),
    ),
    value=91.5,
    segment=Segment.PLATINUM,
    language="en",
    time_zone="Europe/London",
    email="markup.test@example.com",
)
CHINESE = Customer(
    id=2,
    name="欧阳雨桐",
    phones=(PhoneNumber(raw="010 6234 5678", e164="+861062345678", kind=PhoneType.HOME),),
    value=12.0,
    language="zh",
    time_zone="Asia/Shanghai",
)
NO_PHONE = Customer(id=3, name="Zoë Müller")


def cdr(call_id: str, **changes: object) -> CallDetailRecord:
    fields: dict[str, object] = {
        "call_id": call_id,
        "queue": "sales",
        "ani": "13812345678",
        "caller_kind": CallerKind.KNOWN,
        "customer_id": 1,
        "segment": Segment.PLATINUM,
        "value": 91.5,
        "arrived_at": 10.0,
        "offered_at": 12.5,
        "answered_at": 14.0,
        "ended_at": 95.25,
        "agent_id": "agent-01",
        "outcome": "answered",
        "disposition": "sale",
        "wrap_up_s": 8.0,
        "offers": 2,
        "started_wall": 1767600010.0,
    }
    fields.update(changes)
    return CallDetailRecord.from_row(fields)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "cti.db") as opened:
        await opened.add_customers([MARKUP, CHINESE, NO_PHONE])
        yield opened


@contextlib.contextmanager
def raw_db(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path)
    try:
        yield connection
    finally:
        connection.close()


# -- opening and migrations -------------------------------------------------------------


async def test_open_creates_folders_and_applies_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "cti.db"
    async with await Store.open(path):
        pass
    with raw_db(path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_version")]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert versions == [number for number, _ in MIGRATIONS]
    assert {"customers", "customer_phones", "interactions", "call_records"} <= tables


async def test_reopening_keeps_data_and_applies_only_new_migrations(tmp_path: Path) -> None:
    path = tmp_path / "cti.db"
    async with await Store.open(path) as store:
        await store.add_customers([MARKUP])
    extra = (MIGRATIONS[-1][0] + 1, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);")
    for _ in range(2):  # the second open must not run the extra migration again
        async with await Store.open(path, migrations=(*MIGRATIONS, extra)) as store:
            assert await store.get_customer(1) == MARKUP
    with raw_db(path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_version")]
    assert versions == [*(number for number, _ in MIGRATIONS), extra[0]]


async def test_failing_migration_is_rolled_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "cti.db"
    broken = (MIGRATIONS[-1][0] + 1, "CREATE TABLE half (id INTEGER); CREATE TABLE oops (;")
    with pytest.raises(StoreError, match=f"applying migration {broken[0]}"):
        await Store.open(path, migrations=(*MIGRATIONS, broken))
    with raw_db(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        newest = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    assert "half" not in tables
    assert newest == MIGRATIONS[-1][0]


async def test_store_newer_than_the_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cti.db"
    async with await Store.open(path):
        pass
    with pytest.raises(StoreError, match="newer than this program"):
        await Store.open(path, migrations=MIGRATIONS[:1])


async def test_migrations_are_numbered_upwards_from_one() -> None:
    # Each area has its own range (customers 6-19, scripts 20-29, ...): gaps are fine.
    numbers = [number for number, _ in MIGRATIONS]
    assert numbers[:5] == [1, 2, 3, 4, 5]
    assert numbers == sorted(set(numbers))


async def test_in_memory_store_needs_no_folder() -> None:
    async with await Store.open(":memory:") as store:
        await store.add_customers([CHINESE])
        assert await store.find_by_number("+861062345678") == [CHINESE]


async def test_wal_mode_is_on_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cti.db"
    async with await Store.open(path):
        pass
    with raw_db(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(StoreError, match="customer 999"):
        await store.add_interaction(999, Interaction(at=1.0))


async def test_a_folder_as_store_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=str(tmp_path)):
        await Store.open(tmp_path)


async def test_a_file_where_a_folder_should_be_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="creating the folder"):
        await Store.open(tmp_path / "file" / "cti.db")


async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "cti.db"
    path.write_bytes(b"this is not an SQLite database, just some bytes" * 10)
    with pytest.raises(StoreError, match="not a database"):
        await Store.open(path)


async def test_using_a_closed_store_is_a_store_error(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "cti.db")
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.customer_count()


async def test_every_database_call_runs_inside_real_io(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    depth = 0
    entered = 0

    @contextlib.asynccontextmanager
    async def counting_real_io() -> AsyncIterator[None]:
        nonlocal depth, entered
        depth += 1
        entered += 1
        try:
            yield
        finally:
            depth -= 1

    monkeypatch.setattr(cti.store.database, "real_io", counting_real_io)
    seen_outside: list[str] = []
    original = aiosqlite.Connection._execute

    async def checked_execute(
        self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any
    ) -> Any:
        """Every trip to aiosqlite's worker thread goes through this private method."""
        if depth == 0:
            seen_outside.append(repr(fn))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", checked_execute)
    async with await Store.open(tmp_path / "cti.db") as store:
        await store.add_customers([MARKUP])
        await store.find_by_number("+8613812345678")
        await store.sample_customers(1, seed=1)
        await store.calls.record_call(cdr("c1"))
        await store.calls.records()
    assert seen_outside == []
    assert entered >= 8


# -- customers --------------------------------------------------------------------------


async def test_customers_round_trip_exactly(store: Store) -> None:
    assert await store.customer_count() == 3
    assert await store.get_customer(1) == MARKUP
    assert await store.get_customer(2) == CHINESE
    assert await store.get_customer(3) == NO_PHONE
    assert await store.get_customer(4) is None


@pytest.mark.parametrize(
    "as_presented", ["13812345678", "+86 138 1234 5678", "0086-138-1234-5678", "138.1234.5678"]
)
async def test_find_by_number_after_normalise(store: Store, as_presented: str) -> None:
    e164 = normalise(as_presented)
    assert e164 is not None
    assert await store.find_by_number(e164) == [MARKUP]


async def test_shared_number_finds_every_holder_with_all_their_phones(store: Store) -> None:
    found = await store.find_by_number("+861062345678")
    assert found == [MARKUP, CHINESE]
    assert len(found[0].phones) == 2


async def test_unknown_number_finds_nobody(store: Store) -> None:
    assert await store.find_by_number("+8613900000000") == []


async def test_find_by_number_uses_the_e164_index(store: Store) -> None:
    with raw_db(store.path) as db:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + FIND_BY_NUMBER_SQL, ("x",))]
    assert any("USING INDEX idx_customer_phones_e164" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


async def test_duplicate_customer_id_fails_the_whole_batch(store: Store) -> None:
    newcomer = Customer(id=10, name="New", phones=(PhoneNumber(raw="x", e164="+8613700000000"),))
    with pytest.raises(StoreError, match="adding 2 customers"):
        await store.add_customers([newcomer, MARKUP])
    assert await store.get_customer(10) is None
    assert await store.find_by_number("+8613700000000") == []
    assert await store.customer_count() == 3


async def test_sample_customers_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    many = [Customer(id=i, name=f"Customer {i}") for i in range(1, 101)]
    async with await Store.open(tmp_path / "cti.db") as store:
        await store.add_customers(many)
        first = await store.sample_customers(10, seed=3)
        again = await store.sample_customers(10, seed=3)
        other = await store.sample_customers(10, seed=4)
        everyone = await store.sample_customers(1000, seed=3)
        nobody = await store.sample_customers(0, seed=3)
    assert first == again
    assert [c.id for c in first] != [c.id for c in other]
    assert len({c.id for c in first}) == 10
    assert sorted(everyone, key=lambda c: c.id) == many
    assert nobody == []


# -- interactions -----------------------------------------------------------------------


async def test_recent_interactions_newest_first_and_limited(store: Store) -> None:
    for at in (100.0, 300.0, 200.0, 400.0):
        await store.add_interaction(2, Interaction(at=at, disposition=f"d{at:.0f}", note="备注"))
    await store.add_interaction(1, Interaction(at=999.0))
    recent = await store.recent_interactions(2, limit=3)
    assert [i.at for i in recent] == [400.0, 300.0, 200.0]
    assert recent[0] == Interaction(at=400.0, disposition="d400", note="备注")
    assert await store.recent_interactions(3) == ()


# -- call detail records ----------------------------------------------------------------


async def test_the_same_record_again_is_stored_once(store: Store) -> None:
    first = cdr("call-1")
    assert await store.calls.record_call(first) is True
    # As a restart stores it again: its wall clock derived anew, the chosen customer unknown.
    again = cdr("call-1", started_wall=1767600010.25, customer_id=None)
    assert await store.calls.record_call(again) is False
    assert await store.calls.records() == [first]
    assert (store.calls.conflicts, await store.calls.stored_conflicts()) == (0, [])


@pytest.mark.recovery
async def test_a_different_record_with_a_held_call_id_is_kept_logged_and_counted(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    first = cdr("trunk-1")
    reused = cdr("trunk-1", ani="19900000001", arrived_at=500.0, ended_at=560.0)
    third = cdr("trunk-1", ani="19900000002", arrived_at=900.0, ended_at=901.0)
    seen: list[cti.store.calls.RecordConflict] = []
    store.calls.conflict_listeners.append(seen.append)
    assert await store.calls.record_call(first) is True
    with caplog.at_level(logging.ERROR, logger="cti.store.calls"):
        assert await store.calls.record_call(reused) is True
    assert await store.calls.record_calls([third, reused]) == 1  # reused again: the same record
    assert await store.calls.records() == [
        first,
        cdr("trunk-1.conflict2", ani="19900000001", arrived_at=500.0, ended_at=560.0),
        cdr("trunk-1.conflict3", ani="19900000002", arrived_at=900.0, ended_at=901.0),
    ]
    assert store.calls.conflicts == 2
    assert [(c.call_id, c.stored_as, c.existing, c.new) for c in seen] == [
        ("trunk-1", "trunk-1.conflict2", first, reused),
        ("trunk-1", "trunk-1.conflict3", first, third),
    ]
    assert [(a, b) for a, b, _ in await store.calls.stored_conflicts()] == [
        ("trunk-1", "trunk-1.conflict2"),
        ("trunk-1", "trunk-1.conflict3"),
    ]
    message, _ = [r.getMessage() for r in caplog.records if r.name == "cti.store.calls"]  # each
    assert "call id 'trunk-1'" in message
    assert "'trunk-1.conflict2'" in message
    assert "19900000001" in message
    assert "13812345678" in message


@pytest.mark.recovery
async def test_conflicts_within_one_batch_and_a_taken_suffix(store: Store) -> None:
    await store.calls.record_call(cdr("c.conflict2", queue="odd"))  # a line's own id, oddly
    assert await store.calls.record_calls([cdr("c"), cdr("c", queue="other"), cdr("c")]) == 2
    ids = [r.call_id for r in await store.calls.records()]
    assert ids == ["c.conflict2", "c", "c.conflict3"]
    assert await store.calls.record_calls([]) == 0


async def test_call_records_round_trip_with_missing_times(store: Store) -> None:
    abandoned = cdr(
        "call-2",
        caller_kind=CallerKind.PRIVATE,
        ani="P",
        customer_id=None,
        segment=Segment.BASIC,
        value=0.0,
        offered_at=None,
        answered_at=None,
        agent_id=None,
        outcome="abandoned",
    )
    added = await store.calls.record_calls([cdr("call-1"), abandoned, cdr("call-1")])
    assert added == 2
    assert await store.calls.records() == [cdr("call-1"), abandoned]


async def test_call_records_table_has_a_column_per_model_field(store: Store) -> None:
    with raw_db(store.path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(call_records)")}
    assert columns - {"id"} == set(CallDetailRecord.field_names())
