"""The chart of a simulated day: waiting calls, service level and agents, as a PNG.

Three stacked panels over the time of day (HH:MM from the scenario's start), means
across replications: the waiting calls (each sample, and each interval's mean), the
service level of each interval by arrival (with its 95% interval and the 0.8 goal
dashed), and the agents staffed and busy. The warm-up is shaded. Drawn with
matplotlib's Agg canvas (no display, no pyplot state); labels are ASCII.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from simulators.report import SimulationReport, clock

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The service-level goal drawn on the chart.
SL_GOAL = 0.8


def tick_step(span_s: float) -> float:
    """A tick spacing giving at most about 10 ticks over ``span_s`` seconds."""
    for minutes in (5, 10, 15, 30, 60, 120, 180, 240, 360):
        if span_s / (minutes * 60.0) <= 10:
            return minutes * 60.0
    return 720 * 60.0


def plot_day(report: SimulationReport, path: str | Path, *, sl_goal: float = SL_GOAL) -> Path:
    """Write the chart of ``report`` to ``path`` (PNG) and return the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    path = Path(path)
    sc = report.scenario
    fig = Figure(figsize=(10, 8), layout="constrained")
    FigureCanvasAgg(fig)
    ax_wait, ax_sl, ax_agents = fig.subplots(3, 1, sharex=True)
    reps = report.replications
    fig.suptitle(
        f"{sc.name}: {reps} replication{'s' if reps != 1 else ''}, means"
        + (" with 95% CI" if reps > 1 else "")
    )
    _plot_waiting(ax_wait, report)
    _plot_service_level(ax_sl, report, sl_goal)
    _plot_agents(ax_agents, report)
    shade_warm_up((ax_wait, ax_sl, ax_agents), sc.warm_up_s)
    ax_agents.set_xlim(0, sc.duration_s)
    ax_agents.xaxis.set_major_locator(MultipleLocator(tick_step(sc.duration_s)))
    ax_agents.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock(report, x)))

    fig.savefig(path, format="png", dpi=100)
    return path


def _plot_waiting(ax: Axes, report: SimulationReport) -> None:
    """Waiting calls: each sample, and each interval's mean as steps."""
    t = [p.t for p in report.timeline]
    ax.plot(t, [p.waiting for p in report.timeline], lw=0.8, color="tab:blue", label="sampled")
    if report.intervals:
        edges = [i.start_s for i in report.intervals] + [report.intervals[-1].end_s]
        means = [i.waiting.mean or 0.0 for i in report.intervals]
        ax.step(
            edges,
            [*means, means[-1]],
            where="post",
            color="tab:orange",
            lw=1.5,
            label=f"mean per {report.interval_s / 60:g} min",
        )
    ax.set_ylabel("waiting calls")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize="small")


def _plot_service_level(ax: Axes, report: SimulationReport, sl_goal: float) -> None:
    """Each interval's service level as a bar (95% interval with replications), the goal
    dashed."""
    shown = [i for i in report.intervals if i.service_level.mean is not None]
    middles = [(i.start_s + i.end_s) / 2 for i in shown]
    sl = [i.service_level.mean or 0.0 for i in shown]
    ax.bar(
        middles,
        sl,
        width=[(i.end_s - i.start_s) * 0.9 for i in shown],
        color="tab:green",
        alpha=0.6,
        label="service level",
    )
    if report.replications > 1:
        err_low = [(i.service_level.mean or 0.0) - (i.service_level.low or 0.0) for i in shown]
        err_high = [(i.service_level.high or 0.0) - (i.service_level.mean or 0.0) for i in shown]
        ax.errorbar(
            middles, sl, yerr=[err_low, err_high], fmt="none", ecolor="black", lw=0.8, capsize=2
        )
    ax.axhline(sl_goal, color="tab:red", ls="--", lw=1.2, label=f"goal {sl_goal:g}")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("service level")
    ax.legend(loc="lower right", fontsize="small")


def _plot_agents(ax: Axes, report: SimulationReport) -> None:
    """Agents staffed and busy."""
    t = [p.t for p in report.timeline]
    ax.plot(t, [p.staffed for p in report.timeline], color="tab:gray", label="staffed")
    ax.plot(t, [p.busy for p in report.timeline], color="tab:purple", label="busy")
    ax.set_ylabel("agents")
    top = max((p.staffed for p in report.timeline), default=1.0)
    ax.set_ylim(0, top * 1.15 + 1)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_xlabel(f"time of day (start {report.scenario.start})")


def shade_warm_up(axes: tuple[Axes, ...], warm_up_s: float) -> None:
    """The warm-up shaded on every panel (named on the first); a grid on each."""
    for ax in axes:
        if warm_up_s > 0:
            ax.axvspan(0, warm_up_s, color="0.9", zorder=0)
        ax.grid(True, alpha=0.3)
    if warm_up_s > 0:
        axes[0].text(
            warm_up_s / 2,
            0.95,
            "warm-up",
            ha="center",
            va="top",
            transform=axes[0].get_xaxis_transform(),
            fontsize="small",
            color="0.4",
        )
