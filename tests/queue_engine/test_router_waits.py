"""Estimated waits as a status publication reads them (the first ``limit`` of a queue,
from the order the router keeps between reads) against the full computation."""

from __future__ import annotations

import contextlib
import random

from cti.errors import RoutingError
from cti.models import AgentConfig, QueueConfig, RelaxStep
from queue_engine import inputs as ri
from queue_engine.router import Router, WaitEstimate
from tests.queue_engine import traffic
from tests.queue_engine.machine_base import make_caller

QUEUES = [
    QueueConfig(name="q0", value_weight=1.0, aging_rate=0.001, expected_aht_s=90.0),
    QueueConfig(name="q1", value_weight=2.0, aging_rate=1.0, skills={"x": 2}),
]


def agree(router: Router, now: float, limits: tuple[int, ...] = (1, 7, 200)) -> int:
    """Every queue's first estimates read with each limit are the full computation's
    first ones; returns how many calls wait in all."""
    waiting = 0
    for queue in router.queue_names:
        full = router.estimated_waits(queue, now)
        assert router.waiting(queue) == len(full)
        for limit in limits:
            assert router.estimated_waits(queue, now, limit) == full[:limit], (queue, limit)
        waiting += len(full)
    return waiting


def test_first_estimates_stay_exact_while_thousands_of_better_calls_push_in() -> None:
    router = Router(QUEUES)
    for i in range(10):
        router.handle(ri.CallArrives(call_id=f"low{i}", queue="q0", caller=make_caller(0, i)), 0.0)
    assert agree(router, 0.0, (5,)) == 10  # the kept order starts: the first 10 of q0
    # Every new call ranks above the 10 kept: the kept order grows past its cap, is cut.
    for i in range(2500):
        now = 1.0 + i / 100
        caller = make_caller(100, 100 + i)
        router.handle(ri.CallArrives(call_id=f"high{i}", queue="q0", caller=caller), now)
        if i % 500 == 499:
            agree(router, now, (5,))
    assert agree(router, 30.0, (1, 200, 1100, 1600, 3000)) == 2510
    assert [e.call_id for e in router.estimated_waits("q0", 30.0, 3)] == [
        "high0",
        "high1",
        "high2",
    ]


def test_first_estimates_stay_exact_through_random_traffic_read_now_and_then() -> None:
    """Arrivals, agents taking and finishing calls, hang-ups, priorities, moves, exits,
    time: read at random moments with several limits, the first estimates never differ."""
    router = Router(traffic.QUEUES)
    for event in traffic.staffing():
        router.handle(event, 0.0)
    rng = random.Random(23)
    now, reads, arrived = 0.0, 0, 0
    for now, event in traffic.random_traffic(router, seed=23, steps=4000):
        with contextlib.suppress(RoutingError):  # an input the state does not allow
            router.handle(event, now)
        arrived += isinstance(event, ri.CallArrives)
        if rng.random() < 0.05:
            agree(router, now, (rng.randint(1, 4), rng.randint(5, 40)))
            reads += 1
    agree(router, now)
    assert reads > 100
    assert arrived > 1000


def test_estimates_are_named_tuples_with_the_formula_s_values() -> None:
    """``wait(p) = max(0, p - r) * AHT / n`` for each place, with r Ready agents (who
    cannot reach the calls' ring yet) and n present, in :class:`WaitEstimate` records
    (made by ``tuple.__new__``: the same named tuples as the class's constructor)."""
    queue = QueueConfig(
        name="late",
        skills={"x": 1},
        relax=(RelaxStep(after_s=1000.0, skills={}),),
        expected_aht_s=70.0,
    )
    skilled = [AgentConfig(id=f"s{i}", queues={"late": 0}, skills={"x": 1}) for i in range(2)]
    others = [AgentConfig(id=f"o{i}", queues={"late": 0}) for i in range(3)]
    router = Router([queue], agents=[*skilled, *others])
    for a in [*skilled, *others]:
        router.handle(ri.AgentLogsIn(agent_id=a.id), 0.0)
    for a in skilled:  # on a call each: present, not Ready
        router.handle(ri.AgentGoesReady(agent_id=a.id), 0.0)
        caller = make_caller(0, len(a.id))
        router.handle(ri.CallArrives(call_id=f"t{a.id}", queue="late", caller=caller), 0.0)
    for i in range(9):
        caller = make_caller(i * 10, 100 + i)
        router.handle(ri.CallArrives(call_id=f"w{i}", queue="late", caller=caller), 1.0 + i)
    order = router.waiting_in_order("late")
    assert len(order) == 9
    for ready in range(4):
        if ready:  # one more agent Ready who may take none of the calls (ring 0 needs x)
            router.handle(ri.AgentGoesReady(agent_id=f"o{ready - 1}"), 20.0)
        assert router.waiting_in_order("late") == order
        present = 2 + ready
        want = [(c, p, max(0, p - ready) * 70.0 / present) for p, c in enumerate(order, 1)]
        for limit in (None, 1, 2, 4, 200):
            got = router.estimated_waits("late", 20.0, limit)
            assert got == want[:limit]
            assert all(type(e) is WaitEstimate for e in got)
            assert [(e.call_id, e.position, e.wait_s) for e in got] == want[:limit]
