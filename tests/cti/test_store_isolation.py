"""A read never sees a transaction's rows before it is committed: the store has one
connection, so a read run between the statements of a write would see them (and rows a
rolled-back write never kept)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite
import pytest

from cti.errors import StoreError
from cti.models import Customer
from cti.store.database import Store


async def test_a_read_during_a_write_sees_none_of_it_and_none_of_a_rollback(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "cti.db")
    try:
        await store.add_customers([Customer(id=1, name="A")])
        halfway = asyncio.Event()
        go_on = asyncio.Event()
        count = "SELECT count(*) FROM customers"

        async def write_then_fail(connection: aiosqlite.Connection) -> None:
            await connection.execute("INSERT INTO customers (id, name) VALUES (2, 'B')")
            halfway.set()
            await go_on.wait()
            raise StoreError("the write fails after its first statement")

        writing = asyncio.create_task(store.write("a write that fails", write_then_fail))
        await halfway.wait()
        reading = asyncio.create_task(store.fetch("counting", count))
        await asyncio.sleep(0)  # the read has its turn while the write is half done
        go_on.set()
        with pytest.raises(StoreError):
            await writing
        assert (await reading)[0][0] == 1  # not 2: the rolled-back row was never seen
    finally:
        await store.close()
