"""The ``cti`` command: parses the arguments and runs one subcommand of ``cti.app.commands``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from cti.app.commands import command_modules
from cti.errors import CtiError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cti", description="CTI Desk: call-center engine and agent desktop"
    )
    sub = p.add_subparsers(dest="command", required=True)
    for module in command_modules():
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CtiError as exc:
        print(f"cti: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
