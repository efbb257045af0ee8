"""`cti config`: print the default configuration, or check a configuration file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cti.config import default_config_text, load_config
from cti.errors import ConfigError

ORDER = 90


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="print the default configuration, with comments")
    p.add_argument(
        "--check",
        type=Path,
        metavar="FILE",
        help="check FILE instead: each bad entry named with its line (exit 1), else a summary",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.check is None:
        print(default_config_text(), end="")
        return 0
    try:
        config = load_config(args.check)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"{args.check}: valid ({len(config.queues)} queues, {len(config.agents)} agents); "
        f"{len(config.flows)} call flows, {len(config.hours)} opening hours"
    )
    for agent in config.agents:
        if not agent.name.strip():
            print(
                f"{args.check}: warning: agent {agent.id!r} has no name: its scripts say "
                f'its id ({agent.id}) where they read agent.name; give it name = "..."',
                file=sys.stderr,
            )
    return 0
