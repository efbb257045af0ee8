"""The engine's presence on the desk, over a real Mosquitto (issue 21): with the engine
killed the desk says "Engine offline" (its last will), strikes its state through and
counts what waits, never "Back online"; once a new engine serves, the kept action goes
and the banner clears."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from agent_console.connection import ConnectionBanner, LinkStatus, NetworkedDesktop, banner_text
from agent_console.widgets import StateBar
from cti.models import AgentState
from tests.integration.conftest import WAIT_S, Mosquitto, center, mqtt_bus

pytestmark = [pytest.mark.mosquitto, pytest.mark.integration, pytest.mark.console]

REPO = Path(__file__).resolve().parents[2]


async def _until(pilot: Pilot[None], what: str, predicate: Callable[[], bool]) -> None:
    """Let the app run until ``predicate`` holds (the timeout is only a safety net)."""
    try:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                await pilot.pause(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _serve(mosquitto: Mosquitto, config: Path, db: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "CTI_BROKER_RECONNECT_MIN_S": "0.05"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cti.app.cli", "serve", "--config", str(config), "--db",
        str(db), "--broker", mosquitto.url("cti-engine"),
        cwd=REPO, env=env, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def test_a_killed_engine_shows_offline_on_the_desk(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config, _ = center(tmp_path)
    db = tmp_path / "serve.db"
    engines = [await _serve(mosquitto, config, db)]
    texts: list[str] = []
    try:
        async with mqtt_bus(mosquitto, "1001", presence="1001") as bus:
            app = NetworkedDesktop(bus, "1001", queues=["general"])
            app.link.retry_s = 0.5
            async with app.run_test(size=(100, 30)) as pilot:
                banner = app.query_one(ConnectionBanner)
                bar = app.query_one(StateBar)

                def seen(status: LinkStatus) -> None:
                    texts.append(banner_text(status).plain)

                app.link.add_listener(seen)
                await pilot.press("enter")
                await _until(pilot, "logged in", lambda: app.agent_state is AgentState.NOT_READY)
                await pilot.press("r")
                await _until(pilot, "ready", lambda: app.agent_state is AgentState.READY)
                await _until(pilot, "banner hidden", lambda: banner.shown_text == "")

                engines[0].kill()  # no clean stop: the broker publishes the engine's will
                await engines[0].wait()
                await _until(pilot, "engine offline", lambda: "Engine offline" in banner.shown_text)
                assert bus.status.online  # the broker is fine: it is the engine that is gone
                assert bar.has_class("-stale")

                await pilot.press("n", "1")  # Not ready: break, while the engine is gone
                await _until(pilot, "kept", lambda: "1 action kept" in banner.shown_text)
                # The old link asked again after retry_s and said "Back online": give it
                # that time (an observation window; nothing is awaited here).
                await asyncio.sleep(3 * app.link.retry_s)
                assert "Engine offline" in banner.shown_text
                assert not any("Back online" in text for text in texts), texts
                assert app.agent_state is AgentState.READY  # nothing applied

                engines.append(await _serve(mosquitto, config, db))
                await _until(pilot, "the kept action applied",
                             lambda: app.agent_state is AgentState.NOT_READY)  # fmt: skip
                await _until(pilot, "banner gone", lambda: banner.shown_text == "")
                assert not bar.has_class("-stale")
    finally:
        for engine in engines:
            if engine.returncode is None:
                engine.kill()
                await engine.wait()
