"""`cti supervisor`: the supervisor wallboard, on a broker or an embedded demo center.

With ``--broker URL`` (or ``[broker] url``, or ``CTI_BROKER_URL``) the wallboard follows
the engine on that MQTT broker as supervisor ``--id``. Without one it runs against a
demo center in the same process: the engine, the simulator trunk and bot agents of
``cti demo`` (:func:`cti.app.demo.running_demo`), with the wallboard instead of a desktop.

``--web`` serves the same wallboard to browsers with textual-serve: each browser
session starts ``cti supervisor`` (these options, less ``--web``) as its own process,
which ends when its browser goes or the server stops (:mod:`cti.app.web_board`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cti.config import BrokerSettings, Config, load_config
from cti.errors import ConfigError

if TYPE_CHECKING:
    from agent_console.wallboard import Wallboard
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
        "url or CTI_BROKER_URL; without one, on an embedded demo center (engine, simulated "
        "callers and bot agents, as in `cti demo`).",
    )
    p.add_argument("--config", type=Path, help="TOML config file (defaults: `cti config`)")
    p.add_argument("--broker", help="MQTT broker URL, e.g. mqtt://user:password@host:1883")
    p.add_argument(
        "--id",
        default="supervisor",
        help="supervisor id: topics and broker user (default %(default)s)",
    )
    p.add_argument("--db", type=Path, help="SQLite file of the embedded demo center")
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
    if args.web:
        return _serve_web(args, broker.url)
    db_path = args.db or (Path(config.store.path) if config.store.path else _default_db())
    log_file = db_path.parent / "cti-supervisor.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if broker.url:
        asyncio.run(_on_broker(config, broker, args.id))
    else:
        asyncio.run(_on_demo(config, db_path, args.id, args.config))
    return 0


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


def _wallboard(config: Config, bus: Bus, supervisor_id: str) -> Wallboard:
    from agent_console.wallboard import Wallboard

    return Wallboard(
        bus,
        supervisor_id,
        settings=config.wallboard,
        agent_names={a.id: a.name for a in config.agents if a.name},
        queues=[q.name for q in config.queues],
    )


async def _on_broker(config: Config, broker: BrokerSettings, supervisor_id: str) -> None:
    from cti.bus.roles import open_bus

    async with open_bus(broker, "supervisor", name=supervisor_id, wait_online_s=10.0) as bus:
        await _wallboard(config, bus, supervisor_id).run_async()


async def _on_demo(
    config: Config, db_path: Path, supervisor_id: str, config_path: Path | None
) -> None:
    from cti.app.demo import running_demo

    async with running_demo(
        config, db_path, bots=config.demo.bots, human=None, config_path=config_path
    ) as center:
        # Callers are already waiting when the board opens, as in `cti demo`.
        center.spawn(center.arrivals(until=None, initial=config.demo.bots + 2), "arrivals")
        await _wallboard(config, center.bus, supervisor_id).run_async()


def web_command(args: argparse.Namespace) -> list[str]:
    """The command each browser session runs: this one, without ``--web``.

    The broker's URL is not on it (it may hold a password): the sessions get it from
    the environment (``CTI_BROKER_URL``), see :func:`_serve_web`.
    """
    command = [sys.executable, "-m", "cti.app.cli", "supervisor", "--id", args.id]
    if args.config is not None:
        command += ["--config", str(Path(args.config).resolve())]
    if args.db is not None:
        command += ["--db", str(Path(args.db).resolve())]
    return command


def _serve_web(args: argparse.Namespace, broker_url: str) -> int:
    from cti.app.web_board import BoardServer

    if broker_url:
        os.environ["CTI_BROKER_URL"] = broker_url  # inherited by every session
    # One client id for every session would have them take each other's connection over.
    os.environ.pop("CTI_BROKER_CLIENT_ID", None)
    server = BoardServer(
        shlex.join(web_command(args)), host=args.host, port=args.port, title="CTI Desk wallboard"
    )
    server.serve()
    return 0
