"""CSV import of the customer base (``cti customers import``); the export, in the same
columns, is :mod:`cti.customers.csv_export`.

Two kinds of file, told apart by their header (``docs/customers.md`` has both):

* **customers**: ``name`` and any of :data:`CUSTOMER_COLUMNS`. Several numbers or
  e-mail addresses in one cell are separated by ``;``.
* **orders**: ``customer``, ``ordered_at`` and ``amount``, and any of
  :data:`ORDER_COLUMNS`. ``customer`` is an id (``12`` or ``#12``), a phone number or
  an e-mail address.

Every bad row is reported with its line number and the reason, and the rest imported.
A customer row without an id is merged into the customer who already holds one of its
numbers (normalised to E.164); numbers held by two different customers are reported,
not guessed. Values are recomputed for every customer a file touched. Files are UTF-8,
with or without a byte-order mark, unless another encoding is given (``gb18030`` for
files saved by Chinese Excel).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import io
import itertools
import re
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti.customers.base import CustomerBase, SearchKind, fold, plan_search, text_problem
from cti.customers.merge import (
    CustomerRow,
    ImportReport,
    KeptApart,
    Merge,
    RowError,
    import_batch,
    merge_row,
    row_keys,
)
from cti.customers.phones import Phone, PhoneError, customer_phone
from cti.errors import CtiError
from cti.models import Order, PhoneType
from cti.store.customers_bulk import bulk_settings, deferred_indexes

__all__ = [
    "BATCH_ROWS",
    "CUSTOMER_COLUMNS",
    "ORDER_COLUMNS",
    "PHONE_COLUMNS",
    "CsvImportError",
    "CsvRows",
    "CustomerRow",
    "ImportReport",
    "KeptApart",
    "Merge",
    "RowError",
    "check_header",
    "from_cell",
    "import_customers",
    "import_orders",
    "merge_row",
    "parse_customer_row",
    "parse_order_row",
    "read_csv",
    "records",
    "to_cell",
]

#: Phone columns and the type of number each holds.
PHONE_COLUMNS: dict[str, PhoneType] = {
    "mobile": PhoneType.MOBILE,
    "home_phone": PhoneType.HOME,
    "work_phone": PhoneType.WORK,
    "other_phone": PhoneType.OTHER,
}
_PHONE_KINDS = tuple(PHONE_COLUMNS.items())
#: Every column of a customers file, in the order export writes them. ``value`` and
#: ``segment`` are written for reading and ignored on import: they come from orders.
CUSTOMER_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    *PHONE_COLUMNS,
    "email",
    "company",
    "address",
    "language",
    "time_zone",
    "owner",
    "value",
    "segment",
)
ORDER_COLUMNS: tuple[str, ...] = ("customer", "ordered_at", "amount", "currency", "reference")
#: The single-valued columns a checked row keeps (:attr:`CustomerRow.fields`) when not empty.
_SINGLE_COLUMNS = ("name", "company", "address", "language", "time_zone", "owner")
#: Rows handled per transaction.
BATCH_ROWS = 10_000
#: A file of at least this many rows is read and checked in a process of its own
#: (:mod:`cti.customers.csv_worker`) while this one writes.
PARALLEL_MIN_ROWS = 20_000
#: Rows checked between two turns of the event loop, in which the batch before, being
#: written meanwhile, sends its next statement to the store's thread.
YIELD_ROWS = 500
#: The longest text a field may hold.
MAX_FIELD = 500
#: The most lines one quoted field may run over before its quote counts as unterminated.
MAX_RECORD_LINES = 20
#: The columns whose field may hold line breaks (flattened to one line on import).
MULTI_LINE_COLUMNS = ("address",)
#: What a spreadsheet reads as a formula at the start of a cell (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_SEPARATOR = re.compile(r"[;；]")
_EMAIL = re.compile(r"^[^@\s;,<>]+@[^@\s;,<>]+\.[^@\s;,<>]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_NEUTRALISED = re.compile(r"^'*[=+\-@\t\r]")
_NUMBER_CELL = re.compile(r"^-?\d+(?:\.\d+)?$")
_AMOUNT_JUNK = re.compile(r"[,\s¥￥$€£]|^(?:CNY|RMB|USD|GBP|EUR)|(?:CNY|RMB|USD|GBP|EUR|元)$")


class CsvImportError(CtiError):
    """A file that cannot be imported at all (missing, unreadable, a bad header)."""


# --- reading -------------------------------------------------------------------------


def read_csv(
    path: Path, encoding: str = "utf-8-sig", skip: int = 0
) -> tuple[list[str], CsvRows, int]:
    """The header, the rows as ``(first line, fields or error)``, and the line count;
    the first ``skip`` rows read but left out (the import's worker: the importer checks
    those), without the fields made for them.

    Undecodable bytes and NUL characters do not stop the reading: the row holding them
    is reported. A quote left open is reported on its line and the lines after it are
    read again as rows (see :func:`records`). The file is read lazily; close it by
    exhausting the iterator.
    """
    try:
        lines = _count_lines(path)
        handle = path.open(encoding=encoding, errors="surrogateescape", newline="")
    except (OSError, LookupError) as exc:
        raise CsvImportError(f"cannot read {path}: {exc}") from None
    spans: set[int] = set()  # the columns whose field may run over lines: address

    def may_span(cells: list[str]) -> bool:
        return all(i in spans for i, cell in enumerate(cells) if "\n" in cell or "\r" in cell)

    reader = records(handle, may_span)
    try:
        first = next(reader)
    except StopIteration:
        handle.close()
        raise CsvImportError(f"{path} is empty: the first line must be the header") from None
    if isinstance(first[1], RowError):
        handle.close()
        raise CsvImportError(f"{path} line 1: the header is not CSV: {first[1].reason}")
    names = [column.strip().lower() for column in first[1]]
    spans.update(i for i, name in enumerate(names) if name in MULTI_LINE_COLUMNS)
    return names, CsvRows(_rows(handle, reader, names, skip), path, encoding, lines), lines


class CsvRows(Iterator[tuple[int, dict[str, str] | RowError]]):
    """The rows :func:`read_csv` reads, with the file they come from and how many lines
    it has (the header's included): what an import knows before it starts, and what a
    worker process needs to read the file again (:mod:`cti.customers.csv_worker`)."""

    def __init__(
        self,
        rows: Generator[tuple[int, dict[str, str] | RowError], None, None],
        path: Path,
        encoding: str,
        lines: int,
    ) -> None:
        self._rows = rows
        self.path, self.encoding, self.lines = path, encoding, lines
        self.started = False
        """Whether a row was taken (a worker would read them again)."""

    def __next__(self) -> tuple[int, dict[str, str] | RowError]:
        self.started = True
        return next(self._rows)

    def rest(self) -> Generator[tuple[int, dict[str, str] | RowError], None, None]:
        """The rows not yet taken, without this iterator's step per row (for a reader
        that takes them all: :mod:`cti.customers.csv_worker`)."""
        self.started = True
        return self._rows

    def close(self) -> None:
        """Close the file (the rows not read are left)."""
        self._rows.close()


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as raw:
        while chunk := raw.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def records(
    lines: Iterable[str], may_span: Callable[[list[str]], bool] = lambda cells: True
) -> Iterator[tuple[int, list[str] | RowError]]:
    """CSV records as ``(first line, cells)``, or an error for a quote never closed.

    A quoted field may run over several lines when ``may_span`` accepts the record's
    cells (a line break in an address). A quote still open at the end of the file or
    after :data:`MAX_RECORD_LINES` lines, or closed on a later line making a record
    ``may_span`` refuses (a line break in a name: a stray quote further down closed
    it), is an error on the line where it opened, and the lines after that one are
    read again as records: one stray quote costs one row, never the rest of the file.
    """
    numbered = enumerate(lines, start=1)
    again: list[tuple[int, str]] = []  # lines to read again, in order
    pending: list[tuple[int, str]] = []
    quotes = 0
    while True:
        step = again.pop(0) if again else next(numbered, None)
        if step is not None and not pending:
            # A line the csv module would split at its commas (no quote, NUL or inner
            # CR): most lines, looked at once without the line end.
            body = step[1].rstrip("\r\n")
            if '"' not in body and "\x00" not in body and "\r" not in body:
                yield step[0], body.split(",") if body else []
                continue
        if step is not None:
            pending.append(step)
            quotes += step[1].count('"')
            if quotes % 2 == 0:
                first, text = pending[0][0], "".join(part for _, part in pending)
                cells: list[str] | RowError
                try:
                    cells = next(csv.reader(io.StringIO(text)), [])
                except csv.Error as exc:
                    cells = RowError(first, f"not valid CSV: {exc}")
                if len(pending) == 1 or isinstance(cells, RowError) or may_span(cells):
                    pending, quotes = [], 0
                    yield first, cells
                    continue
                why = (
                    f"a quote opened on this line closes only on line {step[0]}, putting"
                    " a line break in a field that must be one line"
                )
            elif len(pending) <= MAX_RECORD_LINES:
                continue
            else:
                why = f"a quote opened on this line is not closed within {MAX_RECORD_LINES} lines"
        elif not pending:
            return
        else:
            why = "a quote opened on this line is never closed"
        first = pending[0][0]
        yield first, RowError(first, why)
        again, pending, quotes = pending[1:] + again, [], 0


def _rows(
    handle: IO[str],
    reader: Iterator[tuple[int, list[str] | RowError]],
    names: list[str],
    skip: int = 0,
) -> Generator[tuple[int, dict[str, str] | RowError], None, None]:
    with handle:
        for first, cells in reader:
            if isinstance(cells, RowError):
                if skip:
                    skip -= 1
                    continue
                yield first, cells
                continue
            joined = "".join(cells)
            if not joined.strip():
                continue  # blank line
            if skip:  # a row, as the caller counts them: left out
                skip -= 1
                continue
            if len(cells) > len(names):
                extra = len(cells) - len(names)
                yield (
                    first,
                    RowError(
                        first, f"{len(cells)} fields, {extra} more than the header's {len(names)}"
                    ),
                )
                continue
            stripped = map(str.strip, cells)
            if "'" in joined:  # a cell may start with export's quote
                values = [from_cell(c) if c.startswith("'") else c for c in stripped]
                yield first, dict(zip(names, values, strict=False))
            else:
                yield first, dict(zip(names, stripped, strict=False))


def to_cell(text: str) -> str:
    """A value as a CSV cell no spreadsheet runs as a formula (OWASP's advice on CSV
    injection): a text starting with ``= + - @``, a tab or a carriage return, after any
    quotes, gets a leading ``'``. Plain decimal numbers (``-12.50``) stay numbers; a
    phone number (``+8613800000001``) is kept as text by the same quote, so its ``+``
    and leading digits survive. :func:`from_cell` undoes it exactly."""
    if _NEUTRALISED.match(text) and not _NUMBER_CELL.match(text):
        return "'" + text
    return text


def from_cell(text: str) -> str:
    """A cell as :func:`to_cell` got it: one ``'`` it added is dropped."""
    if text.startswith("'") and _NEUTRALISED.match(text[1:]) and not _NUMBER_CELL.match(text[1:]):
        return text[1:]
    return text


def check_header(names: list[str], path: Path) -> str:
    """``"customers"`` or ``"orders"``; raises naming the columns that are wrong."""
    required: tuple[str, ...]
    if "amount" in names or "ordered_at" in names:
        kind, known, required = "orders", ORDER_COLUMNS, ("customer", "ordered_at", "amount")
    else:
        kind, known, required = "customers", CUSTOMER_COLUMNS, ("name",)
    unknown = [n for n in names if n not in known]
    missing = [n for n in required if n not in names]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    problems = []
    if unknown:
        problems.append(f"unknown columns {unknown}")
    if missing:
        problems.append(f"missing columns {missing}")
    if duplicated:
        problems.append(f"columns given twice {duplicated}")
    if problems:
        raise CsvImportError(
            f"{path} line 1: the header of a {kind} file has {'; '.join(problems)};"
            f" the columns are {list(known)}"
        )
    return kind


# --- customer rows -------------------------------------------------------------------


def parse_customer_row(
    line: int, cells: dict[str, str], default_region: str
) -> CustomerRow | RowError:
    """Check one customer row; every problem of the row is named in the error."""
    if "address" in cells:  # an address copied from a letter: its lines, one line
        cells = cells | {
            "address": ", ".join(filter(None, map(str.strip, cells["address"].splitlines())))
        }
    problems = _text_problems(cells)
    customer_id: int | None = None
    raw_id = cells.get("id", "").lstrip("#")
    if raw_id:
        if not raw_id.isdigit() or not 0 < int(raw_id) < 2**63:
            problems.append(f"id {cells['id']!r} is not a positive whole number")
        else:
            customer_id = int(raw_id)
    phones = _row_phones(cells, default_region, problems)
    emails = _row_emails(cells, problems)
    problems += _code_problems(cells)
    if problems:
        return RowError(line, "; ".join(problems))
    fields = {k: v for k in _SINGLE_COLUMNS if (v := cells.get(k))}
    name = fields.get("name")
    name_key = fold(name) if name else ""
    keys = row_keys(fields, emails, name_key) if customer_id is None else None
    return CustomerRow(line, customer_id, phones, emails, fields, name_key, keys)


def _row_phones(cells: dict[str, str], default_region: str, problems: list[str]) -> list[Phone]:
    """The row's phones, each number once; a bad one is added to ``problems``."""
    phones: list[Phone] = []
    for column, kind in _PHONE_KINDS:
        cell = cells.get(column)
        if not cell:
            continue
        for raw in _split(cell):
            try:
                phone = customer_phone(raw, default_region, kind)
            except PhoneError as exc:
                problems.append(f"{column}: {exc}")
                continue
            if not phones or phone[1] not in [p[1] for p in phones]:
                phones.append(phone)
    return phones


def _row_emails(cells: dict[str, str], problems: list[str]) -> list[str]:
    """The row's e-mail addresses, each once (case aside); a bad one joins ``problems``."""
    emails: list[str] = []
    for email in _split(cells.get("email", "")):
        if not _EMAIL.match(email):
            problems.append(f"email {email!r} is not an e-mail address")
        elif not emails or email.lower() not in (e.lower() for e in emails):
            emails.append(email)
    return emails


def _code_problems(cells: dict[str, str]) -> list[str]:
    """What is wrong with the row's language and time zone codes."""
    problems = []
    language = cells.get("language", "")
    if language and not _LANGUAGE.match(language):
        problems.append(f"language {language!r} is not a language code such as zh, en or zh-CN")
    zone = cells.get("time_zone", "")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"time_zone {zone!r} is not a time zone such as Asia/Shanghai")
    return problems


def _text_problems(cells: dict[str, str]) -> list[str]:
    """What is wrong with the text of each field (unsafe characters, length)."""
    texts = cells.values()
    text = "".join(texts)
    if text_problem(text) is None and (
        len(text) <= MAX_FIELD or max(map(len, texts), default=0) <= MAX_FIELD
    ):
        return []  # most rows: one look at all their text (short enough for any field)
    problems: list[str] = []
    for column, text in cells.items():
        problem = text_problem(text)
        if problem is not None:
            problems.append(f"{column} {problem}")
        elif len(text) > MAX_FIELD:
            problems.append(f"{column} is longer than {MAX_FIELD} characters")
    return problems


def _split(cell: str) -> list[str]:
    if ";" not in cell and "；" not in cell:  # most cells: one value
        part = cell.strip()
        return [part] if part else []
    return [part.strip() for part in _SEPARATOR.split(cell) if part.strip()]


async def import_customers(
    base: CustomerBase,
    rows: Iterator[tuple[int, dict[str, str] | RowError]],
    *,
    default_region: str,
    time_zone: str,
    now: float,
    report: ImportReport,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Import customer rows a batch at a time (see the module docstring) into ``report``.

    New customers without a ``time_zone`` get ``time_zone``. ``on_batch`` is called with
    the last line read after each batch.
    """
    expected = rows.lines - 1 if isinstance(rows, CsvRows) else 0
    batches = _checked_batches(rows, default_region)
    if isinstance(rows, CsvRows) and not rows.started and expected >= PARALLEL_MIN_ROWS:
        from cti.customers.csv_worker import checked_in_worker  # it imports this module

        path, encoding = rows.path, rows.encoding
        later = checked_in_worker(
            path, encoding, default_region, BATCH_ROWS, time_zone, skip=BATCH_ROWS
        )
        batches = _first_here(rows, default_region, later)
    async with (
        bulk_settings(base.store),
        deferred_indexes(base.store, expected),
        contextlib.aclosing(batches),
    ):
        with collector_paused():
            last_line = await _import_batches(base, batches, time_zone, now, report, on_batch)
    if on_batch is not None and last_line:
        on_batch(last_line)
    report.errors.sort(key=lambda error: error.line)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the body: an import makes rows by the thousand,
    none in a cycle, and would have it run over and over, scanning everything alive
    (most of the import's time once the parsing is elsewhere); it runs again after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


CheckedBatch = tuple[int, int, list[CustomerRow], list[RowError]]
"""Rows checked: how many were read, the last line read, the rows that passed and the
errors."""


async def _import_batches(
    base: CustomerBase,
    batches: AsyncGenerator[CheckedBatch, None],
    time_zone: str,
    now: float,
    report: ImportReport,
    on_batch: Callable[[int], None] | None,
) -> int:
    """Each batch checked while the one before is written; the last line read."""
    writing: asyncio.Future[None] | None = None
    last_line = 0
    try:
        async for count, last, batch, errors in batches:
            report.rows += count
            report.errors += errors
            if writing is not None:  # the batch before, written while this one was read
                await writing
            if on_batch is not None and last_line:
                on_batch(last_line)
            writing = None
            if batch:
                merging = import_batch(base, batch, time_zone, now, report)
                writing = asyncio.ensure_future(merging)
            last_line = last
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
    return last_line


async def _checked_batches(
    rows: Iterator[tuple[int, dict[str, str] | RowError]], default_region: str
) -> AsyncGenerator[CheckedBatch, None]:
    """The rows a batch at a time, checked here (:func:`check_rows`); the loop turns
    every :data:`YIELD_ROWS` rows."""
    while chunk := list(itertools.islice(rows, BATCH_ROWS)):
        batch: list[CustomerRow] = []
        errors: list[RowError] = []
        for start in range(0, len(chunk), YIELD_ROWS):
            check_rows(chunk[start : start + YIELD_ROWS], default_region, batch, errors)
            await asyncio.sleep(0)
        yield len(chunk), chunk[-1][0], batch, errors


async def _first_here(
    rows: CsvRows, default_region: str, later: AsyncGenerator[CheckedBatch, None]
) -> AsyncGenerator[CheckedBatch, None]:
    """The first batch of ``rows`` checked here, then ``later``'s (a worker's, from the
    second batch on): the worker starts at once, and this process, which would wait for
    its first batch (its imports and first 10,000 rows, some 0.4 s), checks that one
    meanwhile. The batches are the same either way (``BATCH_ROWS`` rows each). The
    first is given once the worker has opened the file (its first message, an empty
    batch): a worker that cannot read the file stops the import before anything is
    written, as it did when it read every batch."""
    ahead = asyncio.ensure_future(anext(later))  # the worker's start
    try:
        with contextlib.closing(rows):
            head = itertools.islice(rows, BATCH_ROWS)
            first = [batch async for batch in _checked_batches(head, default_region)]
        with contextlib.suppress(StopAsyncIteration):
            started = await ahead
            if started[0]:  # a batch of rows, not the empty one
                first.append(started)
        for batch in first:
            yield batch
        async for batch in later:  # the rest (none if it stopped)
            yield batch
    finally:
        if not ahead.done():
            ahead.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await ahead  # its worker stopped (checked_in_worker's own finally)
        await later.aclose()


def check_rows(
    rows: Iterable[tuple[int, dict[str, str] | RowError]],
    default_region: str,
    batch: list[CustomerRow],
    errors: list[RowError],
) -> None:
    """Each row checked by :func:`parse_customer_row`: to ``batch`` if it passes, else
    to ``errors``."""
    for line, cells in rows:
        parsed: CustomerRow | RowError = (
            cells
            if isinstance(cells, RowError)
            else (parse_customer_row(line, cells, default_region))
        )
        if isinstance(parsed, RowError):
            errors.append(parsed)
        else:
            batch.append(parsed)


# --- order rows ----------------------------------------------------------------------


def parse_order_row(
    line: int, cells: dict[str, str], zone: ZoneInfo
) -> tuple[str, float, float, str, str] | RowError:
    """Check one order row: (customer as given, epoch, amount, currency, reference)."""
    problems = _text_problems(cells)
    customer = cells.get("customer", "")
    if not customer:
        problems.append("customer is empty (give an id, a phone number or an e-mail)")
    when = cells.get("ordered_at", "")
    at = 0.0
    try:
        parsed = datetime.fromisoformat(when)
        at = (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).timestamp()
    except ValueError:
        problems.append(f"ordered_at {when!r} is not a date such as 2025-03-01 or 2025-03-01T14:30")
    amount_text = _AMOUNT_JUNK.sub("", cells.get("amount", ""))
    try:
        amount = float(amount_text)
        if not amount == amount or abs(amount) == float("inf"):
            raise ValueError
    except ValueError:
        problems.append(f"amount {cells.get('amount', '')!r} is not a number such as 1234.50")
        amount = 0.0
    if problems:
        return RowError(line, "; ".join(problems))
    return customer, at, amount, cells.get("currency", ""), cells.get("reference", "")


async def import_orders(
    base: CustomerBase,
    rows: Iterator[tuple[int, dict[str, str] | RowError]],
    *,
    default_region: str,
    time_zone: str,
    now: float,
    report: ImportReport,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Import order rows; an order whose reference its customer has is skipped."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CsvImportError(f"time zone {time_zone!r} for order dates is not known") from None
    touched: set[int] = set()
    batch: list[Order] = []
    resolved: dict[str, int | str] = {}
    last_line = 0

    async def flush() -> None:
        if batch:
            added = await base.add_orders(batch)
            report.created += added
            report.updated += len(batch) - added
            batch.clear()
        if on_batch is not None and last_line:
            on_batch(last_line)

    for line, cells in rows:
        last_line = line
        report.rows += 1
        parsed = cells if isinstance(cells, RowError) else parse_order_row(line, cells, zone)
        if isinstance(parsed, RowError):
            report.errors.append(parsed)
            continue
        who, at, amount, currency, reference = parsed
        if who not in resolved:
            resolved[who] = await _resolve_customer(base, who, default_region)
        customer_id = resolved[who]
        if isinstance(customer_id, str):
            report.errors.append(RowError(line, customer_id))
            continue
        touched.add(customer_id)
        batch.append(
            Order(
                customer_id=customer_id,
                ordered_at=at,
                amount=amount,
                currency=currency,
                reference=reference,
            )
        )
        if len(batch) >= BATCH_ROWS:
            await flush()
    await flush()
    report.rescored += (await base.rescore(now, touched)).customers


async def _resolve_customer(base: CustomerBase, who: str, default_region: str) -> int | str:
    """The one customer ``who`` (an id, number or e-mail) names, or why there is none."""
    plan = plan_search(who if not who.isdigit() or len(who) > 9 else f"#{who}", default_region)
    if plan is None or plan.kind is SearchKind.NAME:
        return f"customer {who!r} is not an id, a phone number or an e-mail address"
    ids = await base.search_ids(plan, 3)
    if not ids:
        return f"no customer {who!r}"
    if len(ids) > 1:
        held = ", ".join(map(str, ids))
        return f"customer {who!r} is ambiguous: customers {held} have it; give the id"
    return ids[0]
