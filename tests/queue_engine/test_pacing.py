"""The dialer's pacing: modes, what it measures, the abandon controller, blending."""

from __future__ import annotations

import pytest

from queue_engine.pacing import (
    AbandonFigures,
    Capacity,
    DialMode,
    DialResult,
    Pacer,
    PacingSettings,
    agents_for_service_level,
    dialer_agents,
)

pytestmark = pytest.mark.dialer


def pacer(mode: DialMode = DialMode.PREDICTIVE, **kw: object) -> Pacer:
    return Pacer(PacingSettings.model_validate({"mode": mode, **kw}))


#: A long clean record: one more abandon keeps the rates far under the cap.
CLEAN = AbandonFigures(today_live=1000, rolling_live=20000)


def test_preview_never_dials_by_itself() -> None:
    assert pacer(DialMode.PREVIEW).decide(Capacity(ready=10)).dials == 0


def test_progressive_places_one_line_per_free_agent() -> None:
    p = pacer(DialMode.PROGRESSIVE)
    assert p.decide(Capacity(ready=5)).dials == 5
    # lines already ringing and answered calls waiting are already someone's
    assert p.decide(Capacity(ready=5, in_flight=2, waiting=1)).dials == 2
    assert p.decide(Capacity(ready=2, in_flight=4)).dials == 0


def test_power_places_a_fixed_ratio() -> None:
    p = pacer(DialMode.POWER, power_ratio=3.0)
    assert p.decide(Capacity(ready=2), CLEAN).dials == 6
    assert p.decide(Capacity(ready=2, in_flight=4), CLEAN).dials == 2


def test_max_lines_is_never_exceeded() -> None:
    p = pacer(DialMode.POWER, power_ratio=3.0, max_lines=4)
    assert p.decide(Capacity(ready=10, in_flight=1), CLEAN).dials == 3
    assert pacer(max_lines=1).decide(Capacity(ready=10), CLEAN).dials == 1


def test_predictive_dials_for_expected_answers_to_match_expected_free_agents() -> None:
    p = pacer(initial_gain=1.0, prior_contact_rate=0.25)
    d = p.decide(Capacity(ready=4), CLEAN)
    # 4 free agents, one person answers in four dials: 16 dials
    assert d.dials == 16
    assert d.expected_free == pytest.approx(4.0)
    # agents talking may free up before the answers come: more dials than for ready alone
    assert p.decide(Capacity(ready=4, talking=20), CLEAN).dials > 16
    # lines in flight will bring answers: fewer dials
    assert p.decide(Capacity(ready=4, in_flight=8), CLEAN).dials == 8


def test_abandons_rising_means_fewer_dials() -> None:
    calm, rough = pacer(), pacer()
    for _ in range(40):
        calm.record_live(abandoned=False)
        rough.record_live(abandoned=True)
    capacity = Capacity(ready=10, talking=30)
    assert rough.gain < calm.gain
    assert rough.decide(capacity, CLEAN).dials < calm.decide(capacity, CLEAN).dials


def test_the_controller_settles_where_abandons_hit_the_target() -> None:
    p = pacer(step=0.05, initial_gain=1.0, min_gain=0.05, max_gain=3.0)
    target = p.settings.target_abandon_rate
    assert target == pytest.approx(0.02)
    # exactly the target rate: 1 abandon in 50 live answers leaves the gain where it was
    start = p.gain
    for i in range(500):
        p.record_live(abandoned=i % 50 == 0)
    assert p.gain == pytest.approx(start, abs=1e-9)


def test_near_the_cap_the_gain_only_falls_and_at_the_cap_no_over_dialing() -> None:
    p = pacer(initial_gain=1.0, guard_min_live=30)
    near = AbandonFigures(
        today_live=2000, today_abandoned=52, rolling_live=2000, rolling_abandoned=52
    )
    d = p.decide(Capacity(ready=4, talking=20), near)
    assert d.guarded
    assert d.dials > 4
    before = p.gain
    p.record_live(abandoned=False)
    assert p.gain == before  # a connected call does not raise it while guarded
    over = AbandonFigures(
        today_live=100, today_abandoned=2, rolling_live=1000, rolling_abandoned=30
    )
    d = p.decide(Capacity(ready=4, talking=20, in_flight=1), over)
    assert d.dials == 3  # one more abandon would make 31/1001 > 3%: one line per Ready agent


def test_one_more_abandon_over_the_cap_means_no_over_dialing_in_any_mode() -> None:
    # Early in the day one abandon among a few live answers is a large share: the dialer
    # does not over-dial until one more abandon would keep today's rate under the cap.
    for mode in (DialMode.PREDICTIVE, DialMode.POWER):
        p = pacer(mode, power_ratio=3.0, initial_gain=1.0)
        for few in (AbandonFigures(), AbandonFigures(today_live=10, today_abandoned=5)):
            assert p.decide(Capacity(ready=4, talking=20), few).dials <= 4
        enough = AbandonFigures(today_live=200, rolling_live=5000, rolling_abandoned=10)
        assert p.decide(Capacity(ready=4, talking=20), enough).dials > 4


def test_contact_rate_is_the_prior_until_half_the_window_has_ended() -> None:
    p = pacer(window=100, prior_contact_rate=0.2, prior_weight=50)
    for _ in range(49):
        p.record_dial(DialResult.BUSY, 2.0)  # the quick ones end first
    assert p.contact_rate == 0.2
    for _ in range(51):
        p.record_dial(DialResult.HUMAN, 5.0)
    # 51 people in 100 dials, smoothed by the prior counted as 50 dials
    assert p.contact_rate == pytest.approx((51 + 10) / 150)
    assert p.machine_rate == 0.0


def test_a_line_ringing_longer_than_people_answer_is_not_counted_on() -> None:
    p = pacer(window=200)
    for i in range(200):
        if i % 5 == 0:
            p.record_dial(DialResult.HUMAN, 4.0 + i % 3)
        else:
            p.record_dial(DialResult.NO_ANSWER, 25.0)
    assert p.answer_chance(0.0) == pytest.approx(0.2)
    assert p.answer_chance(10.0) == 0.0
    assert p.mean_connect_s == pytest.approx(5.0, abs=0.1)
    young = p.expected_answers(Capacity(ready=0, in_flight=2, in_flight_ages=(1.0, 1.0)))
    old = p.expected_answers(Capacity(ready=0, in_flight=2, in_flight_ages=(12.0, 12.0)))
    assert young > old == 0.0


def test_short_calls_ending_first_do_not_drag_the_talk_time_down() -> None:
    p = pacer(prior_talk_s=120.0, prior_weight=50)
    for _ in range(5):
        p.record_handle(5.0, 10.0)
    assert p.mean_talk_s > 90.0


def test_settings_refuse_a_margin_above_the_cap() -> None:
    with pytest.raises(ValueError, match="safety_margin"):
        PacingSettings(abandon_cap=0.03, safety_margin=0.05)


# --- blending ------------------------------------------------------------------------


def test_agents_for_a_service_level_by_erlang_c() -> None:
    # the reference case (docs/acd.md §15): 600 calls/h, 180 s, 33 agents: SL20 = 0.648550
    assert agents_for_service_level(600, 180, 20, 0.6) == 33
    assert agents_for_service_level(600, 180, 20, 0.8) > 33
    assert agents_for_service_level(0, 180, 20, 0.8) == 0


def test_blended_agents_go_to_the_dialer_only_beyond_what_inbound_needs() -> None:
    # inbound needs 10: 6 busy on inbound + 1 inbound-only Ready -> 3 blended kept
    assert (
        dialer_agents(
            ready_campaign_only=2,
            ready_blended=5,
            inbound_busy=6,
            ready_inbound_only=1,
            inbound_needed=10,
        )
        == 4
    )
    # inbound covered by its own: every blended Ready agent may dial
    assert (
        dialer_agents(
            ready_campaign_only=0,
            ready_blended=5,
            inbound_busy=12,
            ready_inbound_only=0,
            inbound_needed=10,
        )
        == 5
    )
    # inbound calls waiting: no blended agent for the dialer
    assert (
        dialer_agents(
            ready_campaign_only=1,
            ready_blended=5,
            inbound_busy=12,
            ready_inbound_only=0,
            inbound_needed=10,
            inbound_waiting=1,
        )
        == 1
    )
