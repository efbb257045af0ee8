"""The ``cti`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cti.config import default_config_text, load_config
from cti.errors import CtiError

if TYPE_CHECKING:
    from simulators.report import SimulationReport
    from simulators.scenario import Scenario


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cti", description="CTI Desk: call-center engine and agent desktop"
    )
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="engine, simulated callers, bot agents and your agent desktop in one process",
        description="Runs the engine with a simulator trunk and bot agents on an in-memory bus. "
        "Interactive: you are agent 1001 in the desktop. --headless: no UI, a JSON summary.",
    )
    demo.add_argument("--config", type=Path, help="TOML config file (defaults: `cti config`)")
    demo.add_argument("--db", type=Path, help="SQLite file (default: cti.db in your data dir)")
    demo.add_argument("--headless", action="store_true", help="no UI: run and print a summary")
    demo.add_argument(
        "--seconds", type=float, default=8 * 3600.0, help="simulated seconds of arrivals (headless)"
    )
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    demo.add_argument(
        "--realtime", action="store_true", help="headless on the wall clock, not virtual time"
    )
    demo.add_argument("--agents", type=int, help="bot agents (default 10)")
    demo.add_argument("--rate", type=float, help="arrivals per hour (default 180)")
    demo.add_argument("--seed", type=int, help="random seed (default 7)")

    sub.add_parser("config", help="print the default configuration, with comments")

    sim = sub.add_parser(
        "simulate",
        help="run a scenario file for N simulated days: SL, ASA, abandons, occupancy with 95% CIs",
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

    erl = sub.add_parser(
        "erlang",
        help="queueing-theory staffing figures: Erlang C, or Erlang A with --patience",
        description="Steady-state service level, ASA, abandonment and occupancy of one "
        "queue: Erlang C (M/M/c), or Erlang A (M/M/c+M) when --patience is given.",
    )
    erl.add_argument("--rate", type=float, required=True, help="calls offered per hour")
    erl.add_argument("--aht", type=float, required=True, help="mean handle time, seconds")
    erl.add_argument("--agents", type=int, required=True, help="agents staffed")
    erl.add_argument("--patience", type=float, help="mean patience, seconds (Erlang A)")
    erl.add_argument("--target", type=float, default=20.0, help="SL threshold, seconds")
    erl.add_argument("--sl-goal", type=float, default=0.8, help="SL goal for agents_for_goal")
    erl.add_argument("--json", action="store_true", help="print one JSON object")

    script = sub.add_parser("script", help="call scripts: check script files")
    script_sub = script.add_subparsers(dest="script_command", required=True)
    check = script_sub.add_parser(
        "check",
        help="validate script files; exit 1 on any problem",
        description="Finds unreachable nodes, dangling targets, loops with no exit, unknown "
        "variables and bad expressions; prints each problem as FILE:LINE: node ID: message.",
    )
    check.add_argument("files", type=Path, nargs="+", metavar="FILE", help="script TOML")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "config":
            print(default_config_text(), end="")
            return 0
        if args.command == "demo":
            return _demo(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "erlang":
            return _erlang(args)
        if args.command == "script":
            return _script(args)
    except CtiError as exc:
        print(f"cti: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


def _demo(args: argparse.Namespace) -> int:
    from cti.demo import default_db_path, headless, run_interactive

    demo: dict[str, Any] = {}
    if args.agents is not None:
        demo["bots"] = args.agents
    if args.rate is not None:
        demo["rate_per_hour"] = args.rate
    if args.seed is not None:
        demo["seed"] = args.seed
    config = load_config(args.config, {"demo": demo} if demo else None)
    db_path = args.db or (Path(config.store.path) if config.store.path else default_db_path())

    if args.headless:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        summary = headless(
            config,
            db_path,
            args.seconds,
            realtime=args.realtime,
            show_progress=not args.json and sys.stderr.isatty(),
        )
        if args.json:
            print(json.dumps(summary, ensure_ascii=False))
        else:
            _print_summary(summary)
        return 0

    log_file = db_path.parent / "cti-demo.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(run_interactive(config, db_path, args.config))
    return 0


def _script(args: argparse.Namespace) -> int:
    from scripts_engine.validate import load_script

    failed = False
    for path in args.files:
        _, problems = load_script(path)
        for problem in problems:
            print(problem)
        failed = failed or bool(problems)
        if not problems:
            print(f"{path}: ok")
    return 1 if failed else 0


def _erlang(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from cti.errors import SimulationError
    from simulators.erlang import agents_for_goal, erlang_a, erlang_c, offered_load

    for opt in ("rate", "aht", "agents", "patience"):
        v = getattr(args, opt)
        if v is not None and not (math.isfinite(v) and v > 0):
            raise SimulationError(f"--{opt} must be a finite number > 0, got {v}")
    if not (math.isfinite(args.target) and args.target >= 0):
        raise SimulationError(
            f"--target must be a finite number of seconds >= 0, got {args.target}"
        )
    if not 0 < args.sl_goal < 1:
        raise SimulationError(f"--sl-goal must be a fraction in (0, 1), got {args.sl_goal}")
    load = offered_load(args.rate, args.aht)
    if args.patience is None and load >= args.agents:
        raise SimulationError(
            f"--agents {args.agents} is not above the offered load {load:.4g} Erlangs "
            "(--rate x --aht / 3600): Erlang C has no steady state; add agents or give --patience"
        )
    if args.patience is None:
        res = erlang_c(args.rate, args.aht, args.agents, args.target)
    else:
        res = erlang_a(args.rate, args.aht, args.agents, args.patience, args.target)
    try:
        goal: int | None = agents_for_goal(
            args.rate, args.aht, args.sl_goal, args.target, args.patience
        )
    except SimulationError:
        goal = None
    out: dict[str, Any] = {**asdict(res), "sl_goal": args.sl_goal, "agents_for_goal": goal}
    if args.json:
        print(json.dumps(out))
        return 0
    t = f"{res.target_s:g}"
    name = (
        "Erlang C (M/M/c)"
        if res.patience_s is None
        else f"Erlang A (patience {res.patience_s:g} s)"
    )
    rows = [
        ("model", name),
        ("offered load", f"{res.offered_load:.4g} Erlangs on {res.agents} agents"),
        ("P(wait > 0)", f"{res.p_wait:.6f}"),
        (f"SL{t} of offered", f"{res.service_level:.6f}"),
        (f"SL{t} of answered", f"{res.service_level_answered:.6f}"),
        ("ASA", f"{res.asa_s:.3f} s"),
        ("mean queue length", f"{res.mean_queue_length:.3f}"),
        ("P(abandon)", f"{res.abandon_rate:.6f}"),
        ("occupancy", f"{res.occupancy:.4f}"),
        (f"agents for SL{t} >= {args.sl_goal:g}", "-" if goal is None else str(goal)),
    ]
    for label, value in rows:
        print(f"{label:<24} {value}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from cti.errors import SimulationError
    from simulators.report import format_text, simulate, to_json
    from simulators.scenario import load_scenario

    scenario = load_scenario(args.file)
    replications = scenario.replications if args.replications is None else args.replications
    if replications < 1:
        raise SimulationError(f"--replications must be at least 1, got {replications}")
    seed = scenario.seed if args.seed is None else args.seed
    show = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show:
            bar = "#" * (done * 30 // total)
            print(f"\r[{bar:<30}] {done}/{total} replications", end="", file=sys.stderr, flush=True)

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


def _print_summary(s: dict[str, Any]) -> None:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    def sec(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}s"

    print(
        f"calls offered {s['offered']}, answered {s['answered']}, abandoned {s['abandoned']} "
        f"({pct(s['abandon_rate'])})"
    )
    print(
        f"service level {pct(s['service_level'])} within {s['sl_target_s']:g}s, "
        f"ASA {sec(s['asa_s'])}, longest wait {sec(s['max_wait_s'])}"
    )
    print(
        f"starvation bound {s['starvation_bound_s']:g}s; calls passed over beyond it: "
        f"{s['passed_over_beyond_bound']}"
    )
    print(
        f"{'segment':<10} {'rank':>4} {'offered':>8} {'answered':>8} {'abandoned':>9} "
        f"{'ASA':>8} {'max wait':>9}"
    )
    for name, seg in s["segments"].items():
        print(
            f"{name:<10} {seg['value_rank']:>4} {seg['offered']:>8} {seg['answered']:>8} "
            f"{seg['abandoned']:>9} {sec(seg['asa_s']):>8} {sec(seg['max_wait_s']):>9}"
        )
    print(f"({s['wall_s']:.2f}s of wall time)")


if __name__ == "__main__":
    raise SystemExit(main())
