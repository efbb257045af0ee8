"""Random traffic for a router: two queues (skills, relaxation, exits, priorities) and
six agents, and inputs drawn from what the router's state makes likely to be allowed."""

from __future__ import annotations

import random
from collections.abc import Iterator

from cti.models import AgentConfig, ExitAction, MaxWaitExit, QueueConfig, QueueExits, RelaxStep
from queue_engine import inputs as ri
from queue_engine.router import Router
from tests.queue_engine.machine_base import make_caller

QUEUES = (
    QueueConfig(
        name="q0",
        value_weight=1.0,
        aging_rate=0.001,
        expected_aht_s=90.0,
        wrap_up_s=5.0,
        exits=QueueExits(max_wait=MaxWaitExit(after_s=300.0, action=ExitAction.CALLBACK)),
    ),
    QueueConfig(
        name="q1",
        value_weight=2.0,
        aging_rate=1.0,
        skills={"x": 2},
        relax=(RelaxStep(after_s=60.0),),
        exits=QueueExits(max_wait=MaxWaitExit(after_s=200.0, action=ExitAction.VOICEMAIL)),
    ),
)
AGENTS = tuple(
    AgentConfig(id=f"a{i}", skills={"x": 2} if i % 2 else {}, queues={"q0": 0.0, "q1": float(i)})
    for i in range(6)
)


def staffing() -> Iterator[ri.AnyInput]:
    """The agents configured and logged in (Not Ready)."""
    for config in AGENTS:
        yield ri.AgentConfigured(agent=config)
        yield ri.AgentLogsIn(agent_id=config.id)


def random_traffic(router: Router, seed: int, steps: int) -> Iterator[tuple[float, ri.AnyInput]]:
    """``steps`` random inputs for ``router`` (staffed by :func:`staffing`) at their
    times: arrivals, Ready, offers accepted, hang-ups, wrap-ups, callers hanging up,
    supervisors' priorities and moves, time passing. Each is drawn from the state the
    router is in when it is yielded; some are refused (the caller handles them)."""
    rng = random.Random(seed)
    agents = [a.id for a in AGENTS]
    now, n = 0.0, 0
    for _ in range(steps):
        agent_id = rng.choice(agents)
        own = router.agent(agent_id).call_id or ""
        waiting = [c for q in router.queue_names for c in router.waiting_in_order(q)]
        some = rng.choice(waiting) if waiting else "none"
        event: ri.AnyInput
        match rng.randrange(11):
            case 0 | 1 | 2:
                queue = rng.choice(["q0", "q1"])
                caller = make_caller(rng.randint(0, 100), n)
                event = ri.CallArrives(call_id=f"c{n}", queue=queue, caller=caller)
                n += 1
            case 3:
                event = ri.AgentGoesReady(agent_id=agent_id)
            case 4:
                event = ri.AgentAccepts(agent_id=agent_id, call_id=own)
            case 5:
                event = ri.AgentHangsUp(agent_id=agent_id, call_id=own)
            case 6:
                event = ri.AgentFinishesWrapUp(agent_id=agent_id, call_id=own, disposition="ok")
            case 7:
                event = ri.CallerHangsUp(call_id=some)
            case 8:
                event = ri.CallPriorityChanged(call_id=some, priority=rng.choice([-5.0, 50.0]))
            case 9:
                event = ri.CallMoved(call_id=some, queue=rng.choice(["q0", "q1"]))
            case _:
                now += rng.choice([0.5, 7.0, 40.0])
                event = ri.TimePasses()
        yield now, event
