"""The live figures observe the router's actions after their effects are out (issue 23),
in the router's order, and whoever reads them sees every action decided so far."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

from cti.engine.live_figures import MOST_WAITING, DeferredFigures
from cti.models import AgentState
from queue_engine import inputs as ri
from queue_engine.actions import Action, AgentStateSet
from queue_engine.live_stats import LiveStats
from tests.harness import engine_center, until


class Observed:
    """A stand-in for LiveStats: the actions observed, in order, with their times."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    def observe(self, action: Action, now: float) -> None:
        assert isinstance(action, AgentStateSet)
        self.seen.append((action.agent_id, now))


def _state(agent_id: str) -> list[Action]:
    return [AgentStateSet(agent_id=agent_id, state=AgentState.READY)]


async def test_actions_are_observed_at_the_next_turn_in_order_or_when_read() -> None:
    observed = Observed()
    stats = cast(LiveStats, observed)
    figures = DeferredFigures(stats)
    figures.later(_state("a"), 1.0)
    figures.later(_state("b"), 2.0)
    assert observed.seen == []  # not on the way to the offer
    await asyncio.sleep(0)
    assert observed.seen == [("a", 1.0), ("b", 2.0)]
    figures.later(_state("c"), 3.0)
    assert figures.stats is stats  # read: caught up first
    assert observed.seen[-1] == ("c", 3.0)
    for n in range(MOST_WAITING):  # many waiting: observed without waiting for a turn
        figures.later(_state(str(n)), 4.0)
    assert len(observed.seen) == 3 + MOST_WAITING


def test_outside_a_loop_they_are_observed_at_once() -> None:
    observed = Observed()
    DeferredFigures(cast(LiveStats, observed)).later(_state("a"), 1.0)
    assert observed.seen == [("a", 1.0)]


async def test_the_engines_figures_read_right_after_an_input_count_it(tmp_path: Path) -> None:
    async with engine_center(tmp_path / "cti.db", agents={"1001": ["general"]}) as center:
        service = center.service
        service.route(ri.AgentLogsIn(agent_id="1001"))
        service.route(ri.AgentGoesReady(agent_id="1001"))
        call_id = center.trunk.ring("13800138000")
        await until(lambda: service.router.agent("1001").call_id == call_id, what="the offer")
        service.route(ri.AgentAccepts(agent_id="1001", call_id=call_id))
        states = service.stats.agents_by_state("general", service.now())  # in the same turn
        assert states.get(AgentState.TALKING) == 1
