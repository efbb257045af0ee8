"""Instructions and Python calls per call of the engine's live figures (issue 23), on a
fixed workload under callgrind, for the working tree and, with ``--against REV``, the
``queue_engine`` and ``cti`` packages of another revision, in one run.

The workload is one call's actions as the engine hands them to
:class:`~cti.engine.live_figures.DeferredFigures` over the broker (recorded from
``bench_bus``): four inputs a call, (Reserved, offer), (connect, Talking),
(disconnect, Wrap-up), (record, Ready), waiting together and observed at the loop's
next turn. ``--calls`` calls, each to the next of ``--agents`` agents in turn, one
every millisecond (``--rate``), agents serving ``--queues-per-agent`` of ``--queues``
queues; a quarter of the calls abandoned (a third of those short). The actions are
built before the measured section. A second section publishes: each queue's
:meth:`~queue_engine.live_stats.LiveStats.snapshot` and ``agents_by_state``, as
``cti.engine.status.publish_queues`` does, ``--publications`` times (the wallboard's
few times a second against up to 2,000 calls a second: about one publication every
500 calls).

Under ``valgrind --tool=callgrind --dump-before=getppid`` the worker calls
``os.getppid()`` around each section, so each count is the section's alone. Without
valgrind (``--no-valgrind``), or with ``--profile``, the same sections under cProfile
give the Python calls (functions and builtins) per call and per publication.

    .venv/bin/python benchmarks/bench_live_stats.py [--calls 2000] [--against 7169941]
        [--agents 100] [--queues 1] [--queues-per-agent 1] [--no-valgrind]

About 20 s per tree under valgrind. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from revisions import ROOT, packages_at, run_worker

START = 100.0
"""Engine time of the first call: the calls arrived within the same 15-minute interval."""


def _workload(args: argparse.Namespace) -> tuple[Any, list[list[tuple[list[Any], float]]]]:
    """The figures, fed nothing yet, and each call's inputs (actions, engine time)."""
    from cti.engine.live_figures import DeferredFigures
    from cti.models import AgentState, CallDetailRecord, CallerKind, QueueConfig, Segment
    from queue_engine.actions import (
        AgentStateSet,
        ConnectCall,
        DisconnectCall,
        OfferCall,
        RecordCall,
    )
    from queue_engine.live_stats import LiveStats

    queues = [f"q{i}" for i in range(args.queues)]
    agents = {
        f"a{i}": [queues[(i + j) % len(queues)] for j in range(args.queues_per_agent)]
        for i in range(args.agents)
    }
    stats = LiveStats({q: QueueConfig(name=q) for q in queues}, agents)
    figures = DeferredFigures(stats)
    for agent_id in agents:
        figures.later([AgentStateSet(agent_id, AgentState.READY)], 0.0)
    step = 1.0 / args.rate
    calls = []
    for n in range(args.calls):
        agent_id, queue, t = f"a{n % args.agents}", queues[n % len(queues)], START + n * step
        call_id = f"c{n}"
        offer = OfferCall(call_id, agent_id, queue, t + 20.0)
        connect = ConnectCall(call_id, agent_id)
        hang_up = DisconnectCall(call_id, agent_id, "agent")
        outcome = "abandoned" if n % 4 == 3 else "answered"
        wait = (n % 30) * (0.5 if outcome == "answered" else 0.3)
        answered = t + wait if outcome == "answered" else None
        cdr = CallDetailRecord(
            call_id=call_id, queue=queue, ani="1", caller_kind=CallerKind.UNKNOWN,
            customer_id=None, segment=Segment.BASIC, value=0.0, arrived_at=t - wait,
            offered_at=answered, answered_at=answered, ended_at=t + step / 2,
            agent_id=agent_id, outcome=outcome, wrap_up_s=step / 8,
        )  # fmt: skip
        calls.append([
            ([AgentStateSet(agent_id, AgentState.RESERVED), offer], t),
            ([connect, AgentStateSet(agent_id, AgentState.TALKING)], t + step / 4),
            ([hang_up, AgentStateSet(agent_id, AgentState.WRAP_UP)], t + step / 2),
            ([RecordCall(cdr), AgentStateSet(agent_id, AgentState.READY)], t + 3 * step / 4),
        ])  # fmt: skip
    return figures, calls


def worker(args: argparse.Namespace) -> None:
    figures, calls = _workload(args)
    queues = [f"q{i}" for i in range(args.queues)]
    end = START + args.calls / args.rate

    def feed() -> None:
        for inputs in calls:
            figures._waiting.extend(inputs)  # as later() leaves them for the next turn
            figures.catch_up()

    def publish() -> None:
        stats = figures.stats
        for _ in range(args.publications):
            for queue in queues:
                stats.snapshot(queue, end)
                stats.agents_by_state(queue, end)

    result: dict[str, Any] = {"calls": args.calls, "publications": args.publications}
    for name, section in (("feed", feed), ("publish", publish)):
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(section)
            result[f"{name}_python_calls"] = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
        else:
            os.getppid()  # callgrind dumps its counts here (--dump-before=getppid)
            section()
            os.getppid()
    print(json.dumps(result))


def _run(pythonpath: Path | None, args: argparse.Namespace, valgrind: bool) -> dict[str, Any]:
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict and set layouts each run
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in (pythonpath, ROOT) if p is not None])
    command = [sys.executable, __file__, "--worker", *args.passed]
    if not valgrind:
        command.append("--profile")
    result, counts = run_worker(command, env, callgrind=valgrind)
    if valgrind:
        if len(counts) != 4:
            raise RuntimeError(f"{len(counts)} callgrind parts, not 4")
        result["feed_instructions"], result["publish_instructions"] = counts[1], counts[3]
    return result


def measure(name: str, pythonpath: Path | None, args: argparse.Namespace) -> dict[str, Any]:
    row: dict[str, Any] = {"tree": name}
    profiled = _run(pythonpath, args, valgrind=False)
    row["python_calls_per_call"] = round(profiled["feed_python_calls"] / args.calls, 1)
    row["python_calls_per_publication"] = round(
        profiled["publish_python_calls"] / args.publications, 1
    )
    if args.valgrind:
        counted = _run(pythonpath, args, valgrind=True)
        row["instructions_per_call"] = round(counted["feed_instructions"] / args.calls)
        row["instructions_per_publication"] = round(
            counted["publish_instructions"] / args.publications
        )
    return row


def main(args: argparse.Namespace) -> None:
    if args.valgrind and shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind), or --no-valgrind")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-live-stats-tree-") as tmp:
        for rev in args.against:
            rows.append(
                measure(rev, packages_at(rev, ("queue_engine", "cti"), Path(tmp) / rev), args)
            )
        rows.append(measure("working tree", None, args))
    keys = [k for k in rows[-1] if k != "tree"]
    print(f"{'tree':<14}" + "".join(f"{k:>32}" for k in keys))
    for row in rows:
        print(f"{row['tree']:<14}" + "".join(f"{row.get(k, ''):>32}" for k in keys))
    print(json.dumps({"bench": "live_stats", "calls": args.calls, "rows": rows}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls (default 2000)")
    parser.add_argument("--rate", type=float, default=1000.0, help="calls a second (1000)")
    parser.add_argument("--agents", type=int, default=100, help="agents (default 100)")
    parser.add_argument("--queues", type=int, default=1, help="queues (default 1)")
    parser.add_argument("--queues-per-agent", type=int, default=1, help="(default 1)")
    parser.add_argument("--publications", type=int, default=20, help="(default 20)")
    parser.add_argument("--against", action="append", default=[], help="a git revision")
    parser.add_argument("--no-valgrind", dest="valgrind", action="store_false")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    names = ("calls", "rate", "agents", "queues", "queues_per_agent", "publications")
    parsed.passed = [f"--{n.replace('_', '-')}={getattr(parsed, n)}" for n in names]
    if parsed.queues_per_agent > parsed.queues:
        parser.error("--queues-per-agent is at most --queues")
    (worker if parsed.worker else main)(parsed)
