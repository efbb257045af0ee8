"""The dialer on virtual time: predictive beats progressive within the abandon cap."""

from __future__ import annotations

import pytest

from queue_engine.pacing import DialMode
from simulators.dialer_sim import DialerResult, DialerScenario, run_campaign_day

pytestmark = pytest.mark.dialer

#: The issue's campaign: 50 agents, 20% contact rate, 10% answering machines.
DAY = DialerScenario(agents=50, contact_rate=0.20, machine_rate=0.10, duration_s=3 * 3600.0)


@pytest.fixture(scope="module")
def days() -> dict[DialMode, DialerResult]:
    return {
        mode: run_campaign_day(DialerScenario(**{**DAY.__dict__, "mode": mode}))
        for mode in (DialMode.PROGRESSIVE, DialMode.PREDICTIVE)
    }


def test_predictive_keeps_agents_talking_more_than_progressive(
    days: dict[DialMode, DialerResult],
) -> None:
    predictive, progressive = days[DialMode.PREDICTIVE], days[DialMode.PROGRESSIVE]
    assert predictive.talk_occupancy > progressive.talk_occupancy + 0.1
    assert predictive.live > progressive.live


def test_predictive_stays_at_or_under_the_abandon_cap(days: dict[DialMode, DialerResult]) -> None:
    predictive = days[DialMode.PREDICTIVE]
    assert predictive.live > 1000  # enough answers for the rate to mean something
    assert predictive.abandon_rate <= 0.03
    assert days[DialMode.PROGRESSIVE].abandon_rate <= 0.03


def test_no_dial_outside_calling_hours_or_to_a_do_not_call_number(
    days: dict[DialMode, DialerResult],
) -> None:
    for result in days.values():
        assert result.dials_outside_hours == 0
        assert result.dials_on_dnc == 0
    # the day starts at 9:00 New York, 6:00 Los Angeles: LA leads waited for 8:00
    predictive = days[DialMode.PREDICTIVE]
    assert predictive.dials > 0


def test_the_measured_rates_are_those_of_the_far_ends(days: dict[DialMode, DialerResult]) -> None:
    r = days[DialMode.PREDICTIVE]
    assert r.live / r.dials == pytest.approx(0.20, abs=0.02)
    assert r.machines / r.dials == pytest.approx(0.10, abs=0.02)


def test_blended_agents_keep_the_inbound_service_level_and_still_dial() -> None:
    blended = run_campaign_day(
        DialerScenario(
            mode=DialMode.PREDICTIVE,
            agents=50,
            duration_s=2 * 3600.0,
            inbound_rate_per_hour=600.0,
            inbound_sl_goal=0.8,
            seed=5,
        )
    )
    assert blended.inbound_offered > 1000
    assert blended.inbound_service_level is not None
    assert blended.inbound_service_level >= 0.8
    assert blended.live > 100  # the campaign used the rest
    assert blended.abandon_rate <= 0.03


def test_inbound_that_needs_everyone_leaves_the_dialer_nothing() -> None:
    busy = run_campaign_day(
        DialerScenario(agents=20, duration_s=1800.0, inbound_rate_per_hour=600.0, seed=2)
    )
    assert busy.dials == 0
