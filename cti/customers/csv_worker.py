"""A customers file read and checked in a process of its own, a batch ahead of the
import that writes it (:func:`cti.customers.csv_files.import_customers`, for large
files). The process runs this module (``python -m``: nothing of the importer's
program is run again in it); the batches come back on its standard output as plain
tuples (``marshal``, no model per row, each behind its length), the errors with their
lines. It is stopped with the import, however that ends.

    python -m cti.customers.csv_worker PATH ENCODING REGION BATCH_ROWS TIME_ZONE SKIP

It reads (without checking) the file's first ``SKIP`` rows and leaves them out: the
importer checks its first batch itself while this process starts. An empty batch comes
first, once the file is open and its header read.

A row without an id comes with the new customer it alone makes (``CustomerRow.alone``:
the import's time zone, ``TIME_ZONE``, is given for it; the store gives the score), the
work :func:`~cti.customers.merge.new_customer` would do per row in the importer.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import marshal
import os
import struct
import sys
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any, BinaryIO

import cti
from cti.clock import real_io
from cti.customers.csv_files import CheckedBatch, CsvImportError, parse_customer_row, read_csv
from cti.customers.csv_quick import Checked, quick_checker
from cti.customers.merge import CustomerRow, RowError, alone_columns
from cti.store.customers_bulk import NewCustomer

_LENGTH = struct.Struct("<Q")
#: A NamedTuple made by tuple's own constructor: its class's ``__new__`` is a Python call.
_new = tuple.__new__
#: Where the ``cti`` package is, for the worker's imports.
_ROOT = str(Path(cti.__file__).resolve().parent.parent)


def work(
    path: Path,
    encoding: str,
    default_region: str,
    batch_rows: int,
    time_zone: str,
    out: BinaryIO,
    skip: int = 0,
) -> None:
    """Each batch of the file after its first ``skip`` rows checked and written to
    ``out``; then None, or the error that stopped the reading as text. ``time_zone``:
    the import's, a new customer's when its row gives none (module docstring)."""

    def send(message: Any) -> None:
        # Version 4: short ASCII strings and small tuples in their own forms and objects
        # written once (the zone, the language, a Han name and its key): 0.3 us a row
        # more to write than version 2's, 1.1 us less to read (the importer's, the
        # busier process), a third smaller.
        data = marshal.dumps(message, 4)
        out.write(_LENGTH.pack(len(data)) + data)
        out.flush()

    try:
        names, read, _ = read_csv(path, encoding, skip)
        rows = read.rest()
        quick = quick_checker(names, default_region, time_zone)
        send((0, 0, [], []))  # an empty batch: the file is open and its header read
        while chunk := list(itertools.islice(rows, batch_rows)):
            send(_checked(chunk, default_region, time_zone, quick))
            del chunk
            # The batch's rows are freed (no cycles): what is left young is little, and
            # any cycle it made (an exception's) is collected with it.
            gc.collect(0)
        send(None)
    except Exception as exc:
        send(str(exc))


def _checked(
    chunk: list[tuple[int, dict[str, str] | RowError]],
    default_region: str,
    time_zone: str,
    quick: Callable[[int, dict[str, str]], Checked | None],
) -> tuple[int, int, list[Checked], list[tuple[int, str]]]:
    """A batch's message: rows read, the last line, the rows that passed (a row without
    an id with the columns of the new customer it alone makes, whose numbers and
    addresses are the row's: sent once) and the errors. Each row by ``quick``
    (:mod:`cti.customers.csv_quick`) if it answers, else by ``parse_customer_row``."""
    good: list[Checked] = []
    errors: list[tuple[int, str]] = []
    for line, cells in chunk:
        if isinstance(cells, RowError):
            errors.append((cells.line, cells.reason))
        elif (row := quick(line, cells)) is not None:
            good.append(row)
        elif isinstance(r := parse_customer_row(line, cells, default_region), RowError):
            errors.append((r.line, r.reason))
        else:
            good.append((r.line, r.id, tuple(r.phones), tuple(r.emails), r.fields, r.name_key,
                         None if r.id is not None else alone_columns(r, time_zone)))  # fmt: skip
    return len(chunk), chunk[-1][0], good, errors


async def checked_in_worker(
    path: Path,
    encoding: str,
    default_region: str,
    batch_rows: int,
    time_zone: str,
    skip: int = 0,
) -> AsyncGenerator[CheckedBatch, None]:
    """The rows of the customers file at ``path`` (header checked) after its first
    ``skip``, ``batch_rows`` at a time, checked in a worker process; ``time_zone`` as
    :func:`work` takes it."""
    paths = [_ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(paths)}
    args = (str(path), encoding, default_region, str(batch_rows), time_zone, str(skip))
    async with real_io():
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, *args, stdout=asyncio.subprocess.PIPE, env=env
        )
    assert worker.stdout is not None
    try:
        while True:
            try:
                async with real_io():
                    head = await worker.stdout.readexactly(_LENGTH.size)
                    data = await worker.stdout.readexactly(_LENGTH.unpack(head)[0])
            except asyncio.IncompleteReadError:
                code = await worker.wait()
                raise CsvImportError(
                    f"reading {path}: the process reading it stopped (exit code {code})"
                ) from None
            message = marshal.loads(data)
            if message is None:
                return
            if isinstance(message, str):
                raise CsvImportError(f"reading {path}: {message}")
            count, last, good, bad = message
            rows = [
                CustomerRow(line, cid, phones, emails, fields, name_key, None,
                            columns and _new(NewCustomer, (columns, phones, emails)))
                for line, cid, phones, emails, fields, name_key, columns in good
            ]  # fmt: skip
            yield count, last, rows, [RowError(*e) for e in bad]
    finally:
        if worker.returncode is None:
            worker.kill()  # stopped early: the rest is not wanted
        async with real_io():
            await worker.wait()


if __name__ == "__main__":
    # Rows are made by the thousand, without cycles: the collector runs once a batch
    # (work), never over a batch's live rows, and never over what the imports made.
    gc.disable()
    gc.freeze()
    path, encoding, region, batch, zone, skip = sys.argv[1:]
    work(Path(path), encoding, region, int(batch), zone, sys.stdout.buffer, int(skip))
