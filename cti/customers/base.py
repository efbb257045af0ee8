"""The customer base: contacts, history, orders, service items, value, and search.

:class:`CustomerBase` works over a :class:`~cti.store.database.Store`'s connection (its
transactions and error handling); the store keeps the connection, the migrations and
the calls the engine makes on every call. Pure helpers sit beside it: how a customer's
phone number is read (:func:`parse_phone`), how text is folded for search
(:func:`fold`), and which index answers a query (:func:`plan_search`).

Search, at a million customers, never scans the table:

* a number in any format: normalised to E.164, then the phones index;
* ``#123`` or ``id:123``: the primary key; an e-mail address: the e-mail index;
* a name, company or e-mail part of 3 characters or more: the FTS5 **trigram** index of
  the folded text (substring match, Chinese or Latin);
* 1 or 2 Chinese (CJK) characters: ``customer_name_grams``, every CJK character and pair
  of characters of each name and company (trigrams need 3 characters);
* 1 or 2 other characters: a prefix of the folded name, on its index.

Exact and prefix matches of the name come first in every name search.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiosqlite
import phonenumbers
from phonenumbers import timezone as phone_zones

from cti.errors import CtiError, StoreError
from cti.models import (
    Customer,
    Interaction,
    Order,
    PhoneNumber,
    PhoneType,
    ServiceItem,
    ServicePriority,
    ServiceStatus,
    ValueExplanation,
)
from cti.phone import classify
from cti.scoring import DAY_S, ValueInputs, ValueModel, score, value_of

if TYPE_CHECKING:
    from cti.store.database import Store

#: Rows written or read per statement batch (keeps transactions and memory bounded).
BATCH = 5000
#: The most search results returned.
MAX_RESULTS = 200

_TOP = "\U0010ffff"


# --- phone numbers -------------------------------------------------------------------


class PhoneError(CtiError):
    """A customer's phone number that cannot be stored; the message says why."""


_CHINESE_EXTENSION = re.compile(r"\s*(?:转|轉|分机|分機)\s*")
_DASHED_EXTENSION = re.compile(r"^(.*\d)\s*[-–]\s*(\d{1,6})$")
_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "the country code is not valid",
    phonenumbers.ValidationResult.TOO_SHORT: "too few digits",
    phonenumbers.ValidationResult.TOO_LONG: "too many digits",
    phonenumbers.ValidationResult.INVALID_LENGTH: "the number of digits is not possible",
}


def parse_phone(raw: str, default_region: str, kind: PhoneType = PhoneType.MOBILE) -> PhoneNumber:
    """A customer's number as entered, checked and normalised to E.164.

    National forms are read as numbers of ``default_region``; ``+86``, ``0086`` and
    (for China) ``86`` prefixes, a trunk ``0`` and punctuation all give the same E.164.
    An extension (``ext. 12``, ``x12``, ``转12``, or ``-12`` after a complete number) is
    kept apart. Raises :class:`PhoneError` saying what is wrong.
    """
    text = raw.strip()
    if not text:
        raise PhoneError("empty number")
    if not any(ch.isdigit() for ch in text):
        raise PhoneError(f"{raw!r} has no digits")
    text = _CHINESE_EXTENSION.sub(" ext. ", text)
    try:
        number = _parse(text, default_region)
    except PhoneError:
        dashed = _DASHED_EXTENSION.match(text)
        if dashed is None:
            raise
        number = _parse(dashed[1], default_region)
        number.extension = dashed[2]
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneNumber(raw=raw.strip(), e164=e164, kind=kind, extension=number.extension or "")


def _parse(text: str, default_region: str) -> phonenumbers.PhoneNumber:
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"{text!r} is not a phone number ({_parse_reason(exc)})") from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason in _REASONS:
        raise PhoneError(f"{text!r}: {_REASONS[reason]}")
    if not phonenumbers.is_valid_number(number):
        region = phonenumbers.region_code_for_country_code(number.country_code or 0)
        raise PhoneError(f"{text!r} is not a valid number of {region} (+{number.country_code})")
    return number


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too few digits",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too few digits",
        phonenumbers.NumberParseException.TOO_LONG: "too many digits",
    }.get(exc.error_type, "not a number")


# --- search keys ---------------------------------------------------------------------


def fold(text: str) -> str:
    """``text`` as search compares it: NFKC width, accents dropped, case folded,
    whitespace collapsed. ``"José  NÚÑEZ"`` -> ``"jose nunez"``; ``"ＡＢＣ"`` -> ``"abc"``."""
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


def name_grams(name_key: str) -> set[str]:
    """Every CJK character and every pair of adjacent CJK characters of a folded name."""
    grams: set[str] = set()
    previous = ""
    for ch in name_key:
        if is_cjk(ch):
            grams.add(ch)
            if previous:
                grams.add(previous + ch)
            previous = ch
        else:
            previous = ""
    return grams


def search_text(customer: Customer) -> str:
    """The folded text the trigram index holds: name, company and e-mail addresses."""
    parts = [customer.name, customer.company, customer.email, *customer.other_emails]
    return "\n".join(fold(part) for part in parts if part)


class SearchKind(StrEnum):
    ID = "id"
    NUMBER = "number"
    EMAIL = "email"
    NAME = "name"


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """How a query will be answered (see the module docstring)."""

    kind: SearchKind
    key: str
    """The id, the E.164 number, the lower-case e-mail, or the folded name text."""
    also_id: int | None = None
    """For a query of digits only: the customer with this id comes first."""


_ID_QUERY = re.compile(r"^(?:#|id:\s*)(\d{1,18})$", re.IGNORECASE)
_NUMBER_QUERY = re.compile(r"^[+(]?[\d\s().\-/]{5,}(?:\s*(?:ext\.?|x|转)\s*\d+)?$", re.IGNORECASE)
_EMAIL_QUERY = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def plan_search(text: str, default_region: str) -> SearchPlan | None:
    """Which index answers ``text``; None for an empty query."""
    query = text.strip()
    if not query:
        return None
    by_id = _ID_QUERY.match(query)
    if by_id:
        return SearchPlan(SearchKind.ID, by_id[1])
    if _EMAIL_QUERY.match(query):
        return SearchPlan(SearchKind.EMAIL, query.lower())
    if _NUMBER_QUERY.match(query) and sum(ch.isdigit() for ch in query) >= 5:
        _, e164 = classify(_CHINESE_EXTENSION.sub(" ext. ", query), default_region)
        if e164 is not None:
            also = int(query) if query.isdigit() and len(query) <= 18 else None
            return SearchPlan(SearchKind.NUMBER, e164, also_id=also)
    if query.isdigit() and len(query) <= 18:
        return SearchPlan(SearchKind.ID, query)
    key = fold(query)
    return SearchPlan(SearchKind.NAME, key) if key else None


def fts_phrase(key: str) -> str:
    """An FTS5 query matching ``key`` as a substring (trigram tokenizer)."""
    return '"' + key.replace('"', '""') + '"'


# --- safe text -----------------------------------------------------------------------

#: What no stored customer text may hold: C0 and C1 controls (NUL, line breaks and
#: escape sequences included), DEL, the bidirectional embeddings, overrides and isolates
#: that make text read other than it is stored ("Trojan Source"), lone surrogates, and
#: U+FFFD (bytes that were not text in the file's encoding).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffd\ud800-\udfff]")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text_problem(text: str) -> str | None:
    """What makes ``text`` unfit to store as one line of customer text (a name, a
    title, a number as entered...), worded to follow the field's name; None if nothing."""
    found = _UNSAFE.search(text)
    if found is None:
        return None
    ch = found[0]
    if ch == "\x00":
        return "holds a NUL byte"
    if ch in "\r\n":
        return "holds a line break (it must be one line)"
    if ch in _BIDI:
        return f"holds a bidirectional control (U+{ord(ch):04X}) that disguises the text"
    if ch == "\ufffd" or "\ud800" <= ch <= "\udfff":
        return "holds bytes that are not text in this encoding"
    return f"holds a control character (U+{ord(ch):04X})"


def safe_text(text: str) -> str:
    """Free text that must be kept (a note, a detail) with the unsafe characters of
    :func:`text_problem` removed; line breaks and tabs stay."""
    return _UNSAFE.sub(lambda m: m[0] if m[0] in "\n\t" else "", text.replace("\r\n", "\n"))


# --- a new customer from the desk ----------------------------------------------------


class CustomerFormError(CtiError):
    """A new customer that cannot be stored as given; the message starts with the field
    (``name: ...``, ``number: ...``, ``e-mail: ...``, ``language: ...``, ``time zone: ...``)."""


#: The longest name, company or address the desk's form accepts.
MAX_FIELD_CHARS = 200
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_CHINESE_REGIONS = frozenset({"CN", "HK", "MO", "TW", "SG"})


def new_customer(
    *,
    name: str,
    number: str = "",
    email: str = "",
    company: str = "",
    language: str = "",
    time_zone: str = "",
    default_region: str = "CN",
    default_time_zone: str = "UTC",
) -> Customer:
    """A new customer (id 0) from a form, checked; raises :class:`CustomerFormError`
    naming the first field that is wrong and what would be accepted.

    An empty time zone is the number's (when its country has one zone), else
    ``default_time_zone``; an empty language is ``zh`` for a Chinese-speaking region's
    number, else ``en``.
    """
    shown = " ".join(name.split())
    if not shown:
        raise CustomerFormError("name: empty; type the customer's name")
    if len(shown) > MAX_FIELD_CHARS or len(company) > MAX_FIELD_CHARS:
        field = "name" if len(shown) > MAX_FIELD_CHARS else "company"
        raise CustomerFormError(f"{field}: longer than {MAX_FIELD_CHARS} characters")
    for field, text in (("name", name), ("company", company), ("e-mail", email)):
        problem = text_problem(text)
        if problem is not None:
            raise CustomerFormError(f"{field}: {problem}")
    phones: tuple[PhoneNumber, ...] = ()
    region = ""
    if number.strip():
        try:
            phone = parse_phone(number, default_region)
        except PhoneError as exc:
            raise CustomerFormError(f"number: {exc}") from None
        phones = (phone,)
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone.e164)) or ""
    address = email.strip()
    if address and not _EMAIL_QUERY.match(address):
        raise CustomerFormError(f"e-mail: {address!r} is not an address like name@example.com")
    lang = language.strip()
    if lang and not _LANGUAGE.match(lang):
        raise CustomerFormError(f"language: {lang!r} is not a language code such as zh, en, zh-CN")
    zone = time_zone.strip() or _zone_of(phones) or default_time_zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CustomerFormError(
            f"time zone: {zone!r} is not a time zone such as Asia/Shanghai or Europe/London"
        ) from None
    return Customer(
        id=0,
        name=shown,
        phones=phones,
        email=address,
        company=company.strip(),
        language=lang or ("zh" if region in _CHINESE_REGIONS else "en"),
        time_zone=zone,
    )


def _zone_of(phones: Sequence[PhoneNumber]) -> str:
    """The time zone of the first number, when its country or area has exactly one."""
    if not phones:
        return ""
    zones = phone_zones.time_zones_for_number(phonenumbers.parse(phones[0].e164))
    return zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else ""


# --- the customer base ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerCard:
    """What the screen-pop shows of one customer beyond the customer record."""

    history: tuple[Interaction, ...] = ()
    service_items: tuple[ServiceItem, ...] = ()
    value_inputs: ValueInputs | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One look at, search of or change to the customer base, allowed or refused."""

    at: float
    """Wall-clock epoch."""
    agent_id: str
    action: str
    """search, show, choose, create, item, escalate."""
    customer_id: int | None
    allowed: bool
    detail: str = ""
    """The query and the ids it found, the call, or why it was refused."""


@dataclass
class RescoreReport:
    customers: int = 0
    segments: Counter[str] = field(default_factory=Counter)


_CUSTOMER_COLUMNS = (
    "id, name, value, segment, language, time_zone, email, company, address, owner,"
    " name_key, search_text"
)
_UPSERT_CUSTOMER = (
    f"INSERT INTO customers ({_CUSTOMER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, value = excluded.value,"
    " segment = excluded.segment, language = excluded.language,"
    " time_zone = excluded.time_zone, email = excluded.email, company = excluded.company,"
    " address = excluded.address, owner = excluded.owner, name_key = excluded.name_key,"
    " search_text = excluded.search_text"
)
_INSERT_CUSTOMER = (
    f"INSERT INTO customers ({_CUSTOMER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_PHONE = (
    "INSERT INTO customer_phones (customer_id, raw, e164, kind, extension) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_EMAIL = (
    "INSERT INTO customer_emails (customer_id, position, email, email_key) VALUES (?, ?, ?, ?)"
)
_INSERT_GRAM = "INSERT OR IGNORE INTO customer_name_grams (gram, customer_id) VALUES (?, ?)"
_IDS = "SELECT value FROM json_each(?)"

_SERVICE_COLUMNS = (
    "id, customer_id, title, detail, status, priority, created_at, updated_at, due_at,"
    " assignee, escalation_level, escalated_at, escalated_to"
)
_PRIORITY_ORDER = (
    "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END"
)
_OPEN = "('open', 'in_progress', 'waiting')"


class CustomerBase:
    """Every customer query and write beyond the engine's per-call lookup.

    Writes go through the store's transactions (one writer at a time); a failure comes
    out as :class:`~cti.errors.StoreError` naming what was being done.
    """

    def __init__(self, store: Store, model: ValueModel | None = None) -> None:
        self.store = store
        self.model = model or ValueModel()

    # -- customers ------------------------------------------------------------------

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

    async def create_customer(self, customer: Customer) -> Customer:
        """Store a new customer (id 0) from the desk and return it with its id.

        Refused (:class:`CustomerFormError`) when a customer with the same folded name
        already holds its number: the agent should choose that one instead.
        """
        if customer.phones:
            held = await self.holders(p.e164 for p in customer.phones)
            holders = sorted({i for ids in held.values() for i in ids})
            same = [
                i
                for i, key in (await self.name_keys(holders)).items()
                if key == fold(customer.name)
            ]
            if same:
                raise CustomerFormError(
                    f"name: customer #{min(same)} already has this name and number;"
                    " choose that customer instead"
                )
        [customer_id] = await self.save_customers([customer.model_copy(update={"id": 0})])
        stored = await self.get(customer_id)
        if stored is None:  # pragma: no cover - written in the same call
            raise StoreError(f"customer {customer_id} was saved but cannot be read back")
        return stored

    async def get(self, customer_id: int) -> Customer | None:
        """The customer with this id, or None."""
        return await self.store.get_customer(customer_id)

    async def get_many(self, ids: Sequence[int]) -> list[Customer]:
        """The customers with these ids that exist, in the order of ``ids``."""
        found = {c.id: c for c in await self.store.customers_by_ids(list(ids))}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def holders(self, e164s: Iterable[str]) -> dict[str, set[int]]:
        """For each of these E.164 numbers that a customer holds: who holds it."""
        numbers = sorted(set(e164s))
        held: dict[str, set[int]] = {}
        for start in range(0, len(numbers), BATCH):
            chunk = numbers[start : start + BATCH]
            rows = await self.store.fetch(
                f"looking up {len(chunk)} numbers",
                f"SELECT e164, customer_id FROM customer_phones WHERE e164 IN ({_IDS})",
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
                f"SELECT id, name_key, name FROM customers WHERE id IN ({_IDS})",
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
                ids = json.dumps([c.id for c in customers])
                await connection.execute(
                    f"DELETE FROM customer_name_grams WHERE customer_id IN ({_IDS})", (ids,)
                )
                await connection.executemany(
                    "UPDATE customers SET name_key = ?, search_text = ? WHERE id = ?",
                    ((fold(c.name), search_text(c), c.id) for c in customers),
                )
                await connection.executemany(_INSERT_GRAM, _gram_rows(customers))

            await self.store.write(f"indexing {len(customers)} customers for search", index)
            done += len(customers)
            after = int(rows[-1][0])

    # -- search ---------------------------------------------------------------------

    async def search(
        self, text: str, *, default_region: str = "CN", limit: int = 20
    ) -> list[Customer]:
        """Customers matching ``text``: a number in any format, ``#id``, an e-mail
        address, or part of a name, company or e-mail (Chinese or Latin); best first."""
        plan = plan_search(text, default_region)
        limit = max(1, min(limit, MAX_RESULTS))
        if plan is None:
            return []
        return await self.get_many((await self.search_ids(plan, limit))[:limit])

    async def search_ids(self, plan: SearchPlan, limit: int) -> list[int]:
        """The ids of the customers ``plan`` finds, best first (at most ``limit``)."""
        doing = f"searching customers for {plan.key!r}"
        ids: list[int] = []
        if plan.kind is SearchKind.ID or plan.also_id is not None:
            wanted = int(plan.key) if plan.kind is SearchKind.ID else plan.also_id
            ids += await self._ids(doing, "SELECT id FROM customers WHERE id = ?", (wanted,))
        if plan.kind is SearchKind.NUMBER:
            ids += await self._ids(
                doing,
                "SELECT customer_id FROM customer_phones WHERE e164 = ? ORDER BY customer_id"
                " LIMIT ?",
                (plan.key, limit),
            )
        elif plan.kind is SearchKind.EMAIL:
            ids += await self._ids(
                doing,
                "SELECT customer_id FROM customer_emails WHERE email_key = ?"
                " ORDER BY customer_id LIMIT ?",
                (plan.key, limit),
            )
            ids += await self._contains(doing, fold(plan.key), limit)
        elif plan.kind is SearchKind.NAME:
            ids += await self._ids(
                doing,
                "SELECT id FROM customers WHERE name_key >= ? AND name_key < ?"
                " ORDER BY name_key, id LIMIT ?",
                (plan.key, plan.key + _TOP, limit),
            )
            if len(ids) < limit:
                ids += await self._contains(doing, plan.key, limit)
        return list(dict.fromkeys(ids))[:limit]

    async def _contains(self, doing: str, key: str, limit: int) -> list[int]:
        """Ids of customers whose folded text contains ``key`` (by the right index)."""
        if len(key) >= 3:
            sql = "SELECT rowid FROM customer_search WHERE customer_search MATCH ? LIMIT ?"
            return await self._ids(doing, sql, (fts_phrase(key), limit))
        if all(is_cjk(ch) for ch in key):
            sql = (
                "SELECT customer_id FROM customer_name_grams WHERE gram = ?"
                " ORDER BY customer_id LIMIT ?"
            )
            return await self._ids(doing, sql, (key, limit))
        return []  # 1-2 Latin characters: the name prefix only

    async def _ids(self, doing: str, sql: str, params: Sequence[object]) -> list[int]:
        return [int(row[0]) for row in await self.store.fetch(doing, sql, params)]

    # -- history --------------------------------------------------------------------

    async def add_interaction(self, customer_id: int, interaction: Interaction) -> None:
        """Record one contact (a call with its disposition, note and script answers)."""
        await self.store.add_interaction(customer_id, interaction)

    async def history(self, customer_id: int, limit: int = 20) -> tuple[Interaction, ...]:
        """A customer's latest contacts, newest first."""
        return await self.store.recent_interactions(customer_id, limit)

    # -- orders ---------------------------------------------------------------------

    async def add_orders(self, orders: Iterable[Order]) -> int:
        """Record orders in one transaction; return how many were new.

        An order whose ``reference`` the customer already has is skipped, so importing
        the same orders again adds nothing.
        """
        rows = [(o.customer_id, o.ordered_at, o.amount, o.currency, o.reference) for o in orders]

        async def insert(connection: aiosqlite.Connection) -> int:
            cursor = await connection.executemany(
                "INSERT OR IGNORE INTO orders (customer_id, ordered_at, amount, currency,"
                " reference) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            return max(cursor.rowcount, 0)

        return await self.store.write(f"adding {len(rows)} orders", insert)

    async def orders(self, customer_id: int, limit: int = 100) -> list[Order]:
        """A customer's latest orders, newest first."""
        rows = await self.store.fetch(
            f"reading the orders of customer {customer_id}",
            "SELECT id, customer_id, ordered_at, amount, currency, reference FROM orders"
            " WHERE customer_id = ? ORDER BY ordered_at DESC, id DESC LIMIT ?",
            (customer_id, limit),
        )
        return [
            Order(id=i, customer_id=c, ordered_at=at, amount=a, currency=cur, reference=ref)
            for i, c, at, a, cur, ref in rows
        ]

    async def all_orders(self) -> AsyncIterator[list[Order]]:
        """Every order, by id, a batch at a time."""
        after = 0
        while True:
            rows = await self.store.fetch(
                "listing orders",
                "SELECT id, customer_id, ordered_at, amount, currency, reference FROM orders"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after, BATCH),
            )
            if not rows:
                return
            yield [
                Order(id=i, customer_id=c, ordered_at=at, amount=a, currency=cur, reference=ref)
                for i, c, at, a, cur, ref in rows
            ]
            after = int(rows[-1][0])

    # -- service items --------------------------------------------------------------

    async def open_service_item(
        self,
        customer_id: int,
        title: str,
        *,
        now: float,
        detail: str = "",
        priority: ServicePriority = ServicePriority.NORMAL,
        due_at: float | None = None,
        assignee: str = "",
    ) -> ServiceItem:
        """Open a service item for a customer at wall-clock ``now``."""

        async def insert(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(
                "INSERT INTO service_items (customer_id, title, detail, priority, created_at,"
                " updated_at, due_at, assignee) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (customer_id, title, detail, priority.value, now, now, due_at, assignee),
            )
            return int(cursor.lastrowid or 0)

        item_id = await self.store.write(
            f"opening a service item for customer {customer_id}", insert
        )
        return await self._item(item_id)

    async def add_service_items(self, items: Iterable[ServiceItem]) -> int:
        """Store service items as they are (ids given), in one transaction; return how
        many. For imports and demo data."""
        columns = [c.strip() for c in _SERVICE_COLUMNS.split(",")]
        rows = [tuple(getattr(item, c) for c in columns) for item in items]

        async def insert(connection: aiosqlite.Connection) -> None:
            await connection.executemany(
                f"INSERT INTO service_items ({_SERVICE_COLUMNS})"
                f" VALUES ({', '.join('?' for _ in columns)})",
                rows,
            )

        await self.store.write(f"adding {len(rows)} service items", insert)
        return len(rows)

    async def update_service_item(
        self,
        item_id: int,
        *,
        now: float,
        status: ServiceStatus | None = None,
        priority: ServicePriority | None = None,
        assignee: str | None = None,
        due_at: float | None = None,
        detail: str | None = None,
    ) -> ServiceItem:
        """Change a service item (dispatch, reassign, resolve...); None keeps a field."""
        changes: dict[str, object] = {
            "status": status.value if status is not None else None,
            "priority": priority.value if priority is not None else None,
            "assignee": assignee,
            "due_at": due_at,
            "detail": detail,
        }
        sets = {k: v for k, v in changes.items() if v is not None} | {"updated_at": now}
        await self._change_item(item_id, sets)
        return await self._item(item_id)

    async def escalate_service_item(self, item_id: int, to: str, *, now: float) -> ServiceItem:
        """Escalate a service item one level, to ``to`` (a supervisor or team), at ``now``."""

        async def escalate(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(
                "UPDATE service_items SET escalation_level = escalation_level + 1,"
                " escalated_at = ?, escalated_to = ?, updated_at = ? WHERE id = ?",
                (now, to, now, item_id),
            )
            return cursor.rowcount

        if await self.store.write(f"escalating service item {item_id}", escalate) != 1:
            raise StoreError(f"there is no service item {item_id}")
        return await self._item(item_id)

    async def escalate_overdue(self, to: str, *, now: float, every_s: float = DAY_S) -> int:
        """Escalate every open item past its due time, again each ``every_s`` it stays
        overdue; return how many were escalated."""

        async def escalate(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(
                "UPDATE service_items SET escalation_level = escalation_level + 1,"
                " escalated_at = ?1, escalated_to = ?2, updated_at = ?1"
                f" WHERE status IN {_OPEN} AND due_at < ?1"
                " AND (escalated_at IS NULL OR escalated_at <= max(due_at, ?1 - ?3))",
                (now, to, every_s),
            )
            return max(cursor.rowcount, 0)

        return await self.store.write("escalating overdue service items", escalate)

    async def service_items(
        self, customer_id: int, *, open_only: bool = True, limit: int = 50
    ) -> tuple[ServiceItem, ...]:
        """A customer's service items, most urgent first (priority, then due time)."""
        where = f" AND status IN {_OPEN}" if open_only else ""
        rows = await self.store.fetch(
            f"reading the service items of customer {customer_id}",
            f"SELECT {_SERVICE_COLUMNS} FROM service_items WHERE customer_id = ?{where}"
            f" ORDER BY {_PRIORITY_ORDER}, due_at IS NULL, due_at, id LIMIT ?",
            (customer_id, limit),
        )
        return tuple(_service_item(row) for row in rows)

    async def overdue_service_items(self, now: float, limit: int = 100) -> list[ServiceItem]:
        """Open items past their due time at ``now``, the longest overdue first."""
        rows = await self.store.fetch(
            "reading overdue service items",
            f"SELECT {_SERVICE_COLUMNS} FROM service_items"
            f" WHERE status IN {_OPEN} AND due_at < ? ORDER BY due_at LIMIT ?",
            (now, limit),
        )
        return [_service_item(row) for row in rows]

    async def service_item(self, item_id: int) -> ServiceItem:
        """One service item; :class:`StoreError` if there is none."""
        return await self._item(item_id)

    async def _item(self, item_id: int) -> ServiceItem:
        rows = await self.store.fetch(
            f"reading service item {item_id}",
            f"SELECT {_SERVICE_COLUMNS} FROM service_items WHERE id = ?",
            (item_id,),
        )
        if not rows:
            raise StoreError(f"there is no service item {item_id}")
        return _service_item(rows[0])

    async def _change_item(self, item_id: int, sets: dict[str, object]) -> None:
        assignments = ", ".join(f"{column} = ?" for column in sets)

        async def change(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(
                f"UPDATE service_items SET {assignments} WHERE id = ?", (*sets.values(), item_id)
            )
            return cursor.rowcount

        if await self.store.write(f"changing service item {item_id}", change) != 1:
            raise StoreError(f"there is no service item {item_id}")

    # -- value ----------------------------------------------------------------------

    async def rescore(
        self,
        now: float,
        ids: Iterable[int] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RescoreReport:
        """Recompute the value and segment of ``ids`` (default: every customer) from
        their orders and contacts as of wall-clock ``now``."""
        since = now - self.model.window_days * DAY_S
        if ids is None:
            rows = await self.store.fetch("listing customers", "SELECT id FROM customers")
            targets = sorted(int(row[0]) for row in rows)
        else:
            targets = sorted(set(ids))
        report = RescoreReport()
        for start in range(0, len(targets), BATCH):
            chunk = targets[start : start + BATCH]
            inputs = await self._value_inputs(chunk, since, now)
            updates = []
            for customer_id in chunk:
                measured = inputs.get(customer_id, ValueInputs(scored_at=now))
                value = value_of(measured, self.model)
                segment = self.model.segment(value)
                report.segments[self.model.label(segment)] += 1
                updates.append(
                    (
                        value,
                        segment.value,
                        now,
                        measured.last_order_at,
                        measured.orders,
                        measured.spent,
                        measured.contacts,
                        customer_id,
                    )
                )

            async def update(
                connection: aiosqlite.Connection, updates: Sequence[tuple[object, ...]] = updates
            ) -> None:
                await connection.executemany(
                    "UPDATE customers SET value = ?, segment = ?, scored_at = ?,"
                    " last_order_at = ?, window_orders = ?, window_spent = ?,"
                    " window_contacts = ? WHERE id = ?",
                    updates,
                )

            await self.store.write(f"scoring {len(chunk)} customers", update)
            report.customers += len(chunk)
            if progress is not None:
                progress(report.customers, len(targets))
        return report

    async def _value_inputs(
        self, ids: list[int], since: float, now: float
    ) -> dict[int, ValueInputs]:
        ids_json = json.dumps(ids)
        orders = await self.store.fetch(
            "summing orders",
            "SELECT customer_id, max(ordered_at), sum(ordered_at >= ?2),"
            " total(CASE WHEN ordered_at >= ?2 THEN amount END)"
            f" FROM orders WHERE customer_id IN ({_IDS.replace('?', '?1')}) GROUP BY customer_id",
            (ids_json, since),
        )
        contacts = await self.store.fetch(
            "counting contacts",
            "SELECT customer_id, count(*) FROM interactions"
            f" WHERE customer_id IN ({_IDS.replace('?', '?1')}) AND at >= ?2"
            " GROUP BY customer_id",
            (ids_json, since),
        )
        counted = {int(cid): int(n) for cid, n in contacts}
        inputs = {
            int(cid): ValueInputs(
                scored_at=now,
                last_order_at=last,
                orders=int(n or 0),
                spent=float(spent or 0.0),
                contacts=counted.pop(int(cid), 0),
            )
            for cid, last, n, spent in orders
        }
        for cid, n in counted.items():
            inputs[cid] = ValueInputs(scored_at=now, contacts=n)
        return inputs

    async def stored_value_inputs(self, customer_id: int) -> ValueInputs | None:
        """What the customer's stored score was computed from (None: never scored)."""
        rows = await self.store.fetch(
            f"reading the value inputs of customer {customer_id}",
            "SELECT scored_at, last_order_at, window_orders, window_spent, window_contacts"
            " FROM customers WHERE id = ?",
            (customer_id,),
        )
        if not rows or rows[0][0] is None:
            return None
        scored_at, last, orders, spent, contacts = rows[0]
        return ValueInputs(
            scored_at=scored_at,
            last_order_at=last,
            orders=int(orders),
            spent=float(spent),
            contacts=int(contacts),
        )

    async def explain(self, customer_id: int) -> ValueExplanation | None:
        """Why the customer has its stored value (None: never scored)."""
        inputs = await self.stored_value_inputs(customer_id)
        return None if inputs is None else score(inputs, self.model)

    # -- who may read, and who did -------------------------------------------------

    async def recent_customers_of(self, agent_id: str, *, since: float, limit: int) -> set[int]:
        """The customers of the agent's last ``limit`` calls that began after wall-clock
        ``since`` (their records)."""
        if limit <= 0:
            return set()
        rows = await self.store.fetch(
            f"reading the recent calls of agent {agent_id}",
            "SELECT customer_id FROM call_records WHERE agent_id = ? AND started_wall >= ?"
            " ORDER BY started_wall DESC LIMIT ?",
            (agent_id, since, limit),
        )
        return {int(row[0]) for row in rows if row[0] is not None}

    async def audit(self, entry: AuditEntry) -> None:
        """Keep one entry of the audit trail."""

        async def insert(connection: aiosqlite.Connection) -> None:
            await connection.execute(
                "INSERT INTO customer_audit (at, agent_id, action, customer_id, allowed, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.at,
                    entry.agent_id,
                    entry.action,
                    entry.customer_id,
                    int(entry.allowed),
                    entry.detail,
                ),
            )

        await self.store.write(f"auditing {entry.action} by agent {entry.agent_id}", insert)

    async def audit_trail(
        self,
        *,
        customer_id: int | None = None,
        agent_id: str = "",
        since: float = 0.0,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """The audit trail, oldest first: of one customer, one agent, or everyone."""
        where = ["at >= ?"]
        params: list[object] = [since]
        if customer_id is not None:
            where.append("customer_id = ?")
            params.append(customer_id)
        if agent_id:
            where.append("agent_id = ?")
            params.append(agent_id)
        rows = await self.store.fetch(
            "reading the customer audit trail",
            "SELECT at, agent_id, action, customer_id, allowed, detail FROM customer_audit"
            f" WHERE {' AND '.join(where)} ORDER BY at, id LIMIT ?",
            (*params, limit),
        )
        return [
            AuditEntry(at, agent, action, customer, bool(allowed), detail)
            for at, agent, action, customer, allowed, detail in rows
        ]

    # -- the screen-pop -------------------------------------------------------------

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
        for table in ("customer_phones", "customer_emails", "customer_name_grams"):
            await connection.execute(f"DELETE FROM {table} WHERE customer_id IN ({_IDS})", (ids,))
    # Rows are made as sqlite consumes them: no list of a million tuples to hold.
    customer_rows = (
        (
            c.id,
            c.name,
            c.value,
            c.segment,
            c.language,
            c.time_zone,
            c.email,
            c.company,
            c.address,
            c.owner,
            fold(c.name),
            search_text(c),
        )
        for c in customers
    )
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
    await connection.executemany(_INSERT_GRAM, _gram_rows(customers))


def _gram_rows(customers: Iterable[Customer]) -> Iterable[tuple[str, int]]:
    """The short-query index rows: CJK grams of each name and company."""
    return (
        (gram, c.id)
        for c in customers
        for gram in name_grams(fold(c.name)) | name_grams(fold(c.company))
    )


def _service_item(row: Sequence[object]) -> ServiceItem:
    return ServiceItem.model_validate(
        dict(zip([c.strip() for c in _SERVICE_COLUMNS.split(",")], row, strict=True))
    )
