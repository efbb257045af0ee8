"""Every key the desk's footer shows is whole at 80x24 and 120x40 (issue 21: the real
terminal showed "k Con", "t New it", "d Di"): a key with no room is hidden, never cut,
and a desk key hidden is in the "more keys" palette. Idle, offered, talking, wrap-up,
the customer search (its keys live), a form over the desk and the palette itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from textual.actions import parse
from textual.app import App
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import OptionList

from agent_console.customer_search import CustomerSearchScreen
from agent_console.desk_footer import DeskFooter, FooterKey
from agent_console.desk_palette import PALETTE
from agent_console.desktop import AgentDesktop
from agent_console.dialogs import FormScreen
from cti.bus.memory import InMemoryBus
from cti.protocol import CustomerDetails
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_desktop import AGENT, known_pop, ready
from tests.harness import settle

pytestmark = pytest.mark.console

SIZES = [(80, 24), (120, 40)]
IN_PALETTE = frozenset(action for action, _key, _title, _help in PALETTE)


@dataclass
class Seen:
    """What the bottom line of the terminal shows of the footer's keys."""

    shown: dict[str, str]  # action -> text drawn for its key
    hidden: list[str]  # actions of the keys with no room
    cut: list[str]  # what is wrong: a label not drawn whole


def footer_of(app: App[Any]) -> DeskFooter:
    """The footer drawn at the bottom (a dialog's screen lets the desk's show through)."""
    for screen in reversed(app.screen_stack):
        for footer in screen.query(DeskFooter):
            assert isinstance(footer, DeskFooter)
            return footer
    raise AssertionError(f"no DeskFooter under {app.screen!r}")


def seen(app: App[Any]) -> Seen:
    footer = footer_of(app)
    line = app.screen._compositor.render_strips()[-1].text
    keys = list(footer.query_children(FooterKey))
    more = [key for key in keys if key.has_class("-command-palette")]
    assert len(more) == 1, "the 'more keys' key is at the right"
    assert line.rstrip().endswith("^p more keys"), line
    edge = more[0].region.x
    bindings = {
        b.binding.action: b.binding.description for b in footer.screen.active_bindings.values()
    }
    out = Seen({}, [], [])
    for key in keys:
        if key in more:
            continue
        if not key.display:
            out.hidden.append(key.action)
            continue
        label = f"{key.key_display} {bindings[key.action]}"
        region = key.region
        drawn = line[region.x : region.right].strip()
        out.shown[key.action] = drawn
        if region.width == 0 or region.right > edge or drawn != label:
            out.cut.append(f"{label!r} drawn as {drawn!r} at {region} (room to {edge})")
    return out


def check(app: App[Any], where: str) -> Seen:
    now = seen(app)
    assert not now.cut, f"{where}: {now.cut} in {app.screen._compositor.render_strips()[-1].text}"
    action = [parse(a)[1] for a in now.hidden]
    assert set(action) <= IN_PALETTE, f"{where}: hidden and not in the palette: {action}"
    return now


async def search_with_details(pilot: Pilot[Any], app: AgentDesktop) -> CustomerSearchScreen:
    """The search screen with a customer chosen: its attach/new item/escalate/dial keys
    live, the results list focused (as the agent has it after Enter on a result)."""
    await pilot.press("f")
    await settle(pilot, lambda: isinstance(app.screen, CustomerSearchScreen))
    screen = app.screen
    assert isinstance(screen, CustomerSearchScreen)
    pop = known_pop("c1")
    assert pop.customer is not None
    screen.set_details(
        CustomerDetails(
            agent_id=AGENT,
            command_id="x1",
            customer=pop.customer,
            service_items=pop.service_items,
        )
    )
    screen.query_one("#search-results", OptionList).focus()
    await pilot.pause()
    return screen


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_label_in_the_footer_is_whole(size: tuple[int, int]) -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    hidden: dict[str, list[str]] = {}
    async with FakeEngine(bus) as engine, app.run_test(size=size) as pilot:
        await ready(pilot)
        await pilot.pause()
        hidden["idle"] = check(app, "idle").hidden
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette))
        check(app, "palette")
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is app.screen_stack[0])
        await engine.offer("c1", known_pop("c1"))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.pause()
        hidden["offer"] = check(app, "offer").hidden
        await pilot.press("a")
        await settle(pilot, lambda: app.view == "talking")
        await pilot.pause()
        hidden["talking"] = check(app, "talking").hidden
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        await pilot.pause()
        check(app, "new item form")
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is app.screen_stack[0])
        screen = await search_with_details(pilot, app)
        shown = check(app, "search").shown  # its own keys are in no palette: all shown
        assert set(shown) >= {"close", "focus_query", "attach", "new_item", "escalate", "dial"}
        screen.dismiss(None)
        await settle(pilot, lambda: app.screen is app.screen_stack[0])
        await engine.caller_hangs_up("c1")
        await settle(pilot, lambda: app.view == "wrap_up")
        await pilot.pause()
        hidden["wrap_up"] = check(app, "wrap-up").hidden
    if size == (80, 24):  # the width the walk cut labels at: some keys go to the palette
        assert hidden["talking"], hidden
        assert hidden["wrap_up"], hidden


async def test_a_key_hidden_at_80_columns_comes_back_when_the_terminal_widens() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus), app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.pause()
        narrow = check(app, "idle at 80")
        assert "callback" in narrow.hidden
        await pilot.resize_terminal(140, 24)
        await pilot.pause()
        wide = check(app, "idle at 140")
        assert not wide.hidden
        assert wide.shown["callback"] == "b Callback"
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert check(app, "idle at 80 again").hidden == narrow.hidden
