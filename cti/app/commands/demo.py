"""`cti demo`: the engine, simulated callers, bot agents and your desktop in one process."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from cti.config import load_config

ORDER = 10


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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

    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cti.app.demo import default_db_path, headless, run_interactive

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
