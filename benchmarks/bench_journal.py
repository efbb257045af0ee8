"""The engine journal: what an append costs the event loop, and how fast a replay runs.

Appends realistic router inputs (a known caller's arrival with card and history, agent
commands, the passing of time) one at a time, as the engine does on its loop thread,
and reports the median, 99th percentile and worst time per append for
``synchronous=NORMAL`` (the engine's setting) and ``FULL`` (an fsync per input), with
the time to serialise an input alone as the baseline. Then replays the journal
(decode plus ``Router.handle``) into a fresh router and reports inputs per second:
the restart time per input since the journal was last cut.

    .venv/bin/python benchmarks/bench_journal.py [--appends N] [--calls N]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal

from cti.errors import RoutingError
from cti.models import AgentConfig, CallerInfo, CallerKind, Customer, Interaction, QueueConfig
from cti.store.journal import Journal
from queue_engine import inputs as ri
from queue_engine.router import Router

AGENTS = 50


def caller(n: int) -> CallerInfo:
    customer = Customer(id=n, name=f"客户 {n}", value=float(n % 100))
    history = tuple(
        Interaction(at=1.7e9 + i, disposition="resolved", agent_id="1001", note="回电 周五")
        for i in range(5)
    )
    return CallerInfo(
        ani="13812345678",
        e164="+8613812345678",
        kind=CallerKind.KNOWN,
        customer=customer,
        history=history,
    )


def traffic(calls: int, seed: int = 1) -> list[tuple[float, ri.AnyInput]]:
    """A day's shape: agents log in, calls arrive, are answered, talked and wrapped up."""
    rng = random.Random(seed)
    out: list[tuple[float, ri.AnyInput]] = []
    now = 1.7e9
    agents = [f"a{i}" for i in range(AGENTS)]
    for a in agents:
        out += [(now, ri.AgentLogsIn(agent_id=a)), (now, ri.AgentGoesReady(agent_id=a))]
    for n in range(calls):
        now += rng.expovariate(1 / 4)
        agent = agents[n % AGENTS]
        call = f"c{n}"
        out.append((now, ri.CallArrives(call_id=call, queue="general", caller=caller(n))))
        out.append((now + 2, ri.AgentAccepts(agent_id=agent, call_id=call)))
        out.append((now + 120, ri.AgentHangsUp(agent_id=agent, call_id=call)))
        out.append((now + 125, ri.AgentFinishesWrapUp(agent_id=agent, call_id=call)))
        out.append((now + 125, ri.TimePasses()))
    out.sort(key=lambda pair: pair[0])
    return out


def time_appends(
    path: Path, inputs: list[tuple[float, ri.AnyInput]], sync: Literal["NORMAL", "FULL"]
) -> list[float]:
    with Journal.open(path, synchronous=sync) as journal:
        times = []
        for at, event in inputs:
            t = time.perf_counter_ns()
            journal.append(at, event)
            times.append((time.perf_counter_ns() - t) / 1000)
    return times


def row(name: str, us: list[float]) -> str:
    us = sorted(us)
    p99 = us[int(0.99 * (len(us) - 1))]
    return f"{name:<34} {statistics.median(us):9.1f} {p99:9.1f} {us[-1]:10.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--appends", type=int, default=20_000, help="inputs appended (NORMAL)")
    p.add_argument("--calls", type=int, default=10_000, help="calls in the replayed journal")
    args = p.parse_args()
    inputs = traffic(max(args.appends, args.calls) // 5 + 1)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"journal appends, {args.appends} inputs, microseconds per input")
        print(f"{'':<34} {'median':>9} {'p99':>9} {'max':>10}")
        sample = inputs[: args.appends]
        serialise = []
        for _, event in sample:
            t = time.perf_counter_ns()
            ri.INPUT.dump_json(event)
            serialise.append((time.perf_counter_ns() - t) / 1000)
        print(row("serialise only (baseline)", serialise))
        normal = time_appends(Path(tmp) / "n.db", sample, "NORMAL")
        print(row("append, synchronous=NORMAL", normal))
        full = time_appends(Path(tmp) / "f.db", sample[:300], "FULL")
        print(row("append, synchronous=FULL (300 inputs)", full))

        day = traffic(args.calls)
        path = Path(tmp) / "day.db"
        with Journal.open(path) as journal:
            for at, event in day:
                journal.append(at, event)
        queues = [QueueConfig(name="general")]
        agents = [AgentConfig(id=f"a{i}", queues={"general": 0.0}) for i in range(AGENTS)]
        router = Router(queues, agents=agents)
        started = time.perf_counter()
        with Journal.open(path) as journal:
            n = 0
            for at, event in journal.replay():
                n += 1
                with contextlib.suppress(RoutingError):
                    router.handle(event, at)
        elapsed = time.perf_counter() - started
        size = path.stat().st_size + sum(f.stat().st_size for f in path.parent.glob("day.db-*"))
        print(
            f"\nreplay of {n} inputs ({args.calls} calls, {size / 1e6:.1f} MB):"
            f" {elapsed:.2f} s, {n / elapsed:,.0f} inputs/s,"
            f" {elapsed / args.calls * 1e6:.0f} us per call"
        )


if __name__ == "__main__":
    main()
