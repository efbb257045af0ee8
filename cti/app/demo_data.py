"""Demo customers: deterministic, realistic enough to exercise routing and the console.

Values are skewed (most customers low value, a few high), so the five segments form a
pyramid. Each value is the score (:mod:`cti.scoring`) of the customer's generated orders
and contacts: a target drawn for the customer is turned into orders that score about
that much, so the screen-pop's "why this priority" explains the stored value. Some
customers have a company, an address, an owner agent, a second e-mail address, and open
or escalated service items. About half the names are Chinese, half Latin, with a few
traps for the display: accents, a long CJK name, sound-alike names written
differently, and one name that looks like Rich markup. Numbers are valid and unique,
except a handful of family phones that two customers share.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import phonenumbers

from cti.customers.base import CustomerBase
from cti.models import (
    Customer,
    Interaction,
    Order,
    PhoneNumber,
    PhoneType,
    Segment,
    ServiceItem,
    ServicePriority,
    ServiceStatus,
)
from cti.scoring import DAY_S, ValueInputs, ValueModel, value_of
from cti.store.database import Store

#: A fixed day for the generators' defaults (tests): 2026-01-05 08:00 UTC.
DEMO_NOW = 1767600000.0


def demo_now(day: date | None = None) -> float:
    """The moment a demo base seeded on ``day`` (default: today, UTC) is dated back
    from: that day's midnight UTC, so the same seed gives the same base all day long
    and none of its history is in the future."""
    day = day or datetime.now(UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


#: Names every dataset starts with (when ``n`` allows): display traps and sound-alikes.
SPECIAL_NAMES: tuple[tuple[str, str, bool], ...] = (
    # (name, e-mail local part, is Chinese)
    ("[bold]Markup[/bold] Test", "markup.test", False),
    ("爱新觉罗启星", "aixinjueluo.qixing", True),
    ("张伟", "zhang.wei", True),
    ("章伟", "zhang.wei", True),
    ("李静", "li.jing", True),
    ("李婧", "li.jing", True),
    ("José Núñez", "jose.nunez", False),
    ("Zoë O'Brien", "zoe.obrien", False),
)

# (characters, pinyin); 张/章, 徐/许 and 晨/辰, 静/婧 sound alike.
_CN_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("林", "lin"), ("高", "gao"), ("罗", "luo"),
    ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"),
    ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("章", "zhang"), ("汪", "wang"), ("叶", "ye"), ("苏", "su"), ("范", "fan"),
    ("欧阳", "ouyang"), ("司马", "sima"), ("诸葛", "zhuge"), ("上官", "shangguan"),
)  # fmt: skip
_CN_GIVEN = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("静", "jing"), ("婧", "jing"),
    ("敏", "min"), ("丽", "li"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"),
    ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("涛", "tao"),
    ("明", "ming"), ("超", "chao"), ("霞", "xia"), ("晨", "chen"), ("辰", "chen"),
    ("秀英", "xiuying"), ("桂英", "guiying"), ("建华", "jianhua"), ("建国", "jianguo"),
    ("志强", "zhiqiang"), ("欣怡", "xinyi"), ("子涵", "zihan"), ("梓轩", "zixuan"),
    ("雨桐", "yutong"), ("思远", "siyuan"), ("俊杰", "junjie"), ("海燕", "haiyan"),
)  # fmt: skip
_LATIN_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
    "William", "Elizabeth", "David", "Sarah", "Oliver", "Amelia", "Harry", "Isla",
    "George", "Emily", "Noah", "Olivia", "José", "Zoë", "Chloé", "François", "Renée",
    "Søren", "Björn", "Siobhán", "Anaïs", "Noël",
)  # fmt: skip
_LATIN_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "García",
    "Rodríguez", "Wilson", "Taylor", "Evans", "Thomas", "Roberts", "O'Brien", "Murphy",
    "Müller", "Schröder", "Lefèvre", "Núñez", "Kowalski", "Andersson", "Walker",
    "Wright", "Hughes", "Clarke",
)  # fmt: skip
_ASCII_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae"})

_TIME_ZONES = {"CN": "Asia/Shanghai", "GB": "Europe/London", "US": "America/New_York"}
_CN_MOBILE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *(f"15{d}" for d in "012356789"),
    *(f"18{d}" for d in range(10)),
)
_US_AREA_CODES = ("212", "347", "415", "646", "718", "917")
_DISPOSITIONS = ("resolved", "resolved", "follow-up", "sale", "no-sale")
_NOTES = {
    "zh": ("咨询账单", "更换套餐", "投诉已处理", "预约回访", "购买新设备"),
    "en": ("Billing question", "Plan change", "Complaint handled", "Asked for a callback",
           "Bought a new device"),
}  # fmt: skip
_MAX_DRAWS = 1000
_COMPANIES = {
    "zh": ("北京星辰科技有限公司", "上海浦江贸易有限公司", "深圳海岸电子", "杭州云端网络"),
    "en": ("Acme Ltd", "Northwind Traders", "Globex plc", "Initech Inc."),
}
_ADDRESSES = {
    "zh": ("北京市朝阳区建国路88号", "上海市浦东新区世纪大道100号", "深圳市南山区科技园"),
    "en": ("221B Baker Street, London", "350 Fifth Avenue, New York", "10 Downing St, London"),
}
_TICKETS = {
    "zh": ("宽带断网", "账单有误", "设备维修", "套餐变更", "投诉处理", "退款申请"),
    "en": ("Line down", "Wrong bill", "Device repair", "Plan change", "Complaint", "Refund"),
}
_OWNERS = tuple(str(agent) for agent in range(1001, 1012))


@dataclass
class _Draft:
    """A customer being generated; phones are ``(raw, e164, kind)``."""

    name: str
    email_local: str
    language: str
    region: str
    value: float
    """The value the generated orders should score."""
    phones: list[tuple[str, str, PhoneType]] = field(default_factory=list)


def generate_customers(
    n: int = 2000, seed: int = 7, default_region: str = "CN", now: float = DEMO_NOW
) -> list[Customer]:
    """``n`` demo customers with ids 1..n, the same for the same seed.

    Phones are entered as a clerk in ``default_region`` would: national form for that
    region's numbers, international otherwise. ``n / 200`` home numbers (one at least)
    are each shared by two customers, as a family phone. Values are the scores of
    :func:`generate_orders` and :func:`generate_interactions` at ``now``.
    """
    return _generate(n, seed, default_region, now)[0]


def generate_orders(
    n: int = 2000, seed: int = 7, default_region: str = "CN", now: float = DEMO_NOW
) -> list[Order]:
    """The orders behind the values of ``generate_customers(n, seed)``, dated before ``now``."""
    return _generate(n, seed, default_region, now)[1]


def _generate(
    n: int, seed: int, default_region: str, now: float
) -> tuple[list[Customer], list[Order]]:
    rng = random.Random(seed)
    numbers = _NumberDrawer(rng, default_region)
    drafts = [_draft(rng, numbers, i) for i in range(n)]
    _share_family_phones(rng, numbers, drafts)
    emails: set[str] = set()
    unscored = [
        Customer(
            id=i,
            name=d.name,
            phones=tuple(
                PhoneNumber(raw=raw, e164=e164, kind=kind) for raw, e164, kind in d.phones
            ),
            language=d.language,
            time_zone=_TIME_ZONES[d.region],
            email=_unique_email(rng, d, emails),
        )
        for i, d in enumerate(drafts, start=1)
    ]
    contacts = Counter(cid for cid, _ in generate_interactions(unscored, seed, now))
    extras = random.Random(f"{seed}:contacts")
    order_rng = random.Random(f"{seed}:orders")
    model = ValueModel()
    customers: list[Customer] = []
    orders: list[Order] = []
    for customer, draft in zip(unscored, drafts, strict=True):
        mine = _orders_for(order_rng, customer.id, draft.value, contacts[customer.id], model, now)
        orders += mine
        value = value_of(_inputs(mine, contacts[customer.id], now), model)
        customers.append(
            customer.model_copy(
                update={"value": value, "segment": Segment.for_value(value)}
                | _contact_extras(extras, customer, emails)
            )
        )
    return customers, orders


def _inputs(orders: list[Order], contacts: int, now: float) -> ValueInputs:
    """What the store measures of these orders (all within the window) at ``now``."""
    ordered = sorted(orders, key=lambda o: o.ordered_at)
    return ValueInputs(
        scored_at=now,
        last_order_at=ordered[-1].ordered_at if ordered else None,
        orders=len(ordered),
        spent=sum(o.amount for o in ordered),
        contacts=contacts,
    )


def _orders_for(
    rng: random.Random,
    customer_id: int,
    target: float,
    contacts: int,
    model: ValueModel,
    now: float,
) -> list[Order]:
    """Orders within the window whose score, with ``contacts``, is about ``target``.

    Recency and frequency are set to the target's share, and the amount spent makes up
    the rest; a target below what one order scores gets none.
    """
    goal = target - model.engagement_points * contacts / (contacts + model.engagement_half)
    if goal < 10.0:
        return []
    share = min(goal / 100.0, 1.0)
    count = max(1, round(math.expm1(share * math.log1p(model.frequency_cap))))
    days = min(model.recency_half_life_days * math.log2(1.0 / share), model.window_days - 2)
    recency = 100.0 * 0.5 ** (days / model.recency_half_life_days)
    frequency = 100.0 * min(1.0, math.log1p(count) / math.log1p(model.frequency_cap))
    rest = goal - model.recency_weight * recency - model.frequency_weight * frequency
    monetary = min(max(rest / model.monetary_weight, 0.0), 100.0)
    spent = max(math.expm1(monetary / 100.0 * math.log1p(model.monetary_cap)), count * 1.0)
    last = round(now - days * DAY_S)
    times = [last] + [
        round(rng.uniform(now - (model.window_days - 1) * DAY_S, last)) for _ in range(count - 1)
    ]
    weights = [rng.uniform(0.5, 1.5) for _ in range(count)]
    return [
        Order(
            customer_id=customer_id,
            ordered_at=float(at),
            amount=round(spent * weight / sum(weights), 2),
            currency="CNY",
            reference=f"SO-{customer_id}-{k + 1}",
        )
        for k, (at, weight) in enumerate(zip(sorted(times), weights, strict=True))
    ]


def _contact_extras(rng: random.Random, customer: Customer, taken: set[str]) -> dict[str, object]:
    """A company, an address, an owner and a second address for some customers."""
    language = "zh" if customer.language == "zh" else "en"
    extras: dict[str, object] = {}
    if rng.random() < 0.25:
        extras["company"] = rng.choice(_COMPANIES[language])
    if rng.random() < 0.4:
        extras["address"] = rng.choice(_ADDRESSES[language])
    if rng.random() < 0.1:
        extras["owner"] = rng.choice(_OWNERS)
    if customer.email and rng.random() < 0.15:
        local, _, _ = customer.email.partition("@")
        second = f"{local}@work.example.com"
        if second not in taken:
            taken.add(second)
            extras["other_emails"] = (second,)
    return extras


def generate_service_items(
    customers: Iterable[Customer], seed: int = 7, now: float = DEMO_NOW
) -> list[ServiceItem]:
    """Service items for about one customer in ten: some open, some overdue and
    escalated, some resolved. Ids run from 1."""
    rng = random.Random(f"{seed}:items")
    items: list[ServiceItem] = []
    for customer in customers:
        if rng.random() >= 0.1:
            continue
        titles = _TICKETS["zh" if customer.language == "zh" else "en"]
        for _ in range(rng.choice((1, 1, 2))):
            created = round(now - rng.uniform(DAY_S / 4, 30 * DAY_S))
            due = created + rng.choice((1, 2, 3, 5)) * DAY_S
            status = rng.choice(
                (ServiceStatus.OPEN, ServiceStatus.IN_PROGRESS, ServiceStatus.WAITING,
                 ServiceStatus.RESOLVED)
            )  # fmt: skip
            overdue = status.is_open and due < now
            escalated = overdue and rng.random() < 0.6
            items.append(
                ServiceItem(
                    id=len(items) + 1,
                    customer_id=customer.id,
                    title=rng.choice(titles),
                    status=status,
                    priority=rng.choice(tuple(ServicePriority)),
                    created_at=created,
                    updated_at=due if escalated else created,
                    due_at=due,
                    assignee=rng.choice(_OWNERS),
                    escalation_level=1 if escalated else 0,
                    escalated_at=due if escalated else None,
                    escalated_to="supervisor" if escalated else "",
                )
            )
    return items


def generate_interactions(
    customers: Iterable[Customer], seed: int = 7, now: float = DEMO_NOW
) -> list[tuple[int, Interaction]]:
    """Past contacts, within the year before ``now``, for about a third of the customers."""
    rng = random.Random(seed)
    history: list[tuple[int, Interaction]] = []
    for customer in customers:
        if rng.random() >= 0.35:
            continue
        notes = _NOTES["zh" if customer.language == "zh" else "en"]
        for _ in range(rng.randint(1, 5)):
            history.append(
                (
                    customer.id,
                    Interaction(
                        at=round(now - rng.uniform(3600.0, 365 * 86400.0)),
                        channel=rng.choice(("call", "call", "call", "email", "chat")),
                        disposition=rng.choice(_DISPOSITIONS),
                        agent_id=f"agent-{rng.randint(1, 12):02d}",
                        note=rng.choice(notes),
                    ),
                )
            )
    return history


async def seed_store(
    store: Store, n: int = 2000, seed: int = 7, *, now: float | None = None
) -> int:
    """Load the demo customers, their history, orders and service items into an empty
    store, dated back from ``now`` (default: :func:`demo_now`, today), and score them
    then; return how many.

    A store that already has customers is left alone (returns 0).
    """
    if await store.customer_count():
        return 0
    now = demo_now() if now is None else now
    customers, orders = _generate(n, seed, "CN", now)
    base = CustomerBase(store)
    await base.add_customers(customers)
    await store.add_interactions(generate_interactions(customers, seed, now))
    await base.add_orders(orders)
    await base.add_service_items(generate_service_items(customers, seed, now))
    await base.rescore(now)
    return len(customers)


def numbers_for_callers(
    customers: Iterable[Customer], default_region: str = "CN", seed: int = 7
) -> list[str]:
    """Each distinct number of ``customers`` once, as a line might present it.

    Numbers of ``default_region`` come in national forms (``13812345678``,
    ``010-6234-5678``, ``0755 8612 3456``) or international ones (``+86...``,
    ``0086...``); other numbers as ``+...`` or ``00...``.
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    presented: list[str] = []
    for customer in customers:
        for phone in customer.phones:
            if phone.e164 in seen:
                continue
            seen.add(phone.e164)
            presented.append(_as_presented(rng, phone.e164, default_region))
    return presented


def _as_presented(rng: random.Random, e164: str, default_region: str) -> str:
    number = phonenumbers.parse(e164)
    forms = [e164, "00" + e164[1:]]
    if phonenumbers.region_code_for_number(number) == default_region:
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        forms += [*_spellings(national)] * 2
    return rng.choice(forms)


class _NumberDrawer:
    """Draws valid numbers never drawn before, written as entered in ``home_region``."""

    def __init__(self, rng: random.Random, home_region: str) -> None:
        self._rng = rng
        self._home_region = home_region
        self._used: set[str] = set()

    def draw(self, region: str, kind: PhoneType) -> tuple[str, str, PhoneType]:
        """A new number of ``region`` as ``(raw, e164, kind)``."""
        for _ in range(_MAX_DRAWS):
            number = phonenumbers.parse(self._digits(region, kind), region)
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if e164 not in self._used and phonenumbers.is_valid_number(number):
                self._used.add(e164)
                return self._as_entered(number), e164, kind
        raise RuntimeError(f"no free valid {kind} number for {region} after {_MAX_DRAWS} draws")

    def _digits(self, region: str, kind: PhoneType) -> str:
        """National significant digits of a plausible number."""
        rng = self._rng
        mobile = kind is PhoneType.MOBILE
        if region == "CN":
            if mobile:
                return rng.choice(_CN_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
            return (
                rng.choice(("10", "21", "755")) + f"{rng.randint(2, 8)}{rng.randrange(10**7):07d}"
            )
        if region == "GB":
            if mobile:
                return f"7{rng.choice('45789')}{rng.randrange(10**8):08d}"
            return f"20{rng.choice('378')}{rng.randrange(10**7):07d}"
        return f"{rng.choice(_US_AREA_CODES)}{rng.randint(200, 999)}{rng.randrange(10**4):04d}"

    def _as_entered(self, number: phonenumbers.PhoneNumber) -> str:
        """National form for a home-region number (spaced, dashed or bare), else international."""
        if phonenumbers.region_code_for_number(number) == self._home_region:
            text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        else:
            text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        return self._rng.choice(_spellings(text))


def _spellings(formatted: str) -> tuple[str, str, str]:
    """A formatted number spaced, dashed and bare: ``010 6234 5678``, ``010-6234-5678``..."""
    return formatted, formatted.replace(" ", "-"), formatted.replace(" ", "")


def _draft(rng: random.Random, numbers: _NumberDrawer, index: int) -> _Draft:
    if index < len(SPECIAL_NAMES):
        name, email_local, chinese = SPECIAL_NAMES[index]
    else:
        chinese = rng.random() < 0.5
        name, email_local = _chinese_name(rng) if chinese else _latin_name(rng)
    if chinese:
        region = rng.choices(("CN", "GB", "US"), weights=(90, 5, 5))[0]
    else:
        region = rng.choices(("CN", "GB", "US"), weights=(20, 40, 40))[0]
    # Beta(1, 1.8): a decreasing density, so platinum < gold < silver < bronze < basic.
    draft = _Draft(
        name=name,
        email_local=email_local,
        language="zh" if chinese else "en",
        region=region,
        value=round(100.0 * rng.betavariate(1.0, 1.8), 1),
    )
    draft.phones.append(numbers.draw(region, PhoneType.MOBILE))
    for _ in range(rng.choices((0, 1, 2), weights=(55, 33, 12))[0]):
        extra = rng.random()
        if extra < 0.4:
            draft.phones.append(numbers.draw(region, PhoneType.HOME))
        elif extra < 0.7:
            draft.phones.append(numbers.draw(region, PhoneType.WORK))
        else:  # a second mobile, often a Chinese one for people living abroad or visiting
            draft.phones.append(numbers.draw(rng.choice((region, "CN")), PhoneType.MOBILE))
    return draft


def _share_family_phones(rng: random.Random, numbers: _NumberDrawer, drafts: list[_Draft]) -> None:
    """Give one new home number to each of ``n / 200`` pairs of customers (one pair at least)."""
    pairs = max(round(len(drafts) / 200), 1) if len(drafts) >= 2 else 0
    chosen = rng.sample(range(len(drafts)), 2 * pairs)
    for a, b in zip(chosen[::2], chosen[1::2], strict=True):
        home = numbers.draw(drafts[a].region, PhoneType.HOME)
        for index in (a, b):
            phones = drafts[index].phones
            if len(phones) == 3:
                phones.pop()
            phones.append(home)


def _chinese_name(rng: random.Random) -> tuple[str, str]:
    surname, surname_pinyin = rng.choice(_CN_SURNAMES)
    given, given_pinyin = rng.choice(_CN_GIVEN)
    return surname + given, f"{surname_pinyin}.{given_pinyin}"


def _latin_name(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(_LATIN_FIRST), rng.choice(_LATIN_LAST)
    return f"{first} {last}", f"{_ascii(first)}.{_ascii(last)}"


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum()).lower()


def _unique_email(rng: random.Random, draft: _Draft, taken: set[str]) -> str:
    """An address at an example domain (one in ten customers has none)."""
    if rng.random() < 0.1:
        return ""
    domain = rng.choice(("example.com", "example.net", "example.org"))
    local = draft.email_local
    suffix = 1
    while f"{local}@{domain}" in taken:
        suffix += 1
        local = f"{draft.email_local}{suffix}"
    taken.add(f"{local}@{domain}")
    return f"{local}@{domain}"
