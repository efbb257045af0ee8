"""`cti simulate`: replications of a scenario on the production router, with 95% CIs."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulators.report import SimulationReport
    from simulators.scenario import Scenario

ORDER = 20


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser(
        "simulate",
        help="run a scenario file for N simulated days: SL, ASA, abandons, occupancy with 95%% CIs",
        description="Discrete-event replications of a scenario on the production router. "
        "Per queue, per value segment and overall: service level, ASA, abandon rate and "
        "occupancy, each the mean across replications with a Student-t 95% confidence interval.",
    )
    sim.add_argument("file", type=Path, help="scenario TOML (see simulators/scenarios/)")
    sim.add_argument("--replications", type=int, help="simulated days (default: the scenario's)")
    sim.add_argument("--seed", type=int, help="seed of the run (default: the scenario's)")
    sim.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sim.add_argument("--plot", type=Path, metavar="FILE.png", help="write a chart of the day")
    sim.add_argument("--intervals", action="store_true", help="figures per 30-minute interval")
    sim.add_argument(
        "--live",
        action="store_true",
        help="send the traffic through the simulator trunk into the running engine with "
        "bot agents, in real time (a load test); one day, the same report",
    )
    sim.add_argument(
        "--minutes", type=float, help="with --live: run only the first N minutes of the day"
    )
    sim.add_argument(
        "--compiled",
        action="store_true",
        help="run the router and the event loop compiled to C by mypyc (about twice as "
        "fast; the same days; not with --live); built on first use, needs gcc and mypy",
    )
    sim.add_argument(
        "--compare-virtual-hold",
        action="store_true",
        help="run the scenario without and with the callback offer (virtual hold) on the "
        "same seeds and print one table of both days (abandons, the longest wait...); "
        "--plot draws both (e.g. simulators/scenarios/virtual_hold.toml)",
    )

    sim.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cti.errors import SimulationError
    from simulators.report import format_text, simulate, to_json
    from simulators.scenario import load_scenario

    if args.compiled and not args.live:
        from simulators.compiled import is_compiled

        if not is_compiled():
            return _run_compiled(args.argv)
    scenario = load_scenario(args.file)
    replications = scenario.replications if args.replications is None else args.replications
    if replications < 1:
        raise SimulationError(f"--replications must be at least 1, got {replications}")
    seed = scenario.seed if args.seed is None else args.seed
    show = sys.stderr.isatty()
    progress = partial(_progress, show)
    if args.compare_virtual_hold:
        return _compare(args, scenario, replications, seed, progress, show)
    if args.live:
        report = _simulate_live(scenario, seed, args.minutes, show)
    else:
        report = simulate(scenario, replications, seed, progress)
    if show:
        print(file=sys.stderr)
    if args.plot is not None:
        from simulators.plot import plot_day

        try:
            plot_day(report, args.plot)
        except OSError as exc:
            raise SimulationError(f"cannot write the chart to {args.plot}: {exc}") from None
    if args.json:
        print(json.dumps(to_json(report, intervals=args.intervals), ensure_ascii=False))
        return 0
    print(format_text(report, intervals=args.intervals))
    if args.plot is not None:
        print(f"chart: {args.plot}")
    return 0


def _progress(show: bool, done: int, total: int) -> None:
    if show:
        bar = "#" * (done * 30 // total)
        print(f"\r[{bar:<30}] {done}/{total} replications", end="", file=sys.stderr, flush=True)


def _compare(
    args: argparse.Namespace,
    scenario: Scenario,
    replications: int,
    seed: int,
    progress: Callable[[int, int], None],
    show: bool,
) -> int:
    """``--compare-virtual-hold``: one table of both days, and the chart with --plot."""
    from cti.errors import SimulationError
    from simulators.compare import compare_virtual_hold, format_comparison, plot_comparison

    if args.live or args.json or args.intervals:
        raise SimulationError("--compare-virtual-hold prints its own table: not with "
                              "--live, --json or --intervals")  # fmt: skip
    comparison = compare_virtual_hold(scenario, replications, seed, progress)
    if show:
        print(file=sys.stderr)
    print(format_comparison(comparison))
    if args.plot is not None:
        try:
            plot_comparison(comparison, args.plot)
        except OSError as exc:
            raise SimulationError(f"cannot write the chart to {args.plot}: {exc}") from None
        print(f"chart: {args.plot}")
    return 0


def _run_compiled(argv: list[str]) -> int:
    """Run this same command again in a child that imports the compiled modules."""
    import os
    import subprocess

    from cti.errors import SimulationError
    from simulators.compiled import compiled_env, compiled_tree

    if os.environ.get(_COMPILED_CHILD):
        raise SimulationError("the compiled modules did not load (the build is unusable)")
    env = {**compiled_env(compiled_tree()), _COMPILED_CHILD: "1"}
    # -P: the working directory (maybe a checkout) must not come before the build
    return subprocess.run([sys.executable, "-P", "-m", "cti.app.cli", *argv], env=env).returncode


#: Set in the child of ``--compiled``: it must not start another.
_COMPILED_CHILD = "CTI_SIMULATE_COMPILED_CHILD"


def _simulate_live(
    scenario: Scenario, seed: int, minutes: float | None, show: bool
) -> SimulationReport:
    """One day of ``scenario`` through the real engine in real time, as a report."""
    import time

    from simulators.live import run_live
    from simulators.report import aggregate, measure_day

    def progress(fraction: float) -> None:
        if show:
            bar = "#" * int(fraction * 30)
            print(
                f"\r[{bar:<30}] {fraction:6.1%} of the day, live",
                end="",
                file=sys.stderr,
                flush=True,
            )

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    day = asyncio.run(run_live(scenario, seed, minutes=minutes, progress=progress))
    if minutes is not None:  # measure the part that ran, warm-up at most half of it
        hours = min(scenario.hours, minutes / 60.0)
        warm = min(scenario.warm_up_minutes, minutes / 2)
        scenario = scenario.model_copy(update={"hours": hours, "warm_up_minutes": warm})
    return aggregate(
        scenario,
        [measure_day(scenario, day)],
        seed=seed,
        seeds=[seed],
        wall_s=time.perf_counter() - started,
    )
