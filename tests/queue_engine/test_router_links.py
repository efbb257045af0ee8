"""What the router keeps per agent so that a decision does not look its queues up by
name (``AgentEntry.links``, and the pools it sits in: ``pool_keys``) stays what the
configuration says through agents and queues configured anew, Ready or not."""

from __future__ import annotations

import random

from cti.models import AgentConfig, QueueConfig, RelaxStep, Strategy
from queue_engine import inputs as ri
from queue_engine.members import NOT_READY, READY
from queue_engine.router import Router
from tests.queue_engine.machine_base import make_caller

NAMES = ("q0", "q1", "q2")
SKILLS = ("x", "y")


def _queue(rng: random.Random, name: str) -> QueueConfig:
    skills = {s: rng.randint(1, 3) for s in rng.sample(SKILLS, rng.randint(0, 2))}
    relax = (RelaxStep(after_s=30.0, skills={}),) if skills and rng.random() < 0.5 else ()
    strategy = rng.choice([Strategy.LONGEST_IDLE, Strategy.ROUND_ROBIN, Strategy.FEWEST_CALLS])
    return QueueConfig(name=name, skills=skills, relax=relax, strategy=strategy)


def _agent(rng: random.Random, agent_id: str) -> AgentConfig:
    served = rng.sample(NAMES, rng.randint(1, 3))
    skills = {s: rng.randint(1, 3) for s in rng.sample(SKILLS, rng.randint(0, 2))}
    return AgentConfig(id=agent_id, skills=skills, queues={q: rng.randint(0, 9) for q in served})


def _check(router: Router) -> None:
    queues, agents = router._queues, router._agents
    in_pools = {
        (name, entry) for name, q in queues.items() for pool in q.pools for entry in pool.entries
    }
    kept = set()
    for agent in agents.values():
        links = [
            (queues[name], bonus, queues[name].members[agent.agent_id])
            for name, bonus in agent.queues.items()
            if queues[name].members[agent.agent_id] is not None
        ]
        assert [(q.name, b, f) for q, b, f in agent.links] == [(q.name, b, f) for q, b, f in links]
        assert all(q is queues[q.name] for q, _, _ in agent.links)
        if agent.state is READY:
            assert sorted(agent.pool_keys) == sorted(q.name for q, _, _ in links)
        else:
            assert agent.pool_keys == {}
        for name, (pool, entry) in agent.pool_keys.items():
            q = queues[name]
            ring = q.members[agent.agent_id]
            assert ring is not None
            assert pool is q.pools[ring]
            assert entry[-1] == agent.agent_id
            kept.add((name, entry))
    assert kept == in_pools


def test_links_and_pools_follow_every_configuration_change() -> None:
    for seed in range(30):
        rng = random.Random(seed)
        router = Router([_queue(rng, n) for n in NAMES])
        ids = [f"a{i}" for i in range(6)]
        for agent_id in ids:
            router.handle(ri.AgentConfigured(agent=_agent(rng, agent_id)), 0.0)
            router.handle(ri.AgentLogsIn(agent_id=agent_id), 0.0)
        _check(router)
        now, n = 0.0, 0
        for _ in range(60):
            now += rng.choice((0.0, 1.0, 20.0))
            step = rng.randrange(5)
            agent_id = rng.choice(ids)
            state = router.agent(agent_id).state
            if step == 0:
                router.handle(ri.AgentConfigured(agent=_agent(rng, agent_id)), now)
            elif step == 1:
                router.handle(ri.QueueConfigured(queue=_queue(rng, rng.choice(NAMES))), now)
            elif step == 2 and state is NOT_READY:
                router.handle(ri.AgentGoesReady(agent_id=agent_id), now)
            elif step == 2 and state is READY:
                router.handle(ri.AgentGoesNotReady(agent_id=agent_id, reason="break"), now)
            elif step == 3:
                n += 1
                caller = make_caller(rng.randint(0, 100), n)
                router.handle(
                    ri.CallArrives(call_id=f"c{n}", queue=rng.choice(NAMES), caller=caller), now
                )
            else:
                router.handle(ri.TimePasses(), now)
            _check(router)


def test_present_is_every_state_but_logged_out_and_not_ready() -> None:
    """``RouterCore._set_state`` counts an agent present by two identity checks; they
    must mean :data:`~queue_engine.router_state.PRESENT`."""
    from cti.models import AgentState
    from queue_engine.members import LOGGED_OUT
    from queue_engine.router_state import PRESENT

    assert set(AgentState) - {LOGGED_OUT, NOT_READY} == PRESENT
