"""Personal callbacks ("for me"): reserved for the agent who scheduled them (sans-I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.errors import RoutingError
from cti.models import AgentConfig, AgentState, CallerInfo, CallerKind, Customer, QueueConfig
from cti.store.journal import Journal
from queue_engine import inputs as ri
from queue_engine.actions import Action, ConnectCall, OfferCall, RecordCall
from queue_engine.router import CallPhase, Router

SALES = QueueConfig(name="sales", offer_timeout_s=15.0, wrap_up_s=30.0)
NUMBER = "+442070000099"


def caller(value: float, n: int = 1) -> CallerInfo:
    customer = Customer(id=n, name=f"客户 {n}", value=value)
    return CallerInfo(ani=f"+4420700{n:05d}", kind=CallerKind.KNOWN, customer=customer)


def offers(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.call_id, a.agent_id) for a in actions if isinstance(a, OfferCall)]


def make(*agents: str, queue: QueueConfig = SALES) -> Router:
    router = Router([queue])
    for agent_id in agents:
        router.handle(
            ri.AgentConfigured(agent=AgentConfig(id=agent_id, queues={queue.name: 0.0})), 0.0
        )
    return router


def ready(router: Router, agent_id: str, now: float) -> list[Action]:
    router.handle(ri.AgentLogsIn(agent_id=agent_id), now)
    return router.handle(ri.AgentGoesReady(agent_id=agent_id), now)


def busy(router: Router, agent_id: str, call_id: str, now: float) -> None:
    """``agent_id`` (Ready, the only one) talks on a new inbound call."""
    assert offers(
        router.handle(ri.CallArrives(call_id=call_id, queue="sales", caller=caller(10, 50)), now)
    ) == [(call_id, agent_id)]
    router.handle(ri.AgentAccepts(agent_id=agent_id, call_id=call_id), now)


def test_a_due_personal_callback_is_offered_only_to_its_agent() -> None:
    router = make("alice", "bob")
    ready(router, "bob", 0)  # bob has been Ready the longest: he would get a call for anyone
    ready(router, "alice", 1)
    router.handle(
        ri.CallbackScheduled(
            call_id="cb1",
            queue="sales",
            caller=caller(50),
            due=100,
            number=NUMBER,
            for_agent="alice",
        ),
        10,
    )
    assert router.call_phase("cb1") is CallPhase.SCHEDULED
    out = router.handle(ri.TimePasses(), 100)
    assert offers(out) == [("cb1", "alice")]
    assert router.agent("bob").state is AgentState.READY
    connect = [
        a
        for a in router.handle(ri.AgentAccepts(agent_id="alice", call_id="cb1"), 101)
        if isinstance(a, ConnectCall)
    ]
    assert connect[0].dial == NUMBER
    router.handle(ri.AgentHangsUp(agent_id="alice", call_id="cb1"), 160)
    record = next(
        a.cdr
        for a in router.handle(
            ri.AgentFinishesWrapUp(
                agent_id="alice", call_id="cb1", disposition="sale", note="备注"
            ),
            170,
        )
        if isinstance(a, RecordCall)
    )
    assert record.kind == "callback"
    assert record.agent_id == "alice"
    assert record.note == "callback for alice · 备注"


def test_the_owner_busy_it_waits_outside_the_queue_then_comes_before_queue_calls() -> None:
    router = make("alice", "bob")
    ready(router, "alice", 0)
    busy(router, "alice", "c0", 1)
    router.handle(
        ri.CallbackScheduled(
            call_id="cb1", queue="sales", caller=caller(0), due=50, number=NUMBER, for_agent="alice"
        ),
        2,
    )
    assert router.handle(ri.TimePasses(), 50) == []
    # Reserved, it is not waiting in its queue: no figures count it, nobody else gets it.
    assert router.waiting("sales") == 0
    assert router.waiting_in_order("sales") == []
    assert router.estimated_waits("sales", 60) == []
    assert router.snapshot("sales", 60).waiting == 0
    assert router.call_phase("cb1") is CallPhase.SCHEDULED
    assert offers(ready(router, "bob", 60)) == []
    # A queue call of much higher value arrives: bob takes it; a second one waits.
    assert offers(
        router.handle(ri.CallArrives(call_id="c1", queue="sales", caller=caller(100, 2)), 70)
    ) == [("c1", "bob")]
    router.handle(ri.CallArrives(call_id="c2", queue="sales", caller=caller(100, 3)), 71)
    assert router.waiting("sales") == 1
    router.handle(ri.AgentHangsUp(agent_id="alice", call_id="c0"), 80)
    out = router.handle(ri.AgentFinishesWrapUp(agent_id="alice", call_id="c0", disposition=""), 90)
    assert offers(out) == [("cb1", "alice")]  # the promised callback first
    assert router.waiting_in_order("sales") == ["c2"]


def test_due_at_once_while_the_owner_is_busy_it_waits_for_the_owner() -> None:
    router = make("alice", "bob")
    ready(router, "alice", 0)
    busy(router, "alice", "c0", 1)
    ready(router, "bob", 2)
    assert (
        router.handle(
            ri.CallbackScheduled(
                call_id="cb1",
                queue="sales",
                caller=caller(50),
                due=0,
                number=NUMBER,
                for_agent="alice",
            ),
            5,
        )
        == []
    )
    assert router.call_phase("cb1") is CallPhase.SCHEDULED
    assert router.waiting("sales") == 0
    assert router.handle(ri.CallerHangsUp(call_id="cb1"), 6) == []  # no line: the callback stands
    router.handle(ri.AgentHangsUp(agent_id="alice", call_id="c0"), 10)
    assert offers(
        router.handle(ri.AgentFinishesWrapUp(agent_id="alice", call_id="c0", disposition=""), 11)
    ) == [("cb1", "alice")]


def test_several_reserved_callbacks_go_to_their_agent_best_first() -> None:
    router = make("alice")
    ready(router, "alice", 0)
    busy(router, "alice", "c0", 1)
    router.handle(
        ri.CallbackScheduled(
            call_id="low",
            queue="sales",
            caller=caller(0, 2),
            due=10,
            number=NUMBER,
            for_agent="alice",
        ),
        2,
    )
    router.handle(
        ri.CallbackScheduled(
            call_id="high",
            queue="sales",
            caller=caller(90, 3),
            due=20,
            number=NUMBER,
            for_agent="alice",
        ),
        2,
    )
    router.handle(ri.TimePasses(), 20)
    router.handle(ri.AgentHangsUp(agent_id="alice", call_id="c0"), 30)
    assert offers(
        router.handle(ri.AgentFinishesWrapUp(agent_id="alice", call_id="c0", disposition=""), 31)
    ) == [("high", "alice")]
    router.handle(ri.AgentAccepts(agent_id="alice", call_id="high"), 32)
    router.handle(ri.AgentHangsUp(agent_id="alice", call_id="high"), 40)
    assert offers(
        router.handle(ri.AgentFinishesWrapUp(agent_id="alice", call_id="high", disposition=""), 41)
    ) == [("low", "alice")]


def test_the_owner_away_past_the_wait_it_goes_to_anyone_with_its_age() -> None:
    queue = SALES.model_copy(update={"personal_callback_wait_s": 120.0})
    router = make("alice", "bob", queue=queue)
    router.handle(ri.AgentLogsIn(agent_id="alice"), 0)  # logged in but Not Ready
    router.handle(
        ri.CallbackScheduled(
            call_id="cb1",
            queue="sales",
            caller=caller(50),
            due=100,
            number=NUMBER,
            for_agent="alice",
        ),
        5,
    )
    router.handle(ri.TimePasses(), 100)
    assert router.next_deadline() == 220
    assert router.handle(ri.TimePasses(), 219) == []
    assert router.call_phase("cb1") is CallPhase.SCHEDULED
    router.handle(ri.TimePasses(), 220)
    assert router.call_phase("cb1") is CallPhase.QUEUED
    assert router.waiting("sales") == 1
    assert router.snapshot("sales", 230).longest_wait_s == 130  # counted from due
    assert router.call_arrived_at("cb1") == 100
    assert offers(ready(router, "bob", 230)) == [("cb1", "bob")]
    # alice going Ready later finds nothing reserved (the old entry is stale).
    assert offers(router.handle(ri.AgentGoesReady(agent_id="alice"), 231)) == []
    assert router.agent("alice").state is AgentState.READY


def test_the_owner_away_past_the_wait_it_keeps_its_age_against_queue_calls() -> None:
    queue = SALES.model_copy(update={"personal_callback_wait_s": 60.0, "value_weight": 0.0})
    router = make("alice", "bob", queue=queue)
    router.handle(ri.AgentLogsIn(agent_id="alice"), 0)
    router.handle(
        ri.CallbackScheduled(
            call_id="cb1",
            queue="sales",
            caller=caller(0),
            due=100,
            number=NUMBER,
            for_agent="alice",
        ),
        0,
    )
    router.handle(ri.TimePasses(), 100)
    router.handle(
        ri.CallArrives(call_id="c1", queue="sales", caller=caller(0, 2)), 130
    )  # arrived after the callback was due
    router.handle(ri.TimePasses(), 160)
    assert router.waiting_in_order("sales") == ["cb1", "c1"]


def test_the_owner_logging_out_sends_it_to_anyone_at_once() -> None:
    router = make("alice", "bob")
    router.handle(ri.AgentLogsIn(agent_id="alice"), 0)
    ready(router, "bob", 0)
    busy(router, "bob", "c0", 1)
    router.handle(
        ri.CallbackScheduled(
            call_id="cb1",
            queue="sales",
            caller=caller(50),
            due=10,
            number=NUMBER,
            for_agent="alice",
        ),
        2,
    )
    router.handle(ri.TimePasses(), 10)
    assert router.waiting("sales") == 0
    router.handle(ri.AgentLogsOut(agent_id="alice"), 20)
    assert router.call_phase("cb1") is CallPhase.QUEUED
    assert router.waiting("sales") == 1
    router.handle(ri.AgentHangsUp(agent_id="bob", call_id="c0"), 30)
    assert offers(
        router.handle(ri.AgentFinishesWrapUp(agent_id="bob", call_id="c0", disposition=""), 31)
    ) == [("cb1", "bob")]


def test_the_owner_logged_out_when_it_is_due_it_joins_the_queue() -> None:
    router = make("alice", "bob")
    router.handle(
        ri.CallbackScheduled(
            call_id="cb1",
            queue="sales",
            caller=caller(50),
            due=10,
            number=NUMBER,
            for_agent="alice",
        ),
        2,
    )
    router.handle(ri.TimePasses(), 10)
    assert router.waiting_in_order("sales") == ["cb1"]


def test_declined_by_its_owner_it_goes_back_to_the_queue_for_anyone() -> None:
    router = make("alice", "bob")
    ready(router, "alice", 0)
    out = router.handle(
        ri.CallbackScheduled(
            call_id="cb1", queue="sales", caller=caller(50), due=0, number=NUMBER, for_agent="alice"
        ),
        5,
    )
    assert offers(out) == [("cb1", "alice")]  # due at once, owner Ready: offered at once
    router.handle(ri.AgentRejects(agent_id="alice", call_id="cb1"), 6)
    assert router.waiting_in_order("sales") == ["cb1"]
    assert offers(ready(router, "bob", 7)) == [("cb1", "bob")]


def test_a_callback_for_an_agent_outside_the_queue_or_unknown_is_refused() -> None:
    router = Router([SALES, QueueConfig(name="support")])
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="alice", queues={"support": 0.0})), 0.0)
    with pytest.raises(RoutingError, match=r"'alice' does not serve queue 'sales'.*support"):
        router.handle(
            ri.CallbackScheduled(
                call_id="cb1",
                queue="sales",
                caller=caller(1),
                due=10,
                number=NUMBER,
                for_agent="alice",
            ),
            0,
        )
    with pytest.raises(RoutingError, match="no agent with id 'zoe'"):
        router.handle(
            ri.CallbackScheduled(
                call_id="cb1",
                queue="sales",
                caller=caller(1),
                due=10,
                number=NUMBER,
                for_agent="zoe",
            ),
            0,
        )
    assert router.active_call_ids() == []
    router.handle(
        ri.CallbackScheduled(call_id="cb1", queue="sales", caller=caller(1), due=10, number=NUMBER),
        0,
    )  # the id is still free


def test_a_reserved_callback_survives_the_callers_hang_up_event() -> None:
    router = make("alice")
    router.handle(ri.AgentLogsIn(agent_id="alice"), 0)
    router.handle(
        ri.CallbackScheduled(
            call_id="cb1",
            queue="sales",
            caller=caller(50),
            due=10,
            number=NUMBER,
            for_agent="alice",
        ),
        2,
    )
    router.handle(ri.TimePasses(), 10)
    assert router.handle(ri.CallerHangsUp(call_id="cb1"), 11) == []
    assert offers(router.handle(ri.AgentGoesReady(agent_id="alice"), 12)) == [("cb1", "alice")]


def test_journal_replay_of_a_personal_callback_rebuilds_the_reservation(tmp_path: Path) -> None:
    script: list[tuple[float, ri.AnyInput]] = [
        (0.0, ri.AgentLogsIn(agent_id="alice")),
        (0.0, ri.AgentLogsIn(agent_id="bob")),
        (0.0, ri.AgentGoesReady(agent_id="bob")),
        (
            1.0,
            ri.CallbackScheduled(
                call_id="cb1",
                queue="sales",
                caller=caller(50),
                due=10.0,
                number=NUMBER,
                for_agent="alice",
            ),
        ),
        (10.0, ri.TimePasses()),
    ]
    path = tmp_path / "j.db"
    with Journal.open(path) as journal:
        for at, event in script:
            journal.append(at, event)
    with Journal.open(path) as journal:
        replayed = list(journal.replay())
    assert replayed == script
    assert replayed[3][1].for_agent == "alice"  # type: ignore[union-attr]
    router = make("alice", "bob")
    for at, event in replayed:
        router.handle(event, at)
    assert router.call_phase("cb1") is CallPhase.SCHEDULED  # reserved: bob did not get it
    assert offers(router.handle(ri.AgentGoesReady(agent_id="alice"), 11)) == [("cb1", "alice")]


def test_an_old_journal_entry_without_for_agent_is_a_callback_for_anyone() -> None:
    old = (
        '{"kind": "callback_scheduled", "call_id": "cb1", "queue": "sales", '
        '"caller": {"ani": "+442070000001", "kind": "unknown"}, "due": 0.0, '
        '"number": "+442070000001"}'
    )
    event = ri.CallbackScheduled.model_validate_json(old)
    assert event.for_agent == ""
    router = make("alice", "bob")
    ready(router, "bob", 0)
    assert offers(router.handle(event, 1)) == [("cb1", "bob")]
