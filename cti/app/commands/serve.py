"""`cti serve`: the engine on a broker, with its telephony lines, journal and store.

Consoles (`cti console`) and wallboards (`cti supervisor`) connect to the same broker
from other terminals or machines. The engine publishes offers, events and retained
agent and queue state on ``cti/v1/...`` and takes commands from there
(``docs/mqtt.md``). Every router input is journaled beside the store, so a restarted
engine picks its calls up again (``docs/durability.md``).

Lines come from the config's ``[[lines]]``; with none, one simulator trunk (``sim``).
``--simulate RATE`` rings simulated callers (drawn from the store's customers; an empty
store gets the demo's) into the simulator trunks, for trying a set-up without a
telephone line. Stop with Ctrl-C (or SIGTERM): calls in progress stay in the journal.

The engine also runs the outbound dialer (:class:`cti.engine.campaigns.CampaignDesk`): every
campaign marked running in the store (``cti campaign start NAME``, from any terminal)
is dialled on the lines that can dial; pause and stop are followed within a few seconds
(the store is polled), and the wallboard's campaign controls act at once over the bus.

With ``[web] callbacks_port`` set, it also takes callback requests over HTTP
(:mod:`cti.engine.web_callbacks`, ``docs/web_callbacks.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import random
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cti.config import BrokerSettings, Config, load_config
from cti.errors import ConfigError

if TYPE_CHECKING:
    from cti.bus.memory import Bus
    from cti.engine.service import EngineService
    from cti.store.database import Store
    from telephony_adapters.base import TelephonyAdapter
    from telephony_adapters.sim import SimTrunk

ORDER = 15

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the engine and its telephony lines on an MQTT broker",
        description="The engine with its [[lines]], journal and store, on the broker of "
        "--broker, [broker] url or CTI_BROKER_URL (mqtt://user:password@host:1883, "
        "mqtts:// for TLS). Consoles and wallboards connect to the same broker.",
    )
    p.add_argument("--config", type=Path, help="TOML config file (defaults: `cti config`)")
    p.add_argument("--broker", help="broker URL, e.g. mqtt://cti-engine:PASSWORD@host:1883")
    p.add_argument("--db", type=Path, help="SQLite file (default: [store] path, or cti.db)")
    p.add_argument(
        "--simulate",
        type=float,
        default=0.0,
        metavar="CALLS_PER_HOUR",
        help="ring simulated callers into the simulator trunks at this rate",
    )
    p.add_argument("--seed", type=int, help="random seed of --simulate (default: [demo] seed)")
    p.add_argument(
        "--compiled",
        "--compiled-media",
        dest="compiled",
        action="store_true",
        help="run the router and the media relay's core compiled to C by mypyc (the same "
        "code, less CPU a decision and a packet: docs/acd.md, docs/voice.md); built on "
        "first start, needs gcc and mypy",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cti.app.demo import default_db_path
    from cti.bus.broker import parse_broker_url, resolve_broker_settings

    if args.compiled:
        from cti import compiled_build

        # returns in the process that runs the build (else replaces this one by it)
        tree = compiled_build.run_compiled(compiled_build.ENGINE, args.argv)
        print(
            f"the router and the media core run compiled (mypyc) from {tree or 'sys.path'}",
            file=sys.stderr,
            flush=True,
        )
    config = load_config(args.config)
    settings = resolve_broker_settings(config.broker, url=args.broker)
    if not settings.url:
        raise ConfigError(
            "cti serve needs a broker: --broker mqtt://user:password@host:1883, "
            "[broker] url in the config, or CTI_BROKER_URL (on one machine without a "
            "broker, `cti demo` runs everything in one process)"
        )
    parse_broker_url(settings.url)  # a bad URL is named now, not after the start-up
    if args.simulate < 0:
        raise ConfigError(f"--simulate must be calls per hour >= 0, got {args.simulate}")
    if not config.agents:
        raise ConfigError(
            f"{args.config or 'the default config'} has no [[agents]]: the engine routes "
            "calls only to configured agents (see `cti config`)"
        )
    db_path = args.db or (Path(config.store.path) if config.store.path else default_db_path())
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    seed = config.demo.seed if args.seed is None else args.seed
    run_loop(serve(config, settings, db_path, args.config, simulate=args.simulate, seed=seed))
    return 0


T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (the media relay takes about a third less
    CPU a packet on it: docs/voice.md, Capacity), else None (asyncio's)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on :func:`loop_factory`'s loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


async def serve(
    config: Config,
    settings: BrokerSettings,
    db_path: Path,
    config_path: Path | None,
    *,
    simulate: float = 0.0,
    seed: int = 7,
    stop: asyncio.Event | None = None,
    bus: Bus | None = None,
    lines: list[TelephonyAdapter] | None = None,
    campaign_poll_s: float = 3.0,
) -> None:
    """Run the engine on the broker until ``stop`` is set (or SIGINT/SIGTERM).

    ``bus`` and ``lines``, if given, are used instead of the broker's and the
    configuration's (tests and embedding); ``campaign_poll_s``: how often the dialer
    reads the campaigns' states from the store."""
    from cti.bus.broker import installation_client_id
    from cti.bus.roles import open_bus
    from cti.engine.running import configured_lines, running_engine

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    lines = lines if lines is not None else configured_lines(config)
    async with contextlib.AsyncExitStack() as stack:
        if bus is None:
            if not settings.client_id:  # stable for this store, unguessable
                client_id = installation_client_id(engine_id_path(db_path))
                settings = settings.model_copy(update={"client_id": client_id})
            bus = await stack.enter_async_context(open_bus(settings, "engine"))
        service = await stack.enter_async_context(
            running_engine(
                config,
                bus,
                db_path=db_path,
                lines=lines,
                dialer_poll_s=campaign_poll_s,
                config_path=config_path,
            )
        )
        _log_start(config, bus, service)
        gc.freeze()  # what start-up built lives on: out of every collection's scan (media p99)
        callers = _start_callers(config, service, lines, simulate, seed)
        try:
            await stop.wait()
        finally:
            if callers is not None:
                callers.cancel()
                await asyncio.gather(callers, return_exceptions=True)
            log.info("stopping: calls in progress stay in the journal")


def engine_id_path(db_path: Path) -> Path:
    """The file beside the store that keeps the engine's MQTT client id (its session)."""
    return db_path.with_name(db_path.name + ".mqtt-client-id")


def _log_start(config: Config, bus: Bus, service: EngineService) -> None:
    from cti.bus.mqtt import MqttBus

    log.info(
        "engine on %s: %d lines, %d agents, %d queues; journal %s (%s)",
        bus.address.display if isinstance(bus, MqttBus) else "the in-process bus",
        len(service.lines),
        len(config.agents),
        len(config.queues),
        service.journal.path if service.journal is not None else "none",
        service.recovery,
    )


def _start_callers(
    config: Config,
    service: EngineService,
    lines: list[TelephonyAdapter],
    simulate: float,
    seed: int,
) -> asyncio.Task[None] | None:
    """The simulated callers of ``--simulate``, into the simulator trunks (None: none)."""
    from cti.store.database import Store
    from telephony_adapters.sim import SimTrunk

    if simulate <= 0:
        return None
    trunks = [line for line in lines if isinstance(line, SimTrunk)]
    if not trunks:
        log.warning("--simulate: no simulator trunk among the lines; no callers")
        return None
    assert isinstance(service.recorder, Store)  # running_engine opened one at db_path
    return asyncio.create_task(
        _simulate(config, service.recorder, trunks, simulate, seed), name="callers"
    )


async def _simulate(
    config: Config, store: Store, trunks: list[SimTrunk], rate: float, seed: int
) -> None:
    """Poisson callers at ``rate`` an hour, spread over the simulator trunks."""
    from cti.app.demo_data import numbers_for_callers, seed_store
    from simulators.traffic import ArrivalModel, CallerMix, CallerPool, run_arrivals

    demo = config.demo
    await seed_store(store, n=demo.customers, seed=demo.seed)
    sample = await store.sample_customers(1500, seed)
    rng = random.Random(seed)
    pool = CallerPool(
        numbers_for_callers(sample, config.engine.default_region),
        CallerMix(demo.unknown_share, demo.private_share, demo.malformed_share),
        random.Random(rng.random()),
    )
    model = ArrivalModel(rate / len(trunks), demo.mean_patience_s)
    async with asyncio.TaskGroup() as group:
        for trunk in trunks:
            group.create_task(
                run_arrivals(trunk, model, pool, random.Random(rng.random())),
                name=f"callers:{trunk.name}",
            )
