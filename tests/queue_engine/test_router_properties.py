"""Property tests of the router: random operation sequences keep every invariant.

A rule-based state machine drives the router with random calls, agent requests, caller
hang-ups and the passing of time, and after every step checks the invariants of the
router's module docstring against both its public views and the actions it returned.

Queue parameters, values and times are chosen so that every rank is exactly
representable (small dyadic rationals): the rank comparisons below are exact.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from cti.errors import RoutingError
from cti.models import AgentConfig, AgentState, CallerInfo, CallerKind, Customer, QueueConfig
from queue_engine import inputs as ri
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    DisconnectCall,
    OfferCall,
    RecordCall,
    RecordLeg,
    WithdrawOffer,
)
from queue_engine.priority import rank, starvation_bound_s
from queue_engine.router import MISSED_OFFER, NOT_READY_AFTER_CALL, CallPhase, Router
from queue_engine.timers import WRAP_UP_TIMED_OUT
from tests.queue_engine import machine_base as mb
from tests.queue_engine.requests import agent_input, call_input

QUEUES = (
    QueueConfig(name="q1", value_weight=1.0, aging_rate=1.0, offer_timeout_s=15.0, wrap_up_s=10.0),
    QueueConfig(
        name="q2",
        priority=20.0,
        value_weight=0.5,
        aging_rate=2.0,
        offer_timeout_s=10.0,
        wrap_up_s=5.0,
    ),
)
CONFIG = {q.name: q for q in QUEUES}
AGENTS = {"a0": ("q1",), "a1": ("q2",), "a2": ("q1", "q2"), "a3": ("q2", "q1")}
BUSY_PHASE = {
    AgentState.RESERVED: CallPhase.OFFERED,
    AgentState.TALKING: CallPhase.TALKING,
    AgentState.WRAP_UP: CallPhase.WRAP_UP,
}

agent_ids = st.sampled_from(sorted(AGENTS))
time_steps = st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0])


def make_caller(value: int, n: int) -> CallerInfo:
    customer = Customer(id=n, name=f"c{n}", value=float(value))
    return CallerInfo(ani=f"+1555{n:07d}", kind=CallerKind.KNOWN, customer=customer)


class RouterMachine(mb.MachineBase):
    """Drives one router; mirrors what its actions say and checks the two agree."""

    AGENT_IDS = tuple(sorted(AGENTS))
    QUEUE_NAMES = tuple(CONFIG)

    def __init__(self) -> None:
        super().__init__()
        # what we know about every call we ever enqueued
        self.queue_of: dict[str, str] = {}
        self.value_of: dict[str, int] = {}
        self.seq: dict[str, int] = {}
        # the world as the actions describe it
        self.waiting: dict[str, set[str]] = {q.name: set() for q in QUEUES}
        self.offers: dict[str, str] = {}  # call -> agent ringing with it
        self.engaged: dict[str, str] = {}  # agent -> call talked on or wrapped up
        self.dispositions: dict[str, str] = {}
        self.max_missed = 1
        self.ready_since: dict[str, tuple[float, int]] = {}  # Ready agents: since, order
        self.readies = 0  # how many times an agent went Ready, for ties
        self.missed: Counter[str] = Counter()  # offers missed since the last accept/Ready
        self.after_miss: dict[str, bool] = {}  # agent -> must the next state be "missed"?
        self.not_ready_later: set[str] = set()  # asked for Not Ready while busy
        self.after_call: dict[str, bool] = {}  # agent -> must the next state be Not Ready?
        self.freed: set[str] = set()  # agents whose offered caller hung up

    # --- plumbing -----------------------------------------------------------------

    def fingerprint(self) -> object:
        r = self.r
        return (
            [r.agent(a) for a in r.agent_ids()],
            sorted((c, r.call_phase(c)) for c in r.active_call_ids()),
            [r.snapshot(q, self.now) for q in r.queue_names],
            [r.waiting_in_order(q) for q in r.queue_names],
            r.next_deadline(),
        )

    def order_key(self, call_id: str) -> tuple[float, float, int]:
        """Rank at now (best first), then arrival, then enqueue order."""
        cfg = CONFIG[self.queue_of[call_id]]
        at = self.arrived[call_id]
        return (-rank(cfg, self.value_of[call_id], at, self.now), at, self.seq[call_id])

    def request(self, event: ri.AnyInput) -> None:
        """Make a request; a refused one must change nothing, a granted one is absorbed."""
        before = self.fingerprint()
        agent = getattr(event, "agent_id", "")
        agent_state = self.r.agent(agent).state if self.r.has_agent(agent) else None
        refusal: str | None = None
        try:
            out = self.r.handle(event, self.now)
        except RoutingError as e:
            refusal = str(e)
        if refusal is not None:
            assert refusal, "a refusal says what was wrong"
            assert self.fingerprint() == before, f"refused {event!r} changed the state"
            return
        if isinstance(event, ri.AgentGoesReady) and agent_state is AgentState.NOT_READY:
            self.missed[agent] = 0
        busy = (AgentState.TALKING, AgentState.WRAP_UP)
        if isinstance(event, ri.AgentGoesNotReady) and agent_state in busy:
            self.not_ready_later.add(agent)
        self.absorb(out)

    def absorb(self, actions: list[Action]) -> None:
        """Replay the actions on the mirror, checking each against the invariants."""
        for action in actions:
            if isinstance(action, OfferCall):
                self.on_offer(action)
            elif isinstance(action, WithdrawOffer):
                assert self.offers.pop(action.call_id) == action.agent_id
                if action.reason in ("timeout", "rejected"):
                    self.waiting[self.queue_of[action.call_id]].add(action.call_id)
                if action.reason == "caller_hung_up":
                    self.freed.add(action.agent_id)
                if action.reason == "timeout":
                    self.missed[action.agent_id] += 1
                    self.after_miss[action.agent_id] = (
                        self.missed[action.agent_id] >= self.max_missed
                    )
            elif isinstance(action, ConnectCall):
                assert self.offers.pop(action.call_id) == action.agent_id
                assert action.agent_id not in self.engaged
                self.engaged[action.agent_id] = action.call_id
                self.missed[action.agent_id] = 0
            elif isinstance(action, DisconnectCall):
                assert self.engaged[action.agent_id] == action.call_id
            elif isinstance(action, RecordCall):
                self.on_record(action)
            elif isinstance(action, RecordLeg):
                # The agent left a call that goes on (it logged out while talking: the
                # caller is back in its queue, with its age).
                assert self.engaged.pop(action.agent_id) == action.call_id
                self.waiting[self.queue_of[action.call_id]].add(action.call_id)
            elif isinstance(action, AgentStateSet):
                self.on_state(action)

    def on_offer(self, offer: OfferCall) -> None:
        call, agent, queue = offer.call_id, offer.agent_id, offer.queue
        assert queue == self.queue_of[call]
        assert call not in self.offers, f"{call} offered to two agents"
        assert agent not in self.offers.values(), f"{agent} rung with two calls"
        assert agent not in self.engaged, f"{agent} offered {call} while on a call"
        assert queue in AGENTS[agent]
        assert offer.deadline == self.now + CONFIG[queue].offer_timeout_s
        self.waiting[queue].discard(call)
        # Starvation bound: nobody still waiting in this queue came more than the
        # bound before the call just taken.
        bound = starvation_bound_s(CONFIG[queue])
        for other in self.waiting[queue]:
            assert not (self.arrived[other] < self.arrived[call] - bound), (
                f"{call} (arrived {self.arrived[call]}) taken before {other} "
                f"(arrived {self.arrived[other]}), bound {bound}s"
            )
        # Stronger: it is the best waiting call, by rank now, of the agent's queues.
        rivals = [c for q in AGENTS[agent] for c in self.waiting[q]]
        if rivals:
            best = min(rivals, key=self.order_key)
            assert self.order_key(call) < self.order_key(best), f"{call} offered before {best}"
        self.offers[call] = agent

    def on_record(self, record: RecordCall) -> None:
        cdr = record.cdr
        call = cdr.call_id
        assert call in self.queue_of, f"record of a call never enqueued: {call}"
        self.records[call] += 1
        assert self.records[call] == 1, f"{call} recorded twice"
        assert call not in self.offers
        assert (cdr.queue, cdr.arrived_at, cdr.value) == (
            self.queue_of[call],
            self.arrived[call],
            self.value_of[call],
        )
        self.waiting[cdr.queue].discard(call)
        if cdr.outcome == "answered":
            assert cdr.agent_id is not None
            assert self.engaged.pop(cdr.agent_id) == call
            self.after_call[cdr.agent_id] = cdr.agent_id in self.not_ready_later
            self.not_ready_later.discard(cdr.agent_id)
            assert cdr.offered_at is not None
            assert cdr.answered_at is not None
            assert cdr.arrived_at <= cdr.offered_at <= cdr.answered_at <= cdr.ended_at
            assert cdr.disposition == self.dispositions.pop(cdr.agent_id, WRAP_UP_TIMED_OUT)
        else:
            assert cdr.outcome == "abandoned"
            assert cdr.agent_id is None
            assert cdr.answered_at is None
            assert call not in self.engaged.values()

    def on_state(self, s: AgentStateSet) -> None:
        agent = s.agent_id
        if agent in self.after_miss:  # the first state after a missed offer
            missed_out = s.state is AgentState.NOT_READY and s.reason == MISSED_OFFER
            assert missed_out == self.after_miss.pop(agent), (agent, s, self.missed[agent])
        if agent in self.after_call:  # the first state after a call's wrap-up
            not_ready = s.state is AgentState.NOT_READY and s.reason == NOT_READY_AFTER_CALL
            assert not_ready == self.after_call.pop(agent), (agent, s)
        if agent in self.freed:  # the caller left while ringing: back in rotation
            self.freed.discard(agent)
            assert s.state in (AgentState.READY, AgentState.RESERVED), s
        if s.state is AgentState.RESERVED and agent in self.ready_since:
            # Offered while Ready: the call is new (or back) and goes to the agent
            # who has been Ready the longest of those serving its queue.
            assert s.call_id is not None
            queue = self.queue_of[s.call_id]
            rivals = [a for a in self.ready_since if queue in AGENTS[a]]
            longest = min(rivals, key=self.ready_since.__getitem__)
            assert agent == longest, f"{s.call_id} offered to {agent}, not {longest}"
        self.ready_since.pop(agent, None)
        if s.state is AgentState.READY:
            self.readies += 1
            self.ready_since[agent] = (self.now, self.readies)
        elif s.state is AgentState.WRAP_UP:
            call = self.engaged[s.agent_id]
            assert s.call_id == call
            assert s.deadline == self.now + CONFIG[self.queue_of[call]].wrap_up_s
        elif s.state is AgentState.TALKING:
            assert s.call_id == self.engaged[s.agent_id]
        elif s.state is AgentState.RESERVED:
            assert s.call_id is not None
        else:
            assert s.call_id is None
            assert s.deadline is None
            assert s.agent_id not in self.engaged

    # --- rules --------------------------------------------------------------------

    @initialize(max_missed=st.sampled_from([1, 3]))
    def start(self, max_missed: int) -> None:
        self.router = Router(QUEUES, max_missed_offers=max_missed)
        self.max_missed = max_missed
        for agent, queues in AGENTS.items():
            self.router.handle(
                ri.AgentConfigured(agent=AgentConfig(id=agent, queues=dict.fromkeys(queues, 0.0))),
                0.0,
            )
            self.absorb(self.router.handle(ri.AgentLogsIn(agent_id=agent), self.now))

    @rule(queue=st.sampled_from(sorted(CONFIG)), value=st.integers(0, 100), dt=time_steps)
    def enqueue(self, queue: str, value: int, dt: float) -> None:
        self.tick(dt)
        call = f"c{self.n}"
        self.queue_of[call], self.value_of[call] = queue, value
        self.arrived[call], self.seq[call] = self.now, self.n
        self.n += 1
        self.waiting[queue].add(call)  # it enters the queue, and may be taken at once
        self.absorb(
            self.r.handle(
                ri.CallArrives(call_id=call, queue=queue, caller=make_caller(value, self.n)),
                self.now,
            )
        )

    @rule(
        queue=st.sampled_from(sorted(CONFIG)),
        values=st.lists(st.integers(0, 100), min_size=2, max_size=8),
        gap=st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0, 20.0]),
    )
    def burst(self, queue: str, values: list[int], gap: float) -> None:
        """Several calls, ``gap`` seconds apart: long queues, spread over time."""
        for value in values:
            self.enqueue(queue, value, gap)

    @precondition(lambda self: self.in_state(AgentState.RESERVED))
    @rule(data=st.data(), disposition=st.sampled_from(["sale", "info"]))
    def handle_call(self, data: st.DataObject, disposition: str) -> None:
        """An offered agent accepts, talks, hangs up and wraps up, all at once."""
        agent = self.draw_agent(data, AgentState.RESERVED)
        call = self.r.agent(agent).call_id
        self.request(ri.AgentAccepts(agent_id=agent, call_id=call))
        self.request(ri.AgentHangsUp(agent_id=agent, call_id=call))
        self.dispositions[agent] = disposition
        self.request(ri.AgentFinishesWrapUp(agent_id=agent, call_id=call, disposition=disposition))

    tick = mb.tick_rule(time_steps, later_deadline=True)
    to_next_deadline = mb.to_next_deadline_rule(may_be_past=False)
    read_waits = mb.read_waits_rule(QUEUE_NAMES)

    @rule(
        # repeated entries make the common requests more likely than logging out
        request=st.sampled_from(
            ["set_ready", "set_ready", "set_ready", "login", "login", "set_not_ready", "logout"]
        ),
        agent=agent_ids,
    )
    def agent_request(self, request: str, agent: str) -> None:
        """An idle-state request by any agent, in any state (so some are refused).
        Logging out in wrap-up ends it with no disposition (docs/acd.md)."""
        leaves = request == "logout" and agent in self.engaged and agent not in self.dispositions
        if leaves:  # on its way out, Not Ready after the call, with no disposition
            self.dispositions[agent] = ""
            self.not_ready_later.add(agent)
        self.request(agent_input(request, agent))
        if leaves:  # no record if it was talking (the call went back to its queue)
            if self.dispositions.get(agent) == "":
                del self.dispositions[agent]
            self.not_ready_later.discard(agent)

    @precondition(lambda self: self.in_state(AgentState.RESERVED))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        agent = self.draw_agent(data, AgentState.RESERVED)
        self.request(ri.AgentAccepts(agent_id=agent, call_id=self.r.agent(agent).call_id))

    @precondition(lambda self: self.in_state(AgentState.RESERVED))
    @rule(data=st.data())
    def reject(self, data: st.DataObject) -> None:
        agent = self.draw_agent(data, AgentState.RESERVED)
        self.request(ri.AgentRejects(agent_id=agent, call_id=self.r.agent(agent).call_id))

    agent_hang_up = mb.agent_hang_up_rule()

    @precondition(lambda self: self.in_state(AgentState.WRAP_UP))
    @rule(data=st.data(), disposition=st.sampled_from(["sale", "info"]))
    def complete_wrap_up(self, data: st.DataObject, disposition: str) -> None:
        agent = self.draw_agent(data, AgentState.WRAP_UP)
        self.dispositions[agent] = disposition
        call = self.r.agent(agent).call_id
        self.request(ri.AgentFinishesWrapUp(agent_id=agent, call_id=call, disposition=disposition))

    @precondition(lambda self: self.queue_of)
    @rule(data=st.data(), live=st.integers(0, 4))
    def caller_hang_up(self, data: st.DataObject, live: int) -> None:
        """The caller of a call hangs up: mostly a live call, in whatever phase it is."""
        active = sorted(self.r.active_call_ids())
        calls = active if active and live else sorted(self.queue_of)
        call = data.draw(st.sampled_from(calls), label="call")
        if call in active:
            self.request(ri.CallerHangsUp(call_id=call))
        else:  # a repeat after the call finished changes nothing
            before = self.fingerprint()
            assert self.r.handle(ri.CallerHangsUp(call_id=call), self.now) == []
            assert self.fingerprint() == before

    @rule(
        request=st.sampled_from(
            ["accept", "reject", "agent_hang_up", "complete_wrap_up", "set_ready"]
        ),
        agent=agent_ids,
        k=st.integers(0, 1000),
    )
    def any_request(self, request: str, agent: str, k: int) -> None:
        """A request for any agent and any call: mostly refused, and then harmless."""
        known = sorted(self.queue_of) or ["no-such-call"]
        call = known[k % len(known)]
        if request == "set_ready":
            self.request(agent_input(request, agent))
            return
        snap = self.r.agent(agent)
        wrapping_up = snap.state is AgentState.WRAP_UP and snap.call_id == call
        if request == "complete_wrap_up" and wrapping_up:
            self.dispositions[agent] = "any"
        self.request(call_input(request, agent, call, "any"))

    # --- invariants ---------------------------------------------------------------

    @invariant()
    def every_call_in_exactly_one_place(self) -> None:
        if self.router is None:
            return
        self.check_each_call_active_or_recorded_once(self.queue_of)

    @invariant()
    def no_agent_has_two_calls(self) -> None:
        if self.router is None:
            return
        holders: dict[str, str] = {}
        for agent in AGENTS:
            snap = self.r.agent(agent)
            if snap.state in BUSY_PHASE:
                assert snap.call_id is not None
                assert snap.call_id not in holders, f"{snap.call_id} held by two agents"
                holders[snap.call_id] = agent
                assert self.r.call_phase(snap.call_id) is BUSY_PHASE[snap.state]
            else:
                assert snap.call_id is None
        for call in self.r.active_call_ids():
            if self.r.call_phase(call) is CallPhase.QUEUED:
                assert call not in holders
            else:
                assert call in holders, f"{call} is {self.r.call_phase(call)} with no agent"
        # the mirror built from the actions agrees with the router
        assert {c: a for c, a in holders.items() if c in self.offers} == self.offers
        assert {a: c for c, a in holders.items() if c not in self.offers} == self.engaged

    @invariant()
    def no_waiting_call_while_an_agent_of_its_queue_is_ready(self) -> None:
        if self.router is None:
            return
        for q in CONFIG:
            if self.r.snapshot(q, self.now).waiting:
                for agent, queues in AGENTS.items():
                    if q in queues:
                        assert self.r.agent(agent).state is not AgentState.READY, (q, agent)

    @invariant()
    def queues_in_rank_order(self) -> None:
        if self.router is None:
            return
        for q in CONFIG:
            in_order = self.r.waiting_in_order(q)
            assert in_order == sorted(self.waiting[q], key=self.order_key)
            queued = {
                c
                for c in self.r.active_call_ids()
                if self.r.call_phase(c) is CallPhase.QUEUED and self.r.call_queue(c) == q
            }
            assert set(in_order) == queued
            snap = self.r.snapshot(q, self.now)
            assert snap.waiting == len(in_order)
            longest = self.now - min(self.arrived[c] for c in in_order) if in_order else 0.0
            assert snap.longest_wait_s == longest
            states = [self.r.agent(a).state for a, qs in AGENTS.items() if q in qs]
            assert snap.agents_ready == states.count(AgentState.READY)
            assert snap.agents_busy == sum(s in BUSY_PHASE for s in states)
            assert snap.agents_logged_in == len(states) - states.count(AgentState.LOGGED_OUT)


RouterMachine.TestCase.settings = settings(
    max_examples=mb.examples(200),
    stateful_step_count=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRouterMachine = RouterMachine.TestCase


# --- the starvation bound is tight ----------------------------------------------------


@pytest.mark.parametrize("service_s", [1, 3])
@pytest.mark.parametrize(
    "config",
    [
        QueueConfig(name="q", value_weight=1.0, aging_rate=1.0),  # bound 100 s
        QueueConfig(name="q", priority=5.0, value_weight=0.5, aging_rate=2.0),  # bound 25 s
    ],
    ids=["bound100", "bound25"],
)
def test_lowest_value_caller_is_passed_only_by_callers_within_the_bound(
    config: QueueConfig, service_s: int
) -> None:
    """A value-0 caller at t=0, value-100 callers every second after, one agent.

    The value-0 caller is overtaken by exactly the callers who arrived less than the
    bound after it, and by nobody who came later, however long the queue has grown.
    """
    bound = starvation_bound_s(config)
    router = Router([config], max_missed_offers=1)
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a1", queues={"q": 0.0})), 0.0)
    router.handle(ri.AgentLogsIn(agent_id="a1"), 0.0)
    router.handle(ri.CallArrives(call_id="low", queue="q", caller=make_caller(0, 0)), 0.0)
    arrivals = int(bound) * service_s + 100  # enough that the queue never runs dry
    served: list[str] = []
    served_at: dict[str, float] = {}
    current: str | None = None
    done_at = 0.0

    def take(actions: list[Action], t: float) -> None:
        nonlocal current, done_at
        (offer,) = [a for a in actions if isinstance(a, OfferCall)]
        router.handle(ri.AgentAccepts(agent_id="a1", call_id=offer.call_id), t)
        served.append(offer.call_id)
        served_at[offer.call_id] = t
        current, done_at = offer.call_id, t + service_s

    for t in range(1, arrivals + 1):
        router.handle(
            ri.CallArrives(call_id=f"high{t}", queue="q", caller=make_caller(100, t)), float(t)
        )
        if t == 1:
            take(router.handle(ri.AgentGoesReady(agent_id="a1"), 1.0), 1.0)
        elif current is not None and t >= done_at:
            router.handle(ri.AgentHangsUp(agent_id="a1", call_id=current), float(t))
            take(
                router.handle(
                    ri.AgentFinishesWrapUp(agent_id="a1", call_id=current, disposition="ok"),
                    float(t),
                ),
                float(t),
            )
        if "low" in served:
            break

    assert "low" in served, "the value-0 caller was never served"
    # It IS passed over, by precisely the callers who came less than the bound after it
    # (one who comes exactly at the bound ties on rank and loses on arrival).
    assert served[: served.index("low")] == [f"high{k}" for k in range(1, int(bound))]
    taken_at = served_at["low"]
    assert taken_at == 1 + service_s * (bound - 1)
    # Everyone who came at or after the bound and before it was taken is still waiting.
    later = {f"high{k}" for k in range(int(bound), int(taken_at) + 1)}
    assert set(router.waiting_in_order("q")) == later
    assert len(later) >= 1
