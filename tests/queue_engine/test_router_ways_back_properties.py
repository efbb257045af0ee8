"""The ways back into a queue (``test_router_ways_back.py``) over random situations.

* No caller on the line waits past its queue's ``max_wait``, and none is offered once it
  has; so none outlives ``max_wait`` plus one offer timeout, whatever path it took back
  into a queue (lapse, reject, ring-all lapse, transfer, supervisor move or priority,
  relaxation, reconfiguration).
* Under ``random``, each of k Ready agents takes the next call with frequency 1/k,
  within a binomial bound over many seeds, whatever the history (who just took a call).
* A ring-all call rings every Ready member who may take it and was Ready before it was
  offered: after a lapse, an answer elsewhere or a caller gone, nobody sits Ready.
* Timers at fractional seconds, on a clock from 0 or at epoch times, fire with effect.
"""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from cti.models import (
    AgentConfig,
    AgentState,
    ExitAction,
    MaxWaitExit,
    QueueConfig,
    QueueExits,
    RelaxStep,
    Strategy,
)
from queue_engine import inputs as ri
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ExitCall,
    OfferCall,
    RecordCall,
    WithdrawOffer,
)
from queue_engine.router import CallPhase, Router
from tests.queue_engine import machine_base as mb
from tests.queue_engine.test_router_acd_properties import (
    SETTINGS,
    meets,
    queue_configs,
    required,
    skill_sets,
)

AGENT_IDS = ("a0", "a1", "a2", "a3", "a4")
QUEUE_NAMES = ("q0", "q1")
time_steps = st.sampled_from([0.0, 0.5, 1.0, 2.5, 5.0, 7.5, 12.5, 30.0])


@st.composite
def max_wait_rules(draw: st.DrawFn, name: str) -> MaxWaitExit | None:
    other = "q1" if name == "q0" else "q0"
    after = draw(st.sampled_from([5.0, 10.0, 12.5, 40.0]))
    action = draw(st.sampled_from(list(ExitAction)))
    if draw(st.integers(0, 4)) == 0:
        return None
    return MaxWaitExit(
        action=action, after_s=after, queue=other if action is ExitAction.QUEUE else ""
    )


class ExitAndRingAllMachine(mb.MachineBase):
    """Random queues (every strategy, ring-all often), rings, max-wait exits of every
    action, missed-offer limits of 1-3, and random operations on every path."""

    AGENT_IDS = AGENT_IDS
    QUEUE_NAMES = QUEUE_NAMES
    check_refusals = False

    def __init__(self) -> None:
        super().__init__()
        self.transferred: set[str] = set()
        self.events = 0
        self.ready_at: dict[str, int] = {}  # Ready agent -> event number it went Ready
        self.offered_at: dict[str, int] = {}  # call -> event number of its latest offer
        self.queue_of: dict[str, str] = {}  # call -> queue of its latest offer
        self.offer_bound: dict[str, float] = {}  # call -> latest time it may still ring

    @initialize(data=st.data(), max_missed=st.sampled_from([1, 2, 3]))
    def start(self, data: st.DataObject, max_missed: int) -> None:
        self.set_up(
            data,
            max_missed=max_missed,
            queue_configs=queue_configs,
            strategies=st.sampled_from([Strategy.RING_ALL] * 4 + list(Strategy)),
            offer_timeouts=st.sampled_from([2.5, 5.0, 15.0]),
            exits=lambda name: max_wait_rules(name).map(lambda r: QueueExits(max_wait=r)),
            skill_sets=skill_sets,
            bonuses=st.sampled_from([0.0, 10.0]),
        )

    # --- plumbing -----------------------------------------------------------------

    def on_the_line(self, call: str) -> bool:
        """A caller still on the line, never answered: max_wait applies to it."""
        return call not in self.transferred and self.r.call_kind(call) != "callback"

    def absorb(self, actions: list[Action]) -> None:
        """One request's actions. An agent whose ring-all offer ended in them (lapsed,
        answered elsewhere, caller gone) and who is made Ready in them counts as Ready
        from that moment: every ring-all call placed after it must ring it too."""
        freed: dict[str, int] = {}
        for action in actions:
            self.events += 1
            if isinstance(action, OfferCall):
                self.on_offer(action)
            elif isinstance(action, WithdrawOffer):
                queue = self.configs[self.queue_of[action.call_id]]
                if queue.strategy is Strategy.RING_ALL and action.reason != "rejected":
                    freed[action.agent_id] = self.events
            elif isinstance(action, AgentStateSet):
                if action.state is AgentState.READY:
                    self.ready_at[action.agent_id] = freed.get(action.agent_id, self.events)
                else:
                    self.ready_at.pop(action.agent_id, None)
            elif isinstance(action, RecordCall):
                call = action.cdr.call_id
                self.records[call] += 1
                assert self.records[call] == 1, f"{call} recorded twice"
            elif isinstance(action, ExitCall) and action.reason == "max wait":
                rule = self.configs[action.queue].exits.max_wait
                assert rule is not None
                assert self.now >= self.arrived[action.call_id] + rule.after_s

    def on_offer(self, offer: OfferCall) -> None:
        call = offer.call_id
        self.offered_at[call] = self.events
        self.queue_of[call] = offer.queue
        config = self.configs[offer.queue]
        rule = config.exits.max_wait
        self.offer_bound.pop(call, None)  # a bound set in another queue does not hold
        if rule is not None and self.on_the_line(call):
            due = self.arrived[call] + rule.after_s
            assert self.now < due, f"{call} offered at {self.now}, past its max wait {due}"
            self.offer_bound[call] = due + config.offer_timeout_s

    # --- rules --------------------------------------------------------------------

    arrive = mb.arrive_rule(QUEUE_NAMES, time_steps)
    agent_request = mb.agent_request_rule(AGENT_IDS)
    answer_offer = mb.answer_offer_rule(["accept", "reject", "reject"])
    caller_hang_up = mb.caller_hang_up_rule()
    supervise = mb.supervise_rule([-50.0, 200.0])

    tick = mb.tick_rule(time_steps, later_deadline=False)
    to_next_deadline = mb.to_next_deadline_rule(may_be_past=False)
    read_waits = mb.read_waits_rule(QUEUE_NAMES)

    @precondition(lambda self: self.in_state(AgentState.TALKING))
    @rule(data=st.data(), how=st.sampled_from(["hang up", "transfer"]), to=st.integers(0, 1))
    def talking(self, data: st.DataObject, how: str, to: int) -> None:
        agent = self.draw_agent(data, AgentState.TALKING)
        call = self.r.agent(agent).call_id
        assert call is not None
        if how == "hang up":
            self.request(ri.AgentHangsUp(agent_id=agent, call_id=call))
        else:
            self.transferred.add(call)
            self.request(ri.AgentTransfers(agent_id=agent, call_id=call, queue=QUEUE_NAMES[to]))

    @precondition(lambda self: self.in_state(AgentState.WRAP_UP))
    @rule(data=st.data())
    def wrap_up(self, data: st.DataObject) -> None:
        agent = self.draw_agent(data, AgentState.WRAP_UP)
        self.request(
            ri.AgentFinishesWrapUp(
                agent_id=agent, call_id=self.r.agent(agent).call_id, disposition="ok"
            )
        )

    @precondition(lambda self: self.router is not None)
    @rule(queue=st.sampled_from(QUEUE_NAMES), data=st.data())
    def reconfigure_max_wait(self, queue: str, data: st.DataObject) -> None:
        rule_ = data.draw(max_wait_rules(queue), label="new max_wait")
        config = self.configs[queue].model_copy(update={"exits": QueueExits(max_wait=rule_)})
        self.configs[queue] = config
        self.offer_bound.clear()  # offers made under the old rule keep their deadline
        self.absorb(self.r.handle(ri.QueueConfigured(queue=config), self.now))

    # --- invariants ---------------------------------------------------------------

    @invariant()
    def no_caller_waits_past_max_wait_nor_rings_past_it_plus_one_offer(self) -> None:
        if self.router is None:
            return
        for call in self.r.active_call_ids():
            phase = self.r.call_phase(call)
            if not self.on_the_line(call):
                continue
            config = self.configs[self.r.call_queue(call)]
            rule = config.exits.max_wait
            if phase is CallPhase.QUEUED and rule is not None:
                due = self.arrived[call] + rule.after_s
                assert self.now < due, f"{call} still waits at {self.now}, max wait {due}"
            if phase is CallPhase.OFFERED and call in self.offer_bound:
                assert self.now < self.offer_bound[call], (call, self.now)

    @invariant()
    def a_ring_all_call_rings_every_member_ready_before_it(self) -> None:
        if self.router is None:
            return
        for call in self.r.active_call_ids():
            if self.r.call_phase(call) is not CallPhase.OFFERED:
                continue
            queue = self.r.call_queue(call)
            config = self.configs[queue]
            if config.strategy is not Strategy.RING_ALL:
                continue
            needed = required(config, self.r.call_ring(call))
            rung = set(self.r.offered_to(call))
            for agent, since in self.ready_at.items():
                a = self.agents[agent]
                if since < self.offered_at[call] and queue in a.queues:
                    assert not meets(a.skills, needed) or agent in rung, (
                        f"{agent} Ready since event {since} is not rung for ring-all "
                        f"{call} offered at event {self.offered_at[call]} to {sorted(rung)}"
                    )

    @invariant()
    def every_call_accounted_for_exactly_once(self) -> None:
        if self.router is None:
            return
        self.check_each_call_active_or_recorded_once(self.arrived)


ExitAndRingAllMachine.TestCase.settings = settings(
    SETTINGS, max_examples=mb.examples(150), stateful_step_count=50
)
TestExitAndRingAllMachine = ExitAndRingAllMachine.TestCase


# --- random: 1/k per call, whoever just took one ------------------------------------

SEEDS = 400


def note(went_ready: dict[str, int], out: list[Action]) -> list[OfferCall]:
    """Number each agent's going Ready in ``out`` (latest highest); return the offers."""
    for a in out:
        if isinstance(a, AgentStateSet) and a.state is AgentState.READY:
            went_ready[a.agent_id] = max(went_ready.values(), default=0) + 1
    return [a for a in out if isinstance(a, OfferCall)]


@settings(SETTINGS, max_examples=mb.examples(12))
@given(
    k=st.integers(2, 5),
    history=st.lists(st.sampled_from([0.0, 1.0, 3.0]), max_size=6),
    ready_gaps=st.lists(st.sampled_from([0.0, 1.0, 7.0]), min_size=5, max_size=5),
)
@example(k=2, history=[0.0], ready_gaps=[0.0] * 5)
@example(k=4, history=[1.0, 0.0, 3.0], ready_gaps=[1.0] * 5)
def test_random_gives_each_ready_agent_the_next_call_with_frequency_one_in_k(
    k: int, history: list[float], ready_gaps: list[float]
) -> None:
    """k agents go Ready at random moments, then a history of calls is served (each by
    the agent drawn, talking the time given). The next call must go to each Ready agent
    1/k of the time, within 4.5 standard deviations of the binomial count over many
    seeds, whatever its place: agents are told apart by role (the order in which they
    last went Ready, the one who just took a call first), not by name, since names are
    symmetric. A draw made at joining favoured the agent who just took a call."""
    agents = [f"a{i}" for i in range(k)]
    by_role: Counter[int] = Counter()
    for seed in range(SEEDS):
        router = Router([QueueConfig(name="q", strategy=Strategy.RANDOM)], seed=seed)
        went_ready: dict[str, int] = {}
        now = 0.0
        for agent_id, gap in zip(agents, ready_gaps, strict=False):
            now += gap
            router.handle(
                ri.AgentConfigured(agent=AgentConfig(id=agent_id, queues={"q": 0.0})), now
            )
            router.handle(ri.AgentLogsIn(agent_id=agent_id), now)
            note(went_ready, router.handle(ri.AgentGoesReady(agent_id=agent_id), now))
        for n, talk in enumerate(history):
            now += 1.0
            (offer,) = note(
                went_ready,
                router.handle(
                    ri.CallArrives(call_id=f"h{n}", queue="q", caller=mb.make_caller(0, n)), now
                ),
            )
            router.handle(ri.AgentAccepts(agent_id=offer.agent_id, call_id=offer.call_id), now)
            router.handle(
                ri.AgentHangsUp(agent_id=offer.agent_id, call_id=offer.call_id), now + talk
            )
            note(
                went_ready,
                router.handle(
                    ri.AgentFinishesWrapUp(
                        agent_id=offer.agent_id, call_id=offer.call_id, disposition="ok"
                    ),
                    now + talk,
                ),
            )
        (offer,) = note(
            went_ready,
            router.handle(
                ri.CallArrives(call_id="next", queue="q", caller=mb.make_caller(0, 99)), now + 10.0
            ),
        )
        roles = sorted(agents, key=lambda a: (-went_ready[a], a))  # latest Ready first
        by_role[roles.index(offer.agent_id)] += 1
    p = 1 / k
    bound = 4.5 * math.sqrt(SEEDS * p * (1 - p))
    for role in range(k):
        assert abs(by_role[role] - SEEDS * p) <= bound, (role, by_role, bound)


# --- timers at fractional seconds fire with effect -----------------------------------


@settings(SETTINGS, max_examples=mb.examples(200))
@given(
    t0=st.one_of(
        st.floats(0.0, 1e4, allow_nan=False),
        st.floats(1.6e9, 1.8e9, allow_nan=False),
    ),
    relax_after=st.floats(0.05, 500.0, allow_nan=False),
    wait_extra=st.floats(0.05, 500.0, allow_nan=False),
)
def test_fractional_ring_and_max_wait_timers_fire_with_effect_at_their_deadline(
    t0: float, relax_after: float, wait_extra: float
) -> None:
    """A call's ring widens, and its max-wait exit is taken, exactly when their timers
    fire, at any clock reading and any fractional ``after_s`` (docs/acd.md §11 listed
    the rounding as a gap; it is fixed)."""
    after = relax_after + wait_extra
    config = QueueConfig(
        name="q",
        skills={"x": 3},
        relax=(RelaxStep(after_s=relax_after, skills={}),),
        exits=QueueExits(max_wait=MaxWaitExit(action=ExitAction.VOICEMAIL, after_s=after)),
    )
    router = Router([config])
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="busy", queues={"q": 0.0})), t0)
    router.handle(ri.AgentLogsIn(agent_id="busy"), t0)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=mb.make_caller(0, 1)), t0)

    ring_at = router.next_deadline()
    assert ring_at == t0 + relax_after
    assert router.handle(ri.TimePasses(), ring_at) == []
    assert router.call_ring("c1") == 1
    exit_at = router.next_deadline()
    assert exit_at == t0 + after
    out = router.handle(ri.TimePasses(), exit_at)
    assert [e.call_id for e in out if isinstance(e, ExitCall)] == ["c1"]
    assert router.next_deadline() is None
