"""The wallboard's campaign controls, pressed with Pilot, reach the engine's dialer:
the campaigns view shows each campaign's published status; ``s`` starts and pauses,
``d`` changes the dial mode, ``r`` the power ratio; each lands in the store and in the
running dialer, and the engine's answer is shown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList, TabbedContent

from agent_console.wallboard import Wallboard
from agent_console.wallboard_checks import ratio_problem
from agent_console.wallboard_model import ActionOutcome
from agent_console.wallboard_tables import campaign_cells
from cti.bus.memory import InMemoryBus
from cti.clock import wall_time
from cti.config import load_config
from cti.engine.campaigns import CampaignDesk
from cti.engine.dialer import DialingLine
from cti.engine.service import EngineService
from cti.protocol import CampaignStatus
from cti.store.campaigns import CampaignSettings, CampaignStore
from cti.store.database import Store
from cti.store.leads import parse_leads
from queue_engine.pacing import DialMode
from telephony_adapters.sim import SimTrunk
from tests.harness import engine_center, settle

pytestmark = [pytest.mark.console, pytest.mark.dialer]


@dataclass
class Dialer:
    service: EngineService
    desk: CampaignDesk
    campaigns: CampaignStore
    bus: InMemoryBus


@pytest.fixture
async def dialer(tmp_path: Path) -> AsyncIterator[Dialer]:
    store = await Store.open(tmp_path / "cti.db")
    campaigns = CampaignStore(store)
    for name in ("春季回访", "winter"):
        await campaigns.create_campaign(
            CampaignSettings(name=name, mode=DialMode.PROGRESSIVE, queue="outbound"), wall_time()
        )
        leads = parse_leads("number\n13800000001\n13800000002\n", "CN")
        await campaigns.import_leads(name, "list1", leads, wall_time())
    await campaigns.set_campaign_state("春季回访", "paused")
    config = load_config(
        overrides={
            "queues": [{"name": "general"}, {"name": "outbound"}],
            "engine": {"status_interval_s": 3600.0},
        }
    )
    line = DialingLine(SimTrunk())
    try:
        async with engine_center(
            store, config=config, agents={"1001": ["outbound"]}, lines=[line]
        ) as center:
            service = center.service
            # The dialer's desk as running_engine(dialer_poll_s=...) runs it, with its
            # status published five times a second.
            desk = CampaignDesk(service, campaigns, [line], poll_s=0.2, status_s=0.2)
            service.campaign_control = desk.control
            running = asyncio.create_task(desk.run())
            try:
                yield Dialer(service, desk, campaigns, center.bus)
            finally:
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
    finally:
        await store.close()


def outcomes(app: Wallboard) -> list[ActionOutcome]:
    return [entry for entry in app.model.log if isinstance(entry, ActionOutcome)]


async def highlight_campaign(pilot: Pilot[Any], name: str) -> None:
    app = pilot.app
    table: DataTable[Any] = app.query_one("#campaigns", DataTable)
    # Shown as the board shows a view: with the focus in it. The pane that gets the
    # focus becomes the active one, so a bare ``active =`` here would lose to the
    # Agents table's focus still on its way at start.
    app.query_one(TabbedContent).active = "campaigns-pane"
    table.focus()
    await settle(pilot, lambda: name in {row.key.value for row in table.ordered_rows})
    table.move_cursor(row=table.get_row_index(name), animate=False)
    await pilot.pause()
    assert app.query_one(TabbedContent).active == "campaigns-pane"


async def test_start_pause_mode_and_ratio_reach_the_dialer(dialer: Dialer) -> None:
    app = Wallboard(dialer.bus, "sup1", queues=["general", "outbound"])
    name = "春季回访"
    async with app.run_test(size=(120, 30)) as pilot:
        await highlight_campaign(pilot, name)
        table: DataTable[Any] = app.query_one("#campaigns", DataTable)
        assert str(table.get_cell(name, "campaign")) == name  # wide name, as text
        assert str(table.get_cell(name, "state")) == "paused"
        assert str(table.get_cell(name, "mode")) == "progressive"

        await pilot.press("s")  # start
        await settle(pilot, lambda: len(outcomes(app)) == 1)
        assert outcomes(app)[0].ok, outcomes(app)[0].error
        assert (await dialer.campaigns.campaign(name)).state == "running"
        runner = dialer.desk.running[name].runner
        assert not runner.paused
        await settle(pilot, lambda: str(table.get_cell(name, "state")) == "running")

        await pilot.press("s")  # pause
        await settle(pilot, lambda: len(outcomes(app)) == 2)
        assert outcomes(app)[1].ok
        assert outcomes(app)[1].description == f"campaign {name} paused"
        assert (await dialer.campaigns.campaign(name)).state == "paused"
        assert runner.paused

        await pilot.press("d")  # dial mode: choose power
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        choices = [str(options.get_option_at_index(i).prompt) for i in range(3)]
        assert choices == ["1 preview", "2 power", "3 predictive"]  # numbered: 1-9 choose
        await pilot.press("down", "enter")
        await settle(pilot, lambda: len(outcomes(app)) == 3)
        assert outcomes(app)[2].ok, outcomes(app)[2].error
        assert runner.settings.mode is DialMode.POWER
        assert (await dialer.campaigns.campaign(name)).settings.mode is DialMode.POWER

        await pilot.press("r")  # power ratio
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *"25", "enter")  # out of range: refused here
        await pilot.pause()
        assert len(outcomes(app)) == 3  # nothing sent
        await pilot.press("ctrl+a", "ctrl+k", *"3.5", "enter")
        await settle(pilot, lambda: len(outcomes(app)) == 4)
        assert outcomes(app)[3].ok, outcomes(app)[3].error
        assert runner.pacer.settings.power_ratio == 3.5
        stored = (await dialer.campaigns.campaign(name)).settings
        assert stored.pacing.power_ratio == 3.5
        await settle(pilot, lambda: str(table.get_cell(name, "mode")) == "power 3.5")
        # the other campaign was never touched
        assert (await dialer.campaigns.campaign("winter")).state == "stopped"


async def test_a_mode_the_line_cannot_dial_is_refused_on_the_board(dialer: Dialer) -> None:
    modem_like = DialingLine(
        SimTrunk("modem"), max_lines=1, modes=frozenset({DialMode.PROGRESSIVE})
    )
    dialer.desk.lines = [modem_like]
    app = Wallboard(dialer.bus, "sup1")
    async with app.run_test(size=(120, 30)) as pilot:
        await highlight_campaign(pilot, "winter")
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("enter")  # the first choice: preview
        await settle(pilot, lambda: len(outcomes(app)) == 1)
        refused = outcomes(app)[0]
        assert not refused.ok
        assert "cannot dial in preview mode" in refused.error
        settings = (await dialer.campaigns.campaign("winter")).settings
        assert settings.mode is DialMode.PROGRESSIVE  # unchanged


def test_campaign_cells_judge_the_abandon_rate_against_the_cap() -> None:
    status = CampaignStatus(
        campaign="[b]x[/b]", state="running", mode="power", power_ratio=2.0, queue="o",
        dialling=False, abandon_rate_today=0.031, abandon_rate_30_days=0.026,
        problem="no line", at_wall=0.0,
    )  # fmt: skip
    cells = campaign_cells(status)
    assert cells[0].plain == "[b]x[/b]"  # never markup
    assert cells[1].plain == "running (not dialling)"
    assert cells[2].plain == "power 2"
    assert (cells[5].plain, cells[5].style) == ("3.1%", "bold red")  # over the cap
    assert (cells[6].plain, cells[6].style) == ("2.6%", "yellow")  # near it
    assert cells[9].plain == "no line"
    assert ratio_problem("2.5") is None
    assert "out of range" in (ratio_problem("0.5") or "")
    assert "not a number" in (ratio_problem("two") or "")
