"""Router throughput: offer-and-assign with 10,000 waiting calls and 500 agents.

Fills one queue with 10,000 calls of random value (seeded), then 500 agents serve them:
log in, go Ready (each is offered the best waiting call), accept, hang up, complete
wrap-up (and so are offered the next call), until every call is served. Virtual time
moves a millisecond per request, so no offer or wrap-up deadline ever lapses.

Measured in the same run, next to two baselines:

* a naive router that keeps the waiting calls in a list and re-sorts it by rank on
  every assignment (what the fixed-key heap of :mod:`queue_engine.priority` avoids);
* the bare ``heapq`` floor: 10,000 pushes and 10,000 pops of ``(key, seq, id)`` tuples.

    .venv/bin/python benchmarks/bench_router.py [--calls N] [--agents N] [--repeat N]

Figures are the best of ``--repeat`` runs (the naive baseline, which takes about 20 s
at the default size, of ``--naive-repeat``). This is a measurement, not a test: nothing
here asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cti.models import CallerInfo, CallerKind, Customer, QueueConfig
from queue_engine.actions import Action, OfferCall, RecordCall
from queue_engine.priority import clamp_value, rank
from queue_engine.router import Router

QUEUE = QueueConfig(name="bench", value_weight=1.0, aging_rate=1.0)
TICK = 0.001  # virtual seconds per request


@dataclass
class Result:
    name: str
    enqueue_us: float  # per call, filling the queue from empty to N waiting
    enqueue_tail_us: float  # per call, for the last 10% (about N waiting already)
    cycle_us: float  # per call served: offer, accept, hang up, wrap up (next offer)
    served: int

    @property
    def calls_per_s(self) -> float:
        return 1e6 / self.cycle_us


@contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def callers(n: int, seed: int) -> list[CallerInfo]:
    rng = random.Random(seed)
    return [
        CallerInfo(
            ani=f"+4420{i:08d}",
            kind=CallerKind.KNOWN,
            customer=Customer(id=i, name=f"c{i}", value=float(rng.randint(0, 100))),
        )
        for i in range(n)
    ]


# --- the naive baseline -----------------------------------------------------------------


class NaiveRouter:
    """Waiting calls in a plain list, re-sorted by rank at every assignment."""

    def __init__(self, queue: QueueConfig) -> None:
        self.queue = queue
        self.waiting: list[tuple[str, float, float]] = []  # (call_id, value, arrived_at)
        self.ready: deque[str] = deque()  # longest idle first
        self.call_of: dict[str, str] = {}

    def enqueue(self, call_id: str, caller: CallerInfo, now: float) -> str | None:
        if self.ready:
            return self._offer(self.ready.popleft(), call_id)
        self.waiting.append((call_id, clamp_value(caller.value), now))
        return None

    def set_ready(self, agent_id: str, now: float) -> str | None:
        if not self.waiting:
            self.ready.append(agent_id)
            return None
        q = self.queue
        # best last: highest rank, then earliest arrival
        self.waiting.sort(key=lambda c: (rank(q, c[1], c[2], now), -c[2]))
        return self._offer(agent_id, self.waiting.pop()[0])

    def _offer(self, agent_id: str, call_id: str) -> str:
        self.call_of[agent_id] = call_id
        return call_id

    def accept(self, agent_id: str, call_id: str, now: float) -> None:
        assert self.call_of[agent_id] == call_id

    def agent_hang_up(self, agent_id: str, call_id: str, now: float) -> None:
        assert self.call_of[agent_id] == call_id

    def complete_wrap_up(self, agent_id: str, call_id: str, now: float) -> str | None:
        del self.call_of[agent_id]
        return self.set_ready(agent_id, now)


# --- runs -------------------------------------------------------------------------------


def run_router(people: list[CallerInfo], agents: int) -> Result:
    n = len(people)
    router = Router([QUEUE])
    ids = [f"call{i}" for i in range(n)]
    now = 0.0
    with no_gc():
        t0 = time.perf_counter()
        tail_at = t0
        for i, (call_id, caller) in enumerate(zip(ids, people, strict=True)):
            if i == n - n // 10:
                tail_at = time.perf_counter()
            router.enqueue(call_id, "bench", caller, now)
            now += TICK
        t1 = time.perf_counter()

    for a in range(agents):
        router.add_agent(f"agent{a}", ["bench"])
        router.login(f"agent{a}", now)

    served = 0
    pending: deque[OfferCall] = deque()

    def take(actions: list[Action]) -> None:
        nonlocal served
        for action in actions:
            if isinstance(action, OfferCall):
                pending.append(action)
            elif isinstance(action, RecordCall):
                served += 1

    with no_gc():
        t2 = time.perf_counter()
        for a in range(agents):
            take(router.set_ready(f"agent{a}", now))
            now += TICK
        while pending:
            offer = pending.popleft()
            agent, call = offer.agent_id, offer.call_id
            router.accept(agent, call, now)
            router.agent_hang_up(agent, call, now)
            take(router.complete_wrap_up(agent, call, "ok", now))
            now += TICK
        t3 = time.perf_counter()

    assert served == n, f"router served {served} of {n}"
    return Result(
        "Router (fixed-key heap)",
        (t1 - t0) / n * 1e6,
        (t1 - tail_at) / (n // 10) * 1e6,
        (t3 - t2) / n * 1e6,
        served,
    )


def run_naive(people: list[CallerInfo], agents: int) -> Result:
    n = len(people)
    router = NaiveRouter(QUEUE)
    ids = [f"call{i}" for i in range(n)]
    now = 0.0
    with no_gc():
        t0 = time.perf_counter()
        tail_at = t0
        for i, (call_id, caller) in enumerate(zip(ids, people, strict=True)):
            if i == n - n // 10:
                tail_at = time.perf_counter()
            router.enqueue(call_id, caller, now)
            now += TICK
        t1 = time.perf_counter()

    served = 0
    pending: deque[tuple[str, str]] = deque()
    with no_gc():
        t2 = time.perf_counter()
        for a in range(agents):
            call = router.set_ready(f"agent{a}", now)
            if call is not None:
                pending.append((f"agent{a}", call))
            now += TICK
        while pending:
            agent, call = pending.popleft()
            router.accept(agent, call, now)
            router.agent_hang_up(agent, call, now)
            served += 1
            nxt = router.complete_wrap_up(agent, call, now)
            if nxt is not None:
                pending.append((agent, nxt))
            now += TICK
        t3 = time.perf_counter()

    assert served == n, f"naive router served {served} of {n}"
    return Result(
        "naive (re-sort per assignment)",
        (t1 - t0) / n * 1e6,
        (t1 - tail_at) / (n // 10) * 1e6,
        (t3 - t2) / n * 1e6,
        served,
    )


def run_heapq(people: list[CallerInfo], agents: int) -> Result:
    n = len(people)
    keys = [clamp_value(c.value) - QUEUE.aging_rate * i * TICK for i, c in enumerate(people)]
    heap: list[tuple[float, int, str]] = []
    with no_gc():
        t0 = time.perf_counter()
        tail_at = t0
        for i, key in enumerate(keys):
            if i == n - n // 10:
                tail_at = time.perf_counter()
            heapq.heappush(heap, (-key, i, f"call{i}"))
        t1 = time.perf_counter()
        served = 0
        while heap:
            heapq.heappop(heap)
            served += 1
        t2 = time.perf_counter()
    return Result(
        "bare heapq push / pop (floor)",
        (t1 - t0) / n * 1e6,
        (t1 - tail_at) / (n // 10) * 1e6,
        (t2 - t1) / n * 1e6,
        served,
    )


def best_of(repeat: int, run: Callable[[], Result]) -> Result:
    results = [run() for _ in range(repeat)]
    return Result(
        results[0].name,
        min(r.enqueue_us for r in results),
        min(r.enqueue_tail_us for r in results),
        min(r.cycle_us for r in results),
        results[0].served,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--naive-repeat", type=int, default=1, help="runs of the naive baseline (~20 s each)"
    )
    parser.add_argument("--seed", type=int, default=20_240_601)
    args = parser.parse_args()

    people = callers(args.calls, args.seed)
    print(
        f"{args.calls:,} waiting calls, {args.agents} agents;"
        f" best of {args.repeat} (naive baseline: {args.naive_repeat})\n"
    )
    rows = [
        best_of(args.repeat, lambda: run_router(people, args.agents)),
        best_of(args.naive_repeat, lambda: run_naive(people, args.agents)),
        best_of(args.repeat, lambda: run_heapq(people, args.agents)),
    ]
    head = (
        f"{'':32} {'enqueue':>9} {'enqueue at':>11} {'serve':>9} {'served':>10}\n"
        f"{'':32} {'µs/call':>9} {'~N waiting':>11} {'µs/call':>9} {'calls/s':>10}"
    )
    print(head)
    print("-" * 75)
    for r in rows:
        print(
            f"{r.name:32} {r.enqueue_us:9.2f} {r.enqueue_tail_us:11.2f} "
            f"{r.cycle_us:9.2f} {r.calls_per_s:10,.0f}"
        )
    router, naive, _ = rows
    print(
        f"\nRouter: {router.calls_per_s:,.0f} calls routed/s, {router.cycle_us:.1f} µs per"
        f" offer-and-assign cycle (offer, accept, hang up, wrap up);"
        f" {naive.cycle_us / router.cycle_us:.0f}x faster than re-sorting."
    )
    print(
        "heapq row: 'serve' is one pop, 'enqueue' one push; a Router cycle is four requests"
        " and builds their actions and the call's detail record."
    )


if __name__ == "__main__":
    main()
