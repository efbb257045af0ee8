"""CSV export of the customer base (``cti customers export``): the columns of
:mod:`cti.customers.csv_files`, so an exported file imports again unchanged; every cell
passes :func:`~cti.customers.csv_files.to_cell` (no spreadsheet runs one as a formula).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from cti.customers.base import CustomerBase
from cti.customers.csv_files import CUSTOMER_COLUMNS, ORDER_COLUMNS, PHONE_COLUMNS, to_cell
from cti.models import Customer


def customer_cells(customer: Customer) -> list[str]:
    """A customer as one row of :data:`CUSTOMER_COLUMNS`."""
    phones: dict[str, list[str]] = {column: [] for column in PHONE_COLUMNS}
    column_of = {kind: column for column, kind in PHONE_COLUMNS.items()}
    for phone in customer.phones:
        text = phone.e164 + (f" ext. {phone.extension}" if phone.extension else "")
        phones[column_of[phone.kind]].append(text)
    emails = [e for e in (customer.email, *customer.other_emails) if e]
    cells = [
        str(customer.id),
        customer.name,
        *("; ".join(phones[column]) for column in PHONE_COLUMNS),
        "; ".join(emails),
        customer.company,
        customer.address,
        customer.language,
        customer.time_zone,
        customer.owner,
        f"{customer.value:g}",
        customer.segment.value,
    ]
    return [to_cell(cell) for cell in cells]


async def export_customers(
    base: CustomerBase, out: TextIO, progress: Callable[[int], None] | None = None
) -> int:
    """Write every customer as CSV to ``out``; return how many."""
    writer = csv.writer(out)
    writer.writerow(CUSTOMER_COLUMNS)
    count = 0
    async for batch in base.all_customers():
        writer.writerows(customer_cells(c) for c in batch)
        count += len(batch)
        if progress is not None:
            progress(count)
    return count


async def export_orders(base: CustomerBase, out: TextIO, time_zone: str) -> int:
    """Write every order as CSV (dates in ``time_zone``, ISO 8601); return how many."""
    zone = ZoneInfo(time_zone)
    writer = csv.writer(out)
    writer.writerow(ORDER_COLUMNS)
    count = 0
    async for batch in base.all_orders():
        writer.writerows(
            [
                f"#{o.customer_id}",
                datetime.fromtimestamp(o.ordered_at, zone).isoformat(timespec="seconds"),
                f"{o.amount:.2f}",
                to_cell(o.currency),
                to_cell(o.reference),
            ]
            for o in batch
        )
        count += len(batch)
    return count
