"""The transfer and consult dialogs, against the real engine, at 80x24 and 120x40: they
list the agents who can take the call (Ready, with their names) first, the queues (a
transfer), and the others dimmed with why (Not Ready and its reason, talking); a logged
out agent is not listed. Choosing one sends it; typing still works; a busy agent typed
in is refused with the real reason."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList

from agent_console.desktop import AgentDesktop
from agent_console.dialogs import Prompt
from cti import topics
from cti.models import AgentConfig, AgentState
from cti.protocol import Login, SetNotReady, SetReady
from tests.agent_console.test_desk_narrow import screen_lines
from tests.agent_console.test_desktop_call_control import (
    WANG,
    banner,
    notices,
    talking,
    type_into_prompt,
)
from tests.harness import Center, center_config, engine_center, settle

pytestmark = [pytest.mark.console, pytest.mark.integration]

SIZES = [(80, 24), (120, 40)]
QUEUES = ["general", "billing"]
AGENTS = [
    AgentConfig(id="1001", name="Zhang Wei", queues=dict.fromkeys(QUEUES, 0.0)),
    AgentConfig(id="1002", name="Li Na", queues=dict.fromkeys(QUEUES, 0.0)),
    AgentConfig(id="1003", name="Wang Fang", queues=dict.fromkeys(QUEUES, 0.0)),
    AgentConfig(id="1004", name="Chen Jie", queues=dict.fromkeys(QUEUES, 0.0)),
]


def _center(tmp_path: Path) -> contextlib.AbstractAsyncContextManager[Center]:
    config = center_config(
        [{"name": q, "wrap_up_s": 600} for q in QUEUES], engine={"default_queue": "general"}
    )
    return engine_center(tmp_path / "cti.db", config=config, agents=AGENTS, customers=[WANG])


async def colleagues_at_work(pilot: Pilot[Any], center: Center) -> None:
    """1002 Ready, 1003 Not Ready for lunch, 1004 never logged in; the desk has heard.
    (After the desk took its call: a Ready 1002 would have been offered it first.)"""
    for agent in ("1002", "1003"):
        await center.bus.publish(topics.agent_commands(agent), Login(agent_id=agent))
    await center.bus.publish(topics.agent_commands("1002"), SetReady(agent_id="1002"))
    await center.bus.publish(
        topics.agent_commands("1003"), SetNotReady(agent_id="1003", reason="lunch")
    )
    app = pilot.app
    assert isinstance(app, AgentDesktop)
    heard = app.calls.colleagues.states

    def settled() -> bool:
        lunch, ready = heard.get("1003"), heard.get("1002")
        return (lunch is not None and lunch.reason == "lunch") and (
            ready is not None and ready.state is AgentState.READY
        )

    await settle(pilot, settled, what="the desk hearing its colleagues")


def choices(app: AgentDesktop) -> list[tuple[str, bool]]:
    """The dialog's list as shown: (text, whether it can be chosen)."""
    options = app.screen.query_one("#prompt-choices", OptionList)
    out = []
    for index in range(options.option_count):
        option = options.get_option_at_index(index)
        out.append((str(option.prompt), not option.disabled))
    return out


@pytest.mark.parametrize("size", SIZES)
async def test_transfer_lists_ready_agents_with_names_then_queues_then_the_busy_ones(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    async with _center(tmp_path) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=size) as pilot:
            app, call_id = await talking(pilot, center)
            await colleagues_at_work(pilot, center)
            await pilot.press("w")
            await settle(pilot, lambda: isinstance(app.screen, Prompt))
            assert choices(app) == [
                ("1002  Li Na  · Ready", True),
                ("billing  · queue", True),
                ("general  · queue", True),
                ("1003  Wang Fang  · Not Ready (lunch)", False),
            ]
            for line in ("1002  Li Na  · Ready", "billing  · queue", "Not Ready (lunch)"):
                assert any(line in shown for shown in screen_lines(app)), line
            await pilot.press("down", "enter")  # the first: 1002, Ready
            await settle(pilot, lambda: app.view == "wrap_up")
            assert center.service.router.agent("1002").state is AgentState.RESERVED
            assert center.service.router.agent("1002").call_id == call_id


@pytest.mark.parametrize("size", SIZES)
async def test_consult_lists_agents_only_and_a_busy_one_typed_is_refused_with_why(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    async with _center(tmp_path) as center:
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=size) as pilot:
            app, _call_id = await talking(pilot, center)
            await colleagues_at_work(pilot, center)
            await pilot.press("k")
            await settle(pilot, lambda: isinstance(app.screen, Prompt))
            assert choices(app) == [
                ("1002  Li Na  · Ready", True),
                ("1003  Wang Fang  · Not Ready (lunch)", False),
            ]
            await type_into_prompt(pilot, "1003")  # typing still works
            refusal = "agent '1003' is Not Ready (lunch): only a Ready agent can be consulted"
            await settle(pilot, lambda: any(refusal in n for n in notices(app)))
            assert app.view == "talking"
            await pilot.press("k")
            await settle(pilot, lambda: isinstance(app.screen, Prompt))
            await pilot.press("down", "enter")
            await settle(pilot, lambda: "consulting 1002 (ringing)" in banner(app))
