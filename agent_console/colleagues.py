"""The other agents as the desk sees them, for the transfer and consult dialogs.

The desk follows ``topics.ALL_COLLEAGUE_STATES`` (every agent's retained name and state,
without its call: the broker lets an agent read no other agent's state topic, which names
its caller) into :class:`Colleagues`; :meth:`Colleagues.targets` lists whom a call can go
to: the Ready agents first (with their names), then the queues (a transfer only), then
the agents who cannot take it now, dimmed, saying why. Logged-out agents are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text

from cti import topics
from cti.bus.memory import Bus
from cti.models import AgentState
from cti.protocol import ColleagueState

#: What an agent who is not Ready is doing, as the dialogs say it.
_BUSY_AS = {
    AgentState.RESERVED: "being offered a call",
    AgentState.TALKING: "talking on a call",
    AgentState.WRAP_UP: "in wrap-up",
}


@dataclass(frozen=True, slots=True)
class Target:
    """One choice of a transfer or consult dialog: ``value`` is what is sent."""

    value: str
    label: Text
    free: bool
    """Whether it can take the call now (a Ready agent, or a queue)."""


def busy_as(state: ColleagueState) -> str:
    """Why an agent who is not Ready cannot take a call ("Not Ready (lunch)", ...)."""
    if state.state is AgentState.NOT_READY:
        return f"Not Ready ({state.reason})" if state.reason else "Not Ready"
    return _BUSY_AS.get(state.state, state.state.value.replace("_", " "))


def _agent_label(state: ColleagueState, why: str) -> Text:
    label = Text(state.agent_id, style="bold" if not why else "")
    if state.agent_name:
        label.append(f"  {state.agent_name}")
    label.append(f"  · {why or 'Ready'}", style="italic")
    if why:
        label.stylize("dim")
    return label


class Colleagues:
    """The latest state of every agent the desk has heard of (module docstring)."""

    def __init__(self) -> None:
        self.states: dict[str, ColleagueState] = {}

    def apply(self, message: object) -> None:
        if isinstance(message, ColleagueState):
            self.states[message.agent_id] = message

    async def follow(self, bus: Bus) -> None:
        """Keep up with every agent's state on ``bus`` (until cancelled)."""
        async with bus.subscribe(topics.ALL_COLLEAGUE_STATES) as states:
            async for _topic, message in states:
                self.apply(message)

    def targets(self, me: str, queues: Iterable[str], *, consult: bool) -> list[Target]:
        """Whom a call of ``me`` can go to: Ready agents, the queues (unless ``consult``),
        then the others (not free), each group in id or name order."""
        others = sorted(
            (s for a, s in self.states.items() if a != me and s.state is not AgentState.LOGGED_OUT),
            key=lambda s: s.agent_id,
        )
        ready = [Target(s.agent_id, _agent_label(s, ""), True) for s in others
                 if s.state is AgentState.READY]  # fmt: skip
        busy = [Target(s.agent_id, _agent_label(s, busy_as(s)), False) for s in others
                if s.state is not AgentState.READY]  # fmt: skip
        if consult:
            return ready + busy
        to_queues = [
            Target(q, Text.assemble(q, ("  · queue", "italic")), True) for q in sorted(set(queues))
        ]
        return ready + to_queues + busy
