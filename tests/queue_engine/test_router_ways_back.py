"""Routing rules on the ways back into a queue, so no caller waits on and no agent is
favoured:

* ``max_wait`` holds on every way back into a queue (an offer that lapses or is
  rejected, a ring-all lapse, a supervisor move, relaxation, a reconfiguration): a
  caller past it takes the exit at once, else the exit timer is armed again;
* ``random`` draws per call placement, not when an agent joins the Ready pool;
* a ring-all offer that lapses (or ends) frees every ringing agent before the call, or
  the next one, is placed, so it rings every Ready member again.

The random properties over many situations are in ``test_router_ways_back_properties.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cti.config import load_config
from cti.models import (
    AgentConfig,
    AgentState,
    CallerInfo,
    CallerKind,
    ExitAction,
    MaxWaitExit,
    QueueConfig,
    QueueExits,
    RelaxStep,
    Strategy,
)
from queue_engine import inputs as ri
from queue_engine.actions import (
    Action,
    AgentStateSet,
    ExitCall,
    MoveCall,
    OfferCall,
    RecordCall,
    ReleaseLine,
    WithdrawOffer,
)
from queue_engine.router import MISSED_OFFER, CallPhase, Router
from tests.queue_engine.test_router_acd import agent, caller, of_type, offers, serve, state

DOCS = Path(__file__).resolve().parents[2] / "docs" / "acd.md"


def max_wait_queue(
    name: str = "q",
    *,
    after_s: float = 10.0,
    offer_timeout_s: float = 15.0,
    action: ExitAction = ExitAction.VOICEMAIL,
    **kw: object,
) -> QueueConfig:
    other = "other" if action is ExitAction.QUEUE else ""
    rule = MaxWaitExit(action=action, after_s=after_s, queue=other)
    return QueueConfig(
        name=name, offer_timeout_s=offer_timeout_s, exits=QueueExits(max_wait=rule), **kw
    )


def exits(out: list[Action]) -> list[tuple[str, str]]:
    return [(e.call_id, e.reason) for e in out if isinstance(e, ExitCall)]


# --- max_wait on every way back into the queue ----------------------------------------


@pytest.mark.parametrize("missed", [1, 2])
def test_an_offer_lapsing_after_max_wait_takes_the_exit_at_once(missed: int) -> None:
    """max_wait 10 s, offer timeout 15 s: offered at 5 s, the offer lapses at 20 s."""
    router = Router([max_wait_queue()], max_missed_offers=missed)
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)
    assert offers(router.handle(ri.AgentGoesReady(agent_id="x"), 5.0)) == [("c1", "x")]
    assert router.handle(ri.TimePasses(), 10.0) == []  # ringing when max_wait comes: it rings on

    out = router.handle(ri.TimePasses(), 20.0)

    assert exits(out) == [("c1", "max wait")]
    assert of_type(out, RecordCall)[0].cdr.outcome == "exited"
    assert router.active_call_ids() == []
    assert router.next_deadline() is None


def test_a_rejected_offer_after_max_wait_takes_the_exit_even_with_an_agent_ready() -> None:
    router = Router([max_wait_queue()])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)
    router.handle(ri.AgentGoesReady(agent_id="x"), 5.0)
    agent(router, "y", ("q",), 11.0)  # Ready, but the caller has waited long enough

    out = router.handle(ri.AgentRejects(agent_id="x", call_id="c1"), 12.0)

    assert exits(out) == [("c1", "max wait")]
    assert offers(out) == []
    assert state(router, "y") is AgentState.READY


def test_an_offer_back_before_max_wait_rearms_the_exit() -> None:
    """The first timer fires while the call rings; back in the queue it needs another."""
    router = Router([max_wait_queue(after_s=10.0, offer_timeout_s=3.0)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)
    router.handle(
        ri.AgentGoesReady(agent_id="x"), 1.0
    )  # offered, lapses at 4 s: x Not Ready, c1 waits
    assert exits(router.handle(ri.TimePasses(), 4.0)) == []
    assert router.waiting_in_order("q") == ["c1"]

    assert router.next_deadline() == 10.0
    assert exits(router.handle(ri.TimePasses(), 10.0)) == [("c1", "max wait")]


def test_an_agent_freed_at_the_moment_of_max_wait_does_not_take_the_call() -> None:
    """The agent's wrap-up timer fires before the call's max-wait timer, at the same
    moment: the agent must not be offered a call whose wait is over."""
    router = Router([max_wait_queue(wrap_up_s=10.0)])
    agent(router, "x", ("q",), 0.0)
    router.handle(ri.CallArrives(call_id="c0", queue="q", caller=caller()), 0.0)
    router.handle(ri.AgentAccepts(agent_id="x", call_id="c0"), 0.0)
    router.handle(
        ri.AgentHangsUp(agent_id="x", call_id="c0"), 0.0
    )  # wrap-up until 10 s (its timer first)
    router.handle(
        ri.CallArrives(call_id="c1", queue="q", caller=caller(n=2)), 0.0
    )  # max wait until 10 s

    out = router.handle(ri.TimePasses(), 10.0)

    assert exits(out) == [("c1", "max wait")]
    assert offers(out) == []
    assert state(router, "x") is AgentState.READY


def test_the_docs_vip_call_ringing_at_600_s_gets_its_callback_exit(tmp_path: Path) -> None:
    """docs/acd.md §12: VIP max_wait 600 s with action callback, offer timeout 15 s.

    The VIP call rings agent 1001 from 590 s; the offer lapses at 605 s. The call must
    take its callback exit then (it waited for ever before)."""
    toml = re.search(r"```toml\n(.*?)```", DOCS.read_text("utf-8"), re.S)
    assert toml is not None
    path = tmp_path / "acd.toml"
    path.write_text(toml.group(1), "utf-8")
    config = load_config(path)
    router = Router(
        config.queues,
        agents=config.agents,
        max_missed_offers=config.engine.max_missed_offers,
        seed=config.engine.seed,
    )
    router.handle(ri.AgentLogsIn(agent_id="1001"), 0.0)
    router.handle(ri.CallArrives(call_id="vip1", queue="vip", caller=caller(80.0)), 0.0)
    assert offers(router.handle(ri.AgentGoesReady(agent_id="1001"), 590.0)) == [("vip1", "1001")]
    assert router.handle(ri.TimePasses(), 600.0) == []

    out = router.handle(ri.TimePasses(), 605.0)

    assert ReleaseLine("vip1") in out
    assert router.call_kind("vip1") == "callback"
    # the callback keeps its place and is offered to the (still Ready) agent again
    assert offers(out) == [("vip1", "1001")]


@pytest.mark.parametrize("ani", ["P", "", "12ab"])
def test_a_callback_exit_for_a_caller_with_no_number_goes_to_voicemail(ani: str) -> None:
    """What docs/acd.md §6-§7 say: nobody to call back, so voicemail, after a lapse too."""
    router = Router([max_wait_queue(action=ExitAction.CALLBACK)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    withheld = CallerInfo(ani=ani, kind=CallerKind.PRIVATE if ani == "P" else CallerKind.UNKNOWN)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=withheld), 0.0)
    router.handle(ri.AgentGoesReady(agent_id="x"), 5.0)

    out = router.handle(ri.TimePasses(), 20.0)

    assert of_type(out, ReleaseLine) == []
    (gone,) = of_type(out, ExitCall)
    assert (gone.call_id, gone.action, gone.reason) == ("c1", ExitAction.VOICEMAIL, "max wait")
    cdr = of_type(out, RecordCall)[0].cdr
    assert (cdr.outcome, cdr.exit_action) == ("exited", "voicemail: max wait")


def test_a_supervisor_move_into_a_queue_it_is_too_old_for_takes_the_exit_at_once() -> None:
    router = Router([QueueConfig(name="long"), max_wait_queue("short", after_s=30.0)])
    agent(router, "x", ("long", "short"), 0.0, is_ready=False)
    router.handle(ri.CallArrives(call_id="c1", queue="long", caller=caller()), 0.0)

    out = router.handle(ri.CallMoved(call_id="c1", queue="short"), 40.0)

    assert of_type(out, MoveCall) == [MoveCall("c1", "long", "short", "supervisor")]
    assert exits(out) == [("c1", "max wait")]
    assert router.active_call_ids() == []


def test_a_relaxed_call_back_in_the_queue_keeps_its_exit() -> None:
    """Offered in its first ring, back after max_wait in a later ring: exits at once."""
    q = max_wait_queue(
        after_s=12.0,
        offer_timeout_s=10.0,
        skills={"x": 2},
        relax=(RelaxStep(after_s=8.0, skills={}),),
    )
    router = Router([q])
    agent(router, "skilled", ("q",), 0.0, skills={"x": 2}, is_ready=False)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)
    router.handle(
        ri.AgentGoesReady(agent_id="skilled"), 5.0
    )  # offered in ring 0, lapses at 15 s (ring 1 by then)

    assert exits(router.handle(ri.TimePasses(), 15.0)) == [("c1", "max wait")]


def test_reconfiguring_max_wait_while_a_call_rings_still_applies_it_when_it_is_back() -> None:
    router = Router([QueueConfig(name="q", offer_timeout_s=15.0)])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)
    router.handle(ri.AgentGoesReady(agent_id="x"), 5.0)  # offered until 20 s
    router.handle(ri.QueueConfigured(queue=max_wait_queue(after_s=10.0)), 6.0)

    assert exits(router.handle(ri.TimePasses(), 20.0)) == [("c1", "max wait")]


def test_reconfiguring_max_wait_below_a_waiting_calls_age_takes_the_exit_at_once() -> None:
    router = Router([QueueConfig(name="q")])
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)
    router.handle(ri.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 20.0)

    out = router.handle(ri.QueueConfigured(queue=max_wait_queue(after_s=10.0)), 25.0)

    assert exits(out) == [("c1", "max wait")]
    assert router.waiting_in_order("q") == ["c2"]
    assert router.next_deadline() == 30.0


def test_reconfiguring_max_wait_does_not_send_a_transferred_call_away() -> None:
    """A transferred call never takes its queue's max_wait exit, reconfigured or not."""
    router = Router([QueueConfig(name="q"), QueueConfig(name="billing")])
    agent(router, "x", ("q",), 0.0)
    agent(router, "b", ("billing",), 0.0, is_ready=False)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)
    router.handle(ri.AgentAccepts(agent_id="x", call_id="c1"), 1.0)
    router.handle(
        ri.AgentTransfers(agent_id="x", call_id="c1", queue="billing"), 2.0
    )  # waits in billing, age kept
    router.handle(ri.QueueConfigured(queue=max_wait_queue("billing", after_s=30.0)), 3.0)

    assert exits(router.handle(ri.TimePasses(), 100.0)) == []
    assert router.waiting_in_order("billing") == ["c1"]


# --- random draws per call -------------------------------------------------------------


def test_random_draws_when_the_call_is_placed_not_when_the_agent_joins() -> None:
    """With two Ready agents, the one who just took a call takes the next about half the
    time over many seeds (it took it 2 times in 3 when the draw was made at joining)."""
    seeds = 600
    again = 0
    for seed in range(seeds):
        router = Router([QueueConfig(name="q", strategy=Strategy.RANDOM)], seed=seed)
        agent(router, "a", ("q",), 0.0)
        agent(router, "b", ("q",), 0.0)
        (first,) = of_type(
            router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 1.0), OfferCall
        )
        serve(router, first.agent_id, "c1", 2.0)
        (second,) = of_type(
            router.handle(ri.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 3.0),
            OfferCall,
        )
        again += second.agent_id == first.agent_id
    sd = (seeds * 0.25) ** 0.5
    assert abs(again - seeds / 2) <= 4 * sd, again


def test_random_is_the_same_for_the_same_seed_and_inputs() -> None:
    def run(seed: int) -> list[str]:
        router = Router([QueueConfig(name="q", strategy=Strategy.RANDOM)], seed=seed)
        for a in "abcd":
            agent(router, a, ("q",), 0.0)
        got = []
        for i in range(40):
            (offer,) = of_type(
                router.handle(
                    ri.CallArrives(call_id=f"c{i}", queue="q", caller=caller(n=i)), 1.0 + i
                ),
                OfferCall,
            )
            got.append(offer.agent_id)
            serve(router, offer.agent_id, offer.call_id, 1.0 + i)
        return got

    assert run(3) == run(3)
    assert run(3) != run(4)


# --- ring-all: every ringing agent is free before the call is placed again ------------


def ring_all(max_missed: int, **kw: object) -> Router:
    router = Router(
        [QueueConfig(name="q", strategy=Strategy.RING_ALL, offer_timeout_s=10.0, **kw)],
        max_missed_offers=max_missed,
    )
    for i, a in enumerate("abc"):
        agent(router, a, ("q",), float(i))
    return router


def test_ring_all_lapse_rings_every_agent_again() -> None:
    router = ring_all(2)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)

    out = router.handle(ri.TimePasses(), 15.0)

    assert sorted(w.agent_id for w in of_type(out, WithdrawOffer)) == ["a", "b", "c"]
    assert sorted(offers(out)) == [("c1", "a"), ("c1", "b"), ("c1", "c")]
    assert router.offered_to("c1") == ["a", "b", "c"]
    assert {o.deadline for o in of_type(out, OfferCall)} == {25.0}
    # the second lapse is each agent's second miss: all Not Ready, the call waits
    out = router.handle(ri.TimePasses(), 25.0)
    assert [state(router, a) for a in "abc"] == [AgentState.NOT_READY] * 3
    assert {s.reason for s in of_type(out, AgentStateSet)} == {MISSED_OFFER}
    assert router.waiting_in_order("q") == ["c1"]


def test_ring_all_lapse_rings_a_member_who_was_ready_meanwhile_too() -> None:
    router = ring_all(2)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)
    agent(router, "d", ("q",), 6.0)  # Ready while c1 rings the others

    out = router.handle(ri.TimePasses(), 15.0)

    assert sorted(offers(out)) == [("c1", "a"), ("c1", "b"), ("c1", "c"), ("c1", "d")]


def test_ring_all_lapse_serves_a_better_call_first() -> None:
    """A better call that came while everyone rang rings everyone; the lapsed one waits."""
    router = ring_all(2, value_weight=1.0)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller(0.0)), 5.0)
    router.handle(ri.CallArrives(call_id="vip", queue="q", caller=caller(100.0, n=2)), 6.0)

    out = router.handle(ri.TimePasses(), 15.0)

    assert sorted(offers(out)) == [("vip", "a"), ("vip", "b"), ("vip", "c")]
    assert router.waiting_in_order("q") == ["c1"]


def test_ring_all_answered_the_freed_agents_all_ring_for_the_next_call() -> None:
    router = ring_all(1)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)
    router.handle(ri.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 6.0)

    out = router.handle(ri.AgentAccepts(agent_id="b", call_id="c1"), 7.0)

    assert sorted(offers(out)) == [("c2", "a"), ("c2", "c")]
    assert router.offered_to("c2") == ["a", "c"]


def test_ring_all_caller_gone_the_freed_agents_all_ring_for_the_next_call() -> None:
    router = ring_all(1)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)
    router.handle(ri.CallArrives(call_id="c2", queue="q", caller=caller(n=2)), 6.0)

    out = router.handle(ri.CallerHangsUp(call_id="c1"), 7.0)

    assert sorted(offers(out)) == [("c2", "a"), ("c2", "b"), ("c2", "c")]


def test_ring_all_lapse_after_max_wait_exits_and_frees_everyone() -> None:
    rule = MaxWaitExit(action=ExitAction.VOICEMAIL, after_s=8.0)
    router = ring_all(3, exits=QueueExits(max_wait=rule))
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 5.0)

    out = router.handle(ri.TimePasses(), 15.0)

    assert exits(out) == [("c1", "max wait")]
    assert [state(router, a) for a in "abc"] == [AgentState.READY] * 3
    assert router.active_call_ids() == []


def test_ring_all_lapse_after_max_wait_moves_the_call_to_a_queue_with_other_rings() -> None:
    """The exit moves the call to a queue with more rings than its own (found by the
    property test: the lapsed queue's rings were used for the new queue's call)."""
    rule = MaxWaitExit(action=ExitAction.QUEUE, queue="other", after_s=5.0)
    lapsing = QueueConfig(name="q", strategy=Strategy.RING_ALL, exits=QueueExits(max_wait=rule))
    other = QueueConfig(name="other", strategy=Strategy.RING_ALL, relax=(RelaxStep(after_s=2.0),))
    router = Router([lapsing, other])
    agent(router, "x", ("q",), 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)

    out = router.handle(ri.TimePasses(), 15.0)

    assert of_type(out, MoveCall) == [MoveCall("c1", "q", "other", "max wait")]
    assert router.waiting_in_order("other") == ["c1"]
    assert router.call_ring("c1") == 1


def test_single_offer_lapse_goes_to_another_ready_agent_first() -> None:
    """Not ring-all: the agent who let the offer lapse is not offered it again while
    another agent is Ready (it becomes Ready itself just after)."""
    router = Router([QueueConfig(name="q", offer_timeout_s=10.0)], max_missed_offers=2)
    agent(router, "a", ("q",), 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 1.0)
    agent(router, "b", ("q",), 2.0)

    out = router.handle(ri.TimePasses(), 11.0)

    assert offers(out) == [("c1", "b")]
    assert state(router, "a") is AgentState.READY
    assert router.call_phase("c1") is CallPhase.OFFERED


def test_max_wait_exit_to_another_queue_after_a_lapse_routes_there() -> None:
    router = Router(
        [max_wait_queue(action=ExitAction.QUEUE), QueueConfig(name="other")],
        max_missed_offers=1,
    )
    agent(router, "x", ("q",), 0.0, is_ready=False)
    router.handle(ri.AgentConfigured(agent=AgentConfig(id="o", queues={"other": 0.0})), 0.0)
    router.handle(ri.AgentLogsIn(agent_id="o"), 0.0)
    router.handle(ri.AgentGoesReady(agent_id="o"), 0.0)
    router.handle(ri.CallArrives(call_id="c1", queue="q", caller=caller()), 0.0)
    router.handle(ri.AgentGoesReady(agent_id="x"), 5.0)

    out = router.handle(ri.TimePasses(), 20.0)

    assert of_type(out, MoveCall) == [MoveCall("c1", "q", "other", "max wait")]
    assert offers(out) == [("c1", "o")]
