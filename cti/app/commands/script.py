"""`cti script`: call script tools (check, preview)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_console.script_preview import ScriptPreview
    from cti.models import Customer

ORDER = 40


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    script = sub.add_parser("script", help="call scripts: check, preview")
    script_sub = script.add_subparsers(dest="script_command", required=True)
    check_p = script_sub.add_parser(
        "check",
        help="validate script files; exit 1 on any problem",
        description="Finds unreachable nodes, dangling targets, loops with no exit, unknown "
        "variables and bad expressions; prints each problem as FILE:LINE: node ID: message.",
    )
    check_p.add_argument("files", type=Path, nargs="+", metavar="FILE", help="script TOML")
    check_p.set_defaults(handler=check)

    preview_p = script_sub.add_parser(
        "preview",
        help="run a script in the terminal without a call",
        description="Runs the script in the agent desktop's script panel: number keys choose, "
        "Enter goes on or submits a field, Esc goes back, ctrl+r starts again, q quits. "
        "Prints the path, the answers and the actions as JSON at the end. FILE may also be "
        "the name of a shipped example (inbound_service_zh, inbound_service_en, "
        "outbound_survey).",
    )
    preview_p.add_argument("file", metavar="FILE", help="script TOML, or a shipped example's name")
    preview_p.add_argument(
        "--customer", type=int, metavar="ID", help="fill the customer variables from this customer"
    )
    preview_p.add_argument(
        "--db", type=Path, help="SQLite store to read --customer from (default: the configured one)"
    )
    preview_p.add_argument("--config", type=Path, help="TOML config file (for the store path)")
    preview_p.set_defaults(handler=preview)


def check(args: argparse.Namespace) -> int:
    from scripts_engine.validate import load_script

    failed = False
    for path in args.files:
        _, problems = load_script(path)
        for problem in problems:
            print(problem)
        failed = failed or bool(problems)
        if not problems:
            print(f"{path}: ok")
    return 1 if failed else 0


def preview(args: argparse.Namespace) -> int:
    app = preview_app(args)
    if app is None:
        return 1
    from agent_console.script_preview import run_summary

    state = app.run()
    if state is not None:
        print(json.dumps(run_summary(state), ensure_ascii=False, indent=2))
    return 0


def preview_app(args: argparse.Namespace) -> ScriptPreview | None:
    """The preview app for ``args``, or None after printing why there is none."""
    from agent_console.script_preview import ScriptPreview
    from cti.errors import CtiError
    from scripts_engine.catalog import is_path_ref, read_script_text
    from scripts_engine.runner import context_for

    ref = str(args.file)
    if not is_path_ref(ref) and Path(ref).exists():
        ref = f"./{ref}"  # a file in this folder named like a shipped example
    loaded, problems = read_script_text(ref)
    if loaded is None:
        for problem in problems:
            print(problem)
        return None
    customer = None
    if args.customer is not None:
        try:
            customer = asyncio.run(_customer(args))
        except CtiError as exc:
            print(exc)
            return None
    meta = loaded.script.meta
    context = context_for(
        customer,
        agent_id="preview",
        call_id="preview",
        queue=meta.queues[0] if meta.queues else "",
        direction=meta.direction.value,
    )
    who = f"customer {customer.id} {customer.name}" if customer is not None else ""
    return ScriptPreview(loaded.script, context, who=who)


async def _customer(args: argparse.Namespace) -> Customer:
    """The customer ``--customer`` names, from ``--db`` (or the configured store)."""
    from cti.app.demo import default_db_path
    from cti.config import load_config
    from cti.errors import CtiError
    from cti.store.database import Store

    path: Path = args.db
    if path is None:
        config = load_config(args.config)
        path = Path(config.store.path) if config.store.path else default_db_path()
    if not path.is_file():
        raise CtiError(f"no store at {path}: give one with --db FILE")
    store = await Store.open(path)
    try:
        customer = await store.get_customer(args.customer)
    finally:
        await store.close()
    if customer is None:
        raise CtiError(f"no customer {args.customer} in the store at {path}")
    return customer
