"""The agent desktop over a real broker (Pilot): a call, then the broker goes away during
wrap-up. The desk says it is offline and keeps the disposition; when the broker is back
the wrap-up reaches the engine, once, and the desk is ready again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from agent_console.connection import ConnectionBanner, NetworkedDesktop
from cti.models import AgentState
from tests.integration.conftest import WAIT_S, Engine, Mosquitto, mqtt_bus

pytestmark = [pytest.mark.mosquitto, pytest.mark.integration, pytest.mark.console]


async def _until(pilot: Pilot[None], what: str, predicate: Callable[[], bool]) -> None:
    """Let the app run until ``predicate`` holds (the timeout is only a safety net)."""
    try:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                await pilot.pause(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_desk_offline_during_wrap_up_keeps_the_disposition(
    mosquitto: Mosquitto, engine: Engine
) -> None:
    async with mqtt_bus(mosquitto, "1001", presence="1001") as bus:
        app = NetworkedDesktop(bus, "1001", queues=["general"])
        app.link.retry_s = 0.5
        async with app.run_test(size=(110, 32)) as pilot:
            banner = app.query_one(ConnectionBanner)
            await _until(pilot, "online", lambda: bus.status.online)
            await pilot.press("enter")
            await _until(pilot, "logged in", lambda: app.agent_state is AgentState.NOT_READY)
            await pilot.press("r")
            await _until(pilot, "ready", lambda: app.agent_state is AgentState.READY)
            call_id = engine.trunk.ring("+8613800138000", caller_name="王芳")
            await _until(pilot, "the offer", lambda: app.view == "offer")
            await pilot.press("a")
            await _until(pilot, "talking", lambda: app.view == "talking")
            await pilot.press("h")
            await _until(pilot, "wrap-up", lambda: app.view == "wrap_up")
            assert banner.shown_text == ""

            mosquitto.stop()
            await _until(pilot, "offline banner", lambda: "Offline" in banner.shown_text)
            assert bus.address.display in banner.shown_text
            await pilot.press("1")  # the first disposition, chosen while offline
            await _until(pilot, "kept", lambda: "1 action kept" in banner.shown_text)
            assert app.agent_state is AgentState.WRAP_UP  # nothing applied yet

            mosquitto.start()
            await _until(pilot, "ready again", lambda: app.agent_state is AgentState.READY)
            await _until(pilot, "banner gone", lambda: banner.shown_text == "")
            assert app.link.status.unanswered == 0
    await engine.service.flush()
    records = [r for r in await engine.store.calls.records() if r.call_id == call_id]
    assert len(records) == 1
    assert records[0].disposition == engine.service.config.engine.dispositions[0]
