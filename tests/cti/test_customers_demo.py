"""The demo's customer base: values that the orders explain, and rich screen-pops."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from cti.app.demo_data import (
    DEMO_NOW,
    demo_now,
    generate_customers,
    generate_orders,
    generate_service_items,
    seed_store,
)
from cti.customers.base import CustomerBase
from cti.store.database import Store

pytestmark = pytest.mark.customers


async def test_seeded_values_are_the_scores_of_the_seeded_orders(tmp_path: Path) -> None:
    customers = generate_customers(300)
    async with await Store.open(tmp_path / "cti.db") as store:
        assert await seed_store(store, n=300, now=DEMO_NOW) == 300
        base = CustomerBase(store)
        for customer in customers[:60]:
            explanation = await base.explain(customer.id)
            assert explanation is not None
            assert (explanation.value, explanation.segment) == (customer.value, customer.segment)
            assert explanation.scored_at == DEMO_NOW
        with_items = {item.customer_id for item in generate_service_items(customers)}
        assert with_items
        for cid in with_items:
            assert len(await base.service_items(cid, open_only=False)) >= 1
        buyer = generate_orders(300)[0].customer_id
        assert len(await base.orders(buyer)) >= 1


def test_demo_customers_have_contact_details_and_orders() -> None:
    customers = generate_customers()
    assert sum(bool(c.company) for c in customers) > 0.15 * len(customers)
    assert sum(bool(c.address) for c in customers) > 0.3 * len(customers)
    assert sum(bool(c.owner) for c in customers) > 0.05 * len(customers)
    assert sum(bool(c.other_emails) for c in customers) > 0.05 * len(customers)
    orders = generate_orders()
    assert len({o.reference for o in orders}) == len(orders)
    assert all(o.amount > 0 and o.ordered_at <= DEMO_NOW for o in orders)
    items = generate_service_items(customers)
    assert any(i.escalation_level for i in items)
    assert any(i.overdue(DEMO_NOW) for i in items)
    assert any(not i.status.is_open for i in items)


async def segments_in(store: Store) -> Counter[str]:
    rows = await store.fetch("segments", "SELECT segment FROM customers")
    return Counter(str(row[0]) for row in rows)


@pytest.mark.parametrize("day", [date(2027, 3, 1), None], ids=["a later day", "today"])
async def test_a_demo_base_rescored_on_its_day_keeps_its_segments(
    tmp_path: Path, day: date | None
) -> None:
    """The demo's history is dated from the day it is seeded (issue 21): rescoring it
    that day (``cti customers rescore`` scores at the wall clock) changes no segment."""
    now = demo_now(day)
    async with await Store.open(tmp_path / "cti.db") as store:
        assert await seed_store(store, n=300, now=None if day is None else now) == 300
        seeded = await segments_in(store)
        assert len(seeded) >= 3  # a pyramid, not one flat segment
        report = await CustomerBase(store).rescore(now + 6 * 3600.0)
        assert report.customers == 300
        assert await segments_in(store) == seeded
        orders = await CustomerBase(store).orders(generate_orders(300)[0].customer_id)
        assert all(now - 366 * 86400.0 < o.ordered_at <= now for o in orders)
