"""Logging out with a call in hand (issue 21): the router hands the call back or hangs
it up by the queue's ``on_agent_logout``, and the agent is logged out."""

from __future__ import annotations

from cti.models import AgentState, QueueConfig
from queue_engine import inputs as ri
from queue_engine.actions import (
    Action,
    DisconnectCall,
    OfferCall,
    RecordCall,
    RecordLeg,
    WithdrawOffer,
)
from queue_engine.router import CallPhase, Router
from tests.queue_engine.test_router import caller, of_type, only_record, ready, talking

#: The note a logout with a call leaves on the record (queue_engine.agent_desk).
LOGGED_OUT_NOTE = "agent logged out"
SALES = QueueConfig(name="sales", offer_timeout_s=15.0, wrap_up_s=30.0)


def logout(router: Router, agent_id: str, now: float) -> list[Action]:
    return router.handle(ri.AgentLogsOut(agent_id=agent_id), now)


def test_a_talking_caller_is_handed_back_to_the_queue_and_the_agent_logged_out() -> None:
    router = Router([SALES])
    talking(router, "a1", "c1", 0.0)
    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(10, 2)), 1.0)

    out = logout(router, "a1", 5.0)

    assert router.agent("a1").state is AgentState.LOGGED_OUT
    assert of_type(out, DisconnectCall) == [DisconnectCall("c1", "a1", "transfer")]
    assert router.call_phase("c1") is CallPhase.QUEUED
    # it kept its age: first in line again, before the caller who came later
    assert router.waiting_in_order("sales") == ["c1", "c2"]
    [leg] = of_type(out, RecordLeg)
    assert (leg.call_id, leg.agent_id, leg.note) == ("c1", "a1", LOGGED_OUT_NOTE)

    ready(router, "a2", 6.0)
    assert router.agent("a2").call_id == "c1"


def test_hang_up_rule_ends_the_call_with_a_record() -> None:
    router = Router([SALES.model_copy(update={"on_agent_logout": "hang_up"})])
    talking(router, "a1", "c1", 0.0)

    out = logout(router, "a1", 5.0)

    assert router.agent("a1").state is AgentState.LOGGED_OUT
    assert of_type(out, DisconnectCall) == [DisconnectCall("c1", "a1", "agent")]
    record = only_record(out).cdr
    assert (record.outcome, record.disposition, record.note) == ("answered", "", LOGGED_OUT_NOTE)
    assert "c1" not in router.active_call_ids()


def test_an_offer_goes_back_to_its_place() -> None:
    router = Router([SALES])
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 0.0)
    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(50, 2)), 1.0)
    ready(router, "a1", 2.0)
    assert router.agent("a1").state is AgentState.RESERVED

    out = logout(router, "a1", 3.0)

    assert of_type(out, WithdrawOffer)[0].call_id == "c1"
    assert router.agent("a1").state is AgentState.LOGGED_OUT
    assert router.waiting_in_order("sales") == ["c1", "c2"]


def test_wrap_up_ends_without_a_disposition() -> None:
    router = Router([SALES])
    talking(router, "a1", "c1", 0.0)
    router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 5.0)

    out = logout(router, "a1", 6.0)

    record = only_record(out).cdr
    assert (record.disposition, record.note, record.wrap_up_s) == ("", LOGGED_OUT_NOTE, 1.0)
    assert router.agent("a1").state is AgentState.LOGGED_OUT
    assert router.next_deadline() is None  # no wrap-up timer left behind


def test_a_manual_dial_is_hung_up_whatever_the_rule() -> None:
    router = Router([SALES])
    ready(router, "a1", 0.0)
    router.handle(
        ri.AgentDials(agent_id="a1", call_id="m1", number="+15550000009", caller=caller(0, 9)), 1.0
    )

    out = logout(router, "a1", 2.0)

    assert of_type(out, DisconnectCall) == [DisconnectCall("m1", "a1", "agent")]
    assert of_type(out, RecordCall)[0].cdr.kind == "manual"
    assert router.agent("a1").state is AgentState.LOGGED_OUT


def test_a_consultation_answered_takes_the_caller() -> None:
    router = Router([SALES])
    talking(router, "a1", "c1", 0.0)
    ready(router, "a2", 1.0)
    router.handle(ri.AgentConsults(agent_id="a1", call_id="c1", to_agent="a2"), 2.0)
    router.handle(ri.AgentAccepts(agent_id="a2", call_id="c1"), 3.0)

    logout(router, "a1", 4.0)

    assert router.agent("a1").state is AgentState.LOGGED_OUT
    assert router.agent("a2").state is AgentState.TALKING
    assert router.call_phase("c1") is CallPhase.TALKING


def test_the_agent_consulted_logging_out_leaves_the_caller_with_its_agent() -> None:
    router = Router([SALES])
    talking(router, "a1", "c1", 0.0)
    ready(router, "a2", 1.0)
    router.handle(ri.AgentConsults(agent_id="a1", call_id="c1", to_agent="a2"), 2.0)
    router.handle(ri.AgentAccepts(agent_id="a2", call_id="c1"), 3.0)

    logout(router, "a2", 4.0)

    assert router.agent("a2").state is AgentState.LOGGED_OUT
    assert router.agent("a1").state is AgentState.TALKING
    assert router.agent("a1").call_id == "c1"


def test_a_consultation_still_ringing_ends_and_the_caller_goes_back() -> None:
    router = Router([SALES])
    talking(router, "a1", "c1", 0.0)
    ready(router, "a2", 1.0)
    router.handle(ri.AgentConsults(agent_id="a1", call_id="c1", to_agent="a2"), 2.0)

    out = logout(router, "a1", 3.0)

    assert router.agent("a1").state is AgentState.LOGGED_OUT
    # a2 was freed by the cancelled consultation, then offered the caller handed back
    assert of_type(out, OfferCall) == [OfferCall("c1", "a2", "sales", 3.0 + 15.0)]
    assert router.agent("a2").state is AgentState.RESERVED
