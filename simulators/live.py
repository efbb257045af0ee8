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
import contextlib
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import replace

from cti import topics
from cti.bus.memory import InMemoryBus
from cti.config import Config, EngineSettings
from cti.engine.running import running_engine
from cti.engine.service import EngineService
from cti.errors import SimulationError
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
    if any(t.flow for t in scenario.traffic):
        raise SimulationError(
            "--live sends calls to queues; a traffic with a flow (menus, virtual hold) "
            "runs in the discrete-event day only"
        )
    rng = random.Random(seed)
    duration = scenario.duration_s if minutes is None else min(scenario.duration_s, minutes * 60)
    queues = [q.name for q in scenario.queues]
    engine = EngineSettings(
        max_missed_offers=scenario.max_missed_offers,
        default_queue=queues[0],
        dnis_queues={f"queue:{q}": q for q in queues},
        seed=rng.randrange(2**31),
    )
    run = _LiveRun(scenario, rng, duration, answer_delay_s, progress)
    async with running_engine(
        Config(engine=engine, queues=scenario.queues),
        run.bus,
        directory=run.directory,
        lines=list(run.trunks.values()),
        agents=[a for a, _ in run.agents],
        web=False,
    ) as service:
        await run.play(service)
    return run.result()


async def calls_finished(service: EngineService, limit_s: float) -> None:
    """Wait until ``service`` has no call in progress, at most ``limit_s`` (each call's
    end writes its record, which wakes the wait)."""
    ended = asyncio.Event()

    def on_record(_record: CallDetailRecord) -> None:
        ended.set()

    service.record_listeners.append(on_record)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                while service.router.active_call_ids():
                    ended.clear()
                    await ended.wait()
    finally:
        service.record_listeners.remove(on_record)


class _LiveRun:
    """One live run: the callers, the agents on duty and what is measured of them."""

    def __init__(
        self,
        scenario: Scenario,
        rng: random.Random,
        duration: float,
        answer_delay_s: float,
        progress: Callable[[float], None] | None,
    ) -> None:
        self.scenario = scenario
        self.rng = rng
        self.duration = duration
        self.answer_delay_s = answer_delay_s
        self.progress = progress
        self.bus = InMemoryBus()
        self.trunks = {
            t.queue: SimTrunk(f"sim-{t.queue}", dnis=f"queue:{t.queue}") for t in scenario.traffic
        }
        self.directory = _Directory()
        self.agents = _agents(scenario)
        self.records: list[CallDetailRecord] = []
        self.labels: dict[str, str] = {}
        self.times = {a.id: AgentTime() for a, _ in self.agents}
        self.samples: list[Sample] = []
        self.last: dict[str, tuple[AgentState, float]] = {}
        """Each agent's state and since when (seconds from the start)."""
        self._handle = {t.queue: t.handle.draw for t in scenario.traffic}
        self._numbers = itertools.count(1)
        self._service: EngineService | None = None
        self._t0 = 0.0

    @property
    def service(self) -> EngineService:
        assert self._service is not None, "the run has not started"
        return self._service

    def since_start(self) -> float:
        return self.service.now() - self._t0

    async def play(self, service: EngineService) -> None:
        """Arrivals until the end, then at most :data:`DRAIN_LIMIT_S` for the calls in
        progress; agents on duty by shift meanwhile."""
        self._service = service
        self._t0 = service.now()
        service.record_listeners.append(self.records.append)
        loop = asyncio.get_running_loop()
        helpers = [
            loop.create_task(self._account_states(), name="live:states"),
            loop.create_task(self._sample(), name="live:samples"),
        ]
        helpers += [
            loop.create_task(self._agent_on_duty(a, g), name=f"live:{a.id}") for a, g in self.agents
        ]
        try:
            async with asyncio.TaskGroup() as callers:
                streams = [
                    callers.create_task(self._arrivals(t, callers), name="live:arrivals")
                    for t in self.scenario.traffic
                ]
                await asyncio.gather(*streams)
            await calls_finished(service, DRAIN_LIMIT_S)
            if self.progress is not None:
                self.progress(1.0)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        for agent_id, (state, since) in self.last.items():
            self._measure(agent_id, state, since, self.since_start())

    def result(self) -> DayResult:
        return DayResult(
            records=[_shift(r, self._t0) for r in self.records],
            labels=self.labels,
            agent_time=self.times,
            agent_queues={a.id: list(a.queues) for a, _ in self.agents},
            samples=self.samples,
            events=len(self.records),
        )

    async def _caller(self, trunk: SimTrunk, traffic: Traffic) -> None:
        rng = self.rng
        value, label = traffic.draw_value(rng)
        e164 = f"+86199{next(self._numbers):08d}"
        self.directory.add(e164, value)
        call_id = trunk.ring(e164)
        self.labels[call_id] = label or Segment.for_value(value).value
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

    async def _arrivals(self, traffic: Traffic, tg: asyncio.TaskGroup) -> None:
        trunk = self.trunks[traffic.queue]
        while True:
            t = self.since_start()
            if t >= self.duration:
                return
            rate = traffic.rate_at(t)
            change = min(traffic.next_change(t), self.duration)
            if rate <= 0:
                await asyncio.sleep(change - t)
                continue
            gap = self.rng.expovariate(rate / 3600.0)
            if t + gap >= change:
                await asyncio.sleep(change - t)
                continue
            await asyncio.sleep(gap)
            tg.create_task(self._caller(trunk, traffic), name="live:caller")

    async def _agent_on_duty(self, config: AgentConfig, group: AgentGroup) -> None:
        behaviour = BotBehaviour(
            answer_delay_s=self.answer_delay_s,
            wrap_up_s=group.wrap_up.mean,
            handle_by_queue=self._handle,
        )
        for login, logout, _breaks in self.scenario.on_duty(group):
            await asyncio.sleep(max(0.0, login - self.since_start()))
            if self.since_start() >= self.duration:
                return
            bot = BotAgent(self.bus, config.id, behaviour, random.Random(self.rng.random()))
            working = asyncio.create_task(bot.run())
            if math.isinf(logout):
                await working
                return
            await asyncio.sleep(max(0.0, logout - self.since_start()))
            working.cancel()
            await asyncio.gather(working, return_exceptions=True)
            await self.bus.publish(topics.agent_commands(config.id), Logout(agent_id=config.id))

    async def _account_states(self) -> None:
        async with self.bus.subscribe(topics.ALL_AGENT_STATES) as states:
            async for _topic, message in states:
                if not isinstance(message, AgentStateChanged):
                    continue
                now = self.since_start()
                previous = self.last.get(message.agent_id)
                if previous is not None:
                    self._measure(message.agent_id, previous[0], previous[1], now)
                self.last[message.agent_id] = (message.state, now)

    def _measure(self, agent_id: str, state: AgentState, since: float, until: float) -> None:
        add_measured(
            self.times[agent_id], state, since, until, self.scenario.warm_up_s, self.duration
        )

    async def _sample(self) -> None:
        service = self.service
        while self.since_start() <= self.duration:
            now = service.now()
            snaps = [service.router.snapshot(q.name, now) for q in self.scenario.queues]
            states = [service.router.agent(a.id).state for a, _ in self.agents]
            self.samples.append(
                Sample(
                    self.since_start(),
                    sum(s.waiting for s in snaps),
                    sum(s is not AgentState.LOGGED_OUT for s in states),
                    sum(s in (AgentState.TALKING, AgentState.WRAP_UP) for s in states),
                )
            )
            if self.progress is not None:
                self.progress(min(1.0, self.since_start() / self.duration))
            await asyncio.sleep(SAMPLE_EVERY_S)


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
