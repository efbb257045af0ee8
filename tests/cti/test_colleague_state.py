"""What other agents may see of an agent (the desk's transfer and consult dialogs): its
name and state, never its call or caller (customer data, for the wallboard only)."""

from __future__ import annotations

from cti import topics
from cti.engine.status import colleague_view
from cti.models import AgentState
from cti.protocol import AgentStateChanged, ColleagueState, decode, encode


def test_a_colleague_state_has_exactly_the_safe_fields() -> None:
    # A field added here reaches every agent: keep it free of calls and callers.
    assert set(ColleagueState.model_fields) == {
        "type",
        "agent_id",
        "agent_name",
        "state",
        "reason",
    }


def test_the_colleague_view_of_a_state_on_a_call_drops_the_call_and_caller() -> None:
    state = AgentStateChanged(
        agent_id="1002",
        agent_name="Li Na",
        state=AgentState.TALKING,
        since_wall=1.0,
        call_id="call-7",
        caller_name="Wang Xiu",
        caller_number="+8613800138000",
    )
    view = colleague_view(state)
    assert view == ColleagueState(agent_id="1002", agent_name="Li Na", state=AgentState.TALKING)
    wire = encode(view)
    for secret in (b"Wang Xiu", b"13800138000", b"call-7"):
        assert secret not in wire
    assert decode(wire, where=topics.colleague_state("1002")) == view


def test_a_not_ready_reason_is_kept() -> None:
    state = AgentStateChanged(
        agent_id="1003", state=AgentState.NOT_READY, reason="lunch", since_wall=0.0
    )
    assert colleague_view(state).reason == "lunch"


def test_colleague_topics_are_not_agent_state_topics() -> None:
    assert topics.colleague_state("1001") == "cti/v1/colleagues/1001"
    assert topics.matches(topics.ALL_COLLEAGUE_STATES, topics.colleague_state("1001"))
    assert not topics.matches(topics.ALL_COLLEAGUE_STATES, topics.agent_state("1001"))
