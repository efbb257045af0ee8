"""`cti campaign`: outbound campaigns: import lead lists, start, pause, status, report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cti.bus.memory import Bus
    from cti.config import Config
    from cti.store.campaigns import CampaignStore

ORDER = 35


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    camp = sub.add_parser(
        "campaign",
        help="outbound campaigns: import leads, start, pause, status, compliance report",
        description="Outbound campaigns (docs/dialer.md): lead lists imported from CSV, "
        "preview, progressive, power or predictive dialing within the rules, and the "
        "compliance report.",
    )
    camp.add_argument("--config", type=Path, help="TOML config file (defaults: `cti config`)")
    camp.add_argument("--db", type=Path, help="SQLite file (default: cti.db in your data dir)")
    cmds = camp.add_subparsers(dest="campaign_command", required=True)
    _register_import(cmds)

    dnc = cmds.add_parser("dnc", help="add numbers (one a line, or a CSV) to a do-not-call list")
    dnc.add_argument("file", type=Path)
    dnc.add_argument("--campaign", help="the campaign's own list (default: the global list)")
    dnc.add_argument("--region", help="region of national numbers (default: the engine's)")

    lst = cmds.add_parser("list", help="pause, resume or recycle one lead list")
    lst.add_argument("name", help="the campaign")
    lst.add_argument("list_name", help="the list")
    lst.add_argument("action", choices=["pause", "resume", "recycle"])

    _register_start(cmds)
    for verb, text in (("pause", "stop placing new dials"), ("stop", "stop the campaign")):
        p = cmds.add_parser(verb, help=text)
        p.add_argument("name")

    status = cmds.add_parser("status", help="leads by state, attempts by outcome, lists")
    status.add_argument("name")
    status.add_argument("--json", action="store_true", help="one JSON object")

    report = cmds.add_parser(
        "report",
        help="compliance report: abandon rate per day and over 30 days, calls outside "
        "hours, do-not-call dials",
    )
    report.add_argument("name")
    report.add_argument("--json", action="store_true")
    camp.set_defaults(handler=run)


def _register_import(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imp = cmds.add_parser(
        "import",
        help="import a CSV lead list (creates the campaign if new)",
        description="Columns: number (required), name, time_zone (IANA, e.g. "
        "America/Chicago) or region (ISO country code), any others as custom fields. "
        "Every bad row is reported with its line and reason; the rest are imported.",
    )
    imp.add_argument("name", help="the campaign")
    imp.add_argument("file", type=Path, help="the CSV file (UTF-8)")
    imp.add_argument("--list", dest="list_name", help="the list's name (default: file name)")
    imp.add_argument(
        "--mode", choices=["preview", "progressive", "power", "predictive"], default="predictive"
    )
    imp.add_argument(
        "--queue",
        help="router queue of its answered calls, one of the configured queues (default: "
        "'outbound' if configured, else the first)",
    )
    imp.add_argument("--script", default="", help="the call script the agents run")
    imp.add_argument(
        "--line", default="", help="the line it dials on under `cti serve` (default: the first "
        "line that can dial)",
    )  # fmt: skip
    imp.add_argument("--region", help="region of national numbers (default: the engine's)")
    imp.add_argument("--json", action="store_true")


def _register_start(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    start = cmds.add_parser(
        "start",
        help="mark the campaign running; --simulate runs it on the simulator",
        description="Marks the campaign running: the engine (`cti serve`) starts dialling "
        "it within a few seconds; pause and stop likewise. With "
        "--simulate, runs it here on virtual time against the simulator trunk (a far end "
        "with the given contact, machine and busy rates) and bot agents, then prints its "
        "status; the attempts are stored like real ones.",
    )
    start.add_argument("name")
    start.add_argument("--simulate", action="store_true")
    start.add_argument("--seconds", type=float, default=3600.0, help="simulated seconds")
    start.add_argument("--agents", type=int, default=10, help="simulated bot agents")
    start.add_argument("--contact-rate", type=float, default=0.2)
    start.add_argument("--machine-rate", type=float, default=0.1)
    start.add_argument("--busy-rate", type=float, default=0.1)
    start.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    from cti.app.demo import default_db_path
    from cti.config import load_config

    config = load_config(args.config)
    db_path = args.db or (Path(config.store.path) if config.store.path else default_db_path())
    if args.campaign_command == "start" and args.simulate:
        return _simulate(args, config, db_path)
    return asyncio.run(_run(args, config, db_path))


@dataclass(frozen=True, slots=True)
class _Call:
    """What a campaign command works with."""

    args: argparse.Namespace
    campaigns: CampaignStore
    region: str
    now: float
    queues: tuple[str, ...]
    """The configured queues."""


async def _run(args: argparse.Namespace, config: Config, db_path: Path) -> int:
    from cti.clock import wall_time
    from cti.errors import StoreError
    from cti.store.campaigns import CampaignStore
    from cti.store.database import Store

    handler = _COMMANDS.get(args.campaign_command)
    if handler is None:
        raise StoreError(f"unknown campaign command {args.campaign_command!r}")
    region = getattr(args, "region", None) or config.engine.default_region
    async with await Store.open(db_path) as store:
        queues = tuple(q.name for q in config.queues)
        return await handler(_Call(args, CampaignStore(store), region, wall_time(), queues))


async def _import(c: _Call) -> int:
    from cti.store.campaigns import CampaignSettings
    from cti.store.leads import parse_leads

    args, cs = c.args, c.campaigns
    new = args.name not in await cs.campaign_names()
    queue = _queue_of(args.queue, c.queues) if new else ""
    lead_file = parse_leads(_read(args.file), c.region)
    if new:
        settings = CampaignSettings(
            name=args.name, mode=args.mode, queue=queue, script=args.script, line=args.line
        )
        await cs.create_campaign(settings, c.now)
    list_name = args.list_name or args.file.stem
    report = await cs.import_leads(args.name, list_name, lead_file, c.now)
    for error in report.errors:
        print(f"{args.file}:{error.line}: {error.reason}", file=sys.stderr)
    if args.json:
        summary = {
            "campaign": args.name,
            "list": list_name,
            "imported": report.imported,
            "matched_customers": report.matched_customers,
            "bad_rows": len(report.errors),
        }
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(
            f"{report.imported} leads imported into {args.name!r} "
            f"({report.matched_customers} known customers), "
            f"{len(report.errors)} bad rows left out"
        )
    return 1 if report.errors and not report.imported else 0


def _queue_of(asked: str | None, queues: tuple[str, ...]) -> str:
    """The queue a new campaign's answered calls go to: ``asked`` if it is configured."""
    from cti.errors import ConfigError

    queue = asked or ("outbound" if "outbound" in queues or not queues else queues[0])
    if queue not in queues:
        raise ConfigError(
            f"--queue: no queue named {queue!r} (the queues: {', '.join(queues) or 'none'})"
        )
    return queue


async def _dnc(c: _Call) -> int:
    from cti.phone import PhoneError, parse_phone

    args = c.args
    numbers, bad = [], 0
    for line_no, raw in enumerate(_read(args.file).splitlines(), start=1):
        cell = raw.split(",")[0].strip()
        if not cell or cell.casefold() in ("number", "phone"):
            continue
        try:
            numbers.append(parse_phone(cell, c.region).e164)
        except PhoneError as exc:
            bad += 1
            print(f"{args.file}:{line_no}: {cell!r} is not a phone number: {exc}", file=sys.stderr)
    added = await c.campaigns.add_do_not_call(numbers, c.now, campaign=args.campaign)
    scope = f"campaign {args.campaign!r}" if args.campaign else "the global list"
    print(f"{added} numbers added to {scope} ({bad} bad lines left out)")
    return 0


async def _list(c: _Call) -> int:
    args = c.args
    if args.action == "recycle":
        n = await c.campaigns.recycle_list(args.name, args.list_name, c.now)
        print(f"{n} exhausted leads of {args.list_name!r} get new attempts")
    else:
        state = "paused" if args.action == "pause" else "active"
        await c.campaigns.set_list_state(args.name, args.list_name, state)
        print(f"list {args.list_name!r} of {args.name!r} is {state}")
    return 0


async def _set_state(c: _Call) -> int:
    state = {"start": "running", "pause": "paused", "stop": "stopped"}[c.args.campaign_command]
    await c.campaigns.set_campaign_state(c.args.name, state)
    print(f"campaign {c.args.name!r} is {state}")
    return 0


async def _status(c: _Call) -> int:
    status = await c.campaigns.status(c.args.name)
    if c.args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
    else:
        _print_status(status)
    return 0


def _print_status(s: dict[str, Any]) -> None:
    from cti.app.commands.customers import print_table

    script = s["script"] or "none"
    print(
        f"campaign {s['campaign']!r}: {s['state']}, {s['mode']}, queue {s['queue']}, "
        f"script {script}"
    )
    for title, counts, what in (
        ("leads", s["leads"], "state"),
        ("attempts", s["attempts"], "outcome"),
    ):
        print(f"\n{title} ({sum(counts.values())})")
        rows = [[f"  {k}", str(n)] for k, n in sorted(counts.items())]
        print_table([f"  {what}", "count"], rows)
    print(f"\nlists ({len(s['lists'])})")
    rows = [[f"  {x['name']}", x["state"], str(x["leads"]), str(x["recycled"])] for x in s["lists"]]
    print_table(["  list", "state", "leads", "recycled"], rows)


async def _report(c: _Call) -> int:
    data = (await c.campaigns.compliance(c.args.name, c.now)).to_dict()
    if c.args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        _print_report(data)
    return 0 if data["within_rules"] else 1


_COMMANDS: dict[str, Callable[[_Call], Awaitable[int]]] = {
    "import": _import,
    "dnc": _dnc,
    "list": _list,
    "start": _set_state,
    "pause": _set_state,
    "stop": _set_state,
    "status": _status,
    "report": _report,
}


def _simulate(args: argparse.Namespace, config: Config, db_path: Path) -> int:
    from cti.clock import run_virtual

    status = run_virtual(lambda: _simulated_run(args, config, db_path))
    print(json.dumps(status, ensure_ascii=False))
    return 0


async def _simulated_run(args: argparse.Namespace, config: Config, db_path: Path) -> dict[str, Any]:
    """The campaign run here on virtual time: the simulator trunk with a far end of the
    given rates, bot agents, ``args.seconds`` of dialling, then its status and report."""
    import random

    from cti.bus.memory import InMemoryBus
    from cti.clock import wall_time
    from cti.engine.dialer import CampaignRunner, DialingLine
    from cti.engine.running import running_engine
    from cti.models import AgentConfig, QueueConfig
    from cti.store.campaigns import CampaignStore
    from cti.store.database import Store
    from simulators.dialer_sim import FarEnd
    from telephony_adapters.sim import SimTrunk

    async with await Store.open(db_path) as store:
        cs = CampaignStore(store)
        await cs.set_campaign_state(args.name, "running")
        record, core = await cs.load(args.name, wall_time())
        settings = record.settings
        queues = list(config.queues)
        if settings.queue not in {q.name for q in queues}:
            queues.append(QueueConfig(name=settings.queue))
        config = config.model_copy(update={"queues": queues, "agents": []})
        ids = [f"bot{i}" for i in range(1, args.agents + 1)]
        far = FarEnd(args.contact_rate, args.machine_rate, args.busy_rate, random.Random(args.seed))
        line = DialingLine(SimTrunk("sim"), place=far.place)
        bus = InMemoryBus()
        agents = [AgentConfig(id=a, queues={settings.queue: 0.0}) for a in ids]
        async with running_engine(
            config, bus, directory=store, lines=[line], agents=agents, web=False
        ) as service:
            runner = CampaignRunner(
                service, settings, core, line, store=cs, campaign_id=record.campaign_id
            )
            async with _bots_at_work(bus, ids):
                dialer = asyncio.create_task(runner.run(), name="dialer")
                await asyncio.sleep(args.seconds)
                dialer.cancel()
                await asyncio.gather(dialer, return_exceptions=True)
                await asyncio.sleep(600)  # virtual time: the calls under way finish
                await service.flush()
                status = {
                    **runner.status(),
                    "report": (await cs.compliance(args.name, wall_time())).to_dict(),
                }
        await cs.set_campaign_state(args.name, "stopped")
        return status


@contextlib.asynccontextmanager
async def _bots_at_work(bus: Bus, ids: list[str]) -> AsyncIterator[None]:
    """Bot agents ``ids`` working the campaign's calls for the body of the ``with``."""
    import random

    from simulators.bots import BotAgent, BotBehaviour

    behaviour = BotBehaviour(answer_delay_s=0.2, mean_handle_s=120.0, wrap_up_s=5.0,
                             dispositions=("sale", "no interest"))  # fmt: skip
    bots = [
        asyncio.create_task(BotAgent(bus, a, behaviour, random.Random(i)).run())
        for i, a in enumerate(ids)
    ]
    try:
        yield
    finally:
        for task in bots:
            task.cancel()
        await asyncio.gather(*bots, return_exceptions=True)


def _read(path: Path) -> str:
    from cti.errors import StoreError

    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        raise StoreError(f"{path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise StoreError(f"{path} is not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise StoreError(f"{path} cannot be read: {exc}") from None


def _print_report(d: dict[str, Any]) -> None:
    print(f"campaign {d['campaign']}: abandon cap {d['abandon_cap']:.1%}")
    print(
        f"last 30 days: {d['live_answers_30_days']} live answers, {d['abandoned_30_days']} "
        f"abandoned ({d['abandon_rate_30_days']:.2%})"
    )
    print(f"{'day':<12} {'live':>7} {'abandoned':>9} {'rate':>7}")
    for day in d["days"]:
        print(
            f"{day['day']:<12} {day['live_answers']:>7} {day['abandoned']:>9} "
            f"{day['abandon_rate']:>7.2%}"
        )
    print(f"dials: {d['dials']}; outside calling hours: {d['dials_outside_hours']}; "
          f"to do-not-call numbers: {d['dials_on_dnc']}")  # fmt: skip
    print("within the rules" if d["within_rules"] else "NOT within the rules")
