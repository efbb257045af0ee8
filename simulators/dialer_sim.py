"""The dialer on virtual time: a campaign, its far ends and its agents, in seconds.

The production cores make every decision: :class:`queue_engine.router.Router` routes
the answered calls (and any inbound calls, for blending), :class:`queue_engine.pacing.Pacer`
decides how many numbers to dial, :class:`queue_engine.campaign.Campaign` picks the leads
and keeps the rules. This module plays only the world around them: the far ends (a
person, an answering machine, busy or no answer, after a ring time drawn at random),
inbound callers, and agents who take every offer at once (auto-answer, as predictive
dialing needs), talk for a handle time and wrap up by the queue's timer.

A person answered with no agent on the call within the answer window (2 s) is
abandoned: the router is told the caller hung up (after the dialer's message), and the
campaign and pacer count it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from cti.errors import RoutingError
from cti.models import AgentConfig, AgentState, CallDetailRecord, CallerInfo, QueueConfig
from queue_engine import inputs as ri
from queue_engine.actions import Action, AgentStateSet, ConnectCall, OfferCall, RecordCall
from queue_engine.campaign import Campaign, CampaignRules, Lead, Outcome, in_calling_hours
from queue_engine.pacing import (
    Capacity,
    DialMode,
    DialResult,
    Pacer,
    PacingSettings,
    agents_for_service_level,
    dialer_agents,
)
from queue_engine.router import CallPhase, Router
from telephony_adapters.base import TelephonyAdapter

CAMPAIGN_QUEUE = "campaign"
INBOUND_QUEUE = "inbound"


@dataclass(frozen=True)
class DialerScenario:
    """A campaign day. Rates are shares of dials; the rest ring out (no answer)."""

    mode: DialMode = DialMode.PREDICTIVE
    agents: int = 50
    duration_s: float = 8 * 3600.0
    contact_rate: float = 0.20
    machine_rate: float = 0.10
    busy_rate: float = 0.10
    mean_talk_s: float = 120.0
    wrap_up_s: float = 10.0
    leads: int = 60_000
    zones: tuple[str, ...] = ("America/New_York", "America/Chicago", "America/Los_Angeles")
    start_local: str = "2026-03-05T09:00"
    """When the day starts, in the first zone's local time."""
    pacing: PacingSettings = field(default_factory=PacingSettings)
    rules: CampaignRules = field(default_factory=CampaignRules)
    tick_s: float = 1.0
    inbound_rate_per_hour: float = 0.0
    """Inbound calls to the blended agents (0: a campaign-only day)."""
    inbound_mean_handle_s: float = 180.0
    inbound_sl_target_s: float = 20.0
    inbound_sl_goal: float = 0.8
    seed: int = 1


@dataclass
class FarEnd:
    """Who answers a dial, and after how long: a person (after 3 s plus an exponential
    of mean 5 s), an answering machine (4 s + mean 6 s), a busy line (1-4 s), or nobody
    (ringing out at the timeout)."""

    contact_rate: float
    machine_rate: float
    busy_rate: float
    rng: random.Random

    def draw(self, ring_timeout_s: float) -> tuple[DialResult, float]:
        rng, draw = self.rng, self.rng.random()
        if draw < self.contact_rate:
            return DialResult.HUMAN, min(ring_timeout_s, 3.0 + rng.expovariate(1 / 5.0))
        draw -= self.contact_rate
        if draw < self.machine_rate:
            return DialResult.MACHINE, min(ring_timeout_s, 4.0 + rng.expovariate(1 / 6.0))
        if draw - self.machine_rate < self.busy_rate:
            return DialResult.BUSY, rng.uniform(1.0, 4.0)
        return DialResult.NO_ANSWER, ring_timeout_s

    async def place(
        self, line: TelephonyAdapter, number: str, call_id: str, ring_timeout_s: float
    ) -> DialResult:
        """The far end of a real shell's dial (:class:`cti.engine.dialer.DialingLine`'s
        ``place``): rings on the loop's clock, then puts answered calls up on ``line``."""
        result, after = self.draw(ring_timeout_s)
        await asyncio.sleep(after)
        if result in (DialResult.HUMAN, DialResult.MACHINE):
            await line.dial(number, call_id=call_id)
        return result


@dataclass
class DialerResult:
    mode: str
    dials: int
    live: int
    abandoned: int
    machines: int
    talk_occupancy: float
    """Talking time / staffed time (not in Not Ready)."""
    occupancy: float
    """Talk and wrap-up / staffed time."""
    dials_outside_hours: int
    dials_on_dnc: int
    final_gain: float
    inbound_offered: int = 0
    inbound_service_level: float | None = None
    records: list[CallDetailRecord] = field(default_factory=list)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "dials": self.dials,
            "live_answers": self.live,
            "abandoned": self.abandoned,
            "abandon_rate": round(self.abandon_rate, 5),
            "machines": self.machines,
            "talk_occupancy": round(self.talk_occupancy, 5),
            "occupancy": round(self.occupancy, 5),
            "dials_outside_hours": self.dials_outside_hours,
            "dials_on_dnc": self.dials_on_dnc,
            "inbound_offered": self.inbound_offered,
            "inbound_service_level": self.inbound_service_level,
        }


@dataclass
class _Agent:
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    queue: str = ""
    """The queue of the call in hand."""
    deadline: float | None = None
    seconds: dict[AgentState, float] = field(default_factory=dict)


def run_campaign_day(scenario: DialerScenario) -> DialerResult:
    """Simulate one campaign day of ``scenario`` (see the module docstring)."""
    return _Day(scenario).run()


class _Day:
    def __init__(self, sc: DialerScenario) -> None:
        self.sc = sc
        self.rng = random.Random(sc.seed)
        self.far_end = FarEnd(sc.contact_rate, sc.machine_rate, sc.busy_rate, self.rng)
        first_zone = ZoneInfo(sc.zones[0])
        self.start_wall = (
            datetime.fromisoformat(sc.start_local).replace(tzinfo=first_zone).timestamp()
        )
        self.now = 0.0
        self.heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        blended = sc.inbound_rate_per_hour > 0
        queues = [
            QueueConfig(name=CAMPAIGN_QUEUE, priority=1000.0, wrap_up_s=sc.wrap_up_s),
            QueueConfig(
                name=INBOUND_QUEUE, wrap_up_s=sc.wrap_up_s, sl_target_s=sc.inbound_sl_target_s
            ),
        ]
        serves = {CAMPAIGN_QUEUE: 0.0, INBOUND_QUEUE: 0.0} if blended else {CAMPAIGN_QUEUE: 0.0}
        ids = [f"a{i}" for i in range(1, sc.agents + 1)]
        self.router = Router(
            queues, agents=[AgentConfig(id=a, queues=serves) for a in ids], seed=sc.seed
        )
        self.agents = {a: _Agent() for a in ids}
        self.inbound_needed = (
            agents_for_service_level(
                sc.inbound_rate_per_hour,
                sc.inbound_mean_handle_s + sc.wrap_up_s,
                sc.inbound_sl_target_s,
                sc.inbound_sl_goal,
            )
            if blended
            else 0
        )
        leads = [
            Lead(
                i, f"+1{200 + i % len(sc.zones)}{2_000_000 + i:07d}", (sc.zones[i % len(sc.zones)],)
            )
            for i in range(1, sc.leads + 1)
        ]
        self.campaign = Campaign("sim", sc.rules, leads=leads)
        self.pacer = Pacer(sc.pacing.model_copy(update={"mode": sc.mode}))
        self.lead_of: dict[str, int] = {}
        self.in_flight = 0
        self.dialled_at: dict[str, float] = {}
        self.waiting: set[str] = set()
        self.dials = self.machines = self.live = self.abandoned = 0
        self.outside_hours = self.on_dnc = 0
        self.records: list[CallDetailRecord] = []
        self._ids = itertools.count(1)

    # --- the loop ------------------------------------------------------------------

    def at(self, t: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.heap, (t, next(self._seq), fn))

    def run(self) -> DialerResult:
        sc = self.sc
        for agent_id in self.agents:
            self._ask(ri.AgentLogsIn(agent_id=agent_id))  # at 0
            self._ask(ri.AgentGoesReady(agent_id=agent_id))
        self.at(0.0, self._tick)
        if sc.inbound_rate_per_hour > 0:
            self._next_inbound()
        end = sc.duration_s
        while True:
            deadline = self.router.next_deadline()
            if self.heap and (deadline is None or self.heap[0][0] < deadline):
                t, _, fn = heapq.heappop(self.heap)
                if t > end:
                    break
                self.now = max(self.now, t)
                fn()
            elif deadline is not None and deadline <= end:
                self.now = max(self.now, deadline)
                self.apply(self.router.handle(ri.TimePasses(), deadline))
            else:
                break
        self.now = end
        for agent in self.agents.values():
            self._account(agent)
        return self._result()

    def _result(self) -> DialerResult:
        talk = staffed = busy = 0.0
        for agent in self.agents.values():
            s = agent.seconds
            talk += s.get(AgentState.TALKING, 0.0)
            busy += s.get(AgentState.TALKING, 0.0) + s.get(AgentState.WRAP_UP, 0.0)
            staffed += sum(v for k, v in s.items() if k is not AgentState.NOT_READY)
        inbound = [r for r in self.records if r.queue == INBOUND_QUEUE]
        within = sum(
            1
            for r in inbound
            if r.answered_at is not None
            and r.answered_at - r.arrived_at <= self.sc.inbound_sl_target_s
        )
        return DialerResult(
            mode=self.sc.mode.value,
            dials=self.dials,
            live=self.live,
            abandoned=self.abandoned,
            machines=self.machines,
            talk_occupancy=talk / staffed if staffed else 0.0,
            occupancy=busy / staffed if staffed else 0.0,
            dials_outside_hours=self.outside_hours,
            dials_on_dnc=self.on_dnc,
            final_gain=self.pacer.gain,
            inbound_offered=len(inbound),
            inbound_service_level=within / len(inbound) if inbound else None,
            records=self.records,
        )

    def apply(self, actions: list[Action]) -> None:
        todo = list(actions)
        for action in todo:
            if isinstance(action, OfferCall):  # auto-answer: the agent takes it at once
                try:
                    accepts = ri.AgentAccepts(agent_id=action.agent_id, call_id=action.call_id)
                    todo.extend(self.router.handle(accepts, self.now))
                except RoutingError:
                    continue
            elif isinstance(action, AgentStateSet):
                self._state(action)
            elif isinstance(action, ConnectCall):
                self._connected(action)
            elif isinstance(action, RecordCall):
                self._record(action.cdr)

    def _ask(self, event: ri.AnyInput) -> None:
        try:
            self.apply(self.router.handle(event, self.now))
        except RoutingError:
            return

    # --- pacing --------------------------------------------------------------------

    def capacity(self) -> Capacity:
        ready = talking = inbound_busy = 0
        wraps: list[float] = []
        for agent in self.agents.values():
            if agent.state is AgentState.READY:
                ready += 1
            elif agent.queue == INBOUND_QUEUE and agent.state in (
                AgentState.RESERVED,
                AgentState.TALKING,
                AgentState.WRAP_UP,
            ):
                inbound_busy += 1
            elif agent.state is AgentState.TALKING:
                talking += 1
            elif agent.state is AgentState.WRAP_UP and agent.deadline is not None:
                wraps.append(agent.deadline - self.now)
        if self.sc.inbound_rate_per_hour > 0:
            ready = dialer_agents(
                ready_campaign_only=0,
                ready_blended=ready,
                inbound_busy=inbound_busy,
                ready_inbound_only=0,
                inbound_needed=self.inbound_needed,
                inbound_waiting=self.router.waiting(INBOUND_QUEUE),
            )
        return Capacity(
            ready=ready,
            talking=talking,
            wrap_up_ends_in=tuple(wraps),
            waiting=len(self.waiting),
            in_flight=self.in_flight,
            in_flight_ages=tuple(self.now - t for t in self.dialled_at.values()),
        )

    def _tick(self) -> None:
        wall = self.start_wall + self.now
        decision = self.pacer.decide(self.capacity(), self.campaign.abandon_figures(wall))
        if decision.dials > 0:
            for dial in self.campaign.next_dials(wall, decision.dials):
                self._place(dial.lead, wall)
        if self.now + self.sc.tick_s <= self.sc.duration_s:
            self.at(self.now + self.sc.tick_s, self._tick)

    def _place(self, lead: Lead, wall: float) -> None:
        sc = self.sc
        self.dials += 1
        self.in_flight += 1
        # The checks the campaign made, made again independently: must never count.
        if not in_calling_hours(lead.zones, wall, sc.rules.hours):
            self.outside_hours += 1
        if self.campaign.on_dnc(lead.number):
            self.on_dnc += 1
        call_id = f"o{next(self._ids)}"
        self.lead_of[call_id] = lead.lead_id
        self.dialled_at[call_id] = self.now
        result, after = self.far_end.draw(sc.rules.ring_timeout_s)
        self.at(self.now + after, partial(self._dial_ends, call_id, result, after))

    def _dial_ends(self, call_id: str, result: DialResult, after: float) -> None:
        self.in_flight -= 1
        del self.dialled_at[call_id]
        self.pacer.record_dial(result, after)
        lead_id = self.lead_of[call_id]
        wall = self.start_wall + self.now
        if result is not DialResult.HUMAN:
            self.machines += result is DialResult.MACHINE
            self.lead_of.pop(call_id)
            self.campaign.outcome(lead_id, Outcome.of(result), wall)
            return
        self.live += 1
        lead = self.campaign.leads[lead_id]
        caller = CallerInfo(ani=lead.number, e164=lead.number)
        self.waiting.add(call_id)
        self._ask(ri.CallArrives(call_id=call_id, queue=CAMPAIGN_QUEUE, caller=caller))
        self.at(self.now + self.sc.rules.answer_window_s, partial(self._window_over, call_id))

    def _window_over(self, call_id: str) -> None:
        if call_id not in self.waiting:
            return  # an agent took it in time
        self.waiting.discard(call_id)
        if self.router.call_phase(call_id) in (CallPhase.QUEUED, CallPhase.OFFERED):
            self.abandoned += 1
            self.pacer.record_live(True)
            wall = self.start_wall + self.now
            self.campaign.outcome(self.lead_of[call_id], Outcome.ABANDONED, wall)
            self._ask(ri.CallerHangsUp(call_id=call_id))

    # --- agents and calls ----------------------------------------------------------

    def _connected(self, action: ConnectCall) -> None:
        call_id = action.call_id
        if call_id in self.waiting:  # a campaign call, within its window
            self.waiting.discard(call_id)
            self.pacer.record_live(False)
            wall = self.start_wall + self.now
            self.campaign.outcome(self.lead_of[call_id], Outcome.CONNECTED, wall)
            talk = self.rng.expovariate(1 / self.sc.mean_talk_s)
        else:
            talk = self.rng.expovariate(1 / self.sc.inbound_mean_handle_s)
        self.at(self.now + talk, partial(self._hang_up, action.agent_id, call_id))

    def _hang_up(self, agent_id: str, call_id: str) -> None:
        self._ask(ri.AgentHangsUp(agent_id=agent_id, call_id=call_id))

    def _state(self, action: AgentStateSet) -> None:
        agent = self.agents[action.agent_id]
        self._account(agent)
        agent.state = action.state
        agent.deadline = action.deadline
        if action.call_id is not None and action.state is AgentState.RESERVED:
            agent.queue = self.router.call_queue(action.call_id)

    def _account(self, agent: _Agent) -> None:
        if agent.state is not AgentState.LOGGED_OUT and self.now > agent.since:
            agent.seconds[agent.state] = agent.seconds.get(agent.state, 0.0) + (
                self.now - agent.since
            )
        agent.since = self.now

    def _record(self, cdr: CallDetailRecord) -> None:
        self.records.append(cdr)
        lead_id = self.lead_of.pop(cdr.call_id, None)
        if lead_id is not None and cdr.outcome == "answered" and cdr.answered_at is not None:
            self.pacer.record_handle(cdr.ended_at - cdr.answered_at, cdr.wrap_up_s)
            wall = self.start_wall + self.now
            self.campaign.disposition(lead_id, cdr.disposition, wall)

    # --- inbound -------------------------------------------------------------------

    def _next_inbound(self) -> None:
        gap = self.rng.expovariate(self.sc.inbound_rate_per_hour / 3600.0)
        if math.isfinite(gap) and self.now + gap < self.sc.duration_s:
            self.at(self.now + gap, self._inbound)

    def _inbound(self) -> None:
        call_id = f"i{next(self._ids)}"
        caller = CallerInfo(ani="+12025550000", e164="+12025550000")
        self._ask(ri.CallArrives(call_id=call_id, queue=INBOUND_QUEUE, caller=caller))
        self._next_inbound()
