"""Inputs about calls: arrivals, callbacks (virtual hold, scheduled and personal), the
caller hanging up, a supervisor's priority or move; and a queue's configuration.
"""

from __future__ import annotations

import heapq

from cti.errors import RoutingError
from cti.models import CallerInfo, QueueConfig
from queue_engine import inputs
from queue_engine.actions import Action, DisconnectCall, ReleaseLine
from queue_engine.agent_desk import AgentDesk
from queue_engine.call_control import Handlers
from queue_engine.members import READY
from queue_engine.router_state import AgentEntry, Callback, CallEntry, QueueEntry, dialling
from queue_engine.transitions import CallPhase


class CallDesk(AgentDesk):
    """The calls' inputs (see the module docstring)."""

    def _call_inputs(self) -> Handlers:
        return {
            inputs.CallArrives: self._arrive,
            inputs.CallbackScheduled: self._schedule_callback,
            inputs.CallerHangsUp: self._caller_hung_up,
            inputs.CallerAsksCallback: self._ask_callback,
            inputs.CallPriorityChanged: self._change_priority,
            inputs.CallMoved: self._move_call,
            inputs.QueueConfigured: lambda e, now: self._configure_queue(e.queue, now),
        }

    def _new_call(
        self,
        call_id: str,
        queue: str,
        q: QueueEntry,
        caller: CallerInfo,
        arrived_at: float,
        kind: str,
    ) -> CallEntry:
        """A call into ``queue`` (named by its input), whose entry ``q`` its caller has."""
        phase = CallPhase.SCHEDULED if kind == "callback" else CallPhase.QUEUED
        seq = self._seq
        self._seq = seq + 1
        call = CallEntry(call_id, queue, caller, arrived_at, seq, kind, phase)
        call.key = self._key_in(call, q)
        self._calls[call_id] = call
        return call

    def _arrive(self, e: inputs.CallArrives, now: float) -> list[Action]:
        """A new call enters its queue: offered at once if an agent can take it, else
        waits. Direction "outbound" is a dialer's call answered by a person (its
        record's ``kind``)."""
        # The fields read from the model's dict: pydantic's attribute hook (a
        # ``__getattr__``) costs some 430 instructions a read; ``__dict__`` is one such.
        fields = e.__dict__
        call_id: str = fields["call_id"]
        queue: str = fields["queue"]
        self._new_call_id(call_id)
        q = self._queue(queue)
        call = self._new_call(call_id, queue, q, fields["caller"], now, fields["direction"])
        out: list[Action] = []
        self._enter(call, q, now, out)
        return out

    def _schedule_callback(self, e: inputs.CallbackScheduled, now: float) -> list[Action]:
        """A callback joins its queue at ``due`` (at once if that is past). It ranks by
        its customer's value like a call; its age counts from ``due``. ``for_agent``:
        reserved for that agent, who must serve the queue (module docstring of
        :mod:`queue_engine.router`)."""
        self._new_call_id(e.call_id)
        q = self._queue(e.queue)
        agent_id = e.for_agent or None
        if agent_id is not None and agent_id not in q.members:
            theirs = ", ".join(self._agent(agent_id).queues)
            raise RoutingError(
                f"agent {agent_id!r} does not serve queue {e.queue!r}; "
                f"a callback for them must be in one of their queues ({theirs})"
            )
        call = self._new_call(e.call_id, e.queue, q, e.caller, max(e.due, now), "callback")
        call.callback = Callback(e.number, now, agent_id)
        out: list[Action] = []
        if e.due <= now:
            self._due(call, now, out)
        else:
            self._timer(e.due, "due", e.call_id)
        return out

    def _caller_hung_up(self, e: inputs.CallerHangsUp, now: float) -> list[Action]:
        """The caller left: abandoned if not yet answered, else the conversation ends."""
        call_id = e.call_id
        call = self._calls.get(call_id)
        if call is None:
            if call_id in self._finished:
                return []  # the call is over already: a repeated event changes nothing
            raise RoutingError(f"hang-up for call {call_id!r}, which the router never saw")
        out: list[Action] = []
        if call.callback is not None and call.phase in (
            CallPhase.SCHEDULED,
            CallPhase.QUEUED,
            CallPhase.OFFERED,
        ):
            return out  # a callback's line is already released; the callback stands
        if call.phase is CallPhase.QUEUED:
            q = self._queues[call.queue]
            self._unwait(q, call)
            self._finish_call(call, now, "abandoned", out)
            self._head(q, call.ring)  # its entry, stale now (see RouterCore._head)
        elif call.phase is CallPhase.OFFERED:
            agents = self._withdraw_offers(call, "caller_hung_up", out)
            self._finish_call(call, now, "abandoned", out)
            self._free_all(agents, now, out)  # not their fault: Ready, maybe for the next
        elif dialling(call):  # the line's dial outcome says how it ended (DialEnds)
            call.ended_at = call.ended_at or now
        elif call.phase is CallPhase.TALKING:
            agent = self._agent(call.current or "")
            out.append(DisconnectCall(call_id, agent.agent_id, "caller"))
            self._end_conversation(call, agent, now, out)
        # In wrap-up the caller is already gone: a repeated event changes nothing.
        return out

    def _ask_callback(self, e: inputs.CallerAsksCallback, now: float) -> list[Action]:
        """Virtual hold: the waiting caller hangs up and is called back from their place."""
        call = self._calls.get(e.call_id)
        if call is None or call.phase is not CallPhase.QUEUED:
            raise RoutingError(f"call {e.call_id!r} is not waiting, so it cannot become a callback")
        if not e.number:
            raise RoutingError(f"call {e.call_id!r}: a callback needs a number to call back")
        self._become_callback(call, e.number, now)
        return [ReleaseLine(e.call_id)]

    def _change_priority(self, e: inputs.CallPriorityChanged, now: float) -> list[Action]:
        """Give one waiting call its own priority instead of its queue's; age is kept."""
        call = self._waiting(e.call_id)
        q = self._queues[call.queue]
        self._unwait(q, call)
        call.priority = e.priority
        call.key = self._key(call)
        out: list[Action] = []
        self._place(call, q, now, out)  # its ring may have moved on: offer if it can be
        return out

    def _move_call(self, e: inputs.CallMoved, now: float) -> list[Action]:
        """A supervisor moves a waiting call to another queue; it keeps its age."""
        call = self._waiting(e.call_id)
        target = self._queue(e.queue)
        if e.queue == call.queue:
            return []
        self._unwait(self._queues[call.queue], call)
        call.version += 1
        out: list[Action] = []
        self._to_queue(call, e.queue, "supervisor", out)
        self._enter(call, target, now, out)
        return out

    # --- configuration ---------------------------------------------------------------

    def _configure_queue(self, config: QueueConfig, now: float) -> list[Action]:
        """Add a queue, or change its parameters; waiting calls keep their age."""
        old = self._queues.get(config.name)
        if old is None:
            self._queues[config.name] = QueueEntry(config)
            return []
        new = QueueEntry(config)
        new.order, new.rr_last, new.aht = old.order, old.rr_last, old.aht
        self._queues[config.name] = new
        for agent_id in old.members:
            agent = self._agents[agent_id]
            agent.pool_keys.pop(config.name, None)
            new.members[agent_id] = new.first_ring(agent.skills)
        for agent_id in new.members:
            self._link(self._agents[agent_id])
        self._recount(new)
        out: list[Action] = []
        overdue = self._rewait(new, now)
        new.by_arrival = [e for e in old.by_arrival if self._is_queued(e[2])]
        heapq.heapify(new.by_arrival)
        ready = [self._agents[a] for a in new.members]
        self._rejoin_pools([a for a in ready if a.state is READY])
        for call in overdue:
            self._place(call, new, now, out)
        self._exit_unstaffed(new, now, out)
        # The new rules may let Ready agents take waiting calls: by rank, each to the
        # agent the queue's strategy picks.
        for call_id in self._waiting_in_order(config.name):
            call = self._calls[call_id]
            agents = self._choose_agents(new, call.ring)
            if agents:
                self._unwait(new, call)
                call.version += 1
                self._offer(call, new, agents, now, out)
        return out

    def _rewait(self, q: QueueEntry, now: float) -> list[CallEntry]:
        """The calls of a reconfigured queue ranked anew and waiting in it again; those
        past its new max_wait are returned (in arrival order) to take its exit."""
        overdue: list[CallEntry] = []
        for call in [c for c in self._calls.values() if c.queue == q.name]:
            call.key = self._key(call)
            if call.phase is CallPhase.QUEUED:
                due = self._max_wait_due(call, q)
                if due is not None and now >= due:
                    overdue.append(call)
                else:
                    self._wait(call, q, now)
        return sorted(overdue, key=lambda c: c.seq)  # replay: never by hashing

    def _rejoin_pools(self, agents: list[AgentEntry]) -> None:
        for agent in agents:
            self._leave_pools(agent)
            self._join_pools(agent)
