"""Time passing: offers that lapse, wrap-ups that end, callbacks that fall due, calls
that reach their next ring or their max-wait exit.
"""

from __future__ import annotations

import heapq
from typing import Final

from queue_engine import inputs
from queue_engine.actions import Action, WithdrawOffer
from queue_engine.call_control import Handlers
from queue_engine.call_desk import CallDesk
from queue_engine.members import RESERVED, RING_ALL, WRAP_UP
from queue_engine.router_core import HEAP_POP, MISSED_OFFER
from queue_engine.router_state import COMPILED, AgentEntry, CallEntry, QueueEntry, heap_pop
from queue_engine.transitions import AGENT_MISS, CallPhase

#: The disposition of a call whose wrap-up time ran out before the agent chose one: the
#: record says so (reports count these) rather than nothing.
WRAP_UP_TIMED_OUT: Final = "wrap-up timed out"


class Timers(CallDesk):
    """The router's deadlines (see the module docstring)."""

    def _timer_inputs(self) -> Handlers:
        return {inputs.TimePasses: self._time_passes}

    def _time_passes(self, e: inputs.TimePasses, now: float) -> list[Action]:
        return self._advance(now)

    def _advance(self, now: float) -> list[Action]:
        """Fire every deadline at or before ``now``."""
        out: list[Action] = []
        while True:
            # The first of the lanes' heads and the heap's by (when, seq): the order of
            # one heap of them all (RouterCore._agent_timer).
            lane = self._first_lane()
            live = self._heap_live()
            if lane is not None:
                head = lane.items[lane.head]  # indexed: see RouterCore._head
                first = not live
                if live:
                    timer = self._timers[0]
                    first = head[0] < timer[0] or (head[0] == timer[0] and head[1] < timer[1])
                if first:
                    if head[0] > now:
                        return out
                    lane.pop()
                    self._agent_due(head[2], now, out)
                    continue
            if not live:
                return out
            timer = self._timers[0]
            if timer[0] > now:
                return out
            if COMPILED:  # the compiled heap (router_state.heap_pop)
                heap_pop(self._timers)
            else:
                HEAP_POP(self._timers)
            kind, ref = timer[2], timer[3]
            if kind == "agent":
                self._agent_due(self._agents[ref], now, out)
            else:
                call = self._calls.get(ref)
                if call is not None:
                    self._call_timer(kind, call, now, out)

    def _agent_due(self, agent: AgentEntry, now: float, out: list[Action]) -> None:
        """The agent's deadline came (its state unchanged since): its offer lapsed or its
        wrap-up ran out."""
        if agent.state is RESERVED:
            self._offer_lapsed(agent, now, out)
        elif agent.state is WRAP_UP:
            self._finish_wrap_up(agent, WRAP_UP_TIMED_OUT, "", now, out)

    def _call_timer(self, kind: str, call: CallEntry, now: float, out: list[Action]) -> None:
        if kind == "due" and call.phase is CallPhase.SCHEDULED:
            self._due(call, now, out)
        elif kind == "personal" and call.phase is CallPhase.SCHEDULED:
            self._enter(call, self._queues[call.queue], now, out)  # waited enough
        elif kind == "ring" and call.phase is CallPhase.QUEUED:
            q = self._queues[call.queue]
            if q.ring_for(call.arrived_at, now) > call.ring:
                ring = call.ring
                self._unwait(q, call)
                self._place(call, q, now, out)
                self._head(q, ring)  # its old entry, stale now (see RouterCore._head)
        elif kind == "max_wait" and call.phase is CallPhase.QUEUED:
            q = self._queues[call.queue]
            due = self._max_wait_due(call, q)
            if due is not None and now >= due:  # else a later timer is armed
                ring = call.ring
                self._unwait(q, call)
                self._place(call, q, now, out)  # takes the exit
                self._head(q, ring)

    def _offer_lapsed(self, agent: AgentEntry, now: float, out: list[Action]) -> None:
        assert agent.call_id is not None
        call = self._calls[agent.call_id]
        if call.consult is not None and call.consult.agent == agent.agent_id:
            note = f"{agent.agent_id} did not answer the consultation"
            out.extend(self._drop_consult(call, "timeout", note, now))
            return
        q = self._queues[call.queue]
        if q.strategy is RING_ALL:
            self._ring_all_lapsed(call, q, now, out)
            return
        # One agent rang: the call goes back first, so that another Ready agent takes it
        # before the one who let it lapse (who is then Ready, or Not Ready, itself).
        out.append(WithdrawOffer(call.call_id, agent.agent_id, "timeout"))
        call.offered_to.discard(agent.agent_id)
        agent.missed += 1
        if agent.missed >= self.max_missed_offers:
            self._set_state(agent, AGENT_MISS, MISSED_OFFER, now, out)
            if not call.offered_to:
                self._requeue(call, now, out)
            self._check_staffing(agent, now, out)
        else:
            agent.call_id = None
            if not call.offered_to:
                self._requeue(call, now, out)
            self._make_ready(agent, now, out)

    def _ring_all_lapsed(
        self, call: CallEntry, q: QueueEntry, now: float, out: list[Action]
    ) -> None:
        """A ring-all offer lapsed: every agent it rang (one deadline for all) is Ready
        again, or Not Ready by the missed-offer rule, BEFORE the call goes back, so that
        it rings all of them again (app_queue's ringall) or a better call does."""
        lapsed = [
            a
            for a in (self._agents[i] for i in sorted(call.offered_to))
            if a.deadline is not None and a.deadline <= now
        ]
        free: list[AgentEntry] = []
        for agent in lapsed:
            out.append(WithdrawOffer(call.call_id, agent.agent_id, "timeout"))
            call.offered_to.discard(agent.agent_id)
            agent.missed += 1
            if agent.missed >= self.max_missed_offers:
                self._set_state(agent, AGENT_MISS, MISSED_OFFER, now, out)
            else:
                free.append(agent)
        self._ready_together(free, now, out)
        if not call.offered_to:  # back at its place (or its exit); the freed choose
            self._place(call, q, now, out, offer=False, entering=True)
        self._take_next(free, now, out)
        q = self._queues[call.queue]  # its exit may have moved it
        if call.phase is CallPhase.QUEUED and self._head(q, call.ring) is call:
            agents = self._choose_agents(q, call.ring)  # none freed took it: anyone Ready?
            if agents:
                heapq.heappop(q.calls[call.ring])
                self._unwait(q, call)
                self._offer(call, q, agents, now, out)
        for agent in lapsed:
            if agent not in free:
                self._check_staffing(agent, now, out)
