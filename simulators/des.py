"""The discrete-event runner: one simulated day on the production router, on virtual time.

There is no second copy of the routing rules: every decision is made by
:class:`queue_engine.router.Router`, driven through the same inputs the engine service
gives it. This module only plays the world around it: callers arriving (Poisson, with
rates per interval), waiting until their patience runs out or asking for a callback,
and agents who log in and out by shift, take breaks, accept offers, talk for a handle
time and wrap up. Time jumps from event to event; nothing sleeps.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from cti.errors import RoutingError
from cti.models import (
    AgentConfig,
    AgentState,
    CallDetailRecord,
    CallerInfo,
    CallerKind,
    Customer,
    Segment,
)
from queue_engine import inputs as ri
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    DisconnectCall,
    OfferCall,
    RecordCall,
)
from queue_engine.members import LOGGED_OUT, NOT_READY, READY, RESERVED, TALKING, WRAP_UP
from queue_engine.router import Router
from queue_engine.stats import BUSY_STATES, AgentTime
from simulators.des_parts import Agenda, Draw, Inputs, Stream, expovariate
from simulators.flow_calls import CallerFlows, FlowCounts
from simulators.scenario import AgentGroup, Scenario, Traffic

_CALL_ARRIVES: Final = Inputs(
    ri.CallArrives,
    {"call_id": "c0", "queue": "q", "caller": CallerInfo(ani="", kind=CallerKind.UNKNOWN)},
)
_AGENT_ACCEPTS: Final = Inputs(ri.AgentAccepts, {"agent_id": "a", "call_id": "c0"})
_AGENT_HANGS_UP: Final = Inputs(ri.AgentHangsUp, {"agent_id": "a", "call_id": "c0"})
_AGENT_FINISHES_WRAP_UP: Final = Inputs(
    ri.AgentFinishesWrapUp, {"agent_id": "a", "call_id": "c0", "disposition": "done"}
)
_INF: Final = math.inf
_BUSY: Final = BUSY_STATES
"""Compiled, a Final is a C constant (a module global is a dict lookup each time)."""

#: After arrivals stop, calls still in progress get at most this long to finish.
DRAIN_LIMIT_S = 6 * 3600.0
#: How often the waiting calls and staffed agents are sampled for the day's chart.
SAMPLE_EVERY_S = 60.0


@dataclass
class Sample:
    """The center at one moment: for the chart of the day."""

    t: float
    waiting: int
    staffed: int
    busy: int


@dataclass
class DayResult:
    """One replication: every finished call, agents' time, and samples over the day."""

    records: list[CallDetailRecord]
    labels: dict[str, str]
    """Call id -> the value group label of its caller (the scenario's ``values``)."""
    agent_time: dict[str, AgentTime]
    agent_queues: dict[str, list[str]]
    samples: list[Sample]
    events: int
    flows: FlowCounts | None = None
    """What the call flows did (None: no traffic has a flow)."""


@dataclass
class _Agent:
    agent_id: str
    group: AgentGroup
    time: AgentTime
    """Its time by kind (the day's ``agent_time`` holds the same object)."""
    wrap_up: Draw
    state: AgentState = LOGGED_OUT
    since: float = 0.0
    on_break_until: float | None = None
    leaving: bool = False
    """Its shift is over: log out as soon as the call in hand is done."""
    break_pending: float | None = None
    """A break began while busy: take it (until this time) once the call is done."""


class _Call:
    __slots__ = ("rng", "stream", "waiting")

    def __init__(self, stream: Stream, rng: random.Random | None = None) -> None:
        self.stream = stream
        self.waiting = True
        """Still waiting for an agent (so patience and callback offers apply)."""
        self.rng = rng
        """The caller's own random stream (a flow's caller), else the day's is used."""


class _Event:
    """Something due at a time. Events of their own for what every call does (no
    closure, and a compiled call to ``fire``); :class:`_Do` for the rest."""

    def fire(self, sim: _Simulation) -> None:
        raise NotImplementedError


class _Do(_Event):
    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn

    def fire(self, sim: _Simulation) -> None:
        self.fn()


class _Arrival(_Event):
    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def fire(self, sim: _Simulation) -> None:
        sim.arrive(self.stream)


class _GiveUp(_Event):
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id

    def fire(self, sim: _Simulation) -> None:
        sim.give_up(self.call_id)


class _AgentCall(_Event):
    def __init__(self, agent_id: str, call_id: str) -> None:
        self.agent_id = agent_id
        self.call_id = call_id


class _HangUp(_AgentCall):
    """The agent hangs up its call (the handle time is over)."""

    def fire(self, sim: _Simulation) -> None:
        sim.ask(_AGENT_HANGS_UP.make(self.agent_id, self.call_id))


class _WrapUpDone(_AgentCall):
    """The agent finishes its wrap-up (before the queue's cap)."""

    def fire(self, sim: _Simulation) -> None:
        sim.ask(_AGENT_FINISHES_WRAP_UP.make(self.agent_id, self.call_id))


@dataclass
class _World:
    scenario: Scenario
    rng: random.Random
    router: Router
    agents: dict[str, _Agent] = field(default_factory=dict)
    calls: dict[str, _Call] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    records: list[CallDetailRecord] = field(default_factory=list)
    time: dict[str, AgentTime] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    due: Agenda[_Event] = field(default_factory=Agenda)
    """The event queue."""
    now: float = 0.0
    events: int = 0
    streams_open: int = 0
    """Traffic streams whose arrivals have not yet reached the end of the day."""
    staffed: int = 0
    """Agents logged in now."""
    busy: int = 0
    """Agents talking or in wrap-up now."""


def add_measured(
    t: AgentTime, state: AgentState, start: float, stop: float, warm: float, end: float
) -> None:
    """Count ``[start, stop)`` spent in ``state`` within the measured window ``[warm, end)``.

    Runs at every change of every agent: comparisons instead of max() and min().
    """
    if state is LOGGED_OUT:
        return
    start = warm if warm > start else start
    stop = end if end < stop else stop
    if stop > start:
        t.add(state, stop - start)


def run_day(scenario: Scenario, seed: int) -> DayResult:
    """Simulate one day of ``scenario`` with ``seed``; calls in progress at the end of
    arrivals are allowed to finish (up to :data:`DRAIN_LIMIT_S`).

    The cyclic garbage collector is paused for the day: the day allocates a great many
    short-lived objects that reference counting frees, and the collector's passes over
    them cost about a fifth of the run. It is restored, and run once, on the way out.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run_day(scenario, seed)
    finally:
        if collecting:
            gc.enable()
            gc.collect(0)


def _run_day(scenario: Scenario, seed: int) -> DayResult:
    rng = random.Random(seed)
    agents: list[AgentConfig] = []
    for group in scenario.agents:
        for i in range(1, group.count + 1):
            agents.append(
                AgentConfig(id=f"{group.name}-{i}", skills=group.skills, queues=group.queues)
            )
    router = Router(
        scenario.queues,
        max_missed_offers=scenario.max_missed_offers,
        agents=agents,
        seed=rng.randrange(2**31),
    )
    w = _World(scenario, rng, router)
    sim = _Simulation(w)
    for group in scenario.agents:
        wrap_up = Draw(group.wrap_up)
        for i in range(1, group.count + 1):
            sim.add_agent(_Agent(f"{group.name}-{i}", group, AgentTime(), wrap_up))
    for stream in sim.streams:
        w.streams_open += 1
        sim.schedule_arrival(stream, 0.0)
    sim.at(0.0, sim.sample)
    sim.run()
    for agent in w.agents.values():
        sim.account(agent, w.now)
    return DayResult(
        records=w.records,
        labels=w.labels,
        agent_time=w.time,
        agent_queues={a: list(ag.group.queues) for a, ag in w.agents.items()},
        samples=w.samples,
        events=w.events,
        flows=sim.flows.counts if sim.flows is not None else None,
    )


class _Simulation:
    def __init__(self, world: _World) -> None:
        self.w = world
        self._calls = 0
        """Calls that arrived so far (the next one's id is c{this + 1})."""
        self._end = world.scenario.duration_s
        self._warm = world.scenario.warm_up_s
        self._callers: dict[float, tuple[CallerInfo, str]] = {}
        self._last_value = 0.0
        self._last_caller: tuple[CallerInfo, str] | None = None
        """The caller made or found last, and its value (one value all day: every one)."""
        self._wrap_caps: dict[str, float] = {}
        """Queue -> its wrap_up_s (the runner never reconfigures a queue)."""
        self.flows: CallerFlows | None = None
        self._flow_seed = 0
        self.streams: list[Stream] = []
        if any(t.flow for t in world.scenario.traffic):
            # Common random numbers: a flow's arrivals and each of its callers draw from
            # streams of their own, so two variants of a day (with and without virtual
            # hold) get the same callers making the same choices.
            self.flows = CallerFlows(world.scenario, _FlowWorld(self), world.router)
            self._flow_seed = world.rng.randrange(2**62)
            for i, t in enumerate(world.scenario.traffic):
                self.streams.append(Stream(t, random.Random(self._flow_seed + i)))
        else:
            self.streams = [Stream(t, world.rng) for t in world.scenario.traffic]
        self._stream_of = {id(s.traffic): s for s in self.streams}

    # --- the event loop ------------------------------------------------------------

    def at(self, t: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` at ``t``, after everything already due then."""
        self.schedule(t, _Do(fn))

    def schedule(self, t: float, event: _Event) -> None:
        """``event`` fires at ``t``, after everything already due then."""
        self.w.due.add(t, event)

    def run(self) -> None:
        # The hot loop: the clock moved inline (as _clock does). Compiled, the router's
        # methods are called on it (a bound method taken once would be called through
        # Python's calling convention every time).
        w = self.w
        due, calls, router = w.due, w.calls, w.router
        tick = ri.TimePasses()  # one for the day: inputs are immutable
        limit = self._end + DRAIN_LIMIT_S
        events = 0
        while True:
            deadline = router.next_deadline()
            if due and (deadline is None or due.first_time() < deadline):
                t = due.first_time()
                if t > limit:
                    break
                event = due.pop()
                if t > w.now:
                    w.now = t
                event.fire(self)
            elif deadline is not None:
                if deadline > limit:
                    break
                if deadline > w.now:
                    w.now = deadline
                self.apply(router.handle(tick, deadline))
            else:
                break
            events += 1
            if w.streams_open == 0 and not calls:
                break  # every call of the day is finished
        w.events += events
        self._clock(max(w.now, self._end))

    def _clock(self, t: float) -> None:
        self.w.now = max(self.w.now, t)

    # --- routing -------------------------------------------------------------------

    def apply(self, actions: list[Action]) -> None:
        """Carry out the router's actions; the agents' reactions may add more, carried
        out after these, in the order they came (the router's lists are left as they
        are: no copy to extend)."""
        later: list[list[Action]] | None = None
        todo = actions
        while True:
            for action in todo:
                # the action classes are final: isinstance is their exact type
                if isinstance(action, AgentStateSet):
                    self._state(action)
                elif isinstance(action, OfferCall):
                    try:
                        accepts = _AGENT_ACCEPTS.make(action.agent_id, action.call_id)
                        more = self.w.router.handle(accepts, self.w.now)
                    except RoutingError:
                        continue  # e.g. accepting a ring-all offer another agent took first
                    if more:
                        if later is None:
                            later = [more]
                        else:
                            later.append(more)
                elif isinstance(action, ConnectCall):
                    self._connected(action)
                elif isinstance(action, DisconnectCall):
                    self._wrap_up(action)
                elif isinstance(action, RecordCall):
                    self._record(action)
            if not later:
                return
            todo = later.pop(0)

    def ask(self, event: ri.AnyInput) -> None:
        """Give the router an input now and carry out its actions (none if it refuses)."""
        try:
            actions = self.w.router.handle(event, self.w.now)
        except RoutingError:
            return
        self.apply(actions)

    # --- callers -------------------------------------------------------------------

    def schedule_arrival(self, stream: Stream, t: float) -> None:
        """The next Poisson arrival after ``t``, across changes of rate."""
        rng = stream.rng
        if stream.rate >= 0:
            # One rate all day (next_change is never): the loop below in one step.
            if t < self._end and stream.rate > 0:
                gap = expovariate(rng, stream.rate)
                if t + gap < self._end:
                    self.schedule(t + gap, _Arrival(stream))
                    return
            self.w.streams_open -= 1
            return
        traffic = stream.traffic
        while t < self._end:
            rate = traffic.rate_at(t)
            change = min(traffic.next_change(t), self._end)
            if rate <= 0:
                t = change
                continue
            gap = expovariate(rng, rate / 3600.0)
            if t + gap < change:
                self.schedule(t + gap, _Arrival(stream))
                return
            t = change  # memoryless: draw afresh at the new rate
        self.w.streams_open -= 1

    def arrive(self, stream: Stream) -> None:
        w = self.w
        self._calls += 1
        n = self._calls
        call_id = f"c{n}"
        if stream.flow and self.flows is not None:
            self._arrive_in_flow(stream, n, self.flows)
            return
        value, label = stream.draw_value(w.rng)
        caller, segment = self._caller(value)
        w.labels[call_id] = label or segment
        w.calls[call_id] = _Call(stream)
        patience = stream.patience.draw(w.rng)
        if patience < _INF:
            self.schedule(w.now + patience, _GiveUp(call_id))
        offer = stream.callback
        if offer is not None:
            self.at(
                w.now + offer.offer_after_s, partial(self._maybe_callback, call_id, offer.take_up)
            )
        self.ask(_CALL_ARRIVES.make(call_id, stream.queue, caller))
        self.schedule_arrival(stream, w.now)

    def _caller(self, value: float) -> tuple[CallerInfo, str]:
        """A simulated caller of ``value`` and its segment's name: one per distinct value
        (the router reads only the value, segment and customer id; the call id tells
        calls apart)."""
        last = self._last_caller
        if last is not None and value == self._last_value:
            return last  # compiled, a float compared: the dict hashes it
        known = self._callers.get(value)
        if known is None:
            n = len(self._callers) + 1
            number = f"+861990{n:07d}"
            segment = Segment.for_value(value)
            customer = Customer(id=n, name="", value=value, segment=segment)
            caller = CallerInfo(ani=number, e164=number, kind=CallerKind.KNOWN, customer=customer)
            known = (caller, segment.value)
            if len(self._callers) < 10_000:
                self._callers[value] = known
        self._last_value, self._last_caller = value, known
        return known

    def _arrive_in_flow(self, stream: Stream, n: int, flows: CallerFlows) -> None:
        """A caller of a dialled number with a flow: the flow has it until its queue."""
        w = self.w
        call_id = f"c{n}"
        rng = random.Random((self._flow_seed << 32) + n)
        value, label = stream.draw_value(rng)
        caller, segment = self._caller(value)
        w.labels[call_id] = label or segment
        call = w.calls[call_id] = _Call(stream, rng)
        call.waiting = False  # in the flow: no patience, no router yet
        flows.arrive(call_id, stream.traffic, caller, rng)
        self.schedule_arrival(stream, w.now)

    def enqueue(self, call_id: str, queue: str, caller: CallerInfo) -> None:
        """A flow's caller joins ``queue``: its patience starts now (menu time is no wait)."""
        w = self.w
        call = w.calls[call_id]
        call.waiting = True
        patience = call.stream.patience.draw(call.rng or w.rng)
        if patience < _INF:
            self.schedule(w.now + patience, _GiveUp(call_id))
        self.ask(_CALL_ARRIVES.make(call_id, queue, caller))

    def give_up(self, call_id: str) -> None:
        call = self.w.calls.get(call_id)
        if call is not None and call.waiting:
            if self.flows is not None and self.flows.holds(call_id):
                return  # asking for a callback: it waits for the confirmation
            call.waiting = False
            self.ask(ri.CallerHangsUp(call_id=call_id))

    def _maybe_callback(self, call_id: str, take_up: float) -> None:
        call = self.w.calls.get(call_id)
        if call is None or not call.waiting or self.w.rng.random() >= take_up:
            return
        self.ask_callback(call_id, f"+861990{call_id[1:]}")

    def ask_callback(self, call_id: str, number: str) -> None:
        """Virtual hold: the waiting caller hangs up and keeps its place."""
        call = self.w.calls.get(call_id)
        if call is None or not call.waiting:
            return
        call.waiting = False  # hangs up and keeps the place: no more abandoning
        self.ask(ri.CallerAsksCallback(call_id=call_id, number=number))

    def add_task(self, task: ri.CallbackScheduled, traffic: Traffic) -> None:
        """A callback task (a flow's message) joins its queue."""
        call = _Call(self._stream_of[id(traffic)])
        call.waiting = False
        self.w.calls[task.call_id] = call
        self.ask(task)

    def flow_over(self, call_id: str) -> None:
        """A flow's caller left before any queue (hung up in the menu, message left)."""
        self.w.calls.pop(call_id, None)

    # --- agents --------------------------------------------------------------------

    def add_agent(self, agent: _Agent) -> None:
        w = self.w
        w.agents[agent.agent_id] = agent
        w.time[agent.agent_id] = agent.time
        for login, logout, breaks in w.scenario.on_duty(agent.group):
            self.at(login, partial(self._login, agent))
            if math.isfinite(logout):
                self.at(logout, partial(self._logout, agent))
            for start, end in breaks:
                self.at(start, partial(self._break, agent, end))
                self.at(end, partial(self._back, agent))

    def _login(self, agent: _Agent) -> None:
        agent.leaving = False
        self.ask(ri.AgentLogsIn(agent_id=agent.agent_id))
        self.ask(ri.AgentGoesReady(agent_id=agent.agent_id))

    def _logout(self, agent: _Agent) -> None:
        if agent.state in (READY, NOT_READY):
            self.ask(ri.AgentLogsOut(agent_id=agent.agent_id))
        elif agent.state is not LOGGED_OUT:
            agent.leaving = True  # after the call in hand

    def _break(self, agent: _Agent, end: float) -> None:
        if agent.state is READY:
            agent.on_break_until = end
            self.ask(ri.AgentGoesNotReady(agent_id=agent.agent_id, reason="break"))
        elif agent.state in (RESERVED, TALKING, WRAP_UP):
            agent.break_pending = end

    def _back(self, agent: _Agent) -> None:
        agent.break_pending = None
        if agent.on_break_until is not None and agent.state is NOT_READY:
            agent.on_break_until = None
            self.ask(ri.AgentGoesReady(agent_id=agent.agent_id))

    def _state(self, action: AgentStateSet) -> None:
        w = self.w
        agent = w.agents[action.agent_id]
        if agent.since != w.now:  # else no time passed since its last change: nothing to add
            self.account(agent, w.now)
        was = agent.state
        agent.state = action.state
        agent.since = w.now
        # the day's counts for its samples, kept as agents change
        w.staffed += (action.state is not LOGGED_OUT) - (was is not LOGGED_OUT)
        w.busy += (action.state in _BUSY) - (was in _BUSY)
        if action.state is READY:
            if agent.leaving:
                self.ask(ri.AgentLogsOut(agent_id=agent.agent_id))
            elif agent.break_pending is not None and agent.break_pending > w.now:
                end, agent.break_pending = agent.break_pending, None
                agent.on_break_until = end
                self.ask(ri.AgentGoesNotReady(agent_id=agent.agent_id, reason="break"))
        elif action.state is NOT_READY and agent.on_break_until is None:
            if agent.leaving:
                self.ask(ri.AgentLogsOut(agent_id=agent.agent_id))
            elif action.reason not in ("logged in", "break"):
                # a missed or rejected offer: back to work at once
                self.ask(ri.AgentGoesReady(agent_id=agent.agent_id))

    def account(self, agent: _Agent, now: float) -> None:
        """Add the agent's time since its last change to its buckets, counting only the
        measured part of the day (after the warm-up, before the end of arrivals)."""
        add_measured(agent.time, agent.state, agent.since, now, self._warm, self._end)

    def _connected(self, action: ConnectCall) -> None:
        w = self.w
        call = w.calls[action.call_id]
        call.waiting = False
        handle = call.stream.handle.draw(w.rng if call.rng is None else call.rng)
        self.schedule(w.now + handle, _HangUp(action.agent_id, action.call_id))

    def _wrap_up(self, action: DisconnectCall) -> None:
        """The agent finishes wrap-up after its own time, unless the queue's wrap-up
        timer (which the router keeps) ends it first."""
        w = self.w
        agent = w.agents[action.agent_id]
        wrap = agent.wrap_up.draw(w.rng)
        queue = w.router.call_queue(action.call_id)
        cap = self._wrap_caps.get(queue)
        if cap is None:
            cap = self._wrap_caps[queue] = w.router.queue_config(queue).wrap_up_s
        if wrap >= cap:
            return  # the router's timer makes the agent Ready at the cap
        self.schedule(w.now + wrap, _WrapUpDone(action.agent_id, action.call_id))

    def _record(self, action: RecordCall) -> None:
        cdr = action.cdr
        if self.flows is None or not self.flows.take_record(cdr):
            self.w.records.append(cdr)
        calls, call_id = self.w.calls, cdr.call_id
        if call_id in calls:  # compiled, two dict primitives: dict.pop is a method call
            del calls[call_id]

    # --- samples -------------------------------------------------------------------

    def sample(self) -> None:
        w = self.w
        waiting = sum(w.router.waiting(q) for q in w.router.queue_names)
        w.samples.append(Sample(w.now, waiting, w.staffed, w.busy))
        if w.now + SAMPLE_EVERY_S <= self._end:
            self.at(w.now + SAMPLE_EVERY_S, self.sample)


class _FlowWorld:
    """The day as the call flows see it (:class:`simulators.flow_calls.FlowWorld`)."""

    def __init__(self, sim: _Simulation) -> None:
        self._sim = sim

    @property
    def now(self) -> float:
        return self._sim.w.now

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self._sim.at(t, fn)

    def enqueue(self, call_id: str, queue: str, caller: CallerInfo) -> None:
        self._sim.enqueue(call_id, queue, caller)

    def waiting(self, call_id: str) -> bool:
        call = self._sim.w.calls.get(call_id)
        return call is not None and call.waiting

    def ask_callback(self, call_id: str, number: str) -> None:
        self._sim.ask_callback(call_id, number)

    def add_task(self, task: ri.CallbackScheduled, traffic: Traffic) -> None:
        self._sim.add_task(task, traffic)

    def flow_over(self, call_id: str) -> None:
        self._sim.flow_over(call_id)
