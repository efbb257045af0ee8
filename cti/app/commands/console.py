"""`cti console --agent ID`: the agent desktop on another terminal, over the broker.

The desktop of `cti demo`, talking to a `cti serve` engine through the broker of
``--broker`` (or ``[broker] url`` / ``CTI_BROKER_URL``). Without a user in the URL
(and without ``CTI_BROKER_USERNAME``) the agent id is the broker user, as
`cti broker-config` makes them; put the password in ``CTI_BROKER_PASSWORD`` to keep it
off the command line. A console that loses the broker says so at the top and keeps
the agent's work until it is back (``agent_console/connection.py``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cti.config import BrokerSettings, load_config
from cti.errors import ConfigError

ORDER = 16


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "console",
        help="the agent desktop, connected to a `cti serve` engine over a broker",
        description="The agent desktop over MQTT: --broker mqtt://AGENT:PASSWORD@host:1883 "
        "(mqtts:// for TLS), or [broker] url / CTI_BROKER_URL with CTI_BROKER_PASSWORD.",
    )
    p.add_argument("--agent", required=True, help="your agent id, e.g. 1001")
    p.add_argument("--broker", help="broker URL, e.g. mqtt://1001:PASSWORD@host:1883")
    p.add_argument("--config", type=Path, help="TOML config file ([broker], queue names)")
    p.add_argument(
        "--log", type=Path, help="log file (default: cti-console-ID.log in your data dir)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    import platformdirs

    from agent_console.desktop import agent_id_problem
    from cti.bus.broker import resolve_broker_settings

    problem = agent_id_problem(args.agent)
    if problem is not None:
        raise ConfigError(problem)
    config = load_config(args.config)
    # broker-config's users are the agent ids: the agent's id is the user by default
    settings = resolve_broker_settings(config.broker, url=args.broker, default_username=args.agent)
    if not settings.url:
        raise ConfigError(
            "cti console needs the engine's broker: --broker mqtt://AGENT:PASSWORD@host:1883, "
            "[broker] url in the config, or CTI_BROKER_URL (`cti demo` runs without one)"
        )
    log_file: Path = args.log or (
        Path(platformdirs.user_data_dir("cti-desk")) / f"cti-console-{args.agent}.log"
    )
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    queues = [q.name for q in config.queues] if args.config else []
    asyncio.run(_run_console(settings, args.agent, queues))
    return 0


async def _run_console(settings: BrokerSettings, agent_id: str, queues: list[str]) -> None:
    from agent_console.connection import NetworkedDesktop
    from cti.bus.roles import open_bus

    async with open_bus(settings, "console", agent_id=agent_id) as bus:
        await NetworkedDesktop(bus, agent_id, queues=queues).run_async()
