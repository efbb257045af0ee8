"""`cti voice-demo`: the engine on a SIP line with your softphone as agent 1001's phone."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from cti.app.commands.phone_credentials import sip_user_problem
from cti.errors import ConfigError

ORDER = 11


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "voice-demo",
        help="the engine on a SIP line and your agent desk: register a softphone, call, talk",
        description="Runs the engine with one SIP line (UDP, --host:--port) whose registrar "
        "takes your softphone as the agent's phone, and the agent's desk in this terminal. "
        "Prints the softphone's account (registrar, user, password) and the SIP URI to call. "
        "Files (password, config, store, recordings, log) stay in --dir.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5060, help="SIP port, UDP (default 5060; 0: any)")
    p.add_argument("--agent", default="1001", help="the agent's id and SIP user (default 1001)")
    p.add_argument("--dir", type=Path, help="work folder (default: voice-demo in your data dir)")
    p.add_argument(
        "--no-desk", action="store_true", help="no desk: print the account and run until Ctrl-C"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cti.app.commands.serve import run_loop
    from cti.app.voice_demo import VoiceDemoOptions, default_workdir, run_voice_demo

    problem = sip_user_problem(args.agent)
    if problem is not None:
        raise ConfigError(f"--agent {args.agent!r} {problem}: it cannot be a SIP user")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: a UDP port is 0 to 65535")
    workdir: Path = args.dir or default_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=workdir / "voice-demo.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    options = VoiceDemoOptions(workdir, args.host, args.port, args.agent)
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(run_voice_demo(options, sys.stdout, desk=not args.no_desk))
    return 0
