"""Customer text is never markup: every desk screen and the wallboard, walked with Pilot
against the real engine and store, show names such as ``[/bold]`` (which crashed the
info screen), ``[link=...]`` (which became a clickable link) and wide Chinese names
exactly as stored, with no link anywhere on the screen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Select

from agent_console.customer_search import CustomerSearchScreen
from agent_console.desktop import AgentDesktop
from agent_console.dialogs import ChoiceDialog, CustomerInfoScreen, FormScreen
from agent_console.wallboard import Wallboard
from agent_console.widgets import CustomerCardView
from cti.customers.base import CustomerBase
from cti.models import AgentState, Customer, PhoneNumber, Segment, ServicePriority
from tests.harness import Center, center_config, engine_center, settle

pytestmark = [pytest.mark.console, pytest.mark.integration, pytest.mark.security]

NUMBER = "+8613800000001"
CLOSER = "[/bold]"
LINK = "[link=https://x]y[/link]"
WIDE = "欧阳[b]雨桐"
ITEM = "[b]发票[/b] [/]"
NEWCOMER = "[red]李四[/red] [/link]"
SCRIPT = """\
[script]
name = "Greet"
version = "1"
direction = "inbound"
start = "hello"

[nodes.hello]
kind = "say"
text = "Hello {customer.name}"
next = "bye"

[nodes.bye]
kind = "end"
"""


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    phone = (PhoneNumber(raw="138 0000 0001", e164=NUMBER),)
    customers = [
        Customer(id=1, name=CLOSER, phones=phone, value=90.0, segment=Segment.GOLD,
                 company=LINK, time_zone="Asia/Shanghai"),
        Customer(id=2, name=LINK, phones=phone, value=30.0, segment=Segment.BRONZE),
        Customer(id=3, name=WIDE, phones=(PhoneNumber(raw="+8613800000003",
                 e164="+8613800000003"),), value=10.0, address=CLOSER),
    ]  # fmt: skip
    script = tmp_path / "greet.toml"
    script.write_text(SCRIPT, encoding="utf-8")
    config = center_config(
        [{"name": "general", "wrap_up_s": 600, "script": str(script)}],
        engine={"status_interval_s": 3600.0},
        access={"roles": {"supervisor": {"members": ["1001"]}}},
    )
    async with engine_center(tmp_path / "cti.db", config=config, customers=customers) as center:
        await CustomerBase(center.store).open_service_item(1, ITEM, now=1.7e9, assignee=LINK)
        yield center


def screen_text(app: App[Any]) -> str:
    """What the terminal shows now, line by line (every layer of the screen)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def links(app: App[Any]) -> list[str]:
    return [
        segment.style.link
        for strip in app.screen._compositor.render_strips()
        for segment in strip
        if segment.style is not None and segment.style.link
    ]


async def shows(pilot: Pilot[Any], *texts: str) -> None:
    """Every text shows literally on the screen, and nothing is a link."""
    app = pilot.app
    try:
        await settle(pilot, lambda: all(t in screen_text(app) for t in texts))
    except AssertionError:
        print(screen_text(app))
        raise
    assert links(app) == []


def notices(app: App[Any]) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_every_desk_screen_shows_customer_text_literally(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        await pilot.press("r")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)

        center.trunk.ring("138 0000 0001")  # the offer: the card of customer 1
        await settle(pilot, lambda: app.offer is not None)
        await shows(pilot, f"Name      {CLOSER}", LINK)

        await pilot.press("c")  # who is calling? both holders listed
        await settle(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await shows(pilot, CLOSER, LINK[:12])
        await pilot.press("2")
        card = app.query_one(CustomerCardView)
        await settle(pilot, lambda: card.details is not None)
        assert f"The caller is {LINK}." in notices(app)
        await shows(pilot, f"Name      {LINK}")

        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        await shows(pilot, "Script · Greet 1", "Hello [")  # the script greets the caller
        await pilot.press("enter")  # the script's end
        await shows(pilot, "Path: hello › bye")
        app.set_focus(None)

        await pilot.press("i")  # the customer in full, the name as the box's title
        await settle(pilot, lambda: isinstance(app.screen, CustomerInfoScreen))
        await shows(pilot, f"─ {LINK} ─", f"Name      {LINK}  (#2)")
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, CustomerInfoScreen))

        await pilot.press("f")  # search: results, details titled by the name
        await settle(pilot, lambda: isinstance(app.screen, CustomerSearchScreen))
        search = app.screen
        search.query_one("#search-query", Input).value = NUMBER
        await pilot.press("enter")
        results = search.query_one("#search-results", OptionList)
        await settle(pilot, lambda: results.option_count == 2)
        await pilot.press("enter")  # the first: customer 1, named [/bold]
        await shows(pilot, f"─ {CLOSER} ─", f"Name      {CLOSER}  (#1)", ITEM)

        await pilot.press("t")  # a new item from the search: the form's title
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        await shows(pilot, f"New service item · {CLOSER}")
        app.screen.query_one("#f-title", Input).value = NEWCOMER
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: "Service item saved." in notices(app))

        await pilot.press("u")  # escalate: the items offered by their titles
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        await shows(pilot, f"Escalate · {CLOSER}")
        select = app.screen.query_one("#f-item", Select)
        await shows(pilot, f"#1 {ITEM}")
        select.focus()
        await pilot.press("enter")  # the drop-down: every title as typed
        await shows(pilot, f"#1 {ITEM}")
        await pilot.press("escape", "escape")
        await settle(pilot, lambda: isinstance(app.screen, CustomerSearchScreen))

        search.query_one("#search-query", Input).value = "欧阳"
        search.query_one("#search-query", Input).focus()
        await pilot.press("enter")
        await settle(pilot, lambda: results.option_count == 1)
        await pilot.press("enter")
        await shows(pilot, f"─ {WIDE} ─", f"Name      {WIDE}  (#3)", f"Address   {CLOSER}")
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, CustomerSearchScreen))

        await pilot.press("h")  # wrap-up, and the callback form
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
        await shows(pilot, "Wrap-up · [")
        await pilot.press("b")
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        await shows(pilot, "Callback")
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, FormScreen))
        await pilot.press("1")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)

        center.trunk.ring("139 0000 0009")  # a new caller, saved under a hostile name
        await settle(pilot, lambda: app.offer is not None and app.offer.pop.customer is None)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        app.screen.query_one("#f-name", Input).value = NEWCOMER
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: f"{NEWCOMER} is a customer now." in notices(app))
        await shows(pilot, f"Name      {NEWCOMER}")
    [item] = [i for i in await CustomerBase(center.store).service_items(1) if i.id == 2]
    assert (item.title, item.priority) == (NEWCOMER, ServicePriority.NORMAL)


async def test_the_wallboard_shows_waiting_customers_literally(center: Center) -> None:
    app = Wallboard(center.bus, "sup1", agent_names={"1001": CLOSER}, queues=["general"])
    async with app.run_test(size=(120, 30)) as pilot:
        agents: DataTable[Any] = app.query_one("#agents", DataTable)
        await settle(pilot, lambda: agents.row_count == 1)
        await shows(pilot, f"1001 {CLOSER}")
        center.trunk.ring("+8613800000003")  # nobody is ready: it waits
        await settle(pilot, lambda: center.service.router.waiting("general") == 1)
        await center.service.publish_status()
        await pilot.press("v")  # the waiting calls
        calls: DataTable[Any] = app.query_one("#calls", DataTable)
        await settle(pilot, lambda: calls.row_count == 1)
        await shows(pilot, WIDE)
