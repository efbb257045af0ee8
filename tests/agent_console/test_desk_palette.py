"""The desk's command palette (issue 21): every key of the desk is in it, and what it says
of an action that cannot be used now is the desk's real state (never "only during a call"
during a call)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.actions import parse
from textual.app import SystemCommand
from textual.binding import Binding
from textual.pilot import Pilot

from agent_console.desk_model import _WHERE
from agent_console.desk_palette import PALETTE, desk_commands
from agent_console.desktop import AgentDesktop
from cti.bus.memory import InMemoryBus
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_desktop import AGENT, known_pop, ready
from tests.harness import settle

pytestmark = pytest.mark.console

NOT_NOW = " · not now"


def test_every_key_of_the_desk_is_in_the_palette_with_its_key() -> None:
    palette = {action: key for action, key, _title, _help in PALETTE}
    missing = []
    for binding in AgentDesktop.BINDINGS:
        assert isinstance(binding, Binding)
        name = parse(binding.action)[1]
        if name == "command_palette":
            continue  # the palette itself
        shown = binding.key_display or binding.key
        if name not in palette or (palette[name] != shown and binding.show):
            missing.append(f"{binding.key} -> {binding.action}")
    assert not missing


def _commands(app: AgentDesktop) -> dict[str, SystemCommand]:
    return {c.title: c for c in desk_commands(app)}


def _check(app: AgentDesktop) -> list[str]:
    """Every entry says what check_action says, and a reason never names the view the
    desk is in as the one it needs."""
    wrong: list[str] = []
    titles = _commands(app)
    view = app.view
    for action, key, title, _help in PALETTE:
        if action == "disposition":
            continue  # per disposition in wrap-up: checked by the tests
        usable = bool(app.check_action(action, ()))
        entry = titles.get(f"{title} ({key})") or titles.get(f"{title} ({key}){NOT_NOW}")
        if entry is None:
            wrong.append(f"{action}: missing")
            continue
        if usable == entry.title.endswith(NOT_NOW):
            wrong.append(f"{action}: usable={usable} but {entry.title!r}")
        reason = entry.help or ""
        if not usable and (
            f"Only {_WHERE[view]}" in reason or reason.startswith("Only .") or not reason
        ):
            wrong.append(f"{action} in {view}: {reason!r}")
    return wrong


async def _states(pilot: Pilot[Any], engine: FakeEngine) -> dict[str, dict[str, SystemCommand]]:
    app = pilot.app
    assert isinstance(app, AgentDesktop)
    seen: dict[str, dict[str, SystemCommand]] = {}
    problems: dict[str, list[str]] = {}
    await ready(pilot)
    seen["idle"], problems["idle"] = _commands(app), _check(app)
    await engine.offer("c1", known_pop("c1"))
    await settle(pilot, lambda: app.view == "offer")
    seen["offer"], problems["offer"] = _commands(app), _check(app)
    await pilot.press("a")
    await settle(pilot, lambda: app.view == "talking" and app.model.pending is None)
    seen["talking"], problems["talking"] = _commands(app), _check(app)
    await engine.caller_hangs_up("c1")
    await settle(pilot, lambda: app.view == "wrap_up")
    seen["wrap_up"], problems["wrap_up"] = _commands(app), _check(app)
    assert problems == {view: [] for view in problems}
    return seen


async def test_each_entry_is_usable_when_its_key_is_and_says_the_real_reason() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(120, 40)) as pilot:
        seen = await _states(pilot, engine)
    idle, offer, talking, wrap_up = seen["idle"], seen["offer"], seen["talking"], seen["wrap_up"]
    assert idle["Ready (r) · not now"].help == "You are Ready already."
    assert "Find a customer (f)" in idle
    assert idle["Caller details (i) · not now"].help.startswith("No call in hand")
    assert idle["Disposition (1-9) · not now"].help == "Only in wrap-up, after the call."
    assert idle["Script (s) · not now"].help == "Only during a call or in wrap-up."
    assert "Answer (a)" in offer
    assert offer["Callback (b) · not now"].help == "A callback is scheduled during or after a call."
    for title in ("Find a customer (f)", "Caller details (i)", "New service item (t)",
                  "Callback (b)", "Transfer (w)", "Consult (k)", "Not ready (n)"):  # fmt: skip
        assert title in talking, sorted(talking)
    assert talking["Hand over (y) · not now"].help == "Only while you consult another agent (k)."
    assert talking["Join all (conference) (j) · not now"].help == (
        "Only while you consult another agent (k)."
    )
    assert talking["Script (s) · not now"].help == "This call has no script."
    assert talking["Escalate an item (u) · not now"].help.startswith("The caller has no open")
    assert "Disposition 1: sale (1)" in wrap_up
    assert "Disposition 4: complaint (4)" in wrap_up
    assert "Callback (b)" in wrap_up
    assert "Quit (q)" in idle
    assert not [t for t in idle if t == "Quit"]  # Textual's own, replaced by the desk's


async def test_choosing_a_disposition_in_the_palette_ends_wrap_up() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await engine.offer("c1", known_pop("c1"))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.press("a")
        await settle(pilot, lambda: app.view == "talking")
        await engine.caller_hangs_up("c1")
        await settle(pilot, lambda: app.view == "wrap_up")
        _commands(app)["Disposition 2: no sale (2)"].callback()
        await settle(pilot, lambda: app.view == "idle")
    [done] = [c for c in engine.commands if type(c).__name__ == "CompleteWrapUp"]
    assert getattr(done, "disposition", None) == "no sale"
