"""Live mode: a scenario's traffic through the simulator trunk into a running engine.

Where :mod:`simulators.des` drives the router alone on virtual time, this runs the
whole engine service (bus, lines, router, statistics) in real time, with bot agents
working calls through the wire protocol: a load test of the product as deployed.
Callers ring one :class:`~telephony_adapters.sim.SimTrunk` per queue (the dialled number
picks the queue), give up after their patience, and may take a callback. Agents log in
and out by shift (breaks are not played in live mode). The result has the shape of a
simulated day, so the same report applies.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import replace

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.config import Config, EngineSettings
from cti.engine.service import EngineService
from cti.models import (
    AgentConfig,
    AgentState,
    CallDetailRecord,
    Customer,
    Interaction,
    PhoneNumber,
    Segment,
)
from cti.protocol import AgentStateChanged, Logout
from queue_engine.stats import AgentTime
from simulators.bots import BotAgent, BotBehaviour
from simulators.des import SAMPLE_EVERY_S, DayResult, Sample, add_measured
from simulators.scenario import AgentGroup, Scenario, Traffic
from telephony_adapters.sim import SimCallState, SimTrunk

#: After arrivals stop, calls still in progress get at most this long to finish.
DRAIN_LIMIT_S = 600.0


class _Directory:
    """Customers made up for the run: each caller's number maps to its value."""

    def __init__(self) -> None:
        self.customers: dict[str, Customer] = {}

    def add(self, e164: str, value: float) -> None:
        n = len(self.customers) + 1
        self.customers[e164] = Customer(
            id=n,
            name=f"Caller {n}",
            phones=(PhoneNumber(raw=e164, e164=e164),),
            value=value,
            segment=Segment.for_value(value),
        )

    async def find_by_number(self, e164: str) -> list[Customer]:
        customer = self.customers.get(e164)
        return [customer] if customer else []

    async def recent_interactions(
        self, customer_id: int, limit: int = 5
    ) -> tuple[Interaction, ...]:
        return ()


def _agents(scenario: Scenario) -> list[tuple[AgentConfig, AgentGroup]]:
    return [
        (AgentConfig(id=f"{g.name}-{i}", skills=g.skills, queues=g.queues), g)
        for g in scenario.agents
        for i in range(1, g.count + 1)
    ]


async def run_live(
    scenario: Scenario,
    seed: int,
    *,
    minutes: float | None = None,
    answer_delay_s: float = 1.0,
    progress: Callable[[float], None] | None = None,
) -> DayResult:
    """Run ``scenario`` (or its first ``minutes``) in real time through the engine."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    duration = scenario.duration_s if minutes is None else min(scenario.duration_s, minutes * 60)
    queues = [q.name for q in scenario.queues]
    engine = EngineSettings(
        max_missed_offers=scenario.max_missed_offers,
        default_queue=queues[0],
        dnis_queues={f"queue:{q}": q for q in queues},
        seed=rng.randrange(2**31),
    )
    config = Config(engine=engine, queues=scenario.queues)
    bus = InMemoryBus()
    trunks = {
        t.queue: SimTrunk(f"sim-{t.queue}", dnis=f"queue:{t.queue}") for t in scenario.traffic
    }
    directory = _Directory()
    agents = _agents(scenario)
    service = EngineService(config, bus, directory, list(trunks.values()), [a for a, _ in agents])
    records: list[CallDetailRecord] = []
    service.record_listeners.append(records.append)
    labels: dict[str, str] = {}
    times = {a.id: AgentTime() for a, _ in agents}
    warm = scenario.warm_up_s
    samples: list[Sample] = []
    handle = {t.queue: t.handle.draw for t in scenario.traffic}
    t0 = service.now()
    numbers = itertools.count(1)

    def since_start() -> float:
        return service.now() - t0

    async def caller(trunk: SimTrunk, traffic: Traffic) -> None:
        value, label = traffic.draw_value(rng)
        e164 = f"+86199{next(numbers):08d}"
        directory.add(e164, value)
        call_id = trunk.ring(e164)
        labels[call_id] = label or Segment.for_value(value).value
        patience = traffic.patience.draw(rng)
        offer = traffic.callback
        take_callback = offer is not None and rng.random() < offer.take_up
        wait_for = min(patience, offer.offer_after_s if take_callback and offer else math.inf)
        try:
            async with asyncio.timeout(None if math.isinf(wait_for) else wait_for):
                await trunk.wait_answered(call_id)
        except TimeoutError:
            if trunk.state(call_id) is not SimCallState.RINGING:
                return
            if take_callback and offer is not None and offer.offer_after_s <= patience:
                trunk.request_callback(call_id)
            else:
                trunk.caller_hangs_up(call_id)

    async def arrivals(traffic: Traffic, tg: asyncio.TaskGroup) -> None:
        trunk = trunks[traffic.queue]
        while True:
            t = since_start()
            if t >= duration:
                return
            rate = traffic.rate_at(t)
            change = min(traffic.next_change(t), duration)
            if rate <= 0:
                await asyncio.sleep(change - t)
                continue
            gap = rng.expovariate(rate / 3600.0)
            if t + gap >= change:
                await asyncio.sleep(change - t)
                continue
            await asyncio.sleep(gap)
            tg.create_task(caller(trunk, traffic), name="live:caller")

    async def agent_on_duty(config: AgentConfig, group: AgentGroup) -> None:
        behaviour = BotBehaviour(
            answer_delay_s=answer_delay_s,
            wrap_up_s=group.wrap_up.mean,
            handle_by_queue=handle,
        )
        for login, logout, _breaks in scenario.on_duty(group):
            await asyncio.sleep(max(0.0, login - since_start()))
            if since_start() >= duration:
                return
            bot = asyncio.create_task(
                BotAgent(bus, config.id, behaviour, random.Random(rng.random())).run()
            )
            if math.isinf(logout):
                await bot
                return
            await asyncio.sleep(max(0.0, logout - since_start()))
            bot.cancel()
            await asyncio.gather(bot, return_exceptions=True)
            await bus.publish(topics.agent_commands(config.id), Logout(agent_id=config.id))

    last: dict[str, tuple[AgentState, float]] = {}

    async def account_states() -> None:
        async with bus.subscribe(topics.ALL_AGENT_STATES) as states:
            async for _topic, message in states:
                if not isinstance(message, AgentStateChanged):
                    continue
                now = since_start()
                previous = last.get(message.agent_id)
                if previous is not None:
                    add_measured(
                        times[message.agent_id], previous[0], previous[1], now, warm, duration
                    )
                last[message.agent_id] = (message.state, now)

    async def sample() -> None:
        while since_start() <= duration:
            now = service.now()
            snaps = [service.router.snapshot(q, now) for q in queues]
            states = [service.router.agent(a.id).state for a, _ in agents]
            samples.append(
                Sample(
                    since_start(),
                    sum(s.waiting for s in snaps),
                    sum(s is not AgentState.LOGGED_OUT for s in states),
                    sum(s in (AgentState.TALKING, AgentState.WRAP_UP) for s in states),
                )
            )
            if progress is not None:
                progress(min(1.0, since_start() / duration))
            await asyncio.sleep(SAMPLE_EVERY_S)

    engine_task = loop.create_task(service.run(), name="live:engine")
    await service.ready.wait()
    helpers = [
        loop.create_task(account_states(), name="live:states"),
        loop.create_task(sample(), name="live:samples"),
    ]
    helpers += [loop.create_task(agent_on_duty(a, g), name=f"live:{a.id}") for a, g in agents]
    try:
        async with asyncio.TaskGroup() as callers:
            streams = [
                callers.create_task(arrivals(t, callers), name="live:arrivals")
                for t in scenario.traffic
            ]
            await asyncio.gather(*streams)
        drain_end = since_start() + DRAIN_LIMIT_S
        while service.router.active_call_ids() and since_start() < drain_end:
            await asyncio.sleep(1.0)
        if progress is not None:
            progress(1.0)
    finally:
        for task in [*helpers, engine_task]:
            task.cancel()
        await asyncio.gather(*helpers, engine_task, return_exceptions=True)
    for agent_id, (state, since) in last.items():
        add_measured(times[agent_id], state, since, since_start(), warm, duration)
    return DayResult(
        records=[_shift(r, t0) for r in records],
        labels=labels,
        agent_time=times,
        agent_queues={a.id: list(a.queues) for a, _ in agents},
        samples=samples,
        events=len(records),
    )


def _shift(record: CallDetailRecord, t0: float) -> CallDetailRecord:
    """Engine times (epoch seconds) -> seconds from the start of the run."""

    def rel(x: float | None) -> float | None:
        return None if x is None else x - t0

    return replace(
        record,
        arrived_at=record.arrived_at - t0,
        offered_at=rel(record.offered_at),
        answered_at=rel(record.answered_at),
        ended_at=record.ended_at - t0,
        callback_requested_at=rel(record.callback_requested_at),
    )
