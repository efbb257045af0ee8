"""Router inputs the property machines draw by name, shared by the machines."""

from __future__ import annotations

from queue_engine import inputs


def agent_input(request: str, agent: str) -> inputs.AnyInput:
    """An agent's presence request: set_ready, login, set_not_ready (a break) or logout."""
    match request:
        case "set_ready":
            return inputs.AgentGoesReady(agent_id=agent)
        case "login":
            return inputs.AgentLogsIn(agent_id=agent)
        case "logout":
            return inputs.AgentLogsOut(agent_id=agent)
        case "set_not_ready":
            return inputs.AgentGoesNotReady(agent_id=agent, reason="break")
    raise ValueError(f"no agent request named {request!r}")


def call_input(request: str, agent: str, call: str, disposition: str = "ok") -> inputs.AnyInput:
    """An agent's request about a call: accept, reject, agent_hang_up, complete_wrap_up."""
    match request:
        case "accept":
            return inputs.AgentAccepts(agent_id=agent, call_id=call)
        case "reject":
            return inputs.AgentRejects(agent_id=agent, call_id=call)
        case "agent_hang_up":
            return inputs.AgentHangsUp(agent_id=agent, call_id=call)
        case "complete_wrap_up":
            return inputs.AgentFinishesWrapUp(agent_id=agent, call_id=call, disposition=disposition)
    raise ValueError(f"no call request named {request!r}")
