"""An agent's own inputs: logging in and out, Ready and Not Ready, answering or
declining an offer, hanging up, wrap-up; and an agent's configuration.
"""

from __future__ import annotations

from typing import Final

from cti.errors import RoutingError
from cti.models import AgentConfig
from queue_engine import inputs
from queue_engine.actions import Action, ConnectCall, DisconnectCall, WithdrawOffer
from queue_engine.call_control import CallControl, Handlers
from queue_engine.members import LOGGED_OUT, NOT_READY, READY, RESERVED, TALKING, WRAP_UP
from queue_engine.router_core import REJECTED_OFFER
from queue_engine.router_state import BUSY, AgentEntry, CallEntry
from queue_engine.transitions import (
    AGENT_ANSWER,
    AGENT_DECLINE,
    AGENT_EXTEND,
    AGENT_LOG_IN,
    AGENT_LOG_OUT,
    AGENT_PAUSE,
    CALL_ANSWER,
    CallPhase,
)

#: The reason and note of what an agent logging out with a call leaves behind.
LOGGED_OUT_NOTE: Final = "agent logged out"


class AgentDesk(CallControl):
    """The agents' inputs (see the module docstring)."""

    def _agent_inputs(self) -> Handlers:
        return {
            inputs.AgentLogsIn: self._login,
            inputs.AgentLogsOut: self._logout,
            inputs.AgentGoesReady: self._go_ready,
            inputs.AgentGoesNotReady: self._pause,
            inputs.AgentAccepts: self._accept,
            inputs.AgentRejects: lambda e, now: self._reject(e.agent_id, e.call_id, now),
            inputs.AgentHangsUp: self._hang_up,
            inputs.AgentFinishesWrapUp: self._finish_own_wrap_up,
            inputs.AgentExtendsWrapUp: self._extend_wrap_up,
            inputs.AgentConfigured: lambda e, now: self._configure_agent(e.agent, now),
        }

    def _configure_agent(self, config: AgentConfig, now: float) -> list[Action]:
        """Add an agent, or change its skills and queues (it keeps its state)."""
        if not config.queues:
            raise RoutingError(f"agent {config.id!r} must serve at least one queue")
        for name in config.queues:
            self._queue(name)
        agent = self._agents.get(config.id)
        if agent is None:
            agent = AgentEntry(config.id, dict(config.queues), dict(config.skills))
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
        self._link(agent)
        out: list[Action] = []
        for name in sorted(touched):  # sorted: replay must not depend on hashing
            self._recount(self._queues[name])
            self._exit_unstaffed(self._queues[name], now, out)
        if agent.state is READY:
            self._make_ready(agent, now, out)
        return out

    # --- presence --------------------------------------------------------------------

    def _login(self, e: inputs.AgentLogsIn, now: float) -> list[Action]:
        agent = self._agent(e.agent_id)
        if agent.state is not LOGGED_OUT:
            return []
        out: list[Action] = []
        self._set_state(agent, AGENT_LOG_IN, "logged in", now, out)
        return out

    def _logout(self, e: inputs.AgentLogsOut, now: float) -> list[Action]:
        agent = self._agent(e.agent_id)
        out: list[Action] = []
        if agent.state in BUSY:
            self._let_go(agent, now, out)
        if agent.state is not LOGGED_OUT:
            self._set_state(agent, AGENT_LOG_OUT, "", now, out)
            self._check_staffing(agent, now, out)
            for _, _, call_id in sorted(self._personal.pop(e.agent_id, [])):
                call = self._calls.get(call_id)  # its due personal callbacks: for anyone
                if call is not None and call.phase is CallPhase.SCHEDULED:
                    self._enter(call, self._queues[call.queue], now, out)
        return out

    def _let_go(self, agent: AgentEntry, now: float, out: list[Action]) -> None:
        """An agent logs out with a call in hand (docs/acd.md, "Logging out with a
        call"): an offer goes back (the caller to its place), a consultation ends (one
        that answered takes the caller), the caller is handed back to the queue or hung
        up by the queue's ``on_agent_logout``, and wrap-up ends with no disposition. The
        agent is Not Ready after it."""
        agent.not_ready_after_call = True
        call_id = agent.call_id
        assert call_id is not None
        call = self._calls.get(call_id)
        if agent.state is RESERVED:
            out.extend(self._reject(agent.agent_id, call_id, now, reason=LOGGED_OUT_NOTE))
        elif agent.state is TALKING and call is not None:
            if call.consult is not None and call.consult.agent == agent.agent_id:
                note = f"{agent.agent_id} logged out"
                out.extend(self._drop_consult(call, "cancelled", note, now))
            else:
                self._leave_talking(call, agent, now, out)
        if agent.state is WRAP_UP:
            self._finish_wrap_up(agent, "", LOGGED_OUT_NOTE, now, out)
        agent.not_ready_after_call = False

    def _leave_talking(
        self, call: CallEntry, agent: AgentEntry, now: float, out: list[Action]
    ) -> None:
        """The caller of an agent logging out: to the agent consulted if it answered,
        else back to its queue (``requeue``, not a call the agent dialled) or hung up."""
        consult = call.consult
        if consult is not None and consult.state in ("talking", "conference"):
            out.extend(self._complete_consult(agent.agent_id, call.call_id, now))
            return
        if consult is not None:  # still ringing: it ends; the caller is off hold
            call.held = False
            out.extend(self._drop_consult(call, "cancelled", LOGGED_OUT_NOTE, now))
        q = self._queues[call.queue]
        if q.config.on_agent_logout == "requeue" and call.kind != "manual":
            self._hand_off(call, agent, f"queue {q.name} ({LOGGED_OUT_NOTE})", now, out)
            call.version += 1
            self._enter(call, q, now, out)
        else:
            out.append(DisconnectCall(call.call_id, agent.agent_id, "agent"))
            self._end_conversation(call, agent, now, out)

    def _go_ready(self, e: inputs.AgentGoesReady, now: float) -> list[Action]:
        agent = self._agent(e.agent_id)
        if agent.state is READY:
            return []
        if agent.state is not NOT_READY:
            raise RoutingError(
                f"agent {e.agent_id!r} cannot go Ready while {agent.state.value} "
                "(log in first, or finish the call and its wrap-up)"
            )
        agent.missed = 0
        out: list[Action] = []
        self._make_ready(agent, now, out)
        return out

    def _pause(self, e: inputs.AgentGoesNotReady, now: float) -> list[Action]:
        fields = e.__dict__  # one read through pydantic's attribute hook (see _arrive)
        return self._go_not_ready(fields["agent_id"], fields["reason"], now)

    def _go_not_ready(self, agent_id: str, reason: str, now: float) -> list[Action]:
        """Ready or Not Ready: go Not Ready now. Busy: go Not Ready after this call."""
        agent = self._agent(agent_id)
        out: list[Action] = []
        if agent.state in (READY, NOT_READY):
            self._set_state(agent, AGENT_PAUSE, reason, now, out)
            self._check_staffing(agent, now, out)
        elif agent.state in (TALKING, WRAP_UP):
            agent.not_ready_after_call = True
        elif agent.state is RESERVED:
            assert agent.call_id is not None
            return self._reject(agent_id, agent.call_id, now, reason=reason)
        else:
            raise RoutingError(f"agent {agent_id!r} is logged out; log in first")
        return out

    # --- offers and conversations ----------------------------------------------------

    def _accept(self, e: inputs.AgentAccepts, now: float) -> list[Action]:
        fields = e.__dict__  # one read through pydantic's attribute hook (see _arrive)
        agent_id: str = fields["agent_id"]
        call_id: str = fields["call_id"]
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
        self._move(call, CALL_ANSWER)
        call.current = call.handled_by = agent_id
        answered = call.answered_at is not None  # transferred: connected already
        if not answered:
            call.answered_at = now
        call.leg_started = now
        agent.missed = 0
        dial = None if answered or call.callback is None else call.callback.number
        out.insert(0, ConnectCall(call_id, agent_id, dial, answered))
        self._set_state(agent, AGENT_ANSWER, "", now, out, call_id=call_id)
        return out

    def _reject(
        self, agent_id: str, call_id: str, now: float, *, reason: str = REJECTED_OFFER
    ) -> list[Action]:
        agent = self._agent(agent_id)
        consulted = self._consulted(agent, call_id)
        if consulted is not None:
            note = f"{agent_id} declined the consultation"
            return self._drop_consult(consulted, "rejected", note, now, not_ready=reason)
        call = self._offered_to(agent, call_id)
        out: list[Action] = [WithdrawOffer(call_id, agent_id, "rejected")]
        self._set_state(agent, AGENT_DECLINE, reason, now, out)
        call.offered_to.discard(agent_id)
        if not call.offered_to:
            self._requeue(call, now, out)
        self._check_staffing(agent, now, out)
        return out

    def _hang_up(self, e: inputs.AgentHangsUp, now: float) -> list[Action]:
        fields = e.__dict__  # one read through pydantic's attribute hook (see _arrive)
        agent_id: str = fields["agent_id"]
        call_id: str = fields["call_id"]
        agent = self._agent(agent_id)
        call = self._calls.get(call_id)
        if call is not None and call.consult is not None and call.consult.agent == agent_id:
            note = f"{agent_id} left the consultation"
            return self._drop_consult(call, "cancelled", note, now)
        if call is None or call.current != agent_id or call.phase is not CallPhase.TALKING:
            raise RoutingError(f"agent {agent_id!r} is not talking on call {call_id!r}")
        if call.consult is not None and call.consult.state == "conference":
            return self._complete_consult(agent_id, call_id, now)  # the caller stays
        out: list[Action] = [DisconnectCall(call_id, agent_id, "agent")]
        self._end_conversation(call, agent, now, out)
        return out

    # --- wrap-up ---------------------------------------------------------------------

    def _in_wrap_up(self, agent_id: str, call_id: str) -> AgentEntry:
        agent = self._agent(agent_id)
        if agent.state is not WRAP_UP or agent.call_id != call_id:
            raise RoutingError(f"agent {agent_id!r} is not in wrap-up of call {call_id!r}")
        return agent

    def _finish_own_wrap_up(self, e: inputs.AgentFinishesWrapUp, now: float) -> list[Action]:
        fields = e.__dict__  # one read through pydantic's attribute hook (see _arrive)
        agent = self._in_wrap_up(fields["agent_id"], fields["call_id"])
        out: list[Action] = []
        self._finish_wrap_up(agent, fields["disposition"], fields["note"], now, out)
        return out

    def _extend_wrap_up(self, e: inputs.AgentExtendsWrapUp, now: float) -> list[Action]:
        """More wrap-up time, up to the queue's ``wrap_up_max_s`` from the call's end."""
        agent = self._in_wrap_up(e.agent_id, e.call_id)
        queue = agent.handed_off[0] if agent.handed_off else self._calls[e.call_id].queue
        cfg = self._queues[queue].config
        cap = cfg.wrap_up_max_s if cfg.wrap_up_max_s is not None else cfg.wrap_up_s
        assert agent.wrap_started is not None
        assert agent.deadline is not None
        deadline = min(agent.deadline + max(0.0, e.seconds), agent.wrap_started + cap)
        if deadline <= agent.deadline:
            raise RoutingError(
                f"wrap-up of call {e.call_id!r} is at its cap of {cap:g} s for queue {queue!r}"
            )
        out: list[Action] = []
        started = agent.wrap_started
        self._set_state(
            agent, AGENT_EXTEND, "", agent.since, out, call_id=e.call_id, deadline=deadline
        )
        agent.wrap_started = started
        return out
