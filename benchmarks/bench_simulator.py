"""Seconds per simulated day: CTI Desk's simulator against Ciw and SimPy, same statistics.

**The case** is REFERENCE §1's Erlang C day (``simulators/scenarios/reference_erlang_c.toml``):
M/M/33, FIFO, Poisson arrivals at 600 calls/h, exponential handle time of mean 180 s,
no abandonment, arrivals for 8 hours, the first 30 minutes a warm-up that statistics
leave out. Calls that arrived before the end of arrivals are finished and counted.

**The three tools**, each run for the same replications in one process:

* *CTI Desk*: :func:`simulators.des.run_day` on the shipped scenario, which drives the
  production router (:class:`queue_engine.router.Router`) for every decision;
  measured with :func:`simulators.report.measure_day` (SL, ASA, occupancy) and the day's
  records (P(wait > 0)).
* *Ciw* (``ciw>=3``): one node, 33 servers, exponential service, an exponential arrival
  distribution that stops sampling at the end of arrivals; run until empty.
* *SimPy* (``simpy>=4``): a ``Resource`` of capacity 33, one process per caller
  (request, hold for the handle time, release) and one arrival process; run until empty.

The Ciw and SimPy models are written here, minimal and faithful to the case; they are
measured from their (arrival, service start, service end) triples by one function.

**Statistics**, per replication over the calls arriving in [30 min, 8 h): SL20 of
offered (answered within 20 s / offered), ASA (mean wait of answered calls), P(wait > 0)
(share of calls that waited at all), occupancy (busy agent time / staffed agent time in
[30 min, 8 h)). Each is summarised by its mean and Student-t 95% CI across the
replications (:func:`simulators.estimates.estimate`), shown next to the Erlang C value of
REFERENCE §1. *Agreement* is reported, never asserted: the three tools' CIs overlap
pairwise, and each CI contains the analytic value or comes within the figure's
tolerance of it (SL20 and P(wait > 0) 0.015, ASA 2 s, occupancy 0.005). One 8-hour day
is noisy (ASA sd about 18 s), so 30 replications give wide CIs; ``--replications 200``
for a sharper check.

**Timing.** Only the simulation of a day is timed: for CTI Desk ``run_day`` (which
builds its router and agents and plays the day), for Ciw building the ``Simulation``
from a network made once and ``simulate_until_max_time``, for SimPy building the
environment and resource and ``env.run()``. Imports, loading the scenario, and
measuring the day afterwards are not timed. The tools take turns within each
replication (CTI Desk, Ciw, SimPy), so load on the machine hits all alike; the garbage
collector is collected before each timed day and left on. The headline figure of each
tool is the **median** over the replications; the best (minimum) is printed beside it.

**Compiled.** A fourth column, *CTI Desk (mypyc)*, runs the same ``run_day`` with the
router and the event loop compiled to C by mypyc (the modules of
``simulators.compiled.COMPILED``: the router's parts, its state records, priority keys,
actions, the kernel enum members it tests, tallies, ``simulators/des.py`` and its
parts ``simulators/des_parts.py``, in one group; the same source, no second copy:
:mod:`simulators.compiled`, as ``cti simulate --compiled`` does). The build goes to
the user's cache directory under a hash of the sources on the first run (about 30 s,
with gcc) and is reused while the sources are unchanged. The compiled days run in a
worker process that takes its turn in every replication like the others.
``--no-compiled`` leaves it out.

On a shared machine wall-clock medians move by tens of percent from run to run; the
ratios within one run (the tools take turns) are what to compare, and an instruction
count settles a change to the router: ``valgrind --tool=callgrind
--collect-atstart=no --toggle-collect='CPyDef_des____run_day'`` on a process that runs
one compiled day (see :mod:`simulators.compiled` for what costs in compiled code).
SimPy's day is pure Python: count it as the difference between a process that runs
one day and one that runs three. ``--cache-sim=yes`` adds cache misses: in valgrind's
model the compiled day (about 490M instructions then; 276M since issue 23's simulator
work, docs/simulator.md "Speed") missed the instruction cache about twice as often as
SimPy's (about 540M), which its wall-clock time showed.

    .venv/bin/python benchmarks/bench_simulator.py [--replications 30] [--seed 1]

Needs the benchmark extra: ``.venv/bin/pip install -e '.[bench]'`` (or
``.venv/bin/pip install ciw simpy``). Prints a table, then one JSON line. About 10 s at
the defaults. This is a measurement, not a test: nothing here asserts a time or a figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

try:
    import ciw  # type: ignore[import-untyped]
    import simpy
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.exit(
        f"bench_simulator needs Ciw and SimPy ({exc.name} is missing): install the "
        "benchmark extra with `.venv/bin/pip install -e '.[bench]'` "
        "(or `.venv/bin/pip install ciw simpy`)"
    )

from simulators.compiled import compiled_env, compiled_tree, is_compiled
from simulators.des import run_day
from simulators.estimates import Estimate, estimate
from simulators.report import measure_day, replication_seed
from simulators.scenario import SCENARIO_DIR, load_scenario

SCENARIO = "reference_erlang_c"

#: REFERENCE §1, Erlang C column (M/M/33, 600/h, mean handle 180 s).
ERLANG_C = {
    "sl20": 0.648550,
    "asa_s": 29.429,
    "p_wait": 0.490488,
    "occupancy": 0.9091,
}
#: How far a CI may miss the analytic value and still count as agreeing.
TOLERANCE = {"sl20": 0.015, "asa_s": 2.0, "p_wait": 0.015, "occupancy": 0.005}
LABELS = {
    "sl20": "SL20 of offered",
    "asa_s": "ASA (s)",
    "p_wait": "P(wait > 0)",
    "occupancy": "occupancy",
}
TOOLS = ("cti", "ciw", "simpy")
"""The tools whose statistics are compared (the compiled days are the same days)."""
NAMES = {"cti": "CTI Desk", "cti_mypyc": "CTI Desk (mypyc)", "ciw": "Ciw", "simpy": "SimPy"}


Figures = dict[str, float]
Triples = list[tuple[float, float, float]]
"""(arrival, service start, service end) of every call of a day."""


# --- the case ----------------------------------------------------------------------


class Case:
    """The Erlang C day's parameters, read from the shipped scenario."""

    def __init__(self) -> None:
        self.scenario = load_scenario(SCENARIO_DIR / f"{SCENARIO}.toml")
        sc = self.scenario
        (queue,) = sc.queues
        (traffic,) = sc.traffic
        (group,) = sc.agents
        assert traffic.rate_per_hour is not None
        self.rate_per_s = traffic.rate_per_hour / 3600.0
        self.mean_handle_s = traffic.handle.mean
        self.servers = group.count
        self.end_s = sc.duration_s
        self.warm_s = sc.warm_up_s
        self.sl_target_s = queue.sl_target_s


def figures_of(case: Case, calls: Triples) -> Figures:
    """The four figures of one day from its calls' (arrival, start, end) triples."""
    warm, end = case.warm_s, case.end_s
    offered = within = waited = 0
    wait_total = busy = 0.0
    for arrived, start, stop in calls:
        busy += max(0.0, min(stop, end) - max(start, warm))
        if not warm <= arrived < end:
            continue
        wait = start - arrived
        offered += 1
        wait_total += wait
        within += wait <= case.sl_target_s
        waited += wait > 0
    return {
        "sl20": within / offered,
        "asa_s": wait_total / offered,
        "p_wait": waited / offered,
        "occupancy": busy / (case.servers * (end - warm)),
    }


# --- CTI Desk ----------------------------------------------------------------------


def cti_day(case: Case, seed: int) -> tuple[float, Figures]:
    gc.collect()
    t0 = time.perf_counter()
    day = run_day(case.scenario, seed)
    elapsed = time.perf_counter() - t0
    fig = measure_day(case.scenario, day).overall
    measured = [r for r in day.records if case.warm_s <= r.arrived_at < case.end_s]
    assert fig.service_level is not None
    assert fig.asa_s is not None
    assert fig.occupancy is not None
    return elapsed, {
        "sl20": fig.service_level,
        "asa_s": fig.asa_s,
        "p_wait": sum(r.wait_s > 0 for r in measured) / len(measured),
        "occupancy": fig.occupancy,
    }


class CompiledWorker:
    """``run_day`` in a child process on the mypyc build: one seed in, one line out."""

    def __init__(self, tree: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            env=compiled_env(tree),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def day(self, seed: int) -> tuple[float, Figures]:
        stdin, stdout = self._io()
        stdin.write(f"{seed}\n")
        stdin.flush()
        elapsed, fig = json.loads(stdout.readline())
        return float(elapsed), fig

    def close(self) -> None:
        stdin, _ = self._io()
        stdin.close()
        self._proc.wait(timeout=30)

    def _io(self) -> tuple[IO[str], IO[str]]:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        return self._proc.stdin, self._proc.stdout


def worker() -> None:
    """The child of :class:`CompiledWorker`: refuses to time interpreted code."""
    if not is_compiled():
        sys.exit("worker: the router and the event loop are not the compiled ones")
    case = Case()
    for line in sys.stdin:
        print(json.dumps(cti_day(case, int(line))), flush=True)


# --- Ciw ---------------------------------------------------------------------------


class _ArrivalsUntil(ciw.dists.Distribution):  # type: ignore[misc]
    """Exponential gaps; none after ``end`` (an infinite gap stops the arrivals)."""

    def __init__(self, rate: float, end: float) -> None:
        self.rate = rate
        self.end = end

    def sample(self, t: float | None = None, ind: Any = None) -> float:
        gap = random.expovariate(self.rate)
        return gap if (t or 0.0) + gap < self.end else math.inf


def ciw_network(case: Case) -> Any:
    return ciw.create_network(
        arrival_distributions=[_ArrivalsUntil(case.rate_per_s, case.end_s)],
        service_distributions=[ciw.dists.Exponential(rate=1.0 / case.mean_handle_s)],
        number_of_servers=[case.servers],
    )


def ciw_day(case: Case, network: Any, seed: int) -> tuple[float, Figures]:
    ciw.seed(seed)
    gc.collect()
    t0 = time.perf_counter()
    sim = ciw.Simulation(network)
    # No arrivals after the end: the run stops once the last call is served, long
    # before this limit.
    sim.simulate_until_max_time(case.end_s + 24 * 3600.0)
    elapsed = time.perf_counter() - t0
    records = sim.get_all_records()
    calls = [
        (r.arrival_date, r.service_start_date, r.service_end_date)
        for r in records
        if r.record_type == "service"
    ]
    return elapsed, figures_of(case, calls)


# --- SimPy -------------------------------------------------------------------------


def simpy_day(case: Case, seed: int) -> tuple[float, Figures]:
    rng = random.Random(seed)
    calls: Triples = []
    gc.collect()
    t0 = time.perf_counter()
    env = simpy.Environment()
    agents = simpy.Resource(env, capacity=case.servers)
    mean_handle, rate, end = case.mean_handle_s, case.rate_per_s, case.end_s

    def caller(arrived: float) -> Any:
        with agents.request() as req:
            yield req
            start = env.now
            yield env.timeout(rng.expovariate(1.0 / mean_handle))
        calls.append((arrived, start, env.now))

    def arrivals() -> Any:
        while True:
            gap = rng.expovariate(rate)
            if env.now + gap >= end:
                return
            yield env.timeout(gap)
            env.process(caller(env.now))

    env.process(arrivals())
    env.run()
    elapsed = time.perf_counter() - t0
    return elapsed, figures_of(case, calls)


# --- agreement and output ----------------------------------------------------------


def _ci(e: Estimate) -> tuple[float, float]:
    assert e.low is not None
    assert e.high is not None
    return e.low, e.high


def agreement(est: dict[str, dict[str, Estimate]]) -> dict[str, dict[str, Any]]:
    """Per figure: do the tools' CIs overlap pairwise, and does each CI contain (or come
    within tolerance of) the analytic value?"""
    out: dict[str, dict[str, Any]] = {}
    for key, exact in ERLANG_C.items():
        cis = {tool: _ci(est[tool][key]) for tool in TOOLS}
        overlap = all(
            cis[a][0] <= cis[b][1] and cis[b][0] <= cis[a][1]
            for i, a in enumerate(TOOLS)
            for b in TOOLS[i + 1 :]
        )
        # distance from the analytic value to each CI (0 when inside)
        miss = {tool: max(0.0, lo - exact, exact - hi) for tool, (lo, hi) in cis.items()}
        analytic = {tool: m <= TOLERANCE[key] for tool, m in miss.items()}
        out[key] = {
            "overlap": overlap,
            "analytic": analytic,
            "miss": miss,
            "agree": overlap and all(analytic.values()),
        }
    return out


def _fmt(key: str, x: float) -> str:
    return f"{x:.2f}" if key == "asa_s" else f"{x:.4f}"


def table(est: dict[str, dict[str, Estimate]], agree: dict[str, dict[str, Any]], reps: int) -> str:
    head = (
        f"{'figure':<17}{'Erlang C':>10}  "
        + "".join(f"{NAMES[t] + ' (mean ± CI)':<24}" for t in TOOLS)
        + "agree"
    )
    lines = [head, "-" * len(head)]
    for key, exact in ERLANG_C.items():
        cells = []
        for tool in TOOLS:
            e = est[tool][key]
            assert e.mean is not None
            half = e.half_width or 0.0
            mark = "" if agree[key]["analytic"][tool] else " !"
            cells.append(f"{_fmt(key, e.mean)} ± {_fmt(key, half)}{mark}")
        a = agree[key]
        verdict = (
            "yes"
            if a["agree"]
            else ("no: CIs do not overlap" if not a["overlap"] else "no: misses Erlang C")
        )
        lines.append(
            f"{LABELS[key]:<17}{_fmt(key, exact):>10}  "
            + "".join(f"{c:<24}" for c in cells)
            + verdict
        )
    lines.append(
        f"(95% Student-t CIs over {reps} replications; ! = the CI misses the Erlang C value"
        " by more than the tolerance: SL20 and P(wait>0) 0.015, ASA 2 s, occupancy 0.005)"
    )
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--replications", type=int, default=30, help="days per tool")
    parser.add_argument("--seed", type=int, default=1, help="seed of the replications")
    parser.add_argument(
        "--no-compiled", action="store_true", help="leave out the mypyc-compiled column"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(None if argv is None else list(argv))
    if args.worker:
        worker()
        return
    reps = max(2, args.replications)
    tools = ("cti",) + (() if args.no_compiled else ("cti_mypyc",)) + TOOLS[1:]

    case = Case()
    network = ciw_network(case)
    runners: dict[str, Callable[[int], tuple[float, Figures]]] = {
        "cti": lambda s: cti_day(case, s),
        "ciw": lambda s: ciw_day(case, network, s),
        "simpy": lambda s: simpy_day(case, s),
    }
    compiled: CompiledWorker | None = None
    if "cti_mypyc" in tools:
        compiled = CompiledWorker(compiled_tree())
        runners["cti_mypyc"] = compiled.day
    times: dict[str, list[float]] = {t: [] for t in tools}
    days: dict[str, list[Figures]] = {t: [] for t in tools}
    for i in range(reps):
        seed = replication_seed(args.seed, i)
        for tool in tools:
            elapsed, fig = runners[tool](seed)
            times[tool].append(elapsed)
            days[tool].append(fig)
    same: bool | None = None
    if compiled is not None:
        compiled.close()
        same = days["cti_mypyc"] == days["cti"]

    est = {tool: {key: estimate(d[key] for d in days[tool]) for key in ERLANG_C} for tool in TOOLS}
    agree = agreement(est)
    print(
        f"Erlang C day (M/M/{case.servers}, {case.rate_per_s * 3600:g}/h, mean handle "
        f"{case.mean_handle_s:g} s, {case.end_s / 3600:g} h, warm-up "
        f"{case.warm_s / 60:g} min, no abandonment), {reps} replications per tool\n"
    )
    print(table(est, agree, reps))
    print()
    print(f"{'seconds per simulated day':<28}{'median':>9}{'best':>9}")
    for tool in tools:
        print(f"{NAMES[tool]:<28}{statistics.median(times[tool]):>9.4f}{min(times[tool]):>9.4f}")
    ratios = {
        tool: {
            base: round(statistics.median(times[tool]) / statistics.median(times[base]), 3)
            for base in ("ciw", "simpy")
        }
        for tool in tools[: tools.index("ciw")]
    }
    for tool, over in ratios.items():
        print(f"{NAMES[tool]} / Ciw {over['ciw']:.2f}x, / SimPy {over['simpy']:.2f}x (medians)")
    if same is not None:
        print(f"compiled days identical to the interpreted ones: {'yes' if same else 'NO'}")

    def stats_json(tool: str) -> dict[str, Any]:
        return {
            key: {
                "mean": round(e.mean or 0.0, 6),
                "ci95": [round(x, 6) for x in _ci(e)],
            }
            for key, e in est[tool].items()
        }

    result: dict[str, Any] = {
        "benchmark": "simulator",
        "scenario": SCENARIO,
        "replications": reps,
        "timing": "median",
        **{f"{t}_s_per_day": round(statistics.median(times[t]), 5) for t in tools},
        **{f"{t}_best_s_per_day": round(min(times[t]), 5) for t in tools},
        "ratios": ratios,
        "compiled_same_days": same,
        "erlang_c": ERLANG_C,
        "stats": {t: stats_json(t) for t in TOOLS},
        "agree": {key: a["agree"] for key, a in agree.items()},
        "versions": {"ciw": ciw.__version__, "simpy": simpy.__version__},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
