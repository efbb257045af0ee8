"""A customers file read and checked in a process of its own, a batch ahead of the
import that writes it (:func:`cti.customers.csv_files.import_customers`, for large
files). The process runs this module (``python -m``: nothing of the importer's
program is run again in it); the batches come back on its standard output as plain
tuples (``marshal``, no model per row, each behind its length), the errors with their
lines. It is stopped with the import, however that ends.

    python -m cti.customers.csv_worker PATH ENCODING REGION BATCH_ROWS
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import marshal
import os
import struct
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, BinaryIO

import cti
from cti.clock import real_io
from cti.customers.csv_files import CheckedBatch, CsvImportError, check_rows, read_csv
from cti.customers.merge import CustomerRow, RowError

_LENGTH = struct.Struct("<Q")
#: Where the ``cti`` package is, for the worker's imports.
_ROOT = str(Path(cti.__file__).resolve().parent.parent)


def work(path: Path, encoding: str, default_region: str, batch_rows: int, out: BinaryIO) -> None:
    """Each batch of the file checked and written to ``out``; then None, or the error
    that stopped the reading as text."""

    def send(message: Any) -> None:
        data = marshal.dumps(message, 2)  # no sharing of objects: quicker to write
        out.write(_LENGTH.pack(len(data)) + data)
        out.flush()

    try:
        _, rows, _ = read_csv(path, encoding)
        while chunk := list(itertools.islice(rows, batch_rows)):
            batch: list[CustomerRow] = []
            errors: list[RowError] = []
            check_rows(chunk, default_region, batch, errors)
            good = [(r.line, r.id, r.phones, r.emails, r.fields, r.name_key, r.keys) for r in batch]
            send((len(chunk), chunk[-1][0], good, [(e.line, e.reason) for e in errors]))
        send(None)
    except Exception as exc:
        send(str(exc))


async def checked_in_worker(
    path: Path, encoding: str, default_region: str, batch_rows: int
) -> AsyncGenerator[CheckedBatch, None]:
    """The rows of the customers file at ``path`` (header checked), ``batch_rows`` at a
    time, checked in a worker process."""
    paths = [_ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(paths)}
    args = (str(path), encoding, default_region, str(batch_rows))
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
            yield count, last, [CustomerRow(*row) for row in good], [RowError(*e) for e in bad]
    finally:
        if worker.returncode is None:
            worker.kill()  # stopped early: the rest is not wanted
        async with real_io():
            await worker.wait()


if __name__ == "__main__":
    gc.freeze()  # what the imports made: out of every collection's scan
    gc.set_threshold(100_000)  # rows are made by the thousand, without cycles
    work(Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.stdout.buffer)
