"""Live statistics per queue and per interval, from hand-built action sequences."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.models import AgentState, CallDetailRecord, CallerKind, QueueConfig, Segment
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    DisconnectCall,
    OfferCall,
    RecordCall,
    WithdrawOffer,
)
from queue_engine.live_stats import IntervalFigures, LiveStats, QueueFigures
from queue_engine.stats import AgentTime, Tally

S = AgentState
Q1 = QueueConfig(name="q1", sl_target_s=20.0, short_abandon_s=5.0)
Q2 = QueueConfig(name="q2", sl_target_s=60.0, short_abandon_s=10.0)
QUEUES = {"q1": Q1, "q2": Q2}


def call(
    call_id: str,
    queue: str,
    arrived: float,
    *,
    wait: float,
    outcome: str = "answered",
    talk: float = 0.0,
    wrap: float = 0.0,
) -> RecordCall:
    answered = arrived + wait if outcome == "answered" else None
    return RecordCall(
        CallDetailRecord(
            call_id=call_id,
            queue=queue,
            ani="1",
            caller_kind=CallerKind.UNKNOWN,
            customer_id=None,
            segment=Segment.BASIC,
            value=0.0,
            arrived_at=arrived,
            offered_at=answered,
            answered_at=answered,
            ended_at=arrived + wait + talk,
            outcome=outcome,
            wrap_up_s=wrap,
        )
    )


def run(stats: LiveStats, agent_id: str, timeline: Sequence[tuple[float, AgentState]]) -> None:
    for at, state in timeline:
        stats.observe(AgentStateSet(agent_id, state), at)


EXAMPLE = [(0.0, S.READY), (100.0, S.TALKING), (400.0, S.WRAP_UP), (430.0, S.NOT_READY)]
EXAMPLE += [(500.0, S.READY)]


def test_occupancy_of_the_worked_example_for_each_queue_and_once_overall() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1", "q2"]})
    run(stats, "a", EXAMPLE)
    for queue in ("q1", "q2", None):
        f = stats.snapshot(queue, 1000.0)
        assert (f.busy_s, f.idle_s, f.not_ready_s, f.staffed_s) == (330.0, 600.0, 70.0, 1000.0)
        assert f.occupancy == pytest.approx(330 / (1000 - 70))


def test_overall_counts_each_agent_once_and_a_queue_only_its_agents() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1", "q2"], "b": ["q2"]})
    run(stats, "a", [(0.0, S.TALKING)])
    run(stats, "b", [(0.0, S.READY)])
    assert stats.snapshot("q1", 100.0).occupancy == 1.0
    assert stats.snapshot("q2", 100.0).occupancy == pytest.approx(0.5)
    overall = stats.snapshot(None, 100.0)
    assert (overall.busy_s, overall.idle_s) == (100.0, 100.0)


def test_reserved_is_idle_time_and_logged_out_is_not_staffed() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1"]})
    run(stats, "a", [(0.0, S.READY), (10.0, S.RESERVED), (25.0, S.TALKING)])
    run(stats, "a", [(45.0, S.LOGGED_OUT)])
    f = stats.snapshot("q1", 1000.0)
    assert (f.busy_s, f.idle_s, f.staffed_s) == (20.0, 25.0, 45.0)
    assert f.occupancy == pytest.approx(20 / 45)


def test_agent_time_is_split_exactly_at_interval_boundaries() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1"]}, interval_s=300.0)
    run(stats, "a", EXAMPLE)
    rows = stats.intervals("q1", 1000.0)
    assert [(r.start, r.end) for r in rows] == [(0, 300), (300, 600), (600, 900), (900, 1200)]
    split = [(r.figures.busy_s, r.figures.idle_s, r.figures.not_ready_s) for r in rows]
    # The last interval runs up to now, still Ready.
    assert split == [(200.0, 100.0, 0.0), (130.0, 100.0, 70.0), (0.0, 300.0, 0.0), (0, 100, 0)]
    # Closing the open state at now changes nothing; afterwards no time accrues.
    stats.observe(AgentStateSet("a", S.LOGGED_OUT), 1000.0)
    assert stats.intervals("q1", 1000.0) == rows
    later = stats.intervals("q1", 1100.0)
    assert later[-1].figures.idle_s == 100.0
    assert later[-1].figures.staffed_s == 100.0


def test_intervals_follow_the_origin_exactly_at_every_boundary() -> None:
    origin, width = 0.1, 0.1
    stats = LiveStats(QUEUES, {}, interval_s=width, origin=origin)
    for k in range(50):
        at = origin + k * width
        stats.observe(call(f"c{k}", "q1", at, wait=0.0), at)
    rows = stats.intervals("q1", origin + 49 * width)
    assert len(rows) == 50
    assert all(r.start == origin + k * width for k, r in enumerate(rows))
    assert [r.figures.offered for r in rows] == [1] * 50


def test_a_call_counts_in_the_interval_it_arrived_in() -> None:
    stats = LiveStats(QUEUES, {})
    stats.observe(call("c", "q1", 890.0, wait=15.0, talk=95.0, wrap=10.0), 1010.0)
    rows = stats.intervals("q1", 1010.0)
    assert [(r.start, r.figures.offered, r.figures.answered) for r in rows] == [
        (0.0, 1, 1),
        (900.0, 0, 0),
    ]
    assert rows[0].figures.answered_within_target == 1


def test_service_level_leaves_short_abandons_out_each_call_by_its_queues_thresholds() -> None:
    stats = LiveStats(QUEUES, {})
    for action in [
        call("a", "q1", 0, wait=10, talk=100, wrap=20),  # within 20 s
        call("b", "q1", 0, wait=30, talk=50, wrap=10),  # late
        call("c", "q1", 0, wait=3, outcome="abandoned"),  # short abandon
        call("d", "q1", 0, wait=40, outcome="abandoned"),
        call("e", "q2", 0, wait=40, talk=30),  # within q2's 60 s
        call("f", "q2", 0, wait=8, outcome="abandoned"),  # short under q2's 10 s
    ]:
        stats.observe(action, 100.0)
    q1, q2, overall = (stats.snapshot(q, 100.0) for q in ("q1", "q2", None))
    assert (q1.offered, q1.answered, q1.abandoned, q1.short_abandoned) == (4, 2, 2, 1)
    assert q1.service_level == pytest.approx(1 / 3)
    assert q1.service_level_of_answered == pytest.approx(1 / 2)
    assert q1.asa_s == pytest.approx(20.0)
    assert q1.aht_s == pytest.approx((120 + 60) / 2)
    assert q1.abandon_rate == pytest.approx(0.5)
    assert q1.max_wait_s == 40.0
    assert (q2.short_abandoned, q2.service_level) == (1, 1.0)
    assert (overall.offered, overall.short_abandoned, overall.answered_within_target) == (6, 2, 2)
    assert overall.service_level == pytest.approx(2 / 4)
    assert overall.service_level_of_answered == pytest.approx(2 / 3)
    assert overall.abandon_rate == pytest.approx(3 / 6)
    assert overall.aht_s == pytest.approx((120 + 60 + 30) / 3)


def test_nothing_yet_gives_no_ratios_rather_than_zeroes() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1"]})
    f = stats.snapshot("q1", 100.0)
    assert f == QueueFigures.of("q1", Tally(), AgentTime())
    assert None is f.service_level is f.asa_s is f.aht_s is f.abandon_rate is f.occupancy
    assert stats.intervals(None, 100.0) == []


def test_only_calls_recorded_and_state_changes_count() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1"]})
    run(stats, "a", [(0.0, S.READY)])
    before = stats.snapshot(None, 50.0), stats.intervals(None, 50.0)
    others: list[Action] = [
        OfferCall("c", "a", "q1", 30.0),
        WithdrawOffer("c", "a", "timeout"),
        ConnectCall("c", "a"),
        DisconnectCall("c", "a", "caller"),
    ]
    for action in others:
        stats.observe(action, 20.0)
    assert (stats.snapshot(None, 50.0), stats.intervals(None, 50.0)) == before


def test_agents_by_state_uses_each_agents_latest_state() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1"], "b": ["q1", "q2"], "c": ["q2"], "d": ["q1"]})
    run(stats, "a", [(0.0, S.NOT_READY), (5.0, S.READY)])
    run(stats, "b", [(0.0, S.TALKING)])
    run(stats, "c", [(0.0, S.NOT_READY)])
    run(stats, "x", [(0.0, S.READY)])  # unknown: overall only
    q1 = stats.agents_by_state("q1", 10.0)
    assert set(q1) == set(AgentState)
    assert {s: n for s, n in q1.items() if n} == {S.READY: 1, S.TALKING: 1, S.LOGGED_OUT: 1}
    overall = stats.agents_by_state(None, 10.0)
    assert (overall[S.READY], overall[S.NOT_READY], sum(overall.values())) == (2, 1, 5)


def test_moving_an_agent_keeps_its_time_so_far_with_the_old_queues() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1"]})
    run(stats, "a", [(0.0, S.READY)])
    stats.set_agent_queues("a", ["q2", "q2"], 100.0)
    run(stats, "a", [(200.0, S.READY)])  # closes 100-200 into the ledgers
    assert stats.snapshot("q1", 250.0).idle_s == 100.0
    assert stats.snapshot("q2", 250.0).idle_s == 150.0  # listed twice, counted once
    assert stats.snapshot(None, 250.0).idle_s == 250.0
    assert stats.agents_by_state("q1", 250.0)[S.READY] == 0
    assert stats.agents_by_state("q2", 250.0)[S.READY] == 1


def test_unknown_agents_and_queues_are_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = LiveStats(QUEUES, {})
    with caplog.at_level(logging.WARNING, logger="queue_engine.live_stats"):
        run(stats, "x", [(0.0, S.READY), (10.0, S.TALKING)])
        stats.observe(call("c1", "qx", 0.0, wait=3.0, talk=1.0), 20.0)
        stats.observe(call("c2", "qx", 0.0, wait=30.0, talk=1.0), 20.0)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "agent 'x'" in messages[0]
    assert "queue 'qx'" in messages[1]
    overall = stats.snapshot(None, 20.0)
    assert (overall.busy_s, overall.idle_s, overall.offered) == (10.0, 10.0, 2)
    qx = stats.snapshot("qx", 20.0)  # judged by the default 20 s target
    assert (qx.answered_within_target, qx.staffed_s) == (1, 0.0)
    with pytest.raises(KeyError):
        stats.snapshot("nowhere", 20.0)


def test_reconfigured_thresholds_judge_the_calls_recorded_afterwards() -> None:
    stats = LiveStats(QUEUES, {})
    stats.observe(call("a", "q1", 0, wait=30), 40.0)
    stats.configure_queue(Q1.model_copy(update={"sl_target_s": 45.0}))
    stats.observe(call("b", "q1", 0, wait=30), 40.0)
    assert stats.snapshot("q1", 40.0).answered_within_target == 1


def test_a_day_of_intervals_is_kept_and_older_ones_dropped() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1"]})
    state = S.READY
    for k in range(300):
        stats.observe(AgentStateSet("a", state), k * 900.0)
        state = S.TALKING if state is S.READY else S.READY
    now = 300 * 900.0 + 1.0
    stats.observe(AgentStateSet("a", state), now)
    stats.observe(call("old", "q1", 10.0, wait=1.0), now)  # its interval is gone
    rows = stats.intervals("q1", now)
    assert len(rows) == 96
    assert rows[0].start == (300 - 95) * 900.0
    assert rows[-1].start == 300 * 900.0
    assert sum(r.figures.offered for r in rows) == 0
    assert stats.snapshot("q1", now).offered == 1
    assert stats.snapshot("q1", now).staffed_s == now
    assert sum(r.figures.staffed_s for r in rows) == pytest.approx(95 * 900.0 + 1.0)
    assert len(stats._intervals) <= 96  # memory stays bounded


def test_bad_interval_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        LiveStats(QUEUES, {}, interval_s=0.0)
    with pytest.raises(ValueError, match="keep_intervals must be at least 1"):
        LiveStats(QUEUES, {}, keep_intervals=0)


# --- property: random sequences against a naive recomputation ---------------------------

AGENTS = {"a": ("q1",), "b": ("q2",), "c": ("q1", "q2")}
"""Agent "x" is unknown to the statistics: overall only."""


@dataclass(frozen=True)
class StateStep:
    dt: float
    agent_id: str
    state: AgentState


@dataclass(frozen=True)
class CallStep:
    dt: float
    queue: str
    ago: float
    wait: float
    outcome: str
    talk: float
    wrap: float


dts = st.sampled_from([0.0, 0.5, 1.0, 7.0, 50.0, 99.5, 100.0, 150.0, 230.0])
state_steps = st.builds(StateStep, dts, st.sampled_from([*AGENTS, "x"]), st.sampled_from(S))
call_steps = st.builds(
    CallStep,
    dts,
    st.sampled_from(["q1", "q2"]),
    st.floats(0.0, 400.0),
    st.floats(0.0, 80.0),
    st.sampled_from(["answered", "abandoned", "failed"]),
    st.floats(0.0, 300.0),
    st.floats(0.0, 30.0),
)


def _oracle_time(
    steps: Sequence[StateStep | CallStep], end: float
) -> dict[str | None, dict[str, float]]:
    """Busy, idle and Not Ready seconds by queue, from each agent's timeline."""
    timeline: dict[str, list[tuple[float, AgentState]]] = {}
    now = 0.0
    for step in steps:
        now += step.dt
        if isinstance(step, StateStep):
            timeline.setdefault(step.agent_id, []).append((now, step.state))
    kinds = {S.TALKING: "busy", S.WRAP_UP: "busy", S.READY: "idle", S.RESERVED: "idle"}
    kinds[S.NOT_READY] = "not_ready"
    out: dict[str | None, dict[str, float]] = {
        q: {"busy": 0.0, "idle": 0.0, "not_ready": 0.0} for q in ("q1", "q2", None)
    }
    for agent_id, changes in timeline.items():
        for (t0, state), (t1, _) in zip(changes, [*changes[1:], (end, S.LOGGED_OUT)], strict=True):
            kind = kinds.get(state)
            if kind is not None:
                for q in (*AGENTS.get(agent_id, ()), None):
                    out[q][kind] += t1 - t0
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(state_steps, call_steps), max_size=40), st.floats(0.0, 500.0))
def test_intervals_add_up_to_the_run_and_match_a_naive_recount(
    steps: list[StateStep | CallStep], extra: float
) -> None:
    agent_queues = {a: list(q) for a, q in AGENTS.items()}
    # Keep every interval (the run spans at most about 100): their sums must be the run's.
    stats = LiveStats(QUEUES, agent_queues, interval_s=100.0, keep_intervals=200)
    now = 0.0
    records: list[CallDetailRecord] = []
    for i, step in enumerate(steps):
        now += step.dt
        if isinstance(step, StateStep):
            stats.observe(AgentStateSet(step.agent_id, step.state), now)
        else:
            action = call(
                f"c{i}",
                step.queue,
                now - step.ago,
                wait=step.wait,
                outcome=step.outcome,
                talk=step.talk,
                wrap=step.wrap,
            )
            stats.observe(action, now)
            records.append(action.cdr)
    end = now + extra
    oracle = _oracle_time(steps, end)
    for queue in ("q1", "q2", None):
        total = stats.snapshot(queue, end)
        rows = stats.intervals(queue, end)
        mine = [r for r in records if queue in (None, r.queue)]
        assert total.offered == len(mine)
        assert total.answered == sum(r.outcome == "answered" for r in mine)
        assert total.abandoned == sum(r.outcome == "abandoned" for r in mine)
        for name in ("offered", "answered", "abandoned", "short_abandoned"):
            assert sum(getattr(r.figures, name) for r in rows) == getattr(total, name)
        assert total.busy_s == pytest.approx(oracle[queue]["busy"], abs=1e-6)
        assert total.not_ready_s == pytest.approx(oracle[queue]["not_ready"], abs=1e-6)
        # Busy + idle is the staffed time not in Not Ready.
        staffed = sum(oracle[queue].values())
        assert total.busy_s + total.idle_s == pytest.approx(
            staffed - oracle[queue]["not_ready"], abs=1e-6
        )
        for name in ("busy_s", "idle_s", "not_ready_s"):
            in_rows = sum(getattr(r.figures, name) for r in rows)
            assert in_rows == pytest.approx(getattr(total, name), abs=1e-6)
        for f in [total, *(r.figures for r in rows)]:
            assert f.occupancy is None or 0.0 <= f.occupancy <= 1.0
        _check_contiguous(rows, end)


def _check_contiguous(rows: list[IntervalFigures], now: float) -> None:
    for before, after in itertools.pairwise(rows):
        assert before.end == after.start
    if rows:
        assert rows[-1].start <= now < rows[-1].end


def test_a_clock_going_back_passes_no_time() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1"]})
    run(stats, "a", [(100.0, S.READY), (50.0, S.TALKING)])
    f = stats.snapshot("q1", 200.0)
    assert (f.busy_s, f.idle_s, f.staffed_s) == (100.0, 0.0, 100.0)


def test_a_call_the_agent_dialled_by_hand_is_not_an_offered_call() -> None:
    stats = LiveStats(QUEUES, {"a": ["q1"]})
    manual = call("m1", "q1", 10.0, wait=0.0, talk=60.0)
    manual.cdr.kind = "manual"
    stats.observe(call("c1", "q1", 0.0, wait=30.0, talk=60.0), 200.0)
    stats.observe(manual, 200.0)
    f = stats.snapshot("q1", 200.0)
    assert (f.offered, f.answered) == (1, 1)
    assert f.asa_s == pytest.approx(30.0)  # the dial's zero wait does not flatter it
