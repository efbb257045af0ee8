"""Transfers, consultations and manual dial in the router (sans-I/O, virtual time).

One record per call: a transferred call is answered once (by its first agent, for the
service level), its record names the agent who finished it, and its note carries the
trail (who transferred it where, and the dispositions of the agents who handed it on).
Each agent who hands a call on wraps up its part and leaves a :class:`RecordLeg`.
"""

from __future__ import annotations

from typing import TypeVar, get_args

import pytest

from cti.errors import RoutingError
from cti.models import AgentConfig, AgentState, CallerInfo, CallerKind, Customer, QueueConfig
from queue_engine import inputs
from queue_engine.actions import (
    Action,
    ConnectCall,
    ConsultChanged,
    DisconnectCall,
    JoinCall,
    MoveCall,
    OfferCall,
    RecordCall,
    RecordLeg,
    WithdrawOffer,
)
from queue_engine.router import CallPhase, Router
from queue_engine.timers import WRAP_UP_TIMED_OUT

A = TypeVar("A")

GENERAL = QueueConfig(name="general", wrap_up_s=30.0, wrap_up_max_s=60.0, offer_timeout_s=10.0)
BILLING = QueueConfig(name="billing", priority=5.0, wrap_up_s=20.0)
TRANSFER_INPUTS = {
    inputs.AgentTransfers,
    inputs.AgentConsults,
    inputs.AgentCompletesConsult,
    inputs.AgentCancelsConsult,
    inputs.AgentConferences,
    inputs.AgentDials,
    inputs.DialEnds,
}


def caller(value: float = 60.0, n: int = 1) -> CallerInfo:
    customer = Customer(id=n, name=f"客户 {n}", value=value)
    number = f"+86138000{n:05d}"
    return CallerInfo(ani=number, e164=number, kind=CallerKind.KNOWN, customer=customer)


def of_type(actions: list[Action], kind: type[A]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


def make_router(*ready: str, idle: tuple[str, ...] = ()) -> Router:
    """Agents serving both queues; ``ready`` go Ready at 0 in that order, ``idle`` only log in."""
    agents = [AgentConfig(id=a, queues={"general": 0.0, "billing": 0.0}) for a in (*ready, *idle)]
    router = Router([GENERAL, BILLING], agents=agents)
    for a in (*ready, *idle):
        router.handle(inputs.AgentLogsIn(agent_id=a), 0.0)
    for a in ready:
        router.handle(inputs.AgentGoesReady(agent_id=a), 0.0)
    return router


def talking(router: Router, agent: str, call_id: str = "c1", at: float = 10.0) -> None:
    """A call arrives at ``at`` and ``agent`` (the only Ready one) takes it 2 s later."""
    router.handle(inputs.CallArrives(call_id=call_id, queue="general", caller=caller()), at)
    assert router.agent(agent).state is AgentState.RESERVED
    router.handle(inputs.AgentAccepts(agent_id=agent, call_id=call_id), at + 2)


def record_of(actions: list[Action]) -> RecordCall:
    [record] = of_type(actions, RecordCall)
    return record


# --- blind transfer to a queue ---------------------------------------------------------


def test_blind_transfer_to_a_queue_keeps_age_and_value_and_one_record() -> None:
    router = make_router("1001", idle=("1002",))
    talking(router, "1001")
    out = router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1", queue="billing"), 40.0)
    assert DisconnectCall("c1", "1001", "transfer") in out
    assert MoveCall("c1", "general", "billing", "transfer") in out
    me = router.agent("1001")
    assert (me.state, me.call_id, me.deadline) == (AgentState.WRAP_UP, "c1", 70.0)
    assert router.call_phase("c1") is CallPhase.QUEUED
    assert router.call_queue("c1") == "billing"
    assert router.call_arrived_at("c1") == 10.0  # its age goes with it
    [estimate] = router.estimated_waits("billing", 41.0)
    assert estimate.call_id == "c1"

    # The first agent's wrap-up: its disposition goes in the call's trail.
    out = router.handle(
        inputs.AgentFinishesWrapUp(
            agent_id="1001", call_id="c1", disposition="follow-up", note="账单问题"
        ),
        50.0,
    )
    assert of_type(out, RecordCall) == []
    assert RecordLeg("c1", "1001", "general", 1, "follow-up", "账单问题") in out
    [offer] = of_type(out, OfferCall)  # 1001 is free again: the call comes back to it
    assert offer.agent_id == "1001"

    out = router.handle(inputs.AgentAccepts(agent_id="1001", call_id="c1"), 55.0)
    assert ConnectCall("c1", "1001", None, answered=True) in out  # bridged, not answered
    router.handle(inputs.AgentHangsUp(agent_id="1001", call_id="c1"), 100.0)
    cdr = record_of(
        router.handle(
            inputs.AgentFinishesWrapUp(agent_id="1001", call_id="c1", disposition="resolved"), 101.0
        )
    ).cdr
    assert (cdr.outcome, cdr.queue, cdr.agent_id, cdr.disposition) == (
        "answered",
        "billing",
        "1001",
        "resolved",
    )
    assert cdr.answered_at == 12.0  # the first answer: the service level is judged by it
    assert cdr.arrived_at == 10.0
    assert cdr.offers == 2
    assert cdr.note == "transferred by 1001 to queue billing · 1001: follow-up 账单问题"


def test_a_caller_who_hangs_up_after_a_transfer_was_still_answered() -> None:
    router = make_router("1001")
    talking(router, "1001")
    router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1", queue="billing"), 40.0)
    cdr = record_of(router.handle(inputs.CallerHangsUp(call_id="c1"), 45.0)).cdr
    assert (cdr.outcome, cdr.agent_id) == ("answered", "1001")
    assert cdr.note == "transferred by 1001 to queue billing · then abandoned (caller hung up)"
    # The agent still wraps up its part; the call is over, its leg is kept.
    out = router.handle(
        inputs.AgentFinishesWrapUp(agent_id="1001", call_id="c1", disposition="follow-up"), 50.0
    )
    assert RecordLeg("c1", "1001", "general", 1, "follow-up", "") in out
    assert router.agent("1001").state is AgentState.READY


def test_extend_wrap_up_of_a_transferred_call_uses_its_queue_cap_even_once_it_ended() -> None:
    router = make_router("1001")
    talking(router, "1001")
    router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1", queue="billing"), 40.0)
    router.handle(inputs.CallerHangsUp(call_id="c1"), 41.0)
    router.handle(inputs.AgentExtendsWrapUp(agent_id="1001", call_id="c1", seconds=100.0), 42.0)
    assert router.agent("1001").deadline == 100.0  # general's cap: 60 s from 40
    with pytest.raises(RoutingError, match="cap of 60"):
        router.handle(inputs.AgentExtendsWrapUp(agent_id="1001", call_id="c1", seconds=5.0), 43.0)
    out = router.handle(inputs.TimePasses(), 100.0)  # the wrap-up timer ends the leg like a wrap-up
    assert RecordLeg("c1", "1001", "general", 1, WRAP_UP_TIMED_OUT, "") in out


def test_an_old_transferred_call_does_not_take_the_max_wait_exit() -> None:
    strict = QueueConfig.model_validate(
        {"name": "billing", "exits": {"max_wait": {"after_s": 30.0, "action": "voicemail"}}}
    )
    router = Router([GENERAL, strict], agents=[AgentConfig(id="1001", queues={"general": 0.0})])
    router.handle(inputs.AgentLogsIn(agent_id="1001"), 0.0)
    router.handle(inputs.AgentGoesReady(agent_id="1001"), 0.0)
    talking(router, "1001")
    router.handle(
        inputs.AgentTransfers(agent_id="1001", call_id="c1", queue="billing"), 300.0
    )  # waited far past 30 s
    out = router.handle(inputs.TimePasses(), 400.0)  # only the agent's wrap-up ends
    assert of_type(out, RecordCall) == []
    assert len(of_type(out, RecordLeg)) == 1
    assert router.call_phase("c1") is CallPhase.QUEUED


# --- blind transfer to an agent --------------------------------------------------------


def test_blind_transfer_to_a_ready_agent_offers_it_that_agent_only() -> None:
    router = make_router("1001", "1002", "1003")
    talking(router, "1001")  # 1001 was Ready longest
    out = router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1", to_agent="1003"), 20.0)
    assert [(o.call_id, o.agent_id) for o in of_type(out, OfferCall)] == [("c1", "1003")]
    assert router.agent("1003").state is AgentState.RESERVED
    router.handle(inputs.AgentAccepts(agent_id="1003", call_id="c1"), 21.0)
    router.handle(inputs.AgentHangsUp(agent_id="1003", call_id="c1"), 30.0)
    cdr = record_of(
        router.handle(
            inputs.AgentFinishesWrapUp(agent_id="1003", call_id="c1", disposition="sale"), 31.0
        )
    ).cdr
    assert (cdr.agent_id, cdr.answered_at) == ("1003", 12.0)
    assert cdr.note.startswith("transferred by 1001 to agent 1003")


def test_transfer_to_an_agent_who_lets_it_ring_goes_back_to_the_queue() -> None:
    router = make_router("1001", "1002")
    talking(router, "1001")
    router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1", to_agent="1002"), 20.0)
    out = router.handle(inputs.TimePasses(), 30.0)  # 1002's offer lapses
    assert WithdrawOffer("c1", "1002", "timeout") in out
    assert router.call_phase("c1") is CallPhase.QUEUED
    assert router.call_queue("c1") == "general"


def test_transfers_the_router_refuses_change_nothing() -> None:
    router = make_router("1001", idle=("1002",))
    talking(router, "1001")
    with pytest.raises(
        RoutingError, match=r"1002. is Not Ready \(logged in\): only a Ready agent can take a tr"
    ):
        router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1", to_agent="1002"), 20.0)
    with pytest.raises(RoutingError, match="to itself"):
        router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1", to_agent="1001"), 20.0)
    with pytest.raises(RoutingError, match="no queue named 'nope'"):
        router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1", queue="nope"), 20.0)
    with pytest.raises(RoutingError, match="name a queue or an agent"):
        router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1"), 20.0)
    with pytest.raises(RoutingError, match="not talking on call 'c9'"):
        router.handle(inputs.AgentTransfers(agent_id="1002", call_id="c9", queue="billing"), 20.0)
    assert router.agent("1001").state is AgentState.TALKING
    assert router.call_phase("c1") is CallPhase.TALKING


def test_a_refused_transfer_or_consult_names_the_agents_real_state_and_reason() -> None:
    router = make_router("1001", "1003", idle=("1002", "1004"))
    router.handle(inputs.AgentGoesNotReady(agent_id="1002", reason="lunch"), 1.0)
    router.handle(inputs.AgentLogsOut(agent_id="1004"), 1.0)
    talking(router, "1001")
    talking(router, "1003", call_id="c2", at=12.0)
    transfer = "only a Ready agent can take a transfer; transfer to a queue instead"
    consult = "only a Ready agent can be consulted"
    cases = [
        ("1002", "is Not Ready (lunch)"),
        ("1003", "is talking on a call"),
        ("1004", "is logged out"),
    ]
    for to, state in cases:
        with pytest.raises(RoutingError) as refused:
            router.handle(inputs.AgentTransfers(agent_id="1001", call_id="c1", to_agent=to), 20.0)
        assert str(refused.value) == f"agent {to!r} {state}: {transfer}"
        with pytest.raises(RoutingError) as refused:
            router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent=to), 20.0)
        assert str(refused.value) == f"agent {to!r} {state}: {consult}"
    with pytest.raises(RoutingError, match="cannot consult itself"):
        router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1001"), 20.0)
    assert router.call_phase("c1") is CallPhase.TALKING


# --- consult transfer ------------------------------------------------------------------


def test_consult_then_complete_hands_the_caller_over() -> None:
    router = make_router("1001", "1002")
    talking(router, "1001")
    out = router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002"), 20.0)
    assert OfferCall("c1", "1002", "general", 30.0, consult_from="1001") in out
    assert ConsultChanged("c1", "1001", "1002", "ringing") in out
    with pytest.raises(RoutingError, match="no agent consulted has answered"):
        router.handle(inputs.AgentCompletesConsult(agent_id="1001", call_id="c1"), 21.0)
    out = router.handle(inputs.AgentAccepts(agent_id="1002", call_id="c1"), 22.0)
    assert out[0] == JoinCall("c1", "1002")
    assert of_type(out, ConnectCall) == []  # nothing to answer: the caller is connected
    assert ConsultChanged("c1", "1001", "1002", "talking") in out
    assert router.agent("1002").state is AgentState.TALKING

    out = router.handle(inputs.AgentCompletesConsult(agent_id="1001", call_id="c1"), 30.0)
    assert DisconnectCall("c1", "1001", "transfer") in out
    assert router.agent("1001").state is AgentState.WRAP_UP
    assert router.call_agent("c1") == "1002"
    router.handle(
        inputs.AgentFinishesWrapUp(agent_id="1001", call_id="c1", disposition="follow-up"), 31.0
    )
    router.handle(inputs.AgentHangsUp(agent_id="1002", call_id="c1"), 60.0)
    cdr = record_of(
        router.handle(
            inputs.AgentFinishesWrapUp(agent_id="1002", call_id="c1", disposition="resolved"), 61.0
        )
    ).cdr
    assert (cdr.agent_id, cdr.disposition, cdr.answered_at) == ("1002", "resolved", 12.0)
    assert cdr.note == "transferred by 1001 to agent 1002 (consulted) · 1001: follow-up"


def test_cancelled_consult_frees_the_agent_consulted_and_keeps_the_call() -> None:
    router = make_router("1001", "1002")
    talking(router, "1001")
    router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002"), 20.0)
    router.handle(inputs.AgentAccepts(agent_id="1002", call_id="c1"), 21.0)
    out = router.handle(inputs.AgentCancelsConsult(agent_id="1001", call_id="c1"), 25.0)
    assert WithdrawOffer("c1", "1002", "cancelled") in out
    assert ConsultChanged("c1", "1001", "1002", "", "consultation ended") in out
    assert router.agent("1002").state is AgentState.READY
    assert (router.agent("1001").state, router.call_agent("c1")) == (AgentState.TALKING, "1001")
    with pytest.raises(RoutingError, match="no consultation under way"):
        router.handle(inputs.AgentCancelsConsult(agent_id="1001", call_id="c1"), 26.0)


def test_a_consult_nobody_answers_or_declined_ends_and_says_why() -> None:
    router = make_router("1001", "1002")
    talking(router, "1001")
    router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002"), 20.0)
    out = router.handle(inputs.TimePasses(), 30.0)
    assert ConsultChanged("c1", "1001", "1002", "", "1002 did not answer the consultation") in out
    assert router.agent("1002").state is AgentState.READY  # no missed-offer penalty
    router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002"), 31.0)
    out = router.handle(inputs.AgentRejects(agent_id="1002", call_id="c1"), 32.0)
    assert ConsultChanged("c1", "1001", "1002", "", "1002 declined the consultation") in out
    assert router.agent("1002").state is AgentState.READY
    assert router.call_phase("c1") is CallPhase.TALKING


def test_conference_then_the_first_agent_leaves_and_the_caller_stays() -> None:
    router = make_router("1001", "1002")
    talking(router, "1001")
    router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002"), 20.0)
    with pytest.raises(RoutingError, match="no agent consulted is talking"):
        router.handle(inputs.AgentConferences(agent_id="1001", call_id="c1"), 20.5)
    router.handle(inputs.AgentAccepts(agent_id="1002", call_id="c1"), 21.0)
    out = router.handle(inputs.AgentConferences(agent_id="1001", call_id="c1"), 22.0)
    assert ConsultChanged("c1", "1002", "1001", "conference") in out
    out = router.handle(
        inputs.AgentHangsUp(agent_id="1001", call_id="c1"), 40.0
    )  # in a conference: a hand-over
    assert DisconnectCall("c1", "1001", "transfer") in out
    assert router.call_agent("c1") == "1002"
    assert router.agent("1002").state is AgentState.TALKING


def test_the_caller_hanging_up_during_a_consult_frees_both_agents_properly() -> None:
    router = make_router("1001", "1002")
    talking(router, "1001")
    router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002"), 20.0)
    router.handle(inputs.AgentAccepts(agent_id="1002", call_id="c1"), 21.0)
    out = router.handle(inputs.CallerHangsUp(call_id="c1"), 25.0)
    assert WithdrawOffer("c1", "1002", "caller_hung_up") in out
    assert router.agent("1002").state is AgentState.READY
    assert router.agent("1001").state is AgentState.WRAP_UP


# --- manual dial -----------------------------------------------------------------------


def test_manual_dial_talks_at_once_and_is_recorded_as_manual() -> None:
    router = make_router(idle=("1001",))
    out = router.handle(
        inputs.AgentDials(agent_id="1001", call_id="d1", number="+8613800000001", caller=caller()),
        5.0,
    )
    assert of_type(out, ConnectCall) == []  # the line placed it already
    assert (router.agent("1001").state, router.call_agent("d1")) == (AgentState.TALKING, "1001")
    router.handle(inputs.AgentHangsUp(agent_id="1001", call_id="d1"), 65.0)
    cdr = record_of(
        router.handle(
            inputs.AgentFinishesWrapUp(agent_id="1001", call_id="d1", disposition="sale"), 70.0
        )
    ).cdr
    assert (cdr.kind, cdr.queue, cdr.outcome, cdr.agent_id) == (
        "manual",
        "general",
        "answered",
        "1001",
    )
    assert cdr.talk_s == 60.0
    router.handle(inputs.AgentGoesReady(agent_id="1001"), 71.0)
    router.handle(inputs.CallArrives(call_id="c2", queue="general", caller=caller()), 80.0)
    router.handle(inputs.AgentAccepts(agent_id="1001", call_id="c2"), 81.0)
    with pytest.raises(RoutingError, match="talking: dial when Ready or Not Ready"):
        router.handle(
            inputs.AgentDials(
                agent_id="1001", call_id="d2", number="+8613800000001", caller=caller()
            ),
            82.0,
        )


# --- hold and mute ------------------------------------------------------------------------


def test_hold_and_mute_are_router_state_of_the_talking_agent() -> None:
    router = make_router("1001", "1002")
    talking(router, "1001")
    assert (router.call_held("c1"), router.agent("1001").muted) == (False, False)
    assert router.handle(inputs.AgentHoldsCall(agent_id="1001", call_id="c1"), 13.0) == []
    router.handle(inputs.AgentMutes(agent_id="1001", call_id="c1", muted=True), 14.0)
    assert (router.call_held("c1"), router.agent("1001").muted) == (True, True)
    router.handle(inputs.AgentResumesCall(agent_id="1001", call_id="c1"), 15.0)
    router.handle(inputs.AgentMutes(agent_id="1001", call_id="c1", muted=False), 16.0)
    assert (router.call_held("c1"), router.agent("1001").muted) == (False, False)
    router.handle(inputs.AgentMutes(agent_id="1001", call_id="c1"), 17.0)
    router.handle(inputs.AgentHangsUp(agent_id="1001", call_id="c1"), 18.0)
    assert router.agent("1001").muted is False  # a mute lasts while the agent talks


def test_hold_and_mute_need_the_agent_talking_on_the_call() -> None:
    router = make_router("1001", "1002")
    talking(router, "1001")
    for event in (
        inputs.AgentHoldsCall(agent_id="1002", call_id="c1"),
        inputs.AgentResumesCall(agent_id="1001", call_id="c9"),
        inputs.AgentMutes(agent_id="1002", call_id="c1"),
    ):
        with pytest.raises(RoutingError, match="is not talking on call"):
            router.handle(event, 13.0)
    assert (router.call_held("c1"), router.agent("1002").muted) == (False, False)


def test_a_consultation_holds_the_caller_until_it_ends() -> None:
    router = make_router("1001", "1002")
    talking(router, "1001")
    router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002"), 20.0)
    assert router.call_held("c1") is True
    with pytest.raises(RoutingError, match="end the consultation to take it off hold"):
        router.handle(inputs.AgentResumesCall(agent_id="1001", call_id="c1"), 21.0)
    router.handle(inputs.AgentAccepts(agent_id="1002", call_id="c1"), 21.0)
    router.handle(inputs.AgentConferences(agent_id="1001", call_id="c1"), 22.0)
    assert router.call_held("c1") is False  # the caller joins the conversation
    router.handle(inputs.AgentCancelsConsult(agent_id="1001", call_id="c1"), 23.0)
    router.handle(inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002"), 24.0)
    router.handle(inputs.AgentCancelsConsult(agent_id="1001", call_id="c1"), 25.0)
    assert router.call_held("c1") is False


# --- as data -----------------------------------------------------------------------------


def test_every_transfer_input_round_trips_through_json_and_handle() -> None:
    router = make_router("1001", "1002", idle=("1003", "1004"))
    talking(router, "1001")
    steps: list[tuple[float, inputs.AnyInput]] = [
        (20.0, inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002")),
        (21.0, inputs.AgentAccepts(agent_id="1002", call_id="c1")),
        (22.0, inputs.AgentConferences(agent_id="1001", call_id="c1")),
        (23.0, inputs.AgentCancelsConsult(agent_id="1001", call_id="c1")),
        (24.0, inputs.AgentConsults(agent_id="1001", call_id="c1", to_agent="1002")),
        (25.0, inputs.AgentAccepts(agent_id="1002", call_id="c1")),
        (26.0, inputs.AgentCompletesConsult(agent_id="1001", call_id="c1")),
        (27.0, inputs.AgentTransfers(agent_id="1002", call_id="c1", queue="billing")),
        (28.0, inputs.AgentDials(agent_id="1003", call_id="d1", number="+1", caller=caller())),
        (
            29.0,
            inputs.AgentDials(
                agent_id="1004", call_id="d2", number="+1", caller=caller(), ringing=True
            ),
        ),
        (30.0, inputs.DialEnds(call_id="d2", end="busy")),
    ]
    assert {type(event) for _, event in steps} >= TRANSFER_INPUTS
    assert set(get_args(inputs.AnyInput)) >= TRANSFER_INPUTS
    for now, event in steps:
        again = inputs.INPUT.validate_json(event.model_dump_json())
        assert again == event
        router.handle(again, now)
    assert router.call_queue("c1") == "billing"
    assert [router.agent(a).state for a in ("1001", "1002", "1003", "1004")] == [
        AgentState.WRAP_UP,
        AgentState.WRAP_UP,
        AgentState.TALKING,
        AgentState.NOT_READY,
    ]
