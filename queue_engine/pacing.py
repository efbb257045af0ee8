"""The outbound dialer's pacing: how many numbers to dial now. Sans-I/O.

A :class:`Pacer` measures what the campaign's dials do and decides, each time it is
asked, how many new dials to place. It reads no clock and places no call: its shell
(:mod:`cti.engine.dialer`, or the simulator's :mod:`simulators.dialer_sim`) tells it what
happened and what the agents are doing, and places the dials it asks for.

**Modes**: ``preview`` (the agent asks for each lead), ``progressive`` (one line per
free agent), ``power`` (``power_ratio`` lines per free agent) and ``predictive`` (as many
lines as make the expected live answers match the agents expected to be free when they
come, scaled by a feedback controller on the abandon rate, with guards that hold the
cap). What it measures and how predictive decides and adjusts: docs/dialer.md
("Predictive pacing").

**Blending** (:func:`dialer_agents`): agents who serve inbound queues and the campaign
lend the campaign only the Ready agents inbound does not need for its service-level
target, by Erlang C (:func:`agents_for_service_level`).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cti.errors import SimulationError
from queue_engine.erlang import agents_for_goal


class DialMode(StrEnum):
    PREVIEW = "preview"
    """The agent sees the lead and asks for the dial: the pacer places none."""
    PROGRESSIVE = "progressive"
    """One line per free agent."""
    POWER = "power"
    """A fixed number of lines per free agent."""
    PREDICTIVE = "predictive"
    """An adaptive number of lines, kept under the abandon cap."""


class DialResult(StrEnum):
    """What the line said about one dial (before any agent is involved)."""

    HUMAN = "human"
    """A person answered."""
    MACHINE = "machine"
    """An answering machine answered (detected by the line)."""
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    """Rang until the ring timeout."""
    FAILED = "failed"
    """The number could not be reached (invalid, network error)."""


class PacingSettings(BaseModel):
    """A campaign's pacing parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: DialMode = DialMode.PREDICTIVE
    power_ratio: float = Field(2.0, ge=1.0, le=20.0, description="power mode: lines per agent")
    abandon_cap: float = Field(0.03, gt=0.0, lt=1.0, description="abandoned / live answers")
    safety_margin: float = Field(0.01, ge=0.0, description="aim this far under the cap")
    step: float = Field(0.05, gt=0.0, le=1.0, description="controller step per live answer")
    initial_gain: float = Field(0.5, gt=0.0)
    min_gain: float = Field(0.05, gt=0.0)
    max_gain: float = Field(2.0, gt=0.0)
    prior_contact_rate: float = Field(0.2, gt=0.0, le=1.0, description="until measured")
    prior_weight: int = Field(50, ge=1, description="dials the prior counts as")
    prior_talk_s: float = Field(120.0, gt=0.0, description="talk time, until measured")
    prior_connect_s: float = Field(10.0, gt=0.0, description="dial to answer, until measured")
    window: int = Field(500, ge=10, description="recent dials the rates are measured over")
    guard_min_live: int = Field(30, ge=1, description="live answers before a guard applies")
    max_lines_per_agent: float = Field(10.0, ge=1.0, description="predictive: at most")
    max_lines: int | None = Field(None, ge=1, description="lines that may be in flight")

    @model_validator(mode="after")
    def _consistent(self) -> PacingSettings:
        if self.safety_margin >= self.abandon_cap:
            raise ValueError(
                f"safety_margin {self.safety_margin} must be below abandon_cap {self.abandon_cap}"
            )
        if not self.min_gain <= self.initial_gain <= self.max_gain:
            raise ValueError("initial_gain must lie between min_gain and max_gain")
        return self

    @property
    def target_abandon_rate(self) -> float:
        """The rate the controller aims at: the cap less the safety margin."""
        return self.abandon_cap - self.safety_margin

    @property
    def guard_rate(self) -> float:
        """Measured at or above this, predictive stops over-dialing."""
        return self.abandon_cap - self.safety_margin / 2


@dataclass(frozen=True, slots=True)
class AbandonFigures:
    """A campaign's live answers and abandons today and over the rolling 30 days."""

    today_live: int = 0
    today_abandoned: int = 0
    rolling_live: int = 0
    rolling_abandoned: int = 0

    @property
    def today_rate(self) -> float:
        return self.today_abandoned / self.today_live if self.today_live else 0.0

    @property
    def rolling_rate(self) -> float:
        return self.rolling_abandoned / self.rolling_live if self.rolling_live else 0.0


@dataclass(frozen=True, slots=True)
class Capacity:
    """The campaign's agents and lines at one moment (from the router's state)."""

    ready: int
    """Ready agents the campaign may use (after blending: see :func:`dialer_agents`)."""
    talking: int = 0
    """Agents on a campaign call."""
    wrap_up_ends_in: tuple[float, ...] = ()
    """Seconds until each wrap-up of a campaign call ends."""
    waiting: int = 0
    """Answered calls waiting for an agent."""
    in_flight: int = 0
    """Dials placed and not yet answered or failed."""
    in_flight_ages: tuple[float, ...] = ()
    """Seconds each of those has been ringing, when known (sharpens the estimate)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """How many dials to place, and why (for the status display and the tests)."""

    dials: int
    mode: DialMode
    expected_free: float = 0.0
    contact_rate: float = 0.0
    gain: float = 1.0
    guarded: bool = False
    reason: str = ""


class Pacer:
    """Measures a campaign's dials and decides how many to place (module docstring)."""

    def __init__(self, settings: PacingSettings | None = None) -> None:
        self.settings = settings or PacingSettings()
        s = self.settings
        self.gain = s.initial_gain
        self.guarded = False
        """The campaign's abandon rate is near the cap: the gain may only fall."""
        self._dials: deque[DialResult] = deque(maxlen=s.window)
        self._rings: deque[tuple[float, bool]] = deque(maxlen=s.window)
        """(seconds until the line's result, a person answered) of recent dials."""
        self._ring_index: list[tuple[float, bool]] | None = None
        self._humans_from: list[int] = [0]
        self._connect: deque[float] = deque(maxlen=s.window)
        self._live: deque[bool] = deque(maxlen=s.window)
        self.mean_talk_s = s.prior_talk_s
        self.mean_wrap_s = 0.0
        self._talks = 0

    # --- what happened -------------------------------------------------------------

    def record_dial(self, result: DialResult, seconds_to_answer: float | None = None) -> None:
        """A dial ended ringing with ``result``; a person answered after ``seconds``."""
        self._dials.append(result)
        if seconds_to_answer is not None:
            seconds = max(0.0, seconds_to_answer)
            self._rings.append((seconds, result is DialResult.HUMAN))
            self._ring_index = None
            if result is DialResult.HUMAN:
                self._connect.append(seconds)

    def record_live(self, abandoned: bool) -> None:
        """A person answered; ``abandoned`` if no agent was on the call within 2 s."""
        s = self.settings
        self._live.append(abandoned)
        target = 0.0 if self.guarded else s.target_abandon_rate
        self.gain += s.step * (target - (1.0 if abandoned else 0.0))
        self.gain = min(s.max_gain, max(s.min_gain, self.gain))

    def record_handle(self, talk_s: float, wrap_up_s: float) -> None:
        """An agent finished a campaign call: ``talk_s`` talking, ``wrap_up_s`` after."""
        # A mean with the prior counted as ``prior_weight / 2`` calls, then a moving
        # average: the first calls to end are the short ones, not a fair sample.
        weight = max(0.02, 1.0 / (self._talks + 1 + self.settings.prior_weight / 2))
        self._talks += 1
        self.mean_talk_s += weight * (max(0.0, talk_s) - self.mean_talk_s)
        self.mean_wrap_s += weight * (max(0.0, wrap_up_s) - self.mean_wrap_s)

    # --- what it measured ----------------------------------------------------------

    @property
    def contact_rate(self) -> float:
        """People answering / dials, smoothed towards the prior (never 0).

        The prior alone until half the window of dials has ended: the first dials to
        end are the quick ones (busy lines, early answers), not a fair sample.
        """
        s = self.settings
        if len(self._dials) < s.window // 2:
            return s.prior_contact_rate
        humans = sum(r is DialResult.HUMAN for r in self._dials)
        rate = (humans + s.prior_contact_rate * s.prior_weight) / (
            len(self._dials) + s.prior_weight
        )
        return max(rate, 0.01)

    @property
    def machine_rate(self) -> float:
        n = len(self._dials)
        return sum(r is DialResult.MACHINE for r in self._dials) / n if n else 0.0

    @property
    def mean_connect_s(self) -> float:
        """Seconds from dial to a person's answer (the prior until 30 are measured)."""
        if len(self._connect) < 30:
            return self.settings.prior_connect_s
        return sum(self._connect) / len(self._connect)

    @property
    def recent_abandon_rate(self) -> float:
        return sum(self._live) / len(self._live) if self._live else 0.0

    # --- the decision --------------------------------------------------------------

    def answer_chance(self, ringing_for: float) -> float:
        """Chance that a line still ringing after ``ringing_for`` s is answered by a person.

        Of the recent dials that were still ringing at that age, the share a person
        answered. Until half the window of dials has ended this is the contact rate for
        every age: early on only the dials that ended quickly are known (busy lines,
        quick answers), and reading ages from them would miss the slow ones.
        """
        if len(self._rings) < self.settings.window // 2:
            return self.contact_rate
        if self._ring_index is None:
            self._ring_index = sorted(self._rings)
            humans = [0] * (len(self._ring_index) + 1)
            for i in range(len(self._ring_index) - 1, -1, -1):
                humans[i] = humans[i + 1] + self._ring_index[i][1]
            self._humans_from = humans
        index = self._ring_index
        first = bisect.bisect_right(index, (ringing_for, True))
        later = len(index) - first
        if later < 20:
            return 0.0  # rang longer than nearly every dial does: it will ring out
        return self._humans_from[first] / later

    def expected_answers(self, capacity: Capacity) -> float:
        """Live answers the lines in flight are expected to bring."""
        ages = capacity.in_flight_ages
        if len(ages) != capacity.in_flight:
            return self.contact_rate * capacity.in_flight
        return sum(self.answer_chance(age) for age in ages)

    def expected_free(self, capacity: Capacity) -> float:
        """Agents expected to be free within the time to connect (module docstring)."""
        horizon = self.mean_connect_s
        p_talk = 1.0 - math.exp(-horizon / max(self.mean_talk_s, 1.0))
        wraps = sum(1 for t in capacity.wrap_up_ends_in if t <= horizon)
        return capacity.ready + capacity.talking * p_talk + wraps

    def decide(self, capacity: Capacity, abandons: AbandonFigures | None = None) -> Decision:
        """How many dials to place now."""
        s = self.settings
        mode = s.mode
        room = math.inf if s.max_lines is None else s.max_lines - capacity.in_flight
        free_now = capacity.ready - capacity.waiting
        if mode is DialMode.PREVIEW:
            return Decision(0, mode, reason="preview: the agent asks for each dial")
        if mode is DialMode.PROGRESSIVE:
            n = free_now - capacity.in_flight
            return Decision(_clamp(n, room), mode, reason="one line per free agent")
        figures = abandons or AbandonFigures()
        stopped = _one_more_breaks(figures, s.abandon_cap)
        if mode is DialMode.POWER and not stopped:
            n = math.floor(s.power_ratio * free_now + 1e-9) - capacity.in_flight
            return Decision(_clamp(n, room), mode, reason=f"{s.power_ratio:g} lines per agent")
        c = self.contact_rate
        free = self.expected_free(capacity)
        self.guarded = _at_least(figures, s.guard_min_live, s.guard_rate)
        if stopped or free <= 0:
            n = free_now - capacity.in_flight
            why = (
                "one more abandon would break the cap: one line per Ready agent"
                if stopped
                else "no agent"
            )
            return Decision(_clamp(n, room), mode, free, c, self.gain, True, why)
        wanted = self.gain * free - capacity.waiting - self.expected_answers(capacity)
        n = math.floor(wanted / c + 0.5)
        n = min(n, math.floor(s.max_lines_per_agent * free) - capacity.in_flight)
        why = "guarded: the gain only falls" if self.guarded else "expected answers = free"
        return Decision(_clamp(n, room), mode, free, c, self.gain, self.guarded, why)


def _at_least(figures: AbandonFigures, min_live: int, rate: float) -> bool:
    """Today's or the 30-day abandon rate is at ``rate`` or above (with enough answers)."""
    return (figures.today_live >= min_live and figures.today_rate >= rate) or (
        figures.rolling_live >= min_live and figures.rolling_rate >= rate
    )


def _one_more_breaks(figures: AbandonFigures, cap: float) -> bool:
    """One more abandon would take today's or the 30-day abandon rate over ``cap``.

    While it would, the dialer places no more lines than there are Ready agents: the cap
    holds by construction, also early in the day when a single abandon among a few live
    answers is a large share.
    """
    today = (figures.today_abandoned + 1) / (figures.today_live + 1)
    rolling = (figures.rolling_abandoned + 1) / (figures.rolling_live + 1)
    return today > cap or rolling > cap


def _clamp(n: float, room: float) -> int:
    return int(max(0.0, min(n, room)))


# --- blending ----------------------------------------------------------------------


def agents_for_service_level(
    rate_per_hour: float, aht_s: float, target_s: float, goal: float, *, limit: int = 10_000
) -> int:
    """The fewest agents that answer ``goal`` of the calls within ``target_s`` (Erlang C,
    :func:`queue_engine.erlang.agents_for_goal`); 0 with no traffic, ``limit`` when even
    that many do not reach the goal."""
    if rate_per_hour <= 0 or aht_s <= 0:
        return 0
    try:
        return agents_for_goal(rate_per_hour, aht_s, goal, target_s, max_agents=limit)
    except SimulationError:
        return limit


def dialer_agents(
    *,
    ready_campaign_only: int,
    ready_blended: int,
    inbound_busy: int,
    ready_inbound_only: int,
    inbound_needed: int,
    inbound_waiting: int = 0,
) -> int:
    """Ready agents the dialer may count on, leaving inbound what it needs.

    Inbound needs ``inbound_needed`` agents present (by :func:`agents_for_service_level`).
    Agents busy on inbound calls and Ready agents who serve only inbound count towards
    it first; the blended Ready agents make up the rest and only those beyond it are
    the dialer's. While inbound calls wait, no blended agent is the dialer's.
    """
    if inbound_waiting > 0:
        return max(0, ready_campaign_only)
    kept = max(0, inbound_needed - inbound_busy - ready_inbound_only)
    return max(0, ready_campaign_only) + max(0, ready_blended - kept)
