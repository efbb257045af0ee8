"""The campaign core: calling hours in the lead's zone, do-not-call, retries,
callbacks, lists, and abandon accounting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from queue_engine.campaign import (
    CallingHours,
    Campaign,
    CampaignError,
    CampaignRules,
    Lead,
    LeadState,
    Outcome,
    in_calling_hours,
    next_calling_time,
)

pytestmark = pytest.mark.dialer

NY = ("America/New_York",)
#: Area code 605 (South Dakota) spans Mountain and Central time.
SOUTH_DAKOTA = ("America/Denver", "America/Chicago")
HOURS = CallingHours()


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def lead(
    lead_id: int = 1, number: str = "+12125550101", zones: tuple[str, ...] = NY, **kw: object
) -> Lead:
    return Lead(lead_id, number, zones, **kw)  # type: ignore[arg-type]


# --- calling hours -----------------------------------------------------------------


def test_calling_hours_are_eight_to_nine_in_the_leads_own_zone() -> None:
    # 2026-01-15: New York is UTC-5
    assert not in_calling_hours(NY, utc("2026-01-15T12:59"), HOURS)  # 7:59
    assert in_calling_hours(NY, utc("2026-01-15T13:00"), HOURS)  # 8:00
    assert in_calling_hours(NY, utc("2026-01-16T01:59"), HOURS)  # 20:59
    assert not in_calling_hours(NY, utc("2026-01-16T02:00"), HOURS)  # 21:00
    assert not in_calling_hours((), utc("2026-01-15T15:00"), HOURS)  # no zone: never


def test_a_region_split_across_zones_allows_only_hours_common_to_all() -> None:
    # 2026-01-15 14:30 UTC: 8:30 in Chicago, 7:30 in Denver
    assert in_calling_hours(("America/Chicago",), utc("2026-01-15T14:30"), HOURS)
    assert not in_calling_hours(SOUTH_DAKOTA, utc("2026-01-15T14:30"), HOURS)
    # 15:00 UTC: 8:00 in Denver, 9:00 in Chicago: both allow it
    assert in_calling_hours(SOUTH_DAKOTA, utc("2026-01-15T15:00"), HOURS)
    # 02:30 UTC next day: 20:30 Chicago allows; 19:30 Denver too
    assert in_calling_hours(SOUTH_DAKOTA, utc("2026-01-16T02:30"), HOURS)
    # 03:00 UTC: 21:00 in Chicago: closed, though Denver is at 20:00
    assert not in_calling_hours(SOUTH_DAKOTA, utc("2026-01-16T03:00"), HOURS)
    assert next_calling_time(SOUTH_DAKOTA, utc("2026-01-15T14:30"), HOURS) == utc(
        "2026-01-15T15:00"
    )


def test_a_lead_with_its_own_zone_follows_that_zone_not_the_regions() -> None:
    c = Campaign(
        "c",
        leads=[
            lead(1, "+16055550101", ("America/Chicago",)),
            lead(2, "+16055550102", SOUTH_DAKOTA),
        ],
    )
    dials = c.next_dials(utc("2026-01-15T14:30"), 10)  # 8:30 Chicago, 7:30 Denver
    assert [d.lead.lead_id for d in dials] == [1]
    assert c.refusals.outside_hours == 1
    assert c.leads[2].next_at == utc("2026-01-15T15:00")


def test_spring_forward_day_opens_at_eight_local_on_the_new_offset() -> None:
    # 2026-03-08: New York moves from UTC-5 to UTC-4 at 2:00
    saturday_night = utc("2026-03-08T02:30")  # 21:30 EST on the 7th
    opening = next_calling_time(NY, saturday_night, HOURS)
    assert opening == utc("2026-03-08T12:00")  # 8:00 EDT, not 13:00 UTC
    assert not in_calling_hours(NY, utc("2026-03-08T11:59"), HOURS)
    assert in_calling_hours(NY, utc("2026-03-09T00:59"), HOURS)  # 20:59 EDT
    assert not in_calling_hours(NY, utc("2026-03-09T01:00"), HOURS)  # 21:00 EDT


def test_fall_back_day_opens_at_eight_local_on_the_new_offset() -> None:
    # 2026-11-01: New York moves from UTC-4 back to UTC-5 at 2:00
    opening = next_calling_time(NY, utc("2026-11-01T05:00"), HOURS)  # 1:00 EDT
    assert opening == utc("2026-11-01T13:00")  # 8:00 EST
    assert not in_calling_hours(NY, utc("2026-11-01T12:30"), HOURS)  # 7:30 EST
    assert in_calling_hours(NY, utc("2026-11-02T01:59"), HOURS)  # 20:59 EST
    assert not in_calling_hours(NY, utc("2026-11-02T02:00"), HOURS)


def test_a_lead_outside_hours_waits_for_its_window_and_is_never_dialled_early() -> None:
    c = Campaign("c", leads=[lead()])
    night = utc("2026-01-15T03:00")  # 22:00 in New York
    assert c.next_dials(night, 5) == []
    assert c.leads[1].next_at == utc("2026-01-15T13:00")
    assert c.next_dials(utc("2026-01-15T12:59"), 5) == []
    assert [d.lead.lead_id for d in c.next_dials(utc("2026-01-15T13:00"), 5)] == [1]


def test_zones_without_common_hours_are_never_dialled() -> None:
    rules = CampaignRules(hours=CallingHours(start="09:00", end="17:00"))
    c = Campaign("c", rules, leads=[lead(zones=("Asia/Tokyo", "America/New_York"))])
    for hour in range(24):
        assert c.next_dials(utc(f"2026-01-15T{hour:02d}:00"), 5) == []
    assert c.leads[1].state is LeadState.NO_WINDOW


def test_unknown_zone_is_refused_with_its_name() -> None:
    with pytest.raises(CampaignError, match="Mars/Olympus"):
        Campaign("c", leads=[lead(zones=("Mars/Olympus",))])


# --- do not call ---------------------------------------------------------------------

NOON_NY = utc("2026-01-15T17:00")


def test_global_and_campaign_do_not_call_lists_are_checked_before_every_dial() -> None:
    global_dnc = {"+12125550102"}
    c = Campaign(
        "c",
        leads=[lead(1, "+12125550101"), lead(2, "+12125550102"), lead(3, "+12125550103")],
        global_dnc=global_dnc,
        campaign_dnc=["+12125550103"],
    )
    assert [d.lead.lead_id for d in c.next_dials(NOON_NY, 10)] == [1]
    assert c.leads[2].state is LeadState.DO_NOT_CALL
    assert c.leads[3].state is LeadState.DO_NOT_CALL
    assert c.refusals.do_not_call == 2


def test_a_number_added_to_the_list_after_a_retry_was_set_is_not_dialled() -> None:
    global_dnc: set[str] = set()
    c = Campaign("c", leads=[lead()], global_dnc=global_dnc)
    assert len(c.next_dials(NOON_NY, 1)) == 1
    c.outcome(1, Outcome.BUSY, NOON_NY)
    global_dnc.add("+12125550101")  # the shared list is live
    assert c.next_dials(NOON_NY + 3600, 1) == []
    assert c.leads[1].state is LeadState.DO_NOT_CALL
    assert c.may_dial(c.leads[1], NOON_NY) == "on a do-not-call list"


def test_a_do_not_call_disposition_stops_every_lead_with_that_number() -> None:
    c = Campaign("c", leads=[lead(1, "+12125550101"), lead(2, "+12125550101", list_id=2)])
    (first,) = c.next_dials(NOON_NY, 1)
    c.outcome(first.lead.lead_id, Outcome.CONNECTED, NOON_NY)
    c.disposition(first.lead.lead_id, "Do Not Call", NOON_NY)
    assert c.next_dials(NOON_NY + 60, 5) == []
    assert "+12125550101" in c.dnc


# --- retries and callbacks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "delay"),
    [
        (Outcome.BUSY, 900.0),
        (Outcome.NO_ANSWER, 3600.0),
        (Outcome.MACHINE, 14400.0),
        (Outcome.ABANDONED, 3600.0),
    ],
)
def test_each_outcome_retries_after_its_own_delay(outcome: Outcome, delay: float) -> None:
    c = Campaign("c", leads=[lead()])
    c.next_dials(NOON_NY, 1)
    c.outcome(1, outcome, NOON_NY)
    assert c.leads[1].state is LeadState.PENDING
    assert c.next_dials(NOON_NY + delay - 1, 1) == []
    (again,) = c.next_dials(NOON_NY + delay, 1)
    assert again.attempt == 2


def test_attempts_run_out_and_a_recycle_gives_new_ones() -> None:
    rules = CampaignRules(max_attempts=2, retry_s={Outcome.NO_ANSWER: 60.0})
    c = Campaign("c", rules, leads=[lead(list_id=7)])
    t = NOON_NY
    for _ in range(2):
        (d,) = c.next_dials(t, 1)
        c.outcome(d.lead.lead_id, Outcome.NO_ANSWER, t)
        t += 60
    assert c.leads[1].state is LeadState.EXHAUSTED
    assert c.next_dials(t, 1) == []
    assert c.recycle_list(7, t) == 1
    (d,) = c.next_dials(t, 1)
    assert d.attempt == 1


def test_an_outcome_without_a_retry_delay_ends_the_lead() -> None:
    c = Campaign("c", CampaignRules(retry_s={}), leads=[lead()])
    c.next_dials(NOON_NY, 1)
    c.outcome(1, Outcome.MACHINE, NOON_NY)
    assert c.leads[1].state is LeadState.EXHAUSTED


def test_a_failed_number_is_invalid_and_never_tried_again() -> None:
    c = Campaign("c", leads=[lead()])
    c.next_dials(NOON_NY, 1)
    c.outcome(1, Outcome.FAILED, NOON_NY)
    assert c.leads[1].state is LeadState.INVALID
    assert c.next_dials(NOON_NY + 86400, 1) == []


def test_a_callback_disposition_dials_again_at_its_time_without_using_an_attempt() -> None:
    c = Campaign("c", CampaignRules(max_attempts=1), leads=[lead()])
    c.next_dials(NOON_NY, 1)
    c.outcome(1, Outcome.CONNECTED, NOON_NY)
    c.disposition(1, "callback", NOON_NY, callback_at=NOON_NY + 7200)
    assert c.next_dials(NOON_NY + 7199, 1) == []
    (d,) = c.next_dials(NOON_NY + 7200, 1)
    assert d.callback
    assert d.attempt == 1
    c.outcome(1, Outcome.CONNECTED, NOON_NY + 7210)
    c.disposition(1, "sale", NOON_NY + 7300)
    assert c.leads[1].state is LeadState.COMPLETED


def test_a_callback_set_for_the_night_waits_for_calling_hours() -> None:
    c = Campaign("c", leads=[lead()])
    c.next_dials(NOON_NY, 1)
    c.outcome(1, Outcome.CONNECTED, NOON_NY)
    c.disposition(1, "callback", NOON_NY, callback_at=utc("2026-01-16T04:00"))  # 23:00 NY
    assert c.next_dials(utc("2026-01-16T04:00"), 1) == []
    assert len(c.next_dials(utc("2026-01-16T13:00"), 1)) == 1


def test_an_outcome_for_a_lead_not_being_dialled_is_refused() -> None:
    c = Campaign("c", leads=[lead()])
    with pytest.raises(CampaignError, match="not being dialled"):
        c.outcome(1, Outcome.BUSY, NOON_NY)
    with pytest.raises(CampaignError, match="no lead 9"):
        c.disposition(9, "sale", NOON_NY)


def test_a_paused_list_is_not_dialled_until_resumed() -> None:
    c = Campaign("c", leads=[lead(1, list_id=1), lead(2, "+12125550102", list_id=2)])
    c.pause_list(2)
    assert [d.lead.lead_id for d in c.next_dials(NOON_NY, 5)] == [1]
    assert c.next_dials(NOON_NY + 1, 5) == []
    c.resume_list(2)
    assert [d.lead.lead_id for d in c.next_dials(NOON_NY + 2, 5)] == [2]


def test_a_lead_left_dialling_by_a_restart_is_tried_again() -> None:
    c = Campaign("c", leads=[lead(state=LeadState.DIALLING, attempts=1)])
    (d,) = c.next_dials(NOON_NY, 1)
    assert d.attempt == 2


# --- abandon accounting --------------------------------------------------------------


def test_abandons_are_counted_per_day_and_over_thirty_days() -> None:
    c = Campaign("c", CampaignRules(day_zone="America/New_York"))
    c.restore_day(datetime(2026, 1, 1).date(), 1000, 40)  # 45 days before: dropped
    c.restore_day(datetime(2026, 1, 20).date(), 900, 20)
    numbers = [f"+1212555{i:04d}" for i in range(1, 101)]
    c.add_leads(lead(i, n) for i, n in enumerate(numbers, start=1))
    t = utc("2026-02-15T17:00")
    for d in c.next_dials(t, 100):
        c.outcome(
            d.lead.lead_id, Outcome.ABANDONED if d.lead.lead_id <= 2 else Outcome.CONNECTED, t
        )
    f = c.abandon_figures(t)
    assert (f.today_live, f.today_abandoned) == (100, 2)
    assert f.today_rate == pytest.approx(0.02)
    assert (f.rolling_live, f.rolling_abandoned) == (1000, 22)
    # machines and no-answers are not live answers
    assert f.rolling_rate == pytest.approx(0.022)
    # the day turns at midnight New York time, not UTC
    assert c.abandon_figures(utc("2026-02-16T04:59")).today_live == 100
    assert c.abandon_figures(utc("2026-02-16T05:00")).today_live == 0


def test_rules_keep_the_lawful_minimums() -> None:
    with pytest.raises(ValueError, match="ring_timeout_s"):
        CampaignRules(ring_timeout_s=10.0)
    with pytest.raises(ValueError, match="answer_window_s"):
        CampaignRules(answer_window_s=3.0)
    with pytest.raises(ValueError, match="before end"):
        CallingHours(start="21:00", end="08:00")
