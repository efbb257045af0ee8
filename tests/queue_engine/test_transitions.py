"""The router's state machines as tables (queue_engine/transitions.py): well formed, and
what the router does follows them."""

from __future__ import annotations

import pytest

from cti.errors import RoutingError
from cti.models import AgentConfig, AgentState, CallerInfo, QueueConfig
from queue_engine import inputs, transitions
from queue_engine.actions import AgentStateSet
from queue_engine.router import Router
from queue_engine.transitions import (
    AGENT_TRANSITIONS,
    CALL_TRANSITIONS,
    AgentEvent,
    CallEvent,
    CallPhase,
    Move,
    agent_next,
)


def test_each_named_move_is_its_events_rows() -> None:
    """The router moves by the ``AGENT_*``/``CALL_*`` constants: each is its event's
    rows of the table, and no more, and every event has one."""
    for prefix, events, rows, states in (
        ("AGENT_", AgentEvent, AGENT_TRANSITIONS, tuple(AgentState)),
        ("CALL_", CallEvent, CALL_TRANSITIONS, tuple(CallPhase)),
    ):
        for event in events:
            move = getattr(transitions, prefix + event.name)
            assert isinstance(move, Move)
            assert move.event is event
            assert move.to == {r.source: r.target for r in rows if r.event is event}
            assert move.target is not None  # one target an event: found by identity
            for state in states:  # Move.after, as the router looks it up, is the table
                assert move.after(state) is move.to.get(state)


def test_a_move_of_several_targets_looks_them_up() -> None:
    move = Move(AgentEvent.FREE, {AgentState.READY: AgentState.READY,
                                  AgentState.WRAP_UP: AgentState.NOT_READY})  # fmt: skip
    assert move.target is None
    assert move.after(AgentState.WRAP_UP) is AgentState.NOT_READY
    assert move.after(AgentState.READY) is AgentState.READY
    assert move.after(AgentState.TALKING) is None


def reachable(start: object, rows: tuple[tuple[object, object, object], ...]) -> set[object]:
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for source, _, target in rows:
            if source == here and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_each_move_is_named_once_and_every_state_is_reachable() -> None:
    for rows in (AGENT_TRANSITIONS, CALL_TRANSITIONS):
        keys = [(source, event) for source, event, _ in rows]
        assert len(keys) == len(set(keys)), "one (from, event) pair, one target"
    assert reachable(AgentState.LOGGED_OUT, AGENT_TRANSITIONS) == set(AgentState)
    starts = (CallPhase.QUEUED, CallPhase.SCHEDULED, CallPhase.TALKING)
    assert set().union(*(reachable(p, CALL_TRANSITIONS) for p in starts)) == set(CallPhase)
    assert not [row for row in CALL_TRANSITIONS if row.source is CallPhase.DONE]


def test_a_move_the_table_lacks_is_refused() -> None:
    assert agent_next("a", AgentState.READY, AgentEvent.OFFER) is AgentState.RESERVED
    with pytest.raises(RoutingError, match=r"agent 'a': no move from logged_out on answer"):
        agent_next("a", AgentState.LOGGED_OUT, AgentEvent.ANSWER)


def test_every_state_change_of_a_busy_day_follows_the_agent_table() -> None:
    queue = QueueConfig(name="q", offer_timeout_s=5, wrap_up_s=3, wrap_up_max_s=10)
    agents = [AgentConfig(id=a, queues={"q": 0.0}) for a in ("a", "b")]
    router = Router([queue], agents=agents)
    steps: list[tuple[float, inputs.AnyInput]] = [
        (0.0, inputs.AgentLogsIn(agent_id="a")),
        (0.0, inputs.AgentLogsIn(agent_id="b")),
        (0.0, inputs.AgentGoesReady(agent_id="a")),
        (1.0, inputs.CallArrives(call_id="c1", queue="q", caller=CallerInfo(ani="1"))),
        (2.0, inputs.AgentRejects(agent_id="a", call_id="c1")),
        (2.0, inputs.AgentGoesReady(agent_id="b")),
        (3.0, inputs.AgentAccepts(agent_id="b", call_id="c1")),
        (4.0, inputs.AgentGoesNotReady(agent_id="b", reason="lunch")),
        (5.0, inputs.AgentHangsUp(agent_id="b", call_id="c1")),
        (6.0, inputs.AgentExtendsWrapUp(agent_id="b", call_id="c1", seconds=2)),
        (7.0, inputs.AgentGoesReady(agent_id="a")),
        (8.0, inputs.CallArrives(call_id="c2", queue="q", caller=CallerInfo(ani="2"))),
        (20.0, inputs.TimePasses()),  # b's wrap-up ends (Not Ready, as asked); a misses c2
        (21.0, inputs.AgentLogsOut(agent_id="b")),
    ]
    state = {"a": AgentState.LOGGED_OUT, "b": AgentState.LOGGED_OUT}
    moves = {(source, target) for source, _, target in AGENT_TRANSITIONS}
    seen = []
    for now, event in steps:
        for action in router.handle(event, now):
            if isinstance(action, AgentStateSet):
                move = (state[action.agent_id], action.state)
                assert move in moves, f"{action.agent_id}: {move} is not in the table"
                seen.append(move)
                state[action.agent_id] = action.state
    assert state == {"a": AgentState.NOT_READY, "b": AgentState.LOGGED_OUT}
    assert (AgentState.WRAP_UP, AgentState.NOT_READY) in seen  # not ready after the call
    assert (AgentState.RESERVED, AgentState.NOT_READY) in seen  # a rejected, then missed
