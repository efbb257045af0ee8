"""`cti supervisor`: the supervisor wallboard, on a broker or an embedded demo center.

With ``--broker URL`` (or ``[broker] url``, or ``CTI_BROKER_URL``) the wallboard follows
the engine on that MQTT broker as supervisor ``--id``. Without one it watches the demo
centre of ``cti demo`` (``make demo``) on the same database, whose bus it serves on a
local socket (:mod:`cti.bus.local`); with none running it says so, unless ``--own-demo``
asks for a demo centre of its own (shared the same way, so other boards can watch it).

``--web`` serves the same wallboard to browsers with textual-serve: each browser
session starts ``cti supervisor`` (these options, less ``--web`` and ``--own-demo``) as
its own process, which ends when its browser goes or the server stops
(:mod:`cti.app.web_board`); every session watches the same centre (with ``--own-demo``
the server runs it), never one of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from cti.config import BrokerSettings, Config, load_config
from cti.errors import ConfigError

if TYPE_CHECKING:
    from agent_console.wallboard import Wallboard
    from cti.app.demo import DemoCenter
    from cti.bus.memory import Bus

ORDER = 15
DEFAULT_PORT = 8000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "supervisor",
        help="the supervisor wallboard: queues, agents, alerts and actions (--web: in a browser)",
        description="Live queue tiles, the agent grid, waiting calls, a chart of the last hour "
        "and alerts, with the supervisor's actions (change a call's priority, move a call, "
        "force an agent Not ready or log it out; start, pause and pace outbound campaigns). "
        "On the broker given by --broker, [broker] "
        "url or CTI_BROKER_URL; without one, the demo centre of `cti demo` (make demo) on "
        "the same --db, or with --own-demo a demo centre of its own.",
    )
    p.add_argument("--config", type=Path, help="TOML config file (defaults: `cti config`)")
    p.add_argument("--broker", help="MQTT broker URL, e.g. mqtt://user:password@host:1883")
    p.add_argument(
        "--id",
        default="supervisor",
        help="supervisor id: topics and broker user (default %(default)s)",
    )
    p.add_argument("--db", type=Path, help="SQLite file of the embedded demo center")
    p.add_argument(
        "--own-demo",
        action="store_true",
        help="without a broker and with no `cti demo` running: run a demo centre here",
    )
    p.add_argument("--web", action="store_true", help="serve the wallboard to browsers")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port for --web (default %(default)s)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address for --web to listen on (default %(default)s; there is no login: "
        "anyone who reaches it can act as this supervisor)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cti.bus.broker import resolve_broker_settings

    _check_id(args.id)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1-65535, got {args.port}")
    config = load_config(args.config)
    broker = resolve_broker_settings(config.broker, url=args.broker)
    db_path = args.db or (Path(config.store.path) if config.store.path else _default_db())
    demo_runs = not broker.url and asyncio.run(_centre_answers(db_path))
    if not broker.url and not demo_runs and not args.own_demo:
        print(
            f"cti supervisor: no centre to watch: no broker is configured and no demo centre"
            f" runs on {db_path}. Start one (`make demo` or `cti demo`, with the same --db),"
            " give --broker, or --own-demo to run a demo centre here.",
            file=sys.stderr,
        )
        return 2
    own = not broker.url and not demo_runs
    if args.web:
        return _serve_web(args, broker.url, config, db_path if own else None)
    log_file = db_path.parent / "cti-supervisor.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if broker.url:
        asyncio.run(_on_broker(config, broker, args.id))
    elif own:
        asyncio.run(_on_demo(config, db_path, args.id, args.config))
    else:
        return asyncio.run(_on_local(config, db_path, args.id))
    return 0


async def _centre_answers(db_path: Path) -> bool:
    from cti.bus.local import centre_answers

    return await centre_answers(db_path)


def _check_id(supervisor_id: str) -> None:
    bad = sorted({ch for ch in supervisor_id if ch in "/+#" or ch.isspace()})
    if not supervisor_id or bad:
        shown = " ".join(repr(ch) for ch in bad) or "nothing"
        raise ConfigError(
            f"--id {supervisor_id!r} contains {shown}: use letters, digits, '-' or '_'"
        )


def _default_db() -> Path:
    from cti.app.demo import default_db_path

    return default_db_path()


def _wallboard(config: Config, bus: Bus, supervisor_id: str, watching: str) -> Wallboard:
    from agent_console.wallboard import Wallboard

    return Wallboard(
        bus,
        supervisor_id,
        settings=config.wallboard,
        agent_names={a.id: a.name for a in config.agents if a.name},
        queues=[q.name for q in config.queues],
        watching=watching,
    )


async def _on_broker(config: Config, broker: BrokerSettings, supervisor_id: str) -> None:
    from cti.bus.roles import open_bus

    async with open_bus(broker, "supervisor", name=supervisor_id, wait_online_s=10.0) as bus:
        watching = f"the centre on the broker {broker.url.rpartition('@')[2]}"
        await _wallboard(config, bus, supervisor_id, watching).run_async()


async def _on_local(config: Config, db_path: Path, supervisor_id: str) -> int:
    """Watch the demo centre of ``cti demo`` on ``db_path``; ends when that centre does."""
    from cti.bus.local import connect

    async with connect(db_path) as bus:
        board = _wallboard(config, bus, supervisor_id, f"the demo centre of {db_path}")

        async def centre_gone() -> None:
            await bus.gone.wait()
            board.exit(return_code=1, message=f"The demo centre of {db_path} stopped.")

        watch = asyncio.create_task(centre_gone(), name="centre-gone")
        try:
            await board.run_async()
        finally:
            watch.cancel()
    return board.return_code or 0


async def _on_demo(
    config: Config, db_path: Path, supervisor_id: str, config_path: Path | None
) -> None:

    async with own_demo(config, db_path, config_path) as center:
        watching = f"a demo centre of its own on {db_path} (--own-demo)"
        await _wallboard(config, center.bus, supervisor_id, watching).run_async()


@contextlib.asynccontextmanager
async def own_demo(
    config: Config, db_path: Path, config_path: Path | None
) -> AsyncIterator[DemoCenter]:
    """A demo centre as ``cti demo`` runs it, without a person: its bus shared (other
    boards watch it) and callers already waiting when the board opens."""
    from cti.app.demo import running_demo

    async with running_demo(
        config, db_path, bots=config.demo.bots, human=None, config_path=config_path, share=True
    ) as center:
        center.spawn(center.arrivals(until=None, initial=config.demo.bots + 2), "arrivals")
        yield center


def web_command(args: argparse.Namespace) -> list[str]:
    """The command each browser session runs: this one, without ``--web`` (nor
    ``--own-demo``: a session watches the centre, never starts one).

    The broker's URL is not on it (it may hold a password): the sessions get it from
    the environment (``CTI_BROKER_URL``), see :func:`_serve_web`.
    """
    command = [sys.executable, "-m", "cti.app.cli", "supervisor", "--id", args.id]
    if args.config is not None:
        command += ["--config", str(Path(args.config).resolve())]
    if args.db is not None:
        command += ["--db", str(Path(args.db).resolve())]
    return command


def _serve_web(
    args: argparse.Namespace, broker_url: str, config: Config, own_demo_db: Path | None
) -> int:
    """Serve the board to browsers; with ``own_demo_db`` the server runs the demo centre
    every session watches."""
    from cti.app.web_board import BoardServer

    if broker_url:
        os.environ["CTI_BROKER_URL"] = broker_url  # inherited by every session
    # One client id for every session would have them take each other's connection over.
    os.environ.pop("CTI_BROKER_CLIENT_ID", None)
    if args.db is None and own_demo_db is not None:
        args.db = own_demo_db  # the sessions find the centre beside this database
    centre = None
    if own_demo_db is not None:
        db_path = own_demo_db
        centre = lambda: own_demo(config, db_path, args.config)  # noqa: E731
    server = BoardServer(
        shlex.join(web_command(args)),
        host=args.host,
        port=args.port,
        title="CTI Desk wallboard",
        centre=centre,
    )
    server.serve()
    return 0
