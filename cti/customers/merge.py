"""Customer rows merged into the base (a CSV import's, :mod:`cti.customers.csv_files`):
which customer each row goes to, the rows merged, and the report.

A row goes to the customer its id names, else to the one customer holding one of its
numbers under the same name; else it is a new customer. Rows for customers already
there are merged into them and saved (and those customers rescored); new customers go
to the store in bulk (:mod:`cti.store.customers_bulk`), scored as they are written.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from cti.customers.base import CustomerBase
from cti.customers.phones import Phone
from cti.models import Customer, PhoneNumber, PhoneType
from cti.scoring import ValueInputs, ValueModel, value_of
from cti.store.customers import search_keys_of
from cti.store.customers_bulk import NewCustomer, add_new_customers

_DEFAULT_LANGUAGE: str = Customer.model_fields["language"].default


@dataclass(frozen=True, slots=True)
class Score:
    """What rescoring gives a customer without orders or contacts, at ``scored_at``."""

    value: float
    segment: str
    scored_at: float

    @classmethod
    def of_new(cls, model: ValueModel, now: float) -> Score:
        value = value_of(ValueInputs(scored_at=now), model)
        return cls(value, model.segment(value).value, now)


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Merge:
    """A row that went into a customer already there (or earlier in the file)."""

    line: int
    customer_id: int
    by: str
    """The number it matched, or ``id``."""


@dataclass(frozen=True, slots=True)
class KeptApart:
    """A new customer who shares a number with customers of other names."""

    line: int
    customer_id: int
    others: tuple[int, ...]


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    """Customer rows merged into an existing customer; order rows already present."""
    errors: list[RowError] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    kept_apart: list[KeptApart] = field(default_factory=list)
    rescored: int = 0

    @property
    def imported(self) -> int:
        return self.created + self.updated


@dataclass(slots=True)
class CustomerRow:
    """One customer row, checked: what it says, not yet matched to the base."""

    line: int
    id: int | None
    phones: Sequence[Phone]
    emails: Sequence[str]
    fields: dict[str, str]
    """Non-empty single-valued fields: name, company, address, language, time_zone, owner."""
    name_key: str = ""
    """The name folded (:func:`~cti.store.customers.fold`), as merging compares names."""
    keys: SearchKeys | None = None
    """The search keys of a customer made of this row alone, if worked out beforehand
    (:func:`new_customer` takes them; see :func:`row_keys`)."""
    alone: NewCustomer | None = None
    """The new customer this row alone makes, if worked out beforehand (by the import's
    worker process, with the import's time zone and score: :func:`new_customer`)."""


SearchKeys = tuple[str, str, str]
"""What :func:`~cti.store.customers.search_keys_of` gives: the folded name, the folded
search text, the CJK grams (:func:`~cti.store.customers.gram_text`)."""


def row_keys(fields: dict[str, str], emails: Sequence[str], name_key: str) -> SearchKeys:
    """The search keys of a new customer made of one row (as :func:`new_customer` would
    work them out)."""
    name, company = fields.get("name", ""), fields.get("company", "")
    return search_keys_of(name, company, emails, name_key if name else None)


def merge_row(current: Customer, row: CustomerRow) -> Customer:
    """``current`` with the row applied: the row's non-empty fields replace, its numbers
    and e-mail addresses are added."""
    phones = list(current.phones)
    for raw, e164, kind, extension in row.phones:
        if all(p.e164 != e164 for p in phones):
            phones.append(
                PhoneNumber(raw=raw, e164=e164, kind=PhoneType(kind), extension=extension)
            )
    emails = [e for e in (current.email, *current.other_emails) if e]
    for email in row.emails:
        if email.lower() not in (e.lower() for e in emails):
            emails.append(email)
    changes: dict[str, object] = dict(row.fields)
    changes |= {
        "phones": tuple(phones),
        "email": emails[0] if emails else "",
        "other_emails": tuple(emails[1:]),
    }
    return current.model_copy(update=changes)


def new_customer(rows: Sequence[CustomerRow], time_zone: str) -> NewCustomer:
    """A new customer from its rows, as :func:`merge_row` would make it from an empty
    customer in ``time_zone`` (later fields replace, numbers and addresses add up); the
    store scores it as a customer without orders or contacts."""
    if len(rows) == 1 and rows[0].alone is not None:
        return rows[0].alone
    keys = rows[0].keys if len(rows) == 1 else None
    if keys is not None:  # most: one row, its numbers and addresses each once already
        fields, phones, emails = rows[0].fields, tuple(rows[0].phones), tuple(rows[0].emails)
    else:
        fields, phones, emails, keys = _merged_rows(rows)
    columns = new_customer_columns(fields, emails, keys, time_zone)
    return NewCustomer(columns=columns, phones=phones, emails=emails)


def alone_columns(row: CustomerRow, time_zone: str) -> tuple[object, ...]:
    """The columns of the new customer ``row`` alone makes (:func:`new_customer`'s, the
    row's search keys worked out: :attr:`CustomerRow.keys`)."""
    assert row.keys is not None
    return new_customer_columns(row.fields, row.emails, row.keys, time_zone)


def new_customer_columns(
    fields: dict[str, str],
    emails: Sequence[str],
    keys: SearchKeys,
    time_zone: str,
) -> tuple[object, ...]:
    """A new customer's columns (:attr:`NewCustomer.columns`)."""
    name_key, text, grams = keys
    return (
        fields.get("name", ""), fields.get("language", _DEFAULT_LANGUAGE),
        fields.get("time_zone", time_zone), emails[0] if emails else "",
        fields.get("company", ""), fields.get("address", ""), fields.get("owner", ""),
        name_key, text, grams,
    )  # fmt: skip


def _merged_rows(
    rows: Sequence[CustomerRow],
) -> tuple[dict[str, str], tuple[Phone, ...], tuple[str, ...], SearchKeys]:
    """The fields, numbers and addresses of rows taken in order (later fields replace,
    numbers and addresses add up), and their search keys."""
    fields: dict[str, str] = {}
    phones: dict[str, Phone] = {}
    emails: dict[str, str] = {}
    for row in rows:
        fields |= row.fields
        for phone in row.phones:
            phones.setdefault(phone[1], phone)
        for email in row.emails:
            emails.setdefault(email.lower(), email)
    named = [row for row in rows if "name" in row.fields]
    keys = row_keys(fields, list(emails.values()), named[-1].name_key if named else "")
    return fields, tuple(phones.values()), tuple(emails.values()), keys


async def import_batch(
    base: CustomerBase,
    batch: Sequence[CustomerRow],
    time_zone: str,
    now: float,
    report: ImportReport,
) -> None:
    numbers = [p[1] for row in batch for p in row.phones]
    holders = await base.holders(set(numbers))
    names = await base.name_keys({key for keys in holders.values() for key in keys})
    alone, rest = _alone(batch, holders, numbers)
    alone_lines = [row.line for row in alone]
    targets, kept_apart = _targets(rest, holders, names, report, alone_lines)
    stored = {c.id: c for c in await base.get_many(sorted({k for _, k, _ in targets if k > 0}))}
    pending, new, merges = _merged(targets, stored, time_zone, report)
    report.created += len(alone)
    assigned = dict(zip(pending, await base.save_customers(list(pending.values())), strict=True))
    if pending:
        report.rescored += (await base.rescore(now, list(assigned.values()))).customers
    score = Score.of_new(base.model, now)
    news, at = _in_order(alone, alone_lines, new, time_zone)
    scored = (score.value, score.segment, score.scored_at)
    ids = await add_new_customers(base.store, news, scored)
    assigned |= {key: ids[i] for key, i in at.items()}
    report.rescored += len(news)
    report.merges += [Merge(m.line, assigned[m.customer_id], m.by) for m in merges]
    report.kept_apart += _kept_apart(kept_apart, assigned)


def _kept_apart(notes: list[KeptApart], assigned: dict[int, int]) -> list[KeptApart]:
    """``notes`` by the ids their customers took. A refused row of the batch (a key of
    its own that no customer took) is no customer to be kept apart from: it leaves the
    note, and a note left with no one leaves the report."""
    out = []
    for note in notes:
        others = tuple(assigned.get(k, k) for k in note.others if k > 0 or k in assigned)
        if note.customer_id in assigned and others:
            out.append(KeptApart(note.line, assigned[note.customer_id], others))
    return out


def _alone(
    batch: Sequence[CustomerRow], holders: dict[str, set[int]], numbers: list[str]
) -> tuple[list[CustomerRow], list[CustomerRow]]:
    """The rows that make a new customer of their own (no id, a name, and no number that a
    customer holds or another row of the batch gives: nothing can go to them or they to
    anything, which :func:`_targets` and :func:`_merged` would find row by row), and the
    rest, each in the batch's order."""
    taken = holders.keys() | {n for n, count in Counter(numbers).items() if count > 1}
    alone: list[CustomerRow] = []
    rest: list[CustomerRow] = []
    for row in batch:
        if row.id is None and "name" in row.fields:
            for phone in row.phones:
                if phone[1] in taken:
                    rest.append(row)
                    break
            else:
                alone.append(row)
        else:
            rest.append(row)
    return alone, rest


def _in_order(
    alone: list[CustomerRow],
    lines: list[int],
    new: dict[int, list[CustomerRow]],
    time_zone: str,
) -> tuple[list[NewCustomer], dict[int, int]]:
    """The new customers in the order of their first rows (so they take their ids in the
    file's order, as when every row went through :func:`_merged`), and where each of
    ``new``'s keys is among them; ``lines``: the ``alone`` rows' lines."""
    news = [row.alone or new_customer([row], time_zone) for row in alone]
    if not new:
        return news, {}
    ordered: list[NewCustomer] = []
    at: dict[int, int] = {}
    done = 0
    for key, rows in new.items():  # in the order of their first rows
        upto = bisect.bisect(lines, rows[0].line)
        ordered += news[done:upto]
        at[key] = len(ordered)
        ordered.append(new_customer(rows, time_zone))
        done = upto
    return ordered + news[done:], at


_Target = tuple[CustomerRow, int, str]
"""A row, the customer it goes to (an id, or -n for the n-th new one of the batch) and how
it was found (``id`` or the number it shares)."""


def _targets(
    batch: Sequence[CustomerRow],
    holders: dict[str, set[int]],
    names: dict[int, str],
    report: ImportReport,
    alone_lines: Sequence[int] = (),
) -> tuple[list[_Target], list[KeptApart]]:
    """Each row's target: an existing id, an id the row gives, or -n for the n-th new
    customer of the batch (so later rows with its numbers merge into it; the rows left
    out as :func:`_alone`, at ``alone_lines``, counted: a key left unresolved shows in
    the report). A row that could go to several customers is an error in ``report``."""
    targets: list[_Target] = []
    kept_apart: list[KeptApart] = []
    new_lines: dict[int, int] = {}
    for row in batch:
        key: int | None = 0
        apart: Sequence[int] = ()
        by = ""  # most rows of a large file: a new customer, no number seen yet
        if row.id is not None:
            key, by, apart = _target(row, holders, names)
        else:
            for phone in row.phones:  # a loop, not all() over a generator: made per row
                if phone[1] in holders:
                    key, by, apart = _target(row, holders, names)
                    break
        if key is None:
            who = " and ".join(
                f"customer {k}" if k > 0 else f"the new customer of line {new_lines[k]}"
                for k in sorted(apart, key=lambda k: (k < 0, abs(k)))
            )
            report.errors.append(
                RowError(row.line, f"its numbers belong to {who}; give the id of the one to update")
            )
            continue
        if key == 0:
            key = -(len(new_lines) + 1 + bisect.bisect(alone_lines, row.line))
            new_lines[key] = row.line
        if apart:
            kept_apart.append(KeptApart(row.line, key, tuple(apart)))
        if "name" in row.fields:
            names[key] = row.name_key
        for phone in row.phones:
            held = holders.get(phone[1])
            if held is None:
                holders[phone[1]] = {key}
            else:
                held.add(key)
        targets.append((row, key, by))
    return targets, kept_apart


def _merged(
    targets: list[_Target], stored: dict[int, Customer], time_zone: str, report: ImportReport
) -> tuple[dict[int, Customer], dict[int, list[CustomerRow]], list[Merge]]:
    """The customers to save (by id) with the rows merged in, the rows of each new
    customer without an id (by key), and the merges."""
    pending: dict[int, Customer] = {}
    new: dict[int, list[CustomerRow]] = {}
    merges: list[Merge] = []
    created = 0
    for row, key, by in targets:
        rows = new.get(key) if key < 0 else None
        known = (rows is not None) if key < 0 else (key in pending or key in stored)
        if not known and "name" not in row.fields:
            report.errors.append(RowError(row.line, "name is empty (a new customer needs a name)"))
            continue
        if rows is not None:
            rows.append(row)
        elif key < 0:
            new[key] = [row]  # most rows of a large file: a new customer of one row
        else:
            template = stored.get(key) or Customer(id=key, name="", time_zone=time_zone)
            pending[key] = merge_row(pending.get(key) or template, row)
        if known:
            merges.append(Merge(row.line, key, by))
        else:
            created += 1
    report.created += created
    report.updated += len(merges)
    return pending, new, merges


def _target(
    row: CustomerRow, holders: dict[str, set[int]], names: dict[int, str]
) -> tuple[int | None, str, list[int]]:
    """Which customer a row goes to: ``(key, how, others)``.

    The key is the row's id; else the one customer holding one of its numbers under the
    same (folded) name, or under any name if the row gives none; else 0, a new customer,
    kept apart from the holders whose names differ (``others``: a family phone, or a
    sound-alike name: 张伟 is not 章伟). None when the row could go to several
    customers (``others``)."""
    if row.id is not None:
        return row.id, "id", []
    found: dict[int, str] = {}
    for _, e164, _, _ in row.phones:
        for key in sorted(holders.get(e164, ())):
            found.setdefault(key, e164)
    name = row.name_key
    same = [key for key in found if not name or names.get(key) == name]
    if len(same) > 1:
        return None, "", sorted(same)
    if same:
        return same[0], found[same[0]], []
    return 0, "", sorted(found)
