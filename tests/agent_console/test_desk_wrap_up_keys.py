"""Issue 21, the desk in and around wrap-up: 1-9 go to one place whatever has the focus,
a script's phone field starts with the caller's number, and a callback scheduled with
``b`` shows on the card."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from agent_console.desktop import AgentDesktop
from agent_console.widgets import CustomerCardView, DispositionPicker
from cti.bus.memory import InMemoryBus
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_desktop import AGENT, known_pop, ready
from tests.agent_console.test_personal_callback_desk import callback_in_wrap_up, center
from tests.agent_console.test_script_panel import call_script
from tests.harness import Center, settle

pytestmark = pytest.mark.console

__all__ = ["center"]  # the engine centre of the callback tests, as a fixture here


def node(app: AgentDesktop) -> str | None:
    run = app.script_run
    return run.node_id if run is not None else None


async def talking_with_script(pilot: Pilot[Any], engine: FakeEngine) -> AgentDesktop:
    app = await ready(pilot)
    pop = known_pop("c1").model_copy(update={"script": call_script("inbound_service_en")})
    await engine.offer("c1", pop)
    await settle(pilot, lambda: app.view == "offer")
    await pilot.press("a")
    await settle(pilot, lambda: app.view == "talking" and node(app) == "greet")
    await pilot.press("enter")  # greet read: the question of why they call
    await settle(pilot, lambda: node(app) == "reason")
    return app


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_digits_in_wrap_up_go_to_one_place_whatever_has_the_focus(
    size: tuple[int, int],
) -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=size) as pilot:
        await talking_with_script(pilot, engine)
        await pilot.press("h")  # the agent hangs up: the script is still to finish
        await settle(pilot, lambda: app.view == "wrap_up")
        app.query_one(DispositionPicker).focus_list()  # the focus on the dispositions
        await pilot.pause()
        await pilot.press("2")  # the script's answer first: "a fault"
        await settle(pilot, lambda: node(app) == "fault_since")
        assert app.view == "wrap_up"
        note = app.query_one("#note", Input)
        note.focus()
        await pilot.pause()
        await pilot.press("4")  # a text field keeps its digits
        assert note.value == "4"
        assert app.view == "wrap_up"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_scripts_phone_field_starts_with_the_callers_number(
    size: tuple[int, int],
) -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=size) as pilot:
        await talking_with_script(pilot, engine)
        await pilot.press("2")  # a fault
        await settle(pilot, lambda: node(app) == "fault_since")
        field = app.query_one("#script-input", Input)
        assert field.value == ""  # a date: nothing to fill in
        field.value = "2026-01-01"
        await pilot.press("enter")
        await settle(pilot, lambda: node(app) == "fault_callback")
        await pilot.press("1")  # yes, call me back
        await settle(pilot, lambda: node(app) == "callback_phone")
        await pilot.pause()
        assert field.value == "+441715550101"


@pytest.mark.integration
async def test_a_callback_scheduled_with_b_shows_on_the_card(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(80, 24)) as pilot:
        await callback_in_wrap_up(pilot, app, center, None)
        card = app.query_one("#pop-card", CustomerCardView)
        await settle(pilot, lambda: "Callback" in str(card.render()))
        shown = " ".join(str(card.render()).split())
        assert "Callback now (Asia/Shanghai) · for me · +8613800000001" in shown, shown
