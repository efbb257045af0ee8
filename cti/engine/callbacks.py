"""Scheduled callbacks: a call the engine places later, at a customer's local time or
as soon as possible, ranked like an inbound call of the same customer (from the desk's
ScheduleCallback and the web endpoint, :mod:`cti.engine.web_callbacks`)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti.config import Config
from cti.errors import CtiError
from cti.models import CallerInfo
from queue_engine import inputs as ri
from queue_engine.router import Router


class CallbackScheduler:
    """Turns a callback request into the router's CallbackScheduled input."""

    def __init__(
        self,
        router: Router,
        route: Callable[[ri.AnyInput], None],
        now: Callable[[], float],
        config: Callable[[], Config],
        identify: Callable[[str], Awaitable[CallerInfo]],
    ) -> None:
        self._router = router
        self._route = route
        self._now = now
        self._config = config
        self._identify = identify

    async def schedule(
        self,
        number: str,
        local_time: str = "",
        time_zone: str = "",
        queue: str = "",
        *,
        for_agent: str = "",
        max_days_ahead: float | None = None,
        max_s_behind: float | None = None,
    ) -> str:
        """See :meth:`cti.engine.service.EngineService.schedule_callback`."""
        caller = await self._identify(number)
        if caller.e164 is None:
            raise CtiError(f"cannot call back {number!r}: not a phone number")
        engine = self._config().engine
        target = queue or engine.default_queue
        if for_agent and self._router.has_agent(for_agent):
            theirs = self._router.agent_queues(for_agent)
            target = target if target in theirs else theirs[0]
        now = self._now()
        due = now
        if local_time:
            zone = time_zone or (caller.customer.time_zone if caller.customer else "")
            due = local_to_epoch(local_time, zone or engine.time_zone)
        days = engine.callback_max_days_ahead if max_days_ahead is None else max_days_ahead
        if due > now + days * 86400.0:
            # A far date would keep the centre from ever emptying (the journal never cut).
            raise CtiError(
                f"callback time {local_time!r} is more than {days:g} days ahead; "
                "expected a time within that horizon"
            )
        if max_s_behind is not None and due < now - max_s_behind:
            raise CtiError(f"callback time {local_time!r} is in the past; expected a later time")
        # Unguessable: an id is all a web client needs to ask about its callback.
        call_id = f"cb-{secrets.token_urlsafe(16)}"
        self._route(
            ri.CallbackScheduled(
                call_id=call_id,
                queue=target,
                caller=caller,
                due=due,
                number=caller.e164,
                for_agent=for_agent,
            )
        )
        return call_id


def local_to_epoch(local_time: str, zone: str) -> float:
    """``2026-11-23T10:30`` in ``Asia/Shanghai`` -> epoch seconds (engine time)."""
    try:
        naive = datetime.fromisoformat(local_time)
    except ValueError:
        raise CtiError(
            f"callback time {local_time!r} is not ISO 8601 (expected e.g. 2026-11-23T10:30)"
        ) from None
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CtiError(f"unknown time zone {zone!r} (expected e.g. Asia/Shanghai)") from None
    if naive.tzinfo is not None:
        return naive.timestamp()
    return naive.replace(tzinfo=tz).timestamp()
