"""`cti script`: call script tools."""

from __future__ import annotations

import argparse
from pathlib import Path

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
