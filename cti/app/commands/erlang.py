"""`cti erlang`: Erlang C / Erlang A staffing figures for one queue."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

ORDER = 30


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    erl = sub.add_parser(
        "erlang",
        help="queueing-theory staffing figures: Erlang C, or Erlang A with --patience",
        description="Steady-state service level, ASA, abandonment and occupancy of one "
        "queue: Erlang C (M/M/c), or Erlang A (M/M/c+M) when --patience is given. Without "
        "--agents, the team is sized: the fewest agents that meet --goal.",
    )
    erl.add_argument("--rate", type=float, required=True, help="calls offered per hour")
    erl.add_argument("--aht", type=float, required=True, help="mean handle time, seconds")
    erl.add_argument(
        "--agents", type=int, help="agents staffed (default: the fewest that meet --goal)"
    )
    erl.add_argument("--patience", type=float, help="mean patience, seconds (Erlang A)")
    erl.add_argument("--target", type=float, default=20.0, help="SL threshold, seconds")
    erl.add_argument(
        "--goal",
        "--sl-goal",
        dest="sl_goal",
        type=float,
        default=0.8,
        help="service-level goal, a fraction: the share answered within --target (default 0.8)",
    )
    erl.add_argument("--json", action="store_true", help="print one JSON object")

    erl.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from cti.errors import SimulationError
    from queue_engine.erlang import agents_for_goal, erlang_a, erlang_c

    _check(args)
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


def _check(args: argparse.Namespace) -> None:
    """Refuse bad figures, naming the option; without --agents, size the team."""
    from cti.errors import SimulationError
    from queue_engine.erlang import agents_for_goal, offered_load

    for opt in ("rate", "aht", "agents", "patience"):
        v = getattr(args, opt)
        if v is not None and not (math.isfinite(v) and v > 0):
            raise SimulationError(f"--{opt} must be a finite number > 0, got {v}")
    if not (math.isfinite(args.target) and args.target >= 0):
        raise SimulationError(
            f"--target must be a finite number of seconds >= 0, got {args.target}"
        )
    if not 0 < args.sl_goal < 1:
        raise SimulationError(
            f"--goal (--sl-goal) must be a fraction in (0, 1), got {args.sl_goal}"
        )
    load = offered_load(args.rate, args.aht)
    if args.agents is None:  # size the team
        args.agents = agents_for_goal(args.rate, args.aht, args.sl_goal, args.target, args.patience)
    if args.patience is None and load >= args.agents:
        raise SimulationError(
            f"--agents {args.agents} is not above the offered load {load:.4g} Erlangs "
            "(--rate x --aht / 3600): Erlang C has no steady state; add agents or give --patience"
        )
