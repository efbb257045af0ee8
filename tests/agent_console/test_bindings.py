"""Every key a console shows resolves to an action that exists: for every app, screen,
dialog and widget of the consoles, and for the footer of each view of the desk."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from textual.actions import parse
from textual.binding import Binding
from textual.dom import DOMNode
from textual.pilot import Pilot

import agent_console
from agent_console.desktop import AgentDesktop
from agent_console.wallboard import Wallboard
from cti.bus.memory import InMemoryBus
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_desktop import AGENT, known_pop, ready
from tests.harness import settle

pytestmark = pytest.mark.console


def _console_classes() -> list[type[DOMNode]]:
    found: list[type[DOMNode]] = []
    for info in pkgutil.iter_modules(agent_console.__path__, "agent_console."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, DOMNode)
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return found


def _bindings(cls: type[DOMNode]) -> list[Binding]:
    """The bindings a class declares, its bases' included (Textual merges them)."""
    out: list[Binding] = []
    for klass in cls.__mro__:
        for binding in vars(klass).get("BINDINGS", ()):
            out.append(binding if isinstance(binding, Binding) else Binding(*binding))
    return out


def _has_action(target: object, name: str) -> bool:
    """Textual runs ``_action_<name>`` or ``action_<name>``."""
    return any(callable(getattr(target, f"{p}action_{name}", None)) for p in ("_", ""))


def _unresolved(node: object, binding: Binding) -> str | None:
    namespace, name, _ = parse(binding.action)
    target = node
    if namespace == "app":
        target = getattr(node, "app", node)
    elif namespace == "screen":
        target = getattr(node, "screen", node)
    if _has_action(target, name):
        return None
    return f"{type(node).__name__}: {binding.key} -> {binding.action}"


def test_the_consoles_have_classes_with_keys() -> None:
    names = {cls.__name__ for cls in _console_classes() if _bindings(cls)}
    assert {"AgentDesktop", "Wallboard", "ChoiceDialog", "Prompt", "FormScreen"} <= names


@pytest.mark.parametrize("cls", _console_classes(), ids=lambda cls: cls.__name__)
def test_every_key_of_a_class_names_an_action_it_has(cls: type[DOMNode]) -> None:
    missing = [
        problem
        for binding in _bindings(cls)
        if not parse(binding.action)[0]  # namespaced: checked on screen (below)
        if (problem := _unresolved(cls, binding)) is not None
    ]
    assert not missing


def _shown_unresolved(pilot: Pilot[Any]) -> list[str]:
    """The footer's keys (shown, on this screen) that name no action of their node."""
    screen = pilot.app.screen
    return [
        problem
        for active in screen.active_bindings.values()
        if active.binding.show
        if (problem := _unresolved(active.node, active.binding)) is not None
    ]


async def test_every_key_in_the_desks_footer_resolves_in_every_view() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(100, 30)) as pilot:
        views: dict[str, list[str]] = {"login": _shown_unresolved(pilot)}
        await ready(pilot)
        views["idle"] = _shown_unresolved(pilot)
        await engine.offer("c1", known_pop("c1"))
        await settle(pilot, lambda: app.view == "offer")
        views["offer"] = _shown_unresolved(pilot)
        await pilot.press("a")
        await settle(pilot, lambda: app.view == "talking")
        views["talking"] = _shown_unresolved(pilot)
        await pilot.press("w")  # a dialog over the desk
        await pilot.pause()
        views["transfer dialog"] = _shown_unresolved(pilot)
        await pilot.press("escape")
        await pilot.pause()
        await engine.caller_hangs_up("c1")
        await settle(pilot, lambda: app.view == "wrap_up")
        views["wrap_up"] = _shown_unresolved(pilot)
        await pilot.press("f")  # the customer search screen
        await pilot.pause()
        views["search"] = _shown_unresolved(pilot)
    assert views == {view: [] for view in views}


async def test_every_key_in_the_wallboards_footer_resolves() -> None:
    app = Wallboard(InMemoryBus())
    async with app.run_test(size=(100, 30)) as pilot:
        shown = {"agents": _shown_unresolved(pilot)}
        await pilot.press("v")
        await pilot.pause()
        shown["calls"] = _shown_unresolved(pilot)
        await pilot.press("v")
        await pilot.pause()
        shown["campaigns"] = _shown_unresolved(pilot)
    assert shown == {view: [] for view in shown}


def _apps() -> list[type[DOMNode]]:
    from textual.app import App

    return [cls for cls in _console_classes() if issubclass(cls, App)]


@pytest.mark.parametrize("cls", _console_classes(), ids=lambda cls: cls.__name__)
def test_every_namespaced_key_names_an_action_of_its_namespace(cls: type[DOMNode]) -> None:
    """``app.x`` names an action of the consoles' apps; ``screen.x`` of the screen class."""
    from textual.screen import Screen

    missing = []
    for binding in _bindings(cls):
        namespace, name, _ = parse(binding.action)
        if namespace == "app":
            hosts = _apps()
        elif namespace == "screen":
            hosts = [cls] if issubclass(cls, Screen) else []
        else:
            continue
        if not hosts or not all(_has_action(h, name) for h in hosts):
            missing.append(f"{cls.__name__}: {binding.key} -> {binding.action}")
    assert not missing


def test_every_palette_entry_names_a_desk_action_and_the_key_that_runs_it() -> None:
    from agent_console.desk_palette import PALETTE

    keys = {parse(b.action)[1]: b.key_display or b.key for b in _bindings(AgentDesktop) if b.show}
    wrong = [
        f"{action} ({key}): {keys.get(action)!r}"
        for action, key, _title, _help in PALETTE
        if not callable(getattr(AgentDesktop, f"action_{action}", None)) or keys.get(action) != key
    ]
    assert not wrong


async def test_every_key_in_the_footer_of_the_desks_dialogs_resolves() -> None:
    """The footers over the desk: the Not ready reasons, a new service item's form, the
    command palette."""
    from agent_console.dialogs import ChoiceDialog, FormScreen

    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        views: dict[str, list[str]] = {}
        await pilot.press("ctrl+p")
        await pilot.pause()
        views["palette"] = _shown_unresolved(pilot)
        await pilot.press("escape")
        await pilot.pause()
        await engine.offer("c1", known_pop("c1"))
        await settle(pilot, lambda: app.view == "offer")
        await pilot.press("a")
        await settle(pilot, lambda: app.view == "talking")
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        views["new item"] = _shown_unresolved(pilot)
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, FormScreen))
        await engine.caller_hangs_up("c1")
        await settle(pilot, lambda: app.view == "wrap_up")
        await pilot.press("1")
        await settle(pilot, lambda: app.view == "idle")
        app.model.state = app.model.state.model_copy(  # type: ignore[union-attr]
            update={"not_ready_reasons": ("lunch", "training")}
        )
        await pilot.press("n")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        views["not ready"] = _shown_unresolved(pilot)
    assert views == {view: [] for view in views}
