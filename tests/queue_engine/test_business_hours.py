"""Opening hours: open or closed at a local moment, holidays, time zones, next opening."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.call_flows import Hours
from queue_engine.business_hours import BusinessHours, is_open, next_opening

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = Hours.model_validate(
    {
        "queues": ["sales"],
        "week": {
            "mon": "09:00-12:00,13:00-18:00",
            "tue": "09:00-12:00,13:00-18:00",
            "sat": "22:00-24:00",
            "sun": "00:00-02:00",
        },
        "holidays": [date(2026, 1, 6)],  # a Tuesday
        "closed": "voicemail",
    }
)


def _at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """2026-01-(day) at the given local time in Shanghai (the 5th is a Monday)."""
    return datetime(2026, 1, day, hour, minute, second, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (_at(5, 8, 59, 59), False),
        (_at(5, 9), True),
        (_at(5, 11, 59, 59), True),
        (_at(5, 12), False),  # ends are exclusive
        (_at(5, 12, 30), False),  # lunch
        (_at(5, 13), True),
        (_at(5, 17, 59), True),
        (_at(5, 18), False),
        (_at(6, 10), False),  # holiday
        (_at(7, 10), False),  # Wednesday: not listed
        (_at(10, 23, 59, 59), True),  # Saturday night until midnight...
        (_at(11, 1, 30), True),  # ...and on into Sunday
        (_at(11, 2), False),
        (_at(12, 9, 30), True),  # next Monday
    ],
)
def test_open_or_closed_at_a_local_moment(moment: datetime, expected: bool) -> None:
    assert is_open(HOURS, moment) is expected


def test_next_opening_skips_lunch_holidays_and_closed_days() -> None:
    assert next_opening(HOURS, _at(5, 10)) == _at(5, 10)  # open: now
    assert next_opening(HOURS, _at(5, 12, 15)) == _at(5, 13)
    assert next_opening(HOURS, _at(5, 19)) == _at(10, 22)  # Tuesday is a holiday
    assert next_opening(HOURS, _at(11, 3)) == _at(12, 9)
    never = Hours(queues=("q",))
    assert next_opening(never, _at(5, 10)) is None


def test_wall_clock_is_read_in_the_centers_time_zone() -> None:
    # 01:30 UTC on Monday 5 January is 09:30 in Shanghai and 01:30 in London.
    wall = datetime(2026, 1, 5, 1, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    shanghai = BusinessHours([HOURS], "Asia/Shanghai")
    london = BusinessHours([HOURS], "Europe/London")
    assert shanghai.is_open("sales", wall)
    assert shanghai.closed("sales", wall) is None
    assert not london.is_open("sales", wall)
    assert london.closed("sales", wall) is HOURS
    assert london.next_opening("sales", wall) == datetime(2026, 1, 5, 9, tzinfo=london.zone)
    # A queue in no [[hours]] is always open.
    assert london.is_open("general", wall)
    assert london.closed("general", wall) is None
    assert london.rule("general") is None


def test_summer_time_is_the_tz_databases() -> None:
    # London's clocks go forward at 01:00 UTC on 29 March 2026: 09:00 local is 08:00 UTC.
    hours = Hours.model_validate({"queues": ["q"], "week": {"mon": "09:00-10:00"}})
    london = BusinessHours([hours], "Europe/London")
    monday = datetime(2026, 3, 30, 8, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    assert london.is_open("q", monday)
    assert not london.is_open("q", monday - 3600)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)))
def test_next_opening_is_open_and_nothing_opens_before_it(naive: datetime) -> None:
    moment = naive.replace(tzinfo=SHANGHAI)
    opens = next_opening(HOURS, moment)
    assert opens is not None
    assert opens >= moment
    assert is_open(HOURS, opens)
    # Closed from now until it opens (checked every 30 minutes of the way).
    step = moment
    while step + timedelta(minutes=30) < opens:
        step += timedelta(minutes=30)
        assert not is_open(HOURS, step)
