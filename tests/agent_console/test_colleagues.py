"""The desk's view of the other agents (no app): whom a transfer or a consultation can go
to, in order, and why the others cannot take it."""

from __future__ import annotations

from agent_console.colleagues import Colleagues
from cti.models import AgentState
from cti.protocol import ColleagueState


def state(agent: str, now: AgentState, reason: str = "", name: str = "") -> ColleagueState:
    return ColleagueState(agent_id=agent, state=now, reason=reason, agent_name=name)


def test_ready_first_then_queues_then_the_others_with_why_and_never_oneself() -> None:
    seen = Colleagues()
    for message in (
        state("1001", AgentState.READY, name="Me"),
        state("1005", AgentState.TALKING, name="Zhao Lei"),
        state("1003", AgentState.READY, name="Wang Fang"),
        state("1002", AgentState.NOT_READY, "lunch"),
        state("1004", AgentState.LOGGED_OUT, name="Chen Jie"),
        state("1006", AgentState.WRAP_UP),
        state("1003", AgentState.READY, name="Wang Fang"),  # again: once
    ):
        seen.apply(message)
    shown = [
        (t.value, t.label.plain, t.free)
        for t in seen.targets("1001", ["b", "a", "b"], consult=False)
    ]
    assert shown == [
        ("1003", "1003  Wang Fang  · Ready", True),
        ("a", "a  · queue", True),
        ("b", "b  · queue", True),
        ("1002", "1002  · Not Ready (lunch)", False),
        ("1005", "1005  Zhao Lei  · talking on a call", False),
        ("1006", "1006  · in wrap-up", False),
    ]
    consult = [t.value for t in seen.targets("1001", ["a"], consult=True)]
    assert consult == ["1003", "1002", "1005", "1006"]
    seen.apply(state("1003", AgentState.LOGGED_OUT))
    assert [t.value for t in seen.targets("1001", [], consult=True) if t.free] == []
