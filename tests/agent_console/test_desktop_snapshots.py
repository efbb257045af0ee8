"""Snapshots of the desk's main screens with a Chinese customer, at 80x24 and 120x40:
the offer (with its countdown), the call with its script (on hold, consulting an agent),
and wrap-up (with its timer). The clock is fixed, so every timer reads the same."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from agent_console.desktop import AgentDesktop
from cti.bus.memory import InMemoryBus
from cti.models import AgentState
from cti.protocol import CallControl, LineFeatures
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_desktop import AGENT, FixedClock, ready
from tests.agent_console.test_script_panel import call_script, pop_with
from tests.harness import settle

pytestmark = pytest.mark.console

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
Step = Callable[[Pilot[Any], FakeEngine, FixedClock], Awaitable[None]]


def desk_with(step: Step) -> tuple[AgentDesktop, Callable[[Pilot[Any]], Awaitable[None]]]:
    clock = FixedClock()
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT, queues=("sales",), clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        engine = await FakeEngine(bus, clock=clock).__aenter__()
        await engine.queue_status("sales", waiting=3, longest_wait_s=95)
        await ready(pilot)
        pop = pop_with(call_script("inbound_service_zh")).model_copy(
            update={"line": LineFeatures(hold=True, mute=False, conference=False, dial=True)}
        )
        clock.now += 4
        await engine.offer("c1", pop, agent_name="王伟")
        await settle(pilot, lambda: app.view == "offer" and app.script_run is not None)
        await step(pilot, engine, clock)
        app.refresh_clock()
        await pilot.pause()

    return app, run_before


async def offer_shown(pilot: Pilot[Any], engine: FakeEngine, clock: FixedClock) -> None:
    clock.now += 6  # 9 s left to answer


async def talking_on_hold(pilot: Pilot[Any], engine: FakeEngine, clock: FixedClock) -> None:
    app = pilot.app
    assert isinstance(app, AgentDesktop)
    await pilot.press("a")
    await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
    await pilot.press("enter")  # greet -> reason
    await settle(pilot, lambda: app.script_run is not None and app.script_run.node_id == "reason")
    app.apply(
        CallControl(
            agent_id=AGENT, call_id="c1", held=True, consult_agent="1002", consult_state="talking"
        )
    )
    clock.now += 75


async def wrap_up(pilot: Pilot[Any], engine: FakeEngine, clock: FixedClock) -> None:
    app = pilot.app
    assert isinstance(app, AgentDesktop)
    await pilot.press("a")
    await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
    app.screen.set_focus(None)
    await pilot.press("h")
    await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
    clock.now += 12


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "step", [offer_shown, talking_on_hold, wrap_up], ids=["offer", "talking", "wrap_up"]
)
def test_main_screens(
    snap_compare: Callable[..., bool], utc: None, size: tuple[int, int], step: Step
) -> None:
    app, run_before = desk_with(step)
    assert snap_compare(app, terminal_size=size, run_before=run_before)
