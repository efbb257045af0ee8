"""The router: queues, agents, skills and the matching between them. Sans-I/O.

Every public method takes ``now`` (monotonic seconds, never read from a clock), changes
the router's state, and returns the :mod:`queue_engine.actions` its shell must carry
out. :meth:`Router.handle` takes the same requests as data
(:mod:`queue_engine.inputs`). A request the state does not allow raises
:class:`~cti.errors.RoutingError` and changes nothing.

**Ranking.** Each queue keeps its waiting calls in rank order on a fixed-key heap
(:mod:`queue_engine.priority`). Calls are further split by *ring*: a queue's ``skills``
apply at first and each ``relax`` step loosens them once a call has waited long
enough, like bullseye rings. Because rings only loosen, an agent eligible for a ring
is eligible for every later one, so each (queue, ring) keeps its own heap and a call
moves outwards on a timer.

**Choosing a call for an agent.** An agent who frees up looks at the head of every
ring it is eligible for in every queue it serves, and takes the best by
``rank + the agent's priority for that queue``, then arrival. Aging keeps growing the
rank of every waiting call, so no queue starves: an agent's queue priority is worth a
fixed number of seconds of waiting, never more.

**Choosing an agent for a call.** The Ready agents of a queue are kept per ring in the
order of the queue's strategy (longest idle, fewest calls, least talk time, round
robin with memory, best proficiency); random draws one of them for each call placed
(from the router's seeded generator); ring-all offers the call to all of them. Agents
freed together (a ring-all offer answered, abandoned or lapsed) are all Ready before
any of them chooses a call, so a ring-all call rings every one of them.

**Exits on every way back.** Whenever a call enters or comes back into a queue (new,
moved, due, its offer lapsed or rejected, its ring widened, its queue reconfigured), a
caller on the line past the queue's ``max_wait`` takes the exit at once; otherwise the
exit timer is armed (once per deadline). So no caller waits longer than ``max_wait``
plus one offer timeout.

**Invariants** after every call (checked by the property tests):

* every call is in exactly one place: waiting, offered (to one agent, or to several
  for ring-all), talking, in wrap-up, or finished with exactly one record;
* no agent has more than one call;
* no call waits while a Ready agent could take it;
* each ring of each queue is served in rank order.

**Personal callbacks.** A callback scheduled ``agent_id=`` (an agent's "for me") is
reserved for that agent: when due it is offered to them if Ready, else it stays
*scheduled* (not waiting in its queue, not in its figures) on the agent's own heap and is
offered, before any queue call, when the agent next frees up. After its queue's
``personal_callback_wait_s``, or at once if the agent logs out, it joins its queue for
anyone with its age (from ``due``) and value. Declined or missed by the agent, it goes back
to its queue for anyone, like any call.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cti.errors import RoutingError
from cti.models import (
    AgentConfig,
    AgentState,
    CallDetailRecord,
    CallerInfo,
    ExitAction,
    QueueConfig,
    QueueExit,
    Segment,
    Strategy,
)
from queue_engine import inputs
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    ConsultChanged,
    ConsultState,
    DisconnectCall,
    ExitCall,
    JoinCall,
    MoveCall,
    OfferCall,
    RecordCall,
    RecordLeg,
    ReleaseLine,
    WithdrawOffer,
    WithdrawReason,
)
from queue_engine.inputs import AnyInput
from queue_engine.priority import fixed_key, starvation_bound_s

#: Reason given when an agent goes Not Ready on their own after missing offers.
MISSED_OFFER = "missed offer"
REJECTED_OFFER = "rejected offer"
NOT_READY_AFTER_CALL = "not ready after call"

_FINISHED_MEMORY = 100_000
#: A call may be moved by exit rules at most this many times (guards against loops).
_MAX_EXIT_MOVES = 8
#: Weight of the newest handle time in a queue's running average (for wait estimates).
_AHT_SMOOTHING = 0.05


class CallPhase(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    OFFERED = "offered"
    TALKING = "talking"
    WRAP_UP = "wrap_up"
    DONE = "done"


_BUSY = frozenset({AgentState.RESERVED, AgentState.TALKING, AgentState.WRAP_UP})
_PRESENT = _BUSY | {AgentState.READY}


@dataclass(slots=True, init=False)
class _Call:
    call_id: str
    queue: str
    caller: CallerInfo
    value: float
    """The caller's value and segment, read once (the router uses them on every step)."""
    segment: Segment
    arrived_at: float
    key: float
    seq: int
    kind: str
    priority: float | None
    """Supervisor's priority for this call, replacing the queue's."""
    phase: CallPhase
    ring: int
    version: int
    """Bumped whenever the call's heap entry is replaced; older entries are stale."""
    agent_id: str | None
    offered_to: set[str]
    offered_at: float | None
    answered_at: float | None
    ended_at: float | None
    offers: int
    callback_number: str | None
    callback_requested_at: float | None
    exit_moves: int
    handled_by: str | None
    """The agent who talks (or last talked) with the caller: the record's agent."""
    leg_started: float
    """When the current agent's part of the conversation began (talk time)."""
    consult: str | None
    """The agent consulted about this call (ringing or talking), if any."""
    consult_state: ConsultState
    trail: list[str]
    """Transfers and the dispositions of agents who handed the call on (record's note)."""
    reserved_for: str | None
    """A personal callback's agent (kept once it went to anyone, for the record)."""
    exit_at: float | None
    """When the max-wait timer last armed for this call fires (not armed twice)."""

    # Written out, not generated: compiled with mypyc, a generated __init__ stays
    # interpreted, and the router makes one of these per call.
    def __init__(
        self,
        call_id: str,
        queue: str,
        caller: CallerInfo,
        arrived_at: float,
        seq: int,
        kind: str = "inbound",
    ) -> None:
        self.call_id = call_id
        self.queue = queue
        self.caller = caller
        self.value = caller.value
        self.segment = caller.segment
        self.arrived_at = arrived_at
        self.key = 0.0
        self.seq = seq
        self.kind = kind
        self.priority = None
        self.phase = CallPhase.QUEUED
        self.ring = 0
        self.version = 0
        self.agent_id = None
        self.offered_to = set()
        self.offered_at = None
        self.answered_at = None
        self.ended_at = None
        self.offers = 0
        self.callback_number = None
        self.callback_requested_at = None
        self.exit_moves = 0
        self.handled_by = None
        self.leg_started = 0.0
        self.consult = None
        self.consult_state = ""
        self.trail = []
        self.reserved_for = None
        self.exit_at = None


@dataclass(slots=True)
class _Agent:
    agent_id: str
    queues: dict[str, float]
    """Queue -> this agent's priority (rank bonus) for it, in the order configured."""
    skills: dict[str, int]
    state: AgentState = AgentState.LOGGED_OUT
    reason: str = ""
    since: float = 0.0
    ready_seq: int = 0
    """Order of going Ready: breaks ties between agents Ready since the same moment."""
    token: int = 0
    """Bumped on every state change; timer entries carry the token they saw."""
    call_id: str | None = None
    deadline: float | None = None
    wrap_started: float | None = None
    missed: int = 0
    not_ready_after_call: bool = False
    calls_handled: int = 0
    talk_time: float = 0.0
    pool_keys: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Queue -> the key under which this Ready agent sits in that queue's pool."""
    handed_off: tuple[str, int | None] | None = None
    """In wrap-up of a call it transferred: (the call's queue then, its customer id)."""


class _Pool:
    """Ready agents of one ring of one queue, kept sorted by the strategy's key."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[tuple[Any, ...], str]] = []

    def add(self, key: tuple[Any, ...], agent_id: str) -> None:
        bisect.insort(self.entries, (key, agent_id))

    def remove(self, key: tuple[Any, ...], agent_id: str) -> None:
        i = bisect.bisect_left(self.entries, (key, agent_id))
        if i < len(self.entries) and self.entries[i] == (key, agent_id):
            del self.entries[i]

    def first(self) -> tuple[tuple[Any, ...], str] | None:
        return self.entries[0] if self.entries else None

    def first_after(self, index: int) -> tuple[tuple[Any, ...], str] | None:
        """Round robin: the first entry whose key (member index) is above ``index``."""
        i = bisect.bisect_right(self.entries, ((index, "\U0010ffff"), ""))
        if i < len(self.entries):
            return self.entries[i]
        return self.entries[0] if self.entries else None


@dataclass(slots=True)
class _Queue:
    config: QueueConfig
    rings: list[tuple[float, dict[str, int]]]
    calls: list[list[tuple[float, int, str, int]]]
    """Per ring, a heap of (-fixed_key, seq, call_id, version); stale entries skipped."""
    pools: list[_Pool]
    by_arrival: list[tuple[float, int, str]] = field(default_factory=list)
    waiting: int = 0
    members: dict[str, int | None] = field(default_factory=dict)
    """Agent id -> the first ring the agent is eligible for (None: never)."""
    order: dict[str, int] = field(default_factory=dict)
    """Agent id -> member index, for round robin."""
    rr_last: int = -1
    aht: float = 180.0
    present: int = 0
    """Members who may take this queue's calls and are Ready or busy."""
    logged_in: int = 0
    """Members who may take this queue's calls and are logged in."""

    @classmethod
    def build(cls, config: QueueConfig) -> _Queue:
        rings = [(after, dict(skills)) for after, skills in config.rings]
        return cls(
            config,
            rings,
            calls=[[] for _ in rings],
            pools=[_Pool() for _ in rings],
            aht=config.expected_aht_s,
        )

    def ring_for(self, arrived_at: float, now: float) -> int:
        if len(self.rings) == 1:
            return 0
        # ``now >= arrived_at + after``, the very sum the ring timer is set for: with
        # ``now - arrived_at >= after`` rounding can make the timer fire without effect.
        ring = 0
        for i, (after, _) in enumerate(self.rings):
            if now >= arrived_at + after:
                ring = i
        return ring

    def first_ring(self, skills: Mapping[str, int]) -> int | None:
        for i, (_, required) in enumerate(self.rings):
            if all(skills.get(s, 0) >= level for s, level in required.items()):
                return i
        return None


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """A queue's state at one moment, for the wallboard and the status line."""

    queue: str
    waiting: int
    longest_wait_s: float
    agents_ready: int
    agents_busy: int
    agents_logged_in: int


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    agent_id: str
    state: AgentState
    reason: str
    since: float
    call_id: str | None
    deadline: float | None
    calls_handled: int


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    call_id: str
    position: int
    """1 for the call that will be served next."""
    wait_s: float
    """Estimated further wait, in seconds."""


class Router:
    """The automatic call distributor's core (see the module docstring)."""

    def __init__(
        self,
        queues: Iterable[QueueConfig],
        *,
        max_missed_offers: int = 1,
        agents: Iterable[AgentConfig] = (),
        seed: int = 0,
    ) -> None:
        self._queues: dict[str, _Queue] = {q.name: _Queue.build(q) for q in queues}
        if not self._queues:
            raise RoutingError("the router needs at least one queue")
        if max_missed_offers < 1:
            raise RoutingError(f"max_missed_offers must be at least 1, got {max_missed_offers}")
        self.max_missed_offers = max_missed_offers
        self._agents: dict[str, _Agent] = {}
        self._calls: dict[str, _Call] = {}
        """Calls not yet finished. Heap entries of calls no longer here are stale."""
        self._finished: OrderedDict[str, None] = OrderedDict()
        """Recently finished call ids, so that a repeated hang-up is recognised."""
        self._timers: list[tuple[float, int, str, str, int]] = []
        """Heap of (when, seq, kind, agent or call id, token)."""
        self._seq = itertools.count()
        self._rng = random.Random(seed)
        self._personal: dict[str, list[tuple[float, int, str]]] = {}
        """Agent id -> heap of (-fixed_key, seq, call_id): due callbacks reserved for it."""
        for agent in agents:
            self.configure_agent(agent)

    # --- the one entry point for shells ----------------------------------------------

    def handle(self, event: AnyInput, now: float) -> list[Action]:
        """Apply one input (see :mod:`queue_engine.inputs`) at ``now``."""
        match event:
            case inputs.AgentLogsIn(agent_id=a):
                return self.login(a, now)
            case inputs.AgentLogsOut(agent_id=a):
                return self.logout(a, now)
            case inputs.AgentGoesReady(agent_id=a):
                return self.set_ready(a, now)
            case inputs.AgentGoesNotReady(agent_id=a, reason=reason):
                return self.set_not_ready(a, reason, now)
            case inputs.AgentAccepts(agent_id=a, call_id=c):
                return self.accept(a, c, now)
            case inputs.AgentRejects(agent_id=a, call_id=c):
                return self.reject(a, c, now)
            case inputs.AgentHangsUp(agent_id=a, call_id=c):
                return self.agent_hang_up(a, c, now)
            case inputs.AgentFinishesWrapUp(agent_id=a, call_id=c, disposition=d, note=note):
                return self.complete_wrap_up(a, c, d, now, note=note)
            case inputs.AgentExtendsWrapUp(agent_id=a, call_id=c, seconds=secs):
                return self.extend_wrap_up(a, c, secs, now)
            case inputs.AgentTransfers(agent_id=a, call_id=c, queue=q, to_agent=b):
                return self.transfer(a, c, now, queue=q, to_agent=b)
            case inputs.AgentConsults(agent_id=a, call_id=c, to_agent=b):
                return self.consult(a, c, b, now)
            case inputs.AgentCompletesConsult(agent_id=a, call_id=c):
                return self.complete_consult(a, c, now)
            case inputs.AgentCancelsConsult(agent_id=a, call_id=c):
                return self.cancel_consult(a, c, now)
            case inputs.AgentConferences(agent_id=a, call_id=c):
                return self.conference(a, c, now)
            case inputs.AgentDials(agent_id=a, call_id=c, number=n, caller=caller, queue=q):
                return self.agent_dials(a, c, n, caller, now, queue=q)
            case inputs.CallArrives(call_id=c, queue=q, caller=caller, direction=d):
                return self.enqueue(c, q, caller, now, direction=d)
            case inputs.CallerHangsUp(call_id=c):
                return self.caller_hung_up(c, now)
            case inputs.CallerAsksCallback(call_id=c, number=number):
                return self.request_callback(c, number, now)
            case inputs.CallbackScheduled(
                call_id=c, queue=q, caller=caller, due=due, number=n, for_agent=a
            ):
                return self.schedule_callback(c, q, caller, due, n, now, agent_id=a or None)
            case inputs.CallPriorityChanged(call_id=c, priority=p):
                return self.set_call_priority(c, p, now)
            case inputs.CallMoved(call_id=c, queue=q):
                return self.move_call(c, q, now, reason="supervisor")
            case inputs.TimePasses():
                return self.advance(now)
            case inputs.QueueConfigured(queue=config):
                return self.configure_queue(config, now)
            case inputs.AgentConfigured(agent=config):
                return self.configure_agent(config, now)
        raise RoutingError(f"unknown router input {event!r}")  # pragma: no cover

    # --- configuration ---------------------------------------------------------------

    @property
    def queue_names(self) -> list[str]:
        return list(self._queues)

    def queue_config(self, name: str) -> QueueConfig:
        return self._queue(name).config

    def starvation_bound_s(self, queue: str) -> float:
        return starvation_bound_s(self._queue(queue).config)

    def add_agent(
        self,
        agent_id: str,
        queues: Sequence[str] | Mapping[str, float],
        skills: Mapping[str, int] | None = None,
    ) -> None:
        """Register a new agent (Logged Out) who serves ``queues``."""
        if agent_id in self._agents:
            raise RoutingError(f"agent {agent_id!r} already exists")
        bonus = dict(queues) if isinstance(queues, Mapping) else dict.fromkeys(queues, 0.0)
        self.configure_agent(AgentConfig(id=agent_id, skills=dict(skills or {}), queues=bonus))

    def configure_agent(self, config: AgentConfig, now: float = 0.0) -> list[Action]:
        """Add an agent, or change its skills and queues (it keeps its state)."""
        if not config.queues:
            raise RoutingError(f"agent {config.id!r} must serve at least one queue")
        for name in config.queues:
            self._queue(name)
        agent = self._agents.get(config.id)
        if agent is None:
            agent = _Agent(config.id, dict(config.queues), dict(config.skills))
            self._agents[config.id] = agent
            touched = set(config.queues)
        else:
            touched = set(agent.queues) | set(config.queues)
            self._leave_pools(agent)
            for name in agent.queues:
                self._queues[name].members.pop(agent.agent_id, None)
            agent.queues = dict(config.queues)
            agent.skills = dict(config.skills)
        for name in agent.queues:
            q = self._queues[name]
            q.members[agent.agent_id] = q.first_ring(agent.skills)
            q.order.setdefault(agent.agent_id, len(q.order))
        out: list[Action] = []
        for name in sorted(touched):  # sorted: replay must not depend on hashing
            self._recount(self._queues[name])
            self._exit_unstaffed(self._queues[name], now, out)
        if agent.state is AgentState.READY:
            self._make_ready(agent, now, out)
        return out

    def configure_queue(self, config: QueueConfig, now: float) -> list[Action]:
        """Add a queue, or change its parameters; waiting calls keep their age."""
        old = self._queues.get(config.name)
        if old is None:
            self._queues[config.name] = _Queue.build(config)
            return []
        new = _Queue.build(config)
        new.order, new.rr_last, new.aht = old.order, old.rr_last, old.aht
        self._queues[config.name] = new
        for agent_id in old.members:
            agent = self._agents[agent_id]
            agent.pool_keys.pop(config.name, None)
            new.members[agent_id] = new.first_ring(agent.skills)
        self._recount(new)
        out: list[Action] = []
        overdue: list[_Call] = []  # past the new max_wait: they take the exit below
        for call in [c for c in self._calls.values() if c.queue == config.name]:
            call.key = self._key(call)
            if call.phase is CallPhase.QUEUED:
                due = self._max_wait_due(call, new)
                if due is not None and now >= due:
                    overdue.append(call)
                else:
                    self._wait(call, new, now)
        new.by_arrival = [e for e in old.by_arrival if self._is_queued(e[2])]
        heapq.heapify(new.by_arrival)
        for agent_id in new.members:
            agent = self._agents[agent_id]
            if agent.state is AgentState.READY:
                self._leave_pools(agent)
                self._join_pools(agent)
        for call in sorted(overdue, key=lambda c: c.seq):  # replay: never by hashing
            self._place(call, new, now, out)
        self._exit_unstaffed(new, now, out)
        # The new rules may let Ready agents take waiting calls: by rank, each to the
        # agent the queue's strategy picks.
        for call_id in self.waiting_in_order(config.name):
            call = self._calls[call_id]
            agents = self._choose_agents(new, call.ring)
            if agents:
                new.waiting -= 1
                call.version += 1
                self._offer(call, agents, now, out)
        return out

    # --- agent requests --------------------------------------------------------------

    def login(self, agent_id: str, now: float) -> list[Action]:
        agent = self._agent(agent_id)
        if agent.state is not AgentState.LOGGED_OUT:
            return []
        out: list[Action] = []
        self._set_state(agent, AgentState.NOT_READY, "logged in", now, out)
        return out

    def logout(self, agent_id: str, now: float) -> list[Action]:
        agent = self._agent(agent_id)
        if agent.state in _BUSY:
            raise RoutingError(
                f"agent {agent_id!r} is {agent.state.value} with call {agent.call_id}; "
                "finish the call and its wrap-up before logging out"
            )
        out: list[Action] = []
        if agent.state is not AgentState.LOGGED_OUT:
            self._set_state(agent, AgentState.LOGGED_OUT, "", now, out)
            self._check_staffing(agent, now, out)
            for _, _, call_id in sorted(self._personal.pop(agent_id, [])):
                call = self._calls.get(call_id)  # its due personal callbacks: for anyone
                if call is not None and call.phase is CallPhase.SCHEDULED:
                    self._enter(call, self._queues[call.queue], now, out)
        return out

    def set_ready(self, agent_id: str, now: float) -> list[Action]:
        agent = self._agent(agent_id)
        if agent.state is AgentState.READY:
            return []
        if agent.state is not AgentState.NOT_READY:
            raise RoutingError(
                f"agent {agent_id!r} cannot go Ready while {agent.state.value} "
                "(log in first, or finish the call and its wrap-up)"
            )
        agent.missed = 0
        out: list[Action] = []
        self._make_ready(agent, now, out)
        return out

    def set_not_ready(self, agent_id: str, reason: str, now: float) -> list[Action]:
        """Ready or Not Ready: go Not Ready now. Busy: go Not Ready after this call."""
        agent = self._agent(agent_id)
        out: list[Action] = []
        if agent.state in (AgentState.READY, AgentState.NOT_READY):
            self._set_state(agent, AgentState.NOT_READY, reason, now, out)
            self._check_staffing(agent, now, out)
        elif agent.state in (AgentState.TALKING, AgentState.WRAP_UP):
            agent.not_ready_after_call = True
        elif agent.state is AgentState.RESERVED:
            assert agent.call_id is not None
            return self.reject(agent_id, agent.call_id, now, reason=reason)
        else:
            raise RoutingError(f"agent {agent_id!r} is logged out; log in first")
        return out

    def accept(self, agent_id: str, call_id: str, now: float) -> list[Action]:
        agent = self._agent(agent_id)
        consulted = self._consulted(agent, call_id)
        if consulted is not None:
            return self._join_consult(consulted, agent, now)
        call = self._offered_to(agent, call_id)
        out: list[Action] = []
        if len(call.offered_to) > 1:  # ring-all: the others are free again
            peers = [self._agents[a] for a in sorted(call.offered_to - {agent_id})]
            call.offered_to = {agent_id}
            for peer in peers:
                out.append(WithdrawOffer(call_id, peer.agent_id, "answered_elsewhere"))
            self._free_all(peers, now, out)
        call.phase = CallPhase.TALKING
        call.agent_id = call.handled_by = agent_id
        answered = call.answered_at is not None  # transferred: connected already
        call.answered_at = call.answered_at if answered else now
        call.leg_started = now
        agent.missed = 0
        dial = call.callback_number if call.callback_number is not None else None
        out.insert(0, ConnectCall(call_id, agent_id, None if answered else dial, answered))
        self._set_state(agent, AgentState.TALKING, "", now, out, call_id=call_id)
        return out

    def reject(
        self, agent_id: str, call_id: str, now: float, *, reason: str = REJECTED_OFFER
    ) -> list[Action]:
        agent = self._agent(agent_id)
        consulted = self._consulted(agent, call_id)
        if consulted is not None:
            note = f"{agent_id} declined the consultation"
            return self._drop_consult(consulted, "rejected", note, now, not_ready=reason)
        call = self._offered_to(agent, call_id)
        out: list[Action] = [WithdrawOffer(call_id, agent_id, "rejected")]
        self._set_state(agent, AgentState.NOT_READY, reason, now, out)
        call.offered_to.discard(agent_id)
        if not call.offered_to:
            self._requeue(call, now, out)
        self._check_staffing(agent, now, out)
        return out

    def agent_hang_up(self, agent_id: str, call_id: str, now: float) -> list[Action]:
        agent = self._agent(agent_id)
        call = self._calls.get(call_id)
        if call is not None and call.consult == agent_id and call.consult_state:
            note = f"{agent_id} left the consultation"
            return self._drop_consult(call, "cancelled", note, now)
        if call is None or call.agent_id != agent_id or call.phase is not CallPhase.TALKING:
            raise RoutingError(f"agent {agent_id!r} is not talking on call {call_id!r}")
        if call.consult_state == "conference":  # the caller stays with the other agent
            return self.complete_consult(agent_id, call_id, now)
        out: list[Action] = [DisconnectCall(call_id, agent_id, "agent")]
        self._end_conversation(call, agent, now, out)
        return out

    def complete_wrap_up(
        self, agent_id: str, call_id: str, disposition: str, now: float, *, note: str = ""
    ) -> list[Action]:
        agent = self._agent(agent_id)
        if agent.state is not AgentState.WRAP_UP or agent.call_id != call_id:
            raise RoutingError(f"agent {agent_id!r} is not in wrap-up of call {call_id!r}")
        out: list[Action] = []
        self._finish_wrap_up(agent, disposition, note, now, out)
        return out

    def extend_wrap_up(
        self, agent_id: str, call_id: str, seconds: float, now: float
    ) -> list[Action]:
        """More wrap-up time, up to the queue's ``wrap_up_max_s`` from the call's end."""
        agent = self._agent(agent_id)
        if agent.state is not AgentState.WRAP_UP or agent.call_id != call_id:
            raise RoutingError(f"agent {agent_id!r} is not in wrap-up of call {call_id!r}")
        queue = agent.handed_off[0] if agent.handed_off else self._calls[call_id].queue
        cfg = self._queues[queue].config
        cap = cfg.wrap_up_max_s if cfg.wrap_up_max_s is not None else cfg.wrap_up_s
        assert agent.wrap_started is not None
        assert agent.deadline is not None
        deadline = min(agent.deadline + max(0.0, seconds), agent.wrap_started + cap)
        if deadline <= agent.deadline:
            raise RoutingError(
                f"wrap-up of call {call_id!r} is at its cap of {cap:g} s for queue {queue!r}"
            )
        out: list[Action] = []
        started = agent.wrap_started
        self._set_state(
            agent, AgentState.WRAP_UP, "", agent.since, out, call_id=call_id, deadline=deadline
        )
        agent.wrap_started = started
        return out

    # --- transfers, consultations, manual dial (docs/acd.md, "Transfers") ------------

    def transfer(
        self, agent_id: str, call_id: str, now: float, *, queue: str = "", to_agent: str = ""
    ) -> list[Action]:
        """Blind transfer: the call waits in ``queue`` with its age and value, or is
        offered to ``to_agent`` (Ready; if it lets the offer go, the call goes back to
        its queue). The agent goes to wrap-up; the call keeps one record."""
        agent = self._agent(agent_id)
        call = self._talking(agent, call_id)
        if bool(queue) == bool(to_agent):
            raise RoutingError(f"transfer of call {call_id!r}: name a queue or an agent")
        target = self._free_agent(to_agent, agent_id) if to_agent else None
        q = self._queue(queue) if queue else self._queues[call.queue]
        out: list[Action] = []
        self._hand_off(call, agent, f"queue {queue}" if queue else f"agent {to_agent}", now, out)
        call.version += 1
        if target is not None:
            self._offer(call, [target], now, out)
        else:
            if q.config.name != call.queue:
                out.append(MoveCall(call_id, call.queue, q.config.name, "transfer"))
                call.queue = q.config.name
                call.key = self._key(call)
            self._enter(call, q, now, out, moved=True)
        return out

    def consult(self, agent_id: str, call_id: str, to_agent: str, now: float) -> list[Action]:
        """Consult transfer, first step: ring ``to_agent`` (Ready) about the call."""
        agent = self._agent(agent_id)
        call = self._talking(agent, call_id)
        target = self._free_agent(to_agent, agent_id)
        call.consult, call.consult_state = to_agent, "ringing"
        deadline = now + self._queues[call.queue].config.offer_timeout_s
        out: list[Action] = []
        self._set_state(
            target, AgentState.RESERVED, "", now, out, call_id=call_id, deadline=deadline
        )
        out.append(OfferCall(call_id, to_agent, call.queue, deadline, consult_from=agent_id))
        out.append(ConsultChanged(call_id, agent_id, to_agent, "ringing"))
        return out

    def complete_consult(self, agent_id: str, call_id: str, now: float) -> list[Action]:
        """Hand the caller to the agent consulted (talking); this agent goes to wrap-up."""
        agent = self._agent(agent_id)
        call = self._talking(agent, call_id, consulting=True)
        if call.consult is None or call.consult_state not in ("talking", "conference"):
            raise RoutingError(f"call {call_id!r}: no agent consulted has answered yet")
        target = self._agents[call.consult]
        call.consult, call.consult_state = None, ""
        out: list[Action] = []
        self._hand_off(call, agent, f"agent {target.agent_id} (consulted)", now, out)
        call.agent_id = call.handled_by = target.agent_id
        call.offered_to = {target.agent_id}
        call.leg_started = now
        out.append(
            ConsultChanged(
                call_id, target.agent_id, agent_id, "", f"{agent_id} handed you the caller"
            )
        )
        return out

    def cancel_consult(self, agent_id: str, call_id: str, now: float) -> list[Action]:
        """End the consultation: the agent consulted is free, the caller stays here."""
        agent = self._agent(agent_id)
        call = self._talking(agent, call_id, consulting=True)
        return self._drop_consult(call, "cancelled", "consultation ended", now)

    def conference(self, agent_id: str, call_id: str, now: float) -> list[Action]:
        """The held caller joins the consultation (the agent consulted has answered)."""
        agent = self._agent(agent_id)
        call = self._talking(agent, call_id, consulting=True)
        if call.consult is None or call.consult_state != "talking":
            raise RoutingError(f"call {call_id!r}: no agent consulted is talking to join")
        call.consult_state = "conference"
        return [
            ConsultChanged(call_id, agent_id, call.consult, "conference"),
            ConsultChanged(call_id, call.consult, agent_id, "conference"),
        ]

    def agent_dials(
        self,
        agent_id: str,
        call_id: str,
        number: str,
        caller: CallerInfo,
        now: float,
        *,
        queue: str = "",
    ) -> list[Action]:
        """The line placed ``call_id`` to ``number`` for the agent (Ready or Not Ready):
        it talks at once. Recorded as kind ``manual`` under ``queue`` (default: the
        agent's first)."""
        agent = self._agent(agent_id)
        if agent.state not in (AgentState.READY, AgentState.NOT_READY):
            raise RoutingError(
                f"agent {agent_id!r} is {agent.state.value}: dial when Ready or Not Ready"
            )
        self._new_call_id(call_id)
        name = self._queue(queue).config.name if queue else next(iter(agent.queues))
        call = _Call(call_id, name, caller, now, next(self._seq), kind="manual")
        call.key = self._key(call)
        call.phase = CallPhase.TALKING
        call.agent_id = call.handled_by = agent_id
        call.offered_at = call.answered_at = call.leg_started = now
        call.offered_to = {agent_id}
        self._calls[call_id] = call
        out: list[Action] = []
        self._set_state(agent, AgentState.TALKING, "", now, out, call_id=call_id)
        return out

    def _talking(self, agent: _Agent, call_id: str, *, consulting: bool = False) -> _Call:
        """The call ``agent`` talks on (with a consultation under way if ``consulting``,
        else with none)."""
        call = self._calls.get(call_id)
        if call is None or call.agent_id != agent.agent_id or call.phase is not CallPhase.TALKING:
            raise RoutingError(f"agent {agent.agent_id!r} is not talking on call {call_id!r}")
        if consulting and call.consult is None:
            raise RoutingError(f"call {call_id!r} has no consultation under way")
        if not consulting and call.consult is not None:
            raise RoutingError(
                f"call {call_id!r}: finish or cancel the consultation with {call.consult!r} first"
            )
        return call

    def _free_agent(self, agent_id: str, asking: str) -> _Agent:
        if agent_id == asking:
            raise RoutingError(f"agent {asking!r} cannot transfer a call to itself")
        target = self._agent(agent_id)
        if target.state is not AgentState.READY:
            raise RoutingError(
                f"agent {agent_id!r} is {target.state.value.replace('_', ' ')}: only a Ready "
                "agent can take a transfer (or transfer to a queue)"
            )
        return target

    def _consulted(self, agent: _Agent, call_id: str) -> _Call | None:
        """The call ``agent`` is consulted about (ringing or talking), if it is."""
        call = self._calls.get(call_id)
        if call is not None and call.consult == agent.agent_id and agent.call_id == call_id:
            return call
        return None

    def _join_consult(self, call: _Call, agent: _Agent, now: float) -> list[Action]:
        if agent.state is not AgentState.RESERVED:
            raise RoutingError(f"agent {agent.agent_id!r} has answered the consultation already")
        call.consult_state = "talking"
        agent.missed = 0
        out: list[Action] = [JoinCall(call.call_id, agent.agent_id)]
        self._set_state(agent, AgentState.TALKING, "", now, out, call_id=call.call_id)
        assert call.agent_id is not None
        out.append(ConsultChanged(call.call_id, call.agent_id, agent.agent_id, "talking"))
        return out

    def _drop_consult(
        self,
        call: _Call,
        reason: WithdrawReason,
        note: str,
        now: float,
        *,
        not_ready: str = REJECTED_OFFER,
    ) -> list[Action]:
        """The consultation ends: the agent consulted is free (Ready, or Not Ready with
        ``not_ready`` if it asked for that instead of declining), its caller's agent told."""
        assert call.consult is not None
        target = self._agents[call.consult]
        call.consult, call.consult_state = None, ""
        out: list[Action] = [WithdrawOffer(call.call_id, target.agent_id, reason)]
        target.call_id = None
        if target.not_ready_after_call:
            target.not_ready_after_call = False
            not_ready = NOT_READY_AFTER_CALL
        if not_ready != REJECTED_OFFER:
            self._set_state(target, AgentState.NOT_READY, not_ready, now, out)
            self._check_staffing(target, now, out)
        else:
            self._make_ready(target, now, out)
        if call.agent_id is not None and reason != "caller_hung_up":
            out.append(ConsultChanged(call.call_id, call.agent_id, target.agent_id, "", note))
        return out

    def _hand_off(
        self, call: _Call, agent: _Agent, target: str, now: float, out: list[Action]
    ) -> None:
        """``agent`` hands the call on to ``target`` and goes to wrap-up of its part."""
        call.trail.append(f"transferred by {agent.agent_id} to {target}")
        out.append(DisconnectCall(call.call_id, agent.agent_id, "transfer"))
        agent.calls_handled += 1
        agent.talk_time += now - call.leg_started
        wrap = self._queues[call.queue].config.wrap_up_s
        customer = call.caller.customer.id if call.caller.customer else None
        self._set_state(
            agent, AgentState.WRAP_UP, "", now, out, call_id=call.call_id, deadline=now + wrap
        )
        agent.wrap_started = now
        agent.handed_off = (call.queue, customer)

    def _finish_leg(
        self, agent: _Agent, disposition: str, note: str, now: float, out: list[Action]
    ) -> None:
        """Wrap-up of a call the agent handed on is over: its disposition is kept (in
        the call's record if the call goes on, and as a :class:`RecordLeg`)."""
        assert agent.call_id is not None
        assert agent.handed_off is not None
        queue, customer = agent.handed_off
        call = self._calls.get(agent.call_id)
        if call is not None and (disposition or note):
            call.trail.append(f"{agent.agent_id}: {' '.join(filter(None, (disposition, note)))}")
        out.append(RecordLeg(agent.call_id, agent.agent_id, queue, customer, disposition, note))
        agent.handed_off = None
        self._wrap_up_over(agent, now, out)

    # --- calls -----------------------------------------------------------------------

    def enqueue(
        self,
        call_id: str,
        queue: str,
        caller: CallerInfo,
        now: float,
        *,
        direction: str = "inbound",
    ) -> list[Action]:
        """A new call enters ``queue``: offered at once if an agent can take it, else waits.

        ``direction`` "outbound" is a dialer's call answered by a person (its record's
        ``kind``)."""
        self._new_call_id(call_id)
        q = self._queue(queue)
        call = _Call(call_id, queue, caller, now, next(self._seq), kind=direction)
        call.key = self._key(call)
        self._calls[call_id] = call
        out: list[Action] = []
        self._enter(call, q, now, out)
        return out

    def schedule_callback(
        self,
        call_id: str,
        queue: str,
        caller: CallerInfo,
        due: float,
        number: str,
        now: float,
        *,
        agent_id: str | None = None,
    ) -> list[Action]:
        """A callback to ``number`` joins ``queue`` at ``due`` (at once if that is past).

        It ranks by its customer's value like a call; its age counts from ``due``.
        ``agent_id``: reserved for that agent, who must serve ``queue`` (module docstring).
        """
        self._new_call_id(call_id)
        q = self._queue(queue)
        if agent_id is not None and agent_id not in q.members:
            theirs = ", ".join(self._agent(agent_id).queues)
            raise RoutingError(
                f"agent {agent_id!r} does not serve queue {queue!r}; "
                f"a callback for them must be in one of their queues ({theirs})"
            )
        call = _Call(call_id, queue, caller, max(due, now), next(self._seq), kind="callback")
        call.callback_number = number
        call.callback_requested_at = now
        call.reserved_for = agent_id
        call.key = self._key(call)
        self._calls[call_id] = call
        out: list[Action] = []
        if due <= now:
            self._due(call, now, out)
        else:
            call.phase = CallPhase.SCHEDULED
            self._timer(due, "due", call_id)
        return out

    def caller_hung_up(self, call_id: str, now: float) -> list[Action]:
        """The caller left: abandoned if not yet answered, else the conversation ends."""
        call = self._calls.get(call_id)
        if call is None:
            if call_id in self._finished:
                return []  # the call is over already: a repeated event changes nothing
            raise RoutingError(f"hang-up for call {call_id!r}, which the router never saw")
        out: list[Action] = []
        if call.callback_number is not None and call.phase in (
            CallPhase.SCHEDULED,
            CallPhase.QUEUED,
            CallPhase.OFFERED,
        ):
            return out  # a callback's line is already released; the callback stands
        if call.phase is CallPhase.QUEUED:
            self._queues[call.queue].waiting -= 1
            self._finish_call(call, now, "abandoned", out)
        elif call.phase is CallPhase.OFFERED:
            agents = self._withdraw_offers(call, "caller_hung_up", out)
            self._finish_call(call, now, "abandoned", out)
            self._free_all(agents, now, out)  # not their fault: Ready, maybe for the next
        elif call.phase is CallPhase.TALKING:
            agent = self._agent(call.agent_id or "")
            out.append(DisconnectCall(call_id, agent.agent_id, "caller"))
            self._end_conversation(call, agent, now, out)
        # In wrap-up the caller is already gone: a repeated event changes nothing.
        return out

    def request_callback(self, call_id: str, number: str, now: float) -> list[Action]:
        """Virtual hold: the waiting caller hangs up and is called back from their place."""
        call = self._calls.get(call_id)
        if call is None or call.phase is not CallPhase.QUEUED:
            raise RoutingError(f"call {call_id!r} is not waiting, so it cannot become a callback")
        if not number:
            raise RoutingError(f"call {call_id!r}: a callback needs a number to call back")
        call.callback_number = number
        call.callback_requested_at = now
        call.kind = "callback"
        return [ReleaseLine(call_id)]

    def set_call_priority(self, call_id: str, priority: float, now: float) -> list[Action]:
        """Give one waiting call its own priority instead of its queue's; age is kept."""
        call = self._waiting(call_id)
        call.priority = priority
        call.key = self._key(call)
        q = self._queues[call.queue]
        q.waiting -= 1
        out: list[Action] = []
        self._place(call, q, now, out)  # its ring may have moved on: offer if it can be
        return out

    def move_call(self, call_id: str, queue: str, now: float, *, reason: str) -> list[Action]:
        """Move a waiting call to another queue; it keeps its age (arrival time)."""
        call = self._waiting(call_id)
        target = self._queue(queue)
        if queue == call.queue:
            return []
        source = self._queues[call.queue]
        source.waiting -= 1
        call.version += 1
        out: list[Action] = [MoveCall(call_id, call.queue, queue, reason)]
        call.queue = queue
        call.key = self._key(call)
        self._enter(call, target, now, out, moved=True)
        return out

    # --- time ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`advance` next has something to do."""
        while self._timers:
            when, _, kind, ref, token = self._timers[0]
            if kind != "agent" or self._agents[ref].token == token:
                return when
            heapq.heappop(self._timers)
        return None

    def advance(self, now: float) -> list[Action]:
        """Fire every deadline at or before ``now``."""
        out: list[Action] = []
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > now:
                return out
            _, _, kind, ref, _ = heapq.heappop(self._timers)
            if kind == "agent":
                agent = self._agents[ref]
                if agent.state is AgentState.RESERVED:
                    self._offer_lapsed(agent, now, out)
                elif agent.state is AgentState.WRAP_UP:
                    self._finish_wrap_up(agent, "", "", now, out)
                continue
            call = self._calls.get(ref)
            if call is None:
                continue
            if kind == "due" and call.phase is CallPhase.SCHEDULED:
                self._due(call, now, out)
            elif kind == "personal" and call.phase is CallPhase.SCHEDULED:
                self._enter(call, self._queues[call.queue], now, out)  # waited enough
            elif kind == "ring" and call.phase is CallPhase.QUEUED:
                q = self._queues[call.queue]
                if q.ring_for(call.arrived_at, now) > call.ring:
                    q.waiting -= 1
                    self._place(call, q, now, out)
            elif kind == "max_wait" and call.phase is CallPhase.QUEUED:
                q = self._queues[call.queue]
                due = self._max_wait_due(call, q)
                if due is not None and now >= due:  # else a later timer is armed
                    q.waiting -= 1
                    self._place(call, q, now, out)  # takes the exit

    # --- views -----------------------------------------------------------------------

    def snapshot(self, queue: str, now: float) -> QueueSnapshot:
        q = self._queue(queue)
        while q.by_arrival and not self._is_queued(q.by_arrival[0][2], queue):
            heapq.heappop(q.by_arrival)
        longest = now - q.by_arrival[0][0] if q.by_arrival else 0.0
        states = [self._agents[a].state for a in q.members]
        return QueueSnapshot(
            queue=queue,
            waiting=q.waiting,
            longest_wait_s=max(0.0, longest),
            agents_ready=sum(s is AgentState.READY for s in states),
            agents_busy=sum(s in _BUSY for s in states),
            agents_logged_in=sum(s is not AgentState.LOGGED_OUT for s in states),
        )

    def agent(self, agent_id: str) -> AgentSnapshot:
        a = self._agent(agent_id)
        return AgentSnapshot(
            a.agent_id, a.state, a.reason, a.since, a.call_id, a.deadline, a.calls_handled
        )

    def waiting(self, queue: str) -> int:
        """How many calls wait in ``queue`` (O(1))."""
        return self._queue(queue).waiting

    def agent_ids(self) -> list[str]:
        return list(self._agents)

    def agent_queues(self, agent_id: str) -> list[str]:
        return list(self._agent(agent_id).queues)

    def has_agent(self, agent_id: str) -> bool:
        return agent_id in self._agents

    def call_caller(self, call_id: str) -> CallerInfo:
        return self._call(call_id).caller

    def call_queue(self, call_id: str) -> str:
        return self._call(call_id).queue

    def call_phase(self, call_id: str) -> CallPhase:
        return self._call(call_id).phase

    def call_agent(self, call_id: str) -> str | None:
        """The agent the call is offered to (one), talking with, or wrapping up."""
        return self._call(call_id).agent_id

    def call_consult(self, call_id: str) -> tuple[str | None, ConsultState]:
        """The agent consulted about the call and how far (ringing, talking, conference)."""
        call = self._call(call_id)
        return call.consult, call.consult_state

    def call_arrived_at(self, call_id: str) -> float:
        return self._call(call_id).arrived_at

    def call_kind(self, call_id: str) -> str:
        return self._call(call_id).kind

    def call_ring(self, call_id: str) -> int:
        return self._call(call_id).ring

    def offered_to(self, call_id: str) -> list[str]:
        return sorted(self._call(call_id).offered_to)

    def waiting_in_order(self, queue: str) -> list[str]:
        """Waiting call ids of ``queue``, best first (for the wallboard and tests).

        Reads only this queue's heaps: O(w log w) for w calls waiting here.
        """
        q = self._queue(queue)
        live = [
            entry
            for ring, heap in enumerate(q.calls)
            for entry in heap
            if self._head_valid(entry, q, ring)
        ]
        live.sort()
        return [call_id for _, _, call_id, _ in live]

    def estimated_waits(self, queue: str, now: float) -> list[WaitEstimate]:
        """Position and estimated further wait of every waiting call of ``queue``.

        Position 1 is served next. With ``r`` Ready agents the first ``r`` wait nothing;
        after them, each place costs the queue's average handle time divided by the
        agents present (Ready or busy): ``wait(p) = (p - r) * AHT / n``. The average
        handle time starts at ``expected_aht_s`` and follows finished calls.
        """
        q = self._queue(queue)
        order = self.waiting_in_order(queue)
        states = [self._agents[a].state for a, ring in q.members.items() if ring is not None]
        present = sum(s in _PRESENT for s in states)
        ready = sum(s is AgentState.READY for s in states)
        out = []
        for i, call_id in enumerate(order, start=1):
            ahead = i - ready
            wait = float("inf") if present == 0 else max(0, ahead) * q.aht / present
            out.append(WaitEstimate(call_id, i, wait))
        return out

    def active_call_ids(self) -> list[str]:
        """Calls not yet finished: scheduled, waiting, offered, talking or in wrap-up."""
        return list(self._calls)

    # --- internals: lookups ----------------------------------------------------------

    def _queue(self, name: str) -> _Queue:
        try:
            return self._queues[name]
        except KeyError:
            known = ", ".join(sorted(self._queues))
            raise RoutingError(f"no queue named {name!r} (queues: {known})") from None

    def _agent(self, agent_id: str) -> _Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise RoutingError(f"no agent with id {agent_id!r}") from None

    def _call(self, call_id: str) -> _Call:
        try:
            return self._calls[call_id]
        except KeyError:
            raise RoutingError(f"no call with id {call_id!r}") from None

    def _waiting(self, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None or call.phase is not CallPhase.QUEUED:
            raise RoutingError(f"call {call_id!r} is not waiting in a queue")
        return call

    def _new_call_id(self, call_id: str) -> None:
        if call_id in self._calls or call_id in self._finished:
            raise RoutingError(f"call {call_id!r} is already known to the router")

    def _is_queued(self, call_id: str, queue: str | None = None) -> bool:
        call = self._calls.get(call_id)
        return (
            call is not None
            and call.phase is CallPhase.QUEUED
            and (queue is None or call.queue == queue)
        )

    def _offered_to(self, agent: _Agent, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if (
            call is None
            or agent.state is not AgentState.RESERVED
            or agent.call_id != call_id
            or call.phase is not CallPhase.OFFERED
            or agent.agent_id not in call.offered_to
        ):
            raise RoutingError(f"agent {agent.agent_id!r} has no offer of call {call_id!r}")
        return call

    def _key(self, call: _Call) -> float:
        cfg = self._queues[call.queue].config
        if call.priority is not None:
            cfg = cfg.model_copy(update={"priority": call.priority})
        return fixed_key(cfg, call.value, call.arrived_at)

    def _timer(self, when: float, kind: str, ref: str, token: int = 0) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), kind, ref, token))

    # --- internals: agents -----------------------------------------------------------

    def _set_state(
        self,
        agent: _Agent,
        state: AgentState,
        reason: str,
        now: float,
        out: list[Action],
        *,
        call_id: str | None = None,
        deadline: float | None = None,
    ) -> None:
        if agent.state is AgentState.READY:
            self._leave_pools(agent)
        was_present = agent.state in _PRESENT
        was_in = agent.state is not AgentState.LOGGED_OUT
        present_delta = (state in _PRESENT) - was_present
        in_delta = (state is not AgentState.LOGGED_OUT) - was_in
        if present_delta or in_delta:
            for name in agent.queues:
                q = self._queues[name]
                if q.members.get(agent.agent_id) is not None:
                    q.present += present_delta
                    q.logged_in += in_delta
        agent.state = state
        agent.reason = reason
        agent.since = now
        if state is AgentState.READY:
            agent.ready_seq = next(self._seq)
        agent.token += 1
        agent.call_id = call_id
        agent.deadline = deadline
        if deadline is not None:
            self._timer(deadline, "agent", agent.agent_id, agent.token)
        out.append(AgentStateSet(agent.agent_id, state, reason, call_id, deadline))

    def _leave_pools(self, agent: _Agent) -> None:
        for name, key in agent.pool_keys.items():
            q = self._queues[name]
            ring = q.members.get(agent.agent_id)
            if ring is not None:
                q.pools[ring].remove(key, agent.agent_id)
        agent.pool_keys.clear()

    def _pool_key(self, q: _Queue, agent: _Agent) -> tuple[Any, ...]:
        strategy = q.config.strategy
        tie = (agent.since, agent.ready_seq, agent.agent_id)  # kept across reconfiguration
        if strategy is Strategy.FEWEST_CALLS:
            return (agent.calls_handled, *tie)
        if strategy is Strategy.LEAST_TALK_TIME:
            return (agent.talk_time, *tie)
        if strategy is Strategy.BEST_PROFICIENCY:
            required = q.rings[0][1]
            score = sum(agent.skills.get(s, 0) for s in required) / max(1, len(required))
            return (-score, *tie)
        if strategy is Strategy.ROUND_ROBIN:
            return (q.order[agent.agent_id], agent.agent_id)
        return tie  # longest idle, ring-all, and random (drawn per call)

    def _make_ready(self, agent: _Agent, now: float, out: list[Action]) -> None:
        """The agent is free: take the best call it may take, or wait in the pools."""
        if self._personal and self._offer_personal(agent, now, out):
            return  # a callback it promised comes before its queues' calls
        while (best := self._best_call_for(agent, now)) is not None:
            q = self._queues[best.queue]
            heapq.heappop(q.calls[best.ring])
            q.waiting -= 1
            due = self._max_wait_due(best, q)
            if due is not None and now >= due:  # its exit timer fires at this very moment
                self._place(best, q, now, out)  # takes the exit; look again
                continue
            agents = [agent]
            if q.config.strategy is Strategy.RING_ALL:  # others Ready with it (_free_all)
                agents += self._choose_agents(q, best.ring)
            self._offer(best, agents, now, out)
            return
        if agent.state is not AgentState.READY:
            self._set_state(agent, AgentState.READY, "", now, out)
        self._join_pools(agent)

    def _best_call_for(self, agent: _Agent, now: float) -> _Call | None:
        """The best waiting call ``agent`` may take: rank + its bonus, then arrival."""
        best: _Call | None = None
        best_rank: tuple[float, float, int] = (0.0, 0.0, 0)
        for name, bonus in agent.queues.items():
            q = self._queues[name]
            first = q.members.get(agent.agent_id)
            if first is None:
                continue
            for ring in range(first, len(q.rings)):
                head = self._head(q, ring)
                if head is None:
                    continue
                r = (-(head.key + q.config.aging_rate * now + bonus), head.arrived_at, head.seq)
                if best is None or r < best_rank:
                    best, best_rank = head, r
        return best

    def _offer_personal(self, agent: _Agent, now: float, out: list[Action]) -> bool:
        """Offer the agent the best due callback reserved for it, if one still waits."""
        heap = self._personal.get(agent.agent_id)
        call = None
        while heap and call is None:
            call = self._calls.get(heapq.heappop(heap)[2])
            if call is not None and call.phase is not CallPhase.SCHEDULED:
                call = None  # gone to anyone meanwhile: a stale entry
        if heap is not None and not heap:
            del self._personal[agent.agent_id]
        if call is None:
            return False
        call.ring = self._queues[call.queue].ring_for(call.arrived_at, now)
        self._offer(call, [agent], now, out)
        return True

    def _join_pools(self, agent: _Agent) -> None:
        """A Ready agent waits in the pool of its first ring in every queue it serves."""
        for name in agent.queues:
            q = self._queues[name]
            home = q.members.get(agent.agent_id)
            if home is None:
                continue
            key = self._pool_key(q, agent)
            q.pools[home].add(key, agent.agent_id)
            agent.pool_keys[name] = key

    def _check_staffing(self, agent: _Agent, now: float, out: list[Action]) -> None:
        """After an agent left: waiting calls of a queue with nobody left may exit."""
        for name in agent.queues:
            self._exit_unstaffed(self._queues[name], now, out)

    def _exit_unstaffed(self, q: _Queue, now: float, out: list[Action]) -> None:
        """If ``q`` has a no-agents exit and nobody is there, its waiting calls take it."""
        rule = q.config.exits.no_agents
        if rule is None or q.waiting == 0 or self._staffed(q, rule.when):
            return
        for call_id in self.waiting_in_order(q.config.name):
            call = self._calls[call_id]
            if call.callback_number is not None:
                continue  # a callback waits for agents to come back
            q.waiting -= 1
            call.version += 1
            self._take_exit(call, rule, "no agents", now, out)

    def _staffed(self, q: _Queue, when: str) -> bool:
        return (q.present if when == "none_available" else q.logged_in) > 0

    def _recount(self, q: _Queue) -> None:
        """Recount a queue's present and logged-in members (after membership changes)."""
        states = [self._agents[a].state for a, ring in q.members.items() if ring is not None]
        q.present = sum(s in _PRESENT for s in states)
        q.logged_in = sum(s is not AgentState.LOGGED_OUT for s in states)

    # --- internals: calls ------------------------------------------------------------

    def _head(self, q: _Queue, ring: int) -> _Call | None:
        heap = q.calls[ring]
        while heap:
            _, _, call_id, version = heap[0]
            call = self._calls.get(call_id)
            if (
                call is not None
                and call.phase is CallPhase.QUEUED
                and call.version == version
                and call.queue == q.config.name
                and call.ring == ring
            ):
                return call
            heapq.heappop(heap)
        return None

    def _enter(
        self, call: _Call, q: _Queue, now: float, out: list[Action], *, moved: bool = False
    ) -> None:
        """A call arrives in ``q`` (new, due, or moved): exit rules first, then place it."""
        exits = q.config.exits
        call.phase = CallPhase.QUEUED
        heapq.heappush(q.by_arrival, (call.arrived_at, call.seq, call.call_id))
        if len(q.by_arrival) > 2 * q.waiting + 64:
            q.by_arrival = [e for e in q.by_arrival if self._is_queued(e[2], q.config.name)]
            heapq.heapify(q.by_arrival)
        if call.callback_number is None:  # exits are for callers on the line
            if exits.max_length is not None and q.waiting >= exits.max_length.calls:
                self._take_exit(call, exits.max_length, "queue full", now, out)
                return
            if exits.no_agents is not None and not self._staffed(q, exits.no_agents.when):
                self._take_exit(call, exits.no_agents, "no agents", now, out)
                return
        self._place(call, q, now, out)  # max_wait: there, on every way into the queue

    def _due(self, call: _Call, now: float, out: list[Action]) -> None:
        """A scheduled callback is due: into its queue, or to the agent it is reserved for."""
        q = self._queues[call.queue]
        owner = None if call.reserved_for is None else self._agents[call.reserved_for]
        if owner is None or owner.state is AgentState.LOGGED_OUT:
            self._enter(call, q, now, out)
        elif owner.state is AgentState.READY:
            call.ring = q.ring_for(call.arrived_at, now)
            self._offer(call, [owner], now, out)
        else:  # stays scheduled until the owner frees up or the wait is over
            call.phase = CallPhase.SCHEDULED
            entry = (-call.key, call.seq, call.call_id)
            heapq.heappush(self._personal.setdefault(owner.agent_id, []), entry)
            wait = q.config.personal_callback_wait_s
            self._timer(call.arrived_at + wait, "personal", call.call_id)

    def _place(
        self, call: _Call, q: _Queue, now: float, out: list[Action], *, offer: bool = True
    ) -> None:
        """Offer ``call`` to the best Ready agent of its ring (unless not ``offer``), or
        queue it. Every way into or back into a queue comes here: a caller past the
        queue's ``max_wait`` takes the exit at once instead."""
        due = self._max_wait_due(call, q)
        if due is not None and now >= due:
            rule = q.config.exits.max_wait
            assert rule is not None
            self._take_exit(call, rule, "max wait", now, out)
            return
        call.ring = q.ring_for(call.arrived_at, now)
        agents = self._choose_agents(q, call.ring) if offer else []
        if agents:
            self._offer(call, agents, now, out)
            return
        self._wait(call, q, now)

    def _wait(self, call: _Call, q: _Queue, now: float) -> None:
        """``call`` waits in ``q``: counted, on its ring's heap, its timers armed."""
        call.phase = CallPhase.QUEUED
        call.agent_id = None
        call.offered_to = set()
        q.waiting += 1
        self._push(call, q, now)
        if call.ring + 1 < len(q.rings):
            self._timer(call.arrived_at + q.rings[call.ring + 1][0], "ring", call.call_id)
        due = self._max_wait_due(call, q)
        if due is not None and call.exit_at != due:  # a timer for ``due`` is pending else
            call.exit_at = due
            self._timer(due, "max_wait", call.call_id)

    def _max_wait_due(self, call: _Call, q: _Queue) -> float | None:
        """When ``call`` takes ``q``'s max-wait exit: only callers on the line (not a
        callback) who were never answered (not a transfer)."""
        rule = q.config.exits.max_wait
        if rule is None or call.callback_number is not None or call.answered_at is not None:
            return None
        return call.arrived_at + rule.after_s  # the very sum the check compares with

    def _push(self, call: _Call, q: _Queue, now: float) -> None:
        call.version += 1
        call.ring = q.ring_for(call.arrived_at, now)
        heap = q.calls[call.ring]
        heapq.heappush(heap, (-call.key, call.seq, call.call_id, call.version))
        if len(heap) > 2 * q.waiting + 64:
            q.calls[call.ring] = [e for e in heap if self._head_valid(e, q, call.ring)]
            heapq.heapify(q.calls[call.ring])

    def _head_valid(self, entry: tuple[float, int, str, int], q: _Queue, ring: int) -> bool:
        call = self._calls.get(entry[2])
        return (
            call is not None
            and call.phase is CallPhase.QUEUED
            and call.version == entry[3]
            and call.queue == q.config.name
            and call.ring == ring
        )

    def _choose_agents(self, q: _Queue, ring: int) -> list[_Agent]:
        """The agent(s) to offer a call of ``ring`` to, by the queue's strategy."""
        pools = q.pools[: ring + 1]
        strategy = q.config.strategy
        if strategy is Strategy.RING_ALL:
            ids = sorted({a for pool in pools for _, a in pool.entries})
            return [self._agents[a] for a in ids]
        if strategy is Strategy.RANDOM:
            return self._draw(pools)
        best: tuple[tuple[Any, ...], str] | None = None
        if strategy is Strategy.ROUND_ROBIN:
            n = max(1, len(q.order))
            best_distance = n + 1
            for pool in pools:
                entry = pool.first_after(q.rr_last)
                if entry is None:
                    continue
                distance = (entry[0][0] - q.rr_last - 1) % n
                if distance < best_distance:
                    best, best_distance = entry, distance
        else:
            for pool in pools:
                entry = pool.first()
                if entry is not None and (best is None or entry < best):
                    best = entry
        return [] if best is None else [self._agents[best[1]]]

    def _draw(self, pools: list[_Pool]) -> list[_Agent]:
        """One of the Ready agents of ``pools``, each as likely, drawn for this call (a
        draw made when an agent joined would favour it for every call until it leaves)."""
        sizes = [len(pool.entries) for pool in pools]
        total = sum(sizes)
        if total == 0:
            return []
        i = self._rng.randrange(total) if total > 1 else 0
        for pool, size in zip(pools, sizes, strict=True):
            if i < size:
                return [self._agents[pool.entries[i][1]]]
            i -= size
        raise AssertionError("unreachable: the draw is below the total")  # pragma: no cover

    def _offer(self, call: _Call, agents: list[_Agent], now: float, out: list[Action]) -> None:
        q = self._queues[call.queue]
        cfg = q.config
        call.phase = CallPhase.OFFERED
        call.offered_to = {a.agent_id for a in agents}
        call.agent_id = agents[0].agent_id if len(agents) == 1 else None
        call.offers += 1
        if call.offered_at is None:
            call.offered_at = now
        deadline = now + cfg.offer_timeout_s
        if cfg.strategy is Strategy.ROUND_ROBIN:
            q.rr_last = q.order[agents[0].agent_id]
        for agent in agents:
            self._set_state(
                agent, AgentState.RESERVED, "", now, out, call_id=call.call_id, deadline=deadline
            )
            out.append(OfferCall(call.call_id, agent.agent_id, call.queue, deadline))

    def _withdraw_offers(
        self, call: _Call, reason: WithdrawReason, out: list[Action]
    ) -> list[_Agent]:
        """Withdraw every offer of ``call``; returns the agents, now without a call."""
        agents = [self._agents[a] for a in sorted(call.offered_to)]
        call.offered_to = set()
        for agent in agents:
            out.append(WithdrawOffer(call.call_id, agent.agent_id, reason))
            agent.call_id = None
        return agents

    def _requeue(self, call: _Call, now: float, out: list[Action]) -> None:
        """Back to the queue at its old place (its fixed key never changed)."""
        q = self._queues[call.queue]
        heapq.heappush(q.by_arrival, (call.arrived_at, call.seq, call.call_id))
        self._place(call, q, now, out)

    def _offer_lapsed(self, agent: _Agent, now: float, out: list[Action]) -> None:
        assert agent.call_id is not None
        call = self._calls[agent.call_id]
        if call.consult == agent.agent_id:
            note = f"{agent.agent_id} did not answer the consultation"
            out.extend(self._drop_consult(call, "timeout", note, now))
            return
        q = self._queues[call.queue]
        if q.config.strategy is Strategy.RING_ALL:
            self._ring_all_lapsed(call, q, now, out)
            return
        # One agent rang: the call goes back first, so that another Ready agent takes it
        # before the one who let it lapse (who is then Ready, or Not Ready, itself).
        out.append(WithdrawOffer(call.call_id, agent.agent_id, "timeout"))
        call.offered_to.discard(agent.agent_id)
        agent.missed += 1
        if agent.missed >= self.max_missed_offers:
            self._set_state(agent, AgentState.NOT_READY, MISSED_OFFER, now, out)
            if not call.offered_to:
                self._requeue(call, now, out)
            self._check_staffing(agent, now, out)
        else:
            agent.call_id = None
            if not call.offered_to:
                self._requeue(call, now, out)
            self._make_ready(agent, now, out)

    def _ring_all_lapsed(self, call: _Call, q: _Queue, now: float, out: list[Action]) -> None:
        """A ring-all offer lapsed: every agent it rang (one deadline for all) is Ready
        again, or Not Ready by the missed-offer rule, BEFORE the call goes back, so that
        it rings all of them again (app_queue's ringall) or a better call does."""
        lapsed = [
            a
            for a in (self._agents[i] for i in sorted(call.offered_to))
            if a.deadline is not None and a.deadline <= now
        ]
        free: list[_Agent] = []
        for agent in lapsed:
            out.append(WithdrawOffer(call.call_id, agent.agent_id, "timeout"))
            call.offered_to.discard(agent.agent_id)
            agent.missed += 1
            if agent.missed >= self.max_missed_offers:
                self._set_state(agent, AgentState.NOT_READY, MISSED_OFFER, now, out)
            else:
                free.append(agent)
        self._ready_together(free, now, out)
        if not call.offered_to:  # back at its place (or its exit); the freed choose next
            heapq.heappush(q.by_arrival, (call.arrived_at, call.seq, call.call_id))
            self._place(call, q, now, out, offer=False)
        self._take_next(free, now, out)
        q = self._queues[call.queue]  # its exit may have moved it
        if call.phase is CallPhase.QUEUED and self._head(q, call.ring) is call:
            agents = self._choose_agents(q, call.ring)  # none freed took it: anyone Ready?
            if agents:
                heapq.heappop(q.calls[call.ring])
                q.waiting -= 1
                self._offer(call, agents, now, out)
        for agent in lapsed:
            if agent not in free:
                self._check_staffing(agent, now, out)

    def _free_all(self, agents: list[_Agent], now: float, out: list[Action]) -> None:
        """Agents whose offers ended together: all Ready first, then each takes the best
        call it may take, so a ring-all call rings every one of them, not only the first
        (the others still Reserved a moment too long)."""
        if len(agents) == 1:
            agents[0].call_id = None
            self._make_ready(agents[0], now, out)
            return
        self._ready_together(agents, now, out)
        self._take_next(agents, now, out)

    def _ready_together(self, agents: list[_Agent], now: float, out: list[Action]) -> None:
        """Ready and in the pools, not yet choosing a call (see :meth:`_take_next`)."""
        for agent in agents:
            agent.call_id = None
            self._set_state(agent, AgentState.READY, "", now, out)
            self._join_pools(agent)

    def _take_next(self, agents: list[_Agent], now: float, out: list[Action]) -> None:
        """Each of ``agents`` still Ready takes the best call it may take (a ring-all
        call rings all Ready agents of its ring with it)."""
        for agent in agents:
            if agent.state is AgentState.READY:  # not rung by an earlier one's choice
                self._leave_pools(agent)
                self._make_ready(agent, now, out)

    def _take_exit(
        self, call: _Call, rule: QueueExit, reason: str, now: float, out: list[Action]
    ) -> None:
        """The call leaves its queue by ``rule`` (it is not counted as waiting any more)."""
        if rule.action is ExitAction.QUEUE and call.exit_moves < _MAX_EXIT_MOVES:
            call.exit_moves += 1
            out.append(MoveCall(call.call_id, call.queue, rule.queue, reason))
            call.version += 1
            call.queue = rule.queue
            call.key = self._key(call)
            self._enter(call, self._queues[rule.queue], now, out, moved=True)
            return
        if rule.action is ExitAction.CALLBACK and call.caller.e164 is not None:
            # Only a real number can be called back; a withheld or garbled one goes
            # to voicemail instead.
            call.callback_number = call.caller.e164
            call.callback_requested_at = now
            call.kind = "callback"
            out.append(ReleaseLine(call.call_id))
            self._place(call, self._queues[call.queue], now, out)
            return
        action = rule.action
        if action in (ExitAction.QUEUE, ExitAction.CALLBACK):
            action = ExitAction.VOICEMAIL
        if call.callback_number is None:
            out.append(ExitCall(call.call_id, call.queue, action, reason, rule.message))
        self._finish_call(call, now, "exited", out, exit_action=f"{action.value}: {reason}")

    def _end_conversation(self, call: _Call, agent: _Agent, now: float, out: list[Action]) -> None:
        if call.consult is not None:
            out.extend(self._drop_consult(call, "caller_hung_up", "the call ended", now))
        call.phase = CallPhase.WRAP_UP
        call.ended_at = now
        agent.calls_handled += 1
        if call.answered_at is not None:
            agent.talk_time += now - call.leg_started
        wrap = self._queues[call.queue].config.wrap_up_s
        self._set_state(
            agent, AgentState.WRAP_UP, "", now, out, call_id=call.call_id, deadline=now + wrap
        )
        agent.wrap_started = now

    def _finish_wrap_up(
        self, agent: _Agent, disposition: str, note: str, now: float, out: list[Action]
    ) -> None:
        assert agent.call_id is not None
        if agent.handed_off is not None:
            self._finish_leg(agent, disposition, note, now, out)
            return
        call = self._calls[agent.call_id]
        assert call.ended_at is not None
        assert call.answered_at is not None
        q = self._queues[call.queue]
        handle = (call.ended_at - call.answered_at) + (now - call.ended_at)
        q.aht += _AHT_SMOOTHING * (handle - q.aht)
        self._finish_call(
            call,
            call.ended_at,
            "answered",
            out,
            disposition=disposition,
            note=note,
            wrap_up_s=now - call.ended_at,
        )
        self._wrap_up_over(agent, now, out)

    def _wrap_up_over(self, agent: _Agent, now: float, out: list[Action]) -> None:
        """The agent's wrap-up is over: Not Ready if it asked to be after this call, else
        Ready (and maybe offered the next call at once)."""
        agent.call_id = None
        agent.wrap_started = None
        if agent.not_ready_after_call:
            agent.not_ready_after_call = False
            self._set_state(agent, AgentState.NOT_READY, NOT_READY_AFTER_CALL, now, out)
            self._check_staffing(agent, now, out)
        else:
            self._make_ready(agent, now, out)

    def _finish_call(
        self,
        call: _Call,
        ended_at: float,
        outcome: str,
        out: list[Action],
        *,
        disposition: str = "",
        note: str = "",
        wrap_up_s: float = 0.0,
        exit_action: str = "",
    ) -> None:
        if call.trail:  # a transferred call: answered by its first agent, whatever came after
            if outcome != "answered":
                call.trail.append(f"then {outcome} ({exit_action or 'caller hung up'})")
                outcome = "answered"
            note = " · ".join([*call.trail, note] if note else call.trail)
        if call.reserved_for is not None:
            note = f"callback for {call.reserved_for}" + (f" · {note}" if note else "")
        call.phase = CallPhase.DONE
        call.ended_at = ended_at
        del self._calls[call.call_id]
        self._finished[call.call_id] = None
        if len(self._finished) > _FINISHED_MEMORY:
            self._finished.popitem(last=False)
        caller = call.caller
        out.append(
            RecordCall(
                CallDetailRecord(
                    call_id=call.call_id,
                    queue=call.queue,
                    ani=caller.ani,
                    caller_kind=caller.kind,
                    customer_id=caller.customer.id if caller.customer else None,
                    segment=call.segment,
                    value=call.value,
                    arrived_at=call.arrived_at,
                    offered_at=call.offered_at,
                    answered_at=call.answered_at,
                    ended_at=ended_at,
                    agent_id=call.handled_by if call.answered_at is not None else None,
                    outcome=outcome,
                    disposition=disposition,
                    wrap_up_s=wrap_up_s,
                    offers=call.offers,
                    note=note,
                    kind=call.kind,
                    exit_action=exit_action,
                    callback_requested_at=call.callback_requested_at,
                )
            )
        )
