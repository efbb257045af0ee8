"""``cti demo``: engine, simulator and console in one process, on the in-memory bus
(shared on a local socket, so ``cti supervisor`` boards watch the same centre).

Interactive, the person at the keyboard is the human agent (1001 by default) in the
Textual desktop, and bot agents take the rest of the traffic. Headless, there is no
human: the bots and the simulated callers run on virtual time (a day in seconds) or,
with ``realtime``, on the wall clock, and a JSON summary comes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from cti.app.demo_data import numbers_for_callers, seed_store
from cti.bus import local as local_bus
from cti.bus.memory import InMemoryBus
from cti.clock import is_virtual, run_virtual
from cti.config import Config, RoleSettings
from cti.engine.running import running_engine
from cti.engine.service import EngineService
from cti.errors import CtiError
from cti.models import AgentConfig, CallDetailRecord, Segment
from cti.store.database import Store
from queue_engine.priority import starvation_bound_s
from queue_engine.stats import Tally, passed_over_beyond_bound
from simulators.bots import BotAgent, BotBehaviour
from simulators.live import calls_finished
from simulators.traffic import ArrivalModel, CallerMix, CallerPool, run_arrivals
from telephony_adapters.sim import SimTrunk

log = logging.getLogger(__name__)

#: Callers drawn from this many customers of the store.
_CALLER_SAMPLE = 1500
#: After arrivals stop, a headless run waits at most this long for calls to finish.
_DRAIN_LIMIT_S = 4 * 3600.0
#: The call script of the interactive demo's queues when the configuration names none.
DEMO_SCRIPT = "inbound_service_zh"
#: Names of the demo's agents (scripts greet callers with them), the human agent first.
AGENT_NAMES = (
    *("王伟", "李娜", "张敏", "刘洋", "陈静", "杨帆"),
    *("赵磊", "黄丽", "周杰", "吴芳", "徐涛"),
)


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("cti-desk")) / "cti.db"


def _may_search(config: Config, agent_id: str) -> Config:
    """The demo's person plays the whole center: give them a role that searches customers
    (a plain agent may read only their calls' customers, docs/customers.md)."""
    access = config.access
    if access.may_search(agent_id):
        return config
    roles = dict(access.roles)
    lead = roles.get("supervisor", RoleSettings(search=True))
    roles["supervisor"] = lead.model_copy(
        update={"search": True, "members": (*lead.members, agent_id)}
    )
    return config.model_copy(update={"access": access.model_copy(update={"roles": roles})})


def bot_ids(config: Config, count: int) -> list[str]:
    """Bot agent ids: the numbers after the human agent's (1002, 1003, ...)."""
    first = int(config.demo.human_agent) + 1 if config.demo.human_agent.isdigit() else 2001
    return [str(first + i) for i in range(count)]


@dataclass
class DemoCenter:
    """Everything a demo runs: store, bus, one simulated trunk, the engine and bots
    (:func:`running_demo` starts them)."""

    config: Config
    store: Store
    bus: InMemoryBus
    trunk: SimTrunk
    service: EngineService
    bots: list[BotAgent]
    pool: CallerPool
    rng: random.Random
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    """Bots, arrivals and the like: cancelled before the engine stops."""

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``work`` for as long as the demo runs."""
        self.tasks.append(asyncio.create_task(work, name=name))

    def arrivals(self, *, until: float | None, initial: int = 0) -> Coroutine[Any, Any, int]:
        demo = self.config.demo
        model = ArrivalModel(demo.rate_per_hour, demo.mean_patience_s)
        rng = random.Random(self.rng.random())
        return run_arrivals(self.trunk, model, self.pool, rng, until=until, initial=initial)

    async def stop_tasks(self) -> None:
        """Cancel what :meth:`spawn` started, the last first."""
        for task in reversed(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()


@contextlib.asynccontextmanager
async def running_demo(
    config: Config,
    db_path: Path,
    *,
    bots: int,
    human: str | None,
    config_path: Path | None = None,
    share: bool = False,
) -> AsyncIterator[DemoCenter]:
    """A demo center for the body of the ``async with``: the store at ``db_path``
    seeded with the demo's customers, the engine running (:func:`running_engine`, with
    the callback endpoint when ``[web] callbacks_port`` is set, following
    ``config_path`` when given), the bots at work. ``human``: the person's agent id (a
    role that may search customers is given to them). ``share``: its bus is served on a
    local socket beside ``db_path`` (:mod:`cti.bus.local`) for ``cti supervisor`` to watch;
    refused when another demo centre serves there already."""
    if share and await local_bus.centre_answers(db_path):  # before its store is touched
        raise CtiError(f"a demo centre already runs on {db_path}: watch it with cti supervisor")
    store = await Store.open(db_path)
    try:
        demo = config.demo
        await seed_store(store, n=demo.customers, seed=demo.seed)
        sample = await store.sample_customers(_CALLER_SAMPLE, demo.seed)
        rng = random.Random(demo.seed)
        pool = CallerPool(
            numbers_for_callers(sample),
            CallerMix(demo.unknown_share, demo.private_share, demo.malformed_share),
            random.Random(rng.random()),
        )
        if human:
            config = _may_search(config, human)
        bus = InMemoryBus()
        shared: contextlib.AbstractAsyncContextManager[object] = (
            local_bus.serving(bus, db_path) if share else contextlib.nullcontext()
        )
        trunk = SimTrunk("sim")
        robots = _bots(config, bus, bots)
        async with (
            shared,
            running_engine(
                config,
                bus,
                directory=store,
                lines=[trunk],
                agents=_agents(config, human, bots),
                config_path=config_path,
            ) as service,
        ):
            center = DemoCenter(config, store, bus, trunk, service, robots, pool, rng)
            for bot in robots:
                center.spawn(bot.run(), f"bot:{bot.agent_id}")
            await asyncio.sleep(0.01)  # the bots log in before the first caller rings
            try:
                yield center
            finally:
                await center.stop_tasks()
    finally:
        await store.close()


def _agents(config: Config, human: str | None, bots: int) -> list[AgentConfig]:
    """The person (if any) and the bots: as configured, else in every queue."""
    agent_ids = ([human] if human else []) + bot_ids(config, bots)
    listed = {a.id: a for a in config.agents}
    everywhere = dict.fromkeys((q.name for q in config.queues), 0.0)
    return [
        listed.get(a)
        or AgentConfig(id=a, name=AGENT_NAMES[i % len(AGENT_NAMES)], queues=everywhere)
        for i, a in enumerate(agent_ids)
    ]


def _bots(config: Config, bus: InMemoryBus, count: int) -> list[BotAgent]:
    demo = config.demo
    behaviour = BotBehaviour(
        answer_delay_s=demo.bot_answer_delay_s,
        mean_handle_s=demo.mean_handle_s,
        wrap_up_s=demo.bot_wrap_up_s,
        dispositions=config.engine.dispositions,
    )
    return [
        BotAgent(bus, a, behaviour, random.Random(f"{demo.seed}:{a}"))
        for a in bot_ids(config, count)
    ]


async def run_headless(
    config: Config,
    db_path: Path,
    seconds: float,
    *,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Run ``seconds`` of arrivals with bots only, let the calls finish, and summarise."""
    started = time.perf_counter()
    if is_virtual():
        # Nobody watches a virtual-time run: queue figures once a simulated minute.
        engine = config.engine.model_copy(update={"status_interval_s": 60.0})
        config = config.model_copy(update={"engine": engine})
    records: list[CallDetailRecord] = []
    async with running_demo(config, db_path, bots=config.demo.bots, human=None) as center:
        center.service.record_listeners.append(records.append)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        arrivals = asyncio.create_task(center.arrivals(until=t0 + seconds), name="arrivals")
        while not arrivals.done():
            await asyncio.wait([arrivals], timeout=60.0)
            if progress is not None:
                progress(min(1.0, (loop.time() - t0) / seconds) if seconds > 0 else 1.0)
        await arrivals
        await calls_finished(center.service, _DRAIN_LIMIT_S)
    return summarise(config, records, wall_s=time.perf_counter() - started)


def summarise(config: Config, records: list[CallDetailRecord], *, wall_s: float) -> dict[str, Any]:
    """The headless summary: overall figures, per segment, and the starvation check."""
    main = config.queue(config.engine.default_queue)
    overall = Tally(main.sl_target_s, main.short_abandon_s)
    by_segment = {s: Tally(main.sl_target_s, main.short_abandon_s) for s in Segment}
    for cdr in records:
        overall.add(cdr)
        by_segment[cdr.segment].add(cdr)
    bounds = {q.name: starvation_bound_s(q) for q in config.queues}
    kinds: dict[str, int] = {}
    for cdr in records:
        kinds[cdr.caller_kind.value] = kinds.get(cdr.caller_kind.value, 0) + 1
    return {
        "offered": overall.offered,
        "answered": overall.answered,
        "abandoned": overall.abandoned,
        "short_abandoned": overall.short_abandoned,
        "service_level": _r(overall.service_level),
        "service_level_of_answered": _r(overall.service_level_of_answered),
        "sl_target_s": main.sl_target_s,
        "asa_s": _r(overall.asa_s),
        "max_wait_s": _r(overall.max_wait_s),
        "abandon_rate": _r(overall.abandon_rate),
        "starvation_bound_s": _r(max(bounds.values())),
        "passed_over_beyond_bound": passed_over_beyond_bound(records, bounds),
        "caller_kinds": kinds,
        "segments": {
            s.value: {
                "value_rank": s.value_rank,
                "offered": t.offered,
                "answered": t.answered,
                "abandoned": t.abandoned,
                "asa_s": _r(t.asa_s),
                "max_wait_s": _r(t.max_wait_s),
            }
            for s, t in by_segment.items()
        },
        "agents": config.demo.bots,
        "rate_per_hour": config.demo.rate_per_hour,
        "seed": config.demo.seed,
        "wall_s": _r(wall_s),
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def headless(
    config: Config, db_path: Path, seconds: float, *, realtime: bool, show_progress: bool
) -> dict[str, Any]:
    """Run the headless demo on virtual time (or the wall clock) and return the summary."""

    def progress(fraction: float) -> None:
        if show_progress:
            bar = "#" * int(fraction * 30)
            print(f"\r[{bar:<30}] {fraction:6.1%} simulated", end="", file=sys.stderr, flush=True)

    async def main() -> dict[str, Any]:
        return await run_headless(config, db_path, seconds, progress=progress)

    summary = asyncio.run(main()) if realtime else run_virtual(main)
    if show_progress:
        print(file=sys.stderr)
    return summary


def with_demo_script(config: Config) -> Config:
    """``config`` with :data:`DEMO_SCRIPT` for every queue that has no script, so the
    person at the desk walks a call script."""
    queues = [
        q if q.script else q.model_copy(update={"script": DEMO_SCRIPT}) for q in config.queues
    ]
    return config.model_copy(update={"queues": queues})


#: Seconds the demo may take to stop once its desk has closed (the engine, the store).
STOP_LIMIT_S = 20.0


def ends_within(limit_s: float) -> None:
    """End the process ``limit_s`` from now if it has not ended by then: a stop that
    hangs (the desk's own shutdown, a task that ignores its cancellation, a worker thread
    the interpreter waits for) is logged with every thread's stack, for the next person,
    and the process exits. The journal keeps what the store had not taken."""

    def stop() -> None:
        log.error("the demo did not stop within %g s of its desk closing; every "
                  "thread's stack follows, then it exits", limit_s)  # fmt: skip
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(0)  # the person's quit is done; what hung is in the log above

    timer = threading.Timer(limit_s, stop)
    timer.daemon = True
    timer.start()


async def run_interactive(config: Config, db_path: Path, config_path: Path | None = None) -> None:
    """The human agent's desktop, with bots and simulated callers behind it.

    With ``config_path``, edits to that file are applied while the demo runs.
    """
    from agent_console.desktop import AgentDesktop

    human = config.demo.human_agent
    config = with_demo_script(config)
    async with running_demo(
        config, db_path, bots=config.demo.bots, human=human, config_path=config_path, share=True
    ) as center:
        # The center is already busy when you log in: every bot has a call and a few
        # callers wait, so the first call is offered to you as soon as you are Ready.
        center.spawn(center.arrivals(until=None, initial=config.demo.bots + 2), "arrivals")
        app = AgentDesktop(center.bus, human, queues=[q.name for q in config.queues],
                           on_leave=lambda: ends_within(STOP_LIMIT_S))  # fmt: skip
        await app.run_async()
        ends_within(STOP_LIMIT_S)  # the desk closed (also by ^c): the program ends
