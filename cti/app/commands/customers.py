"""`cti customers`: import, export, rescore, search and show the customer base."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from cti.config import Config, load_config
from cti.customers.base import MAX_RESULTS, AuditEntry, CustomerBase
from cti.errors import ConfigError, CtiError
from cti.fields import CONTROL
from cti.models import Customer, Interaction, Order, ServiceItem, ValueExplanation
from cti.store.database import Store

if TYPE_CHECKING:
    from cti.customers.csv_files import ImportReport
    from cti.store.customers import CustomerCard

ORDER = 40

T = TypeVar("T")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    customers = sub.add_parser(
        "customers",
        help="the customer base: import, export, rescore, search, show",
        description="Import and export customers and orders as CSV (docs/customers.md),"
        " recompute value scores and segments, search and show customers.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML config file (defaults: `cti config`)")
    common.add_argument("--db", type=Path, help="SQLite file (default: [store] path, else cti.db)")
    actions = customers.add_subparsers(dest="action", required=True)

    imp = actions.add_parser(
        "import",
        parents=[common],
        help="import a customers or orders CSV file (told apart by the header)",
        description="Bad rows are reported with their line and reason; the rest are"
        " imported. Exit status 1 when any row was rejected.",
    )
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--encoding", default="utf-8-sig", help="file encoding (default UTF-8, BOM or not)"
    )
    imp.set_defaults(handler=run_import)

    exp = actions.add_parser("export", parents=[common], help="write every customer as CSV")
    exp.add_argument("file", type=Path, help="output file; - for standard output")
    exp.add_argument("--orders", action="store_true", help="write the orders instead")
    exp.add_argument(
        "--no-bom", action="store_true", help="no byte-order mark (Excel wants one for UTF-8)"
    )
    exp.set_defaults(handler=run_export)

    res = actions.add_parser(
        "rescore", parents=[common], help="recompute every value score and segment now"
    )
    res.set_defaults(handler=run_rescore)

    find = actions.add_parser(
        "search",
        parents=[common],
        help="find customers by number (any format), #id, e-mail, or part of a name",
    )
    find.add_argument("text")
    find.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    find.add_argument("--json", action="store_true", help="one JSON object per line")
    find.set_defaults(handler=run_search)

    show = actions.add_parser("show", parents=[common], help="one customer's card")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=run_show)

    audit = actions.add_parser(
        "audit", parents=[common], help="who looked at, searched or changed which customer"
    )
    audit.add_argument("--customer", type=int, help="only this customer")
    audit.add_argument("--agent", default="", help="only this agent")
    audit.add_argument("--limit", type=int, default=1000)
    audit.set_defaults(handler=run_audit)


# --- handlers --------------------------------------------------------------------------


def run_import(args: argparse.Namespace) -> int:
    from cti.customers.csv_files import (
        ImportReport,
        check_header,
        import_customers,
        import_orders,
        read_csv,
    )

    config = load_config(args.config)
    names, rows, lines = read_csv(args.file, args.encoding)
    kind = check_header(names, args.file)
    report = ImportReport(kind)
    bar = ProgressBar(f"importing {args.file.name}", lines)
    importer = import_customers if kind == "customers" else import_orders

    async def work(base: CustomerBase) -> None:
        engine = config.engine
        await importer(
            base,
            rows,
            default_region=engine.default_region,
            time_zone=engine.time_zone,
            now=time.time(),
            report=report,
            on_batch=bar.update,
        )

    _run(config, args.db, work)
    bar.done()
    _print_import(args.file, report)
    return 1 if report.errors else 0


def _print_import(path: Path, report: ImportReport) -> None:
    """What an import did: counts, merges and customers kept apart; errors on stderr."""
    if report.kind == "customers":
        print(
            f"{path}: {report.rows} rows; {report.created} new customers,"
            f" {report.updated} merged into customers already there;"
            f" {len(report.errors)} rejected; {report.rescored} rescored"
        )
        for merge in report.merges:
            how = "by id" if merge.by == "id" else f"by number {merge.by}"
            print(f"  line {merge.line}: merged into customer {merge.customer_id} {how}")
        for note in report.kept_apart:
            others = ", ".join(map(str, note.others))
            print(
                f"  line {note.line}: new customer {note.customer_id} shares a number with"
                f" customer {others} of another name (kept apart; give an id to merge)"
            )
    else:
        print(
            f"{path}: {report.rows} rows; {report.created} new orders,"
            f" {report.updated} already there; {len(report.errors)} rejected;"
            f" {report.rescored} customers rescored"
        )
    for error in sorted(report.errors, key=lambda e: e.line):
        print(f"{path}: {_safe(str(error))}", file=sys.stderr)


def run_export(args: argparse.Namespace) -> int:
    from cti.customers.csv_export import export_customers, export_orders

    config = load_config(args.config)
    encoding = "utf-8" if args.no_bom or str(args.file) == "-" else "utf-8-sig"

    async def work(base: CustomerBase) -> int:
        with _OutputFile(args.file, encoding) as out:
            if args.orders:
                return await export_orders(base, out, config.engine.time_zone)
            return await export_customers(base, out)

    count = _run(config, args.db, work)
    what = "orders" if args.orders else "customers"
    print(f"{count} {what} written to {args.file}", file=sys.stderr)
    return 0


def run_rescore(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    bar = ProgressBar("scoring", 0)

    async def work(base: CustomerBase) -> int:
        report = await base.rescore(time.time(), progress=bar.update_of)
        bar.done()
        total = max(report.customers, 1)
        print(f"{report.customers} customers scored")
        for name in config.customers.segment_names:
            n = report.segments[name]
            print(f"  {_pad(name, 12)} {n:>9}  {100 * n / total:5.1f}%")
        return 0

    return _run(config, args.db, work)


def run_search(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    if not 0 < args.limit <= MAX_RESULTS:
        raise ConfigError(f"--limit must be 1-{MAX_RESULTS}, got {args.limit}")

    async def work(base: CustomerBase) -> list[Customer]:
        # one more than shown: to tell the person that more match
        return await base.search(
            args.text, default_region=config.engine.default_region, limit=args.limit + 1
        )

    found = _run(config, args.db, work)
    if len(found) > args.limit:
        found = found[: args.limit]
        print(f"the first {args.limit} shown: more match (--limit to see more)", file=sys.stderr)
    if args.json:
        for customer in found:
            print(_safe_json(customer.model_dump_json()))
        return 0 if found else 1
    if not found:
        print(f"no customer matches {args.text!r}", file=sys.stderr)
        return 1
    rows = [
        [
            str(c.id),
            c.name,
            ", ".join(p.e164 for p in c.phones),
            c.email,
            f"{config.customers.label(c.segment)} {c.value:g}",
        ]
        for c in found
    ]
    print_table(["id", "name", "numbers", "e-mail", "value"], rows)
    return 0


def run_audit(args: argparse.Namespace) -> int:
    """The audit trail, oldest first, in the engine's time zone."""
    config = load_config(args.config)

    async def work(base: CustomerBase) -> list[AuditEntry]:
        return await base.audit_trail(
            customer_id=args.customer, agent_id=args.agent, limit=args.limit
        )

    rows = [
        [
            _when(e.at, config.engine.time_zone),
            e.agent_id,
            e.action,
            "-" if e.customer_id is None else str(e.customer_id),
            "allowed" if e.allowed else "REFUSED",
            e.detail,
        ]
        for e in _run(config, args.db, work)
    ]
    print_table(["when", "agent", "action", "customer", "", "detail"], rows)
    return 0


def run_show(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def work(base: CustomerBase) -> _Shown:
        customer = await base.get(args.id)
        if customer is None:
            raise CtiError(f"there is no customer {args.id}")
        return _Shown(
            customer,
            await base.card(args.id, history_limit=10),
            await base.explain(args.id),
            await base.orders(args.id, limit=10),
        )

    shown = _run(config, args.db, work)
    if args.json:
        print(_safe_json(json.dumps(shown.to_json(), ensure_ascii=False)))
        return 0
    zone = config.engine.time_zone
    _show_contact(shown.customer)
    _show_value(shown.customer, shown.explanation)
    _show_service_items(shown.card.service_items, zone)
    _show_orders(shown.orders, zone)
    _show_history(shown.card.history, zone)
    return 0


@dataclass(frozen=True, slots=True)
class _Shown:
    """What ``cti customers show`` shows of one customer."""

    customer: Customer
    card: CustomerCard
    explanation: ValueExplanation | None
    orders: list[Order]

    def to_json(self) -> dict[str, object]:
        return {
            "customer": self.customer.model_dump(mode="json"),
            "history": [i.model_dump(mode="json") for i in self.card.history],
            "service_items": [s.model_dump(mode="json") for s in self.card.service_items],
            "orders": [o.model_dump(mode="json") for o in self.orders],
            "value_explanation": self.explanation.model_dump(mode="json")
            if self.explanation
            else None,
        }


def _show_contact(customer: Customer) -> None:
    _say(f"#{customer.id}  {customer.name}")
    for phone in customer.phones:
        ext = f" ext. {phone.extension}" if phone.extension else ""
        _say(f"  {phone.kind.value:<7} {phone.e164}{ext}   (entered as {phone.raw})")
    for email in (customer.email, *customer.other_emails):
        if email:
            _say(f"  e-mail  {email}")
    for label, text in (
        ("company", customer.company),
        ("address", customer.address),
        ("owner", customer.owner),
    ):
        if text:
            _say(f"  {label:<7} {text}")
    _say(f"  speaks {customer.language}, time zone {customer.time_zone}")


def _show_value(customer: Customer, explanation: ValueExplanation | None) -> None:
    if explanation is None:
        _say(f"value   {customer.value:g} ({customer.segment.value}; never rescored)")
        return
    _say(f"value   {explanation.summary}")
    for factor in explanation.factors:
        _say(f"  {factor.name:<10} {factor.points:5.1f} points  ({factor.detail})")


def _show_service_items(items: Sequence[ServiceItem], zone: str) -> None:
    if items:
        _say("open service items")
    for item in items:
        due = f" due {_when(item.due_at, zone)}" if item.due_at else ""
        esc = (
            f" escalated x{item.escalation_level} to {item.escalated_to}"
            if item.escalation_level
            else ""
        )
        _say(f"  #{item.id} [{item.priority.value}] {item.title}{due}{esc}")


def _show_orders(orders: Sequence[Order], zone: str) -> None:
    if orders:
        _say("latest orders")
    for order in orders:
        _say(
            f"  {_when(order.ordered_at, zone)}  {order.amount:>12,.2f} {order.currency}"
            f"  {order.reference}"
        )


def _show_history(history: Sequence[Interaction], zone: str) -> None:
    if history:
        _say("latest contacts")
    for i in history:
        _say(f"  {_when(i.at, zone)}  {i.channel:<5} {_pad(i.disposition, 12)} {i.note}")


# --- helpers ---------------------------------------------------------------------------


def _run(config: Config, db: Path | None, work: Callable[[CustomerBase], Awaitable[T]]) -> T:
    """Open the store, run ``work`` on its customer base, close the store."""
    path = db or (Path(config.store.path) if config.store.path else _default_db_path())

    async def main() -> T:
        async with await Store.open(path) as store:
            return await work(CustomerBase(store, config.customers))

    return asyncio.run(main())


def _default_db_path() -> Path:
    from cti.app.demo import default_db_path

    return default_db_path()


class _OutputFile:
    """A text file to write, or standard output for ``-``."""

    def __init__(self, path: Path, encoding: str) -> None:
        self._path = path
        self._encoding = encoding
        self._handle: TextIO | None = None

    def __enter__(self) -> TextIO:
        if str(self._path) == "-":
            return sys.stdout
        try:
            self._handle = self._path.open("w", encoding=self._encoding, newline="")
        except OSError as exc:
            raise CtiError(f"cannot write {self._path}: {exc}") from None
        return self._handle

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()


def _safe(text: str) -> str:
    """Stored text made harmless on a terminal: control characters (ESC, CSI, OSC, BEL,
    line breaks) and bidirectional overrides shown escaped (``\\x1b``), so an old row or
    a direct database write cannot move the cursor, retitle the window or plant a link."""
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _safe_json(text: str) -> str:
    """JSON with the characters :func:`_safe` escapes written as ``\\u`` escapes (C0
    ones already are; C1 and bidi ones are not, with non-ASCII kept): the same JSON."""
    return CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _say(text: str) -> None:
    print(_safe(text))


def _when(epoch: float, zone: str) -> str:
    from zoneinfo import ZoneInfo

    try:
        return datetime.fromtimestamp(epoch, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, KeyError):
        return f"{epoch:.0f}"


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal cells (a Chinese character takes two)."""
    from rich.cells import cell_len

    return text + " " * (width - cell_len(text))


def print_table(header: list[str], rows: list[list[str]], out: TextIO | None = None) -> None:
    """Columns aligned by display width (a Chinese character takes two cells)."""
    from rich.cells import cell_len

    out = out or sys.stdout
    table = [[_safe(text) for text in row] for row in (header, *rows)]
    widths = [max(cell_len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = [_pad(text, width) for text, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip(), file=out)


class ProgressBar:
    """A one-line progress bar on standard error, drawn only when that is a terminal."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._started = time.monotonic()
        self._drawn = False

    def update(self, done: int) -> None:
        """``done`` of ``total`` (lines, customers...) so far."""
        if not self.enabled:
            return
        share = min(1.0, done / self.total) if self.total else 0.0
        filled = int(30 * share)
        rate = done / max(time.monotonic() - self._started, 1e-9)
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {100 * share:5.1f}%"
            f"  {done:,}/{self.total:,}  {rate:,.0f}/s"
        )
        self.stream.flush()
        self._drawn = True

    def update_of(self, done: int, total: int) -> None:
        self.total = total
        self.update(done)

    def done(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
