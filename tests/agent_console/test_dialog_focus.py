"""A dialog opened right after another closed keeps its field's focus: the first one's
way back (the focus returned where it was) must not take it from the second, or the
letters typed next go to the desk's keys ("b" of "billing" opened the callback form)."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Static

from agent_console.dialogs import Prompt, open_dialog

pytestmark = pytest.mark.console


class _Desk(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("the desk", id="desk")


async def test_a_dialog_opened_as_another_closes_keeps_the_focus() -> None:
    app = _Desk()
    async with app.run_test() as pilot:
        first = Prompt("Find", "a name")
        open_dialog(app, first)
        await pilot.pause()
        first.dismiss(None)
        second = Prompt("Transfer to", "a queue or an agent")
        open_dialog(app, second)  # before the first one's refocus has run
        await pilot.pause()
        await pilot.pause()
        assert app.screen is second
        assert isinstance(app.focused, Input)
        await pilot.press(*"billing")
        assert app.screen.query_one(Input).value == "billing"
