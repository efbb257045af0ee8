"""The chart of a simulated day: waiting calls, service level and agents, as a PNG.

Three stacked panels over the time of day (HH:MM from the scenario's start), means
across replications: the waiting calls (each sample, and each interval's mean), the
service level of each interval by arrival (with its 95% interval and the 0.8 goal
dashed), and the agents staffed and busy. The warm-up is shaded. Drawn with
matplotlib's Agg canvas (no display, no pyplot state); labels are ASCII.
"""

from __future__ import annotations

from pathlib import Path

from simulators.report import SimulationReport, clock

#: The service-level goal drawn on the chart.
SL_GOAL = 0.8


def _tick_step(span_s: float) -> float:
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
    end = sc.duration_s
    fig = Figure(figsize=(10, 8), layout="constrained")
    FigureCanvasAgg(fig)
    ax_wait, ax_sl, ax_agents = fig.subplots(3, 1, sharex=True)
    reps = report.replications
    fig.suptitle(
        f"{sc.name}: {reps} replication{'s' if reps != 1 else ''}, means"
        + (" with 95% CI" if reps > 1 else "")
    )

    t = [p.t for p in report.timeline]
    ax_wait.plot(t, [p.waiting for p in report.timeline], lw=0.8, color="tab:blue", label="sampled")
    if report.intervals:
        edges = [i.start_s for i in report.intervals] + [report.intervals[-1].end_s]
        means = [i.waiting.mean or 0.0 for i in report.intervals]
        ax_wait.step(
            edges,
            [*means, means[-1]],
            where="post",
            color="tab:orange",
            lw=1.5,
            label=f"mean per {report.interval_s / 60:g} min",
        )
    ax_wait.set_ylabel("waiting calls")
    ax_wait.set_ylim(bottom=0)
    ax_wait.legend(loc="upper right", fontsize="small")

    shown = [i for i in report.intervals if i.service_level.mean is not None]
    sl = [i.service_level.mean or 0.0 for i in shown]
    err_low = [(i.service_level.mean or 0.0) - (i.service_level.low or 0.0) for i in shown]
    err_high = [(i.service_level.high or 0.0) - (i.service_level.mean or 0.0) for i in shown]
    ax_sl.bar(
        [(i.start_s + i.end_s) / 2 for i in shown],
        sl,
        width=[(i.end_s - i.start_s) * 0.9 for i in shown],
        color="tab:green",
        alpha=0.6,
        label="service level",
    )
    if reps > 1:
        ax_sl.errorbar(
            [(i.start_s + i.end_s) / 2 for i in shown],
            sl,
            yerr=[err_low, err_high],
            fmt="none",
            ecolor="black",
            lw=0.8,
            capsize=2,
        )
    ax_sl.axhline(sl_goal, color="tab:red", ls="--", lw=1.2, label=f"goal {sl_goal:g}")
    ax_sl.set_ylim(0, 1.05)
    ax_sl.set_ylabel("service level")
    ax_sl.legend(loc="lower right", fontsize="small")

    ax_agents.plot(t, [p.staffed for p in report.timeline], color="tab:gray", label="staffed")
    ax_agents.plot(t, [p.busy for p in report.timeline], color="tab:purple", label="busy")
    ax_agents.set_ylabel("agents")
    top = max((p.staffed for p in report.timeline), default=1.0)
    ax_agents.set_ylim(0, top * 1.15 + 1)
    ax_agents.legend(loc="lower right", fontsize="small")
    ax_agents.set_xlabel(f"time of day (start {sc.start})")

    for ax in (ax_wait, ax_sl, ax_agents):
        if sc.warm_up_s > 0:
            ax.axvspan(0, sc.warm_up_s, color="0.9", zorder=0)
        ax.grid(True, alpha=0.3)
    if sc.warm_up_s > 0:
        ax_wait.text(
            sc.warm_up_s / 2,
            0.95,
            "warm-up",
            ha="center",
            va="top",
            transform=ax_wait.get_xaxis_transform(),
            fontsize="small",
            color="0.4",
        )
    ax_agents.set_xlim(0, end)
    ax_agents.xaxis.set_major_locator(MultipleLocator(_tick_step(end)))
    ax_agents.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock(report, x)))

    fig.savefig(path, format="png", dpi=100)
    return path
