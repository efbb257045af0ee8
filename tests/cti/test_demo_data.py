"""Demo data: deterministic, realistic in shape, and loadable into the store."""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest

from cti.app.demo_data import (
    SPECIAL_NAMES,
    generate_customers,
    generate_interactions,
    numbers_for_callers,
    seed_store,
)
from cti.models import Customer, Segment
from cti.phone import normalise
from cti.store.database import Store


@pytest.fixture(scope="module")
def customers() -> list[Customer]:
    return generate_customers()


def is_chinese(name: str) -> bool:
    return all(unicodedata.name(ch, "").startswith("CJK UNIFIED") for ch in name)


def test_same_seed_same_data_other_seed_other_data(customers: list[Customer]) -> None:
    assert generate_customers() == customers
    assert generate_customers(seed=8) != customers


def test_default_size_and_ids(customers: list[Customer]) -> None:
    assert len(customers) >= 2000
    assert [c.id for c in customers] == list(range(1, len(customers) + 1))


@pytest.mark.parametrize("seed", [7, 1, 2024])
def test_segments_form_a_pyramid(seed: int) -> None:
    counts = Counter(c.segment for c in generate_customers(seed=seed))
    platinum, gold, silver, bronze, basic = (counts[s] for s in Segment)
    assert 0 < platinum < gold < silver < bronze < basic
    assert all(c.segment is Segment.for_value(c.value) for c in generate_customers(50, seed))


def test_names_are_half_chinese_half_latin(customers: list[Customer]) -> None:
    chinese = sum(is_chinese(c.name) for c in customers)
    assert 0.4 < chinese / len(customers) < 0.6
    assert {c.language for c in customers} == {"zh", "en"}
    assert all(c.language == ("zh" if is_chinese(c.name) else "en") for c in customers)


def test_display_traps_are_present(customers: list[Customer]) -> None:
    names = Counter(c.name for c in customers)
    assert names["[bold]Markup[/bold] Test"] == 1
    assert any(is_chinese(name) and len(name) >= 4 for name in names)
    assert {"张伟", "章伟", "李静", "李婧"} <= names.keys()  # sound alike, written apart
    assert any(ch in name for name in names for ch in "éëüñ")
    assert [c.name for c in customers[: len(SPECIAL_NAMES)]] == [s[0] for s in SPECIAL_NAMES]


def test_time_zones_and_emails(customers: list[Customer]) -> None:
    assert {c.time_zone for c in customers} == {
        "Asia/Shanghai",
        "Europe/London",
        "America/New_York",
    }
    emails = [c.email for c in customers if c.email]
    assert len(emails) > 0.8 * len(customers)
    assert len(set(emails)) == len(emails)
    assert all(email.isascii() and "@example." in email for email in emails)


def test_phones_are_valid_normalised_and_varied(customers: list[Customer]) -> None:
    assert all(1 <= len(c.phones) <= 3 for c in customers)
    phones = [p for c in customers for p in c.phones]
    assert all(normalise(p.raw) == p.e164 for p in phones)
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(p.e164)) for p in phones)
    prefixes = Counter(p.e164[:3] for p in phones)
    assert prefixes["+86"] > prefixes["+44"] > 0
    assert any(p.e164.startswith("+1") for p in phones)
    assert any(p.e164.startswith(("+8610", "+8621", "+86755")) for p in phones)


def test_a_handful_of_numbers_are_shared_by_exactly_two(customers: list[Customer]) -> None:
    holders = Counter(e164 for c in customers for e164 in {p.e164 for p in c.phones})
    shared = [e164 for e164, n in holders.items() if n > 1]
    assert 0.002 * len(customers) <= len(shared) <= 0.01 * len(customers)
    assert all(holders[e164] == 2 for e164 in shared)
    assert all(len({p.e164 for p in c.phones}) == len(c.phones) for c in customers)


def test_small_datasets_work() -> None:
    assert generate_customers(0) == []
    two = generate_customers(2)
    assert {p.e164 for p in two[0].phones} & {p.e164 for p in two[1].phones}


def test_numbers_for_callers_normalise_back_to_every_number(customers: list[Customer]) -> None:
    presented = numbers_for_callers(customers)
    every = {p.e164 for c in customers for p in c.phones}
    assert sorted(normalise(raw) or "" for raw in presented) == sorted(every)
    assert any(raw.startswith("1") and raw.isdigit() for raw in presented)  # national mobile
    assert any(raw.startswith("0") and "-" in raw for raw in presented)  # dashed national
    assert any(raw.startswith("+") for raw in presented)
    assert any(raw.startswith("00") for raw in presented)
    assert numbers_for_callers(customers) == presented


def test_interactions_cover_some_customers_with_known_dispositions(
    customers: list[Customer],
) -> None:
    history = generate_interactions(customers)
    per_customer = Counter(cid for cid, _ in history)
    assert 0.2 * len(customers) < len(per_customer) < 0.6 * len(customers)
    assert {i.disposition for _, i in history} >= {"resolved", "follow-up", "sale"}
    assert generate_interactions(customers) == history


async def test_seed_store_loads_once(tmp_path: Path, customers: list[Customer]) -> None:
    async with await Store.open(tmp_path / "cti.db") as store:
        assert await seed_store(store) == len(customers)
        assert await seed_store(store) == 0
        assert await store.customer_count() == len(customers)
        markup = customers[0]
        assert markup in await store.find_by_number(markup.phones[0].e164)
        with_history = generate_interactions(customers)[0][0]
        assert len(await store.recent_interactions(with_history)) >= 1
