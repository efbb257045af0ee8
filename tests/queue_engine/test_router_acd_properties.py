"""Property tests of the router: cross-queue selection and skill relaxation (docs/acd.md).

Every expectation here is computed independently of the router's internals: from the
queue configurations the test made, the router's public views (``waiting_in_order``,
``call_queue``, ``call_arrived_at``, ``call_caller``, ``queue_config``) and
:func:`queue_engine.priority.rank`.

Times, priorities, weights, aging rates and bonuses are small dyadic rationals, so every
rank and every ``now - arrived_at`` below is exact and the comparisons are exact too.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from cti.models import (
    AgentConfig,
    AgentState,
    ExitAction,
    MaxWaitExit,
    NoAgentsExit,
    QueueConfig,
    QueueExits,
    RelaxStep,
    Strategy,
)
from queue_engine import inputs as ri
from queue_engine.actions import Action, OfferCall, RecordCall
from queue_engine.priority import rank
from queue_engine.router import CallPhase, Router
from tests.queue_engine import machine_base as mb

SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SKILLS = ("mandarin", "billing", "french")
AFTERS = (2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
GAPS = (0.0, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)

skill_sets = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=3)


def meets(skills: Mapping[str, int], required: Mapping[str, int]) -> bool:
    return all(skills.get(s, 0) >= level for s, level in required.items())


def ring_of(config: QueueConfig, waited: float) -> int:
    """The ring a call that has waited ``waited`` seconds is in, from the config alone."""
    ring = 0
    for i, step in enumerate(config.relax, start=1):
        if waited >= step.after_s:
            ring = i
    return ring


def required(config: QueueConfig, ring: int) -> dict[str, int]:
    return dict(config.skills) if ring == 0 else dict(config.relax[ring - 1].skills)


@st.composite
def rings(draw: st.DrawFn) -> tuple[dict[str, int], tuple[RelaxStep, ...]]:
    """Skills at first, then 0-3 relax steps, each a loosening of the one before."""
    first = draw(skill_sets)
    afters = draw(st.lists(st.sampled_from(AFTERS), max_size=3, unique=True))
    steps = []
    previous = first
    for after in sorted(afters):
        keep = draw(st.lists(st.sampled_from(sorted(previous)), unique=True)) if previous else []
        looser = {s: draw(st.integers(1, previous[s])) for s in keep}
        steps.append(RelaxStep(after_s=after, skills=looser))
        previous = looser
    return first, tuple(steps)


@st.composite
def queue_configs(draw: st.DrawFn, name: str, *, coarse: bool = False) -> QueueConfig:
    """A queue with random ranking parameters and rings.

    ``coarse``: the same aging everywhere and priorities on a grid of 10, so that calls
    of different queues often tie on rank plus bonus and the tie-break is exercised.
    """
    skills, relax = draw(rings())
    if coarse:
        priorities, weights, rates = [0.0, 10.0, 20.0], [0.0, 1.0], [1.0]
    else:
        priorities = [0.0, 10.0, 25.0, 50.0, 100.0]
        weights, rates = [0.0, 0.5, 1.0, 2.0], [0.25, 0.5, 1.0, 2.0, 4.0]
    return QueueConfig(
        name=name,
        priority=draw(st.sampled_from(priorities)),
        value_weight=draw(st.sampled_from(weights)),
        aging_rate=draw(st.sampled_from(rates)),
        skills=skills,
        relax=relax,
    )


# --- cross-queue selection ------------------------------------------------------------


@st.composite
def cross_queue_worlds(
    draw: st.DrawFn,
) -> tuple[list[QueueConfig], list[AgentConfig], list[tuple[str, int, float]], float]:
    coarse = draw(st.booleans())
    n_queues = draw(st.integers(2, 3))
    queues = [draw(queue_configs(f"q{i}", coarse=coarse)) for i in range(n_queues)]
    names = [q.name for q in queues]
    agents = []
    bonus = st.sampled_from(
        [0.0, 10.0, 20.0] if coarse else [0.0, 0.0, 5.0, 10.0, 30.0, 60.0, 200.0]
    )
    for i in range(draw(st.integers(1, 5))):
        served = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        agents.append(
            AgentConfig(
                id=f"a{i}",
                skills=draw(skill_sets),
                queues={q: draw(bonus) for q in served},
            )
        )
    values = st.sampled_from([0, 10, 20]) if coarse else st.integers(0, 100)
    gaps = st.sampled_from([0.0, 5.0, 10.0]) if coarse else st.sampled_from(GAPS)
    calls = draw(
        st.lists(
            st.tuples(st.sampled_from(names), values, gaps),
            min_size=1,
            max_size=14,
        )
    )
    final_gap = draw(st.sampled_from([0.0, 1.0, 5.0, 20.0, 60.0]))
    return queues, agents, calls, final_gap


def expected_choice(
    router: Router, agent: AgentConfig, order: Mapping[str, int], now: float
) -> str | None:
    """The call ``agent`` should take at ``now``: best rank + bonus, then arrival."""
    best: tuple[float, float, int, str] | None = None
    for queue, bonus in agent.queues.items():
        config = router.queue_config(queue)
        for call in router.waiting_in_order(queue):
            assert router.call_queue(call) == queue
            arrived = router.call_arrived_at(call)
            if not meets(agent.skills, required(config, ring_of(config, now - arrived))):
                continue
            score = rank(config, router.call_caller(call).value, arrived, now) + bonus
            key = (-score, arrived, order[call], call)
            if best is None or key < best:
                best = key
    return None if best is None else best[3]


@settings(SETTINGS, max_examples=mb.examples(400))
@given(world=cross_queue_worlds(), data=st.data())
def test_a_freed_agent_takes_the_argmax_of_rank_plus_bonus_over_its_queues_and_rings(
    world: tuple[list[QueueConfig], list[AgentConfig], list[tuple[str, int, float]], float],
    data: st.DataObject,
) -> None:
    queues, agents, calls, final_gap = world
    router = Router(queues)
    for config in agents:
        router.handle(ri.AgentConfigured(agent=config), 0.0)
        router.handle(ri.AgentLogsIn(agent_id=config.id), 0.0)
    now = 0.0
    order: dict[str, int] = {}
    for n, (queue, value, gap) in enumerate(calls):
        now += gap
        assert router.handle(ri.TimePasses(), now) == []  # nobody is Ready: timers only move rings
        call = f"c{n}"
        order[call] = n
        assert (
            router.handle(
                ri.CallArrives(call_id=call, queue=queue, caller=mb.make_caller(value, n)), now
            )
            == []
        )
    now += final_gap
    router.handle(ri.TimePasses(), now)

    # Agents free up one after another, at the same moment.
    for config in data.draw(st.permutations(agents), label="ready order"):
        expected = expected_choice(router, config, order, now)
        out = router.handle(ri.AgentGoesReady(agent_id=config.id), now)
        got = [(o.call_id, o.agent_id) for o in out if isinstance(o, OfferCall)]
        if expected is None:
            assert got == []
            assert router.agent(config.id).state is AgentState.READY
        else:
            assert got == [(expected, config.id)]
            assert router.call_phase(expected) is CallPhase.OFFERED


# --- relaxation: when a lone call is offered -------------------------------------------


@SETTINGS
@given(
    config=queue_configs("q"),
    skills=st.lists(skill_sets, min_size=1, max_size=4),
    arrival=st.sampled_from([0.0, 0.5, 3.0, 100.0]),
)
def test_a_call_is_offered_when_its_ring_first_fits_a_ready_agent(
    config: QueueConfig, skills: list[dict[str, int]], arrival: float
) -> None:
    router = Router([config])
    for i, s in enumerate(skills):
        router.handle(
            ri.AgentConfigured(agent=AgentConfig(id=f"a{i}", skills=s, queues={"q": 0.0})), 0.0
        )
        router.handle(ri.AgentLogsIn(agent_id=f"a{i}"), 0.0)
        router.handle(ri.AgentGoesReady(agent_id=f"a{i}"), 0.0)
    fitting = [
        ring
        for ring, (_, needed) in enumerate(config.rings)
        if any(meets(s, needed) for s in skills)
    ]

    out = router.handle(
        ri.CallArrives(call_id="c1", queue="q", caller=mb.make_caller(50, 1)), arrival
    )
    now = arrival
    while not any(isinstance(a, OfferCall) for a in out):
        deadline = router.next_deadline()
        if deadline is None:
            break
        assert deadline > now
        now = deadline
        out = router.handle(ri.TimePasses(), now)
        assert router.call_ring("c1") == ring_of(config, now - arrival)

    offered = [a for a in out if isinstance(a, OfferCall)]
    if not fitting:
        assert offered == []
        assert router.call_phase("c1") is CallPhase.QUEUED
        assert router.call_ring("c1") == len(config.relax)
        return
    first = fitting[0]
    assert now == arrival + config.rings[first][0]
    assert len(offered) == 1
    taker = int(offered[0].agent_id[1:])
    assert meets(skills[taker], config.rings[first][1])


# --- relaxation: random operation sequences -------------------------------------------

AGENT_IDS = ("a0", "a1", "a2", "a3")
QUEUE_NAMES = ("q0", "q1")
time_steps = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0])


@st.composite
def exits(draw: st.DrawFn, name: str) -> QueueExits:
    other = "q1" if name == "q0" else "q0"
    after = draw(st.sampled_from([20.0, 40.0, 90.0]))
    max_wait = draw(
        st.sampled_from(
            [
                None,
                None,
                MaxWaitExit(action=ExitAction.VOICEMAIL, after_s=after),
                MaxWaitExit(action=ExitAction.QUEUE, queue=other, after_s=after),
                MaxWaitExit(action=ExitAction.CALLBACK, after_s=after),
            ]
        )
    )
    no_agents = draw(
        st.sampled_from(
            [
                None,
                None,
                None,
                None,
                None,
                NoAgentsExit(action=ExitAction.MESSAGE, when="none_logged_in"),
                NoAgentsExit(action=ExitAction.QUEUE, queue=other, when="none_available"),
            ]
        )
    )
    return QueueExits(max_wait=max_wait, no_agents=no_agents)


class RelaxationMachine(mb.MachineBase):
    """Random queues with rings, random agents with skills, random operations.

    After every step: no offer went to an agent who fails the call's current ring, no
    call waits while a Ready agent who may take it at its ring exists, and every call
    ever made is either still active or has exactly one record.
    """

    AGENT_IDS = AGENT_IDS
    QUEUE_NAMES = QUEUE_NAMES

    @initialize(data=st.data(), max_missed=st.sampled_from([1, 2]))
    def start(self, data: st.DataObject, max_missed: int) -> None:
        self.set_up(
            data,
            max_missed=max_missed,
            queue_configs=queue_configs,
            strategies=st.sampled_from(list(Strategy)),
            offer_timeouts=st.sampled_from([5.0, 15.0]),
            exits=exits,
            skill_sets=skill_sets,
            bonuses=st.sampled_from([0.0, 10.0, 60.0]),
        )

    # --- plumbing -----------------------------------------------------------------

    def absorb(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, OfferCall):
                self.check_offer(action)
            elif isinstance(action, RecordCall):
                call = action.cdr.call_id
                assert call in self.arrived, f"record of an unknown call {call}"
                self.records[call] += 1
                assert self.records[call] == 1, f"{call} recorded twice"
                assert action.cdr.arrived_at == self.arrived[call]

    def check_offer(self, offer: OfferCall) -> None:
        agent = self.agents[offer.agent_id]
        assert offer.queue in agent.queues, f"{offer.agent_id} does not serve {offer.queue}"
        config = self.configs[offer.queue]
        ring = ring_of(config, self.now - self.arrived[offer.call_id])
        assert meets(agent.skills, required(config, ring)), (
            f"{offer.call_id} (ring {ring} of {offer.queue}, needs {required(config, ring)}) "
            f"offered to {offer.agent_id} with {agent.skills}"
        )

    # --- rules --------------------------------------------------------------------

    arrive = mb.arrive_rule(QUEUE_NAMES, time_steps)
    agent_request = mb.agent_request_rule(AGENT_IDS)
    answer_offer = mb.answer_offer_rule(["accept", "accept", "reject"])
    caller_hang_up = mb.caller_hang_up_rule()
    supervise = mb.supervise_rule([-50.0, 0.0, 200.0])

    @rule(
        queue=st.sampled_from(QUEUE_NAMES),
        value=st.integers(0, 100),
        ahead=st.sampled_from([0.0, 5.0, 30.0]),
    )
    def schedule_callback(self, queue: str, value: int, ahead: float) -> None:
        call = f"c{self.n}"
        self.n += 1
        self.arrived[call] = self.now + ahead
        number = mb.make_caller(value, self.n).e164 or ""
        self.absorb(
            self.r.handle(
                ri.CallbackScheduled(
                    call_id=call,
                    queue=queue,
                    caller=mb.make_caller(value, self.n),
                    due=self.now + ahead,
                    number=number,
                ),
                self.now,
            )
        )

    tick = mb.tick_rule(time_steps, later_deadline=True)
    # a deadline may be past: a call moved into a queue it is too old for
    to_next_deadline = mb.to_next_deadline_rule(may_be_past=True)
    read_waits = mb.read_waits_rule(QUEUE_NAMES)

    @precondition(lambda self: self.in_state(AgentState.RESERVED))
    @rule(data=st.data())
    def handle_call(self, data: st.DataObject) -> None:
        """An offered agent accepts, talks, hangs up and wraps up, all at once."""
        agent = self.draw_agent(data, AgentState.RESERVED)
        call = self.r.agent(agent).call_id
        self.request(ri.AgentAccepts(agent_id=agent, call_id=call))
        self.request(ri.AgentHangsUp(agent_id=agent, call_id=call))
        self.request(ri.AgentFinishesWrapUp(agent_id=agent, call_id=call, disposition="ok"))

    agent_hang_up = mb.agent_hang_up_rule()

    @precondition(lambda self: self.in_state(AgentState.WRAP_UP))
    @rule(data=st.data(), extend=st.booleans())
    def wrap_up(self, data: st.DataObject, extend: bool) -> None:
        agent = self.draw_agent(data, AgentState.WRAP_UP)
        call = self.r.agent(agent).call_id
        if extend:
            self.request(ri.AgentExtendsWrapUp(agent_id=agent, call_id=call, seconds=5.0))
        else:
            self.request(ri.AgentFinishesWrapUp(agent_id=agent, call_id=call, disposition="ok"))

    # --- invariants ---------------------------------------------------------------

    @invariant()
    def no_call_waits_while_a_ready_agent_may_take_it(self) -> None:
        if self.router is None:
            return
        ready = self.in_state(AgentState.READY)
        for queue in QUEUE_NAMES:
            config = self.configs[queue]
            for call in self.r.waiting_in_order(queue):
                ring = ring_of(config, self.now - self.arrived[call])
                assert self.r.call_ring(call) == ring, (call, self.now, self.arrived[call])
                needed = required(config, ring)
                for agent in ready:
                    a = self.agents[agent]
                    assert not (queue in a.queues and meets(a.skills, needed)), (
                        f"{call} waits in ring {ring} of {queue} (needs {needed}) while "
                        f"{agent} with {a.skills} is Ready"
                    )

    @invariant()
    def every_call_accounted_for_exactly_once(self) -> None:
        if self.router is None:
            return
        self.check_each_call_active_or_recorded_once(self.arrived)
        for queue in QUEUE_NAMES:
            assert self.r.snapshot(queue, self.now).waiting == len(self.r.waiting_in_order(queue))


RelaxationMachine.TestCase.settings = settings(
    SETTINGS, max_examples=mb.examples(300), stateful_step_count=80
)
TestRelaxationMachine = RelaxationMachine.TestCase
