"""`cti config`: print the default configuration."""

from __future__ import annotations

import argparse

from cti.config import default_config_text

ORDER = 90


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="print the default configuration, with comments")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(default_config_text(), end="")
    return 0
