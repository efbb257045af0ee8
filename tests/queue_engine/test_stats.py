"""Statistics as docs/statistics.md defines them, and the starvation check."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cti.models import AgentState, CallDetailRecord, CallerKind, Segment
from queue_engine.stats import AgentTime, Tally, passed_over_beyond_bound, tally


def cdr(
    call_id: str,
    arrived: float,
    *,
    offered: float | None = None,
    answered: float | None = None,
    ended: float,
    outcome: str = "answered",
) -> CallDetailRecord:
    return CallDetailRecord(
        call_id=call_id,
        queue="q",
        ani="1",
        caller_kind=CallerKind.UNKNOWN,
        customer_id=None,
        segment=Segment.BASIC,
        value=0.0,
        arrived_at=arrived,
        offered_at=offered if offered is not None else answered,
        answered_at=answered,
        ended_at=ended,
        outcome=outcome,
    )


def test_service_level_leaves_short_abandons_out_of_both_sides() -> None:
    records = [
        cdr("a", 0, answered=10, ended=50),  # within 20 s
        cdr("b", 0, answered=30, ended=60),  # late
        cdr("c", 0, ended=3, outcome="abandoned"),  # short abandon: excluded
        cdr("d", 0, ended=40, outcome="abandoned"),
    ]
    t = tally(records, sl_target_s=20, short_abandon_s=5)
    assert (t.offered, t.answered, t.abandoned, t.short_abandoned) == (4, 2, 2, 1)
    assert t.service_level == pytest.approx(1 / 3)
    assert t.service_level_of_answered == pytest.approx(1 / 2)
    assert t.asa_s == pytest.approx(20.0)
    assert t.abandon_rate == pytest.approx(0.5)
    assert t.max_wait_s == pytest.approx(40.0)


def test_empty_tally_has_no_figures_rather_than_zeroes() -> None:
    t = tally([])
    assert t.service_level is None
    assert t.asa_s is None
    assert t.abandon_rate is None


def test_passed_over_counts_only_callers_beyond_the_bound() -> None:
    old = cdr("old", 0, answered=200, ended=300)
    within = cdr("within", 50, answered=60, ended=100)  # arrived 50 s later: allowed
    beyond = cdr("beyond", 150, answered=160, ended=170)  # 150 s later, served first
    assert passed_over_beyond_bound([old, within], {"q": 100}) == 0
    assert passed_over_beyond_bound([old, within, beyond], {"q": 100}) == 1
    # An abandoned old caller who left before the newcomer was served was not passed over.
    gone = cdr("gone", 0, ended=120, outcome="abandoned")
    assert passed_over_beyond_bound([gone, beyond], {"q": 100}) == 0


def test_aht_is_talk_plus_wrap_up_of_answered_calls() -> None:
    a = replace(cdr("a", 0, answered=10, ended=110), wrap_up_s=20.0)
    b = replace(cdr("b", 0, answered=5, ended=55), wrap_up_s=10.0)
    gone = cdr("c", 0, ended=30, outcome="abandoned")
    assert tally([a, b, gone]).aht_s == pytest.approx((120 + 60) / 2)
    assert tally([gone]).aht_s is None


def test_a_call_can_be_judged_by_thresholds_other_than_the_tallys() -> None:
    t = Tally(sl_target_s=20, short_abandon_s=5)
    t.add(cdr("a", 0, answered=40, ended=50), sl_target_s=60)
    t.add(cdr("b", 0, ended=8, outcome="abandoned"), short_abandon_s=10)
    t.add(cdr("c", 0, answered=40, ended=50))  # the tally's own 20 s: late
    assert (t.answered_within_target, t.short_abandoned) == (1, 1)


def test_occupancy_counts_reserved_as_idle_and_leaves_not_ready_out() -> None:
    time = AgentTime()
    for state, seconds in [
        (AgentState.READY, 10.0),
        (AgentState.RESERVED, 5.0),
        (AgentState.TALKING, 60.0),
        (AgentState.WRAP_UP, 15.0),
        (AgentState.NOT_READY, 100.0),
        (AgentState.LOGGED_OUT, 1000.0),
    ]:
        time.add(state, seconds)
    assert (time.busy_s, time.idle_s, time.not_ready_s) == (75.0, 15.0, 100.0)
    assert time.staffed_s == 190.0
    assert time.occupancy == pytest.approx(75 / 90)
    assert AgentTime(not_ready_s=50.0).occupancy is None
