"""Example-based tests of every router transition (sans-I/O: ``now`` is a parameter)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from cti.errors import RoutingError
from cti.models import AgentConfig, AgentState, CallerInfo, CallerKind, Customer, QueueConfig
from queue_engine import inputs as ri
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    DisconnectCall,
    OfferCall,
    RecordCall,
    WithdrawOffer,
)
from queue_engine.router import (
    MISSED_OFFER,
    NOT_READY_AFTER_CALL,
    REJECTED_OFFER,
    CallPhase,
    Router,
)
from queue_engine.timers import WRAP_UP_TIMED_OUT

SALES = QueueConfig(name="sales", offer_timeout_s=15.0, wrap_up_s=30.0)

A = TypeVar("A")


def caller(value: float, n: int = 1) -> CallerInfo:
    customer = Customer(id=n, name=f"Customer {n}", value=value)
    return CallerInfo(ani=f"+4420700{n:05d}", kind=CallerKind.KNOWN, customer=customer)


def of_type(actions: list[Action], kind: type[A]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


def only_record(actions: list[Action]) -> RecordCall:
    records = of_type(actions, RecordCall)
    assert len(records) == 1, actions
    return records[0]


def make_router(*queues: QueueConfig, max_missed_offers: int = 1) -> Router:
    return Router(queues or (SALES,), max_missed_offers=max_missed_offers)


def ready(router: Router, agent_id: str, now: float, queues: tuple[str, ...] = ("sales",)) -> None:
    if not router.has_agent(agent_id):
        router.handle(
            ri.AgentConfigured(agent=AgentConfig(id=agent_id, queues=dict.fromkeys(queues, 0.0))),
            0.0,
        )
    router.handle(ri.AgentLogsIn(agent_id=agent_id), now)
    router.handle(ri.AgentGoesReady(agent_id=agent_id), now)


def talking(router: Router, agent_id: str, call_id: str, now: float, value: float = 50) -> None:
    """``agent_id`` (new, Ready at ``now``) talks on a new call ``call_id``."""
    ready(router, agent_id, now)
    router.handle(ri.CallArrives(call_id=call_id, queue="sales", caller=caller(value)), now)
    router.handle(ri.AgentAccepts(agent_id=agent_id, call_id=call_id), now)


def fingerprint(router: Router, now: float) -> Any:
    """Everything observable about the router, to show that a refused request changed nothing."""
    return (
        [router.agent(a) for a in router.agent_ids()],
        sorted((c, router.call_phase(c)) for c in router.active_call_ids()),
        [router.snapshot(q, now) for q in router.queue_names],
        [router.waiting_in_order(q) for q in router.queue_names],
        router.next_deadline(),
    )


# --- agent states ---------------------------------------------------------------------


def test_login_goes_not_ready_and_a_repeat_changes_nothing() -> None:
    router = make_router()
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a1", queues={"sales": 0.0})), 0.0)
    assert router.agent("a1").state is AgentState.LOGGED_OUT

    assert router.handle(ri.AgentLogsIn(agent_id="a1"), 5.0) == [
        AgentStateSet("a1", AgentState.NOT_READY, "logged in")
    ]
    snap = router.agent("a1")
    assert (snap.state, snap.since) == (AgentState.NOT_READY, 5.0)
    assert router.handle(ri.AgentLogsIn(agent_id="a1"), 6.0) == []
    assert router.agent("a1").since == 5.0


def test_ready_with_no_calls_waits_in_rotation() -> None:
    router = make_router()
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a1", queues={"sales": 0.0})), 0.0)
    router.handle(ri.AgentLogsIn(agent_id="a1"), 0.0)

    assert router.handle(ri.AgentGoesReady(agent_id="a1"), 1.0) == [
        AgentStateSet("a1", AgentState.READY)
    ]
    assert router.agent("a1").state is AgentState.READY
    assert router.handle(ri.AgentGoesReady(agent_id="a1"), 2.0) == []  # already Ready
    assert router.snapshot("sales", 2.0).agents_ready == 1


def test_not_ready_leaves_rotation_so_calls_wait() -> None:
    router = make_router()
    ready(router, "a1", 0.0)

    out = router.handle(ri.AgentGoesNotReady(agent_id="a1", reason="lunch"), 1.0)
    assert out == [AgentStateSet("a1", AgentState.NOT_READY, "lunch")]
    assert router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 2.0) == []
    assert router.call_phase("c1") is CallPhase.QUEUED
    assert router.agent("a1").state is AgentState.NOT_READY


def test_logout_from_ready_and_not_ready() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a2", queues={"sales": 0.0})), 0.0)
    router.handle(ri.AgentLogsIn(agent_id="a2"), 0.0)

    assert router.handle(ri.AgentLogsOut(agent_id="a1"), 1.0) == [
        AgentStateSet("a1", AgentState.LOGGED_OUT)
    ]
    assert router.handle(ri.AgentLogsOut(agent_id="a2"), 1.0) == [
        AgentStateSet("a2", AgentState.LOGGED_OUT)
    ]
    assert router.handle(ri.AgentLogsOut(agent_id="a1"), 2.0) == []  # already out
    assert (
        router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 3.0) == []
    )  # nobody left to take it
    assert router.snapshot("sales", 3.0).agents_logged_in == 0


def test_ready_again_after_logging_back_in() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.AgentLogsOut(agent_id="a1"), 1.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 2.0)

    router.handle(ri.AgentLogsIn(agent_id="a1"), 3.0)
    out = router.handle(ri.AgentGoesReady(agent_id="a1"), 4.0)
    assert of_type(out, OfferCall) == [OfferCall("c1", "a1", "sales", 4.0 + 15.0)]


# --- offering -------------------------------------------------------------------------


def test_call_is_offered_at_once_when_an_agent_is_ready() -> None:
    router = make_router()
    ready(router, "a1", 0.0)

    out = router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 10.0)

    assert out == [
        AgentStateSet("a1", AgentState.RESERVED, "", "c1", 25.0),
        OfferCall("c1", "a1", "sales", 25.0),
    ]
    assert router.call_phase("c1") is CallPhase.OFFERED
    assert router.agent("a1").call_id == "c1"
    assert router.snapshot("sales", 10.0).waiting == 0


def test_call_waits_when_no_agent_is_ready_then_goes_to_the_first_ready() -> None:
    router = make_router()
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a1", queues={"sales": 0.0})), 0.0)
    router.handle(ri.AgentLogsIn(agent_id="a1"), 0.0)

    assert router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 1.0) == []
    assert router.call_phase("c1") is CallPhase.QUEUED
    assert router.waiting_in_order("sales") == ["c1"]

    out = router.handle(ri.AgentGoesReady(agent_id="a1"), 4.0)
    assert out == [
        AgentStateSet("a1", AgentState.RESERVED, "", "c1", 19.0),
        OfferCall("c1", "a1", "sales", 19.0),
    ]
    assert router.waiting_in_order("sales") == []
    assert router.snapshot("sales", 4.0).waiting == 0


def test_longest_idle_agent_gets_the_call() -> None:
    router = make_router()
    ready(router, "a3", 2.0)
    ready(router, "a1", 0.0)  # registered later, but Ready the longest
    ready(router, "a2", 1.0)

    first = router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(10)), 5.0)
    second = router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(90)), 5.0)
    third = router.handle(ri.CallArrives(call_id="c3", queue="sales", caller=caller(50)), 5.0)

    assert [o.agent_id for o in of_type(first + second + third, OfferCall)] == ["a1", "a2", "a3"]


def test_going_not_ready_and_back_loses_the_place_in_line() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    ready(router, "a2", 1.0)
    router.handle(ri.AgentGoesNotReady(agent_id="a1", reason="break"), 2.0)
    router.handle(ri.AgentGoesReady(agent_id="a1"), 3.0)

    out = router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 4.0)
    assert of_type(out, OfferCall)[0].agent_id == "a2"


def test_waiting_calls_are_served_by_rank_not_arrival() -> None:
    router = make_router()  # value_weight 1, aging 1
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a1", queues={"sales": 0.0})), 0.0)
    router.handle(ri.AgentLogsIn(agent_id="a1"), 0.0)
    router.handle(
        ri.CallArrives(call_id="low", queue="sales", caller=caller(0)), 0.0
    )  # rank at 20: 20
    router.handle(
        ri.CallArrives(call_id="high", queue="sales", caller=caller(90)), 10.0
    )  # rank at 20: 100
    router.handle(
        ri.CallArrives(call_id="mid", queue="sales", caller=caller(40)), 15.0
    )  # rank at 20: 45

    assert router.waiting_in_order("sales") == ["high", "mid", "low"]
    out = router.handle(ri.AgentGoesReady(agent_id="a1"), 20.0)
    assert of_type(out, OfferCall)[0].call_id == "high"


# --- conversation and wrap-up ---------------------------------------------------------


def test_accept_connects_and_the_agent_talks() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 1.0)

    out = router.handle(ri.AgentAccepts(agent_id="a1", call_id="c1"), 3.0)

    assert out == [ConnectCall("c1", "a1"), AgentStateSet("a1", AgentState.TALKING, "", "c1")]
    assert router.call_phase("c1") is CallPhase.TALKING
    assert router.agent("a1").deadline is None
    assert router.next_deadline() is None  # the offer deadline no longer counts


def test_agent_hang_up_disconnects_and_starts_wrap_up_with_the_queue_deadline() -> None:
    router = make_router()
    talking(router, "a1", "c1", 0.0)

    out = router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 100.0)

    assert out == [
        DisconnectCall("c1", "a1", "agent"),
        AgentStateSet("a1", AgentState.WRAP_UP, "", "c1", 100.0 + SALES.wrap_up_s),
    ]
    assert router.call_phase("c1") is CallPhase.WRAP_UP
    assert router.next_deadline() == 130.0
    assert router.snapshot("sales", 100.0).agents_busy == 1


def test_complete_wrap_up_records_the_call_then_the_agent_is_ready() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(70, n=7)), 1.0)
    router.handle(ri.AgentAccepts(agent_id="a1", call_id="c1"), 3.0)
    router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 60.0)

    out = router.handle(
        ri.AgentFinishesWrapUp(agent_id="a1", call_id="c1", disposition="sale"), 72.0
    )

    assert len(out) == 2
    record, state = out
    assert state == AgentStateSet("a1", AgentState.READY)
    assert isinstance(record, RecordCall)
    cdr = record.cdr
    assert (cdr.call_id, cdr.queue, cdr.agent_id) == ("c1", "sales", "a1")
    assert (cdr.outcome, cdr.disposition) == ("answered", "sale")
    assert (cdr.arrived_at, cdr.offered_at, cdr.answered_at, cdr.ended_at) == (1, 1, 3, 60)
    assert cdr.wrap_up_s == 12.0
    assert (cdr.customer_id, cdr.value, cdr.offers) == (7, 70.0, 1)
    assert router.active_call_ids() == []
    assert router.agent("a1").calls_handled == 1


def test_complete_wrap_up_offers_the_next_waiting_call_at_once() -> None:
    router = make_router()
    talking(router, "a1", "c1", 0.0)
    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(10)), 5.0)
    router.handle(ri.CallArrives(call_id="c3", queue="sales", caller=caller(80)), 6.0)
    router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 20.0)

    out = router.handle(
        ri.AgentFinishesWrapUp(agent_id="a1", call_id="c1", disposition="resolved"), 25.0
    )

    assert [type(a) for a in out] == [RecordCall, AgentStateSet, OfferCall]
    assert out[1] == AgentStateSet("a1", AgentState.RESERVED, "", "c3", 40.0)
    assert out[2] == OfferCall("c3", "a1", "sales", 40.0)
    assert router.waiting_in_order("sales") == ["c2"]


def test_wrap_up_times_out_via_advance() -> None:
    router = make_router()
    talking(router, "a1", "c1", 0.0)
    router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 10.0)
    assert router.next_deadline() == 40.0

    assert router.handle(ri.TimePasses(), 39.9) == []
    assert router.agent("a1").state is AgentState.WRAP_UP

    out = router.handle(ri.TimePasses(), 40.0)
    record = only_record(out)
    assert (record.cdr.outcome, record.cdr.disposition, record.cdr.wrap_up_s) == (
        "answered",
        WRAP_UP_TIMED_OUT,  # the time ran out: the record says so
        30.0,
    )
    assert out[-1] == AgentStateSet("a1", AgentState.READY)
    assert router.next_deadline() is None
    assert router.handle(ri.TimePasses(), 1000.0) == []


def test_wrap_up_completed_early_cancels_its_deadline() -> None:
    router = make_router()
    talking(router, "a1", "c1", 0.0)
    router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 10.0)
    router.handle(ri.AgentFinishesWrapUp(agent_id="a1", call_id="c1", disposition="done"), 12.0)

    assert router.next_deadline() is None
    assert router.handle(ri.TimePasses(), 40.0) == []
    assert router.agent("a1").state is AgentState.READY


# --- the caller hangs up --------------------------------------------------------------


def test_caller_hang_up_while_queued_is_abandoned() -> None:
    router = make_router()
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 0.0)
    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(50)), 1.0)
    assert router.snapshot("sales", 2.0).waiting == 2

    out = router.handle(ri.CallerHangsUp(call_id="c1"), 8.0)

    cdr = only_record(out).cdr
    assert out == [RecordCall(cdr)]
    assert (cdr.outcome, cdr.ended_at, cdr.offered_at, cdr.agent_id) == ("abandoned", 8, None, None)
    assert cdr.wait_s == 8.0
    assert router.snapshot("sales", 8.0).waiting == 1
    assert router.waiting_in_order("sales") == ["c2"]
    # the abandoned call is never offered
    ready(router, "a1", 9.0)
    assert router.agent("a1").call_id == "c2"


def test_caller_hang_up_while_offered_withdraws_the_offer_and_frees_the_agent() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 1.0)

    out = router.handle(ri.CallerHangsUp(call_id="c1"), 4.0)

    assert out[0] == WithdrawOffer("c1", "a1", "caller_hung_up")
    cdr = only_record(out).cdr
    assert (cdr.outcome, cdr.offered_at, cdr.answered_at, cdr.agent_id) == (
        "abandoned",
        1,
        None,
        None,
    )
    assert cdr.offers == 1
    assert out[-1] == AgentStateSet("a1", AgentState.READY)
    assert router.agent("a1").call_id is None
    assert router.next_deadline() is None  # the offer deadline is gone


def test_caller_hang_up_while_offered_lets_the_agent_take_the_next_call() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 1.0)
    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(50)), 2.0)

    out = router.handle(ri.CallerHangsUp(call_id="c1"), 4.0)

    assert of_type(out, OfferCall) == [OfferCall("c2", "a1", "sales", 19.0)]
    assert router.snapshot("sales", 4.0).waiting == 0


def test_caller_hang_up_while_talking_disconnects_and_starts_wrap_up() -> None:
    router = make_router()
    talking(router, "a1", "c1", 0.0)

    out = router.handle(ri.CallerHangsUp(call_id="c1"), 50.0)

    assert out == [
        DisconnectCall("c1", "a1", "caller"),
        AgentStateSet("a1", AgentState.WRAP_UP, "", "c1", 80.0),
    ]
    assert router.call_phase("c1") is CallPhase.WRAP_UP


def test_repeated_caller_hang_up_changes_nothing() -> None:
    router = make_router()
    talking(router, "a1", "c1", 0.0)
    router.handle(ri.CallerHangsUp(call_id="c1"), 50.0)
    before = fingerprint(router, 51.0)

    assert router.handle(ri.CallerHangsUp(call_id="c1"), 51.0) == []  # during wrap-up
    assert fingerprint(router, 51.0) == before

    router.handle(ri.AgentFinishesWrapUp(agent_id="a1", call_id="c1", disposition="ok"), 55.0)
    before = fingerprint(router, 56.0)
    assert router.handle(ri.CallerHangsUp(call_id="c1"), 56.0) == []  # after the call finished
    assert fingerprint(router, 56.0) == before


def test_repeated_hang_up_of_an_abandoned_call_returns_nothing() -> None:
    router = make_router()
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 0.0)
    router.handle(ri.CallerHangsUp(call_id="c1"), 1.0)

    assert router.handle(ri.CallerHangsUp(call_id="c1"), 2.0) == []


# --- missed and rejected offers -------------------------------------------------------


def test_offer_timeout_returns_the_call_to_its_old_place_and_agent_goes_not_ready() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(
        ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 0.0
    )  # offered to a1, lapses at 15
    router.handle(
        ri.CallArrives(call_id="c2", queue="sales", caller=caller(40)), 1.0
    )  # later and lower-ranked
    router.handle(
        ri.CallArrives(call_id="c3", queue="sales", caller=caller(0)), 2.0
    )  # later and lower-ranked
    router.handle(
        ri.CallArrives(call_id="c4", queue="sales", caller=caller(100)), 3.0
    )  # later but ranked higher than c1
    assert router.next_deadline() == 15.0

    assert router.handle(ri.TimePasses(), 14.0) == []
    out = router.handle(ri.TimePasses(), 15.0)

    assert out == [
        WithdrawOffer("c1", "a1", "timeout"),
        AgentStateSet("a1", AgentState.NOT_READY, MISSED_OFFER),
    ]
    assert router.call_phase("c1") is CallPhase.QUEUED
    assert router.waiting_in_order("sales") == ["c4", "c1", "c2", "c3"]
    assert router.snapshot("sales", 15.0).waiting == 4
    assert router.snapshot("sales", 15.0).longest_wait_s == 15.0

    router.handle(
        ri.CallArrives(call_id="c5", queue="sales", caller=caller(0)), 16.0
    )  # arrives after c1 went back
    assert router.waiting_in_order("sales") == ["c4", "c1", "c2", "c3", "c5"]
    ready(router, "a2", 17.0)
    ready(router, "a3", 17.0)
    assert [router.agent(a).call_id for a in ("a2", "a3")] == ["c4", "c1"]


def test_offer_timeout_hands_the_call_to_another_ready_agent() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 1.0)
    ready(router, "a2", 2.0)

    out = router.handle(ri.TimePasses(), 16.0)

    assert of_type(out, OfferCall) == [OfferCall("c1", "a2", "sales", 31.0)]
    assert router.agent("a1").state is AgentState.NOT_READY
    # a second offer counts, the first offer time stays
    router.handle(ri.AgentAccepts(agent_id="a2", call_id="c1"), 17.0)
    router.handle(ri.AgentHangsUp(agent_id="a2", call_id="c1"), 20.0)
    cdr = only_record(
        router.handle(ri.AgentFinishesWrapUp(agent_id="a2", call_id="c1", disposition="ok"), 21.0)
    ).cdr
    assert (cdr.offers, cdr.offered_at, cdr.agent_id) == (2, 1.0, "a2")


def test_with_three_allowed_misses_the_agent_stays_in_rotation_until_the_third() -> None:
    router = make_router(max_missed_offers=3)
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 0.0)

    first = router.handle(ri.TimePasses(), 15.0)
    assert first[0] == WithdrawOffer("c1", "a1", "timeout")
    assert of_type(first, OfferCall) == [OfferCall("c1", "a1", "sales", 30.0)]  # still in rotation
    second = router.handle(ri.TimePasses(), 30.0)
    assert of_type(second, OfferCall) == [OfferCall("c1", "a1", "sales", 45.0)]
    assert router.agent("a1").state is AgentState.RESERVED

    third = router.handle(ri.TimePasses(), 45.0)
    assert third == [
        WithdrawOffer("c1", "a1", "timeout"),
        AgentStateSet("a1", AgentState.NOT_READY, MISSED_OFFER),
    ]
    assert router.call_phase("c1") is CallPhase.QUEUED


def test_accepting_resets_the_missed_offer_count() -> None:
    router = make_router(max_missed_offers=2)
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 0.0)
    router.handle(ri.TimePasses(), 15.0)  # miss 1, re-offered
    router.handle(ri.AgentAccepts(agent_id="a1", call_id="c1"), 16.0)
    router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 20.0)
    router.handle(ri.AgentFinishesWrapUp(agent_id="a1", call_id="c1", disposition="ok"), 21.0)

    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(50)), 22.0)
    out = router.handle(ri.TimePasses(), 37.0)  # one miss since the accept: still in rotation

    assert of_type(out, OfferCall) == [OfferCall("c2", "a1", "sales", 52.0)]


def test_reject_goes_not_ready_and_the_call_goes_to_the_next_agent() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    ready(router, "a2", 1.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 2.0)

    out = router.handle(ri.AgentRejects(agent_id="a1", call_id="c1"), 3.0)

    assert out == [
        WithdrawOffer("c1", "a1", "rejected"),
        AgentStateSet("a1", AgentState.NOT_READY, REJECTED_OFFER),
        AgentStateSet("a2", AgentState.RESERVED, "", "c1", 18.0),
        OfferCall("c1", "a2", "sales", 18.0),
    ]


def test_reject_with_nobody_ready_queues_the_call_at_its_old_place() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(60)), 0.0)
    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(50)), 5.0)

    router.handle(ri.AgentRejects(agent_id="a1", call_id="c1"), 6.0)

    assert router.waiting_in_order("sales") == ["c1", "c2"]
    assert router.next_deadline() is None


def test_not_ready_while_offered_rejects_with_that_reason() -> None:
    router = make_router()
    ready(router, "a1", 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 0.0)

    out = router.handle(ri.AgentGoesNotReady(agent_id="a1", reason="meeting"), 2.0)

    assert out == [
        WithdrawOffer("c1", "a1", "rejected"),
        AgentStateSet("a1", AgentState.NOT_READY, "meeting"),
    ]
    assert router.call_phase("c1") is CallPhase.QUEUED


def test_not_ready_while_talking_takes_effect_after_the_call() -> None:
    router = make_router()
    talking(router, "a1", "c1", 0.0)
    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(50)), 1.0)

    assert router.handle(ri.AgentGoesNotReady(agent_id="a1", reason="break"), 2.0) == []
    assert router.agent("a1").state is AgentState.TALKING
    router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 10.0)
    out = router.handle(ri.AgentFinishesWrapUp(agent_id="a1", call_id="c1", disposition="ok"), 12.0)

    assert out[-1] == AgentStateSet("a1", AgentState.NOT_READY, NOT_READY_AFTER_CALL)
    assert of_type(out, OfferCall) == []
    assert router.call_phase("c2") is CallPhase.QUEUED
    # the next Ready is a normal one
    out = router.handle(ri.AgentGoesReady(agent_id="a1"), 13.0)
    assert of_type(out, OfferCall)[0].call_id == "c2"


def test_not_ready_during_wrap_up_holds_after_a_wrap_up_timeout() -> None:
    router = make_router()
    talking(router, "a1", "c1", 0.0)
    router.handle(ri.AgentHangsUp(agent_id="a1", call_id="c1"), 10.0)
    router.handle(ri.AgentGoesNotReady(agent_id="a1", reason="break"), 11.0)

    out = router.handle(ri.TimePasses(), 40.0)

    assert out[-1] == AgentStateSet("a1", AgentState.NOT_READY, NOT_READY_AFTER_CALL)


# --- refused requests -----------------------------------------------------------------


def _talking_a1_queued_c2() -> Router:
    router = make_router()
    talking(router, "a1", "c1", 0.0)
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a2", queues={"sales": 0.0})), 0.0)
    router.handle(ri.AgentLogsIn(agent_id="a2"), 0.0)
    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(50)), 1.0)
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a3", queues={"sales": 0.0})), 0.0)
    return router


REFUSED: list[tuple[str, Callable[[Router], object], tuple[str, ...]]] = [
    (
        "accept a waiting call",
        lambda r: r.handle(ri.AgentAccepts(agent_id="a2", call_id="c2"), 5.0),
        ("a2", "c2"),
    ),
    (
        "accept a call of another agent",
        lambda r: r.handle(ri.AgentAccepts(agent_id="a2", call_id="c1"), 5.0),
        ("a2", "c1"),
    ),
    (
        "reject a call never offered",
        lambda r: r.handle(ri.AgentRejects(agent_id="a2", call_id="c2"), 5.0),
        ("a2", "c2"),
    ),
    (
        "hang up a call not talked on",
        lambda r: r.handle(ri.AgentHangsUp(agent_id="a2", call_id="c1"), 5.0),
        ("a2", "c1"),
    ),
    (
        "hang up a waiting call",
        lambda r: r.handle(ri.AgentHangsUp(agent_id="a1", call_id="c2"), 5.0),
        ("a1", "c2"),
    ),
    (
        "wrap up while talking",
        lambda r: r.handle(
            ri.AgentFinishesWrapUp(agent_id="a1", call_id="c1", disposition="x"), 5.0
        ),
        ("a1", "c1"),
    ),
    ("ready while talking", lambda r: r.handle(ri.AgentGoesReady(agent_id="a1"), 5.0), ("a1",)),
    ("ready while logged out", lambda r: r.handle(ri.AgentGoesReady(agent_id="a3"), 5.0), ("a3",)),
    (
        "not ready while logged out",
        lambda r: r.handle(ri.AgentGoesNotReady(agent_id="a3", reason="x"), 5.0),
        ("a3",),
    ),
    ("an unknown agent", lambda r: r.handle(ri.AgentLogsIn(agent_id="zz"), 5.0), ("zz",)),
    (
        "an agent of an unknown queue",
        lambda r: r.handle(
            ri.AgentConfigured(agent=AgentConfig(id="a9", queues={"nope": 0.0})), 0.0
        ),
        ("nope",),
    ),
    (
        "an agent of no queue",
        lambda r: r.handle(ri.AgentConfigured(agent=AgentConfig(id="a9", queues={})), 0.0),
        ("a9",),
    ),
    (
        "a call id in use",
        lambda r: r.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(1)), 5.0),
        ("c1",),
    ),
    (
        "an unknown queue",
        lambda r: r.handle(ri.CallArrives(call_id="c9", queue="nope", caller=caller(1)), 5.0),
        ("nope", "sales"),
    ),
    (
        "hang-up of an unknown call",
        lambda r: r.handle(ri.CallerHangsUp(call_id="c9"), 5.0),
        ("c9",),
    ),
]


@pytest.mark.parametrize(
    ("request_", "names"), [(r, n) for _, r, n in REFUSED], ids=[i for i, _, _ in REFUSED]
)
def test_impossible_requests_raise_and_change_nothing(
    request_: Callable[[Router], object], names: tuple[str, ...]
) -> None:
    router = _talking_a1_queued_c2()
    before = fingerprint(router, 5.0)

    with pytest.raises(RoutingError) as info:
        request_(router)

    message = str(info.value)
    for name in names:
        assert name in message
    assert fingerprint(router, 5.0) == before


def test_finished_call_id_cannot_be_reused() -> None:
    router = make_router()
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 0.0)
    router.handle(ri.CallerHangsUp(call_id="c1"), 1.0)

    with pytest.raises(RoutingError, match="c1"):
        router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 2.0)


def test_the_last_finished_ids_are_remembered_and_older_ones_forgotten() -> None:
    """The router remembers the last 100,000 finished call ids (a repeated hang-up of one
    changes nothing; it cannot come again), the oldest forgotten first: two rounds of
    its memory, so that its list was cut once between."""
    from queue_engine.router_core import _FINISHED_MEMORY

    router = make_router()
    for n in range(2 * _FINISHED_MEMORY + 7):
        router._remember_finished(f"old{n}")  # as _finish_call does, without the calls
    router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(50)), 0.0)
    router.handle(ri.CallerHangsUp(call_id="c1"), 1.0)

    assert router.handle(ri.CallerHangsUp(call_id="c1"), 2.0) == []
    first_kept = _FINISHED_MEMORY + 8  # c1 came after them and pushed one more out
    assert router.handle(ri.CallerHangsUp(call_id=f"old{first_kept}"), 2.0) == []
    with pytest.raises(RoutingError, match="never saw"):
        router.handle(ri.CallerHangsUp(call_id=f"old{first_kept - 1}"), 2.0)
    with pytest.raises(RoutingError, match="already known"):
        router.handle(
            ri.CallArrives(call_id=f"old{first_kept}", queue="sales", caller=caller(1)), 3.0
        )
    forgotten = f"old{first_kept - 1}"
    router.handle(ri.CallArrives(call_id=forgotten, queue="sales", caller=caller(1)), 3.0)
    assert router.call_queue(forgotten) == "sales"  # a new call of that id


def test_a_forgotten_call_id_come_again_waits_once_at_its_own_place() -> None:
    """A waiting call's heap entry names the call itself, not its id: an entry left
    behind when its caller hung up is stale for good, even once the id is forgotten and
    a new call of that id comes (it would wait twice, once at the old call's rank)."""
    from queue_engine.router_core import _FINISHED_MEMORY

    router = make_router()
    router.handle(ri.CallArrives(call_id="y", queue="sales", caller=caller(90)), 0.0)
    router.handle(ri.CallArrives(call_id="x", queue="sales", caller=caller(10)), 0.0)
    router.handle(ri.CallerHangsUp(call_id="x"), 1.0)  # its entry stays, below y's
    for n in range(_FINISHED_MEMORY):
        router._remember_finished(f"other{n}")  # x forgotten
    router.handle(ri.CallArrives(call_id="x", queue="sales", caller=caller(10)), 2.0)

    assert router.waiting_in_order("sales") == ["y", "x"]
    assert router.estimated_waits("sales", 3.0, 10) == router.estimated_waits("sales", 3.0)


def test_router_config_errors() -> None:
    with pytest.raises(RoutingError, match="at least one queue"):
        Router([])
    with pytest.raises(RoutingError, match="0"):
        Router([SALES], max_missed_offers=0)


# --- agents serving two queues --------------------------------------------------------

# sales: rank = 0 + value + 1 x waited; support: rank = 50 + 0 x value + 3 x waited
SALES_2 = QueueConfig(name="sales", priority=0.0, value_weight=1.0, aging_rate=1.0)
SUPPORT_2 = QueueConfig(name="support", priority=50.0, value_weight=0.0, aging_rate=3.0)


@pytest.mark.parametrize(
    ("free_at", "expected"),
    [
        (10.0, "s1"),  # sales 80 + 10 = 90 > support 50 + 30 = 80
        (20.0, "p1"),  # sales 80 + 20 = 100 < support 50 + 60 = 110
    ],
)
def test_agent_of_two_queues_takes_the_best_call_by_rank_at_that_moment(
    free_at: float, expected: str
) -> None:
    router = Router([SALES_2, SUPPORT_2])
    router.handle(
        ri.AgentConfigured(agent=AgentConfig(id="a1", queues={"sales": 0.0, "support": 0.0})), 0.0
    )
    router.handle(ri.AgentLogsIn(agent_id="a1"), 0.0)
    router.handle(ri.CallArrives(call_id="s1", queue="sales", caller=caller(80)), 0.0)
    router.handle(ri.CallArrives(call_id="p1", queue="support", caller=caller(0)), 0.0)

    out = router.handle(ri.AgentGoesReady(agent_id="a1"), free_at)

    assert of_type(out, OfferCall)[0].call_id == expected
    other = {"s1", "p1"} - {expected}
    assert router.call_phase(other.pop()) is CallPhase.QUEUED


def test_agent_of_two_queues_breaks_a_rank_tie_by_arrival() -> None:
    router = Router([SALES_2, SUPPORT_2])
    router.handle(
        ri.AgentConfigured(agent=AgentConfig(id="a1", queues={"support": 0.0, "sales": 0.0})), 0.0
    )  # support listed first
    router.handle(ri.AgentLogsIn(agent_id="a1"), 0.0)
    router.handle(
        ri.CallArrives(call_id="s1", queue="sales", caller=caller(87)), 0.0
    )  # rank at 20: 87 + 20 = 107
    router.handle(
        ri.CallArrives(call_id="p1", queue="support", caller=caller(0)), 1.0
    )  # rank at 20: 50 + 3 x 19 = 107

    assert (
        of_type(router.handle(ri.AgentGoesReady(agent_id="a1"), 20.0), OfferCall)[0].call_id == "s1"
    )


def test_two_queue_agent_is_offered_calls_from_either_queue_at_once() -> None:
    router = Router([SALES_2, SUPPORT_2])
    router.handle(
        ri.AgentConfigured(agent=AgentConfig(id="a1", queues={"sales": 0.0, "support": 0.0})), 0.0
    )
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a2", queues={"sales": 0.0})), 0.0)
    ready(router, "a1", 0.0, ("sales", "support"))
    ready(router, "a2", 1.0)

    out = router.handle(ri.CallArrives(call_id="p1", queue="support", caller=caller(0)), 2.0)
    assert of_type(out, OfferCall) == [OfferCall("p1", "a1", "support", 17.0)]
    out = router.handle(ri.CallArrives(call_id="s1", queue="sales", caller=caller(0)), 3.0)
    assert of_type(out, OfferCall) == [OfferCall("s1", "a2", "sales", 18.0)]


# --- snapshot -------------------------------------------------------------------------


def test_snapshot_figures() -> None:
    router = Router([SALES_2, SUPPORT_2])
    ready(router, "a2", 0.0, ("sales", "support"))  # will take a support call
    ready(router, "a5", 0.5, ("support",))  # stays Ready
    ready(router, "a1", 1.0)  # will talk on a sales call
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="a3", queues={"sales": 0.0})), 0.0)
    router.handle(ri.AgentLogsIn(agent_id="a3"), 0.0)  # Not Ready
    router.handle(
        ri.AgentConfigured(agent=AgentConfig(id="a4", queues={"sales": 0.0})), 0.0
    )  # Logged Out
    router.handle(
        ri.CallArrives(call_id="p1", queue="support", caller=caller(0)), 1.0
    )  # offered to a2, Ready the longest
    router.handle(
        ri.CallArrives(call_id="c0", queue="sales", caller=caller(50)), 2.0
    )  # offered to a1
    router.handle(ri.AgentAccepts(agent_id="a1", call_id="c0"), 2.0)
    router.handle(ri.CallArrives(call_id="s1", queue="sales", caller=caller(10)), 4.0)  # waits
    router.handle(ri.CallArrives(call_id="s2", queue="sales", caller=caller(90)), 6.0)  # waits
    assert (router.agent("a2").call_id, router.agent("a1").call_id) == ("p1", "c0")

    sales = router.snapshot("sales", 10.0)
    assert (sales.queue, sales.waiting, sales.longest_wait_s) == ("sales", 2, 6.0)
    assert (sales.agents_ready, sales.agents_busy, sales.agents_logged_in) == (0, 2, 3)

    support = router.snapshot("support", 10.0)
    assert (support.waiting, support.longest_wait_s) == (0, 0.0)
    assert (support.agents_ready, support.agents_busy, support.agents_logged_in) == (1, 1, 2)

    router.handle(ri.CallerHangsUp(call_id="s1"), 11.0)  # the longest waiter leaves
    sales = router.snapshot("sales", 12.0)
    assert (sales.waiting, sales.longest_wait_s) == (1, 6.0)
