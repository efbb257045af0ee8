"""The customer base at a million customers: CSV import, lookup by number, name search.

Writes a CSV of generated customers (half Chinese names, half Latin; mobiles in every
national and international form, a third with a Beijing landline, one in 200 sharing a
family phone, e-mails, some companies), imports it through ``cti customers import``'s
code path (parse, normalise, merge, index, score), then times:

* lookup by number in a random written form (``CustomerBase.search``: normalise + index);
* name search, Chinese (1, 2 and 3+ characters: surname, given name, full name) and
  Latin (partial words, accents folded);

next to baselines in the same run: the same numbers with the phones index switched off
(``NOT INDEXED``), and the same names by ``LIKE '%...%'`` on the name column. Prints a
table and one JSON line.

Then the two figures of issue 23, each with its baseline in the same run and a JSON
line of its own: the screen-pop lookup (``Store.find_by_number``, the reader on the
event loop's thread) p99 while a writer saves customers and records contacts through
the store, beside plain sqlite3 on the same file and the store's aiosqlite connection
under the same writer; and the import's rows/s beside reading the same file with the
csv module alone (the floor). The load average is printed with them.

    .venv/bin/python benchmarks/bench_customers.py [--customers N] [--import-only]
    .venv/bin/python benchmarks/bench_customers.py --callgrind 20000 [--against REV]

``--callgrind ROWS``: the instructions per imported row of the importer and of its
worker process under callgrind (an import of ROWS rows less one of one row, both by
the large-file path), for the working tree and each ``--against`` revision's ``cti``;
one JSON line each, the same on a loaded machine (about 5 min at 20,000 rows).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from revisions import ROOT, packages_at

from cti.customers.base import CustomerBase
from cti.customers.csv_files import ImportReport, check_header, import_customers, read_csv
from cti.store.database import Store

CN_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹章汪叶苏范"
CN_DOUBLE_SURNAMES = ("欧阳", "司马", "诸葛", "上官")
CN_GIVEN = (
    "伟", "芳", "娜", "静", "婧", "敏", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰",
    "涛", "明", "超", "霞", "晨", "辰", "秀英", "桂英", "建华", "建国", "志强", "欣怡",
    "子涵", "梓轩", "雨桐", "思远", "俊杰", "海燕", "明月", "嘉怡", "浩然", "天宇",
)  # fmt: skip
LATIN_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
    "William", "Elizabeth", "David", "Sarah", "Oliver", "Amelia", "Harry", "Isla",
    "George", "Emily", "Noah", "Olivia", "José", "Zoë", "Chloé", "François", "Renée",
)  # fmt: skip
LATIN_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "García",
    "Rodríguez", "Wilson", "Taylor", "Evans", "Thomas", "Roberts", "O'Brien", "Murphy",
    "Müller", "Schröder", "Lefèvre", "Núñez", "Kowalski", "Andersson", "Walker",
)  # fmt: skip
COMPANIES = ("北京星辰科技有限公司", "上海浦江贸易有限公司", "Acme Ltd", "深圳海岸电子", "")
MOBILE_PREFIXES = ("138", "139", "137", "136", "135", "158", "159", "186", "187", "188")


def mobile(cid: int) -> str:
    return f"{MOBILE_PREFIXES[cid % 10]}{cid:08d}"


def written(rng: random.Random, national: str) -> str:
    """A Chinese number as a clerk or a line might write it."""
    digits = national.lstrip("0")
    spaced = f"{national[:3]} {national[3:7]} {national[7:]}"
    return rng.choice(
        (national, spaced, national.replace(" ", "-"), f"+86 {digits}", f"0086{digits}",
         f"+86-{digits[:3]}-{digits[3:7]}-{digits[7:]}", f"86{digits}")
    )  # fmt: skip


def name_of(rng: random.Random) -> tuple[str, bool]:
    if rng.random() < 0.5:
        surname = rng.choice(CN_DOUBLE_SURNAMES) if rng.random() < 0.03 else rng.choice(CN_SURNAMES)
        return surname + rng.choice(CN_GIVEN), True
    return f"{rng.choice(LATIN_FIRST)} {rng.choice(LATIN_LAST)}", False


def write_csv(path: Path, n: int, rng: random.Random) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["name", "mobile", "home_phone", "email", "company", "language"])
        for cid in range(1, n + 1):
            name, chinese = name_of(rng)
            home = f"0106{cid % 10**7:07d}" if cid % 3 == 0 else ""
            if cid % 200 == 0:  # a family phone: the previous customer's mobile
                home = mobile(cid - 1)
            writer.writerow(
                [
                    name,
                    written(rng, mobile(cid)),
                    written(rng, home) if home else "",
                    f"c{cid}@example.com" if cid % 10 else "",
                    rng.choice(COMPANIES) if cid % 7 == 0 else "",
                    "zh" if chinese else "en",
                ]
            )


def ms_summary(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    return {
        "n": len(ms),
        "p50_ms": round(ms[len(ms) // 2], 3),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(ms[-1], 3),
    }


async def timed(queries: list[str], search: Callable[[str], Awaitable[object]]) -> list[int]:
    samples = []
    for query in queries:
        start = time.perf_counter_ns()
        await search(query)
        samples.append(time.perf_counter_ns() - start)
    return samples


def timed_sync(queries: list[str], search: Callable[[str], object]) -> list[int]:
    samples = []
    for query in queries:
        start = time.perf_counter_ns()
        search(query)
        samples.append(time.perf_counter_ns() - start)
    return samples


@dataclass
class Searched:
    """The timed look-ups and searches, and the queries the baselines reuse."""

    lookup_ns: list[int]
    found: int
    cn_queries: list[str]
    latin_queries: list[str]
    cn_ns: list[int]
    latin_ns: list[int]
    hits: list[int]


async def import_rows(base: CustomerBase, csv_path: Path) -> tuple[ImportReport, float]:
    """Import the CSV file, with progress every 100,000 lines; the report and seconds."""
    report = ImportReport("customers")
    names, rows, lines = read_csv(csv_path)
    check_header(names, csv_path)
    start = time.perf_counter()

    def progress(line: int) -> None:
        if line // 100_000 != (line - 2000) // 100_000 or line == lines:
            print(f"  imported to line {line:>9,} ({time.perf_counter() - start:.0f} s)",
                  flush=True)  # fmt: skip

    await import_customers(
        base, rows, default_region="CN", time_zone="Asia/Shanghai",
        now=time.time(), report=report, on_batch=progress,
    )  # fmt: skip
    return report, time.perf_counter() - start


async def search(
    base: CustomerBase, rng: random.Random, n: int, lookups: int, searches: int
) -> Searched:
    """Time look-ups by number in any form and name searches, Chinese and Latin."""
    numbers = [written(rng, mobile(rng.randint(1, n))) for _ in range(lookups)]
    await base.search(numbers[0])  # warm the cache
    lookup_ns = await timed(numbers, lambda q: base.search(q, limit=5))
    found = sum([bool(await base.search(q, limit=1)) for q in numbers[:200]])

    cn_queries = (
        [rng.choice(CN_SURNAMES) for _ in range(searches // 4)]
        + [rng.choice([g for g in CN_GIVEN if len(g) == 2]) for _ in range(searches // 4)]
        + [rng.choice(CN_SURNAMES) + rng.choice(CN_GIVEN) for _ in range(searches // 4)]
    )
    latin_forms = (
        lambda: rng.choice(LATIN_LAST)[:4].lower(),
        lambda: rng.choice(LATIN_FIRST).lower(),
        lambda: "nunez",
        lambda: f"{rng.choice(LATIN_FIRST)} {rng.choice(LATIN_LAST)[:3]}",
    )
    latin_queries = [rng.choice(latin_forms)() for _ in range(searches // 4)]
    cn_ns = await timed(cn_queries, lambda q: base.search(q))
    latin_ns = await timed(latin_queries, lambda q: base.search(q))
    hits = [len(await base.search(q)) for q in ("王", "雨桐", "欧阳明月", "smi", "nunez")]
    return Searched(lookup_ns, found, cn_queries, latin_queries, cn_ns, latin_ns, hits)


def baselines(
    db_path: Path, rng: random.Random, n: int, baseline: int, searched: Searched
) -> tuple[dict[str, dict[str, float]], float]:
    """The same look-ups on plain sqlite3 without the phones index and as LIKE scans;
    and the database's size in MB."""
    db = sqlite3.connect(db_path)
    try:
        scan_numbers = [f"+86{mobile(rng.randint(1, n))}" for _ in range(baseline)]
        number_scan_ns = timed_sync(
            scan_numbers,
            lambda q: db.execute(
                "SELECT customer_id FROM customer_phones NOT INDEXED WHERE e164 = ?", (q,)
            ).fetchall(),
        )
        like = "SELECT id FROM customers WHERE name LIKE ? LIMIT 20"
        cn_queries = searched.cn_queries
        like_cn_ns = timed_sync(
            cn_queries[:: max(1, len(cn_queries) // baseline)][:baseline],
            lambda q: db.execute(like, (f"%{q}%",)).fetchall(),
        )
        like_latin_ns = timed_sync(
            searched.latin_queries[: baseline // 2],
            lambda q: db.execute(like, (f"%{q}%",)).fetchall(),
        )
        size_mb = db_path.stat().st_size / 1e6
    finally:
        db.close()
    return {
        "baseline_number_scan": ms_summary(number_scan_ns),
        "baseline_like_chinese": ms_summary(like_cn_ns),
        "baseline_like_latin": ms_summary(like_latin_ns),
    }, size_mb


async def import_only(n: int, seed: int) -> None:
    """The import's figure alone (``--import-only``): rows/s, the CPU of this process and
    of its worker, beside the csv module reading the same file; one JSON line."""
    with tempfile.TemporaryDirectory(prefix="cti-bench-customers-") as folder:
        csv_path = Path(folder) / "customers.csv"
        write_csv(csv_path, n, random.Random(seed))
        async with await Store.open(Path(folder) / "cti.db") as store:
            cpu = os.times()
            report, import_s = await import_rows(CustomerBase(store), csv_path)
            used = [b - a for a, b in zip(cpu, os.times(), strict=True)]
            load = os.getloadavg()[0]
        floor = csv_floor(csv_path)
    rows_per_s = report.rows / import_s
    print(f"import: {rows_per_s:,.0f} rows/s ({report.rows:,} rows, {len(report.errors)} rejected,"
          f" load {load:.1f}); baseline: csv module reading alone {floor:,.0f} rows/s")  # fmt: skip
    print(json.dumps({
        "bench": "customer_import", "rows": report.rows, "rows_per_s": round(rows_per_s),
        "baseline_csv_read_rows_per_s": round(floor), "load_1min_after_import": round(load, 1),
        "cpu_us_per_row_importer": round((used[0] + used[1]) / report.rows * 1e6, 1),
        "cpu_us_per_row_worker": round((used[2] + used[3]) / report.rows * 1e6, 1),
        "cpus": os.cpu_count(),
    }))  # fmt: skip


async def count_import(csv_path: Path) -> None:
    """Import ``csv_path`` into a new store by the large-file path whatever its size (a
    worker process, the indexes and triggers deferred): what ``--callgrind`` counts."""
    import cti.customers.csv_files as files
    import cti.store.customers_bulk as bulk

    files.PARALLEL_MIN_ROWS = bulk.DEFER_MIN_ROWS = 1
    with tempfile.TemporaryDirectory(prefix="cti-bench-customers-") as folder:
        async with await Store.open(Path(folder) / "cti.db") as store:
            await import_rows(CustomerBase(store), csv_path)


def counted(csv_path: Path, tree: Path, folder: Path) -> tuple[int, int]:
    """The instructions of the importing process and of its worker importing
    ``csv_path`` with the ``cti`` package under ``tree`` (callgrind)."""
    folder.mkdir()
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--trace-children=yes", "--dump-before=marshal_dumps*",
         f"--callgrind-out-file={folder}/cg.%p", sys.executable, __file__,
         "--count-import", str(csv_path)],
        env=os.environ | {"PYTHONPATH": str(tree)}, cwd=tree, check=True, capture_output=True,
    )  # fmt: skip
    importer = worker = 0
    for out in folder.glob("cg.*"):  # the worker's in parts, dumped as it sends each batch
        text = out.read_text(errors="replace")
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
        command = re.search(r"^cmd: (.*)$", text, re.MULTILINE)
        if total is None or command is None:  # the worker's last part: killed at its end
            continue
        if "csv_worker" in command[1]:
            worker += int(total[1])
        else:
            importer += int(total[1])
    return importer, worker


def callgrind(rows: int, against: list[str], seed: int) -> None:
    """Instructions per imported row, of the importer and of its worker, for the
    working tree and each revision of ``against``: callgrind's counts of an import of
    ``rows`` rows less those of one row, so the start-up cancels (no load dependence)."""
    with tempfile.TemporaryDirectory(prefix="cti-bench-customers-cg-") as name:
        folder = Path(name)
        write_csv(folder / "rows.csv", rows, random.Random(seed))
        write_csv(folder / "one.csv", 1, random.Random(seed))
        trees = {
            rev: packages_at(rev, ("cti",), folder / f"tree{i}") for i, rev in enumerate(against)
        }
        trees["working tree"] = ROOT
        jobs = [(label, csv) for label in trees for csv in ("rows.csv", "one.csv")]

        def count(job: tuple[str, str]) -> tuple[int, int]:
            return counted(folder / job[1], trees[job[0]], folder / f"cg-{jobs.index(job)}")

        with ThreadPoolExecutor(len(jobs)) as pool:
            counts = dict(zip(jobs, pool.map(count, jobs), strict=True))
    for label in trees:
        importer, worker = counts[label, "rows.csv"]
        importer_1, worker_1 = counts[label, "one.csv"]
        print(json.dumps({
            "bench": "customer_import_instructions", "tree": label, "rows": rows,
            "importer_per_row": round((importer - importer_1) / (rows - 1)),
            "worker_per_row": round((worker - worker_1) / (rows - 1)),
            # Since 18cc022 the importer checks the first batch (10,000 rows) itself:
            # at 20,000 rows compare the two together with older revisions.
            "together_per_row": round((importer + worker - importer_1 - worker_1) / (rows - 1)),
        }))  # fmt: skip


async def run(n: int, lookups: int, searches: int, baseline: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="cti-bench-customers-") as folder:
        csv_path = Path(folder) / "customers.csv"
        db_path = Path(folder) / "cti.db"
        start = time.perf_counter()
        write_csv(csv_path, n, rng)
        print(f"wrote {n:,} rows in {time.perf_counter() - start:.1f} s", flush=True)

        async with await Store.open(db_path) as store:
            base = CustomerBase(store)
            report, import_s = await import_rows(base, csv_path)
            import_load = os.getloadavg()[0]  # the import's worker process and this one
            count = await store.customer_count()
            print(
                f"imported {report.rows:,} rows in {import_s:.1f} s: {report.created:,} customers,"
                f" {report.updated:,} merged, {len(report.errors):,} rejected", flush=True,
            )  # fmt: skip
            for error in report.errors[:5]:
                print(f"  {error}")
            searched = await search(base, rng, n, lookups, searches)
            await issue_23(base, csv_path, n, report.rows / import_s, import_load, seed)
        scans, size_mb = baselines(db_path, rng, n, baseline, searched)

    lookup = ms_summary(searched.lookup_ns)
    cn, latin = ms_summary(searched.cn_ns), ms_summary(searched.latin_ns)
    names_all = ms_summary(searched.cn_ns + searched.latin_ns)
    result: dict[str, object] = {
        "customers": count,
        "rows": report.rows,
        "rejected": len(report.errors),
        "import_s": round(import_s, 1),
        "import_rows_per_s": round(report.rows / import_s),
        "db_mb": round(size_mb),
        "lookup_p50_ms": lookup["p50_ms"],
        "lookup_p99_ms": lookup["p99_ms"],
        "lookup_found_of_200": searched.found,
        "name_search_p50_ms": names_all["p50_ms"],
        "name_search_p99_ms": names_all["p99_ms"],
        "name_search_chinese": cn,
        "name_search_latin": latin,
        "hits_wang_yutong_ouyangmingyue_smi_nunez": searched.hits,
        **scans,
    }
    print()
    print(f"{'measure':<36} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for label, s in (
        ("lookup by number (any format)", lookup),
        ("name search, Chinese 1/2/3+ chars", cn),
        ("name search, Latin partial", latin),
        ("baseline: number, phones not indexed", scans["baseline_number_scan"]),
        ("baseline: LIKE '%..%', Chinese", scans["baseline_like_chinese"]),
        ("baseline: LIKE '%..%', Latin", scans["baseline_like_latin"]),
    ):
        print(
            f"{label:<36} {s['n']:>6} {s['p50_ms']:>9.3f} {s['p99_ms']:>9.3f} {s['max_ms']:>9.3f}"
        )
    print(json.dumps(result, ensure_ascii=False))
    return result


async def writer(base: CustomerBase, n: int, stop: asyncio.Event, rng: random.Random) -> int:
    """Contacts recorded and customers edited through the store until ``stop``; how many."""
    from cti.models import Interaction

    done = 0
    while not stop.is_set():
        cid = rng.randint(1, n)
        if done % 5 == 0:
            [current] = await base.get_many([cid])
            await base.save_customers([current.model_copy(update={"address": f"edit {done}"})])
        else:
            await base.add_interaction(cid, Interaction(at=time.time(), note="bench"))
        done += 1
        await asyncio.sleep(0.002)
    return done


async def lookups_under_writes(
    base: CustomerBase, numbers: list[str], rng: random.Random, n: int
) -> tuple[list[int], list[int], list[int], float]:
    """find_by_number p99 on the reader, on plain sqlite3 and on aiosqlite, each while
    the writer runs; and the writes per second."""
    from cti.store.customers_read import FIND_BY_NUMBER_SQL

    store = base.store
    stop = asyncio.Event()
    task = asyncio.ensure_future(writer(base, n, stop, rng))
    start = time.perf_counter()
    reader_ns = await timed(numbers, store.find_by_number)
    plain = sqlite3.connect(store.path)
    sqlite_ns = []
    for query in numbers:
        begin = time.perf_counter_ns()
        plain.execute(FIND_BY_NUMBER_SQL, (query,)).fetchall()
        sqlite_ns.append(time.perf_counter_ns() - begin)
        await asyncio.sleep(0)  # the writer goes on
    plain.close()
    reader, store.reader = store.reader, None
    aiosqlite_ns = await timed(numbers, store.find_by_number)
    store.reader = reader
    stop.set()
    writes = await task
    return reader_ns, sqlite_ns, aiosqlite_ns, writes / (time.perf_counter() - start)


def csv_floor(csv_path: Path) -> float:
    """Rows per second of reading the file with the csv module alone."""
    start = time.perf_counter()
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    return rows / (time.perf_counter() - start)


async def issue_23(
    base: CustomerBase, csv_path: Path, n: int, rows_per_s: float, import_load: float, seed: int
) -> None:
    """The lookup under writes and the import, each beside its baseline (docstring)."""
    rng = random.Random(seed + 23)
    numbers = [f"+86{mobile(rng.randint(1, n))}" for _ in range(3000)]
    numbers += [rng.choice(numbers[:300]) for _ in range(1000)]  # repeat callers
    rng.shuffle(numbers)
    reader_ns, sqlite_ns, aiosqlite_ns, writes_per_s = await lookups_under_writes(
        base, numbers, rng, n
    )
    load = os.getloadavg()
    lookup = {
        "bench": "customer_lookup_under_writes", "customers": n,
        "writes_per_s": round(writes_per_s), "load_1min": round(load[0], 1),
        "reader": ms_summary(reader_ns), "baseline_plain_sqlite3": ms_summary(sqlite_ns),
        "before_aiosqlite": ms_summary(aiosqlite_ns),
        "cache_hits": base.store.reader.hits if base.store.reader else 0,
    }  # fmt: skip
    floor = csv_floor(csv_path)
    imported = {
        "bench": "customer_import", "rows": n, "rows_per_s": round(rows_per_s),
        "baseline_csv_read_rows_per_s": round(floor), "load_1min": round(load[0], 1),
        "load_1min_after_import": round(import_load, 1), "cpus": os.cpu_count(),
    }  # fmt: skip
    print()
    print(f"lookup by number under writes ({writes_per_s:,.0f} writes/s, load {load[0]:.1f}):")
    for label, key in (("reader (on the loop, cached)", "reader"),
                       ("baseline: plain sqlite3, same file", "baseline_plain_sqlite3"),
                       ("before: the store's aiosqlite", "before_aiosqlite")):  # fmt: skip
        figures = lookup[key]
        assert isinstance(figures, dict)
        print(f"  {label:<36} p50 {figures['p50_ms']:.3f} ms  p99 {figures['p99_ms']:.3f} ms")
    print(
        f"import: {rows_per_s:,.0f} rows/s; baseline: csv module reading alone {floor:,.0f} rows/s"
    )
    print(json.dumps(lookup))
    print(json.dumps(imported))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--searches", type=int, default=4000, help="name searches in all")
    parser.add_argument("--baseline", type=int, default=100, help="baseline queries of each kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--import-only", action="store_true", help="the import's figure alone")
    parser.add_argument(
        "--callgrind", type=int, metavar="ROWS", help="instructions per imported row (valgrind)"
    )
    parser.add_argument("--against", action="append", default=[], help="a git revision too")
    parser.add_argument("--count-import", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_import:
        asyncio.run(count_import(args.count_import))
        return
    if args.callgrind:
        callgrind(args.callgrind, args.against, args.seed)
        return
    if args.import_only:
        asyncio.run(import_only(args.customers, args.seed))
        return
    asyncio.run(run(args.customers, args.lookups, args.searches, args.baseline, args.seed))


if __name__ == "__main__":
    main()
