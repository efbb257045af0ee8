"""LiveStats against a straightforward reference on random event sequences (issue 23).

The reference is the plain implementation LiveStats had before it was made incremental
(7169941): every event recomputes its interval, splits the agent's time piece by piece
and adds it through Tally.add and AgentTime.add, the figures kept as dataclasses. The
incremental one must publish exactly the same figures, to the last bit (the same sums
in the same order): ``==`` on the dataclasses, not an approximation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.models import AgentState, CallDetailRecord, CallerKind, QueueConfig, Segment
from queue_engine.actions import Action, AgentStateSet, OfferCall, RecordCall, WithdrawOffer
from queue_engine.live_stats import IntervalFigures, LiveStats, QueueFigures
from queue_engine.stats import AgentTime, Tally

S = AgentState


@dataclass(slots=True)
class _Bucket:
    calls: Tally = field(default_factory=Tally)
    time: AgentTime = field(default_factory=AgentTime)


@dataclass(slots=True)
class _Ledger:
    overall: _Bucket = field(default_factory=_Bucket)
    queues: dict[str, _Bucket] = field(default_factory=dict)

    def bucket(self, queue: str | None) -> _Bucket | None:
        return self.overall if queue is None else self.queues.get(queue)

    def add_call(self, cdr: CallDetailRecord, config: QueueConfig) -> None:
        queue = self.queues.setdefault(cdr.queue, _Bucket())
        for b in (self.overall, queue):
            b.calls.add(cdr, sl_target_s=config.sl_target_s, short_abandon_s=config.short_abandon_s)

    def add_time(self, state: AgentState, seconds: float, queues: Sequence[str]) -> None:
        self.overall.time.add(state, seconds)
        for name in queues:
            self.queues.setdefault(name, _Bucket()).time.add(state, seconds)


@dataclass(slots=True)
class _Agent:
    queues: tuple[str, ...]
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0


class Reference:
    """LiveStats as it was (logging left out)."""

    def __init__(
        self,
        queues: Mapping[str, QueueConfig],
        agent_queues: Mapping[str, Sequence[str]],
        interval_s: float,
        origin: float,
        keep_intervals: int,
    ) -> None:
        self.interval_s, self.origin, self.keep_intervals = interval_s, origin, keep_intervals
        self._config = dict(queues)
        self._agents: dict[str, _Agent] = {}
        self._serving: dict[str, set[str]] = {}
        for agent_id, served in agent_queues.items():
            self._agents[agent_id] = agent = _Agent(())
            self._assign(agent_id, agent, served)
        self._total = _Ledger()
        self._intervals: dict[int, _Ledger] = {}
        self._first: int | None = None
        self._kept_from = -math.inf

    def configure_queue(self, config: QueueConfig) -> None:
        self._config[config.name] = config

    def set_agent_queues(self, agent_id: str, queues: Sequence[str], now: float) -> None:
        agent = self._agents.get(agent_id)
        if agent is None:
            self._agents[agent_id] = agent = _Agent((), since=now)
        else:
            self._close(agent, now)
        self._assign(agent_id, agent, queues)
        self._touch(self._index(now))
        self._prune(now)

    def observe(self, action: Action, now: float) -> None:
        if isinstance(action, RecordCall):
            self._record(action.cdr, now)
        elif isinstance(action, AgentStateSet):
            self._agent_state(action.agent_id, action.state, now)
        else:
            return
        self._touch(self._index(now))
        self._prune(now)

    def snapshot(self, queue: str | None, now: float) -> QueueFigures:
        bucket = self._total.bucket(queue)
        calls = bucket.calls if bucket else Tally()
        time = replace(bucket.time) if bucket else AgentTime()
        for agent in self._agents_serving(queue):
            time.add(agent.state, max(0.0, now - agent.since))
        return QueueFigures.of(queue, calls, time)

    def intervals(self, queue: str | None, now: float) -> list[IntervalFigures]:
        current = self._index(now)
        if self._first is None:
            return []
        first = max(self._first, self._oldest(now))
        times: dict[int, AgentTime] = {}
        for k in range(first, current + 1):
            ledger = self._intervals.get(k)
            bucket = ledger.bucket(queue) if ledger else None
            times[k] = replace(bucket.time) if bucket else AgentTime()
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
        counts = dict.fromkeys(AgentState, 0)
        for agent in self._agents_serving(queue):
            counts[agent.state] += 1
        return counts

    def _record(self, cdr: CallDetailRecord, now: float) -> None:
        if cdr.kind == "manual":
            return
        config = self._config.get(cdr.queue)
        if config is None:
            config = self._config[cdr.queue] = QueueConfig(name=cdr.queue)
        k = self._index(cdr.arrived_at)
        self._total.add_call(cdr, config)
        if k >= self._oldest(now):
            self._intervals.setdefault(k, _Ledger()).add_call(cdr, config)
            self._touch(k)

    def _agent_state(self, agent_id: str, state: AgentState, now: float) -> None:
        agent = self._agents.get(agent_id)
        if agent is None:
            self._agents[agent_id] = agent = _Agent((), since=now)
        else:
            self._close(agent, now)
        agent.state = state

    def _close(self, agent: _Agent, now: float) -> None:
        end = max(now, agent.since)
        if agent.state is not AgentState.LOGGED_OUT and end > agent.since:
            self._total.add_time(agent.state, end - agent.since, agent.queues)
            for k, seconds in self._split(agent.since, end, now):
                ledger = self._intervals.setdefault(k, _Ledger())
                ledger.add_time(agent.state, seconds, agent.queues)
        agent.since = end

    def _assign(self, agent_id: str, agent: _Agent, queues: Sequence[str]) -> None:
        for name in agent.queues:
            self._serving[name].discard(agent_id)
        agent.queues = tuple(dict.fromkeys(queues))
        for name in agent.queues:
            self._serving.setdefault(name, set()).add(agent_id)

    def _agents_serving(self, queue: str | None) -> Iterator[_Agent]:
        if queue is None:
            yield from self._agents.values()
        else:
            for agent_id in self._serving.get(queue, ()):
                yield self._agents[agent_id]

    def _index(self, t: float) -> int:
        k = math.floor((t - self.origin) / self.interval_s)
        if self._start(k + 1) <= t:
            k += 1
        elif self._start(k) > t:
            k -= 1
        return k

    def _start(self, k: int) -> float:
        return self.origin + k * self.interval_s

    def _oldest(self, now: float) -> int:
        return self._index(now) - self.keep_intervals + 1

    def _split(self, start: float, end: float, now: float) -> Iterator[tuple[int, float]]:
        lo = max(start, self._start(self._oldest(now)))
        k = self._index(lo)
        while lo < end:
            hi = min(end, self._start(k + 1))
            yield k, hi - lo
            lo, k = hi, k + 1

    def _touch(self, k: int) -> None:
        if self._first is None or k < self._first:
            self._first = k

    def _prune(self, now: float) -> None:
        oldest = self._oldest(now)
        if oldest > self._kept_from:
            self._intervals = {k: v for k, v in self._intervals.items() if k >= oldest}
            self._kept_from = oldest


# --- random sequences ---------------------------------------------------------------------

QUEUES = {
    "q1": QueueConfig(name="q1", sl_target_s=20.0, short_abandon_s=5.0),
    "q2": QueueConfig(name="q2", sl_target_s=60.0, short_abandon_s=10.0),
}
AGENTS = {"a": ["q1"], "b": ["q2"], "c": ["q1", "q2"], "d": []}
"""Agent "x" and queue "qx" are unknown to the statistics at first."""
NAMES = ("q1", "q2", "qx")


@dataclass(frozen=True)
class Step:
    """One thing that happens ``dt`` after the one before (``dt`` < 0: the clock went back)."""

    dt: float
    what: str
    agent_id: str = "a"
    state: AgentState = S.READY
    queue: str = "q1"
    ago: float = 0.0
    wait: float = 0.0
    outcome: str = "answered"
    talk: float = 0.0
    wrap: float = 0.0
    kind: str = "inbound"
    queues: tuple[str, ...] = ()


dts = st.one_of(
    st.sampled_from([0.0, 0.25, 1.0, 7.0, 50.0, 99.5, 100.0, 150.0, 230.0, 900.0, -3.0, -120.0]),
    st.floats(0.0, 400.0),
)
agent_ids = st.sampled_from(["a", "b", "c", "d", "x"])
states = st.builds(Step, dts, st.just("state"), agent_ids, st.sampled_from(S))
calls = st.builds(
    Step,
    dts,
    st.just("call"),
    queue=st.sampled_from(NAMES),
    ago=st.one_of(st.floats(0.0, 1000.0), st.sampled_from([0.0, 100.0, 250.0])),
    wait=st.one_of(st.floats(0.0, 80.0), st.sampled_from([3.0, 5.0, 10.0, 20.0, 60.0])),
    outcome=st.sampled_from(["answered", "abandoned", "failed", "exited"]),
    talk=st.floats(0.0, 300.0),
    wrap=st.floats(0.0, 30.0),
    kind=st.sampled_from(["inbound", "inbound", "callback", "manual"]),
)
moves = st.builds(
    Step, dts, st.just("move"), agent_ids, queues=st.lists(st.sampled_from(NAMES)).map(tuple)
)
configures = st.builds(
    Step,
    dts,
    st.just("configure"),
    queue=st.sampled_from(NAMES),
    wait=st.sampled_from([5.0, 20.0, 45.5]),
)
others = st.builds(Step, dts, st.just("other"), agent_ids)
reads = st.builds(Step, dts, st.just("read"))
steps = st.lists(st.one_of(states, calls, calls, moves, configures, others, reads), max_size=60)
layouts = st.sampled_from([(100.0, 0.0, 3), (100.0, 0.0, 200), (0.1, 0.1, 5), (900.0, 37.5, 2)])


def _record(i: int, step: Step, now: float) -> RecordCall:
    arrived = now - step.ago
    answered = arrived + step.wait if step.outcome == "answered" and i % 7 else None
    cdr = CallDetailRecord(
        call_id=f"c{i}",
        queue=step.queue,
        ani="1",
        caller_kind=CallerKind.UNKNOWN,
        customer_id=None,
        segment=Segment.BASIC,
        value=0.0,
        arrived_at=arrived,
        offered_at=answered,
        answered_at=answered,
        ended_at=arrived + step.wait + (step.talk if answered is not None else 0.0),
        outcome=step.outcome,
        wrap_up_s=step.wrap,
        kind=step.kind,
    )
    return RecordCall(cdr)


def _same(mine: LiveStats, theirs: Reference, now: float) -> None:
    for queue in (None, *NAMES):
        known = theirs._config, theirs._serving, theirs._total.queues
        if queue is not None and all(queue not in names for names in known):
            with pytest.raises(KeyError):
                mine.snapshot(queue, now)
            continue
        assert mine.snapshot(queue, now) == theirs.snapshot(queue, now), queue
        every = theirs.intervals(queue, now)
        assert mine.intervals(queue, now) == every, queue
        for last in (1, 2):  # the dialer's pacing reads the last two
            assert mine.intervals(queue, now, last=last) == every[-last:], (queue, last)
        assert mine.agents_by_state(queue, now) == theirs.agents_by_state(queue, now), queue


@settings(max_examples=400, deadline=None)
@given(steps, layouts, st.floats(0.0, 500.0))
def test_the_figures_are_the_references_to_the_last_bit(
    steps: list[Step], layout: tuple[float, float, int], extra: float
) -> None:
    interval_s, origin, keep = layout
    mine = LiveStats(QUEUES, AGENTS, interval_s, origin, keep_intervals=keep)
    theirs = Reference(QUEUES, AGENTS, interval_s, origin, keep)
    now = 1000.0
    for i, step in enumerate(steps):
        now += step.dt
        both: tuple[LiveStats | Reference, ...] = (mine, theirs)
        if step.what == "state":
            for stats in both:
                stats.observe(AgentStateSet(step.agent_id, step.state), now)
        elif step.what == "call":
            record = _record(i, step, now)
            for stats in both:
                stats.observe(record, now)
        elif step.what == "move":
            for stats in both:
                stats.set_agent_queues(step.agent_id, step.queues, now)
        elif step.what == "configure":
            config = QueueConfig(name=step.queue, sl_target_s=step.wait, short_abandon_s=3.0)
            for stats in both:
                stats.configure_queue(config)
        elif step.what == "other":
            other: list[Action] = [
                OfferCall("c", step.agent_id, "q1", now + 10.0),
                WithdrawOffer("c", step.agent_id, "timeout"),
            ]
            for stats in both:
                for action in other:
                    stats.observe(action, now)
        else:
            _same(mine, theirs, now)
    _same(mine, theirs, now)
    _same(mine, theirs, now + extra)
