"""The agent's manual dial in the router (sans-I/O): the call rings until the line says
how it ended; answered, the agent talks and wraps up; not answered (no answer, busy,
failed, or the agent hung up), it is over at once with that end as its disposition.
Either way the agent goes back to the state it dialled from: Not Ready with its reason,
or Ready."""

from __future__ import annotations

import pytest

from cti.errors import RoutingError
from cti.models import AgentConfig, AgentState
from queue_engine import inputs
from queue_engine.actions import AgentStateSet, DisconnectCall, OfferCall, RecordCall
from queue_engine.router import NOT_READY_AFTER_CALL, CallPhase, Router
from tests.queue_engine.test_router_transfer import GENERAL, caller, of_type, record_of

NUMBER = "+8613800000001"


def router_with(state: str) -> Router:
    """Agent 1001 in queue general, Ready or Not Ready (lunch)."""
    router = Router([GENERAL], agents=[AgentConfig(id="1001", queues={"general": 0.0})])
    router.handle(inputs.AgentLogsIn(agent_id="1001"), 0.0)
    if state == "ready":
        router.handle(inputs.AgentGoesReady(agent_id="1001"), 0.0)
    else:
        router.handle(inputs.AgentGoesNotReady(agent_id="1001", reason="lunch"), 0.0)
    return router


def dial(router: Router, *, ringing: bool = True, at: float = 5.0) -> list[object]:
    return list(
        router.handle(
            inputs.AgentDials(
                agent_id="1001", call_id="d1", number=NUMBER, caller=caller(), ringing=ringing
            ),
            at,
        )
    )


def state_of(router: Router) -> tuple[AgentState, str]:
    agent = router.agent("1001")
    return agent.state, agent.reason


@pytest.mark.parametrize(
    ("before", "after"),
    [("not_ready", (AgentState.NOT_READY, "lunch")), ("ready", (AgentState.READY, ""))],
)
def test_an_answered_dial_rings_talks_wraps_up_and_goes_back_as_it_was(
    before: str, after: tuple[AgentState, str]
) -> None:
    router = router_with(before)
    dial(router)
    assert router.agent("1001").state is AgentState.TALKING  # on the line: offered nothing
    assert router.call_dialling("d1")
    router.handle(inputs.DialEnds(call_id="d1", end="answered"), 8.0)
    assert not router.call_dialling("d1")
    router.handle(inputs.AgentHangsUp(agent_id="1001", call_id="d1"), 68.0)
    assert router.agent("1001").state is AgentState.WRAP_UP
    out = router.handle(
        inputs.AgentFinishesWrapUp(agent_id="1001", call_id="d1", disposition="sale"), 70.0
    )
    cdr = record_of(out).cdr
    assert (cdr.kind, cdr.outcome, cdr.disposition, cdr.agent_id) == (
        "manual",
        "answered",
        "sale",
        "1001",
    )
    assert cdr.talk_s == 60.0  # from the answer, not from the dial
    assert state_of(router) == after


def test_a_dial_answered_as_placed_goes_back_to_not_ready_after_the_wrap_up_timer() -> None:
    """A line that does not report how dials end: answered as placed (older journals too)."""
    router = router_with("not_ready")
    dial(router, ringing=False)
    assert not router.call_dialling("d1")
    router.handle(inputs.CallerHangsUp(call_id="d1"), 30.0)
    assert router.agent("1001").state is AgentState.WRAP_UP
    router.handle(inputs.TimePasses(), 30.0 + GENERAL.wrap_up_s)
    assert state_of(router) == (AgentState.NOT_READY, "lunch")


@pytest.mark.parametrize("end", ["no_answer", "busy", "failed"])
@pytest.mark.parametrize(
    ("before", "after"),
    [("not_ready", (AgentState.NOT_READY, "lunch")), ("ready", (AgentState.READY, ""))],
)
def test_a_dial_not_answered_is_over_at_once_with_no_wrap_up(
    end: inputs.DialEndName, before: str, after: tuple[AgentState, str]
) -> None:
    router = router_with(before)
    dial(router)
    out = router.handle(inputs.DialEnds(call_id="d1", end=end), 20.0)
    cdr = record_of(out).cdr
    assert (cdr.kind, cdr.outcome, cdr.disposition, cdr.agent_id) == (
        "manual",
        "unanswered",
        end,
        "1001",
    )
    assert cdr.answered_at is None
    assert [a.state for a in of_type(out, AgentStateSet)] == [after[0]]  # no wrap-up between
    assert state_of(router) == after
    assert router.next_deadline() is None  # no wrap-up timer
    assert of_type(out, DisconnectCall) == []  # the line ended it: nothing to hang up


def test_the_far_end_leaving_first_waits_for_the_lines_outcome() -> None:
    """A line yields the hang-up of a dial that ended as well as its outcome, in either
    order: the outcome (busy) is what the record says."""
    router = router_with("ready")
    dial(router)
    assert router.handle(inputs.CallerHangsUp(call_id="d1"), 9.0) == []
    assert router.call_dialling("d1")
    cdr = record_of(router.handle(inputs.DialEnds(call_id="d1", end="busy"), 9.5)).cdr
    assert (cdr.outcome, cdr.disposition, cdr.ended_at) == ("unanswered", "busy", 9.0)
    assert state_of(router) == (AgentState.READY, "")


def test_answered_as_the_far_end_left_is_a_conversation_that_ended() -> None:
    router = router_with("not_ready")
    dial(router)
    router.handle(inputs.CallerHangsUp(call_id="d1"), 9.0)
    out = router.handle(inputs.DialEnds(call_id="d1", end="answered"), 9.5)
    assert DisconnectCall("d1", "1001", "caller") in out
    assert router.agent("1001").state is AgentState.WRAP_UP


def test_the_agent_hanging_up_while_it_rings_cancels_the_dial() -> None:
    router = router_with("not_ready")
    dial(router)
    out = router.handle(inputs.AgentHangsUp(agent_id="1001", call_id="d1"), 12.0)
    assert DisconnectCall("d1", "1001", "agent") in out  # the line stops ringing
    cdr = record_of(out).cdr
    assert (cdr.outcome, cdr.disposition) == ("unanswered", "cancelled")
    assert state_of(router) == (AgentState.NOT_READY, "lunch")
    # The line's outcome of the dial it stopped comes after: nothing more happens.
    assert router.handle(inputs.DialEnds(call_id="d1", end="no_answer"), 12.5) == []


def test_no_call_control_while_it_rings_and_no_outcome_for_other_calls() -> None:
    router = router_with("ready")
    dial(router)
    with pytest.raises(RoutingError, match="still ringing"):
        router.handle(inputs.AgentHoldsCall(agent_id="1001", call_id="d1"), 6.0)
    with pytest.raises(RoutingError, match="still ringing"):
        router.handle(inputs.AgentTransfers(agent_id="1001", call_id="d1", queue="general"), 6.0)
    router.handle(inputs.DialEnds(call_id="d1", end="answered"), 7.0)
    with pytest.raises(RoutingError, match="not a dial that is ringing"):
        router.handle(inputs.DialEnds(call_id="d1", end="busy"), 8.0)
    with pytest.raises(RoutingError, match="not a dial that is ringing"):
        router.handle(inputs.DialEnds(call_id="nope", end="busy"), 8.0)


def test_a_call_waiting_is_offered_to_the_agent_back_from_an_unanswered_dial() -> None:
    """Back Ready, the agent takes the queue's next call at once; back Not Ready, it does not."""
    router = router_with("ready")
    dial(router)
    router.handle(inputs.CallArrives(call_id="c1", queue="general", caller=caller()), 6.0)
    assert router.call_phase("c1") is CallPhase.QUEUED  # the agent is on its dial
    out = router.handle(inputs.DialEnds(call_id="d1", end="no_answer"), 7.0)
    assert [o.call_id for o in of_type(out, OfferCall)] == ["c1"]


def test_asking_not_ready_during_a_dial_from_ready_ends_not_ready_after_the_call() -> None:
    router = router_with("ready")
    dial(router)
    router.handle(inputs.AgentGoesNotReady(agent_id="1001"), 6.0)
    out = router.handle(inputs.DialEnds(call_id="d1", end="busy"), 7.0)
    assert of_type(out, RecordCall)
    assert state_of(router) == (AgentState.NOT_READY, NOT_READY_AFTER_CALL)
