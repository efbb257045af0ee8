"""The customer rows of the store: customers with their phones, e-mails and search keys,
their contact history, and the card a screen-pop shows (history, open service items,
value inputs). :class:`CustomerRows` works over a :class:`~cti.store.database.Store`'s
connection; the customer base (:mod:`cti.customers.base`) builds on it.

The search keys are written with the rows: the folded name (a prefix index), the folded
text of name, company and e-mails (an FTS5 trigram index), and the CJK characters and
pairs of each name and company (the ``grams`` column, separated by spaces, indexed by the
FTS5 table ``customer_grams``, for 1-2 character queries; see :func:`gram_text`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from operator import add
from typing import TYPE_CHECKING, Any

import aiosqlite

from cti.models import Customer, Interaction, ServiceItem
from cti.scoring import ValueInputs

if TYPE_CHECKING:
    from cti.store.database import Store

#: Rows written or read per statement batch (keeps transactions and memory bounded).
BATCH = 5000


# --- search keys ---------------------------------------------------------------------


#: Han characters (CJK unified ideographs and extension A): none decomposes, has a case,
#: combines or is a space, so a text of these alone folds to itself (a Chinese name).
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]+")


def fold(text: str) -> str:
    """``text`` as search compares it: NFKC width, accents dropped, case folded,
    whitespace collapsed. ``"José  NÚÑEZ"`` -> ``"jose nunez"``; ``"ＡＢＣ"`` -> ``"abc"``."""
    if text.isascii():  # nothing to decompose; casefold is lower
        return " ".join(text.lower().split())
    if _HAN.fullmatch(text):  # most Chinese names and companies: unchanged
        return text
    return fold_unicode(text)


def fold_unicode(text: str) -> str:
    """:func:`fold` by the Unicode tables, whatever the text."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(unicodedata.normalize("NFC", bare).casefold().split())


def is_cjk(ch: str) -> bool:
    """A character of a script written without spaces: Han, kana, Hangul."""
    code = ord(ch)
    return (
        0x2E80 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x3FFFF
    )


#: A run of the characters :func:`is_cjk` accepts.
_CJK_RUN = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff]+")


def name_grams(name_key: str) -> set[str]:
    """Every CJK character and every pair of adjacent CJK characters of a folded name."""
    if name_key.isascii():  # a Latin name: none (and no loop over its characters)
        return set()
    grams: set[str] = set()
    for run in _CJK_RUN.findall(name_key):
        grams.update(run)
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def gram_text(*keys: str) -> str:
    """The ``grams`` column of a customer with these folded keys (name, company): the
    :func:`name_grams` of each, each run's characters then its pairs, separated by spaces
    (one token each for ``customer_grams``' ascii tokenizer, as a gram has no ASCII
    character). A gram may come twice (a character of the name in the company): the
    index finds the customer all the same, and no set is made and sorted per row."""
    grams: list[str] = []
    for key in keys:
        if not key.isascii():  # a Latin key: none (and no loop over its characters)
            for run in _CJK_RUN.findall(key):
                grams += run
                grams += map(add, run, run[1:])
    return " ".join(grams)


def search_text(customer: Customer) -> str:
    """The folded text the trigram index holds: name, company and e-mail addresses."""
    return search_keys(customer)[1]


def search_keys(customer: Customer) -> tuple[str, str, str]:
    """The folded name, the folded text the trigram index holds (name, company, e-mail
    addresses) and the CJK grams of name and company (:func:`gram_text`): each part
    folded once."""
    emails = (customer.email, *customer.other_emails)
    return search_keys_of(customer.name, customer.company, emails)


def search_keys_of(
    name: str, company: str, emails: Sequence[str], name_key: str | None = None
) -> tuple[str, str, str]:
    """:func:`search_keys` of a customer with this name (folded: ``name_key``, if known),
    company and e-mail addresses."""
    name_key = fold(name) if name_key is None else name_key
    company_key = fold(company) if company else ""
    keys = [name_key] if name else []
    if company:
        keys.append(company_key)
    keys += [fold(e) for e in emails if e]
    grams = gram_text(name_key, company_key) if company_key else gram_text(name_key)
    return name_key, "\n".join(keys), grams


#: The most texts a :func:`search_keys_cached` cache keeps (then it starts again).
KEY_CACHE_SIZE = 1 << 16


def search_keys_cached(
    name: str, company: str, emails: Sequence[str], cache: dict[str, tuple[str, str]]
) -> tuple[str, str, str]:
    """:func:`search_keys_of`'s answer, each name and company folded and its grams made
    once while ``cache`` (the text's fold and grams by text) keeps it: in a large import
    names and companies repeat (a family name, an employer) where addresses do not."""
    name_key, grams = _folded(name, cache) if name else ("", "")
    keys = [name_key] if name else []
    if company:
        company_key, company_grams = _folded(company, cache)
        keys.append(company_key)
        if company_grams:  # gram_text(name_key, company_key): each key's grams in turn
            grams = f"{grams} {company_grams}" if grams else company_grams
    keys += [fold(e) for e in emails if e]
    return name_key, "\n".join(keys), grams


def _folded(text: str, cache: dict[str, tuple[str, str]]) -> tuple[str, str]:
    found = cache.get(text)
    if found is None:
        if len(cache) >= KEY_CACHE_SIZE:
            cache.clear()
        key = fold(text)
        found = cache[text] = (key, gram_text(key))
    return found


@dataclass(frozen=True, slots=True)
class CustomerCard:
    """What the screen-pop shows of one customer beyond the customer record."""

    history: tuple[Interaction, ...] = ()
    service_items: tuple[ServiceItem, ...] = ()
    value_inputs: ValueInputs | None = None


_CUSTOMER_COLUMNS = (
    "id, name, value, segment, language, time_zone, email, company, address, owner,"
    " name_key, search_text, grams"
)
_UPSERT_CUSTOMER = (
    f"INSERT INTO customers ({_CUSTOMER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, value = excluded.value,"
    " segment = excluded.segment, language = excluded.language,"
    " time_zone = excluded.time_zone, email = excluded.email, company = excluded.company,"
    " address = excluded.address, owner = excluded.owner, name_key = excluded.name_key,"
    " search_text = excluded.search_text, grams = excluded.grams"
)
_INSERT_CUSTOMER = (
    f"INSERT INTO customers ({_CUSTOMER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_PHONE = (
    "INSERT INTO customer_phones (customer_id, raw, e164, kind, extension) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_EMAIL = (
    "INSERT INTO customer_emails (customer_id, position, email, email_key) VALUES (?, ?, ?, ?)"
)
JSON_IDS = "SELECT value FROM json_each(?)"

SERVICE_COLUMNS = (
    "id, customer_id, title, detail, status, priority, created_at, updated_at, due_at,"
    " assignee, escalation_level, escalated_at, escalated_to"
)
PRIORITY_ORDER = (
    "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END"
)
OPEN_STATUSES = "('open', 'in_progress', 'waiting')"
VALUE_INPUTS_SQL = (
    "SELECT scored_at, last_order_at, window_orders, window_spent, window_contacts"
    " FROM customers WHERE id = ?"
)


def service_items_sql(open_only: bool) -> str:
    """A customer's service items (``customer_id``, ``limit``), most urgent first."""
    where = f" AND status IN {OPEN_STATUSES}" if open_only else ""
    return (
        f"SELECT {SERVICE_COLUMNS} FROM service_items WHERE customer_id = ?{where}"
        f" ORDER BY {PRIORITY_ORDER}, due_at IS NULL, due_at, id LIMIT ?"
    )


def value_inputs_from_row(row: Sequence[Any]) -> ValueInputs | None:
    """A row of :data:`VALUE_INPUTS_SQL` as what the score came from (None: never scored)."""
    scored_at, last, orders, spent, contacts = row
    if scored_at is None:
        return None
    return ValueInputs(
        scored_at=scored_at,
        last_order_at=last,
        orders=int(orders),
        spent=float(spent),
        contacts=int(contacts),
    )


class CustomerRows:
    """Customers, their history and their card, read and written through the store's
    transactions; a failure comes out as :class:`~cti.errors.StoreError` naming what
    was being done."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add_customers(self, customers: Iterable[Customer]) -> int:
        """Insert new customers (ids given) with their phones and e-mails; return how many.

        Phones must already be normalised. A duplicate id fails the whole batch.
        """
        batch = list(customers)

        async def insert(connection: aiosqlite.Connection) -> None:
            await _write_customers(connection, batch, replace=False)

        await self.store.write(f"adding {len(batch)} customers", insert)
        return len(batch)

    async def save_customers(self, customers: Sequence[Customer]) -> list[int]:
        """Insert or replace customers in one transaction; return their ids.

        A customer with id 0 is new and gets the next free id; one with an id that
        exists replaces it (phones and e-mails too; orders, history and items stay).
        """
        batch = list(customers)

        async def save(connection: aiosqlite.Connection) -> list[int]:
            cursor = await connection.execute("SELECT coalesce(max(id), 0) FROM customers")
            row = await cursor.fetchone()
            # New ids follow the largest id, stored or given in this batch.
            next_id = max([int(row[0]) if row else 0, *(c.id for c in batch)])
            saved: list[Customer] = []
            for customer in batch:
                if customer.id <= 0:
                    next_id += 1
                    customer = customer.model_copy(update={"id": next_id})
                saved.append(customer)
            await _write_customers(connection, saved, replace=True)
            return [c.id for c in saved]

        return await self.store.write(f"saving {len(batch)} customers", save)

    async def get(self, customer_id: int) -> Customer | None:
        """The customer with this id, or None."""
        return await self.store.get_customer(customer_id)

    async def get_many(self, ids: Sequence[int]) -> list[Customer]:
        """The customers with these ids that exist, in the order of ``ids``."""
        found = {c.id: c for c in await self.store.customers_by_ids(list(ids))}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def holders(self, e164s: Iterable[str]) -> dict[str, set[int]]:
        """For each of these E.164 numbers that a customer holds: who holds it."""
        numbers = list(set(e164s))  # any order: SQLite puts the IN list in a b-tree
        held: dict[str, set[int]] = {}
        for start in range(0, len(numbers), BATCH):
            chunk = numbers[start : start + BATCH]
            rows = await self.store.fetch(
                f"looking up {len(chunk)} numbers",
                f"SELECT e164, customer_id FROM customer_phones WHERE e164 IN ({JSON_IDS})",
                (json.dumps(chunk),),
            )
            for e164, customer_id in rows:
                held.setdefault(e164, set()).add(int(customer_id))
        return held

    async def name_keys(self, ids: Iterable[int]) -> dict[int, str]:
        """The folded names (see :func:`fold`) of those of ``ids`` that are customers."""
        wanted = sorted(i for i in set(ids) if i > 0)
        found: dict[int, str] = {}
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            rows = await self.store.fetch(
                f"reading the names of {len(chunk)} customers",
                f"SELECT id, name_key, name FROM customers WHERE id IN ({JSON_IDS})",
                (json.dumps(chunk),),
            )
            found.update((int(i), key if key is not None else fold(name)) for i, key, name in rows)
        return found

    async def all_customers(self, batch: int = BATCH) -> AsyncIterator[list[Customer]]:
        """Every customer, by id, ``batch`` at a time."""
        after = 0
        while True:
            rows = await self.store.fetch(
                "listing customers",
                "SELECT id FROM customers WHERE id > ? ORDER BY id LIMIT ?",
                (after, batch),
            )
            if not rows:
                return
            ids = [int(row[0]) for row in rows]
            yield await self.get_many(ids)
            after = ids[-1]

    async def reindex(self, only_missing: bool = True) -> int:
        """Fill the search keys (name_key, search_text, name grams); return how many.

        ``only_missing``: the customers never indexed (stored before migration 7).
        """
        done = 0
        after = 0
        where = "name_key IS NULL AND " if only_missing else ""
        while True:
            rows = await self.store.fetch(
                "finding customers to index",
                f"SELECT id FROM customers WHERE {where}id > ? ORDER BY id LIMIT ?",
                (after, BATCH),
            )
            if not rows:
                return done
            customers = await self.get_many([int(row[0]) for row in rows])

            async def index(
                connection: aiosqlite.Connection, customers: list[Customer] = customers
            ) -> None:
                keys = [search_keys(c) for c in customers]
                await connection.executemany(
                    "UPDATE customers SET name_key = ?, search_text = ?, grams = ? WHERE id = ?",
                    [
                        (key, text, grams, c.id)
                        for c, (key, text, grams) in zip(customers, keys, strict=True)
                    ],
                )

            await self.store.write(f"indexing {len(customers)} customers for search", index)
            done += len(customers)
            after = int(rows[-1][0])

    async def add_interaction(self, customer_id: int, interaction: Interaction) -> None:
        """Record one contact (a call with its disposition, note and script answers)."""
        await self.store.add_interaction(customer_id, interaction)

    async def history(self, customer_id: int, limit: int = 20) -> tuple[Interaction, ...]:
        """A customer's latest contacts, newest first."""
        return await self.store.recent_interactions(customer_id, limit)

    async def service_items(
        self, customer_id: int, *, open_only: bool = True, limit: int = 50
    ) -> tuple[ServiceItem, ...]:
        """A customer's service items, most urgent first (priority, then due time)."""
        rows = await self.store.fetch(
            f"reading the service items of customer {customer_id}",
            service_items_sql(open_only),
            (customer_id, limit),
        )
        return tuple(service_item_from_row(row) for row in rows)

    async def stored_value_inputs(self, customer_id: int) -> ValueInputs | None:
        """What the customer's stored score was computed from (None: never scored)."""
        rows = await self.store.fetch(
            f"reading the value inputs of customer {customer_id}", VALUE_INPUTS_SQL, (customer_id,)
        )
        return value_inputs_from_row(rows[0]) if rows else None

    async def card(self, customer_id: int, history_limit: int = 5) -> CustomerCard:
        """Recent history, open service items and the value inputs of one customer."""
        return CustomerCard(
            history=await self.history(customer_id, history_limit),
            service_items=await self.service_items(customer_id, limit=10),
            value_inputs=await self.stored_value_inputs(customer_id),
        )


async def _write_customers(
    connection: aiosqlite.Connection, customers: list[Customer], *, replace: bool
) -> None:
    """Write customers with their phones, e-mails and search keys (inside a transaction)."""
    if replace and customers:
        ids = json.dumps([c.id for c in customers])
        for table in ("customer_phones", "customer_emails"):
            await connection.execute(
                f"DELETE FROM {table} WHERE customer_id IN ({JSON_IDS})", (ids,)
            )
    keys = [search_keys(c) for c in customers]
    customer_rows = [
        (c.id, c.name, c.value, c.segment, c.language, c.time_zone, c.email, c.company,
         c.address, c.owner, name_key, text, grams)
        for c, (name_key, text, grams) in zip(customers, keys, strict=True)
    ]  # fmt: skip
    await connection.executemany(_UPSERT_CUSTOMER if replace else _INSERT_CUSTOMER, customer_rows)
    await connection.executemany(
        _INSERT_PHONE,
        ((c.id, p.raw, p.e164, p.kind, p.extension) for c in customers for p in c.phones),
    )
    await connection.executemany(
        _INSERT_EMAIL,
        (
            (c.id, position, email, email.lower())
            for c in customers
            # Position 0 is the primary address (customers.email); others from 1.
            for position, email in enumerate(
                [c.email, *c.other_emails] if c.email else c.other_emails, start=0 if c.email else 1
            )
        ),
    )


def service_item_from_row(row: Sequence[object]) -> ServiceItem:
    return ServiceItem.model_validate(
        dict(zip([c.strip() for c in SERVICE_COLUMNS.split(",")], row, strict=True))
    )
