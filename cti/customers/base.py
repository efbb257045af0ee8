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
* 1 or 2 Chinese (CJK) characters: ``customer_grams``, an FTS5 index of every CJK
  character and pair of characters of each name and company (trigrams need 3
  characters);
* 1 or 2 other characters: a prefix of the folded name, on its index.

Exact and prefix matches of the name come first in every name search.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiosqlite

from cti.customers.form import CustomerFormError, new_customer, safe_text, text_problem
from cti.customers.phones import PhoneError, parse_phone
from cti.customers.search import SearchKind, SearchPlan, fts_phrase, plan_search
from cti.errors import StoreError
from cti.models import (
    Customer,
    Order,
    ServiceItem,
    ServicePriority,
    ServiceStatus,
    ValueExplanation,
)
from cti.scoring import DAY_S, ValueInputs, ValueModel, score, value_of
from cti.store.customers import (
    BATCH,
    JSON_IDS,
    OPEN_STATUSES,
    SERVICE_COLUMNS,
    CustomerCard,
    CustomerRows,
    fold,
    is_cjk,
    name_grams,
    search_text,
    service_item_from_row,
)

if TYPE_CHECKING:
    from cti.store.database import Store

__all__ = [
    "BATCH",
    "MAX_RESULTS",
    "AuditEntry",
    "CustomerBase",
    "CustomerCard",
    "CustomerFormError",
    "PhoneError",
    "RescoreReport",
    "SearchKind",
    "SearchPlan",
    "fold",
    "fts_phrase",
    "name_grams",
    "new_customer",
    "parse_phone",
    "plan_search",
    "safe_text",
    "search_text",
    "text_problem",
]

#: The most search results returned.
MAX_RESULTS = 200

_TOP = "\U0010ffff"


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


class CustomerBase(CustomerRows):
    """Every customer query and write beyond the engine's per-call lookup.

    Writes go through the store's transactions (one writer at a time); a failure comes
    out as :class:`~cti.errors.StoreError` naming what was being done.
    """

    def __init__(self, store: Store, model: ValueModel | None = None) -> None:
        self.store = store
        self.model = model or ValueModel()

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
                "SELECT rowid FROM customer_grams WHERE customer_grams MATCH ?"
                " ORDER BY rowid LIMIT ?"
            )
            return await self._ids(doing, sql, (fts_phrase(key), limit))
        return []  # 1-2 Latin characters: the name prefix only

    async def _ids(self, doing: str, sql: str, params: Sequence[object]) -> list[int]:
        return [int(row[0]) for row in await self.store.fetch(doing, sql, params)]

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
        columns = [c.strip() for c in SERVICE_COLUMNS.split(",")]
        rows = [tuple(getattr(item, c) for c in columns) for item in items]

        async def insert(connection: aiosqlite.Connection) -> None:
            await connection.executemany(
                f"INSERT INTO service_items ({SERVICE_COLUMNS})"
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
                f" WHERE status IN {OPEN_STATUSES} AND due_at < ?1"
                " AND (escalated_at IS NULL OR escalated_at <= max(due_at, ?1 - ?3))",
                (now, to, every_s),
            )
            return max(cursor.rowcount, 0)

        return await self.store.write("escalating overdue service items", escalate)

    async def overdue_service_items(self, now: float, limit: int = 100) -> list[ServiceItem]:
        """Open items past their due time at ``now``, the longest overdue first."""
        rows = await self.store.fetch(
            "reading overdue service items",
            f"SELECT {SERVICE_COLUMNS} FROM service_items"
            f" WHERE status IN {OPEN_STATUSES} AND due_at < ? ORDER BY due_at LIMIT ?",
            (now, limit),
        )
        return [service_item_from_row(row) for row in rows]

    async def service_item(self, item_id: int) -> ServiceItem:
        """One service item; :class:`StoreError` if there is none."""
        return await self._item(item_id)

    async def _item(self, item_id: int) -> ServiceItem:
        rows = await self.store.fetch(
            f"reading service item {item_id}",
            f"SELECT {SERVICE_COLUMNS} FROM service_items WHERE id = ?",
            (item_id,),
        )
        if not rows:
            raise StoreError(f"there is no service item {item_id}")
        return service_item_from_row(rows[0])

    async def _change_item(self, item_id: int, sets: dict[str, object]) -> None:
        assignments = ", ".join(f"{column} = ?" for column in sets)

        async def change(connection: aiosqlite.Connection) -> int:
            cursor = await connection.execute(
                f"UPDATE service_items SET {assignments} WHERE id = ?", (*sets.values(), item_id)
            )
            return cursor.rowcount

        if await self.store.write(f"changing service item {item_id}", change) != 1:
            raise StoreError(f"there is no service item {item_id}")

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
            f" FROM orders WHERE customer_id IN ({JSON_IDS.replace('?', '?1')})"
            " GROUP BY customer_id",
            (ids_json, since),
        )
        contacts = await self.store.fetch(
            "counting contacts",
            "SELECT customer_id, count(*) FROM interactions"
            f" WHERE customer_id IN ({JSON_IDS.replace('?', '?1')}) AND at >= ?2"
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

    async def explain(self, customer_id: int) -> ValueExplanation | None:
        """Why the customer has its stored value (None: never scored)."""
        inputs = await self.stored_value_inputs(customer_id)
        return None if inputs is None else score(inputs, self.model)

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
