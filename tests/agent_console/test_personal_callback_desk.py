"""The desk's callback form: "for me" reserves the callback for this agent (Pilot, real engine).

The callback is scheduled with an empty time (as soon as possible) while the agent is in
wrap-up, so it is due at once while its agent is busy and another agent is Ready: the
engine runs on its own clock here, and nothing waits for time to pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from agent_console.customer_actions import FOR_ANYONE, FOR_ME
from agent_console.desktop import AgentDesktop
from agent_console.dialogs import FormScreen
from cti.models import AgentState, Customer, PhoneNumber
from queue_engine import inputs as ri
from queue_engine.router import CallPhase
from tests.harness import Center, center_config, engine_center, settle

pytestmark = [pytest.mark.console, pytest.mark.integration]

FAMILY = "+8613800000001"


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    phone = PhoneNumber(raw="138 0000 0001", e164=FAMILY)
    customer = Customer(id=1, name="王建国", phones=(phone,), value=90.0, time_zone="Asia/Shanghai")
    config = center_config([{"name": "general", "wrap_up_s": 600}])
    agents = {"1001": ["general"], "1002": ["general"]}
    async with engine_center(
        tmp_path / "cti.db", config=config, agents=agents, customers=[customer]
    ) as center:
        yield center


async def callback_in_wrap_up(
    pilot: Pilot[Any], app: AgentDesktop, center: Center, choice: str | None
) -> str:
    """Desk 1001 takes a call, and in its wrap-up schedules a callback for now while
    agent 1002 is Ready; ``choice`` None keeps the form's default. Returns its call id."""
    await pilot.press("enter")
    await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
    await pilot.press("r")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)
    center.trunk.ring(FAMILY)
    await settle(pilot, lambda: app.offer is not None)
    await pilot.press("a")
    await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
    await pilot.press("h")
    await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
    center.service.route(ri.AgentLogsIn(agent_id="1002"))
    center.service.route(ri.AgentGoesReady(agent_id="1002"))
    router = center.service.router
    before = set(router.active_call_ids())
    await pilot.press("b")
    await settle(pilot, lambda: isinstance(app.screen, FormScreen))
    chooser = app.screen.query_one("#f-for", Select)
    assert chooser.value == FOR_ME  # the default
    if choice is not None:
        chooser.value = choice
    app.screen.query_one("#f-when", Input).value = ""  # as soon as possible
    await pilot.press("ctrl+s")
    await settle(pilot, lambda: not isinstance(app.screen, FormScreen))
    [call_id] = set(router.active_call_ids()) - before
    assert router.call_kind(call_id) == "callback"
    return call_id


async def test_a_callback_for_me_waits_for_me_and_is_offered_to_me(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    router = center.service.router
    async with app.run_test(size=(100, 30)) as pilot:
        call_id = await callback_in_wrap_up(pilot, app, center, None)
        # Due, but reserved for 1001 (in wrap-up): 1002, Ready, does not get it.
        assert router.call_phase(call_id) is CallPhase.SCHEDULED
        assert router.agent("1002").state is AgentState.READY
        assert router.waiting("general") == 0
        first = app.offer
        await pilot.press("1")  # disposition: wrap-up ends, the promised callback comes
        await settle(pilot, lambda: app.offer is not None and app.offer is not first)
        assert app.offer is not None
        assert app.offer.pop.call_id == call_id
        assert app.agent_state is AgentState.RESERVED
        assert router.call_agent(call_id) == "1001"
        assert router.agent("1002").state is AgentState.READY


async def test_a_callback_for_anyone_goes_to_the_ready_agent(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    router = center.service.router
    async with app.run_test(size=(100, 30)) as pilot:
        call_id = await callback_in_wrap_up(pilot, app, center, FOR_ANYONE)
        assert router.call_phase(call_id) is CallPhase.OFFERED
        assert router.call_agent(call_id) == "1002"
