"""``cti demo``: engine, simulator and console in one process, on the in-memory bus.

Interactive, the person at the keyboard is the human agent (1001 by default) in the
Textual desktop, and bot agents take the rest of the traffic. Headless, there is no
human: the bots and the simulated callers run on virtual time (a day in seconds) or,
with ``realtime``, on the wall clock, and a JSON summary comes out.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from cti.app.demo_data import numbers_for_callers, seed_store
from cti.bus.memory import InMemoryBus
from cti.clock import is_virtual, run_virtual
from cti.config import Config, RoleSettings
from cti.engine.service import EngineService
from cti.engine.web_callbacks import WebCallbacks
from cti.models import AgentConfig, CallDetailRecord, Segment
from cti.store.database import Store
from queue_engine.priority import starvation_bound_s
from queue_engine.stats import Tally, passed_over_beyond_bound
from simulators.bots import BotAgent, BotBehaviour
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
    """Everything a demo runs: store, bus, one simulated trunk, engine and bots."""

    config: Config
    store: Store
    bus: InMemoryBus
    trunk: SimTrunk
    service: EngineService
    bots: list[BotAgent]
    pool: CallerPool
    rng: random.Random
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    web: WebCallbacks | None = None
    """The callback endpoint, when ``[web] callbacks_port`` is set."""

    @classmethod
    async def open(
        cls, config: Config, db_path: Path, *, bots: int, human: str | None
    ) -> DemoCenter:
        store = await Store.open(db_path)
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
        queues = [q.name for q in config.queues]
        agent_ids = ([human] if human else []) + bot_ids(config, bots)
        bus = InMemoryBus()
        trunk = SimTrunk("sim")
        listed = {a.id: a for a in config.agents}
        everywhere = dict.fromkeys(queues, 0.0)
        agents = [
            listed.get(a)
            or AgentConfig(id=a, name=AGENT_NAMES[i % len(AGENT_NAMES)], queues=everywhere)
            for i, a in enumerate(agent_ids)
        ]
        service = EngineService(config, bus, store, [trunk], agents, recorder=store)
        behaviour = BotBehaviour(
            answer_delay_s=demo.bot_answer_delay_s,
            mean_handle_s=demo.mean_handle_s,
            wrap_up_s=demo.bot_wrap_up_s,
            dispositions=config.engine.dispositions,
        )
        robots = [
            BotAgent(bus, a, behaviour, random.Random(f"{demo.seed}:{a}"))
            for a in bot_ids(config, bots)
        ]
        return cls(config, store, bus, trunk, service, robots, pool, rng)

    async def start(self) -> None:
        """Start the engine, the callback endpoint (if configured), then the bots."""
        self.tasks.append(asyncio.create_task(self.service.run(), name="engine"))
        await self.service.ready.wait()
        web = self.config.web
        if web.callbacks_port > 0:
            self.web = WebCallbacks(self.service, web.host, web.callbacks_port)
            await self.web.start()
        for bot in self.bots:
            self.tasks.append(asyncio.create_task(bot.run(), name=f"bot:{bot.agent_id}"))
        await asyncio.sleep(0.01)

    def arrivals(self, *, until: float | None, initial: int = 0) -> Coroutine[Any, Any, int]:
        demo = self.config.demo
        model = ArrivalModel(demo.rate_per_hour, demo.mean_patience_s)
        rng = random.Random(self.rng.random())
        return run_arrivals(self.trunk, model, self.pool, rng, until=until, initial=initial)

    async def close(self) -> None:
        if self.web is not None:
            await self.web.stop()
        for task in reversed(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        await self.service.flush()
        await self.store.close()


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
    center = await DemoCenter.open(config, db_path, bots=config.demo.bots, human=None)
    records: list[CallDetailRecord] = []
    center.service.record_listeners.append(records.append)
    loop = asyncio.get_running_loop()
    try:
        await center.start()
        t0 = loop.time()
        arrivals = asyncio.create_task(center.arrivals(until=t0 + seconds), name="arrivals")
        while not arrivals.done():
            await asyncio.wait([arrivals], timeout=60.0)
            if progress is not None:
                progress(min(1.0, (loop.time() - t0) / seconds) if seconds > 0 else 1.0)
        await arrivals
        drain_end = loop.time() + _DRAIN_LIMIT_S
        while center.service.router.active_call_ids() and loop.time() < drain_end:
            await asyncio.sleep(1.0)
    finally:
        await center.close()
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


async def run_interactive(config: Config, db_path: Path, config_path: Path | None = None) -> None:
    """The human agent's desktop, with bots and simulated callers behind it.

    With ``config_path``, edits to that file are applied while the demo runs.
    """
    from agent_console.desktop import AgentDesktop

    human = config.demo.human_agent
    config = with_demo_script(config)
    center = await DemoCenter.open(config, db_path, bots=config.demo.bots, human=human)
    try:
        await center.start()
        # The center is already busy when you log in: every bot has a call and a few
        # callers wait, so the first call is offered to you as soon as you are Ready.
        warm = center.arrivals(until=None, initial=config.demo.bots + 2)
        center.tasks.append(asyncio.create_task(warm, name="arrivals"))
        if config_path is not None:
            follow = center.service.follow_config(config_path)
            center.tasks.append(asyncio.create_task(follow, name="config"))
        app = AgentDesktop(center.bus, human, queues=[q.name for q in config.queues])
        await app.run_async()
    finally:
        await center.close()
