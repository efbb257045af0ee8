"""Customer lookup by number at scale: Store.find_by_number on a million customers.

Builds a store of synthetic customers in a temporary folder, then times lookups of
existing and missing numbers, next to baselines measured in the same run: the same
query through plain sqlite3 (no event loop or thread hop), the same query against an
un-indexed copy of the phones table, and a Python dict (the floor).

    .venv/bin/python benchmarks/bench_customer_lookup.py [--customers N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from cti.models import Customer, PhoneNumber, PhoneType, Segment
from cti.store.customers_read import FIND_BY_NUMBER_SQL
from cti.store.database import Store

CHUNK = 100_000


def numbers_of(customer_id: int) -> list[str]:
    """The synthetic customer's numbers: a mobile, every third a second one, every 200th
    also the previous customer's mobile (a shared family phone)."""
    numbers = [f"+8613{customer_id:09d}"]
    if customer_id % 3 == 0:
        numbers.append(f"+8618{customer_id:09d}")
    if customer_id % 200 == 0:
        numbers.append(f"+8613{customer_id - 1:09d}")
    return numbers


def synthetic_customers(first: int, last: int, rng: random.Random) -> Iterator[Customer]:
    for cid in range(first, last + 1):
        value = round(100.0 * rng.betavariate(1.0, 1.8), 1)
        yield Customer(
            id=cid,
            name=f"Customer {cid}",
            phones=tuple(
                PhoneNumber(raw=e164, e164=e164, kind=PhoneType.MOBILE) for e164 in numbers_of(cid)
            ),
            value=value,
            segment=Segment.for_value(value),
            language="en",
            time_zone="Asia/Shanghai",
            email=f"customer{cid}@example.com",
        )


def summary(label: str, samples_ns: list[int]) -> str:
    micros = sorted(ns / 1000 for ns in samples_ns)
    p50 = micros[len(micros) // 2]
    p99 = micros[min(len(micros) - 1, int(len(micros) * 0.99))]
    return (
        f"{label:<44} {len(micros):>6}  p50 {p50:>9.1f}  p99 {p99:>9.1f}"
        f"  mean {statistics.fmean(micros):>9.1f}  max {micros[-1]:>9.1f}  µs"
    )


async def timed_async(
    lookup: Callable[[str], Awaitable[list[Customer]]], numbers: list[str], expect_found: bool
) -> list[int]:
    samples = []
    for e164 in numbers:
        start = time.perf_counter_ns()
        found = await lookup(e164)
        samples.append(time.perf_counter_ns() - start)
        if bool(found) != expect_found or any(
            e164 not in {p.e164 for p in c.phones} for c in found
        ):
            raise SystemExit(f"wrong answer for {e164}: {found}")
    return samples


def timed_sync(lookup: Callable[[str], object], numbers: list[str]) -> list[int]:
    samples = []
    for e164 in numbers:
        start = time.perf_counter_ns()
        lookup(e164)
        samples.append(time.perf_counter_ns() - start)
    return samples


async def run(customers: int, lookups: int, missing: int, scan_lookups: int, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="cti-bench-") as folder:
        path = Path(folder) / "cti.db"
        store = await Store.open(path)
        try:
            build_s = load_s = 0.0
            for first in range(1, customers + 1, CHUNK):
                last = min(first + CHUNK - 1, customers)
                start = time.perf_counter()
                gc.disable()  # the synthetic build only; add_customers runs with gc on
                chunk = list(synthetic_customers(first, last, rng))
                gc.enable()
                built = time.perf_counter()
                await store.add_customers(chunk)
                build_s += built - start
                load_s += time.perf_counter() - built
                print(
                    f"  loaded {last:>9,} customers ({load_s:.1f} s in add_customers)", flush=True
                )
            print(
                f"built {customers:,} Customer models in {build_s:.1f} s;"
                f" add_customers took {load_s:.1f} s ({customers / load_s:,.0f} customers/s)"
            )

            existing = [rng.choice(numbers_of(rng.randint(1, customers))) for _ in range(lookups)]
            absent = [f"+8615{rng.randrange(10**9):09d}" for _ in range(missing)]
            await store.find_by_number(existing[0])  # warm the page cache
            found_ns = await timed_async(store.find_by_number, existing, expect_found=True)
            absent_ns = await timed_async(store.find_by_number, absent, expect_found=False)
        finally:
            await store.close()

        db = sqlite3.connect(path)
        try:
            plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + FIND_BY_NUMBER_SQL, ("",))]
            sync_ns = timed_sync(
                lambda n: db.execute(FIND_BY_NUMBER_SQL, (n,)).fetchall(), existing
            )
            start = time.perf_counter()
            db.execute("CREATE TABLE phones_unindexed AS SELECT * FROM customer_phones")
            copy_s = time.perf_counter() - start
            scan_sql = FIND_BY_NUMBER_SQL.replace(
                "FROM customer_phones WHERE", "FROM phones_unindexed WHERE"
            )
            scan_ns = timed_sync(
                lambda n: db.execute(scan_sql, (n,)).fetchall(), existing[:scan_lookups]
            )
            phones = db.execute("SELECT count(*) FROM customer_phones").fetchone()[0]
        finally:
            db.close()

    floor: dict[str, list[int]] = {}
    for cid in range(1, customers + 1):
        for e164 in numbers_of(cid):
            floor.setdefault(e164, []).append(cid)
    dict_ns = timed_sync(floor.get, existing)

    print(f"\n{customers:,} customers, {phones:,} phone rows; query plan: {' / '.join(plan)}")
    print(f"(un-indexed copy of the phones table made in {copy_s:.1f} s)\n")
    print(summary("Store.find_by_number, existing number", found_ns))
    print(summary("Store.find_by_number, missing number", absent_ns))
    print("baselines, same run:")
    print(summary("  same query, plain sqlite3 (no thread hop)", sync_ns))
    print(summary("  same query, un-indexed phones table", scan_ns))
    print(summary("  dict[e164] -> ids (the floor)", dict_ns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--missing", type=int, default=1_000)
    parser.add_argument("--scan-lookups", type=int, default=100, help="un-indexed lookups")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.customers, args.lookups, args.missing, args.scan_lookups, args.seed))


if __name__ == "__main__":
    main()
