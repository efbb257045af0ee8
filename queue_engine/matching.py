"""Where a call goes next, and what a free agent takes next: the router's matching.

A call entering or coming back into a queue takes an exit, is offered to the agent(s)
the queue's strategy picks, or waits on its ring's heap; an agent who frees up takes
the best call it may take (a personal callback first) or waits in the Ready pools; a
conversation's end puts the agent in wrap-up, and the wrap-up's end frees it. The
rules are in the module docstring of :mod:`queue_engine.router` and in docs/acd.md.
"""

from __future__ import annotations

import heapq
from typing import Final

from cti.models import ExitAction, QueueExit
from queue_engine.actions import (
    Action,
    ConsultChanged,
    DisconnectCall,
    ExitCall,
    MoveCall,
    OfferCall,
    RecordLeg,
    ReleaseLine,
    WithdrawOffer,
    WithdrawReason,
)
from queue_engine.members import LOGGED_OUT, READY, RING_ALL, ROUND_ROBIN
from queue_engine.router_core import (
    HEAP_POP,
    HEAP_PUSH,
    NOT_READY_AFTER_CALL,
    REJECTED_OFFER,
    RouterCore,
)
from queue_engine.router_state import (
    COMPILED,
    AgentEntry,
    Callback,
    CallEntry,
    QueueEntry,
    dialling,
    heap_pop,
    heap_push,
)
from queue_engine.transitions import (
    AGENT_AFTER_CALL,
    AGENT_DECLINE,
    AGENT_END,
    AGENT_FREE,
    AGENT_OFFER,
    CALL_END,
    CALL_OFFER,
    CALL_QUEUE,
    CallPhase,
)

#: A call may be moved by exit rules at most this many times (guards against loops).
_MAX_EXIT_MOVES: Final = 8
#: Weight of the newest handle time in a queue's running average (for wait estimates).
_AHT_SMOOTHING: Final = 0.05


class Matching(RouterCore):
    """Matching calls and agents (see the module docstring)."""

    # --- a free agent ----------------------------------------------------------------

    def _make_ready(self, agent: AgentEntry, now: float, out: list[Action]) -> None:
        """The agent is free: take the best call it may take, or wait in the pools."""
        if self._personal and self._offer_personal(agent, now, out):
            return  # a callback it promised comes before its queues' calls
        while (best := self._best_call_for(agent, now)) is not None:
            q = self._queues[best.queue]
            if COMPILED:  # the compiled heap (router_state.heap_pop)
                heap_pop(q.calls[best.ring])
            else:
                HEAP_POP(q.calls[best.ring])
            self._unwait(q, best)
            due = self._max_wait_due(best, q)
            if due is not None and now >= due:  # its exit timer fires at this very moment
                self._place(best, q, now, out)  # takes the exit; look again
                continue
            agents = [agent]
            if q.strategy is RING_ALL:  # others Ready with it (_free_all)
                agents += self._choose_agents(q, best.ring)
            self._offer(best, q, agents, now, out)
            return
        if agent.state is not READY:
            self._set_state(agent, AGENT_FREE, "", now, out)
        self._join_pools(agent)

    def _best_call_for(self, agent: AgentEntry, now: float) -> CallEntry | None:
        """The best waiting call ``agent`` may take: rank + its bonus, then arrival."""
        best: CallEntry | None = None
        best_rank = 0.0
        for q, bonus, first in agent.links:
            aging = q.aging_rate * now
            for ring in range(first, len(q.rings)):
                head = self._head(q, ring)
                if head is None:
                    continue
                # Higher rank first, then earlier arrival, then earlier seq: the tuple
                # (-rank, arrived_at, seq) compared, without making one per head.
                rank = head.key + aging + bonus  # summed in this order, as ever
                if (
                    best is None
                    or rank > best_rank
                    or (
                        rank == best_rank
                        and (head.arrived_at, head.seq) < (best.arrived_at, best.seq)
                    )
                ):
                    best, best_rank = head, rank
        return best

    def _offer_personal(self, agent: AgentEntry, now: float, out: list[Action]) -> bool:
        """Offer the agent the best due callback reserved for it, if one still waits."""
        heap = self._personal.get(agent.agent_id)
        call = None
        while heap and call is None:
            call = self._calls.get(HEAP_POP(heap)[2])
            if call is not None and call.phase is not CallPhase.SCHEDULED:
                call = None  # gone to anyone meanwhile: a stale entry
        if heap is not None and not heap:
            del self._personal[agent.agent_id]
        if call is None:
            return False
        q = self._queues[call.queue]
        call.ring = q.ring_for(call.arrived_at, now)
        self._offer(call, q, [agent], now, out)
        return True

    def _free_all(self, agents: list[AgentEntry], now: float, out: list[Action]) -> None:
        """Agents whose offers ended together: all Ready first, then each takes the best
        call it may take, so a ring-all call rings every one of them, not only the first
        (the others still Reserved a moment too long)."""
        if len(agents) == 1:
            agents[0].call_id = None
            self._make_ready(agents[0], now, out)
            return
        self._ready_together(agents, now, out)
        self._take_next(agents, now, out)

    def _ready_together(self, agents: list[AgentEntry], now: float, out: list[Action]) -> None:
        """Ready and in the pools, not yet choosing a call (see :meth:`_take_next`)."""
        for agent in agents:
            agent.call_id = None
            self._set_state(agent, AGENT_FREE, "", now, out)
            self._join_pools(agent)

    def _take_next(self, agents: list[AgentEntry], now: float, out: list[Action]) -> None:
        """Each of ``agents`` still Ready takes the best call it may take (a ring-all
        call rings all Ready agents of its ring with it)."""
        for agent in agents:
            if agent.state is READY:  # not rung by an earlier one's choice
                self._leave_pools(agent)
                self._make_ready(agent, now, out)

    def _check_staffing(self, agent: AgentEntry, now: float, out: list[Action]) -> None:
        """After an agent left: waiting calls of a queue with nobody left may exit."""
        for name in agent.queues:
            self._exit_unstaffed(self._queues[name], now, out)

    def _exit_unstaffed(self, q: QueueEntry, now: float, out: list[Action]) -> None:
        """If ``q`` has a no-agents exit and nobody is there, its waiting calls take it."""
        rule = q.no_agents
        if rule is None or q.waiting == 0 or self._staffed(q):
            return
        for call_id in self._waiting_in_order(q.name):
            call = self._calls[call_id]
            if call.callback is not None:
                continue  # a callback waits for agents to come back
            self._unwait(q, call)
            call.version += 1
            self._take_exit(call, rule, "no agents", now, out)

    # --- a call into (or back into) a queue ------------------------------------------

    def _enter(self, call: CallEntry, q: QueueEntry, now: float, out: list[Action]) -> None:
        """A call arrives in ``q`` (new, due, or moved): exit rules first, then place it."""
        self._move(call, CALL_QUEUE)
        if call.callback is None:  # exits are for callers on the line
            if q.max_length is not None and q.waiting >= q.max_calls:
                self._take_exit(call, q.max_length, "queue full", now, out)
                return
            if q.no_agents is not None and not self._staffed(q):
                self._take_exit(call, q.no_agents, "no agents", now, out)
                return
        self._place(call, q, now, out, entering=True)  # max_wait: there, on every way in

    def _due(self, call: CallEntry, now: float, out: list[Action]) -> None:
        """A scheduled callback is due: into its queue, or to the agent it is reserved for."""
        q = self._queues[call.queue]
        reserved = call.callback.reserved_for if call.callback is not None else None
        owner = None if reserved is None else self._agents[reserved]
        if owner is None or owner.state is LOGGED_OUT:
            self._enter(call, q, now, out)
        elif owner.state is READY:
            call.ring = q.ring_for(call.arrived_at, now)
            self._offer(call, q, [owner], now, out)
        else:  # stays scheduled until the owner frees up or the wait is over
            entry = (-call.key, call.seq, call.call_id)
            heapq.heappush(self._personal.setdefault(owner.agent_id, []), entry)
            wait = q.config.personal_callback_wait_s
            self._timer(call.arrived_at + wait, "personal", call.call_id)

    def _place(
        self,
        call: CallEntry,
        q: QueueEntry,
        now: float,
        out: list[Action],
        *,
        offer: bool = True,
        entering: bool = False,
    ) -> None:
        """Offer ``call`` to the best Ready agent of its ring (unless not ``offer``), or
        queue it. Every way into or back into a queue comes here: a caller past the
        queue's ``max_wait`` takes the exit at once instead. ``entering``: the call was
        not waiting in ``q`` (new, moved, back from an offer): if it waits, it joins the
        arrival order too (only then: a call offered at once needs no entry there)."""
        due = self._max_wait_due(call, q)
        if due is not None and now >= due:
            rule = q.max_wait
            assert rule is not None
            self._take_exit(call, rule, "max wait", now, out)
            return
        call.ring = q.ring_for(call.arrived_at, now)
        agents = self._choose_agents(q, call.ring) if offer else []
        if agents:
            self._offer(call, q, agents, now, out)
            return
        self._wait(call, q, now)
        if entering:
            self._by_arrival(call, q)

    def _by_arrival(self, call: CallEntry, q: QueueEntry) -> None:
        """``call``, now waiting in ``q``, into its arrival order (the longest wait)."""
        if COMPILED:
            heap_push(q.by_arrival, (call.arrived_at, call.seq, call.call_id))
        else:
            HEAP_PUSH(q.by_arrival, (call.arrived_at, call.seq, call.call_id))
        if len(q.by_arrival) > 2 * q.waiting + 64:  # stale entries dropped
            q.by_arrival = [e for e in q.by_arrival if self._is_queued(e[2], q.name)]
            heapq.heapify(q.by_arrival)

    def _wait(self, call: CallEntry, q: QueueEntry, now: float) -> None:
        """``call`` waits in ``q``: counted, on its ring's heap, its timers armed."""
        if call.phase is not CallPhase.QUEUED:  # a call entering is queued already
            self._move(call, CALL_QUEUE)
        call.current = None
        call.offered_to.clear()  # emptied, not replaced: no set made and freed (§13)
        q.waiting += 1
        self._push(call, q, now)
        if call.ring + 1 < len(q.rings):
            self._timer(call.arrived_at + q.afters[call.ring + 1], "ring", call.call_id)
        due = self._max_wait_due(call, q)
        if due is not None and call.exit_at != due:  # a timer for ``due`` is pending else
            call.exit_at = due
            self._timer(due, "max_wait", call.call_id)

    def _requeue(self, call: CallEntry, now: float, out: list[Action]) -> None:
        """Back to the queue at its old place (its fixed key never changed)."""
        self._place(call, self._queues[call.queue], now, out, entering=True)

    def _offer(
        self,
        call: CallEntry,
        q: QueueEntry,
        agents: list[AgentEntry],
        now: float,
        out: list[Action],
    ) -> None:
        """Offer ``call`` of ``q`` (its queue, which the caller has at hand) to ``agents``."""
        self._move(call, CALL_OFFER)
        if len(agents) == 1:
            agent_id = agents[0].agent_id
            call.current = agent_id
            offered = call.offered_to  # the call's own set, refilled (no set made and freed)
            offered.clear()
            offered.add(agent_id)
        else:
            call.current = None
            call.offered_to = {a.agent_id for a in agents}
        call.offers += 1
        if call.offered_at is None:
            call.offered_at = now
        deadline = now + q.offer_timeout_s
        if q.strategy is ROUND_ROBIN:
            q.rr_last = q.order[agents[0].agent_id]
        for agent in agents:
            self._set_state(
                agent, AGENT_OFFER, "", now, out, call_id=call.call_id, deadline=deadline
            )
            out.append(OfferCall(call.call_id, agent.agent_id, call.queue, deadline))

    def _to_queue(self, call: CallEntry, queue: str, reason: str, out: list[Action]) -> None:
        """The call belongs to ``queue`` from now (its rank follows); age kept."""
        out.append(MoveCall(call.call_id, call.queue, queue, reason))
        call.queue = queue
        call.key = self._key(call)

    # --- exits -----------------------------------------------------------------------

    def _take_exit(
        self, call: CallEntry, rule: QueueExit, reason: str, now: float, out: list[Action]
    ) -> None:
        """The call leaves its queue by ``rule`` (it is not counted as waiting any more)."""
        if rule.action is ExitAction.QUEUE and call.exit_moves < _MAX_EXIT_MOVES:
            call.exit_moves += 1
            call.version += 1
            self._to_queue(call, rule.queue, reason, out)
            self._enter(call, self._queues[rule.queue], now, out)
            return
        if rule.action is ExitAction.CALLBACK and call.caller.e164 is not None:
            # Only a real number can be called back; a withheld or garbled one goes
            # to voicemail instead.
            self._become_callback(call, call.caller.e164, now)
            out.append(ReleaseLine(call.call_id))
            # entering: it may come from _enter, which left the arrival order to _place
            self._place(call, self._queues[call.queue], now, out, entering=True)
            return
        action = rule.action
        if action in (ExitAction.QUEUE, ExitAction.CALLBACK):
            action = ExitAction.VOICEMAIL
        if call.callback is None:
            out.append(ExitCall(call.call_id, call.queue, action, reason, rule.message))
        self._finish_call(call, now, "exited", out, exit_action=f"{action.value}: {reason}")

    @staticmethod
    def _become_callback(call: CallEntry, number: str, now: float) -> None:
        """The caller's line is released: the call is called back at ``number``."""
        call.callback = Callback(number, now)
        call.kind = "callback"

    # --- the end of a conversation and of its wrap-up --------------------------------

    def _end_conversation(
        self, call: CallEntry, agent: AgentEntry, now: float, out: list[Action]
    ) -> None:
        if dialling(call):  # the agent hung up a dial still ringing
            self._dial_over(call, agent, "cancelled", now, out)
            return
        if call.consult is not None:
            out.extend(self._drop_consult(call, "caller_hung_up", "the call ended", now))
        self._move(call, CALL_END)
        call.ended_at = now
        call.held = False
        agent.calls_handled += 1
        if call.answered_at is not None:
            agent.talk_time += now - call.leg_started
        self._start_wrap_up(call, agent, now, out)

    def _start_wrap_up(
        self, call: CallEntry, agent: AgentEntry, now: float, out: list[Action]
    ) -> None:
        wrap = self._queues[call.queue].wrap_up_s
        self._set_state(agent, AGENT_END, "", now, out, call_id=call.call_id, deadline=now + wrap)
        agent.wrap_started = now

    def _finish_wrap_up(
        self, agent: AgentEntry, disposition: str, note: str, now: float, out: list[Action]
    ) -> None:
        assert agent.call_id is not None
        if agent.handed_off is not None:
            self._finish_leg(agent, disposition, note, now, out)
            return
        call = self._calls[agent.call_id]
        ended_at, answered_at = call.ended_at, call.answered_at
        assert ended_at is not None
        assert answered_at is not None
        q = self._queues[call.queue]
        handle = (ended_at - answered_at) + (now - ended_at)
        q.aht += _AHT_SMOOTHING * (handle - q.aht)
        self._finish_call(
            call,
            ended_at,
            "answered",
            out,
            disposition=disposition,
            note=note,
            wrap_up_s=now - ended_at,
        )
        self._wrap_up_over(agent, now, out)

    def _dial_over(
        self, call: CallEntry, agent: AgentEntry, end: str, now: float, out: list[Action]
    ) -> None:
        """A manual dial never answered is over: recorded as ``unanswered`` with ``end``
        (no answer, busy, failed, cancelled) as its disposition; its agent goes back to
        the state it dialled from, with no wrap-up."""
        self._move(call, CALL_END)
        self._finish_call(call, call.ended_at or now, "unanswered", out, disposition=end)
        self._wrap_up_over(agent, now, out)

    def _wrap_up_over(self, agent: AgentEntry, now: float, out: list[Action]) -> None:
        """The agent's wrap-up is over: Not Ready if it asked to be after this call (or
        dialled it from Not Ready: with the reason it had), else Ready (and maybe offered
        the next call at once)."""
        agent.call_id = None
        agent.wrap_started = None
        reason, agent.after_call_reason = agent.after_call_reason, ""
        if agent.not_ready_after_call:
            agent.not_ready_after_call = False
            reason = reason or NOT_READY_AFTER_CALL
            self._set_state(agent, AGENT_AFTER_CALL, reason, now, out)
            self._check_staffing(agent, now, out)
        else:
            self._make_ready(agent, now, out)

    # --- handing a call on (transfers, consultations: docs/acd.md, "Transfers") ------

    def _hand_off(
        self, call: CallEntry, agent: AgentEntry, target: str, now: float, out: list[Action]
    ) -> None:
        """``agent`` hands the call on to ``target`` and goes to wrap-up of its part."""
        call.trail.append(f"transferred by {agent.agent_id} to {target}")
        out.append(DisconnectCall(call.call_id, agent.agent_id, "transfer"))
        agent.calls_handled += 1
        agent.talk_time += now - call.leg_started
        self._start_wrap_up(call, agent, now, out)
        agent.handed_off = (call.queue, call.customer_id)

    def _finish_leg(
        self, agent: AgentEntry, disposition: str, note: str, now: float, out: list[Action]
    ) -> None:
        """Wrap-up of a call the agent handed on is over: its disposition is kept (in
        the call's record if the call goes on, and as a :class:`RecordLeg`)."""
        assert agent.call_id is not None
        assert agent.handed_off is not None
        queue, customer = agent.handed_off
        call = self._calls.get(agent.call_id)
        if call is not None and (disposition or note):
            said = " ".join(filter(None, (disposition, note)))
            call.trail.append(f"{agent.agent_id}: {said}")
        out.append(RecordLeg(agent.call_id, agent.agent_id, queue, customer, disposition, note))
        agent.handed_off = None
        self._wrap_up_over(agent, now, out)

    def _drop_consult(
        self,
        call: CallEntry,
        reason: WithdrawReason,
        note: str,
        now: float,
        *,
        not_ready: str = REJECTED_OFFER,
    ) -> list[Action]:
        """The consultation ends: the agent consulted is free (Ready, or Not Ready with
        ``not_ready`` if it asked for that instead of declining), its caller's agent told."""
        assert call.consult is not None
        target = self._agents[call.consult.agent]
        call.consult = None
        out: list[Action] = [WithdrawOffer(call.call_id, target.agent_id, reason)]
        target.call_id = None
        move = AGENT_DECLINE
        if target.not_ready_after_call:
            target.not_ready_after_call = False
            not_ready, move = NOT_READY_AFTER_CALL, AGENT_AFTER_CALL
        if not_ready != REJECTED_OFFER:
            self._set_state(target, move, not_ready, now, out)
            self._check_staffing(target, now, out)
        else:
            self._make_ready(target, now, out)
        current = call.current
        if current is not None and reason != "caller_hung_up":
            out.append(ConsultChanged(call.call_id, current, target.agent_id, "", note))
        return out
