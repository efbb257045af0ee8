"""Issue 21: the caller-id name the line gives ("WANG JUN" from the modem) shows on the
card of an unknown caller, and an agent with no configured name is never read aloud as
``‹agent.name?›`` (the script says the agent's id; ``cti config --check`` warns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_console.desktop import AgentDesktop
from agent_console.widgets import CustomerCardView
from cti.app.cli import main
from cti.bus.memory import InMemoryBus
from cti.models import CALLER_NAME_MAX_CHARS, AgentState
from cti.protocol import CallOffered
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_desktop import AGENT, known_pop, ready
from tests.agent_console.test_desktop_call_control import open_center
from tests.agent_console.test_script_panel import call_script
from tests.harness import settle

pytestmark = pytest.mark.console


@pytest.mark.integration
@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_lines_caller_id_name_shows_on_an_unknown_callers_card(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    async with open_center(tmp_path) as center:
        offers: list[CallOffered] = []
        app = AgentDesktop(center.bus, "1001", queues=["general"])
        async with app.run_test(size=size) as pilot:
            await pilot.press("enter")
            await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
            await pilot.press("r")
            await settle(pilot, lambda: app.agent_state is AgentState.READY)
            center.trunk.ring("+8613912345678", caller_name="WANG JUN\x1b[31m")
            await settle(pilot, lambda: app.offer is not None)
            assert app.offer is not None
            offers.append(app.offer)
            card = str(app.query_one("#pop-card", CustomerCardView).render())
        assert "New caller" in card
        assert "WANG JUN" in card
        assert "(caller ID)" in card
        assert "\x1b" not in card  # the line's text is cleaned before it is shown
        assert offers[0].pop.caller_name.startswith("WANG JUN")


async def test_a_long_caller_id_name_is_cut_not_refused(tmp_path: Path) -> None:
    from cti.config import load_config
    from cti.engine.screen_pop import identify

    class NoOne:
        async def find_by_number(self, e164: str) -> list[object]:
            return []

    caller = await identify(NoOne(), "+8613912345678", load_config(), "W" * 500)  # type: ignore[arg-type]
    assert len(caller.caller_name) == CALLER_NAME_MAX_CHARS
    assert (await identify(NoOne(), "", load_config(), "  ")).caller_name == ""  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_an_agent_with_no_name_is_read_as_its_id(size: tuple[int, int]) -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    pop = known_pop("c1").model_copy(update={"script": call_script("inbound_service_en")})
    async with FakeEngine(bus) as engine, app.run_test(size=size) as pilot:
        await ready(pilot)
        await engine.offer("c1", pop)  # no agent name configured: the offer has none
        await settle(pilot, lambda: app.script_run is not None)
        run = app.script_run
        assert run is not None
        said = "".join(span.text for span in run.text())
    assert "agent.name" not in said
    assert f"this is {AGENT}" in said


def test_config_check_warns_of_an_agent_with_no_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "center.toml"
    path.write_text(
        '[[agents]]\nid = "1001"\nname = "王伟"\n[[agents]]\nid = "1002"\n', encoding="utf-8"
    )
    assert main(["config", "--check", str(path)]) == 0
    err = capsys.readouterr().err
    assert "agent '1002' has no name" in err
    assert "1001" not in err
