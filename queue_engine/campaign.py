"""An outbound campaign's leads and rules. Sans-I/O.

A :class:`Campaign` knows its leads, when each may be dialled next, and the rules every
dial keeps. It reads no clock: each method takes ``now_wall`` (epoch seconds; calling
hours are a matter of the lead's wall clock). Its shell places the dials it hands out
and reports their outcomes back.

**Rules, by construction** (docs/dialer.md). :meth:`Campaign.next_dials` is the only way
to get a lead to dial, and before handing one out it checks, every time:

* *do not call*: the number is on neither the global list nor the campaign's;
* *calling hours*: it is within the hours (default 8:00-21:00) in the lead's local
  time. A lead has its own zone when known; when only its region is known and the
  region spans several zones, it may be called only when it is within hours in *every*
  one of them (the most restrictive reading). Local time comes from :mod:`zoneinfo`,
  so the days the clocks change are right;
* the lead's list is not paused, and the lead has attempts left.

In preview mode the agent picks the lead: :meth:`Campaign.dial_now` makes the same
checks at the moment of the dial.

A lead outside its hours waits for its next window (:func:`next_calling_time`).

**Attempts and retries.** Each outcome (busy, no answer, machine, abandoned) sets the
lead's next attempt after its own delay, until ``max_attempts``; a person who spoke to
an agent ends the lead unless the disposition asks for a callback (at a time, which
then does not count against the attempts) or puts the number on the do-not-call list.

**Abandon accounting.** A live answer (a person answered) with no agent on the call
within ``answer_window_s`` (2 s) is abandoned. The campaign counts live answers and
abandons per day (in the campaign's own zone) and over a rolling 30 days, for the
pacing guard and the compliance report.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cti.errors import CtiError
from queue_engine.pacing import AbandonFigures, DialResult

#: Days the rolling abandon rate looks back over (US FTC/FCC).
ROLLING_DAYS = 30


class CampaignError(CtiError):
    """A campaign was given bad data or asked for something its state does not allow."""


class Outcome(StrEnum):
    """How one attempt ended."""

    CONNECTED = "connected"
    """A person answered and an agent was on the call within the answer window."""
    ABANDONED = "abandoned"
    """A person answered and no agent was on the call within the answer window."""
    MACHINE = "machine"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    """The number could not be reached."""

    @classmethod
    def of(cls, result: DialResult) -> Outcome:
        """The attempt outcome of a line result that never reached an agent."""
        return {
            DialResult.MACHINE: cls.MACHINE,
            DialResult.BUSY: cls.BUSY,
            DialResult.NO_ANSWER: cls.NO_ANSWER,
            DialResult.FAILED: cls.FAILED,
        }[result]


class LeadState(StrEnum):
    PENDING = "pending"
    """Waiting for its next attempt (at ``next_at``)."""
    DIALLING = "dialling"
    """An attempt is under way."""
    COMPLETED = "completed"
    """Spoke to an agent; nothing more to do."""
    EXHAUSTED = "exhausted"
    """No attempts left (a list recycle gives it more)."""
    DO_NOT_CALL = "do_not_call"
    INVALID = "invalid"
    """The number could not be reached."""
    NO_WINDOW = "no_window"
    """Its zones share no calling hours: it can never be called lawfully."""


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like 08:00") from None


class CallingHours(BaseModel):
    """When leads may be called, in their local time: ``start`` <= t < ``end``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: str = "08:00"
    end: str = "21:00"

    @field_validator("start", "end")
    @classmethod
    def _valid(cls, v: str) -> str:
        _clock(v)
        return v

    @model_validator(mode="after")
    def _ordered(self) -> CallingHours:
        if _clock(self.start) >= _clock(self.end):
            raise ValueError(f"calling hours start {self.start} must be before end {self.end}")
        return self

    @property
    def start_time(self) -> time:
        return _clock(self.start)

    @property
    def end_time(self) -> time:
        return _clock(self.end)


def _default_retries() -> dict[Outcome, float]:
    return {
        Outcome.BUSY: 900.0,
        Outcome.NO_ANSWER: 3600.0,
        Outcome.MACHINE: 4 * 3600.0,
        Outcome.ABANDONED: 3600.0,
    }


class CampaignRules(BaseModel):
    """A campaign's rules (all have lawful defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hours: CallingHours = CallingHours()
    max_attempts: int = Field(5, ge=1)
    retry_s: dict[Outcome, float] = Field(default_factory=_default_retries)
    """Delay before the next attempt after each outcome; an outcome not named ends the lead."""
    ring_timeout_s: float = Field(25.0, ge=15.0, description="ring at least 15 s")
    answer_window_s: float = Field(2.0, gt=0.0, le=2.0, description="agent on the call within")
    abandon_cap: float = Field(0.03, gt=0.0, lt=1.0)
    day_zone: str = "UTC"
    """The zone the campaign's days are counted in (abandon rate per day)."""
    callback_dispositions: tuple[str, ...] = ("callback",)
    do_not_call_dispositions: tuple[str, ...] = ("do not call", "do_not_call", "dnc")
    retry_dispositions: tuple[str, ...] = ("retry", "no decision")
    """Dispositions after which the lead gets another attempt later (as if no answer)."""

    @field_validator("day_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone_info(v)
        return v

    @field_validator("retry_s")
    @classmethod
    def _delays(cls, v: dict[Outcome, float]) -> dict[Outcome, float]:
        for outcome, delay in v.items():
            if delay < 0:
                raise ValueError(f"retry delay for {outcome.value} must be >= 0, got {delay}")
        return v


def zone_info(name: str) -> ZoneInfo:
    """The IANA zone ``name``; :class:`CampaignError` naming it if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CampaignError(f"unknown time zone {name!r} (expected e.g. America/Chicago)") from None


def in_calling_hours(zones: Sequence[str], now_wall: float, hours: CallingHours) -> bool:
    """Within ``hours`` in every one of ``zones`` at ``now_wall``.

    One zone: the lead's own. Several: its region spans them and nobody knows which is
    the lead's, so every one must allow the call.
    """
    if not zones:
        return False
    start, end = hours.start_time, hours.end_time
    for name in zones:
        local = datetime.fromtimestamp(now_wall, zone_info(name)).time()
        if not start <= local < end:
            return False
    return True


def next_calling_time(zones: Sequence[str], now_wall: float, hours: CallingHours) -> float | None:
    """The first moment at or after ``now_wall`` within ``hours`` in all ``zones``.

    None if they share no calling hours in the next days. Windows open at one of the
    zones' own start times, so those are the only candidates; each is computed from
    its local date, so a day of 23 or 25 hours (a change of the clocks) opens at the
    right instant.
    """
    if in_calling_hours(zones, now_wall, hours):
        return now_wall
    candidates: set[float] = set()
    for name in zones:
        zone = zone_info(name)
        today = datetime.fromtimestamp(now_wall, zone).date()
        for days in range(3):
            day = today + timedelta(days=days)
            opening = datetime.combine(day, hours.start_time, tzinfo=zone).timestamp()
            if opening > now_wall:
                candidates.add(opening)
    for moment in sorted(candidates):
        if in_calling_hours(zones, moment, hours):
            return moment
    return None


@dataclass(slots=True)
class Lead:
    """One number to call, as the campaign tracks it."""

    lead_id: int
    number: str
    """E.164."""
    zones: tuple[str, ...]
    """The lead's own zone, or every zone of its region when its own is not known."""
    name: str = ""
    list_id: int = 0
    customer_id: int | None = None
    state: LeadState = LeadState.PENDING
    attempts: int = 0
    next_at: float = 0.0
    """Wall time of the next attempt."""
    last_outcome: str = ""
    callback_at: float | None = None
    fields: dict[str, str] = field(default_factory=dict)
    version: int = 0


@dataclass(frozen=True, slots=True)
class Dial:
    """A lead handed out to dial now (attempt number ``attempt``, counting from 1)."""

    lead: Lead
    attempt: int
    at: float
    callback: bool = False


@dataclass(slots=True)
class _Day:
    live: int = 0
    abandoned: int = 0


@dataclass(slots=True)
class Refusals:
    """Leads :meth:`Campaign.next_dials` held back, and why (never dialled)."""

    do_not_call: int = 0
    outside_hours: int = 0
    no_window: int = 0
    paused_list: int = 0


class Campaign:
    """A campaign's leads and rules (see the module docstring)."""

    def __init__(
        self,
        name: str,
        rules: CampaignRules | None = None,
        *,
        leads: Iterable[Lead] = (),
        global_dnc: Container[str] = frozenset(),
        campaign_dnc: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.rules = rules or CampaignRules()
        self.global_dnc = global_dnc
        """The global do-not-call list: any container of E.164 numbers (shared, live)."""
        self.dnc: set[str] = set(campaign_dnc)
        """The campaign's own do-not-call list."""
        self.leads: dict[int, Lead] = {}
        self.paused_lists: set[int] = set()
        self.refusals = Refusals()
        self._due: list[tuple[float, int, int, int]] = []
        """Heap of (next_at, seq, lead_id, version); entries of older versions are stale."""
        self._parked: dict[int, list[int]] = {}
        """Paused list -> leads found due while it was paused."""
        self._seq = itertools.count()
        self._days: dict[date, _Day] = {}
        self._day_zone = zone_info(self.rules.day_zone)
        self.in_flight = 0
        self.add_leads(leads)

    # --- leads ---------------------------------------------------------------------

    def add_leads(self, leads: Iterable[Lead]) -> int:
        """Add leads (a new list, or leads loaded back from the store)."""
        n = 0
        for lead in leads:
            if lead.lead_id in self.leads:
                raise CampaignError(f"campaign {self.name!r}: lead {lead.lead_id} added twice")
            for zone in lead.zones:
                zone_info(zone)
            if lead.state is LeadState.DIALLING:  # a dial lost with a restart: try again
                lead.state = LeadState.PENDING
            self.leads[lead.lead_id] = lead
            if lead.state is LeadState.PENDING:
                self._schedule(lead, lead.next_at)
            n += 1
        return n

    def pause_list(self, list_id: int) -> None:
        self.paused_lists.add(list_id)

    def resume_list(self, list_id: int) -> None:
        self.paused_lists.discard(list_id)
        for lead_id in self._parked.pop(list_id, []):
            lead = self.leads[lead_id]
            if lead.state is LeadState.PENDING:
                self._schedule(lead, lead.next_at)

    def recycle_list(self, list_id: int, now_wall: float) -> int:
        """Give the exhausted leads of ``list_id`` a fresh set of attempts; returns how many."""
        n = 0
        for lead in self.leads.values():
            if lead.list_id == list_id and lead.state is LeadState.EXHAUSTED:
                lead.attempts = 0
                lead.state = LeadState.PENDING
                self._schedule(lead, now_wall)
                n += 1
        return n

    def add_do_not_call(self, number: str) -> None:
        """Put ``number`` on the campaign's list: no lead with it is dialled again."""
        self.dnc.add(number)

    def on_dnc(self, number: str) -> bool:
        return number in self.dnc or number in self.global_dnc

    def may_dial(self, lead: Lead, now_wall: float) -> str | None:
        """None if ``lead`` may be dialled at ``now_wall``, else the reason it may not."""
        if self.on_dnc(lead.number):
            return "on a do-not-call list"
        if not in_calling_hours(lead.zones, now_wall, self.rules.hours):
            return f"outside calling hours in {', '.join(lead.zones)}"
        if lead.list_id in self.paused_lists:
            return f"list {lead.list_id} is paused"
        if lead.state is not LeadState.PENDING:
            return f"lead is {lead.state.value}"
        return None

    # --- dialling ------------------------------------------------------------------

    def next_dials(self, now_wall: float, n: int) -> list[Dial]:
        """Up to ``n`` leads due at ``now_wall`` that may be dialled now, best first.

        Each is checked against both do-not-call lists and its calling hours right
        here; a lead that fails is never returned (it waits, or ends on the list).
        The leads returned are Dialling until :meth:`outcome`.
        """
        out: list[Dial] = []
        hours = self.rules.hours
        while len(out) < n and self._due:
            when, _, lead_id, version = self._due[0]
            if when > now_wall:
                break
            heapq.heappop(self._due)
            lead = self.leads.get(lead_id)
            if lead is None or lead.version != version or lead.state is not LeadState.PENDING:
                continue
            if self.on_dnc(lead.number):
                lead.state = LeadState.DO_NOT_CALL
                lead.version += 1
                self.refusals.do_not_call += 1
                continue
            if lead.list_id in self.paused_lists:
                self._parked.setdefault(lead.list_id, []).append(lead_id)
                self.refusals.paused_list += 1
                continue
            if not in_calling_hours(lead.zones, now_wall, hours):
                opening = next_calling_time(lead.zones, now_wall, hours)
                if opening is None:
                    lead.state = LeadState.NO_WINDOW
                    lead.version += 1
                    self.refusals.no_window += 1
                else:
                    self.refusals.outside_hours += 1
                    self._schedule(lead, opening)
                continue
            out.append(self._hand_out(lead, now_wall))
        return out

    def dial_now(self, lead_id: int, now_wall: float) -> Dial:
        """Preview: the agent asks to dial ``lead_id`` now, due or not.

        The same checks as :meth:`next_dials` (do-not-call, calling hours, list, state);
        :class:`CampaignError` gives the reason a lead may not be dialled.
        """
        lead = self._lead(lead_id)
        reason = self.may_dial(lead, now_wall)
        if reason is not None:
            if self.on_dnc(lead.number) and lead.state is LeadState.PENDING:
                lead.state = LeadState.DO_NOT_CALL
                lead.version += 1
            raise CampaignError(f"lead {lead_id} ({lead.number}) may not be dialled: {reason}")
        return self._hand_out(lead, now_wall)

    def _hand_out(self, lead: Lead, now_wall: float) -> Dial:
        callback = lead.callback_at is not None
        lead.callback_at = None
        lead.state = LeadState.DIALLING
        lead.version += 1
        if not callback:
            lead.attempts += 1
        self.in_flight += 1
        return Dial(lead, lead.attempts, now_wall, callback)

    def pending(self) -> int:
        """Leads that may still be dialled (now or later)."""
        return sum(lead.state is LeadState.PENDING for lead in self.leads.values())

    def next_due(self) -> float | None:
        """When the next lead falls due (None: none is pending)."""
        while self._due:
            _, _, lead_id, version = self._due[0]
            lead = self.leads.get(lead_id)
            if lead is not None and lead.version == version and lead.state is LeadState.PENDING:
                return self._due[0][0]
            heapq.heappop(self._due)
        return None

    def outcome(self, lead_id: int, outcome: Outcome, now_wall: float) -> Lead:
        """Record how the attempt at ``lead_id`` ended; schedules the retry if any."""
        lead = self._lead(lead_id)
        if lead.state is not LeadState.DIALLING:
            raise CampaignError(
                f"campaign {self.name!r}: lead {lead_id} is {lead.state.value}, not being dialled"
            )
        self.in_flight -= 1
        lead.last_outcome = outcome.value
        lead.version += 1
        if outcome in (Outcome.CONNECTED, Outcome.ABANDONED):
            day = self._day(now_wall)
            day.live += 1
            day.abandoned += outcome is Outcome.ABANDONED
        if outcome is Outcome.CONNECTED:
            lead.state = LeadState.COMPLETED  # until the disposition says otherwise
        elif outcome is Outcome.FAILED:
            lead.state = LeadState.INVALID
        else:
            self._retry(lead, outcome, now_wall)
        return lead

    def disposition(
        self, lead_id: int, disposition: str, now_wall: float, *, callback_at: float | None = None
    ) -> Lead:
        """The agent's disposition of a connected lead: a callback, do not call, a retry,
        or (anything else) done."""
        lead = self._lead(lead_id)
        rules = self.rules
        key = disposition.strip().casefold()
        if key in rules.do_not_call_dispositions:
            self.add_do_not_call(lead.number)
            lead.state = LeadState.DO_NOT_CALL
        elif key in rules.callback_dispositions:
            lead.callback_at = callback_at if callback_at is not None else now_wall + 3600.0
            lead.state = LeadState.PENDING
            self._schedule(lead, lead.callback_at)
        elif key in rules.retry_dispositions:
            self._retry(lead, Outcome.NO_ANSWER, now_wall)
        else:
            lead.state = LeadState.COMPLETED
        return lead

    # --- abandon accounting --------------------------------------------------------

    def abandon_figures(self, now_wall: float) -> AbandonFigures:
        """Live answers and abandons today and over the last 30 days (today included)."""
        today = self._date(now_wall)
        first = today - timedelta(days=ROLLING_DAYS - 1)
        for old in [d for d in self._days if d < first]:
            del self._days[old]
        t = self._days.get(today, _Day())
        live = sum(d.live for k, d in self._days.items() if first <= k <= today)
        abandoned = sum(d.abandoned for k, d in self._days.items() if first <= k <= today)
        return AbandonFigures(t.live, t.abandoned, live, abandoned)

    def restore_day(self, day: date, live: int, abandoned: int) -> None:
        """Counts of a past day (from the store, after a restart)."""
        self._days[day] = _Day(live, abandoned)

    # --- internals -----------------------------------------------------------------

    def _retry(self, lead: Lead, outcome: Outcome, now_wall: float) -> None:
        delay = self.rules.retry_s.get(outcome)
        if delay is None or lead.attempts >= self.rules.max_attempts:
            lead.state = LeadState.EXHAUSTED
            return
        lead.state = LeadState.PENDING
        self._schedule(lead, now_wall + delay)

    def _schedule(self, lead: Lead, when: float) -> None:
        lead.version += 1
        lead.next_at = when
        heapq.heappush(self._due, (when, next(self._seq), lead.lead_id, lead.version))

    def _lead(self, lead_id: int) -> Lead:
        try:
            return self.leads[lead_id]
        except KeyError:
            raise CampaignError(f"campaign {self.name!r} has no lead {lead_id}") from None

    def _date(self, now_wall: float) -> date:
        return datetime.fromtimestamp(now_wall, self._day_zone).date()

    def _day(self, now_wall: float) -> _Day:
        return self._days.setdefault(self._date(now_wall), _Day())
