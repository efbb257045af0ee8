"""Call control by the agent on a call it talks on: hold, mute, blind transfer,
consultations (consult, complete, cancel, conference), and manual dial
(docs/acd.md, "Transfers").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cti.errors import RoutingError
from queue_engine import inputs
from queue_engine.actions import Action, ConsultChanged, DisconnectCall, JoinCall, OfferCall
from queue_engine.matching import Matching
from queue_engine.members import LOGGED_OUT, NOT_READY, READY, RESERVED, TALKING, WRAP_UP
from queue_engine.router_state import AgentEntry, CallEntry, Consultation, dialling
from queue_engine.transitions import AGENT_ANSWER, AGENT_DIAL, AGENT_OFFER, CallPhase

Handlers = dict[type[Any], Callable[[Any, float], list[Action]]]
"""Input type -> the step that applies it (``step(input, now)``)."""


class CallControl(Matching):
    """The call-control inputs (see the module docstring)."""

    def _call_control_inputs(self) -> Handlers:
        return {
            inputs.AgentHoldsCall: self._hold,
            inputs.AgentResumesCall: self._resume,
            inputs.AgentMutes: self._mute,
            inputs.AgentTransfers: self._transfer,
            inputs.AgentConsults: self._consult,
            inputs.AgentCompletesConsult: lambda e, now: self._complete_consult(
                e.agent_id, e.call_id, now
            ),
            inputs.AgentCancelsConsult: self._cancel_consult,
            inputs.AgentConferences: self._conference,
            inputs.AgentDials: self._dial,
            inputs.DialEnds: self._dial_ends,
        }

    # --- hold and mute ---------------------------------------------------------------

    def _hold(self, e: inputs.AgentHoldsCall, now: float) -> list[Action]:
        """The line holds the caller (the agent's own hold)."""
        self._talking(self._agent(e.agent_id), e.call_id, any_consult=True).held = True
        return []

    def _resume(self, e: inputs.AgentResumesCall, now: float) -> list[Action]:
        call = self._talking(self._agent(e.agent_id), e.call_id, any_consult=True)
        if call.consult is not None:
            raise RoutingError(f"call {e.call_id!r}: end the consultation to take it off hold")
        call.held = False
        return []

    def _mute(self, e: inputs.AgentMutes, now: float) -> list[Action]:
        agent = self._agent(e.agent_id)
        self._talking(agent, e.call_id, any_consult=True)
        agent.muted = e.muted
        return []

    # --- transfers and consultations -------------------------------------------------

    def _transfer(self, e: inputs.AgentTransfers, now: float) -> list[Action]:
        """Blind transfer: the call waits in ``queue`` with its age and value, or is
        offered to ``to_agent`` (Ready; if it lets the offer go, the call goes back to
        its queue). The agent goes to wrap-up; the call keeps one record."""
        agent = self._agent(e.agent_id)
        call = self._talking(agent, e.call_id)
        if bool(e.queue) == bool(e.to_agent):
            raise RoutingError(f"transfer of call {e.call_id!r}: name a queue or an agent")
        target = self._free_agent(e.to_agent, e.agent_id) if e.to_agent else None
        q = self._queue(e.queue) if e.queue else self._queues[call.queue]
        out: list[Action] = []
        to = f"queue {e.queue}" if e.queue else f"agent {e.to_agent}"
        self._hand_off(call, agent, to, now, out)
        call.version += 1
        if target is not None:
            self._offer(call, self._queues[call.queue], [target], now, out)
        else:
            if q.name != call.queue:
                self._to_queue(call, q.name, "transfer", out)
            self._enter(call, q, now, out)
        return out

    def _consult(self, e: inputs.AgentConsults, now: float) -> list[Action]:
        """Consult transfer, first step: hold the caller, ring ``to_agent`` (Ready)."""
        agent = self._agent(e.agent_id)
        call = self._talking(agent, e.call_id)
        target = self._free_agent(e.to_agent, e.agent_id, consult=True)
        call.consult = Consultation(e.to_agent, "ringing")
        call.held = True
        deadline = now + self._queues[call.queue].offer_timeout_s
        out: list[Action] = []
        self._set_state(target, AGENT_OFFER, "", now, out, call_id=e.call_id, deadline=deadline)
        out.append(OfferCall(e.call_id, e.to_agent, call.queue, deadline, consult_from=e.agent_id))
        out.append(ConsultChanged(e.call_id, e.agent_id, e.to_agent, "ringing"))
        return out

    def _complete_consult(self, agent_id: str, call_id: str, now: float) -> list[Action]:
        """Hand the caller to the agent consulted (talking); this agent goes to wrap-up."""
        agent = self._agent(agent_id)
        call = self._talking(agent, call_id, consulting=True)
        consult = call.consult
        if consult is None or consult.state not in ("talking", "conference"):
            raise RoutingError(f"call {call_id!r}: no agent consulted has answered yet")
        target = self._agents[consult.agent]
        call.consult = None
        call.held = False
        out: list[Action] = []
        self._hand_off(call, agent, f"agent {target.agent_id} (consulted)", now, out)
        call.current = call.handled_by = target.agent_id
        call.offered_to = {target.agent_id}
        call.leg_started = now
        note = f"{agent_id} handed you the caller"
        out.append(ConsultChanged(call_id, target.agent_id, agent_id, "", note))
        return out

    def _cancel_consult(self, e: inputs.AgentCancelsConsult, now: float) -> list[Action]:
        """End the consultation: the agent consulted is free, the caller stays here."""
        call = self._talking(self._agent(e.agent_id), e.call_id, consulting=True)
        call.held = False
        return self._drop_consult(call, "cancelled", "consultation ended", now)

    def _conference(self, e: inputs.AgentConferences, now: float) -> list[Action]:
        """The held caller joins the consultation (the agent consulted has answered)."""
        call = self._talking(self._agent(e.agent_id), e.call_id, consulting=True)
        consult = call.consult
        if consult is None or consult.state != "talking":
            raise RoutingError(f"call {e.call_id!r}: no agent consulted is talking to join")
        consult.state = "conference"
        call.held = False
        return [
            ConsultChanged(e.call_id, e.agent_id, consult.agent, "conference"),
            ConsultChanged(e.call_id, consult.agent, e.agent_id, "conference"),
        ]

    def _dial(self, e: inputs.AgentDials, now: float) -> list[Action]:
        """The line placed ``call_id`` to ``number`` for the agent (Ready or Not Ready):
        the agent is on it at once (Talking), the call rings until :class:`DialEnds` if
        ``ringing``. Recorded as kind ``manual`` under ``queue`` (default: the agent's
        first). After it (and its wrap-up) the agent is back as it dialled: Not Ready
        with its reason, or Ready."""
        agent = self._agent(e.agent_id)
        if agent.state not in (READY, NOT_READY):
            raise RoutingError(
                f"agent {e.agent_id!r} is {agent.state.value}: dial when Ready or Not Ready"
            )
        self._new_call_id(e.call_id)
        name = self._queue(e.queue).name if e.queue else next(iter(agent.queues))
        seq = self._seq
        self._seq += 1
        call = CallEntry(e.call_id, name, e.caller, now, seq, "manual", CallPhase.TALKING)
        call.key = self._key(call)
        call.current = call.handled_by = e.agent_id
        call.offered_at = call.leg_started = now
        if not e.ringing:
            call.answered_at = now
        call.offered_to = {e.agent_id}
        self._calls[e.call_id] = call
        if agent.state is NOT_READY:
            agent.not_ready_after_call = True
            agent.after_call_reason = agent.reason
        out: list[Action] = []
        self._set_state(agent, AGENT_DIAL, "", now, out, call_id=e.call_id)
        return out

    def _dial_ends(self, e: inputs.DialEnds, now: float) -> list[Action]:
        """The far end answered the agent's dial (the conversation starts; if the far end
        has left already, it ends at once), or did not (:meth:`_dial_over`)."""
        call = self._calls.get(e.call_id)
        if call is None and e.call_id in self._finished:
            return []  # over already: the agent hung up while it rang
        if call is None or not dialling(call):
            raise RoutingError(f"call {e.call_id!r} is not a dial that is ringing")
        agent = self._agents[call.current or ""]
        out: list[Action] = []
        if e.end != "answered":
            self._dial_over(call, agent, e.end, now, out)
            return out
        call.answered_at = call.leg_started = now
        if call.ended_at is not None:  # the far end hung up as it answered
            out.append(DisconnectCall(call.call_id, agent.agent_id, "caller"))
            self._end_conversation(call, agent, now, out)
        return out

    # --- checks ----------------------------------------------------------------------

    def _talking(
        self,
        agent: AgentEntry,
        call_id: str,
        *,
        consulting: bool = False,
        any_consult: bool = False,
    ) -> CallEntry:
        """The call ``agent`` talks on (with a consultation under way if ``consulting``,
        else with none, unless ``any_consult``)."""
        call = self._calls.get(call_id)
        if call is None or call.current != agent.agent_id or call.phase is not CallPhase.TALKING:
            raise RoutingError(f"agent {agent.agent_id!r} is not talking on call {call_id!r}")
        if dialling(call):
            raise RoutingError(f"call {call_id!r} is still ringing: wait for an answer")
        if any_consult:
            return call
        if consulting and call.consult is None:
            raise RoutingError(f"call {call_id!r} has no consultation under way")
        if not consulting and call.consult is not None:
            raise RoutingError(
                f"call {call_id!r}: finish or cancel the consultation with "
                f"{call.consult.agent!r} first"
            )
        return call

    def _free_agent(self, agent_id: str, asking: str, *, consult: bool = False) -> AgentEntry:
        """``agent_id``, Ready to take a transfer (or be consulted); else refused naming
        the state it is in (and its Not Ready reason)."""
        if agent_id == asking:
            doing = "consult itself" if consult else "transfer a call to itself"
            raise RoutingError(f"agent {asking!r} cannot {doing}")
        target = self._agent(agent_id)
        if target.state is not READY:
            rule = (
                "only a Ready agent can be consulted"
                if consult
                else "only a Ready agent can take a transfer; transfer to a queue instead"
            )
            raise RoutingError(f"agent {agent_id!r} {_busy_as(target)}: {rule}")
        return target

    def _consulted(self, agent: AgentEntry, call_id: str) -> CallEntry | None:
        """The call ``agent`` is consulted about (ringing or talking), if it is."""
        call = self._calls.get(call_id)
        if (
            call is not None
            and call.consult is not None
            and call.consult.agent == agent.agent_id
            and agent.call_id == call_id
        ):
            return call
        return None

    def _join_consult(self, call: CallEntry, agent: AgentEntry, now: float) -> list[Action]:
        if agent.state is not RESERVED:
            raise RoutingError(f"agent {agent.agent_id!r} has answered the consultation already")
        assert call.consult is not None
        call.consult.state = "talking"
        agent.missed = 0
        out: list[Action] = [JoinCall(call.call_id, agent.agent_id)]
        self._set_state(agent, AGENT_ANSWER, "", now, out, call_id=call.call_id)
        assert call.current is not None
        out.append(ConsultChanged(call.call_id, call.current, agent.agent_id, "talking"))
        return out


_BUSY_AS = {
    LOGGED_OUT: "is logged out",
    RESERVED: "is being offered a call",
    TALKING: "is talking on a call",
    WRAP_UP: "is in wrap-up",
}


def _busy_as(agent: AgentEntry) -> str:
    """What ``agent`` (not Ready) is doing, as a refusal says it."""
    if agent.state is NOT_READY:
        return f"is Not Ready ({agent.reason})" if agent.reason else "is Not Ready"
    return _BUSY_AS.get(agent.state, f"is {agent.state.value.replace('_', ' ')}")
