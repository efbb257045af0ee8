"""A day with and without virtual hold, side by side: one table and one chart.

:func:`compare_virtual_hold` runs a scenario twice with the same replication seeds: as
written, and without the callback offer (``[caller] callback_offer`` off, and no
``traffic.callback``). A flow's arrivals and each of its callers draw from streams of
their own (:mod:`simulators.des`), so both variants get the same callers with the same
patience and the same menu keys: the difference is the offer.

"On the line" is the time a caller held after joining its queue: to the answer, the
abandon, or the moment it asked for the callback (a callback's wait for the agent goes
on after the caller hung up: "to an agent" counts that too).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cti.errors import SimulationError
from cti.models import CallDetailRecord
from simulators.des import DayResult, run_day
from simulators.estimates import Estimate, estimate
from simulators.report import (
    INTERVAL_S,
    DayFigures,
    SimulationReport,
    aggregate,
    clock,
    measure_day,
    replication_seed,
)
from simulators.scenario import Scenario

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Upper edges (seconds on the line) of the chart's wait histogram.
WAIT_BINS_S = (30, 60, 90, 120, 180, 240, 300, 420, 600)


def without_virtual_hold(scenario: Scenario) -> Scenario:
    """``scenario`` with no callback offered (the flows' nor the plain traffic's)."""
    caller = scenario.caller.model_copy(update={"callback_offer": False})
    traffic = tuple(t.model_copy(update={"callback": None}) for t in scenario.traffic)
    return scenario.model_copy(update={"caller": caller, "traffic": traffic})


def with_virtual_hold(scenario: Scenario) -> Scenario:
    """``scenario`` with the flows' callback offer on (plain traffic as written)."""
    caller = scenario.caller.model_copy(update={"callback_offer": True})
    return scenario.model_copy(update={"caller": caller})


def line_wait(cdr: CallDetailRecord) -> float:
    """Seconds the caller held on the line in its queue (module docstring)."""
    if cdr.callback_requested_at is not None:
        return cdr.callback_requested_at - cdr.arrived_at
    return cdr.wait_s


@dataclass(frozen=True, slots=True)
class DayExtras:
    """One day's figures beyond the report's."""

    offered: int
    answered: int
    abandoned: int
    longest_on_line_s: float | None
    p95_on_line_s: float | None
    longest_to_agent_s: float | None
    callbacks: int
    menu_hang_ups: int
    messages: int
    line_waits: tuple[float, ...]


def day_extras(scenario: Scenario, day: DayResult, figures: DayFigures) -> DayExtras:
    """What one day adds to the comparison (calls arriving after the warm-up)."""
    counted = [r for r in day.records if scenario.warm_up_s <= r.arrived_at < scenario.duration_s]
    waits = sorted(line_wait(r) for r in counted)
    flows = day.flows
    return DayExtras(
        offered=figures.overall.offered,
        answered=figures.overall.answered,
        abandoned=figures.overall.abandoned,
        longest_on_line_s=waits[-1] if waits else None,
        p95_on_line_s=waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)]
        if waits
        else None,
        longest_to_agent_s=max((r.wait_s for r in counted), default=None),
        callbacks=sum(r.callback_requested_at is not None for r in counted),
        menu_hang_ups=flows.menu_hang_ups if flows is not None else 0,
        messages=flows.messages if flows is not None else 0,
        line_waits=tuple(waits),
    )


@dataclass(frozen=True)
class Variant:
    """One side of the comparison."""

    name: str
    report: SimulationReport
    extras: tuple[DayExtras, ...]


@dataclass(frozen=True)
class Comparison:
    without: Variant
    with_: Variant

    @property
    def variants(self) -> tuple[Variant, Variant]:
        return (self.without, self.with_)


def _run(
    scenario: Scenario, name: str, seed: int, seeds: Sequence[int], tick: Callable[[], None]
) -> Variant:
    started = time.perf_counter()
    days: list[DayFigures] = []
    extras: list[DayExtras] = []
    for s in seeds:
        day = run_day(scenario, s)
        figures = measure_day(scenario, day)
        days.append(figures)
        extras.append(day_extras(scenario, day, figures))
        tick()
    report = aggregate(scenario, days, seed=seed, seeds=seeds, wall_s=time.perf_counter() - started)
    return Variant(name, report, tuple(extras))


def compare_virtual_hold(
    scenario: Scenario,
    replications: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """Run ``scenario`` without and with virtual hold, on the same replication seeds."""
    if replications < 1:
        raise SimulationError(f"replications must be at least 1, got {replications}")
    seeds = [replication_seed(seed, i) for i in range(replications)]
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, 2 * replications)

    if progress is not None:
        progress(0, 2 * replications)
    return Comparison(
        without=_run(without_virtual_hold(scenario), "without", seed, seeds, tick),
        with_=_run(with_virtual_hold(scenario), "with virtual hold", seed, seeds, tick),
    )


# --- the table -----------------------------------------------------------------------


def _fmt(e: Estimate, kind: str) -> str:
    if e.mean is None:
        return "-"
    half = e.half_width or 0.0
    if kind == "pct":
        return f"{e.mean:.1%} ±{half * 100:.1f}"
    if kind == "s":
        return f"{e.mean:.1f} s ±{half:.1f}"
    return f"{e.mean:,.1f} ±{half:.1f}"


def comparison_rows(c: Comparison) -> list[tuple[str, str, str]]:
    """(figure, without, with) for the table, per simulated day (means ±95% CI)."""

    def count(v: Variant, field: str) -> Estimate:
        return estimate(float(getattr(x, field)) for x in v.extras)

    def seconds(v: Variant, field: str) -> Estimate:
        return estimate(getattr(x, field) for x in v.extras)

    rows: list[tuple[str, Callable[[Variant], str]]] = [
        ("offered (calls/day)", lambda v: _fmt(count(v, "offered"), "n")),
        ("answered", lambda v: _fmt(count(v, "answered"), "n")),
        ("abandoned", lambda v: _fmt(count(v, "abandoned"), "n")),
        ("abandon rate", lambda v: _fmt(v.report.overall.abandon_rate, "pct")),
        ("service level", lambda v: _fmt(v.report.overall.service_level, "pct")),
        ("ASA (callbacks: to the call)", lambda v: _fmt(v.report.overall.asa_s, "s")),
        ("longest wait on the line", lambda v: _fmt(seconds(v, "longest_on_line_s"), "s")),
        ("95% waited on the line within", lambda v: _fmt(seconds(v, "p95_on_line_s"), "s")),
        ("longest wait for an agent", lambda v: _fmt(seconds(v, "longest_to_agent_s"), "s")),
        ("callbacks taken", lambda v: _fmt(count(v, "callbacks"), "n")),
        ("menu hang-ups (no abandon)", lambda v: _fmt(count(v, "menu_hang_ups"), "n")),
        ("voicemail messages", lambda v: _fmt(count(v, "messages"), "n")),
    ]  # fmt: skip
    return [(name, cell(c.without), cell(c.with_)) for name, cell in rows]


def format_comparison(c: Comparison) -> str:
    """The one table: both days side by side, each figure per day with its 95% CI."""
    sc = c.with_.report.scenario
    reps = c.with_.report.replications
    rows = comparison_rows(c)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len("without virtual hold"), *(len(r[1]) for r in rows))
    head = [
        f"{sc.name}: {reps} replication{'s' if reps != 1 else ''} of {sc.hours:g} h from "
        f"{sc.start}, the same seeds for both (seed {c.with_.report.seed}); per day, "
        "mean ±half-width of the 95% CI",
        "",
        f"{'':<{w0}}  {'without virtual hold':<{w1}}  with virtual hold",
    ]
    body = [f"{name:<{w0}}  {a:<{w1}}  {b}" for name, a, b in rows]
    return "\n".join(head + body)


# --- the chart -----------------------------------------------------------------------

_COLOURS = {"without": "tab:red", "with virtual hold": "tab:blue"}


def plot_comparison(c: Comparison, path: str | Path) -> Path:
    """Write the chart (PNG): waiting calls over the day, the abandon rate per interval,
    and how long callers held on the line, for both variants."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    from simulators.plot import shade_warm_up, tick_step

    path = Path(path)
    report = c.with_.report
    sc = report.scenario
    fig = Figure(figsize=(10, 9), layout="constrained")
    FigureCanvasAgg(fig)
    ax_wait, ax_abandon, ax_hist = fig.subplots(3, 1)
    fig.suptitle(
        f"{sc.name}: with and without virtual hold, {report.replications} replication"
        f"{'s' if report.replications != 1 else ''} (same seeds), means"
    )
    for v in c.variants:
        colour = _COLOURS.get(v.name, "tab:gray")
        tl = v.report.timeline
        ax_wait.plot([p.t for p in tl], [p.waiting for p in tl], lw=1.0, color=colour,
                     label=v.name)  # fmt: skip
    ax_wait.set_ylabel("calls in queue\n(callbacks too)")
    ax_wait.set_ylim(bottom=0)
    ax_wait.legend(loc="upper right", fontsize="small")
    _plot_abandons(ax_abandon, c)
    for ax in (ax_wait, ax_abandon):
        ax.set_xlim(0, sc.duration_s)
        ax.xaxis.set_major_locator(MultipleLocator(tick_step(sc.duration_s)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock(report, x)))
    shade_warm_up((ax_wait, ax_abandon), sc.warm_up_s)
    _plot_line_waits(ax_hist, c)
    fig.savefig(path, format="png", dpi=100)
    return path


def _plot_abandons(ax: Axes, c: Comparison) -> None:
    width = INTERVAL_S * 0.42
    for k, v in enumerate(c.variants):
        shown = [i for i in v.report.intervals if i.abandon_rate.mean is not None]
        ax.bar(
            [(i.start_s + i.end_s) / 2 + (k - 0.5) * width for i in shown],
            [i.abandon_rate.mean or 0.0 for i in shown],
            width=width,
            color=_COLOURS.get(v.name, "tab:gray"),
            alpha=0.7,
            label=v.name,
        )
    ax.set_ylabel("abandon rate\n(by arrival)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize="small")
    ax.set_xlabel(f"time of day (start {c.with_.report.scenario.start})")


def _plot_line_waits(ax: Axes, c: Comparison) -> None:
    """Callers per day by how long they held on the line, in bins."""
    edges = [0, *WAIT_BINS_S]
    labels = [f"{a}-{b}" for a, b in itertools.pairwise(edges)] + [f">{edges[-1]}"]
    width = 0.4
    for k, v in enumerate(c.variants):
        counts = [0.0] * len(labels)
        for x in v.extras:
            for w in x.line_waits:
                i = next((j for j, top in enumerate(WAIT_BINS_S) if w < top), len(WAIT_BINS_S))
                counts[i] += 1
        days = max(1, len(v.extras))
        ax.bar(
            [i + (k - 0.5) * width for i in range(len(labels))],
            [n / days for n in counts],
            width=width,
            color=_COLOURS.get(v.name, "tab:gray"),
            alpha=0.7,
            label=v.name,
        )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yscale("log")
    ax.set_ylabel("callers per day")
    ax.set_xlabel("seconds on the line in the queue (to answer, abandon or callback)")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(True, alpha=0.3)
