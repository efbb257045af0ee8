"""Quitting the desk with a call in hand (issue 21): `q` asks first, saying what happens
to the call; confirmed, the engine logs the agent out and hands the caller back to the
queue. The real desktop against the real engine, in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from agent_console.desktop import AgentDesktop
from agent_console.dialogs import ChoiceDialog
from cti.models import AgentState
from queue_engine.router import CallPhase
from tests.harness import Center, center_config, engine_center, settle

pytestmark = [pytest.mark.console, pytest.mark.integration]


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    config = center_config([{"name": "general", "wrap_up_s": 600}])
    async with engine_center(tmp_path / "cti.db", config=config) as c:
        yield c


async def talking(pilot: Pilot[None], app: AgentDesktop, center: Center) -> str:
    await pilot.press("enter")  # log in
    await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
    await pilot.press("r")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)
    call_id = center.trunk.ring("+8613800000001")
    await settle(pilot, lambda: app.view == "offer")
    await pilot.press("a")
    await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
    return call_id


def dialog_text(app: AgentDesktop) -> str:
    screen = app.screen
    assert isinstance(screen, ChoiceDialog), f"no question asked: {screen!r}"
    return " ".join(str(static.render()) for static in screen.query(Static))


async def test_quit_while_talking_asks_then_hands_the_caller_back(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        call_id = await talking(pilot, app, center)

        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceDialog), what="the question")
        assert "hands the caller back to queue general" in dialog_text(app)
        await pilot.press("escape")  # stay
        await settle(pilot, lambda: not isinstance(app.screen, ChoiceDialog))
        assert app.is_running
        assert center.service.router.agent("1001").state is AgentState.TALKING

        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceDialog), what="the question")
        await pilot.press("2")  # log out and quit
        await settle(pilot, lambda: not app.is_running, what="the desk closed")

    router = center.service.router
    await center.service.flush()
    assert router.agent("1001").state is AgentState.LOGGED_OUT
    assert router.call_phase(call_id) is CallPhase.QUEUED
    assert center.trunk.state(call_id) is not None  # the caller still on the line


async def test_quit_in_wrap_up_says_the_disposition_is_left_out(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(80, 24)) as pilot:
        await talking(pilot, app, center)
        await pilot.press("h")
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)

        await pilot.press("q")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceDialog), what="the question")
        assert "no disposition" in dialog_text(app)
        await pilot.press("2")
        await settle(pilot, lambda: not app.is_running, what="the desk closed")

    await center.service.flush()
    assert center.service.router.agent("1001").state is AgentState.LOGGED_OUT
    [record] = await center.store.calls.records()
    assert (record.disposition, record.note) == ("", "agent logged out")


async def test_quit_when_idle_logs_out_without_asking(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        await pilot.press("q")
        await settle(pilot, lambda: not app.is_running, what="the desk closed")
    await center.service.flush()
    assert center.service.router.agent("1001").state is AgentState.LOGGED_OUT
