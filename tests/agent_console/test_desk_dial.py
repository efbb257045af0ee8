"""The agent's own dial (``d``) in the real desk against the real engine, in-process
(simulator trunk: the far end's answer set per number). The desk shows the dial's own
states (dialling, ringing; no answer, busy, failed), an outbound card (the customer
dialled, when it was dialled: no wait, no rank), and the agent ends in the state it
dialled from: Not Ready (with its reason) or Ready, with no wrap-up when nobody answered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from agent_console.desk_dial import number_to_dial
from agent_console.desktop import AgentDesktop
from agent_console.dialogs import ChoiceDialog
from cti.models import AgentState
from telephony_adapters.base import DialEnd, DialOutcome
from telephony_adapters.sim import SimTrunk
from tests.agent_console.test_desktop_call_control import (
    SIZE,
    banner,
    card_text,
    notices,
    open_center,
    records,
    type_into_prompt,
)
from tests.harness import settle

pytestmark = [pytest.mark.console, pytest.mark.integration]

KNOWN = "+8613800000001"  # 王小明's
UNKNOWN = "+8613900000002"
QUEUES = [
    {"name": "general", "wrap_up_s": 600, "script": "inbound_service_en",
     "outbound_script": "outbound_survey"},
]  # fmt: skip
BACK = {"not_ready": (AgentState.NOT_READY, "lunch"), "ready": (AgentState.READY, "")}


class Ringing(SimTrunk):
    """A far end that rings until the agent gives up."""

    async def dial_outcome(self, call_id: str) -> DialOutcome:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover


def wrap_up_banner(app: AgentDesktop) -> str:
    return str(app.query_one("#wrap-up-banner", Static).render())


def state_of(app: AgentDesktop) -> tuple[AgentState | None, str]:
    state = app.model.state
    return (state.state, state.reason) if state is not None else (None, "")


async def log_in_as(pilot: Pilot[Any], before: str) -> AgentDesktop:
    """Log in, go Ready, then (``not_ready``) Not Ready for lunch."""
    app = pilot.app
    assert isinstance(app, AgentDesktop)
    await pilot.press("enter")
    await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
    await pilot.press("r")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)
    if before == "not_ready":
        await pilot.press("n")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("2")  # lunch
        await settle(pilot, lambda: state_of(app) == BACK["not_ready"])
    return app


@pytest.mark.parametrize("before", ["not_ready", "ready"])
async def test_an_answered_dial_shows_the_outbound_card_and_ends_as_the_agent_dialled(
    tmp_path: Any, before: str
) -> None:
    async with open_center(tmp_path, queues=QUEUES) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=SIZE) as pilot:
            await log_in_as(pilot, before)
            await pilot.press("d")
            await type_into_prompt(pilot, "138 0000 0001")
            await settle(pilot, lambda: app.view == "talking" and "Talking" in banner(app))
            card = card_text(app)
            assert "王小明" in card  # known: named, not a new caller
            assert "New caller" not in card
            assert "Dialled" in card
            assert "waited" not in card
            assert "rank" not in card
            pop = app.model.pop
            assert pop is not None
            assert pop.script is not None
            assert pop.script.name == "Satisfaction survey"  # the outbound one
            if before == "not_ready":
                assert "not ready after this call" in banner(app)
            call_id = app.current_call_id
            assert call_id is not None
            center.trunk.caller_hangs_up(call_id)  # the script ends where it was
            await settle(pilot, lambda: app.view == "wrap_up")
            then = "auto-not ready" if before == "not_ready" else "auto-ready"
            await settle(pilot, lambda: then in wrap_up_banner(app), what=then)
            await pilot.press("1")
            await settle(pilot, lambda: app.view == "idle" and state_of(app) == BACK[before])
        [record] = await records(center)
        assert (record.kind, record.outcome) == ("manual", "answered")


@pytest.mark.parametrize(
    ("end", "said"),
    [
        (DialEnd.NO_ANSWER, "No answer from +8613900000002."),
        (DialEnd.BUSY, "+8613900000002 is busy."),
        (DialEnd.FAILED, "The call to +8613900000002 failed: simulated failed."),
    ],
)
@pytest.mark.parametrize("before", ["not_ready", "ready"])
async def test_a_dial_nobody_answers_leaves_the_desk_idle_as_it_was_and_says_why(
    tmp_path: Any, before: str, end: DialEnd, said: str
) -> None:
    trunk = SimTrunk()
    trunk.far_end[UNKNOWN] = end
    async with open_center(tmp_path, trunk=trunk, queues=QUEUES) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        views: list[str] = []
        async with app.run_test(size=SIZE) as pilot:
            await log_in_as(pilot, before)
            await pilot.press("d")
            await type_into_prompt(pilot, UNKNOWN)

            def told() -> bool:
                views.append(app.view)
                return said in notices(app)

            await settle(pilot, told)
            await settle(pilot, lambda: app.view == "idle" and state_of(app) == BACK[before])
            assert "wrap_up" not in views  # no wrap-up asked for
            assert said in str(app.query_one("#idle").render())
            assert number_to_dial(app.model) == UNKNOWN  # d again: the same number
        [record] = await records(center)
        assert (record.outcome, record.disposition) == ("unanswered", end.value)


async def test_a_ringing_dial_says_so_keeps_the_call_keys_and_h_gives_up(tmp_path: Any) -> None:
    async with open_center(tmp_path, trunk=Ringing(), queues=QUEUES) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=SIZE) as pilot:
            await log_in_as(pilot, "not_ready")
            await pilot.press("d")
            await type_into_prompt(pilot, UNKNOWN)
            await settle(pilot, lambda: f"Ringing {UNKNOWN}" in banner(app))
            assert "h: hang up" in banner(app)
            assert "New number" in card_text(app)  # not a customer, and not a caller
            assert not app.model.applies("hold")
            assert not app.model.applies("transfer")
            assert app.model.why_not("hold") == "The number you dialled is still ringing."
            await pilot.press("h")
            await settle(pilot, lambda: app.view == "idle" and state_of(app) == BACK["not_ready"])
            assert "You hung up before anyone answered." in notices(app)
        [record] = await records(center)
        assert (record.outcome, record.disposition) == ("unanswered", "cancelled")
