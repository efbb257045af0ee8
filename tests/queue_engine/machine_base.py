"""Set-up, plumbing and rule bodies the router's property machines share.

The machines keep their own rules (decorators with their own strategies) and invariants;
the rules call the bodies here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from cti import compiled_build
from cti.errors import RoutingError
from cti.models import (
    AgentConfig,
    AgentState,
    CallerInfo,
    CallerKind,
    Customer,
    QueueConfig,
    QueueExits,
    Strategy,
)
from queue_engine import inputs as ri
from queue_engine import router as router_module
from queue_engine.actions import Action
from queue_engine.router import Router
from tests.queue_engine.requests import agent_input, call_input

#: These tests run on the compiled router too (``tests/simulators/test_compiled.py``):
#: there the property tests draw a quarter of their examples, the same properties
#: checked on that build at a modest cost in CI.
ON_COMPILED_BUILD = compiled_build.is_compiled(router_module)


def examples(n: int) -> int:
    """``n`` examples, or a quarter of them (at least 10) on the compiled build."""
    return max(10, n // 4) if ON_COMPILED_BUILD else n


def make_caller(value: int, n: int) -> CallerInfo:
    customer = Customer(id=n, name=f"c{n}", value=float(value))
    number = f"+1555{n:07d}"
    return CallerInfo(ani=number, e164=number, kind=CallerKind.KNOWN, customer=customer)


class MachineBase(RuleBasedStateMachine):
    """A router, its clock and calls, and the requests a machine makes of it."""

    AGENT_IDS: ClassVar[tuple[str, ...]]
    QUEUE_NAMES: ClassVar[tuple[str, ...]]
    # Must a refused request leave the router's state unchanged? (checked when True)
    check_refusals: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.router: Router | None = None
        self.configs: dict[str, QueueConfig] = {}
        self.agents: dict[str, AgentConfig] = {}
        self.now = 0.0
        self.n = 0
        self.arrived: dict[str, float] = {}
        self.records: Counter[str] = Counter()

    # --- plumbing -----------------------------------------------------------------

    @property
    def r(self) -> Router:
        assert self.router is not None
        return self.router

    def in_state(self, *states: AgentState) -> list[str]:
        if self.router is None:
            return []
        return [a for a in self.AGENT_IDS if self.r.agent(a).state in states]

    def draw_agent(self, data: st.DataObject, *states: AgentState) -> str:
        return data.draw(st.sampled_from(self.in_state(*states)), label="agent")

    def waiting_calls(self) -> list[str]:
        if self.router is None:
            return []
        return [c for q in self.QUEUE_NAMES for c in self.r.waiting_in_order(q)]

    def fingerprint(self) -> object:
        r = self.r
        return (
            [r.agent(a) for a in self.AGENT_IDS],
            sorted((c, r.call_phase(c)) for c in r.active_call_ids()),
            [r.waiting_in_order(q) for q in self.QUEUE_NAMES],
            r.next_deadline(),
        )

    def request(self, event: ri.AnyInput) -> None:
        """A request the state may refuse; a refused one must change nothing."""
        before = self.fingerprint() if self.check_refusals else None
        try:
            out = self.r.handle(event, self.now)
        except RoutingError:
            if self.check_refusals:
                assert self.fingerprint() == before, f"refused {event!r} changed the state"
            return
        self.absorb(out)

    def absorb(self, actions: list[Action]) -> None:
        raise NotImplementedError

    def tick(self, dt: float) -> None:
        self.now += dt
        self.absorb(self.r.handle(ri.TimePasses(), self.now))

    def tick_to_a_later_deadline(self, dt: float) -> None:
        """Tick, then every timer left is in the future (fired ones are gone)."""
        MachineBase.tick(self, dt)
        deadline = self.r.next_deadline()
        assert deadline is None or deadline > self.now

    def to_the_next_deadline(self, *, may_be_past: bool) -> None:
        """Tick to the next timer; ``may_be_past``: it may lie before now (then now)."""
        deadline = self.r.next_deadline()
        if deadline is None:
            return
        if not may_be_past:
            assert deadline >= self.now, "a timer before now was left unfired"
        self.tick(max(0.0, deadline - self.now))

    def check_each_call_active_or_recorded_once(self, calls: Collection[str]) -> None:
        """Of ``calls`` (every call made), each is active or has one record, not both."""
        active = self.r.active_call_ids()
        assert len(active) == len(set(active))
        assert set(active) <= set(calls)
        for call in calls:
            assert (call in active) != (self.records[call] == 1), call
            assert self.records[call] <= 1

    # --- set-up -------------------------------------------------------------------

    def set_up(
        self,
        data: st.DataObject,
        *,
        max_missed: int,
        queue_configs: Callable[[str], st.SearchStrategy[QueueConfig]],
        strategies: st.SearchStrategy[Strategy],
        offer_timeouts: st.SearchStrategy[float],
        exits: Callable[[str], st.SearchStrategy[QueueExits]],
        skill_sets: st.SearchStrategy[dict[str, int]],
        bonuses: st.SearchStrategy[float],
    ) -> None:
        """Random queues and agents, logged in, some Ready."""
        for name in self.QUEUE_NAMES:
            base = data.draw(queue_configs(name), label=name)
            self.configs[name] = base.model_copy(
                update={
                    "strategy": data.draw(strategies, label="strategy"),
                    "offer_timeout_s": data.draw(offer_timeouts),
                    "wrap_up_s": data.draw(st.sampled_from([0.0, 10.0])),
                    "exits": data.draw(exits(name), label="exits"),
                }
            )
        self.router = Router(list(self.configs.values()), max_missed_offers=max_missed)
        for agent_id in self.AGENT_IDS:
            served = data.draw(st.lists(st.sampled_from(self.QUEUE_NAMES), min_size=1, unique=True))
            config = AgentConfig(
                id=agent_id,
                skills=data.draw(skill_sets, label=f"{agent_id} skills"),
                queues={q: data.draw(bonuses) for q in served},
            )
            self.agents[agent_id] = config
            self.absorb(self.r.handle(ri.AgentConfigured(agent=config), 0.0))
            self.absorb(self.r.handle(ri.AgentLogsIn(agent_id=agent_id), 0.0))
            if data.draw(st.booleans(), label=f"{agent_id} Ready"):
                self.absorb(self.r.handle(ri.AgentGoesReady(agent_id=agent_id), 0.0))

    # --- rule bodies --------------------------------------------------------------

    def arrive_call(self, queue: str, value: int, dt: float) -> None:
        """A new call arrives ``dt`` seconds on."""
        self.tick(dt)
        call = f"c{self.n}"
        self.n += 1
        self.arrived[call] = self.now
        self.absorb(
            self.r.handle(
                ri.CallArrives(call_id=call, queue=queue, caller=make_caller(value, self.n)),
                self.now,
            )
        )

    def answer_offer_of(self, data: st.DataObject, answer: str) -> None:
        """A Reserved agent answers (accept or reject) the call offered to it."""
        agent = self.draw_agent(data, AgentState.RESERVED)
        self.request(call_input(answer, agent, str(self.r.agent(agent).call_id)))

    def hang_up_some_caller(self, data: st.DataObject) -> None:
        call = data.draw(st.sampled_from(sorted(self.r.active_call_ids())))
        self.request(ri.CallerHangsUp(call_id=call))

    def supervise_some_call(self, data: st.DataObject, action: str, priority: float) -> None:
        """A supervisor turns a waiting call into a callback, reprioritises or moves it."""
        call = data.draw(st.sampled_from(self.waiting_calls()))
        if action == "callback":
            self.request(ri.CallerAsksCallback(call_id=call, number="+15550000000"))
        elif action == "priority":
            self.request(ri.CallPriorityChanged(call_id=call, priority=priority))
        else:
            other = "q1" if self.r.call_queue(call) == "q0" else "q0"
            self.request(ri.CallMoved(call_id=call, queue=other))


# --- rules the machines share, made with each machine's strategies ---------------------

Rule = Callable[..., None]
AGENT_REQUESTS = ["set_ready"] * 4 + ["login", "set_not_ready", "logout"]


def arrive_rule(queue_names: Sequence[str], time_steps: st.SearchStrategy[float]) -> Rule:
    @rule(queue=st.sampled_from(queue_names), value=st.integers(0, 100), dt=time_steps)
    def arrive(self: MachineBase, queue: str, value: int, dt: float) -> None:
        self.arrive_call(queue, value, dt)

    return arrive


def tick_rule(time_steps: st.SearchStrategy[float], *, later_deadline: bool) -> Rule:
    """Time passes; ``later_deadline``: then every timer left is in the future."""

    @rule(dt=time_steps)
    def tick(self: MachineBase, dt: float) -> None:
        if later_deadline:
            self.tick_to_a_later_deadline(dt)
        else:
            MachineBase.tick(self, dt)

    return tick


def to_next_deadline_rule(*, may_be_past: bool) -> Rule:
    @rule()
    def to_next_deadline(self: MachineBase) -> None:
        self.to_the_next_deadline(may_be_past=may_be_past)

    return to_next_deadline


def agent_request_rule(agent_ids: Sequence[str]) -> Rule:
    @rule(request=st.sampled_from(AGENT_REQUESTS), agent=st.sampled_from(agent_ids))
    def agent_request(self: MachineBase, request: str, agent: str) -> None:
        self.request(agent_input(request, agent))

    return agent_request


def agent_hang_up_rule() -> Rule:
    @precondition(lambda self: self.in_state(AgentState.TALKING))
    @rule(data=st.data())
    def agent_hang_up(self: MachineBase, data: st.DataObject) -> None:
        agent = self.draw_agent(data, AgentState.TALKING)
        self.request(ri.AgentHangsUp(agent_id=agent, call_id=self.r.agent(agent).call_id))

    return agent_hang_up


def answer_offer_rule(answers: Sequence[str]) -> Rule:
    @precondition(lambda self: self.in_state(AgentState.RESERVED))
    @rule(data=st.data(), answer=st.sampled_from(answers))
    def answer_offer(self: MachineBase, data: st.DataObject, answer: str) -> None:
        self.answer_offer_of(data, answer)

    return answer_offer


def caller_hang_up_rule() -> Rule:
    @precondition(lambda self: self.router is not None and self.r.active_call_ids())
    @rule(data=st.data())
    def caller_hang_up(self: MachineBase, data: st.DataObject) -> None:
        self.hang_up_some_caller(data)

    return caller_hang_up


def supervise_rule(priorities: Sequence[float]) -> Rule:
    @precondition(lambda self: self.waiting_calls())
    @rule(
        data=st.data(),
        action=st.sampled_from(["callback", "priority", "move"]),
        priority=st.sampled_from(priorities),
    )
    def supervise(self: MachineBase, data: st.DataObject, action: str, priority: float) -> None:
        self.supervise_some_call(data, action, priority)

    return supervise


def read_waits_rule(queue_names: Sequence[str]) -> Rule:
    """A status publication: the first estimates (the order kept between reads, the
    counts kept on every change) are exactly the full computation's first ones."""

    @precondition(lambda self: self.router is not None)
    @rule(queue=st.sampled_from(queue_names), limit=st.integers(1, 5))
    def read_waits(self: MachineBase, queue: str, limit: int) -> None:
        full = self.r.estimated_waits(queue, self.now)
        assert self.r.estimated_waits(queue, self.now, limit) == full[:limit]
        assert self.r.waiting(queue) == len(full)

    return read_waits
