"""The customer base: phone normalisation, search (Chinese and Latin), service items,
the screen-pop card, and search keys for stores made before the search migration."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.config import Config
from cti.customers.base import CustomerBase, PhoneError, fold, name_grams, parse_phone, plan_search
from cti.models import (
    CallerKind,
    Customer,
    Interaction,
    Order,
    PhoneType,
    ServicePriority,
    ServiceStatus,
)
from cti.store.database import Store
from cti.store.migrations import MIGRATIONS
from tests.harness import engine_service

pytestmark = pytest.mark.customers

NOW = 1_767_600_000.0  # 2026-01-05
DAY = 86400.0

# --- normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "+8613812345678",
        "(+86) 138 1234 5678",
        "0086 138 1234 5678",
        "008613812345678",
        "86 13812345678",
        "１３８１２３４５６７８",  # full-width digits, as typed with a Chinese IME
    ],
)
def test_chinese_mobile_in_every_form_is_one_number(raw: str) -> None:
    phone = parse_phone(raw, "CN")
    assert (phone.e164, phone.extension, phone.raw) == ("+8613812345678", "", raw)


@pytest.mark.parametrize(
    "raw",
    [
        "010-6234 5678",
        "(010) 62345678",
        "10 6234 5678",  # no trunk 0
        "+86 10 6234 5678",
        "+86 (0)10 6234 5678",
        "+86 010 6234 5678",  # trunk 0 after the country code, as often written
        "0086-10-62345678",
    ],
)
def test_chinese_landline_with_and_without_trunk_prefix(raw: str) -> None:
    assert parse_phone(raw, "CN").e164 == "+861062345678"


@pytest.mark.parametrize(
    "raw",
    [
        "010-62345678 ext. 12",
        "010-62345678 x12",
        "010-62345678转12",
        "010-6234 5678 分机 12",
        "010-62345678-12",  # dashed extension after a complete number
    ],
)
def test_extensions_are_kept_apart_from_the_number(raw: str) -> None:
    phone = parse_phone(raw, "CN", PhoneType.WORK)
    assert (phone.e164, phone.extension, phone.kind) == ("+861062345678", "12", PhoneType.WORK)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(212) 555-0123", "US", "+12125550123"),
        ("1-212-555-0123", "US", "+12125550123"),
        ("+1 212 555 0123", "CN", "+12125550123"),
        ("001 212 555 0123", "CN", "+12125550123"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", "CN", "+442079460958"),
        ("0044 20 7946 0958", "CN", "+442079460958"),
        ("07911 123456", "GB", "+447911123456"),
        ("+44 7911 123456", "US", "+447911123456"),
        # The same digits without a country code are another region's number.
        ("020 7946 0958", "CN", "+862079460958"),
    ],
)
def test_us_and_uk_numbers_national_and_international(raw: str, region: str, e164: str) -> None:
    assert parse_phone(raw, region).e164 == e164


def test_us_extension() -> None:
    phone = parse_phone("212.555.0123 ext. 45", "US")
    assert (phone.e164, phone.extension) == ("+12125550123", "45")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "no digits"),
        ("一三八", "no digits"),
        ("12345", "not a valid number of CN"),
        ("138 1234 567", "not a valid number of CN"),
        ("1381234567899999", "too many digits"),
        ("+999 1234 5678", "country code"),
        ("12", "too few digits"),
    ],
)
def test_junk_is_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(PhoneError, match=reason):
        parse_phone(raw, "CN")


# --- search keys ---------------------------------------------------------------------


def test_fold_drops_case_accents_and_width_but_keeps_chinese() -> None:
    assert fold("  José  NÚÑEZ ") == "jose nunez"
    assert fold("ＡＢＣ Zoë") == "abc zoe"
    assert fold("欧阳雨桐") == "欧阳雨桐"
    assert fold("[bold]x[/bold]") == "[bold]x[/bold]"


def test_name_grams_are_cjk_characters_and_pairs_only() -> None:
    assert name_grams("欧阳雨桐") == {"欧", "阳", "雨", "桐", "欧阳", "阳雨", "雨桐"}
    assert name_grams("li 静x婧") == {"静", "婧"}
    assert name_grams("jose nunez") == set()


@pytest.mark.parametrize(
    ("query", "kind", "key"),
    [
        ("#42", "id", "42"),
        ("id: 42", "id", "42"),
        ("42", "id", "42"),
        ("Zhang.Wei@Example.com", "email", "zhang.wei@example.com"),
        ("0086 138-1234-5678", "number", "+8613812345678"),
        ("010 6234 5678 转 9", "number", "+861062345678"),
        ("雨桐", "name", "雨桐"),
        ("NÚÑEZ", "name", "nunez"),
    ],
)
def test_plan_search_picks_the_index(query: str, kind: str, key: str) -> None:
    plan = plan_search(query, "CN")
    assert plan is not None
    assert (plan.kind.value, plan.key) == (kind, key)


def test_plan_search_of_nothing_is_none() -> None:
    assert plan_search("   ", "CN") is None


# --- a customer base -----------------------------------------------------------------

PEOPLE = [
    Customer(
        id=1,
        name="张伟",
        phones=(parse_phone("138 1234 5678", "CN"),),
        email="zhang.wei@example.com",
    ),
    Customer(id=2, name="章伟", phones=(parse_phone("139 0000 1111", "CN"),)),
    Customer(
        id=3,
        name="欧阳雨桐",
        phones=(parse_phone("010-6234 5678 转 8", "CN", PhoneType.WORK),),
        company="北京星辰科技有限公司",
        other_emails=("yutong@example.org",),
    ),
    Customer(id=4, name="José Núñez", phones=(parse_phone("+44 20 7946 0958", "CN"),)),
    Customer(id=5, name="李静", email="li.jing@example.com"),
    Customer(id=6, name="Zoë O'Brien", company="Acme Ltd"),
    Customer(id=7, name="[bold]Markup[/bold] Test"),
    Customer(id=8, name="张伟强", phones=(parse_phone("+86 138 1234 5678", "CN"),)),
]


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[CustomerBase]:
    async with await Store.open(tmp_path / "cti.db") as store:
        customers = CustomerBase(store)
        await customers.add_customers(PEOPLE)
        yield customers


async def names(base: CustomerBase, query: str) -> list[str]:
    return [c.name for c in await base.search(query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("伟", ["张伟", "张伟强", "章伟"]),  # 1 character, inside names
        ("张", ["张伟", "张伟强"]),  # 1 character, a surname: a prefix
        ("雨桐", ["欧阳雨桐"]),  # 2 characters, not at the start
        ("欧阳", ["欧阳雨桐"]),  # a double surname
        ("阳雨桐", ["欧阳雨桐"]),  # 3 characters: the trigram index
        ("欧阳雨桐", ["欧阳雨桐"]),
        ("章伟", ["章伟"]),  # sound-alike names stay apart
        ("张伟", ["张伟", "张伟强"]),  # exact first, then the longer name
        ("科技", ["欧阳雨桐"]),  # 2 characters of the company
        ("星辰科技", ["欧阳雨桐"]),
        ("静", ["李静"]),
    ],
)
async def test_search_in_chinese(base: CustomerBase, query: str, expected: list[str]) -> None:
    found = await names(base, query)
    assert found == expected or sorted(found) == sorted(expected)
    assert found[0] == expected[0]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("nunez", ["José Núñez"]),
        ("NÚÑ", ["José Núñez"]),
        ("josé", ["José Núñez"]),
        ("j", ["José Núñez"]),  # 1-2 Latin letters: the name prefix
        ("o'brien", ["Zoë O'Brien"]),
        ("acme", ["Zoë O'Brien"]),
        ("[bold]", ["[bold]Markup[/bold] Test"]),
        ('"quoted', []),
        ("nobody here", []),
    ],
)
async def test_search_in_latin_partial(base: CustomerBase, query: str, expected: list[str]) -> None:
    assert await names(base, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("13812345678", ["张伟", "张伟强"]),  # a family phone: both
        ("0086 139-0000-1111", ["章伟"]),
        ("+86 10 6234 5678", ["欧阳雨桐"]),
        ("020 7946 0958", []),  # read as a Chinese number: not José's
        ("+44 20 7946 0958", ["José Núñez"]),
        ("#4", ["José Núñez"]),
        ("5", ["李静"]),
        ("LI.JING@example.com", ["李静"]),
        ("yutong@example.org", ["欧阳雨桐"]),
        ("zhang.wei@", ["张伟"]),
    ],
)
async def test_search_by_number_id_and_email(
    base: CustomerBase, query: str, expected: list[str]
) -> None:
    assert await names(base, query) == expected


async def test_search_limit(base: CustomerBase) -> None:
    assert len(await base.search("伟", limit=2)) == 2
    assert len(await base.search("伟", limit=0)) == 1


async def test_search_queries_use_indexes_not_scans(base: CustomerBase) -> None:
    with sqlite3.connect(base.store.path) as db:
        plans = {
            "prefix": "SELECT id FROM customers WHERE name_key >= ? AND name_key < ?"
            " ORDER BY name_key, id LIMIT 20",
            "grams": "SELECT rowid FROM customer_grams WHERE customer_grams MATCH ?"
            " ORDER BY rowid LIMIT 20",
            "trigram": "SELECT rowid FROM customer_search WHERE customer_search MATCH ? LIMIT 20",
            "email": "SELECT customer_id FROM customer_emails WHERE email_key = ?"
            " ORDER BY customer_id LIMIT 20",
        }
        for label, sql in plans.items():
            steps = [
                row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, ("x",) * sql.count("?"))
            ]
            assert not any(s.startswith("SCAN") and "VIRTUAL" not in s for s in steps), (
                label,
                steps,
            )
            assert any("INDEX" in s or "PRIMARY KEY" in s for s in steps), (label, steps)


async def test_saving_replaces_phones_emails_and_search_keys(base: CustomerBase) -> None:
    renamed = PEOPLE[1].model_copy(
        update={"name": "章建国", "phones": (parse_phone("13700000000", "CN"),)}
    )
    assert await base.save_customers([renamed]) == [2]
    assert await names(base, "13900001111") == []
    assert await names(base, "13700000000") == ["章建国"]
    assert await names(base, "建国") == ["章建国"]
    assert "章伟" not in await names(base, "伟")
    [new_id] = await base.save_customers([Customer(id=0, name="新客户")])
    assert new_id == 9
    assert await base.get(9) == Customer(id=9, name="新客户")


async def test_stored_customer_keeps_every_contact_field(base: CustomerBase) -> None:
    stored = await base.get(3)
    assert stored == PEOPLE[2]
    assert stored is not None
    assert stored.phones[0].extension == "8"


# --- history, orders, service items, value -------------------------------------------


async def test_service_items_open_dispatch_escalate_and_close(base: CustomerBase) -> None:
    low = await base.open_service_item(1, "发票", now=NOW, priority=ServicePriority.LOW)
    urgent = await base.open_service_item(
        1, "断网", now=NOW, priority=ServicePriority.URGENT, due_at=NOW + 3600, detail="整栋楼"
    )
    assert [i.id for i in await base.service_items(1)] == [urgent.id, low.id]
    moved = await base.update_service_item(
        urgent.id, now=NOW + 60, status=ServiceStatus.IN_PROGRESS, assignee="1002"
    )
    assert (moved.status, moved.assignee, moved.updated_at) == (
        ServiceStatus.IN_PROGRESS,
        "1002",
        NOW + 60,
    )
    assert not moved.overdue(NOW + 3599)
    assert moved.overdue(NOW + 3601)
    assert await base.overdue_service_items(NOW + 3601) == [moved]
    # Overdue: escalated once, again only after every_s more.
    assert await base.escalate_overdue("supervisor", now=NOW + 3601, every_s=DAY) == 1
    assert await base.escalate_overdue("supervisor", now=NOW + 7200, every_s=DAY) == 0
    assert await base.escalate_overdue("manager", now=NOW + 3601 + DAY, every_s=DAY) == 1
    item = (await base.service_items(1))[0]
    assert (item.escalation_level, item.escalated_to, item.escalated_at) == (
        2,
        "manager",
        NOW + 3601 + DAY,
    )
    by_hand = await base.escalate_service_item(low.id, "team-lead", now=NOW)
    assert by_hand.escalation_level == 1
    await base.update_service_item(urgent.id, now=NOW + DAY * 2, status=ServiceStatus.RESOLVED)
    assert [i.id for i in await base.service_items(1)] == [low.id]
    assert len(await base.service_items(1, open_only=False)) == 2


async def test_changing_a_missing_service_item_says_so(base: CustomerBase) -> None:
    from cti.errors import StoreError

    with pytest.raises(StoreError, match="no service item 99"):
        await base.update_service_item(99, now=NOW, status=ServiceStatus.CLOSED)
    with pytest.raises(StoreError, match="no service item 99"):
        await base.escalate_service_item(99, "x", now=NOW)


async def test_history_keeps_script_answers(base: CustomerBase) -> None:
    answers: dict[str, str | int | float | bool | None] = {
        "满意度": 5,
        "原因": "网速慢",
        "ok": True,
    }
    await base.add_interaction(
        1, Interaction(at=NOW, disposition="resolved", call_id="c1", script_answers=answers)
    )
    [last] = await base.history(1)
    assert (last.call_id, last.script_answers) == ("c1", answers)


async def test_orders_skip_a_reference_seen_before(base: CustomerBase) -> None:
    order = Order(customer_id=1, ordered_at=NOW - DAY, amount=99.5, reference="SO-1")
    assert await base.add_orders([order, Order(customer_id=1, ordered_at=NOW, amount=1)]) == 2
    assert await base.add_orders([order]) == 0
    assert [o.amount for o in await base.orders(1)] == [1.0, 99.5]


async def test_rescore_and_card_explain_the_value(base: CustomerBase) -> None:
    await base.add_orders(
        [Order(customer_id=1, ordered_at=NOW - d * DAY, amount=5000.0) for d in (1, 30, 200)]
        + [Order(customer_id=1, ordered_at=NOW - 400 * DAY, amount=1e6)]  # outside the window
    )
    await base.add_interaction(1, Interaction(at=NOW - DAY))
    report = await base.rescore(NOW)
    assert report.customers == len(PEOPLE)
    assert report.segments["basic"] == len(PEOPLE) - 1
    explanation = await base.explain(1)
    assert explanation is not None
    factors = {f.name: f for f in explanation.factors}
    assert factors["frequency"].detail == "3 orders in 365 days"
    assert factors["monetary"].detail == "15,000.00 spent in 365 days"
    assert factors["recency"].detail == "last order 1 days ago"
    assert factors["engagement"].detail == "1 contact in 365 days"
    stored = await base.get(1)
    assert stored is not None
    assert stored.value == explanation.value
    assert stored.segment is explanation.segment
    card = await base.store.customer_card(1)
    assert card.value_inputs is not None
    assert card.value_inputs.orders == 3
    assert await base.explain(99) is None


async def test_identify_pops_every_match_items_and_explanation(base: CustomerBase) -> None:
    await base.add_orders([Order(customer_id=8, ordered_at=NOW, amount=800.0)])
    await base.rescore(NOW)
    await base.open_service_item(8, "退款", now=NOW, due_at=NOW + DAY)
    service = engine_service(base.store, config=Config(), agents={})
    caller = await service.identify("0086 138 1234 5678")
    assert caller.kind is CallerKind.KNOWN
    assert [c.id for c in caller.matches] == [8, 1]  # most valuable first
    assert caller.customer == caller.matches[0]
    assert [i.title for i in caller.service_items] == ["退款"]
    assert caller.value_explanation is not None
    assert caller.value_explanation.value == caller.value > 0
    unknown = await service.identify("13700000000")
    assert (unknown.kind, unknown.e164, unknown.matches) == (
        CallerKind.UNKNOWN,
        "+8613700000000",
        (),
    )


async def test_store_made_before_the_search_migration_is_indexed_on_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    async with await Store.open(path, migrations=MIGRATIONS[:5]):
        pass
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO customers (id, name, value, segment, language, time_zone, email)"
            " VALUES (1, '欧阳雨桐', 10, 'basic', 'zh', 'Asia/Shanghai', 'Old@Example.com')"
        )
        db.execute(
            "INSERT INTO customer_phones (customer_id, raw, e164, kind)"
            " VALUES (1, '13812345678', '+8613812345678', 'mobile')"
        )
    async with await Store.open(path) as store:
        base = CustomerBase(store)
        for query in ("雨", "雨桐", "阳雨桐", "old@example.com", "13812345678"):
            assert await names(base, query) == ["欧阳雨桐"], query
        assert await base.reindex() == 0  # nothing left to index
