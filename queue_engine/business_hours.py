"""Opening hours of queues (``[[hours]]``): open or closed at a moment, and when a closed
queue opens next. Pure: wall-clock seconds (or a local datetime) in, answers out; the
center's time zone comes from ``[caller] time_zone`` and is applied with zoneinfo, so
summer time and its gaps are the tz database's.

A queue in no ``[[hours]]`` table is always open. A day the table does not list is
closed, and so is every listed holiday (all day, local date).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from cti.call_flows import DAYS, Hours

#: How far ahead :func:`next_opening` looks (a year of holidays and a week besides).
SEARCH_DAYS = 366 + 7


def is_open(hours: Hours, local: datetime) -> bool:
    """Whether ``hours`` are open at ``local`` (a datetime in the center's time zone)."""
    if local.date() in hours.holidays:
        return False
    minute = local.hour * 60 + local.minute + local.second / 60
    ranges = hours.week.get(DAYS[local.weekday()], ())
    return any(start <= minute < end for start, end in ranges)


def next_opening(hours: Hours, local: datetime) -> datetime | None:
    """``local`` itself if open, else the start of the next open range (in ``local``'s
    time zone); None if none within :data:`SEARCH_DAYS` (a queue never open)."""
    if is_open(hours, local):
        return local
    for ahead in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=ahead)
        if day in hours.holidays:
            continue
        for start, _end in hours.week.get(DAYS[day.weekday()], ()):
            begins = datetime.combine(day, time(start // 60, start % 60), tzinfo=local.tzinfo)
            if begins > local:
                return begins
    return None


class BusinessHours:
    """Every queue's ``[[hours]]``, read in the center's time zone."""

    def __init__(self, hours: Sequence[Hours], time_zone: str) -> None:
        self._rules = {queue: h for h in hours for queue in h.queues}
        self.zone = ZoneInfo(time_zone)

    def local(self, wall: float) -> datetime:
        """Wall-clock seconds (Unix time) as the center's local time."""
        return datetime.fromtimestamp(wall, self.zone)

    def rule(self, queue: str) -> Hours | None:
        return self._rules.get(queue)

    def is_open(self, queue: str, wall: float) -> bool:
        rule = self._rules.get(queue)
        return rule is None or is_open(rule, self.local(wall))

    def closed(self, queue: str, wall: float) -> Hours | None:
        """The rule that keeps ``queue`` closed at ``wall`` (what to do: its ``closed``
        and ``closed_prompt``), or None while it is open."""
        rule = self._rules.get(queue)
        return rule if rule is not None and not is_open(rule, self.local(wall)) else None

    def next_opening(self, queue: str, wall: float) -> datetime | None:
        rule = self._rules.get(queue)
        now = self.local(wall)
        return now if rule is None else next_opening(rule, now)
