"""The agents' deadlines kept in lanes (runs in (when, seq) order) fire exactly as one
heap of every timer fires them: the same order, ties (equal moments: the order they were
set) and stale deadlines (an offer accepted, a wrap-up ended or extended) included.

``_max_lanes`` 0 puts every agent's deadline on the heap, as before the lanes; 1 makes
most of them not fit (offers and wrap-ups of different lengths interleave); 4 is the
router's own."""

from __future__ import annotations

import random
from collections.abc import Iterator

from cti.errors import RoutingError
from cti.models import AgentConfig, QueueConfig, RelaxStep
from queue_engine import inputs as ri
from queue_engine.actions import Action, AgentStateSet, OfferCall, WithdrawOffer
from queue_engine.router import Router
from tests.queue_engine.machine_base import make_caller

#: Offers and wrap-ups of different lengths (a wrap-up of 0 s among them), so that
#: deadlines set at different moments fall on the same one.
QUEUES = (
    QueueConfig(name="q0", offer_timeout_s=15.0, wrap_up_s=10.0, wrap_up_max_s=30.0),
    QueueConfig(name="q1", offer_timeout_s=10.0, wrap_up_s=0.0, relax=(RelaxStep(after_s=5.0),)),
    QueueConfig(name="q2", offer_timeout_s=5.0, wrap_up_s=5.0, wrap_up_max_s=20.0),
)
AGENTS = tuple(
    AgentConfig(id=f"a{i}", queues={q.name: float(i % 3) for q in QUEUES[i % 2 : i % 2 + 2]})
    for i in range(8)
)


def _router(max_lanes: int) -> Router:
    router = Router(QUEUES, max_missed_offers=2, agents=AGENTS)
    router._max_lanes = max_lanes
    for agent in AGENTS:
        router.handle(ri.AgentLogsIn(agent_id=agent.id), 0.0)
    return router


def _traffic(router: Router, seed: int, steps: int) -> Iterator[tuple[float, ri.AnyInput]]:
    """Random inputs read from ``router``'s state; time moves in steps of whole
    seconds (0 too, and the timeouts' own lengths), so moments coincide."""
    rng = random.Random(seed)
    now, n = 0.0, 0
    for _ in range(steps):
        agent_id = rng.choice(AGENTS).id
        own = router.agent(agent_id).call_id or ""
        event: ri.AnyInput
        match rng.randrange(10):
            case 0 | 1:
                event = ri.CallArrives(
                    call_id=f"c{n}", queue=rng.choice(QUEUES).name, caller=make_caller(n % 90, n)
                )
                n += 1
            case 2:
                event = ri.AgentGoesReady(agent_id=agent_id)
            case 3:
                event = ri.AgentAccepts(agent_id=agent_id, call_id=own)
            case 4:
                event = ri.AgentHangsUp(agent_id=agent_id, call_id=own)
            case 5:
                event = ri.AgentFinishesWrapUp(agent_id=agent_id, call_id=own, disposition="ok")
            case 6:
                seconds = float(rng.choice((1, 5, 10)))
                event = ri.AgentExtendsWrapUp(agent_id=agent_id, call_id=own, seconds=seconds)
            case 7:
                event = ri.AgentGoesNotReady(agent_id=agent_id)
            case _:
                now += float(rng.choice((0, 1, 5, 5, 10, 15)))
                event = ri.TimePasses()
        yield now, event


def _step(router: Router, event: ri.AnyInput, now: float) -> tuple[str, float | None]:
    try:
        out: list[Action] | str = router.handle(event, now)
    except RoutingError as exc:
        out = f"refused: {exc}"
    return repr(out), router.next_deadline()


def test_lanes_fire_the_agents_deadlines_as_one_heap_does() -> None:
    fired = 0
    for seed in range(12):
        routers = [_router(0), _router(1), _router(4)]
        for now, event in _traffic(routers[0], seed, 700):
            results = {_step(router, event, now) for router in routers}
            assert len(results) == 1, (seed, now, event, results)
            if isinstance(event, ri.TimePasses):
                fired += results.pop()[0].count("timeout")
    assert fired > 100  # offers lapsed and wrap-ups ran out: the deadlines were tested


def test_deadlines_on_the_same_moment_fire_in_the_order_they_were_set() -> None:
    router = _router(4)
    for agent_id in ("a0", "a1", "a2"):
        router.handle(ri.AgentGoesReady(agent_id=agent_id), 0.0)
    call = ri.CallArrives(call_id="c1", queue="q0", caller=make_caller(10, 1))
    offer = [a for a in router.handle(call, 0.0) if isinstance(a, OfferCall)]
    assert [o.deadline for o in offer] == [15.0]
    first = offer[0].agent_id
    # Another agent's offer (q2: 5 s) set at 10 s lapses at 15 s as well, after it.
    call2 = ri.CallArrives(call_id="c2", queue="q2", caller=make_caller(10, 2))
    offer2 = [a for a in router.handle(call2, 10.0) if isinstance(a, OfferCall)]
    assert [o.deadline for o in offer2] == [15.0]
    second = offer2[0].agent_id

    out = router.handle(ri.TimePasses(), 15.0)

    withdrawn = [a.agent_id for a in out if isinstance(a, WithdrawOffer)]
    assert withdrawn == [first, second]


def test_a_deadline_no_longer_pending_does_not_fire() -> None:
    router = _router(4)
    router.handle(ri.AgentGoesReady(agent_id="a0"), 0.0)
    call = ri.CallArrives(call_id="c1", queue="q0", caller=make_caller(10, 1))
    router.handle(call, 0.0)
    assert router.next_deadline() == 15.0
    router.handle(ri.AgentAccepts(agent_id="a0", call_id="c1"), 1.0)  # the offer's is stale
    assert router.next_deadline() is None
    router.handle(ri.AgentHangsUp(agent_id="a0", call_id="c1"), 2.0)
    assert router.next_deadline() == 12.0  # q0's wrap-up: 10 s
    extend = ri.AgentExtendsWrapUp(agent_id="a0", call_id="c1", seconds=5.0)
    router.handle(extend, 3.0)
    assert router.next_deadline() == 17.0  # the extended one; 12 s is stale

    out = router.handle(ri.TimePasses(), 16.0)

    assert not [a for a in out if isinstance(a, AgentStateSet)]
    out = router.handle(ri.TimePasses(), 17.0)
    assert [(a.agent_id, a.state.value) for a in out if isinstance(a, AgentStateSet)] == [
        ("a0", "ready")
    ]
