"""Replications of a scenario and what they add up to: means with 95% confidence intervals.

:func:`simulate` runs :func:`simulators.des.run_day` once per replication, each with
its own seed derived from one seed, measures each day (:func:`measure_day`) and
aggregates the days (:func:`aggregate`): for each figure, the mean across replications
and a Student-t 95% confidence interval.

What a day counts (docs/statistics.md, as :class:`queue_engine.stats.Tally` defines it):

* only calls that **arrive** in ``[warm_up_s, duration_s)``; calls of the warm-up are
  left out, calls still in progress at the end of arrivals are finished and counted;
* **service level**: answered within the queue's ``sl_target_s`` / offered, short
  abandons (within the queue's ``short_abandon_s``) left out of both; the variant
  "answered within T / answered" is reported as ``service_level_of_answered``; figures
  over several queues (overall, segments, intervals) judge each call by its own queue's
  thresholds;
* **ASA**: mean wait of answered calls; **abandon rate**: abandoned / offered;
* **occupancy**: busy / (busy + idle) agent time after the warm-up (Not Ready and logged
  out are not counted); for a queue, over the agents that serve it (an agent serving
  two queues counts for both); a segment has none;
* **intervals** (by arrival, 30 minutes by default, over the whole day including the
  warm-up, which is flagged): the same call figures, plus the mean number of waiting
  calls, staffed agents and busy agents from the day's samples.

A figure undefined in a replication (ASA with no call answered, a segment with no
calls) is left out of that figure's mean and interval: each estimate says over how
many replications (``n``) it was taken.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cti.errors import SimulationError
from cti.models import CallDetailRecord, Segment
from queue_engine.stats import Tally
from simulators.des import DayResult, run_day
from simulators.estimates import Estimate, estimate
from simulators.flow_calls import FlowCounts
from simulators.scenario import Scenario

#: Default width of the report's intervals.
INTERVAL_S = 1800.0
#: Seeds of the replications: ``seed * SEED_STRIDE + i``.
SEED_STRIDE = 1_000_003
#: The call figures with a mean and a confidence interval, in report order.
CALL_METRICS = ("service_level", "service_level_of_answered", "asa_s", "abandon_rate")

# --- one day -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """The call figures (and occupancy) of one group of calls in one replication."""

    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    service_level: float | None
    service_level_of_answered: float | None
    asa_s: float | None
    abandon_rate: float | None
    occupancy: float | None = None

    @classmethod
    def of(cls, tally: Tally, occupancy: float | None = None) -> Figures:
        return cls(
            tally.offered,
            tally.answered,
            tally.abandoned,
            tally.short_abandoned,
            tally.service_level,
            tally.service_level_of_answered,
            tally.asa_s,
            tally.abandon_rate,
            occupancy,
        )


@dataclass(frozen=True, slots=True)
class IntervalFigures:
    """One interval of one replication: its calls (by arrival) and its samples."""

    start_s: float
    end_s: float
    calls: Figures
    waiting: float | None
    """Mean waiting calls over the interval's samples (None: no sample in it)."""
    staffed: float | None
    busy: float | None


@dataclass(frozen=True, slots=True)
class DayFigures:
    """What one replication measured."""

    overall: Figures
    queues: dict[str, Figures]
    segments: dict[str, Figures]
    intervals: list[IntervalFigures]
    samples: list[tuple[float, int, int, int]]
    """(t, waiting, staffed, busy) over the day."""
    events: int
    flows: FlowCounts | None = None


def _occupancy(day: DayResult, agents: Iterable[str]) -> float | None:
    busy = idle = 0.0
    for a in agents:
        t = day.agent_time.get(a)
        if t is not None:
            busy += t.busy_s
            idle += t.idle_s
    return busy / (busy + idle) if busy + idle > 0 else None


def _mean(xs: Sequence[float]) -> float | None:
    return math.fsum(xs) / len(xs) if xs else None


@dataclass(slots=True)
class _DayTallies:
    """One day's calls counted: after the warm-up overall, per queue and per segment;
    all of them per interval."""

    overall: Tally
    queues: dict[str, Tally]
    segments: dict[str, Tally]
    by_interval: list[Tally]


def measure_day(
    scenario: Scenario, day: DayResult, *, interval_s: float = INTERVAL_S
) -> DayFigures:
    """The figures of one simulated day (see the module's docstring for what counts)."""
    if not interval_s > 0:
        raise SimulationError(f"the interval must be > 0 seconds, got {interval_s}")
    tallies = _count_calls(scenario, day, interval_s)
    return DayFigures(
        overall=Figures.of(tallies.overall, _occupancy(day, day.agent_time)),
        queues={
            name: Figures.of(
                t, _occupancy(day, (a for a, qs in day.agent_queues.items() if name in qs))
            )
            for name, t in tallies.queues.items()
        },
        segments={label: Figures.of(t) for label, t in tallies.segments.items()},
        intervals=_interval_figures(day, tallies.by_interval, interval_s, scenario.duration_s),
        samples=[(s.t, s.waiting, s.staffed, s.busy) for s in day.samples],
        events=day.events,
        flows=day.flows,
    )


def _count_calls(scenario: Scenario, day: DayResult, interval_s: float) -> _DayTallies:
    warm, end = scenario.warm_up_s, scenario.duration_s
    config = {q.name: q for q in scenario.queues}
    n_int = max(1, math.ceil(end / interval_s))
    tallies = _DayTallies(
        overall=Tally(),
        queues={q.name: Tally(q.sl_target_s, q.short_abandon_s) for q in scenario.queues},
        segments={},
        by_interval=[Tally() for _ in range(n_int)],
    )
    for cdr in day.records:
        t = cdr.arrived_at
        if not 0 <= t < end:
            continue
        q = config.get(cdr.queue)
        target = q.sl_target_s if q is not None else None
        short = q.short_abandon_s if q is not None else None
        tallies.by_interval[min(int(t // interval_s), n_int - 1)].add(
            cdr, sl_target_s=target, short_abandon_s=short
        )
        if t < warm:
            continue
        tallies.overall.add(cdr, sl_target_s=target, short_abandon_s=short)
        if q is not None:
            tallies.queues[q.name].add(cdr)
        segment = tallies.segments.setdefault(_label(day, cdr), Tally())
        segment.add(cdr, sl_target_s=target, short_abandon_s=short)
    return tallies


def _interval_figures(
    day: DayResult, by_interval: list[Tally], interval_s: float, end: float
) -> list[IntervalFigures]:
    """Each interval's calls with the means of the day's samples in it."""
    n_int = len(by_interval)
    sums = [[0.0, 0.0, 0.0, 0] for _ in range(n_int)]
    for s in day.samples:
        if 0 <= s.t < end:
            acc = sums[min(int(s.t // interval_s), n_int - 1)]
            acc[0] += s.waiting
            acc[1] += s.staffed
            acc[2] += s.busy
            acc[3] += 1
    intervals = []
    for i, (tally, acc) in enumerate(zip(by_interval, sums, strict=True)):
        k = acc[3]
        intervals.append(
            IntervalFigures(
                start_s=i * interval_s,
                end_s=min((i + 1) * interval_s, end),
                calls=Figures.of(tally),
                waiting=acc[0] / k if k else None,
                staffed=acc[1] / k if k else None,
                busy=acc[2] / k if k else None,
            )
        )
    return intervals


def _label(day: DayResult, cdr: CallDetailRecord) -> str:
    return day.labels.get(cdr.call_id) or cdr.segment.value


# --- across replications ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupReport:
    """A group of calls (overall, a queue, a segment) across replications."""

    calls: int
    """Calls counted, summed over the replications."""
    answered: int
    abandoned: int
    short_abandoned: int
    service_level: Estimate
    service_level_of_answered: Estimate
    asa_s: Estimate
    abandon_rate: Estimate
    occupancy: Estimate
    sl_target_s: float | None = None
    """The queue's SL threshold; None over several queues (each call judged by its own)."""
    short_abandon_s: float | None = None


@dataclass(frozen=True, slots=True)
class IntervalReport:
    start_s: float
    end_s: float
    warm_up: bool
    """The interval begins in the warm-up: some or all of its calls are left out of the
    day's figures (the interval's own figures count them all)."""
    calls: int
    offered: Estimate
    """Calls arriving in the interval, per replication."""
    service_level: Estimate
    asa_s: Estimate
    abandon_rate: Estimate
    waiting: Estimate
    staffed: Estimate
    busy: Estimate


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """Means across replications at one sample time (for the chart)."""

    t: float
    waiting: float
    staffed: float
    busy: float


@dataclass(frozen=True)
class SimulationReport:
    scenario: Scenario
    replications: int
    seed: int
    seeds: tuple[int, ...]
    overall: GroupReport
    queues: dict[str, GroupReport]
    segments: dict[str, GroupReport]
    intervals: list[IntervalReport]
    timeline: list[TimelinePoint]
    events: int
    """Simulation events, summed over the replications."""
    wall_s: float
    interval_s: float = INTERVAL_S
    flows: dict[str, Estimate] | None = None
    """Per day, what the call flows did (:data:`FLOW_FIGURES`); None without flows."""

    @property
    def calls(self) -> int:
        """Calls counted (arriving after the warm-up), summed over the replications."""
        return self.overall.calls


def _group(
    figures: Sequence[Figures],
    *,
    sl_target_s: float | None = None,
    short_abandon_s: float | None = None,
) -> GroupReport:
    return GroupReport(
        calls=sum(f.offered for f in figures),
        answered=sum(f.answered for f in figures),
        abandoned=sum(f.abandoned for f in figures),
        short_abandoned=sum(f.short_abandoned for f in figures),
        service_level=estimate(f.service_level for f in figures),
        service_level_of_answered=estimate(f.service_level_of_answered for f in figures),
        asa_s=estimate(f.asa_s for f in figures),
        abandon_rate=estimate(f.abandon_rate for f in figures),
        occupancy=estimate(f.occupancy for f in figures),
        sl_target_s=sl_target_s,
        short_abandon_s=short_abandon_s,
    )


#: What the call flows did, per day: figure -> its text in the report.
FLOW_FIGURES = {
    "callers": "callers in a flow",
    "menu_hang_ups": "hung up in the menu (no abandon)",
    "goodbyes": "ended by the flow",
    "messages": "voicemail messages",
    "callbacks_asked": "callbacks taken (virtual hold)",
    "message_callbacks": "messages called back",
}


def _flow_count(counts: FlowCounts, name: str) -> float:
    if name == "message_callbacks":
        return float(sum(r.outcome == "answered" for r in counts.message_callbacks))
    return float(getattr(counts, name))


def _flow_figures(days: Sequence[DayFigures]) -> dict[str, Estimate] | None:
    """Per day means of the flows' counts, and of the callers each queue received."""
    counts = [d.flows for d in days if d.flows is not None]
    if not counts:
        return None
    out = {name: estimate(_flow_count(c, name) for c in counts) for name in FLOW_FIGURES}
    for queue in sorted({q for c in counts for q in c.queued}):
        out[f"queued:{queue}"] = estimate(float(c.queued.get(queue, 0)) for c in counts)
    return out


def _segment_order(scenario: Scenario, labels: Iterable[str]) -> list[str]:
    """Named value groups in scenario order, then value segments best first, then the rest."""
    named: list[str] = []
    for traffic in scenario.traffic:
        for v in traffic.values:
            if v.label and v.label not in named:
                named.append(v.label)
    ranks = {s.value: i for i, s in enumerate(Segment)}

    def key(label: str) -> tuple[int, int, str]:
        if label in named:
            return (0, named.index(label), label)
        if label in ranks:
            return (1, ranks[label], label)
        return (2, 0, label)

    return sorted(set(labels), key=key)


def aggregate(
    scenario: Scenario,
    days: Sequence[DayFigures],
    *,
    seed: int,
    seeds: Sequence[int] = (),
    wall_s: float = 0.0,
    interval_s: float = INTERVAL_S,
) -> SimulationReport:
    """Means and 95% intervals across the days' figures."""
    if not days:
        raise SimulationError("no replication to report on")
    empty = Figures(0, 0, 0, 0, None, None, None, None)
    queues = {
        q.name: _group(
            [d.queues.get(q.name, empty) for d in days],
            sl_target_s=q.sl_target_s,
            short_abandon_s=q.short_abandon_s,
        )
        for q in scenario.queues
    }
    labels = _segment_order(scenario, (label for d in days for label in d.segments))
    segments = {label: _group([d.segments.get(label, empty) for d in days]) for label in labels}
    return SimulationReport(
        scenario=scenario,
        replications=len(days),
        seed=seed,
        seeds=tuple(seeds),
        overall=_group([d.overall for d in days]),
        queues=queues,
        segments=segments,
        intervals=_interval_reports(scenario, days),
        timeline=_timeline(days),
        events=sum(d.events for d in days),
        wall_s=wall_s,
        interval_s=interval_s,
        flows=_flow_figures(days),
    )


def _interval_reports(scenario: Scenario, days: Sequence[DayFigures]) -> list[IntervalReport]:
    intervals = []
    for i in range(min(len(d.intervals) for d in days)):
        its = [d.intervals[i] for d in days]
        first = its[0]
        intervals.append(
            IntervalReport(
                start_s=first.start_s,
                end_s=first.end_s,
                warm_up=first.start_s < scenario.warm_up_s,
                calls=sum(x.calls.offered for x in its),
                offered=estimate(float(x.calls.offered) for x in its),
                service_level=estimate(x.calls.service_level for x in its),
                asa_s=estimate(x.calls.asa_s for x in its),
                abandon_rate=estimate(x.calls.abandon_rate for x in its),
                waiting=estimate(x.waiting for x in its),
                staffed=estimate(x.staffed for x in its),
                busy=estimate(x.busy for x in its),
            )
        )
    return intervals


def _timeline(days: Sequence[DayFigures]) -> list[TimelinePoint]:
    """The days' samples averaged at each sample time."""
    at: dict[float, list[tuple[int, int, int]]] = {}
    for d in days:
        for t, waiting, staffed, busy in d.samples:
            at.setdefault(t, []).append((waiting, staffed, busy))
    return [
        TimelinePoint(
            t,
            sum(x[0] for x in xs) / len(xs),
            sum(x[1] for x in xs) / len(xs),
            sum(x[2] for x in xs) / len(xs),
        )
        for t, xs in sorted(at.items())
    ]


def replication_seed(seed: int, i: int) -> int:
    """The seed of replication ``i`` (from 0) of a run seeded with ``seed``."""
    return seed * SEED_STRIDE + i


def simulate(
    scenario: Scenario,
    replications: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    interval_s: float = INTERVAL_S,
) -> SimulationReport:
    """Run ``replications`` days of ``scenario`` and aggregate them. ``progress(done,
    total)`` is called before the first and after each replication."""
    if replications < 1:
        raise SimulationError(f"replications must be at least 1, got {replications}")
    if not interval_s > 0:
        raise SimulationError(f"the interval must be > 0 seconds, got {interval_s}")
    started = time.perf_counter()
    seeds = [replication_seed(seed, i) for i in range(replications)]
    days: list[DayFigures] = []
    if progress is not None:
        progress(0, replications)
    for i, s in enumerate(seeds):
        days.append(measure_day(scenario, run_day(scenario, s), interval_s=interval_s))
        if progress is not None:
            progress(i + 1, replications)
    return aggregate(
        scenario,
        days,
        seed=seed,
        seeds=seeds,
        wall_s=time.perf_counter() - started,
        interval_s=interval_s,
    )


# --- output --------------------------------------------------------------------------


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def _est_json(e: Estimate) -> dict[str, Any]:
    ci = e.ci95
    return {
        "mean": _r(e.mean),
        "ci95": None if ci is None else [_r(ci[0]), _r(ci[1])],
        "n": e.n,
    }


def _group_json(g: GroupReport) -> dict[str, Any]:
    out: dict[str, Any] = {
        "calls": g.calls,
        "answered": g.answered,
        "abandoned": g.abandoned,
        "short_abandoned": g.short_abandoned,
    }
    for name in (*CALL_METRICS, "occupancy"):
        out[name] = _est_json(getattr(g, name))
    if g.sl_target_s is not None:
        out["sl_target_s"] = g.sl_target_s
    if g.short_abandon_s is not None:
        out["short_abandon_s"] = g.short_abandon_s
    return out


def clock(report: SimulationReport, t: float) -> str:
    """``t`` seconds from the scenario's start as a time of day, HH:MM."""
    minutes = round((report.scenario.start_s + t) / 60.0)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def to_json(report: SimulationReport, *, intervals: bool = False) -> dict[str, Any]:
    """The report as one JSON-ready object: overall figures at the top level, then
    ``queues`` and ``segments`` shaped the same way; each estimate is
    ``{"mean": x, "ci95": [lo, hi], "n": replications where defined}``."""
    out: dict[str, Any] = {
        "scenario": report.scenario.name,
        "replications": report.replications,
        "seed": report.seed,
        **_group_json(report.overall),
        "queues": {name: _group_json(g) for name, g in report.queues.items()},
        "segments": {name: _group_json(g) for name, g in report.segments.items()},
        "warm_up_s": report.scenario.warm_up_s,
        "duration_s": report.scenario.duration_s,
        "events": report.events,
        "wall_s": round(report.wall_s, 3),
    }
    if report.flows is not None:
        out["flows"] = {name: _est_json(e) for name, e in report.flows.items()}
    if intervals:
        out["interval_s"] = report.interval_s
        out["intervals"] = [
            {
                "start": clock(report, i.start_s),
                "start_s": i.start_s,
                "end_s": i.end_s,
                "warm_up": i.warm_up,
                "calls": i.calls,
                "offered": _est_json(i.offered),
                "service_level": _est_json(i.service_level),
                "asa_s": _est_json(i.asa_s),
                "abandon_rate": _est_json(i.abandon_rate),
                "waiting": _est_json(i.waiting),
                "staffed": _est_json(i.staffed),
                "busy": _est_json(i.busy),
            }
            for i in report.intervals
        ]
    return out


def _cell(e: Estimate, kind: str, replications: int) -> str:
    if e.mean is None:
        return "-"
    half = e.half_width or 0.0
    if kind == "pct":
        text = f"{e.mean:6.1%} ±{half * 100:.1f}"
    elif kind == "s":
        text = f"{e.mean:6.1f}s ±{half:.1f}"
    else:
        text = f"{e.mean:6.2f} ±{half:.2f}"
    if e.n < replications:
        text += f" n={e.n}"
    return text


def format_text(report: SimulationReport, *, intervals: bool = False) -> str:
    """A readable summary: overall, per queue and per segment; per interval on request."""
    lines = [*_summary_head(report), "", *_group_rows(report)]
    if report.flows is not None:
        lines += ["", *_flow_rows(report, report.flows)]
    if intervals:
        lines += ["", *_interval_rows(report)]
    return "\n".join(lines)


def _summary_head(report: SimulationReport) -> list[str]:
    sc = report.scenario
    reps = report.replications
    lines = [
        f"{sc.name}: {reps} replication{'s' if reps != 1 else ''} of {sc.hours:g} h "
        f"from {sc.start}, warm-up {sc.warm_up_minutes:g} min left out, seed {report.seed}",
        f"calls counted {report.calls:,} ({report.calls / reps:,.1f} per replication), "
        f"{report.events:,} events, {report.wall_s:.2f} s wall ({report.wall_s / reps:.3f} s "
        "per replication)",
    ]
    if reps == 1:
        lines.append(
            "1 replication: no confidence intervals (each is [mean, mean], shown as ±0.0); "
            "run more replications for them."
        )
    else:
        lines.append(
            "mean ±half-width of the 95% confidence interval across replications (Student t); "
            "n=: replications where the figure was defined"
        )
    return lines


def _group_rows(report: SimulationReport) -> list[str]:
    """The table of overall, each queue and each segment, with the counts under it."""
    reps = report.replications
    head = (
        f"{'':<22} {'calls/rep':>9}  {'SL':<15} {'SL of answered':<15} {'ASA':<16} "
        f"{'abandon':<15} occupancy"
    )

    def row(name: str, g: GroupReport) -> str:
        return (
            f"{name:<22} {g.calls / reps:>9.1f}  "
            f"{_cell(g.service_level, 'pct', reps):<15} "
            f"{_cell(g.service_level_of_answered, 'pct', reps):<15} "
            f"{_cell(g.asa_s, 's', reps):<16} "
            f"{_cell(g.abandon_rate, 'pct', reps):<15} "
            f"{_cell(g.occupancy, 'pct', reps)}"
        ).rstrip()

    lines = [head, row("overall", report.overall)]
    for name, g in report.queues.items():
        lines.append(row(f"queue {name} (SL {g.sl_target_s:g}s)", g))
    for name, g in report.segments.items():
        lines.append(row(f"segment {name}", g))
    lines.append(
        f"(short abandons, left out of SL: {report.overall.short_abandoned:,}; "
        f"abandoned: {report.overall.abandoned:,}; answered: {report.overall.answered:,})"
    )
    return lines


def _flow_rows(report: SimulationReport, flows: dict[str, Estimate]) -> list[str]:
    """The call flows, per day: callers, menu hang-ups, messages, callbacks, queues."""
    reps = report.replications
    names = {**FLOW_FIGURES, **{k: f"put in queue {k[7:]}" for k in flows if k[:7] == "queued:"}}
    lines = ["call flows, per day (menu time is no queue wait; menu hang-ups no abandons)"]
    for key, e in flows.items():
        lines.append(f"  {names[key]:<34} {_cell(e, 'n', reps)}")
    return lines


def _interval_rows(report: SimulationReport) -> list[str]:
    reps = report.replications
    lines = [
        f"per {report.interval_s / 60:g} minutes by arrival (* = warm-up, not counted above)",
        f"{'from':<7} {'offered':<15} {'SL':<15} {'ASA':<16} {'abandon':<15} "
        f"{'waiting':<14} {'staffed':<14} busy",
    ]
    for i in report.intervals:
        mark = "*" if i.warm_up else " "
        lines.append(
            (
                f"{clock(report, i.start_s)}{mark:<2} "
                f"{_cell(i.offered, 'n', reps):<15} "
                f"{_cell(i.service_level, 'pct', reps):<15} "
                f"{_cell(i.asa_s, 's', reps):<16} "
                f"{_cell(i.abandon_rate, 'pct', reps):<15} "
                f"{_cell(i.waiting, 'n', reps):<14} "
                f"{_cell(i.staffed, 'n', reps):<14} "
                f"{_cell(i.busy, 'n', reps)}"
            ).rstrip()
        )
    return lines
