"""Live statistics per queue and per interval, from the router's actions. Sans-I/O.

The definitions are those of docs/statistics.md, computed by :mod:`queue_engine.stats`
(:class:`~queue_engine.stats.Tally` for calls, :class:`~queue_engine.stats.AgentTime`
for occupancy). This module only attributes what happens to queues and intervals:

* **Calls** count when their :class:`~queue_engine.actions.RecordCall` arrives (for an
  answered call, after its wrap-up), in the queue named in the record and in the
  interval in which the call *arrived*. Each call is judged by the SL target and
  short-abandon threshold of its own queue, in the queue's figures and the overall
  ones alike. A call an agent dialled by hand (kind ``manual``) was never offered to
  a queue, so it is left out of the call figures (its talk time still counts as busy).
* **Agent time** runs from one :class:`~queue_engine.actions.AgentStateSet` to the next
  and, for the state an agent is in now, up to ``now``. It is split exactly across
  interval boundaries. An agent's time counts in every queue the agent serves (a
  queue's occupancy is the occupancy of the agents who serve it) and once in the
  overall figures. Reserved (an offer ringing) counts as idle, not busy.
* **Intervals** are ``[origin + k * interval_s, origin + (k + 1) * interval_s)`` for any
  integer ``k``; the last ``keep_intervals`` (96: a day of 15-minute intervals) up to the
  one holding ``now`` are kept. A call whose arrival interval was already dropped
  counts in the run totals only.

Every method takes ``now`` (monotonic seconds); nothing here reads a clock. ``now``
should not decrease; if it does, no time passes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from cti.models import AgentState, CallDetailRecord, QueueConfig
from queue_engine.actions import Action, AgentStateSet, RecordCall
from queue_engine.members import NOT_READY
from queue_engine.stats import BUSY_STATES, IDLE_STATES, AgentTime, Tally

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 900.0
DEFAULT_KEEP_INTERVALS = 96


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """A queue's figures (``queue`` None: every queue) over some span of time.

    Ratios and means are None when there is nothing to divide by.
    """

    queue: str | None
    offered: int
    answered: int
    abandoned: int
    """Every abandoned call, short abandons included."""
    short_abandoned: int
    """Abandoned within the queue's short-abandon threshold (listed apart)."""
    answered_within_target: int
    service_level: float | None
    """Answered within T / offered, short abandons left out of both."""
    service_level_of_answered: float | None
    """Answered within T / answered."""
    asa_s: float | None
    """Mean wait of answered calls."""
    aht_s: float | None
    """Mean talk + hold + wrap-up of answered calls."""
    abandon_rate: float | None
    """Abandoned / offered."""
    max_wait_s: float
    """Longest wait of the finished calls (0 when none)."""
    occupancy: float | None
    """Busy (talk, hold, wrap-up) / staffed time not in Not Ready."""
    busy_s: float
    idle_s: float
    """Ready or Reserved."""
    not_ready_s: float
    staffed_s: float
    """Logged in: busy + idle + Not Ready."""

    @classmethod
    def of(cls, queue: str | None, calls: Tally, time: AgentTime) -> QueueFigures:
        return cls(
            queue=queue,
            offered=calls.offered,
            answered=calls.answered,
            abandoned=calls.abandoned,
            short_abandoned=calls.short_abandoned,
            answered_within_target=calls.answered_within_target,
            service_level=calls.service_level,
            service_level_of_answered=calls.service_level_of_answered,
            asa_s=calls.asa_s,
            aht_s=calls.aht_s,
            abandon_rate=calls.abandon_rate,
            max_wait_s=calls.max_wait_s,
            occupancy=time.occupancy,
            busy_s=time.busy_s,
            idle_s=time.idle_s,
            not_ready_s=time.not_ready_s,
            staffed_s=time.staffed_s,
        )


@dataclass(frozen=True, slots=True)
class IntervalFigures:
    """The figures of one interval ``[start, end)``; the current one runs up to ``now``."""

    start: float
    end: float
    figures: QueueFigures


_STATES: Final = tuple(AgentState)
"""Every state, in order (iterating the enum class itself costs ~3 us)."""
_UNSTAFFED = -1
_SLOT: dict[AgentState, int] = {
    **dict.fromkeys(AgentState, _UNSTAFFED),
    **dict.fromkeys(BUSY_STATES, 0),
    **dict.fromkeys(IDLE_STATES, 1),
    NOT_READY: 2,
}
"""Where an agent's seconds in a state count: busy, idle or Not Ready (AgentTime's three,
as indexes of a bucket's ``time``), or none (logged out: not staffed)."""

OBSERVED: Final = (AgentStateSet, RecordCall)
"""The actions :meth:`LiveStats.observe` takes into account (it ignores the others)."""


@dataclass(slots=True)
class _Bucket:
    calls: Tally = field(default_factory=Tally)
    time: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    """Busy, idle and Not Ready seconds, by slot (:data:`_SLOT`): added to in place."""

    def agent_time(self) -> AgentTime:
        busy, idle, not_ready = self.time
        return AgentTime(busy, idle, not_ready)


@dataclass(slots=True)
class _Ledger:
    """Calls and agent time over one span (the run, or one interval), overall and by queue."""

    overall: _Bucket = field(default_factory=_Bucket)
    queues: dict[str, _Bucket] = field(default_factory=dict)

    def bucket(self, queue: str | None) -> _Bucket | None:
        return self.overall if queue is None else self.queues.get(queue)

    def queue(self, name: str) -> _Bucket:
        bucket = self.queues.get(name)
        if bucket is None:
            bucket = self.queues[name] = _Bucket()
        return bucket

    def times(self, queues: Sequence[str]) -> list[list[float]]:
        """The time counters an agent serving ``queues`` adds to: overall, then its queues'."""
        return [self.overall.time, *(self.queue(name).time for name in queues)]


@dataclass(slots=True)
class _Agent:
    queues: tuple[str, ...]
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    slot: int = _UNSTAFFED
    """``state``'s slot in the time counters."""
    totals: list[list[float]] = field(default_factory=list)
    """The run's time counters the agent adds to."""
    ledger: _Ledger | None = None
    """The interval whose counters ``counters`` holds besides the run's (None: none yet)."""
    counters: list[list[float]] = field(default_factory=list)
    """``totals`` and ``ledger``'s: where time within that interval goes, all at once."""


class LiveStats:
    """Figures per queue and overall, for the run so far and per interval.

    ``queues`` maps a queue's name to its configuration (its SL target and short-abandon
    threshold judge its calls); ``agent_queues`` maps an agent's id to the queues the
    agent serves.

    Incremental (issue 23): an event adds to its counters in place and nothing else,
    as long as it falls in the interval of the event before (``_lo <= now < _hi``, the
    interval found, dropped ones pruned and ``_first`` touched once when it changes).
    Each agent keeps the counters its time goes to (the run's and the current
    interval's, for its queues); time reaching back over a boundary takes the
    piecewise path. The sums are those of the plain recomputation, in the same order.
    """

    def __init__(
        self,
        queues: Mapping[str, QueueConfig],
        agent_queues: Mapping[str, Sequence[str]],
        interval_s: float = DEFAULT_INTERVAL_S,
        origin: float = 0.0,
        *,
        keep_intervals: int = DEFAULT_KEEP_INTERVALS,
    ) -> None:
        if not (interval_s > 0 and math.isfinite(interval_s)):
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        if keep_intervals < 1:
            raise ValueError(f"keep_intervals must be at least 1, not {keep_intervals}")
        self.interval_s = interval_s
        self.origin = origin
        self.keep_intervals = keep_intervals
        self._config: dict[str, QueueConfig] = dict(queues)
        self._total = _Ledger()
        self._intervals: dict[int, _Ledger] = {}
        self._first: int | None = None
        """Index of the earliest interval anything happened in."""
        self._kept_from = -math.inf
        """Intervals before this index have been dropped."""
        self._k = 0
        """The interval of the latest event's ``now``, ``[_lo, _hi)`` (empty: none yet)."""
        self._lo, self._hi = math.inf, -math.inf
        self._ledger = _Ledger()
        """Interval ``_k``'s ledger (once there is an event)."""
        self._tallies: dict[str, list[Tally]] = {}
        """Queue name -> the tallies a call of the queue arrived in interval ``_k`` counts
        in: the run's and the interval's, overall and the queue's."""
        self._agents: dict[str, _Agent] = {}
        self._serving: dict[str, set[str]] = {}
        """Queue name -> ids of the agents serving it."""
        for agent_id, served in agent_queues.items():
            self._agents[agent_id] = agent = _Agent(())
            self._assign(agent_id, agent, served)

    # --- configuration -------------------------------------------------------------

    def configure_queue(self, config: QueueConfig) -> None:
        """Add a queue or change its thresholds; calls recorded from now on use them."""
        self._config[config.name] = config

    def set_agent_queues(self, agent_id: str, queues: Sequence[str], now: float) -> None:
        """The agent serves ``queues`` from ``now`` on; its time so far stays where it was."""
        if not self._lo <= now < self._hi:
            self._move(now)
        agent = self._agents.get(agent_id)
        if agent is None:
            self._agents[agent_id] = agent = _Agent((), since=now)
        else:
            self._close(agent, now)
        self._assign(agent_id, agent, queues)

    # --- input ---------------------------------------------------------------------

    def observe(self, action: Action, now: float) -> None:
        """Take one of the router's actions into account; all but calls recorded and
        agent state changes are ignored."""
        if isinstance(action, AgentStateSet):
            if not self._lo <= now < self._hi:
                self._move(now)
            try:
                agent = self._agents[action.agent_id]
            except KeyError:
                agent = self._stranger(action.agent_id, now)
            else:
                since = agent.since
                slot = agent.slot
                if since < now and slot >= 0 and since >= self._lo and agent.ledger is self._ledger:
                    seconds = now - since  # all of it in the current interval: add it
                    for counter in agent.counters:
                        counter[slot] += seconds
                    agent.since = now
                else:
                    self._close(agent, now)
            agent.state = state = action.state
            agent.slot = _SLOT[state]
        elif isinstance(action, RecordCall):
            if not self._lo <= now < self._hi:
                self._move(now)
            self._record(action.cdr, now)

    # --- output --------------------------------------------------------------------

    def snapshot(self, queue: str | None, now: float) -> QueueFigures:
        """The figures of the run so far, up to ``now``; ``queue`` None for all queues."""
        self._check(queue)
        bucket = self._total.bucket(queue)
        calls = bucket.calls if bucket else Tally()
        time = bucket.time[:] if bucket else [0.0, 0.0, 0.0]
        for agent in self._agents_serving(queue):
            slot = agent.slot
            if slot >= 0 and now > agent.since:  # the time so far in the state it is in
                time[slot] += now - agent.since
        return QueueFigures.of(queue, calls, AgentTime(*time))

    def intervals(
        self, queue: str | None, now: float, last: int | None = None
    ) -> list[IntervalFigures]:
        """The kept intervals, oldest first, from the first one anything happened in to
        the one holding ``now`` (which runs up to ``now``). Empty ones are included.
        ``last``: only the last ones of those (the dialer's pacing reads two of 96)."""
        self._check(queue)
        current = self._index(now)
        if self._first is None:
            return []
        first = max(self._first, self._oldest(now))
        if last is not None:
            first = max(first, current - last + 1)
        times: dict[int, AgentTime] = {}
        for k in range(first, current + 1):
            ledger = self._intervals.get(k)
            bucket = ledger.bucket(queue) if ledger else None
            times[k] = bucket.agent_time() if bucket else AgentTime()
        for agent in self._agents_serving(queue):
            for k, seconds in self._split(agent.since, now, now):
                if k in times:
                    times[k].add(agent.state, seconds)
        out = []
        for k, time in times.items():
            ledger = self._intervals.get(k)
            bucket = ledger.bucket(queue) if ledger else None
            calls = bucket.calls if bucket else Tally()
            figures = QueueFigures.of(queue, calls, time)
            out.append(IntervalFigures(self._start(k), self._start(k + 1), figures))
        return out

    def agents_by_state(self, queue: str | None, now: float) -> dict[AgentState, int]:
        """How many agents serving ``queue`` (None: every agent) are in each state, by
        the latest state change observed (every state is a key). An agent never seen
        is logged out. ``now`` is taken for symmetry with the other views."""
        self._check(queue)
        counts = dict.fromkeys(_STATES, 0)
        for agent in self._agents_serving(queue):
            counts[agent.state] += 1
        return counts

    # --- internals -----------------------------------------------------------------

    def _move(self, now: float) -> None:
        """The events are in the interval of ``now`` from here: find it, drop those too
        old to keep, and count it as one something happened in."""
        k = self._index(now)
        self._k, self._lo, self._hi = k, self._start(k), self._start(k + 1)
        if not self._lo <= now < self._hi:  # rounding beyond _index's reach: no shortcut
            self._lo, self._hi = math.inf, -math.inf
        oldest = k - self.keep_intervals + 1
        if oldest > self._kept_from:
            self._intervals = {i: v for i, v in self._intervals.items() if i >= oldest}
            self._kept_from = oldest
        ledger = self._intervals.get(k)
        if ledger is None:
            ledger = self._intervals[k] = _Ledger()
        self._ledger = ledger
        self._tallies = {}
        self._touch(k)

    def _record(self, cdr: CallDetailRecord, now: float) -> None:
        """Count a finished call (``now``'s interval is ``_k``)."""
        if cdr.kind == "manual":
            return  # the agent's own dial: no caller waited in a queue
        config = self._config.get(cdr.queue)
        if config is None:
            log.warning(
                "call %r is in queue %r, which the statistics do not know: "
                "judged by the default thresholds",
                cdr.call_id,
                cdr.queue,
            )
            config = self._config[cdr.queue] = QueueConfig(name=cdr.queue)
        arrived = cdr.arrived_at
        if self._lo <= arrived < self._hi:  # arrived in the current interval
            tallies = self._tallies.get(cdr.queue) or self._tallies_of(cdr.queue)
        else:
            tallies = [self._total.overall.calls, self._total.queue(cdr.queue).calls]
            k = self._index(arrived)
            if k >= self._k - self.keep_intervals + 1:  # an interval still kept
                ledger = self._intervals.get(k)
                if ledger is None:
                    ledger = self._intervals[k] = _Ledger()
                tallies += (ledger.overall.calls, ledger.queue(cdr.queue).calls)
                self._touch(k)
        _count(tallies, cdr, config)

    def _tallies_of(self, queue: str) -> list[Tally]:
        """The tallies a call of ``queue`` arrived in the current interval counts in."""
        total, ledger = self._total, self._ledger
        tallies = [total.overall.calls, total.queue(queue).calls]
        tallies += (ledger.overall.calls, ledger.queue(queue).calls)
        self._tallies[queue] = tallies
        return tallies

    def _stranger(self, agent_id: str, now: float) -> _Agent:
        log.warning(
            "agent %r serves no queue the statistics know of: counted in the overall figures only",
            agent_id,
        )
        self._agents[agent_id] = agent = _Agent((), since=now)
        agent.totals = self._total.times(())
        return agent

    def _close(self, agent: _Agent, now: float) -> None:
        """Account the agent's time in its current state up to ``now`` (in interval
        ``_k``)."""
        since = agent.since
        slot = agent.slot
        if since < now and slot >= 0:
            if since >= self._lo:  # within the current interval
                if agent.ledger is not self._ledger:
                    agent.ledger = self._ledger
                    agent.counters = agent.totals + self._ledger.times(agent.queues)
                for counter in agent.counters:
                    counter[slot] += now - since
            else:
                for counter in agent.totals:
                    counter[slot] += now - since
                for k, seconds in self._split(since, now, now):
                    ledger = self._intervals.get(k)
                    if ledger is None:
                        ledger = self._intervals[k] = _Ledger()
                    for counter in ledger.times(agent.queues):
                        counter[slot] += seconds
        agent.since = max(now, since)

    def _assign(self, agent_id: str, agent: _Agent, queues: Sequence[str]) -> None:
        for name in agent.queues:
            self._serving[name].discard(agent_id)
        agent.queues = tuple(dict.fromkeys(queues))
        for name in agent.queues:
            self._serving.setdefault(name, set()).add(agent_id)
        agent.totals = self._total.times(agent.queues)
        agent.ledger = None

    def _agents_serving(self, queue: str | None) -> Iterable[_Agent]:
        if queue is None:
            return self._agents.values()
        agents = self._agents
        return [agents[agent_id] for agent_id in self._serving.get(queue, ())]

    def _check(self, queue: str | None) -> None:
        if (
            queue is not None
            and queue not in self._config
            and queue not in self._serving
            and queue not in self._total.queues
        ):
            raise KeyError(f"no queue {queue!r}")

    def _index(self, t: float) -> int:
        """The interval holding ``t``; exact at boundaries despite rounding."""
        k = math.floor((t - self.origin) / self.interval_s)
        if self._start(k + 1) <= t:
            k += 1
        elif self._start(k) > t:
            k -= 1
        return k

    def _start(self, k: int) -> float:
        return self.origin + k * self.interval_s

    def _oldest(self, now: float) -> int:
        """The earliest interval kept at ``now``."""
        return self._index(now) - self.keep_intervals + 1

    def _split(self, start: float, end: float, now: float) -> Iterator[tuple[int, float]]:
        """``[start, end)`` cut at interval boundaries: (interval, seconds) for each piece
        in an interval kept at ``now``."""
        lo = max(start, self._start(self._oldest(now)))
        k = self._index(lo)
        while lo < end:
            hi = min(end, self._start(k + 1))
            yield k, hi - lo
            lo, k = hi, k + 1

    def _touch(self, k: int) -> None:
        if self._first is None or k < self._first:
            self._first = k


def _count(tallies: list[Tally], cdr: CallDetailRecord, config: QueueConfig) -> None:
    """Count a finished call in each of ``tallies``, judged by ``config``'s thresholds
    (:meth:`Tally.add`'s sums, with the call's figures worked out once)."""
    answered_at = cdr.answered_at
    wait = (answered_at if answered_at is not None else cdr.ended_at) - cdr.arrived_at
    outcome = cdr.outcome
    if outcome == "answered":
        talk = cdr.ended_at - answered_at if answered_at is not None else 0.0
        handle = talk + cdr.wrap_up_s
        within = wait <= config.sl_target_s
        for t in tallies:
            t.offered += 1
            if wait > t.max_wait_s:
                t.max_wait_s = wait
            t.answered += 1
            t.answered_wait_total_s += wait
            t.answered_handle_total_s += handle
            if within:
                t.answered_within_target += 1
    else:
        short = outcome == "abandoned" and wait <= config.short_abandon_s
        for t in tallies:
            t.offered += 1
            if wait > t.max_wait_s:
                t.max_wait_s = wait
            if outcome == "abandoned":
                t.abandoned += 1
                if short:
                    t.short_abandoned += 1
