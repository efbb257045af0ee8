"""The supervisor wallboard: what one update costs with 1,000 agents and 50 queues.

One update is what a busy center sends the wallboard each second: every queue's status
and waiting calls (50 + 50 messages, five calls waiting per queue, figures drifting as
they do from one second to the next) and 100 agents changing state, then the
once-a-second clock tick. Measured per update, median and
95th percentile over the rounds:

* ``model_ms`` (the baseline): the messages applied to :class:`WallboardModel` alone;
* ``tick_ms``: the same messages through the running app (headless, 120x40): the model,
  the tiles, the agent grid, the waiting calls, the chart, the clock tick and the
  screen drawn (Pilot's pause returns once the frame is done);
* ``decode_ms``: turning those messages from JSON, which the bus does before either.

Costs are CPU time of the process (``time.process_time``): Pilot's pause sleeps while it
waits for the app to go idle, so the wall time of an update (``tick_wall_ms``, also
printed) counts those sleeps too.

Also the first load: all 1,000 agents' retained states arriving at once into the app.

    .venv/bin/python benchmarks/bench_wallboard.py [--agents N] [--queues N] [--rounds N]

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from typing import Any

from agent_console.wallboard import Wallboard
from agent_console.wallboard_model import WallboardModel
from cti.bus.memory import InMemoryBus
from cti.models import AgentState
from cti.protocol import (
    AgentStateChanged,
    Message,
    QueueCalls,
    QueueStatus,
    WaitingCall,
    decode,
    encode,
)

T0 = 1767603600.0
SURNAMES = "王李张刘陈杨黄赵吴周"
STATES = (AgentState.READY, AgentState.TALKING, AgentState.WRAP_UP, AgentState.NOT_READY)


def agent_ids(agents: int) -> list[str]:
    return [str(10_000 + n) for n in range(agents)]


def names(agents: int) -> dict[str, str]:
    """Every fifth agent has a Chinese name, the others a Latin one."""
    return {
        agent_id: (SURNAMES[n % 10] + "明月") if n % 5 == 0 else f"Agent {n}"
        for n, agent_id in enumerate(agent_ids(agents))
    }


def agent_state(agent_id: str, rng: random.Random, at: float) -> AgentStateChanged:
    state = rng.choice(STATES)
    return AgentStateChanged(
        agent_id=agent_id,
        state=state,
        reason="break" if state is AgentState.NOT_READY else "",
        since_wall=at - rng.uniform(0, 600),
        call_id=f"c{rng.randrange(10**6)}" if state is AgentState.TALKING else None,
        calls_handled=rng.randrange(60),
    )


def update(
    round_no: int, queues: int, ids: list[str], changes: int, rng: random.Random
) -> list[Message]:
    """One second's messages: every queue's status and calls, ``changes`` agent states."""
    at = T0 + round_no
    out: list[Message] = []
    for q in range(queues):
        name = f"queue-{q:02d}"
        waiting = 5
        # Figures drift as in a real second: each queue keeps its level of service.
        level = 0.55 + 0.4 * q / queues
        out.append(
            QueueStatus(
                queue=name,
                waiting=waiting,
                longest_wait_s=(q + round_no) % 90 + rng.random(),
                agents_ready=rng.randrange(10),
                agents_busy=rng.randrange(20),
                agents_logged_in=20,
                offered=100 + round_no,
                answered=90 + round_no,
                abandoned=5,
                service_level=level + rng.uniform(-0.004, 0.004),
                asa_s=rng.uniform(5, 40),
                at_wall=at,
                agents_by_state={"ready": 3, "talking": 12, "wrap_up": 2, "not_ready": 3},
            )
        )
        calls = tuple(
            WaitingCall(
                call_id=f"{name}-{round_no}-{k}",
                position=k + 1,
                waited_s=rng.uniform(0, 120),
                estimated_wait_s=rng.uniform(0, 200),
                ani="+8613800000000",
                customer="张伟" if k % 2 else "",
                segment="gold" if k % 2 else "",
            )
            for k in range(waiting)
        )
        out.append(QueueCalls(queue=name, calls=calls, at_wall=at))
    for agent_id in rng.sample(ids, changes):
        out.append(agent_state(agent_id, rng, at))
    return out


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return statistics.median(ordered), p95


async def measure_app(
    agents: int, queues: int, rounds: int, changes: int
) -> tuple[float, list[float], list[float]]:
    ids = agent_ids(agents)
    rng = random.Random(2)
    clock = {"now": T0}
    app = Wallboard(InMemoryBus(), agent_names=names(agents), clock=lambda: clock["now"])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        started = time.perf_counter()
        for agent_id in ids:
            app.apply(agent_state(agent_id, rng, T0))
        for message in update(0, queues, ids, 0, rng):
            app.apply(message)
        await pilot.pause()
        first_load = time.perf_counter() - started
        cpu, wall = [], []
        for round_no in range(1, rounds + 1):
            messages = update(round_no, queues, ids, changes, rng)
            clock["now"] = T0 + round_no
            began, began_wall = time.process_time(), time.perf_counter()
            for message in messages:
                app.apply(message)
            app.tick()
            await pilot.pause()
            cpu.append(time.process_time() - began)
            wall.append(time.perf_counter() - began_wall)
    return first_load, cpu, wall


def measure_model(agents: int, queues: int, rounds: int, changes: int) -> list[float]:
    ids = agent_ids(agents)
    rng = random.Random(2)
    model = WallboardModel(agent_names=names(agents))
    for agent_id in ids:
        model.apply(agent_state(agent_id, rng, T0), T0)
    samples = []
    for round_no in range(1, rounds + 1):
        messages = update(round_no, queues, ids, changes, rng)
        began = time.process_time()
        for message in messages:
            model.apply(message, T0 + round_no)
        model.take_changes()
        samples.append(time.process_time() - began)
    return samples


def measure_decode(agents: int, queues: int, rounds: int, changes: int) -> list[float]:
    ids = agent_ids(agents)
    rng = random.Random(2)
    samples = []
    for round_no in range(1, rounds + 1):
        payloads = [encode(m) for m in update(round_no, queues, ids, changes, rng)]
        began = time.process_time()
        for payload in payloads:
            decode(payload)
        samples.append(time.process_time() - began)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--changes", type=int, default=100, help="agent state changes per update")
    args = parser.parse_args()
    n = (args.agents, args.queues, args.rounds, args.changes)

    model_ms, model_p95 = summary([s * 1000 for s in measure_model(*n)])
    decode_ms, _ = summary([s * 1000 for s in measure_decode(*n)])
    first_load, app_cpu, app_wall = asyncio.run(measure_app(*n))
    tick_ms, tick_p95 = summary([s * 1000 for s in app_cpu])
    wall_ms, wall_p95 = summary([s * 1000 for s in app_wall])

    messages = 2 * args.queues + args.changes
    print(f"wallboard: {args.agents} agents, {args.queues} queues, {messages} messages per update")
    print(f"{'CPU per update':<34}{'median ms':>10}{'p95 ms':>10}")
    print(f"{'model alone (baseline)':<34}{model_ms:>10.2f}{model_p95:>10.2f}")
    print(f"{'app: model + screen (tick_ms)':<34}{tick_ms:>10.2f}{tick_p95:>10.2f}")
    print(f"{'JSON decode of the messages':<34}{decode_ms:>10.2f}")
    print(f"{'app, wall time (with idle waits)':<34}{wall_ms:>10.2f}{wall_p95:>10.2f}")
    print(f"first load of every agent: {first_load * 1000:.0f} ms")
    result: dict[str, Any] = {
        "bench": "wallboard",
        "agents": args.agents,
        "queues": args.queues,
        "messages_per_update": messages,
        "rounds": args.rounds,
        "tick_ms": round(tick_ms, 2),
        "tick_ms_p95": round(tick_p95, 2),
        "tick_wall_ms": round(wall_ms, 2),
        "model_ms": round(model_ms, 3),
        "model_ms_p95": round(model_p95, 3),
        "decode_ms": round(decode_ms, 3),
        "first_load_ms": round(first_load * 1000, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
