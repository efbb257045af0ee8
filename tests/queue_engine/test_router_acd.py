"""Example tests of the router, one or more per ACD rule (docs/acd.md).

Skills and relaxation rings, several queues per agent with per-agent queue priority,
the seven strategies, supervisor priority and moves, missed and rejected offers across
queues, wrap-up per queue, queue exits, callbacks, estimated waits, reconfiguration,
and ``handle`` for every input kind. ``now`` is always a parameter: no clock, no sleep.
The single-queue basics are in ``test_router.py`` and not repeated here.
"""

from __future__ import annotations

import itertools
import math
from typing import TypeVar, get_args

import pytest
from pydantic import ValidationError

from cti.errors import RoutingError
from cti.models import (
    AgentConfig,
    AgentState,
    CallerInfo,
    CallerKind,
    Customer,
    ExitAction,
    MaxLengthExit,
    MaxWaitExit,
    NoAgentsExit,
    QueueConfig,
    QueueExits,
    RelaxStep,
    Strategy,
)
from queue_engine import inputs
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ConnectCall,
    DisconnectCall,
    ExitCall,
    MoveCall,
    OfferCall,
    RecordCall,
    ReleaseLine,
    WithdrawOffer,
)
from queue_engine.priority import rank
from queue_engine.router import (
    MISSED_OFFER,
    NOT_READY_AFTER_CALL,
    REJECTED_OFFER,
    CallPhase,
    Router,
)

A = TypeVar("A")


def caller(value: float = 0.0, n: int = 1) -> CallerInfo:
    customer = Customer(id=n, name=f"Customer {n}", value=value)
    number = f"+4420700{n:05d}"
    return CallerInfo(ani=number, e164=number, kind=CallerKind.KNOWN, customer=customer)


def number_of(n: int) -> str:
    return f"+4420700{n:05d}"


def of_type(actions: list[Action], kind: type[A]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


def offers(actions: list[Action]) -> list[tuple[str, str]]:
    """(call, agent) of every offer, in order."""
    return [(o.call_id, o.agent_id) for o in of_type(actions, OfferCall)]


def only_record(actions: list[Action]) -> RecordCall:
    records = of_type(actions, RecordCall)
    assert len(records) == 1, actions
    return records[0]


def agent(
    router: Router,
    agent_id: str,
    queues: dict[str, float] | tuple[str, ...],
    now: float,
    *,
    skills: dict[str, int] | None = None,
    is_ready: bool = True,
) -> list[Action]:
    """Add ``agent_id``, log it in, and (unless told otherwise) make it Ready at ``now``."""
    bonus = queues if isinstance(queues, dict) else dict.fromkeys(queues, 0.0)
    router.handle(
        inputs.AgentConfigured(agent=AgentConfig(id=agent_id, skills=skills or {}, queues=bonus)),
        now,
    )
    out = router.handle(inputs.AgentLogsIn(agent_id=agent_id), now)
    if is_ready:
        out += router.handle(inputs.AgentGoesReady(agent_id=agent_id), now)
    return out


def state(router: Router, agent_id: str) -> AgentState:
    return router.agent(agent_id).state


def serve(router: Router, agent_id: str, call_id: str, now: float, talk: float = 0.0) -> None:
    """``agent_id`` (offered ``call_id``) accepts, talks ``talk`` s and wraps up at once."""
    router.handle(inputs.AgentAccepts(agent_id=agent_id, call_id=call_id), now)
    router.handle(inputs.AgentHangsUp(agent_id=agent_id, call_id=call_id), now + talk)
    router.handle(
        inputs.AgentFinishesWrapUp(agent_id=agent_id, call_id=call_id, disposition="ok"), now + talk
    )


# --- skills and relaxation rings ------------------------------------------------------

# Mandarin >= 3 at first, >= 1 after 30 s, anyone after 60 s.
MANDARIN = QueueConfig(
    name="zh",
    skills={"mandarin": 3},
    relax=(
        RelaxStep(after_s=30.0, skills={"mandarin": 1}),
        RelaxStep(after_s=60.0, skills={}),
    ),
    offer_timeout_s=10.0,
    wrap_up_s=5.0,
)


def test_a_skilled_queue_offers_only_to_agents_with_the_level() -> None:
    router = Router([MANDARIN])
    agent(router, "none", ("zh",), 0.0)  # Ready the longest, but no mandarin
    agent(router, "novice", ("zh",), 1.0, skills={"mandarin": 2})
    agent(router, "fluent", ("zh",), 2.0, skills={"mandarin": 3})
    agent(router, "native", ("zh",), 3.0, skills={"mandarin": 5})

    first = router.handle(inputs.CallArrives(call_id="c1", queue="zh", caller=caller()), 10.0)
    second = router.handle(inputs.CallArrives(call_id="c2", queue="zh", caller=caller(n=2)), 10.0)
    third = router.handle(inputs.CallArrives(call_id="c3", queue="zh", caller=caller(n=3)), 10.0)

    assert offers(first + second) == [("c1", "fluent"), ("c2", "native")]
    assert third == []
    assert router.call_phase("c3") is CallPhase.QUEUED
    assert state(router, "none") is AgentState.READY
    assert state(router, "novice") is AgentState.READY
    assert router.call_ring("c3") == 0


def test_relaxation_rings_offer_a_waiting_call_to_looser_agents_in_time() -> None:
    router = Router([MANDARIN])
    agent(router, "none", ("zh",), 0.0)
    agent(router, "novice", ("zh",), 0.0, skills={"mandarin": 1})

    assert router.handle(inputs.CallArrives(call_id="c1", queue="zh", caller=caller()), 100.0) == []
    assert (
        router.handle(inputs.CallArrives(call_id="c2", queue="zh", caller=caller(n=2)), 110.0) == []
    )
    assert state(router, "none") is AgentState.READY
    assert router.next_deadline() == 130.0  # c1 reaches the mandarin >= 1 ring

    assert router.handle(inputs.TimePasses(), 129.5) == []
    assert router.call_ring("c1") == 0
    out = router.handle(inputs.TimePasses(), 130.0)
    assert offers(out) == [("c1", "novice")]
    assert router.call_ring("c1") == 1
    assert state(router, "none") is AgentState.READY  # c2 still needs mandarin
    assert router.next_deadline() == 140.0  # c2's first ring (c1's offer lapses at 140 too)

    router.handle(inputs.AgentAccepts(agent_id="novice", call_id="c1"), 131.0)
    assert router.handle(inputs.TimePasses(), 140.0) == []  # c2 reaches ring 1, but novice is busy
    assert router.call_ring("c2") == 1
    assert router.call_phase("c2") is CallPhase.QUEUED
    out = router.handle(inputs.TimePasses(), router.next_deadline() or math.inf)  # 170: anyone
    assert offers(out) == [("c2", "none")]
    assert router.call_ring("c2") == 2


def test_a_call_that_waited_past_a_ring_while_offered_comes_back_in_the_right_ring() -> None:
    slow = MANDARIN.model_copy(update={"offer_timeout_s": 40.0})
    router = Router([slow])
    agent(router, "novice", ("zh",), 0.0, skills={"mandarin": 1})
    agent(router, "fluent", ("zh",), 1.0, skills={"mandarin": 4})
    router.handle(
        inputs.CallArrives(call_id="c1", queue="zh", caller=caller()), 0.0
    )  # to fluent, who lets it ring 40 s
    assert router.handle(inputs.TimePasses(), 30.0) == []  # the ring timer finds the call offered

    out = router.handle(inputs.TimePasses(), 40.0)

    assert out[:2] == [
        WithdrawOffer("c1", "fluent", "timeout"),
        AgentStateSet("fluent", AgentState.NOT_READY, MISSED_OFFER),
    ]
    assert offers(out) == [("c1", "novice")]  # it has waited 40 s: ring 1 now
    assert router.call_ring("c1") == 1


def test_a_call_rejected_after_a_ring_waits_in_that_ring_for_looser_agents() -> None:
    slow = MANDARIN.model_copy(update={"offer_timeout_s": 100.0})
    router = Router([slow])
    agent(router, "fluent", ("zh",), 0.0, skills={"mandarin": 3})
    router.handle(inputs.CallArrives(call_id="c1", queue="zh", caller=caller()), 0.0)
    router.handle(inputs.TimePasses(), 61.0)
    router.handle(inputs.AgentRejects(agent_id="fluent", call_id="c1"), 62.0)
    assert router.call_ring("c1") == 2

    out = agent(router, "none", ("zh",), 63.0)  # no skills: only ring 2 fits

    assert offers(out) == [("c1", "none")]


@pytest.mark.parametrize(
    ("skills", "relax", "message"),
    [
        ({"mandarin": 2}, [(10.0, {"mandarin": 3})], "relax[0]"),  # a higher level
        ({"mandarin": 2}, [(10.0, {"mandarin": 2, "billing": 1})], "relax[0]"),  # new skill
        ({"mandarin": 3}, [(10.0, {"mandarin": 2}), (20.0, {"mandarin": 3})], "relax[1]"),
        ({}, [(10.0, {}), (20.0, {"french": 1})], "relax[1]"),
        ({"mandarin": 3}, [(20.0, {"mandarin": 2}), (20.0, {})], "relax[1].after_s"),
    ],
    ids=["higher-level", "new-skill", "tightens-later", "adds-after-empty", "same-time"],
)
def test_queue_config_rejects_a_ring_that_tightens(
    skills: dict[str, int], relax: list[tuple[float, dict[str, int]]], message: str
) -> None:
    steps = tuple(RelaxStep(after_s=after, skills=s) for after, s in relax)
    with pytest.raises(ValidationError) as info:
        QueueConfig(name="q", skills=skills, relax=steps)
    assert message in str(info.value)


def test_queue_config_accepts_rings_that_only_loosen() -> None:
    config = QueueConfig(
        name="q",
        skills={"mandarin": 3, "billing": 2},
        relax=(
            RelaxStep(after_s=10.0, skills={"mandarin": 3, "billing": 1}),
            RelaxStep(after_s=20.0, skills={"mandarin": 2}),
            RelaxStep(after_s=30.0),
        ),
    )
    assert [after for after, _ in config.rings] == [0.0, 10.0, 20.0, 30.0]


def test_rings_and_max_wait_fire_at_epoch_times_with_fractional_seconds() -> None:
    """Engine time reads as epoch seconds: the timer and the check must agree.

    ``(t + 10.1) - t`` is a little under 10.1 at t = 1.7e9; comparing the wait to
    ``after_s`` made the timer fire without effect, and the call stayed where it was.
    """
    t0 = 1_712_345_678.25
    zh = MANDARIN.model_copy(
        update={"relax": (RelaxStep(after_s=10.1, skills={}),), "offer_timeout_s": 15.0}
    )
    leave = QueueConfig(
        name="leave",
        exits=QueueExits(max_wait=MaxWaitExit(action=ExitAction.VOICEMAIL, after_s=10.1)),
    )
    router = Router([zh, leave])
    agent(router, "none", ("zh",), t0)
    agent(router, "busy", ("leave",), t0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="zh", caller=caller()), t0)
    router.handle(inputs.CallArrives(call_id="c2", queue="leave", caller=caller(n=2)), t0)

    deadline = router.next_deadline()
    assert deadline is not None
    out = router.handle(inputs.TimePasses(), deadline)

    assert offers(out) == [("c1", "none")]
    assert [e.call_id for e in of_type(out, ExitCall)] == ["c2"]


# --- several queues per agent, per-agent queue priority --------------------------------

PLAIN_A = QueueConfig(name="A", value_weight=1.0, aging_rate=1.0)
PLAIN_B = QueueConfig(name="B", value_weight=1.0, aging_rate=1.0)


@pytest.mark.parametrize(
    ("younger_by", "winner"),
    [
        (20.0, "b1"),  # A: 50, B: 30 + 30 = 60
        (29.0, "b1"),  # A: 50, B: 21 + 30 = 51
        (30.0, "a1"),  # a tie at 50: the earlier arrival
        (40.0, "a1"),  # A: 50, B: 10 + 30 = 40: aging beats the bonus
    ],
)
def test_an_agent_takes_the_best_call_by_rank_plus_its_queue_bonus(
    younger_by: float, winner: str
) -> None:
    router = Router([PLAIN_A, PLAIN_B])
    agent(router, "x", {"A": 0.0, "B": 30.0}, 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="a1", queue="A", caller=caller(0)), 0.0)
    router.handle(inputs.CallArrives(call_id="b1", queue="B", caller=caller(0, 2)), younger_by)

    out = router.handle(inputs.AgentGoesReady(agent_id="x"), 50.0)

    assert offers(out) == [(winner, "x")]
    loser = ({"a1", "b1"} - {winner}).pop()
    assert router.call_phase(loser) is CallPhase.QUEUED


def test_the_bonus_belongs_to_the_agent_not_the_queue() -> None:
    router = Router([PLAIN_A, PLAIN_B])
    agent(router, "x", {"A": 0.0, "B": 30.0}, 0.0, is_ready=False)
    agent(router, "y", {"A": 30.0, "B": 0.0}, 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="a1", queue="A", caller=caller(0)), 0.0)
    router.handle(inputs.CallArrives(call_id="b1", queue="B", caller=caller(0, 2)), 10.0)
    router.handle(inputs.CallArrives(call_id="a2", queue="A", caller=caller(0, 3)), 15.0)

    assert offers(router.handle(inputs.AgentGoesReady(agent_id="y"), 50.0)) == [("a1", "y")]
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="x"), 50.0)) == [
        ("b1", "x")
    ]  # 40 + 30 > a2's 35


def test_no_queue_starves_under_a_stream_of_bonus_calls() -> None:
    """An A call waits while B calls (bonus 30) keep coming; it is served once it is
    30 s older than the oldest B call, and no B call that came 30 s after it or later
    is served before it."""
    router = Router([PLAIN_A, PLAIN_B])
    agent(router, "x", {"A": 0.0, "B": 30.0}, 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="a1", queue="A", caller=caller(0)), 0.0)
    served: list[str] = []
    for t in range(1, 200):  # a B call every second, the agent serves one every 2 s
        router.handle(
            inputs.CallArrives(call_id=f"b{t}", queue="B", caller=caller(0, t + 1)), float(t)
        )
        if t == 1:
            out = router.handle(inputs.AgentGoesReady(agent_id="x"), 1.0)
        elif t % 2 == 1:
            current = served[-1]
            router.handle(inputs.AgentHangsUp(agent_id="x", call_id=current), float(t))
            out = router.handle(
                inputs.AgentFinishesWrapUp(agent_id="x", call_id=current, disposition="ok"),
                float(t),
            )
        else:
            continue
        (offer,) = of_type(out, OfferCall)
        router.handle(inputs.AgentAccepts(agent_id="x", call_id=offer.call_id), float(t))
        served.append(offer.call_id)
        if offer.call_id == "a1":
            break

    assert "a1" in served
    before = served[: served.index("a1")]
    assert before == [f"b{k}" for k in range(1, 30)]  # b30 ties with a1 and loses


# --- strategies -----------------------------------------------------------------------


def strategy_queue(strategy: Strategy, **kw: object) -> QueueConfig:
    return QueueConfig(name="q", strategy=strategy, offer_timeout_s=10.0, wrap_up_s=5.0, **kw)


def test_longest_idle_across_rings_picks_the_longest_idle_eligible_agent() -> None:
    q = strategy_queue(
        Strategy.LONGEST_IDLE, skills={"x": 2}, relax=(RelaxStep(after_s=20.0, skills={}),)
    )
    router = Router([q])
    agent(router, "plain", ("q",), 0.0)  # only for ring 1, Ready the longest
    agent(router, "skilled2", ("q",), 2.0, skills={"x": 2})
    agent(router, "skilled1", ("q",), 1.0, skills={"x": 5})

    assert offers(
        router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)
    ) == [("c1", "skilled1")]
    router.handle(inputs.AgentAccepts(agent_id="skilled1", call_id="c1"), 5.0)
    router.handle(inputs.AgentGoesNotReady(agent_id="skilled2", reason="break"), 6.0)
    router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 6.0)
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="skilled2"), 7.0)) == [
        ("c2", "skilled2")
    ]
    router.handle(inputs.AgentAccepts(agent_id="skilled2", call_id="c2"), 7.0)
    router.handle(
        inputs.CallArrives(call_id="c3", queue="q", caller=caller(n=3)), 8.0
    )  # waits for ring 1
    ready_late = agent(router, "plain2", ("q",), 9.0)
    assert ready_late[-1] == AgentStateSet("plain2", AgentState.READY)

    assert offers(router.handle(inputs.TimePasses(), 28.0)) == [
        ("c3", "plain")
    ]  # not plain2, Ready later


def test_longest_idle_tie_goes_to_the_agent_who_went_ready_first() -> None:
    router = Router([strategy_queue(Strategy.LONGEST_IDLE)])
    agent(router, "zed", ("q",), 5.0)
    agent(router, "amy", ("q",), 5.0)  # Ready at the same moment, later, smaller id

    assert offers(
        router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 6.0)
    ) == [("c1", "zed")]


def handled_counts(router: Router, counts: dict[str, int], talk: dict[str, float]) -> float:
    """Make each agent (all logged in, Not Ready) handle ``counts`` calls of ``talk`` s."""
    now, n = 0.0, 0
    for agent_id, count in counts.items():
        router.handle(inputs.AgentGoesReady(agent_id=agent_id), now)
        for _ in range(count):
            n += 1
            router.handle(
                inputs.CallArrives(call_id=f"warm{n}", queue="q", caller=caller(n=n)), now
            )
            serve(router, agent_id, f"warm{n}", now, talk[agent_id])
            now += talk[agent_id] + 1
        router.handle(inputs.AgentGoesNotReady(agent_id=agent_id, reason="break"), now)
    return now


def test_fewest_calls_then_longest_idle() -> None:
    router = Router([strategy_queue(Strategy.FEWEST_CALLS)])
    for a in ("a", "b", "c", "d"):
        agent(router, a, ("q",), 0.0, is_ready=False)
    now = handled_counts(router, {"a": 2, "b": 0, "c": 1, "d": 1}, dict.fromkeys("abcd", 1.0))
    for i, a in enumerate(["a", "d", "c", "b"]):  # a idles longest, b shortest
        router.handle(inputs.AgentGoesReady(agent_id=a), now + i)
    now += 10

    got = [
        offers(
            router.handle(
                inputs.CallArrives(call_id=f"c{i}", queue="q", caller=caller(n=99 + i)), now
            )
        )[0][1]
        for i in range(4)
    ]

    assert got == ["b", "d", "c", "a"]  # 0 calls; 1 call (d Ready before c); 2 calls


def test_least_talk_time_then_longest_idle() -> None:
    router = Router([strategy_queue(Strategy.LEAST_TALK_TIME)])
    for a in ("a", "b", "c"):
        agent(router, a, ("q",), 0.0, is_ready=False)
    # a: 1 call of 100 s, b: 2 calls of 10 s, c: 3 calls of 10 s
    now = handled_counts(router, {"a": 1, "b": 2, "c": 3}, {"a": 100.0, "b": 10.0, "c": 10.0})
    for i, a in enumerate(["a", "c", "b"]):
        router.handle(inputs.AgentGoesReady(agent_id=a), now + i)
    now += 10

    got = [
        offers(
            router.handle(
                inputs.CallArrives(call_id=f"c{i}", queue="q", caller=caller(n=99 + i)), now
            )
        )[0][1]
        for i in range(3)
    ]

    assert got == ["b", "c", "a"]  # 20 s, 30 s, 100 s: not the longest idle, a


def test_round_robin_remembers_who_had_the_last_call_and_wraps_around() -> None:
    router = Router([strategy_queue(Strategy.ROUND_ROBIN)])
    for a in ("1", "2", "3"):  # member order 1, 2, 3
        agent(router, a, ("q",), 0.0, is_ready=False)
    router.handle(inputs.AgentGoesReady(agent_id="2"), 0.0)
    assert offers(
        router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 1.0)
    ) == [("c1", "2")]
    router.handle(inputs.AgentGoesReady(agent_id="1"), 2.0)  # idles longer than 3
    router.handle(inputs.AgentGoesReady(agent_id="3"), 3.0)

    assert offers(
        router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 4.0)
    ) == [("c2", "3")]
    assert offers(
        router.handle(inputs.CallArrives(call_id="c3", queue="q", caller=caller(n=3)), 5.0)
    ) == [("c3", "1")]  # wraps
    serve(router, "2", "c1", 6.0)
    serve(router, "3", "c2", 6.0)
    serve(router, "1", "c3", 6.0)  # all Ready again; 1 had the last call
    assert offers(
        router.handle(inputs.CallArrives(call_id="c4", queue="q", caller=caller(n=4)), 7.0)
    ) == [("c4", "2")]
    assert offers(
        router.handle(inputs.CallArrives(call_id="c5", queue="q", caller=caller(n=5)), 7.0)
    ) == [("c5", "3")]


def random_run(seed: int, calls: int) -> list[str]:
    router = Router([strategy_queue(Strategy.RANDOM)], seed=seed)
    for i, a in enumerate(("a", "b", "c", "d")):
        agent(router, a, ("q",), float(i))
    got = []
    for i in range(calls):
        now = 10.0 + i
        (offer,) = of_type(
            router.handle(inputs.CallArrives(call_id=f"c{i}", queue="q", caller=caller(n=i)), now),
            OfferCall,
        )
        got.append(offer.agent_id)
        serve(router, offer.agent_id, offer.call_id, now)
    return got


def test_random_is_deterministic_for_a_seed_and_reaches_every_agent() -> None:
    first = random_run(7, 200)

    assert random_run(7, 200) == first
    assert random_run(8, 200) != first
    assert set(first) == {"a", "b", "c", "d"}
    assert min(first.count(a) for a in "abcd") >= 20
    # not a rotation: longest idle would never give two calls in a row to one agent
    assert any(x == y for x, y in itertools.pairwise(first))


def test_best_proficiency_takes_the_highest_level_in_the_queue_skills() -> None:
    q = strategy_queue(Strategy.BEST_PROFICIENCY, skills={"mandarin": 1})
    router = Router([q])
    agent(router, "m2", ("q",), 0.0, skills={"mandarin": 2})  # idles longest
    agent(router, "polyglot", ("q",), 1.0, skills={"mandarin": 1, "french": 5, "german": 5})
    agent(router, "m5", ("q",), 2.0, skills={"mandarin": 5})
    agent(router, "m3", ("q",), 3.0, skills={"mandarin": 3})
    agent(router, "m3b", ("q",), 4.0, skills={"mandarin": 3})

    got = [
        offers(
            router.handle(inputs.CallArrives(call_id=f"c{i}", queue="q", caller=caller(n=i)), 10.0)
        )[0][1]
        for i in range(5)
    ]

    assert got == ["m5", "m3", "m3b", "m2", "polyglot"]  # equal levels: longest idle


RING_ALL = strategy_queue(Strategy.RING_ALL, skills={"x": 1})


def ring_all_router() -> Router:
    router = Router([RING_ALL])
    agent(router, "a", ("q",), 0.0, skills={"x": 1})
    agent(router, "b", ("q",), 1.0, skills={"x": 2})
    agent(router, "c", ("q",), 2.0, skills={"x": 1})
    agent(router, "unskilled", ("q",), 0.0)
    return router


def test_ring_all_offers_to_every_eligible_ready_agent_at_once() -> None:
    router = ring_all_router()

    out = router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)

    assert sorted(offers(out)) == [("c1", "a"), ("c1", "b"), ("c1", "c")]
    assert {o.deadline for o in of_type(out, OfferCall)} == {15.0}
    assert router.offered_to("c1") == ["a", "b", "c"]
    assert state(router, "unskilled") is AgentState.READY


def test_ring_all_first_to_accept_connects_the_others_are_freed_or_take_the_next() -> None:
    router = ring_all_router()
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)
    assert (
        router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 6.0) == []
    )  # everyone is ringing

    out = router.handle(inputs.AgentAccepts(agent_id="b", call_id="c1"), 7.0)

    assert out[0] == ConnectCall("c1", "b")
    assert WithdrawOffer("c1", "a", "answered_elsewhere") in out
    assert WithdrawOffer("c1", "c", "answered_elsewhere") in out
    # the waiting call rings both freed agents (not only the first freed)
    assert offers(out) == [("c2", "a"), ("c2", "c")]
    assert state(router, "b") is AgentState.TALKING
    assert router.offered_to("c1") == ["b"]
    with pytest.raises(RoutingError):
        router.handle(inputs.AgentAccepts(agent_id="c", call_id="c1"), 7.5)
    # the freed agents' old offer deadline does nothing
    assert offers(router.handle(inputs.TimePasses(), 15.0)) == []
    assert router.offered_to("c2") == ["a", "c"]
    assert state(router, "a") is AgentState.RESERVED


def test_ring_all_caller_hang_up_withdraws_every_offer() -> None:
    router = ring_all_router()
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)

    out = router.handle(inputs.CallerHangsUp(call_id="c1"), 6.0)

    assert sorted(w.agent_id for w in of_type(out, WithdrawOffer)) == ["a", "b", "c"]
    assert {w.reason for w in of_type(out, WithdrawOffer)} == {"caller_hung_up"}
    assert only_record(out).cdr.outcome == "abandoned"
    assert [state(router, a) for a in "abc"] == [AgentState.READY] * 3


def test_ring_all_timeout_with_everyone_missing_requeues_the_call() -> None:
    router = ring_all_router()
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)

    out = router.handle(inputs.TimePasses(), 15.0)

    assert sorted(w.agent_id for w in of_type(out, WithdrawOffer)) == ["a", "b", "c"]
    assert {w.reason for w in of_type(out, WithdrawOffer)} == {"timeout"}
    assert [state(router, a) for a in "abc"] == [AgentState.NOT_READY] * 3
    assert router.call_phase("c1") is CallPhase.QUEUED
    assert router.waiting_in_order("q") == ["c1"]
    assert router.offered_to("c1") == []  # the call's set emptied in place (docs/acd.md §13)
    out = router.handle(inputs.AgentGoesReady(agent_id="c"), 16.0)
    assert offers(out) == [("c1", "c")]
    assert router.offered_to("c1") == ["c"]


def test_a_call_offered_again_is_offered_to_the_new_agent_alone() -> None:
    """The offer refills the call's own set of agents: none of an earlier offer stays,
    and no other call's set changes with it."""
    router = Router([QueueConfig(name="q")])
    for n, name in enumerate("ab"):
        agent(router, name, ("q",), float(n))
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)
    router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 5.0)
    assert (router.offered_to("c1"), router.offered_to("c2")) == (["a"], ["b"])

    router.handle(inputs.AgentRejects(agent_id="a", call_id="c1"), 6.0)
    assert router.offered_to("c1") == []
    router.handle(inputs.AgentRejects(agent_id="b", call_id="c2"), 6.5)
    router.handle(inputs.AgentGoesReady(agent_id="b"), 7.0)

    assert router.offered_to("c1") == ["b"]
    assert router.offered_to("c2") == []
    assert router.call_phase("c2") is CallPhase.QUEUED


def test_ring_all_one_reject_leaves_the_others_ringing() -> None:
    router = ring_all_router()
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)

    out = router.handle(inputs.AgentRejects(agent_id="a", call_id="c1"), 6.0)

    assert out == [
        WithdrawOffer("c1", "a", "rejected"),
        AgentStateSet("a", AgentState.NOT_READY, REJECTED_OFFER),
    ]
    assert router.offered_to("c1") == ["b", "c"]
    assert router.call_phase("c1") is CallPhase.OFFERED


# --- priority by supervisor -----------------------------------------------------------


def three_waiting() -> Router:
    router = Router([QueueConfig(name="q", value_weight=1.0, aging_rate=1.0)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller(0, 1)), 0.0)
    router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(0, 2)), 5.0)
    router.handle(inputs.CallArrives(call_id="c3", queue="q", caller=caller(0, 3)), 10.0)
    return router


def test_set_call_priority_raises_a_call_above_others_and_keeps_its_arrival() -> None:
    router = three_waiting()

    assert router.handle(inputs.CallPriorityChanged(call_id="c3", priority=100.0), 12.0) == []

    assert router.waiting_in_order("q") == ["c3", "c1", "c2"]
    assert router.call_arrived_at("c3") == 10.0
    out = router.handle(inputs.AgentGoesReady(agent_id="x"), 20.0)
    assert offers(out) == [("c3", "x")]
    router.handle(inputs.AgentAccepts(agent_id="x", call_id="c3"), 21.0)
    router.handle(inputs.AgentHangsUp(agent_id="x", call_id="c3"), 30.0)
    cdr = only_record(
        router.handle(
            inputs.AgentFinishesWrapUp(agent_id="x", call_id="c3", disposition="ok"), 31.0
        )
    ).cdr
    assert (cdr.arrived_at, cdr.wait_s) == (10.0, 11.0)


def test_set_call_priority_adds_to_the_age_the_call_already_has() -> None:
    router = three_waiting()

    router.handle(inputs.CallPriorityChanged(call_id="c3", priority=9.0), 30.0)

    # rank at t: c1 = t, c3 = 9 + (t - 10) = t - 1, c2 = t - 5. Counting its age from
    # the change (t - 21) would put c3 last.
    assert router.waiting_in_order("q") == ["c1", "c3", "c2"]


def test_set_call_priority_refuses_a_call_that_is_not_waiting() -> None:
    router = three_waiting()
    router.handle(inputs.AgentGoesReady(agent_id="x"), 1.0)  # takes c1
    with pytest.raises(RoutingError, match="c1"):
        router.handle(inputs.CallPriorityChanged(call_id="c1", priority=50.0), 2.0)


def test_set_call_priority_after_a_ring_time_still_reaches_the_looser_agents() -> None:
    """The priority change comes in before the timer that moves the call out a ring."""
    router = Router([MANDARIN])
    agent(router, "novice", ("zh",), 0.0, skills={"mandarin": 1})
    router.handle(inputs.CallArrives(call_id="c1", queue="zh", caller=caller()), 0.0)

    out = router.handle(inputs.CallPriorityChanged(call_id="c1", priority=50.0), 31.0)
    out += router.handle(inputs.TimePasses(), 31.0)

    assert offers(out) == [("c1", "novice")]


# sales ranks by value; vip ignores value, and only age counts
SALES = QueueConfig(name="sales", value_weight=1.0, aging_rate=1.0)
VIP = QueueConfig(name="vip", priority=10.0, value_weight=0.0, aging_rate=1.0)


def test_move_call_keeps_the_age_and_ranks_by_the_new_queue() -> None:
    router = Router([SALES, VIP])
    agent(router, "v", ("vip",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="b1", queue="vip", caller=caller(0, 1)), 2.0)
    router.handle(inputs.CallArrives(call_id="c1", queue="sales", caller=caller(90, 2)), 5.0)
    router.handle(inputs.CallArrives(call_id="b2", queue="vip", caller=caller(0, 3)), 8.0)

    out = router.handle(inputs.CallMoved(call_id="c1", queue="vip"), 10.0)

    assert out == [MoveCall("c1", "sales", "vip", "supervisor")]
    assert router.call_queue("c1") == "vip"
    assert router.call_arrived_at("c1") == 5.0
    # in vip its value of 90 counts for nothing (b1 first), its age for everything (b2 last)
    assert router.waiting_in_order("vip") == ["b1", "c1", "b2"]
    assert router.waiting_in_order("sales") == []
    assert router.snapshot("sales", 10.0).waiting == 0
    assert router.snapshot("vip", 10.0).waiting == 3
    assert router.snapshot("vip", 10.0).longest_wait_s == 8.0


def test_move_call_offers_at_once_in_the_new_queue_and_records_it_there() -> None:
    router = Router([SALES, VIP])
    agent(router, "v", ("vip",), 0.0)
    router.handle(inputs.CallArrives(call_id="c1", queue="sales", caller=caller(90)), 5.0)

    out = router.handle(inputs.CallMoved(call_id="c1", queue="vip"), 10.0)

    assert out[0] == MoveCall("c1", "sales", "vip", "supervisor")
    assert of_type(out, OfferCall) == [OfferCall("c1", "v", "vip", 25.0)]
    router.handle(inputs.AgentAccepts(agent_id="v", call_id="c1"), 11.0)
    router.handle(inputs.AgentHangsUp(agent_id="v", call_id="c1"), 20.0)
    cdr = only_record(
        router.handle(
            inputs.AgentFinishesWrapUp(agent_id="v", call_id="c1", disposition="ok"), 20.0
        )
    ).cdr
    assert (cdr.queue, cdr.arrived_at) == ("vip", 5.0)


def test_move_call_refuses_unknown_queues_and_calls_not_waiting() -> None:
    router = Router([SALES, VIP])
    router.handle(inputs.CallArrives(call_id="c1", queue="sales", caller=caller()), 0.0)
    with pytest.raises(RoutingError, match="nope"):
        router.handle(inputs.CallMoved(call_id="c1", queue="nope"), 1.0)
    with pytest.raises(RoutingError, match="c9"):
        router.handle(inputs.CallMoved(call_id="c9", queue="vip"), 1.0)
    assert router.call_queue("c1") == "sales"


# --- missed and rejected offers across queues -----------------------------------------

LOW = QueueConfig(name="low", offer_timeout_s=10.0)
HIGH = QueueConfig(name="high", priority=100.0, offer_timeout_s=20.0)


def test_missed_offers_count_across_the_queues_of_an_agent() -> None:
    router = Router([LOW, HIGH], max_missed_offers=2)
    agent(router, "x", ("low", "high"), 0.0)
    agent(router, "y", ("low",), 0.0, is_ready=False)
    assert offers(
        router.handle(inputs.CallArrives(call_id="l1", queue="low", caller=caller()), 1.0)
    ) == [("l1", "x")]
    router.handle(
        inputs.CallArrives(call_id="h1", queue="high", caller=caller(n=2)), 2.0
    )  # waits: x is ringing

    first = router.handle(
        inputs.TimePasses(), 11.0
    )  # miss 1: x stays in rotation, takes the best call

    assert first[0] == WithdrawOffer("l1", "x", "timeout")
    assert of_type(first, OfferCall) == [OfferCall("h1", "x", "high", 31.0)]
    assert router.call_phase("l1") is CallPhase.QUEUED

    second = router.handle(inputs.TimePasses(), 31.0)  # miss 2, in the other queue: Not Ready

    assert second == [
        WithdrawOffer("h1", "x", "timeout"),
        AgentStateSet("x", AgentState.NOT_READY, MISSED_OFFER),
    ]
    assert router.waiting_in_order("high") == ["h1"]
    assert router.waiting_in_order("low") == ["l1"]
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="y"), 32.0)) == [("l1", "y")]


def test_a_rejecting_agent_of_two_queues_gets_no_call_from_either() -> None:
    router = Router([LOW, HIGH])
    agent(router, "x", ("low", "high"), 0.0)
    agent(router, "y", ("low",), 1.0)
    router.handle(
        inputs.CallArrives(call_id="l1", queue="low", caller=caller()), 2.0
    )  # to x, Ready the longest
    router.handle(inputs.CallArrives(call_id="l2", queue="low", caller=caller(n=2)), 3.0)  # to y
    router.handle(inputs.CallArrives(call_id="h1", queue="high", caller=caller(n=3)), 4.0)  # waits

    out = router.handle(inputs.AgentRejects(agent_id="x", call_id="l1"), 5.0)

    assert out == [
        WithdrawOffer("l1", "x", "rejected"),
        AgentStateSet("x", AgentState.NOT_READY, REJECTED_OFFER),
    ]
    assert router.waiting_in_order("low") == ["l1"]
    assert router.waiting_in_order("high") == ["h1"]


# --- wrap-up per queue ----------------------------------------------------------------

SHORT = QueueConfig(name="short", wrap_up_s=10.0, wrap_up_max_s=25.0)
LONG = QueueConfig(name="long", wrap_up_s=60.0)


def two_queue_agent() -> Router:
    router = Router([SHORT, LONG])
    agent(router, "x", ("short", "long"), 0.0)
    return router


@pytest.mark.parametrize(("queue", "wrap"), [("short", 10.0), ("long", 60.0)])
def test_wrap_up_deadline_is_that_of_the_queue_of_the_call(queue: str, wrap: float) -> None:
    router = two_queue_agent()
    router.handle(inputs.CallArrives(call_id="c1", queue=queue, caller=caller()), 1.0)
    router.handle(inputs.AgentAccepts(agent_id="x", call_id="c1"), 2.0)

    out = router.handle(inputs.AgentHangsUp(agent_id="x", call_id="c1"), 100.0)

    assert out[-1] == AgentStateSet("x", AgentState.WRAP_UP, "", "c1", 100.0 + wrap)
    assert router.next_deadline() == 100.0 + wrap
    assert router.handle(inputs.TimePasses(), 100.0 + wrap - 0.5) == []
    assert router.handle(inputs.TimePasses(), 100.0 + wrap)[-1] == AgentStateSet(
        "x", AgentState.READY
    )


def test_extend_wrap_up_up_to_the_queue_cap_then_refuse() -> None:
    router = two_queue_agent()
    router.handle(inputs.CallArrives(call_id="c1", queue="short", caller=caller()), 1.0)
    router.handle(inputs.AgentAccepts(agent_id="x", call_id="c1"), 2.0)
    router.handle(inputs.AgentHangsUp(agent_id="x", call_id="c1"), 100.0)

    first = router.handle(
        inputs.AgentExtendsWrapUp(agent_id="x", call_id="c1", seconds=10.0), 101.0
    )
    assert first == [AgentStateSet("x", AgentState.WRAP_UP, "", "c1", 120.0)]
    second = router.handle(inputs.AgentExtendsWrapUp(agent_id="x", call_id="c1", seconds=10), 102)
    assert second == [AgentStateSet("x", AgentState.WRAP_UP, "", "c1", 125.0)]  # capped
    assert router.agent("x").since == 100.0  # in wrap-up since the hang-up
    with pytest.raises(RoutingError, match="25"):
        router.handle(inputs.AgentExtendsWrapUp(agent_id="x", call_id="c1", seconds=1.0), 103.0)

    assert router.handle(inputs.TimePasses(), 124.0) == []
    out = router.handle(inputs.TimePasses(), 125.0)
    assert only_record(out).cdr.wrap_up_s == 25.0
    assert out[-1] == AgentStateSet("x", AgentState.READY)


def test_extend_wrap_up_without_a_cap_is_refused_and_changes_nothing() -> None:
    router = two_queue_agent()
    router.handle(inputs.CallArrives(call_id="c1", queue="long", caller=caller()), 1.0)
    router.handle(inputs.AgentAccepts(agent_id="x", call_id="c1"), 2.0)
    router.handle(inputs.AgentHangsUp(agent_id="x", call_id="c1"), 100.0)

    with pytest.raises(RoutingError, match="long"):
        router.handle(inputs.AgentExtendsWrapUp(agent_id="x", call_id="c1", seconds=5.0), 101.0)
    assert router.agent("x").deadline == 160.0
    with pytest.raises(RoutingError, match="c2"):
        router.handle(inputs.AgentExtendsWrapUp(agent_id="x", call_id="c2", seconds=5.0), 101.0)


def test_during_wrap_up_from_one_queue_no_call_comes_from_the_other() -> None:
    router = two_queue_agent()
    router.handle(inputs.CallArrives(call_id="c1", queue="short", caller=caller()), 1.0)
    router.handle(inputs.AgentAccepts(agent_id="x", call_id="c1"), 2.0)
    router.handle(inputs.AgentHangsUp(agent_id="x", call_id="c1"), 50.0)

    assert (
        router.handle(inputs.CallArrives(call_id="l1", queue="long", caller=caller(n=2)), 51.0)
        == []
    )
    assert router.handle(inputs.TimePasses(), 59.0) == []
    assert state(router, "x") is AgentState.WRAP_UP

    out = router.handle(inputs.TimePasses(), 60.0)
    assert offers(out) == [("l1", "x")]


def test_not_ready_after_this_call_holds_for_every_queue() -> None:
    router = two_queue_agent()
    router.handle(inputs.CallArrives(call_id="c1", queue="short", caller=caller()), 1.0)
    router.handle(inputs.AgentAccepts(agent_id="x", call_id="c1"), 2.0)

    assert router.handle(inputs.AgentGoesNotReady(agent_id="x", reason="lunch"), 3.0) == []
    router.handle(inputs.CallArrives(call_id="s2", queue="short", caller=caller(n=2)), 4.0)
    router.handle(inputs.CallArrives(call_id="l1", queue="long", caller=caller(n=3)), 5.0)
    router.handle(inputs.AgentHangsUp(agent_id="x", call_id="c1"), 10.0)
    out = router.handle(
        inputs.AgentFinishesWrapUp(agent_id="x", call_id="c1", disposition="ok"), 12.0
    )

    assert out[-1] == AgentStateSet("x", AgentState.NOT_READY, NOT_READY_AFTER_CALL)
    assert offers(out) == []
    assert router.waiting_in_order("short") == ["s2"]
    assert router.waiting_in_order("long") == ["l1"]


# --- exits ----------------------------------------------------------------------------


def exits_queue(name: str = "q", **exits: object) -> QueueConfig:
    return QueueConfig(name=name, exits=QueueExits(**exits))


def test_max_wait_to_voicemail() -> None:
    rule = MaxWaitExit(action=ExitAction.VOICEMAIL, after_s=60.0, message="leave a message")
    router = Router([exits_queue(max_wait=rule)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 10.0)
    router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 20.0)
    assert router.next_deadline() == 70.0

    assert router.handle(inputs.TimePasses(), 69.5) == []
    out = router.handle(inputs.TimePasses(), 70.0)

    assert out[0] == ExitCall("c1", "q", ExitAction.VOICEMAIL, "max wait", "leave a message")
    cdr = only_record(out).cdr
    assert (cdr.call_id, cdr.outcome, cdr.exit_action) == ("c1", "exited", "voicemail: max wait")
    assert (cdr.arrived_at, cdr.ended_at, cdr.agent_id) == (10.0, 70.0, None)
    assert router.waiting_in_order("q") == ["c2"]
    assert router.snapshot("q", 70.0).waiting == 1
    assert "c1" not in router.active_call_ids()


def test_max_wait_does_not_touch_a_call_already_answered() -> None:
    rule = MaxWaitExit(action=ExitAction.VOICEMAIL, after_s=60.0)
    router = Router([exits_queue(max_wait=rule)])
    agent(router, "x", ("q",), 0.0)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 10.0)
    router.handle(inputs.AgentAccepts(agent_id="x", call_id="c1"), 11.0)

    assert router.handle(inputs.TimePasses(), 70.0) == []
    assert router.call_phase("c1") is CallPhase.TALKING


def test_max_wait_to_another_queue_keeps_the_age_and_routes_there() -> None:
    rule = MaxWaitExit(action=ExitAction.QUEUE, queue="overflow", after_s=60.0)
    router = Router([exits_queue("q", max_wait=rule), QueueConfig(name="overflow")])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    agent(router, "o", ("overflow",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)
    router.handle(inputs.CallArrives(call_id="o1", queue="overflow", caller=caller(n=2)), 30.0)

    out = router.handle(inputs.TimePasses(), 60.0)

    assert out == [MoveCall("c1", "q", "overflow", "max wait")]
    assert router.call_queue("c1") == "overflow"
    assert router.call_arrived_at("c1") == 0.0
    assert router.waiting_in_order("overflow") == ["c1", "o1"]  # older than o1
    assert router.waiting_in_order("q") == []
    assert (
        offers(router.handle(inputs.AgentGoesReady(agent_id="x"), 61.0)) == []
    )  # x does not serve overflow
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="o"), 62.0)) == [("c1", "o")]


def test_max_length_sends_the_call_that_finds_n_waiting_away_at_once() -> None:
    rule = MaxLengthExit(action=ExitAction.MESSAGE, calls=2, message="we are busy")
    router = Router([exits_queue(max_length=rule)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    assert router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 1.0) == []
    assert router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 2.0) == []

    out = router.handle(inputs.CallArrives(call_id="c3", queue="q", caller=caller(n=3)), 3.0)

    assert out[0] == ExitCall("c3", "q", ExitAction.MESSAGE, "queue full", "we are busy")
    assert only_record(out).cdr.exit_action == "message: queue full"
    router.handle(inputs.CallerHangsUp(call_id="c1"), 4.0)
    assert (
        router.handle(inputs.CallArrives(call_id="c4", queue="q", caller=caller(n=4)), 5.0) == []
    )  # room again
    assert router.waiting_in_order("q") == ["c2", "c4"]


@pytest.mark.parametrize("when", ["none_logged_in", "none_available"])
def test_no_agents_on_arrival(when: str) -> None:
    rule = NoAgentsExit(action=ExitAction.VOICEMAIL, when=when)
    router = Router([exits_queue(no_agents=rule)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    agent(router, "gone", ("q",), 0.0, is_ready=False)
    router.handle(inputs.AgentLogsOut(agent_id="gone"), 0.0)

    out = router.handle(
        inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 1.0
    )  # x is logged in, Not Ready

    if when == "none_logged_in":
        assert out == []
        assert router.waiting_in_order("q") == ["c1"]
    else:
        assert out[0] == ExitCall("c1", "q", ExitAction.VOICEMAIL, "no agents")
        assert only_record(out).cdr.outcome == "exited"


def test_no_agents_none_available_counts_busy_agents_as_there() -> None:
    rule = NoAgentsExit(action=ExitAction.VOICEMAIL, when="none_available")
    router = Router([exits_queue(no_agents=rule)])
    agent(router, "x", ("q",), 0.0)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 1.0)
    router.handle(inputs.AgentAccepts(agent_id="x", call_id="c1"), 2.0)

    assert (
        router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 3.0) == []
    )  # x talks: c2 waits
    router.handle(inputs.CallArrives(call_id="c3", queue="q", caller=caller(n=3)), 4.0)
    router.handle(inputs.AgentGoesNotReady(agent_id="x", reason="home"), 5.0)
    router.handle(inputs.AgentHangsUp(agent_id="x", call_id="c1"), 10.0)

    out = router.handle(
        inputs.AgentFinishesWrapUp(agent_id="x", call_id="c1", disposition="ok"), 11.0
    )  # x goes Not Ready: nobody left

    assert [e.call_id for e in of_type(out, ExitCall)] == ["c2", "c3"]
    assert {r.cdr.call_id for r in of_type(out, RecordCall)} == {"c1", "c2", "c3"}
    assert router.waiting_in_order("q") == []


def test_no_agents_none_logged_in_exits_waiting_calls_when_the_last_logs_out() -> None:
    rule = NoAgentsExit(action=ExitAction.MESSAGE, when="none_logged_in", message="closed")
    router = Router([exits_queue(no_agents=rule)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    agent(router, "y", ("q",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller(10)), 1.0)
    router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(90, 2)), 2.0)

    assert router.handle(inputs.AgentLogsOut(agent_id="x"), 3.0) == [
        AgentStateSet("x", AgentState.LOGGED_OUT)
    ]
    out = router.handle(inputs.AgentLogsOut(agent_id="y"), 4.0)

    assert [e.call_id for e in of_type(out, ExitCall)] == ["c2", "c1"]  # rank order
    assert {e.message for e in of_type(out, ExitCall)} == {"closed"}
    assert router.active_call_ids() == []


def test_no_agents_ignores_agents_without_the_skills_for_any_ring() -> None:
    q = QueueConfig(
        name="q",
        skills={"x": 2},
        exits=QueueExits(no_agents=NoAgentsExit(action=ExitAction.VOICEMAIL)),
    )
    router = Router([q])
    agent(router, "unskilled", ("q",), 0.0)

    out = router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 1.0)

    assert [e.call_id for e in of_type(out, ExitCall)] == ["c1"]


def test_no_agents_callback_releases_the_line_and_keeps_the_place() -> None:
    rule = NoAgentsExit(action=ExitAction.CALLBACK, when="none_available")
    router = Router([exits_queue(no_agents=rule)])
    agent(router, "x", ("q",), 0.0, is_ready=False)

    assert router.handle(
        inputs.CallArrives(call_id="c1", queue="q", caller=caller(10, 1)), 1.0
    ) == [ReleaseLine("c1")]
    assert router.handle(
        inputs.CallArrives(call_id="c2", queue="q", caller=caller(10, 2)), 2.0
    ) == [ReleaseLine("c2")]
    assert router.waiting_in_order("q") == ["c1", "c2"]
    assert router.call_kind("c1") == "callback"
    assert router.handle(inputs.CallerHangsUp(call_id="c1"), 3.0) == []  # the line is already gone
    router.handle(inputs.AgentLogsOut(agent_id="x"), 4.0)  # no exit for callbacks
    assert router.waiting_in_order("q") == ["c1", "c2"]
    router.handle(inputs.AgentLogsIn(agent_id="x"), 5.0)

    out = router.handle(inputs.AgentGoesReady(agent_id="x"), 6.0)
    assert offers(out) == [("c1", "x")]
    out = router.handle(inputs.AgentAccepts(agent_id="x", call_id="c1"), 7.0)
    assert out[0] == ConnectCall("c1", "x", dial=number_of(1))
    router.handle(inputs.AgentHangsUp(agent_id="x", call_id="c1"), 20.0)
    cdr = only_record(
        router.handle(
            inputs.AgentFinishesWrapUp(agent_id="x", call_id="c1", disposition="ok"), 21.0
        )
    ).cdr
    assert (cdr.kind, cdr.callback_requested_at, cdr.outcome) == ("callback", 1.0, "answered")


def test_the_longest_wait_counts_calls_that_came_to_wait_other_than_at_arrival() -> None:
    """A call joins its queue's arrival order when it waits, not when it arrives (one
    offered at once needs no entry there): a callback by an exit as it arrives, a call
    back from a rejected offer and one back from a lapsed one still count."""
    rule = NoAgentsExit(action=ExitAction.CALLBACK, when="none_available")
    router = Router([exits_queue(no_agents=rule)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller(10, 1)), 1.0)
    assert router.snapshot("q", 10.0).longest_wait_s == 9.0

    router = Router([exits_queue()])
    agent(router, "x", ("q",), 0.0)
    agent(router, "y", ("q",), 0.0)
    assert offers(
        router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller(0, 1)), 1.0)
    ) == [("c1", "x")]
    router.handle(inputs.AgentGoesNotReady(agent_id="y", reason="break"), 1.5)
    router.handle(inputs.AgentRejects(agent_id="x", call_id="c1"), 2.0)
    assert router.waiting_in_order("q") == ["c1"]
    assert router.snapshot("q", 5.0).longest_wait_s == 4.0
    router.handle(inputs.AgentGoesReady(agent_id="y"), 6.0)  # offered again, lapses
    router.handle(inputs.TimePasses(), 6.0 + router.queue_config("q").offer_timeout_s)
    assert router.waiting_in_order("q") == ["c1"]
    assert router.snapshot("q", 100.0).longest_wait_s == 99.0


def test_max_wait_callback_keeps_the_place_ahead_of_later_callers() -> None:
    rule = MaxWaitExit(action=ExitAction.CALLBACK, after_s=30.0)
    router = Router([exits_queue(max_wait=rule)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller(0, 1)), 0.0)
    router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(0, 2)), 20.0)

    out = router.handle(inputs.TimePasses(), 30.0)

    assert out == [ReleaseLine("c1")]
    assert router.waiting_in_order("q") == ["c1", "c2"]
    assert router.handle(inputs.TimePasses(), 50.0) == [ReleaseLine("c2")]
    assert router.handle(inputs.TimePasses(), 1000.0) == []  # callbacks do not exit again
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="x"), 1001.0)) == [("c1", "x")]


def test_message_exit_plays_the_message() -> None:
    rule = MaxWaitExit(action=ExitAction.MESSAGE, after_s=5.0, message="call us tomorrow")
    router = Router([exits_queue(max_wait=rule)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)

    out = router.handle(inputs.TimePasses(), 5.0)

    assert out[0] == ExitCall("c1", "q", ExitAction.MESSAGE, "max wait", "call us tomorrow")
    assert only_record(out).cdr.exit_action == "message: max wait"


def test_a_loop_of_queue_exits_terminates() -> None:
    to_b = NoAgentsExit(action=ExitAction.QUEUE, queue="B", when="none_logged_in")
    to_a = NoAgentsExit(action=ExitAction.QUEUE, queue="A", when="none_logged_in")
    router = Router([exits_queue("A", no_agents=to_b), exits_queue("B", no_agents=to_a)])

    out = router.handle(inputs.CallArrives(call_id="c1", queue="A", caller=caller()), 0.0)

    moves = of_type(out, MoveCall)
    assert 1 <= len(moves) <= 10
    assert [(m.from_queue, m.to_queue) for m in moves[:2]] == [("A", "B"), ("B", "A")]
    assert len(of_type(out, ExitCall)) == 1
    assert only_record(out).cdr.outcome == "exited"
    assert router.active_call_ids() == []


def test_a_loop_of_max_wait_exits_terminates() -> None:
    to_b = MaxWaitExit(action=ExitAction.QUEUE, queue="B", after_s=10.0)
    to_a = MaxWaitExit(action=ExitAction.QUEUE, queue="A", after_s=5.0)
    router = Router([exits_queue("A", max_wait=to_b), exits_queue("B", max_wait=to_a)])
    agent(router, "x", ("A", "B"), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="A", caller=caller()), 0.0)

    out = router.handle(inputs.TimePasses(), 10.0)

    assert 1 <= len(of_type(out, MoveCall)) <= 10
    assert only_record(out).cdr.outcome == "exited"
    assert router.active_call_ids() == []
    assert router.next_deadline() is None


# --- callbacks ------------------------------------------------------------------------


def test_request_callback_releases_the_line_and_keeps_the_place() -> None:
    router = three_waiting()

    out = router.handle(inputs.CallerAsksCallback(call_id="c2", number="+15550001"), 12.0)

    assert out == [ReleaseLine("c2")]
    assert router.waiting_in_order("q") == ["c1", "c2", "c3"]
    assert router.call_kind("c2") == "callback"
    assert router.handle(inputs.CallerHangsUp(call_id="c2"), 13.0) == []
    assert router.call_phase("c2") is CallPhase.QUEUED
    agent(router, "y", ("q",), 14.0)  # takes c1
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="x"), 15.0)) == [("c2", "x")]

    assert router.handle(inputs.AgentAccepts(agent_id="x", call_id="c2"), 16.0)[0] == ConnectCall(
        "c2", "x", dial="+15550001"
    )
    assert router.handle(inputs.CallerHangsUp(call_id="c2"), 40.0)[0] == DisconnectCall(
        "c2", "x", "caller"
    )
    cdr = only_record(
        router.handle(
            inputs.AgentFinishesWrapUp(agent_id="x", call_id="c2", disposition="ok"), 41.0
        )
    ).cdr
    assert (cdr.kind, cdr.callback_requested_at, cdr.arrived_at) == ("callback", 12.0, 5.0)


def test_a_requested_callback_is_not_sent_away_by_max_wait() -> None:
    rule = MaxWaitExit(action=ExitAction.VOICEMAIL, after_s=60.0)
    router = Router([exits_queue(max_wait=rule)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller(0, 1)), 0.0)
    router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(0, 2)), 5.0)
    router.handle(inputs.CallerAsksCallback(call_id="c1", number="+15550001"), 10.0)

    out = router.handle(inputs.TimePasses(), 65.0)

    assert [e.call_id for e in of_type(out, ExitCall)] == ["c2"]
    assert router.waiting_in_order("q") == ["c1"]


def test_request_callback_refusals() -> None:
    router = three_waiting()
    router.handle(inputs.AgentGoesReady(agent_id="x"), 1.0)  # takes c1
    with pytest.raises(RoutingError, match="c1"):
        router.handle(inputs.CallerAsksCallback(call_id="c1", number="+15550001"), 2.0)
    with pytest.raises(RoutingError, match="number"):
        router.handle(inputs.CallerAsksCallback(call_id="c2", number=""), 2.0)
    assert router.call_kind("c2") == "inbound"


def test_schedule_callback_waits_until_due_then_ranks_like_a_call() -> None:
    router = Router([QueueConfig(name="q", value_weight=1.0, aging_rate=1.0)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(
        inputs.CallArrives(call_id="early", queue="q", caller=caller(0, 1)), 40.0
    )  # rank at 100: 60
    router.handle(
        inputs.CallArrives(call_id="late", queue="q", caller=caller(0, 2)), 80.0
    )  # rank at 100: 20

    out = router.handle(
        inputs.CallbackScheduled(
            call_id="cb", queue="q", caller=caller(50, 3), due=100.0, number="+15550003"
        ),
        10.0,
    )

    assert out == []
    assert router.call_phase("cb") is CallPhase.SCHEDULED
    assert router.next_deadline() == 100.0
    assert "cb" not in router.waiting_in_order("q")
    assert router.handle(inputs.CallerHangsUp(call_id="cb"), 20.0) == []  # nobody is on the line
    assert router.handle(inputs.TimePasses(), 99.0) == []

    assert router.handle(inputs.TimePasses(), 100.0) == []
    assert router.call_arrived_at("cb") == 100.0  # its age counts from due
    assert router.waiting_in_order("q") == ["early", "cb", "late"]  # 60 > 50 > 20
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="x"), 100.0)) == [("early", "x")]
    serve(router, "x", "early", 101.0)
    assert router.agent("x").call_id == "cb"
    assert router.handle(inputs.AgentAccepts(agent_id="x", call_id="cb"), 102.0)[0] == ConnectCall(
        "cb", "x", dial="+15550003"
    )


def test_schedule_callback_not_offered_before_due_even_to_a_ready_agent() -> None:
    router = Router([QueueConfig(name="q")])
    agent(router, "x", ("q",), 0.0)

    assert (
        router.handle(
            inputs.CallbackScheduled(
                call_id="cb", queue="q", caller=caller(), due=100.0, number="+15550003"
            ),
            10.0,
        )
        == []
    )
    assert state(router, "x") is AgentState.READY
    out = router.handle(inputs.TimePasses(), 100.0)
    assert offers(out) == [("cb", "x")]


def test_schedule_callback_due_in_the_past_enters_at_once() -> None:
    router = Router([QueueConfig(name="q")])
    agent(router, "x", ("q",), 0.0)

    out = router.handle(
        inputs.CallbackScheduled(
            call_id="cb", queue="q", caller=caller(), due=10.0, number="+15550003"
        ),
        50.0,
    )

    assert offers(out) == [("cb", "x")]
    assert router.call_kind("cb") == "callback"


# --- estimated waits ------------------------------------------------------------------


def test_estimated_waits_by_position_ready_agents_and_aht() -> None:
    # Ready agents without skill x are present but may take these calls only later.
    q = QueueConfig(
        name="q",
        skills={"x": 2},
        relax=(RelaxStep(after_s=1000.0),),
        expected_aht_s=120.0,
    )
    router = Router([q])
    agent(router, "r1", ("q",), 0.0)
    agent(router, "r2", ("q",), 0.0)
    agent(router, "busy", ("q",), 0.0, skills={"x": 2})
    router.handle(inputs.CallArrives(call_id="c0", queue="q", caller=caller(0, 9)), 0.0)
    router.handle(inputs.AgentAccepts(agent_id="busy", call_id="c0"), 0.0)
    for i, value in enumerate([10, 90, 50, 0, 70]):
        router.handle(
            inputs.CallArrives(call_id=f"c{i + 1}", queue="q", caller=caller(value, i + 1)), 1.0 + i
        )

    estimates = router.estimated_waits("q", 10.0)

    assert [e.call_id for e in estimates] == router.waiting_in_order("q")
    assert [e.position for e in estimates] == [1, 2, 3, 4, 5]
    # 2 Ready, 3 present: 0, 0, then 120 / 3 = 40 s a place
    assert [e.wait_s for e in estimates] == [0.0, 0.0, 40.0, 80.0, 120.0]


def test_estimated_waits_with_nobody_present_are_infinite() -> None:
    router = three_waiting()  # x is logged in but Not Ready

    estimates = router.estimated_waits("q", 20.0)

    assert [e.position for e in estimates] == [1, 2, 3]
    assert all(math.isinf(e.wait_s) for e in estimates)


def test_estimated_waits_follow_the_queue_average_handle_time() -> None:
    router = Router([QueueConfig(name="q", expected_aht_s=100.0)])
    agent(router, "x", ("q",), 0.0)
    router.handle(inputs.CallArrives(call_id="c0", queue="q", caller=caller()), 0.0)
    router.handle(inputs.AgentAccepts(agent_id="x", call_id="c0"), 0.0)
    router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller(n=1)), 1.0)
    assert router.estimated_waits("q", 1.0)[0].wait_s == 100.0

    router.handle(inputs.AgentHangsUp(agent_id="x", call_id="c0"), 300.0)
    router.handle(
        inputs.AgentFinishesWrapUp(agent_id="x", call_id="c0", disposition="ok"), 300.0
    )  # a 300 s call: the average grows
    router.handle(inputs.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 301.0)

    (estimate,) = router.estimated_waits("q", 301.0)
    assert estimate.wait_s > 100.0


# --- reconfiguration ------------------------------------------------------------------


def test_configure_queue_reranks_waiting_calls_and_keeps_their_age() -> None:
    router = Router([QueueConfig(name="q", value_weight=1.0, aging_rate=1.0)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="low", queue="q", caller=caller(0, 1)), 0.0)
    router.handle(inputs.CallArrives(call_id="high", queue="q", caller=caller(90, 2)), 10.0)
    assert router.waiting_in_order("q") == ["high", "low"]

    new = QueueConfig(name="q", value_weight=0.0, aging_rate=2.0)
    assert router.handle(inputs.QueueConfigured(queue=new), 20.0) == []

    assert router.queue_config("q") == new
    assert router.waiting_in_order("q") == ["low", "high"]
    assert [router.call_arrived_at(c) for c in ("low", "high")] == [0.0, 10.0]
    assert router.snapshot("q", 20.0).longest_wait_s == 20.0
    assert router.snapshot("q", 20.0).waiting == 2
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="x"), 21.0)) == [("low", "x")]


def test_configure_queue_changes_the_strategy() -> None:
    router = Router([strategy_queue(Strategy.LONGEST_IDLE)])
    for a in ("a", "b"):
        agent(router, a, ("q",), 0.0, is_ready=False)
    handled_counts(router, {"a": 0, "b": 2}, {"a": 1.0, "b": 1.0})
    router.handle(inputs.AgentGoesReady(agent_id="b"), 10.0)
    router.handle(inputs.AgentGoesReady(agent_id="a"), 11.0)

    router.handle(inputs.QueueConfigured(queue=strategy_queue(Strategy.FEWEST_CALLS)), 12.0)

    assert offers(
        router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 13.0)
    ) == [("c1", "a")]


def test_configure_queue_keeps_the_longest_idle_order_of_ready_agents() -> None:
    router = Router([strategy_queue(Strategy.LONGEST_IDLE)])
    agent(router, "z", ("q",), 0.0)
    agent(router, "b", ("q",), 5.0)

    router.handle(
        inputs.QueueConfigured(queue=strategy_queue(Strategy.LONGEST_IDLE, priority=1.0)), 10.0
    )

    assert offers(
        router.handle(inputs.CallArrives(call_id="c1", queue="q", caller=caller()), 11.0)
    ) == [("c1", "z")]


def test_configure_queue_loosening_a_ring_offers_a_call_now_past_it() -> None:
    router = Router([MANDARIN])
    agent(router, "novice", ("zh",), 0.0, skills={"mandarin": 1})
    router.handle(
        inputs.CallArrives(call_id="c1", queue="zh", caller=caller()), 0.0
    )  # ring 1 only at 30
    sooner = MANDARIN.model_copy(
        update={"relax": (RelaxStep(after_s=10.0, skills={"mandarin": 1}),)}
    )

    out = router.handle(inputs.QueueConfigured(queue=sooner), 15.0)

    assert offers(out) == [("c1", "novice")]
    assert router.call_ring("c1") == 1


def test_configure_queue_tightening_a_ring_holds_the_call_back() -> None:
    router = Router([MANDARIN])
    agent(router, "novice", ("zh",), 0.0, skills={"mandarin": 1}, is_ready=False)
    router.handle(inputs.CallArrives(call_id="c1", queue="zh", caller=caller()), 0.0)
    later = MANDARIN.model_copy(
        update={"relax": (RelaxStep(after_s=50.0, skills={"mandarin": 1}),)}
    )
    router.handle(inputs.QueueConfigured(queue=later), 10.0)

    assert (
        offers(
            router.handle(inputs.TimePasses(), 30.0)
            + router.handle(inputs.AgentGoesReady(agent_id="novice"), 30.0)
        )
        == []
    )
    assert offers(router.handle(inputs.TimePasses(), 50.0)) == [("c1", "novice")]


def test_configure_queue_adds_a_queue() -> None:
    router = Router([QueueConfig(name="q")])
    assert router.handle(inputs.QueueConfigured(queue=QueueConfig(name="new")), 0.0) == []
    assert router.queue_names == ["q", "new"]
    agent(router, "x", ("new",), 1.0)
    assert offers(
        router.handle(inputs.CallArrives(call_id="c1", queue="new", caller=caller()), 2.0)
    ) == [("c1", "x")]


def test_configure_agent_new_skills_make_a_waiting_call_offerable_at_once() -> None:
    router = Router([MANDARIN])
    agent(router, "x", ("zh",), 0.0)
    router.handle(inputs.CallArrives(call_id="c1", queue="zh", caller=caller()), 1.0)
    assert state(router, "x") is AgentState.READY

    out = router.handle(
        inputs.AgentConfigured(agent=AgentConfig(id="x", skills={"mandarin": 4}, queues={"zh": 0})),
        2.0,
    )

    assert offers(out) == [("c1", "x")]


def test_configure_agent_new_queue_and_bonus() -> None:
    router = Router([PLAIN_A, PLAIN_B])
    agent(router, "x", ("A",), 0.0, is_ready=False)
    router.handle(inputs.CallArrives(call_id="a1", queue="A", caller=caller(0)), 0.0)
    router.handle(inputs.CallArrives(call_id="b1", queue="B", caller=caller(0, 2)), 10.0)

    router.handle(
        inputs.AgentConfigured(agent=AgentConfig(id="x", queues={"A": 0.0, "B": 20.0})), 15.0
    )

    assert router.agent_queues("x") == ["A", "B"]
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="x"), 20.0)) == [
        ("b1", "x")
    ]  # 10 + 20 > 20


def test_configure_agent_refusals() -> None:
    router = Router([PLAIN_A])
    with pytest.raises(RoutingError, match="x"):
        router.handle(inputs.AgentConfigured(agent=AgentConfig(id="x", queues={})), 0.0)
    with pytest.raises(RoutingError, match="nope"):
        router.handle(inputs.AgentConfigured(agent=AgentConfig(id="x", queues={"nope": 0.0})), 0.0)
    assert not router.has_agent("x")


# --- handle: every input kind ---------------------------------------------------------


def test_handle_accepts_every_input_kind_after_a_json_round_trip() -> None:
    router = Router([MANDARIN, PLAIN_A, SHORT])
    steps: list[tuple[float, inputs.AnyInput]] = [
        (0.0, inputs.AgentConfigured(agent=AgentConfig(id="x", queues={"A": 0.0, "short": 0.0}))),
        (0.0, inputs.QueueConfigured(queue=PLAIN_B)),
        (0.0, inputs.AgentLogsIn(agent_id="x")),
        (1.0, inputs.AgentGoesReady(agent_id="x")),
        (2.0, inputs.AgentGoesNotReady(agent_id="x", reason="coffee")),
        (3.0, inputs.CallArrives(call_id="c1", queue="A", caller=caller(10, 1))),
        (3.0, inputs.CallArrives(call_id="c2", queue="A", caller=caller(20, 2))),
        (4.0, inputs.CallPriorityChanged(call_id="c1", priority=100.0)),
        (5.0, inputs.CallMoved(call_id="c2", queue="short")),
        (6.0, inputs.CallerAsksCallback(call_id="c2", number="+15550002")),
        (7.0, inputs.AgentGoesReady(agent_id="x")),  # offered c1
        (8.0, inputs.AgentRejects(agent_id="x", call_id="c1")),
        (9.0, inputs.AgentGoesReady(agent_id="x")),  # offered c1 again
        (10.0, inputs.AgentAccepts(agent_id="x", call_id="c1")),
        (11.0, inputs.AgentHoldsCall(agent_id="x", call_id="c1")),
        (12.0, inputs.AgentResumesCall(agent_id="x", call_id="c1")),
        (13.0, inputs.AgentMutes(agent_id="x", call_id="c1", muted=True)),
        (20.0, inputs.AgentHangsUp(agent_id="x", call_id="c1")),
        (21.0, inputs.AgentFinishesWrapUp(agent_id="x", call_id="c1", disposition="d", note="n")),
        (22.0, inputs.AgentAccepts(agent_id="x", call_id="c2")),  # the callback
        (30.0, inputs.CallerHangsUp(call_id="c2")),
        (31.0, inputs.AgentExtendsWrapUp(agent_id="x", call_id="c2", seconds=5.0)),
        (
            32.0,
            inputs.CallbackScheduled(
                call_id="cb", queue="A", caller=caller(0, 3), due=100.0, number="+15550003"
            ),
        ),
        (45.0, inputs.TimePasses()),  # c2's wrap-up (30 + 10 + 5) ends
        (51.0, inputs.AgentGoesNotReady(agent_id="x")),
        (52.0, inputs.AgentLogsOut(agent_id="x")),
    ]
    transfers = {  # each in tests/queue_engine/test_router_transfer.py
        inputs.AgentTransfers,
        inputs.AgentConsults,
        inputs.AgentCompletesConsult,
        inputs.AgentCancelsConsult,
        inputs.AgentConferences,
        inputs.AgentDials,
        inputs.DialEnds,
    }
    assert {type(event) for _, event in steps} == set(get_args(inputs.AnyInput)) - transfers

    seen: list[Action] = []
    for now, event in steps:
        again = inputs.INPUT.validate_json(event.model_dump_json())
        assert again == event
        seen += router.handle(again, now)

    assert router.queue_names == ["zh", "A", "short", "B"]
    assert offers(seen) == [("c1", "x"), ("c1", "x"), ("c2", "x")]
    assert [type(a) for a in seen if isinstance(a, MoveCall | ReleaseLine)] == [
        MoveCall,
        ReleaseLine,
    ]
    assert ConnectCall("c2", "x", dial="+15550002") in seen
    records = {r.cdr.call_id: r.cdr for r in of_type(seen, RecordCall)}
    assert (records["c1"].disposition, records["c1"].note) == ("d", "n")
    assert (records["c2"].queue, records["c2"].wrap_up_s, records["c2"].kind) == (
        "short",
        15.0,
        "callback",
    )
    assert seen[-1] == AgentStateSet("x", AgentState.LOGGED_OUT)
    assert router.call_phase("cb") is CallPhase.SCHEDULED
    assert router.next_deadline() == 100.0


def test_rank_of_the_offered_call_matches_priority_rank() -> None:
    """The router and :func:`priority.rank` agree on a mixed queue (used by the properties)."""
    router = three_waiting()
    router.handle(inputs.CallArrives(call_id="c4", queue="q", caller=caller(30, 4)), 12.0)
    config = router.queue_config("q")
    expected = sorted(
        router.waiting_in_order("q"),
        key=lambda c: (
            -rank(config, router.call_caller(c).value, router.call_arrived_at(c), 20.0),
            router.call_arrived_at(c),
        ),
    )
    assert expected == ["c4", "c1", "c2", "c3"]
    assert offers(router.handle(inputs.AgentGoesReady(agent_id="x"), 20.0)) == [("c4", "x")]
