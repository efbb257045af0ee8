"""The router: queues, agents and the matching between them. Sans-I/O.

Every public method takes ``now`` (monotonic seconds, never read from a clock), changes
the router's state, and returns the :mod:`queue_engine.actions` its shell must carry
out. Methods are synchronous and never block. A request the state does not allow
raises :class:`~cti.errors.RoutingError` and changes nothing.

Invariants after every call (checked by the property tests):

* every call is in exactly one place: waiting in its queue, offered to one agent,
  talking to one agent, in that agent's wrap-up, or finished with one detail record;
* no agent has more than one call;
* no queue has a waiting call while an agent who serves it is Ready (work is never
  left on the table);
* each queue is served in rank order (:mod:`queue_engine.priority`).

Agent selection is *longest idle*: of the Ready agents who serve the queue, the one
who has been Ready the longest gets the call. An agent who frees up takes the best
call across all the queues they serve, by rank at that moment, then by arrival.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cti.errors import RoutingError
from cti.models import AgentState, CallDetailRecord, CallerInfo, QueueConfig
from queue_engine import inputs
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    DisconnectCall,
    OfferCall,
    RecordCall,
    WithdrawOffer,
    WithdrawReason,
)
from queue_engine.inputs import AnyInput
from queue_engine.priority import fixed_key, starvation_bound_s

#: Reason given when an agent goes Not Ready on their own after missing offers.
MISSED_OFFER = "missed offer"
REJECTED_OFFER = "rejected offer"
NOT_READY_AFTER_CALL = "not ready after call"


class CallPhase(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    TALKING = "talking"
    WRAP_UP = "wrap_up"
    DONE = "done"


@dataclass(slots=True)
class _Call:
    call_id: str
    queue: str
    caller: CallerInfo
    arrived_at: float
    key: float
    seq: int
    phase: CallPhase = CallPhase.QUEUED
    agent_id: str | None = None
    offered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    offers: int = 0


@dataclass(slots=True)
class _Agent:
    agent_id: str
    queues: tuple[str, ...]
    state: AgentState = AgentState.LOGGED_OUT
    reason: str = ""
    since: float = 0.0
    token: int = 0
    """Bumped on every state change; heap and timer entries carry the token they saw."""
    call_id: str | None = None
    deadline: float | None = None
    missed: int = 0
    not_ready_after_call: bool = False
    calls_handled: int = 0


@dataclass(slots=True)
class _Queue:
    config: QueueConfig
    calls: list[tuple[float, int, str]] = field(default_factory=list)
    """Heap of (-fixed_key, seq, call_id); entries of calls no longer waiting are stale."""
    by_arrival: list[tuple[float, int, str]] = field(default_factory=list)
    """Heap of (arrived_at, seq, call_id), for the longest wait; stale entries as above."""
    ready: list[tuple[float, int, str, int]] = field(default_factory=list)
    """Heap of (ready_since, seq, agent_id, token) of Ready agents; stale if token moved."""
    waiting: int = 0
    agent_ids: list[str] = field(default_factory=list)


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


_FINISHED_MEMORY = 100_000
_BUSY = frozenset({AgentState.RESERVED, AgentState.TALKING, AgentState.WRAP_UP})


class Router:
    """The automatic call distributor's core (see the module docstring)."""

    def __init__(self, queues: Iterable[QueueConfig], *, max_missed_offers: int = 1) -> None:
        self._queues: dict[str, _Queue] = {q.name: _Queue(q) for q in queues}
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
        self._timers: list[tuple[float, int, str, int]] = []
        """Heap of (deadline, seq, agent_id, token): offer and wrap-up deadlines."""
        self._seq = itertools.count()

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
            case inputs.CallArrives(call_id=c, queue=q, caller=caller):
                return self.enqueue(c, q, caller, now)
            case inputs.CallerHangsUp(call_id=c):
                return self.caller_hung_up(c, now)
            case inputs.TimePasses():
                return self.advance(now)
            case inputs.QueueConfigured(queue=config):
                return self.configure_queue(config, now)
        raise RoutingError(f"unknown router input {event!r}")  # pragma: no cover

    # --- configuration ---------------------------------------------------------------

    def configure_queue(self, config: QueueConfig, now: float) -> list[Action]:
        """Add a queue, or change its parameters; waiting calls keep their arrival time."""
        q = self._queues.get(config.name)
        if q is None:
            self._queues[config.name] = _Queue(config)
            return []
        q.config = config
        for call in self._calls.values():
            if call.queue == config.name:
                call.key = fixed_key(config, call.caller.value, call.arrived_at)
        q.calls = [
            (-self._calls[cid].key, seq, cid) for _, seq, cid in q.calls if self._is_queued(cid)
        ]
        heapq.heapify(q.calls)
        return []

    @property
    def queue_names(self) -> list[str]:
        return list(self._queues)

    def queue_config(self, name: str) -> QueueConfig:
        return self._queue(name).config

    def starvation_bound_s(self, queue: str) -> float:
        return starvation_bound_s(self._queue(queue).config)

    def add_agent(self, agent_id: str, queues: Sequence[str]) -> None:
        """Register an agent (Logged Out) who serves ``queues``."""
        if agent_id in self._agents:
            raise RoutingError(f"agent {agent_id!r} already exists")
        if not queues:
            raise RoutingError(f"agent {agent_id!r} must serve at least one queue")
        for name in queues:
            self._queue(name)
        self._agents[agent_id] = _Agent(agent_id, tuple(dict.fromkeys(queues)))
        for name in dict.fromkeys(queues):
            self._queues[name].agent_ids.append(agent_id)

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
        call = self._offered_to(agent, call_id)
        call.phase = CallPhase.TALKING
        call.answered_at = now
        agent.missed = 0
        out: list[Action] = [ConnectCall(call_id, agent_id)]
        self._set_state(agent, AgentState.TALKING, "", now, out, call_id=call_id)
        return out

    def reject(
        self, agent_id: str, call_id: str, now: float, *, reason: str = REJECTED_OFFER
    ) -> list[Action]:
        agent = self._agent(agent_id)
        call = self._offered_to(agent, call_id)
        out: list[Action] = [WithdrawOffer(call_id, agent_id, "rejected")]
        self._set_state(agent, AgentState.NOT_READY, reason, now, out)
        self._requeue(call, now, out)
        return out

    def agent_hang_up(self, agent_id: str, call_id: str, now: float) -> list[Action]:
        agent = self._agent(agent_id)
        call = self._calls.get(call_id)
        if call is None or call.agent_id != agent_id or call.phase is not CallPhase.TALKING:
            raise RoutingError(f"agent {agent_id!r} is not talking on call {call_id!r}")
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

    # --- line events -----------------------------------------------------------------

    def enqueue(self, call_id: str, queue: str, caller: CallerInfo, now: float) -> list[Action]:
        """A new call enters ``queue``: offered at once if an agent is Ready, else waits."""
        if call_id in self._calls or call_id in self._finished:
            raise RoutingError(f"call {call_id!r} is already known to the router")
        q = self._queue(queue)
        seq = next(self._seq)
        call = _Call(call_id, queue, caller, now, fixed_key(q.config, caller.value, now), seq)
        self._calls[call_id] = call
        heapq.heappush(q.by_arrival, (now, seq, call_id))
        if len(q.by_arrival) > 2 * q.waiting + 64:
            q.by_arrival = [e for e in q.by_arrival if self._is_queued(e[2])]
            heapq.heapify(q.by_arrival)
        out: list[Action] = []
        self._place(call, q, now, out)
        return out

    def caller_hung_up(self, call_id: str, now: float) -> list[Action]:
        """The caller left: abandoned if not yet answered, else the conversation ends."""
        call = self._calls.get(call_id)
        if call is None:
            if call_id in self._finished:
                return []  # the call is over already: a repeated event changes nothing
            raise RoutingError(f"hang-up for call {call_id!r}, which the router never saw")
        out: list[Action] = []
        if call.phase is CallPhase.QUEUED:
            self._queue(call.queue).waiting -= 1
            self._finish_call(call, now, "abandoned", "", 0.0, out)
        elif call.phase is CallPhase.OFFERED:
            agent = self._agent(call.agent_id or "")
            out.append(WithdrawOffer(call_id, agent.agent_id, "caller_hung_up"))
            self._finish_call(call, now, "abandoned", "", 0.0, out)
            agent.call_id = None
            self._make_ready(agent, now, out)
        elif call.phase is CallPhase.TALKING:
            agent = self._agent(call.agent_id or "")
            out.append(DisconnectCall(call_id, agent.agent_id, "caller"))
            self._end_conversation(call, agent, now, out)
        # In wrap-up the caller is already gone: a repeated event changes nothing.
        return out

    # --- time ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`advance` next has something to do (an offer or wrap-up lapses)."""
        while self._timers:
            deadline, _, agent_id, token = self._timers[0]
            if self._agents[agent_id].token == token:
                return deadline
            heapq.heappop(self._timers)
        return None

    def advance(self, now: float) -> list[Action]:
        """Fire every deadline at or before ``now``."""
        out: list[Action] = []
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > now:
                return out
            _, _, agent_id, _ = heapq.heappop(self._timers)
            agent = self._agents[agent_id]
            if agent.state is AgentState.RESERVED:
                self._offer_lapsed(agent, now, out)
            elif agent.state is AgentState.WRAP_UP:
                self._finish_wrap_up(agent, "", "", now, out)

    # --- views -----------------------------------------------------------------------

    def snapshot(self, queue: str, now: float) -> QueueSnapshot:
        q = self._queue(queue)
        while q.by_arrival and not self._is_queued(q.by_arrival[0][2]):
            heapq.heappop(q.by_arrival)
        longest = now - q.by_arrival[0][0] if q.by_arrival else 0.0
        states = [self._agents[a].state for a in q.agent_ids]
        return QueueSnapshot(
            queue=queue,
            waiting=q.waiting,
            longest_wait_s=longest,
            agents_ready=sum(s is AgentState.READY for s in states),
            agents_busy=sum(s in _BUSY for s in states),
            agents_logged_in=sum(s is not AgentState.LOGGED_OUT for s in states),
        )

    def agent(self, agent_id: str) -> AgentSnapshot:
        a = self._agent(agent_id)
        return AgentSnapshot(
            a.agent_id, a.state, a.reason, a.since, a.call_id, a.deadline, a.calls_handled
        )

    def agent_ids(self) -> list[str]:
        return list(self._agents)

    def has_agent(self, agent_id: str) -> bool:
        return agent_id in self._agents

    def call_caller(self, call_id: str) -> CallerInfo:
        return self._call(call_id).caller

    def call_queue(self, call_id: str) -> str:
        return self._call(call_id).queue

    def call_phase(self, call_id: str) -> CallPhase:
        return self._call(call_id).phase

    def call_arrived_at(self, call_id: str) -> float:
        return self._call(call_id).arrived_at

    def waiting_in_order(self, queue: str) -> list[str]:
        """Waiting call ids of ``queue``, best first (for the wallboard and tests)."""
        q = self._queue(queue)
        live = [e for e in q.calls if self._is_queued(e[2])]
        return [call_id for _, _, call_id in sorted(live)]

    def active_call_ids(self) -> list[str]:
        """Calls not yet finished: waiting, offered, talking or in wrap-up."""
        return list(self._calls)

    # --- internals -------------------------------------------------------------------

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

    def _is_queued(self, call_id: str) -> bool:
        call = self._calls.get(call_id)
        return call is not None and call.phase is CallPhase.QUEUED

    def _offered_to(self, agent: _Agent, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if (
            call is None
            or agent.state is not AgentState.RESERVED
            or agent.call_id != call_id
            or call.phase is not CallPhase.OFFERED
        ):
            raise RoutingError(f"agent {agent.agent_id!r} has no offer of call {call_id!r}")
        return call

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
        agent.state = state
        agent.reason = reason
        agent.since = now
        agent.token += 1
        agent.call_id = call_id
        agent.deadline = deadline
        if deadline is not None:
            heapq.heappush(self._timers, (deadline, next(self._seq), agent.agent_id, agent.token))
        out.append(AgentStateSet(agent.agent_id, state, reason, call_id, deadline))

    def _make_ready(self, agent: _Agent, now: float, out: list[Action]) -> None:
        """The agent is free: take the best waiting call, or wait in the Ready lists."""
        best: _Call | None = None
        best_rank = (0.0, 0.0, 0)
        for name in agent.queues:
            q = self._queues[name]
            head = self._head(q)
            if head is None:
                continue
            r = (-(head.key + q.config.aging_rate * now), head.arrived_at, head.seq)
            if best is None or r < best_rank:
                best, best_rank = head, r
        if best is not None:
            q = self._queues[best.queue]
            heapq.heappop(q.calls)
            q.waiting -= 1
            self._offer(best, agent, now, out)
            return
        self._set_state(agent, AgentState.READY, "", now, out)
        for name in agent.queues:
            q = self._queues[name]
            heapq.heappush(q.ready, (now, next(self._seq), agent.agent_id, agent.token))
            if len(q.ready) > 2 * len(q.agent_ids) + 16:
                q.ready = [e for e in q.ready if self._agents[e[2]].token == e[3]]
                heapq.heapify(q.ready)

    def _head(self, q: _Queue) -> _Call | None:
        while q.calls:
            call = self._calls.get(q.calls[0][2])
            if call is not None and call.phase is CallPhase.QUEUED:
                return call
            heapq.heappop(q.calls)
        return None

    def _place(self, call: _Call, q: _Queue, now: float, out: list[Action]) -> None:
        """Offer ``call`` to the longest-idle Ready agent of its queue, or queue it."""
        while q.ready:
            _, _, agent_id, token = heapq.heappop(q.ready)
            agent = self._agents[agent_id]
            if agent.token == token and agent.state is AgentState.READY:
                self._offer(call, agent, now, out)
                return
        call.phase = CallPhase.QUEUED
        call.agent_id = None
        q.waiting += 1
        heapq.heappush(q.calls, (-call.key, call.seq, call.call_id))
        if len(q.calls) > 2 * q.waiting + 64:
            q.calls = [e for e in q.calls if self._is_queued(e[2])]
            heapq.heapify(q.calls)

    def _offer(self, call: _Call, agent: _Agent, now: float, out: list[Action]) -> None:
        cfg = self._queues[call.queue].config
        call.phase = CallPhase.OFFERED
        call.agent_id = agent.agent_id
        call.offers += 1
        if call.offered_at is None:
            call.offered_at = now
        deadline = now + cfg.offer_timeout_s
        self._set_state(
            agent, AgentState.RESERVED, "", now, out, call_id=call.call_id, deadline=deadline
        )
        out.append(OfferCall(call.call_id, agent.agent_id, call.queue, deadline))

    def _requeue(self, call: _Call, now: float, out: list[Action]) -> None:
        """Back to the queue at its old place (its fixed key never changed)."""
        q = self._queues[call.queue]
        heapq.heappush(q.by_arrival, (call.arrived_at, call.seq, call.call_id))
        self._place(call, q, now, out)

    def _offer_lapsed(self, agent: _Agent, now: float, out: list[Action]) -> None:
        assert agent.call_id is not None
        call = self._calls[agent.call_id]
        reason: WithdrawReason = "timeout"
        out.append(WithdrawOffer(call.call_id, agent.agent_id, reason))
        agent.missed += 1
        if agent.missed >= self.max_missed_offers:
            self._set_state(agent, AgentState.NOT_READY, MISSED_OFFER, now, out)
            self._requeue(call, now, out)
        else:
            agent.call_id = None
            self._requeue(call, now, out)
            self._make_ready(agent, now, out)

    def _end_conversation(self, call: _Call, agent: _Agent, now: float, out: list[Action]) -> None:
        call.phase = CallPhase.WRAP_UP
        call.ended_at = now
        agent.calls_handled += 1
        wrap = self._queues[call.queue].config.wrap_up_s
        self._set_state(
            agent, AgentState.WRAP_UP, "", now, out, call_id=call.call_id, deadline=now + wrap
        )

    def _finish_wrap_up(
        self, agent: _Agent, disposition: str, note: str, now: float, out: list[Action]
    ) -> None:
        assert agent.call_id is not None
        call = self._calls[agent.call_id]
        assert call.ended_at is not None
        self._finish_call(
            call, call.ended_at, "answered", disposition, now - call.ended_at, out, note=note
        )
        agent.call_id = None
        if agent.not_ready_after_call:
            agent.not_ready_after_call = False
            self._set_state(agent, AgentState.NOT_READY, NOT_READY_AFTER_CALL, now, out)
        else:
            self._make_ready(agent, now, out)

    def _finish_call(
        self,
        call: _Call,
        ended_at: float,
        outcome: str,
        disposition: str,
        wrap_up_s: float,
        out: list[Action],
        *,
        note: str = "",
    ) -> None:
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
                    segment=caller.segment,
                    value=caller.value,
                    arrived_at=call.arrived_at,
                    offered_at=call.offered_at,
                    answered_at=call.answered_at,
                    ended_at=ended_at,
                    agent_id=call.agent_id if call.answered_at is not None else None,
                    outcome=outcome,
                    disposition=disposition,
                    wrap_up_s=wrap_up_s,
                    offers=call.offers,
                    note=note,
                )
            )
        )
