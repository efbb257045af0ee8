"""The desk on a center whose lines carry the voice: the agent's phone on the state bar
(reachable or not, with the hint), Ready refused with the engine's reason while it is
not, and the recording paused and resumed from the desk (``p``), shown as REC paused.

Against the real engine with the voice room's trunk (:mod:`tests.cti.test_voice_room`),
and against the fake engine for what the desk does alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets._footer import FooterKey

from agent_console.desktop import AgentDesktop
from agent_console.widgets import StateBar, screen_pop_text
from cti.bus.memory import InMemoryBus
from cti.events import VoiceMessage
from cti.models import AgentState
from cti.protocol import PauseRecording, PhoneReachability
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_bindings import _shown_unresolved
from tests.agent_console.test_desktop import AGENT, SIZE, known_pop, log_in, ready
from tests.agent_console.test_desktop_call_control import banner, notices
from tests.cti.test_voice_room import voice_center
from tests.harness import settle

pytestmark = pytest.mark.console


def state_bar(app: AgentDesktop) -> str:
    return app.query_one(StateBar).render().plain


def footer_keys(app: AgentDesktop) -> dict[str, FooterKey]:
    """The footer's keys by action, as shown now."""
    return {key.action: key for key in app.screen.query(FooterKey)}


async def test_the_phone_shows_ready_waits_for_it_and_p_pauses_the_recording(
    tmp_path: Path,
) -> None:
    async with voice_center(tmp_path) as (c, trunk):
        app = AgentDesktop(c.bus, "1001", queues=["general"])
        async with app.run_test(size=SIZE) as pilot:
            await log_in(pilot)
            await settle(pilot, lambda: "phone" in state_bar(app))
            assert "phone not reachable (register your softphone)" in state_bar(app)
            await pilot.press("r")
            await settle(pilot, lambda: bool(notices(app)))
            assert "your phone is not reachable (register your softphone" in notices(app)[-1]
            assert app.agent_state is AgentState.NOT_READY

            trunk.phone(PhoneReachability(agent_id="1001", reachable=True, contact="sip:x@h"))
            await settle(pilot, lambda: "phone reachable" in state_bar(app))
            await pilot.press("r")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
            call_id = trunk.ring("13812345678")
            await settle(pilot, lambda: app.view == "offer")
            await pilot.press("a")
            await settle(pilot, lambda: app.view == "talking" and trunk.plan(call_id).record)
            app.screen.set_focus(None)

            await pilot.press("p")
            await settle(pilot, lambda: trunk.plan(call_id).record_paused)
            await settle(pilot, lambda: "REC paused" in banner(app))
            await pilot.press("p")
            await settle(pilot, lambda: not trunk.plan(call_id).record_paused)
            await settle(pilot, lambda: "REC paused" not in banner(app))


async def _talking(pilot: Pilot[Any], engine: FakeEngine) -> AgentDesktop:
    app = await ready(pilot)
    await engine.offer("c1", known_pop("c1"))
    await settle(pilot, lambda: app.view == "offer")
    await pilot.press("a")
    await settle(pilot, lambda: app.view == "talking")
    app.screen.set_focus(None)
    return app


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_p_is_in_the_footer_during_a_call_and_a_refusal_says_why(
    size: tuple[int, int],
) -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=size) as pilot:
        engine.phone_reachable = True
        await log_in(pilot)
        assert "pause_recording" not in footer_keys(app)  # no call in hand
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert commands["Pause / resume recording (p) · not now"].help == "Only during a call."
        await pilot.press("p")
        await pilot.pause()
        assert engine.commands_of(PauseRecording) == []

        await _talking(pilot, engine)
        key = footer_keys(app)["pause_recording"]
        assert key.key == "p"
        assert key.region.width > 0
        assert key.region.right <= size[0]  # on screen, not scrolled out of the footer
        assert _shown_unresolved(pilot) == []
        assert "Pause / resume recording (p)" in {
            c.title for c in app.get_system_commands(app.screen)
        }
        refusal = "call 'c1' is not being recorded: nothing to pause"
        engine.refuse_next(PauseRecording, refusal)
        await pilot.press("p")
        await settle(pilot, lambda: refusal in notices(app))
        assert not app.model.recording_paused
        assert "REC paused" not in banner(app)
        await pilot.press("p")  # accepted this time
        await settle(pilot, lambda: "REC paused" in banner(app))
        sent = engine.commands_of(PauseRecording)
        assert [(c.call_id, c.paused) for c in sent if isinstance(c, PauseRecording)] == [
            ("c1", True),
            ("c1", True),
        ]
        await engine.caller_hangs_up("c1")
        await settle(pilot, lambda: app.view == "wrap_up")
        assert not app.model.recording_paused  # the recording closed with the call


async def test_without_a_voice_line_no_phone_and_no_pause_key() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=SIZE) as pilot:
        await _talking(pilot, engine)
        assert "phone" not in state_bar(app)
        assert "pause_recording" not in footer_keys(app)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        why = commands["Pause / resume recording (p) · not now"].help
        assert why == "No line of this center carries the voice: calls are not recorded."
        await pilot.press("p")
        await pilot.pause()
        assert engine.commands_of(PauseRecording) == []


def test_a_callbacks_voicemail_is_on_its_card_with_how_to_hear_it() -> None:
    pop = known_pop()
    left = VoiceMessage(recording_id="sip-1.message", path="2026-12-07/sip-1.message.wav",
                        duration_s=75.0, status="recorded")  # fmt: skip
    card = screen_pop_text(pop.model_copy(update={"message": left})).plain
    assert "Voicemail" in card
    assert "01:15 left · listen: cti recordings export sip-1.message" in card
    assert "Voicemail" not in screen_pop_text(pop).plain
    failed = left.model_copy(update={"status": "failed"})
    assert (
        "failed (sip-1.message)"
        in screen_pop_text(pop.model_copy(update={"message": failed})).plain
    )
