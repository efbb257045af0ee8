"""The script panel on its own (a small host app) and in the desk against the fake engine:
text with safe variables, numbered choices, typed fields with inline checks, back, path,
the key map in the footer, and an 80x24 snapshot with a Chinese customer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Footer, Input, OptionList

from agent_console.desktop import AgentDesktop
from agent_console.script_panel import ScriptPanel, field_hint
from agent_console.widgets import DispositionPicker
from cti.bus.memory import InMemoryBus
from cti.models import AgentState
from cti.protocol import CallScript, CompleteWrapUp, ScheduleCallback, ScreenPop
from scripts_engine.catalog import read_script_text, text_sha256
from scripts_engine.expr import Scalar
from scripts_engine.model import InputNode, Script
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_desktop import (
    AGENT,
    CHINESE_NAME,
    FixedClock,
    known_pop,
    ready,
)
from tests.harness import settle

pytestmark = pytest.mark.console


def shipped(name: str) -> Script:
    loaded, problems = read_script_text(name)
    assert loaded is not None, problems
    return loaded.script


def call_script(name: str, *, damage: bool = False) -> CallScript:
    loaded, _ = read_script_text(name)
    assert loaded is not None
    text = loaded.text.replace("Goodbye", "Bye") if damage else loaded.text
    return CallScript(
        name=loaded.name, version=loaded.version, sha256=loaded.sha256, file=loaded.file, text=text
    )


class Host(App[None]):
    """The panel alone, as ``cti script preview`` and the desk embed it."""

    def __init__(self, script: Script, context: dict[str, Scalar]) -> None:
        super().__init__()
        self.script = script
        self.context = context
        self.moves = 0

    def compose(self) -> ComposeResult:
        yield ScriptPanel(id="script")
        yield Footer()

    def on_mount(self) -> None:
        panel = self.query_one(ScriptPanel)
        panel.start(self.script, self.context)
        panel.focus_script()

    def on_script_panel_moved(self, event: ScriptPanel.Moved) -> None:
        self.moves += 1

    @property
    def panel(self) -> ScriptPanel:
        return self.query_one(ScriptPanel)


def node(app: Host) -> str:
    state = app.panel.state
    assert state is not None
    return state.node_id


def shown(app: App[Any], selector: str) -> str:
    widget = app.query_one(selector)
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def footer_keys(app: App[Any]) -> dict[str, str]:
    """Key (as displayed) -> description of the bindings the footer shows as enabled."""
    out = {}
    for active in app.screen.active_bindings.values():
        binding = active.binding
        if binding.show and active.enabled:
            out[app.get_key_display(binding)] = binding.description
    return out


SURVEY_CONTEXT: dict[str, Scalar] = {"customer.name": "[bold]Ann[/bold]", "customer.email": ""}


# --- the panel alone -----------------------------------------------------------------


async def test_text_fills_variables_as_plain_text_with_visible_placeholders() -> None:
    app = Host(shipped("outbound_survey"), SURVEY_CONTEXT)
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        text = shown(app, "#script-text")
        assert "Hello [bold]Ann[/bold], this is ‹agent.name?› calling about" in text
        assert "‹campaign.product?›" in text
        assert "end of script" not in text


async def test_choices_on_number_keys_and_the_footer_says_so() -> None:
    app = Host(shipped("outbound_survey"), SURVEY_CONTEXT)
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        assert footer_keys(app).get("1-9") is None  # a say node: nothing to choose
        assert footer_keys(app)["⏎"] == "Next"
        await pilot.press("enter")
        assert node(app) == "consent"
        assert footer_keys(app)["1-9"] == "Choose"
        choices = shown(app, "#script-choices")
        assert "1 Yes" in choices
        assert "3 No, and do not call again" in choices
        await pilot.press("7")  # there is no seventh choice
        assert node(app) == "consent"
        await pilot.press("1")
        assert node(app) == "age"
        assert app.panel.state is not None
        assert app.panel.state.answers == {"consent": "yes"}


async def test_typed_fields_check_inline_and_keep_the_node_until_fixed() -> None:
    app = Host(shipped("outbound_survey"), SURVEY_CONTEXT)
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.press("enter", "1")
        assert node(app) == "age"
        assert app.focused is app.query_one("#script-input")
        await pilot.press("1", "2", "enter")  # digits go into the field, not to the keys
        assert node(app) == "age"
        assert "12 is below the minimum 16" in shown(app, "#script-message")
        await pilot.press("backspace", "backspace", *"abc", "enter")
        assert "'abc' is not a number" in shown(app, "#script-message")
        await pilot.press("backspace")  # typing clears the message
        assert "Enter: answer" in shown(app, "#script-message")
        app.query_one("#script-input", Input).value = "42"
        await pilot.press("enter")
        assert node(app) == "contact"  # a choice field: its options on the number keys
        assert "3 shop" in shown(app, "#script-choices")
        await pilot.press("3")
        assert node(app) == "score"
        await pilot.press("3", "enter")
        assert node(app) == "detractor"  # optional text: Enter on an empty field skips
        await pilot.press("enter")
        assert app.panel.state is not None
        assert app.panel.state.finished
        assert app.panel.state.answers == {
            "consent": "yes",
            "age": 42,
            "channel": "shop",
            "score": 3,
            "improve": None,
        }
        assert "end of script" in shown(app, "#script-text")
        assert app.panel.unfinished_reason() is None


async def test_yes_no_fields_in_the_script_language_and_skip_for_optional_ones() -> None:
    app = Host(shipped("inbound_service_zh"), {"customer.name": "王小明"})
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.press("enter", "2")  # 故障报修
        app.query_one("#script-input", Input).value = "2026-01-05"
        await pilot.press("enter")
        assert node(app) == "fault_callback"
        assert "1 是" in shown(app, "#script-choices")
        assert "2 否" in shown(app, "#script-choices")
        assert "(skip)" not in shown(app, "#script-choices")  # required
        await pilot.press("2")
        state = app.panel.state
        assert state is not None
        assert state.answers["wants_callback"] is False


async def test_back_forgets_the_answer_and_esc_works_in_a_field() -> None:
    app = Host(shipped("outbound_survey"), SURVEY_CONTEXT)
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.press("enter", "1")
        assert node(app) == "age"
        path = shown(app, "#script-path")
        assert "intro › consent: yes › age" in path
        await pilot.press("escape")  # from inside the field
        assert node(app) == "consent"
        assert app.panel.state is not None
        assert app.panel.state.answers == {}
        assert app.focused is app.query_one("#script-choices", OptionList)
        await pilot.press("escape")
        assert node(app) == "intro"
        assert "Back" not in footer_keys(app).values()  # nothing before the start
        await pilot.press("escape")
        assert node(app) == "intro"


async def test_an_inactive_panel_takes_no_answer() -> None:
    app = Host(shipped("outbound_survey"), SURVEY_CONTEXT)
    async with app.run_test(size=(70, 20)) as pilot:
        app.panel.active = False
        await pilot.press("enter")
        assert node(app) == "intro"
        assert not app.panel.go_next()
        assert not app.panel.choose(1)


async def test_problems_are_shown_instead_of_the_script() -> None:
    app = Host(shipped("outbound_survey"), SURVEY_CONTEXT)
    async with app.run_test(size=(70, 20)) as pilot:
        app.panel.show_problems("Broken 1", ["b.toml:7: node a: goes to 'x', which is not a node"])
        await pilot.pause()
        text = shown(app, "#script-text")
        assert "cannot be used" in text
        assert "b.toml:7: node a" in text
        assert app.panel.state is None
        assert app.panel.unfinished_reason() is None


def test_field_hints_say_what_is_accepted() -> None:
    number = InputNode(kind="input", text="t", type="number", min=0, max=10, next="x")
    assert field_hint(number) == "a number, 0.0 to 10.0 · required"
    text = InputNode(kind="input", text="t", max=500, required=False, next="x")
    assert field_hint(text) == "text, at most 500.0 characters · optional: Enter to skip"


# --- in the desk ---------------------------------------------------------------------


def pop_with(script: CallScript | None, call_id: str = "c1") -> ScreenPop:
    return known_pop(call_id, name=CHINESE_NAME).model_copy(update={"script": script})


async def test_the_number_keys_choose_answers_in_a_call_and_dispositions_in_wrap_up() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await engine.offer("c1", pop_with(call_script("outbound_survey")), agent_name="Bo")
        await settle(pilot, lambda: app.script_run is not None)
        keys = footer_keys(app)
        assert "Choose" not in keys.values()  # an offer's script is only shown
        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        await pilot.press("enter")
        assert footer_keys(app)["1-9"] == "Choose"
        await pilot.press("2")  # "later": a callback in a day, disposition "callback"
        run = app.script_run
        assert run is not None
        assert run.finished
        await pilot.press("h")
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
        assert footer_keys(app)["1-9"] == "Disposition"
        picker = app.query_one(DispositionPicker)
        highlighted = picker.query_one(OptionList).highlighted
        assert highlighted is not None
        assert picker.dispositions[highlighted] == "callback"
        await pilot.press("enter")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)
    [callback] = engine.commands_of(ScheduleCallback)
    assert isinstance(callback, ScheduleCallback)
    assert (callback.number, callback.time_zone, callback.queue) == (
        "+441715550101",
        "UTC",
        "sales",
    )
    [complete] = engine.commands_of(CompleteWrapUp)
    assert isinstance(complete, CompleteWrapUp)
    assert complete.disposition == "callback"
    assert (complete.script, complete.script_version) == ("Satisfaction survey", "2.1")
    assert complete.answers == {"consent": "later"}
    assert complete.script_path == ("intro", "consent", "callback", "later_disposition", "bye")
    assert [a.action for a in complete.script_actions] == ["schedule_callback", "set_disposition"]


async def test_a_script_that_is_not_in_the_dispositions_is_added_last() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await engine.offer("c1", pop_with(call_script("outbound_survey")))
        await settle(pilot, lambda: app.script_run is not None)
        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        await pilot.press("enter", "3")  # never again: do_not_call
        await pilot.press("h")
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
        picker = app.query_one(DispositionPicker)
        assert picker.dispositions[:4] == ("sale", "no sale", "callback", "complaint")
        assert picker.dispositions[4] == "do_not_call"
        await pilot.press("5")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)
    [complete] = engine.commands_of(CompleteWrapUp)
    assert isinstance(complete, CompleteWrapUp)
    assert complete.disposition == "do_not_call"
    assert [a.action for a in complete.script_actions] == ["add_to_dnc", "set_disposition"]
    assert engine.commands_of(ScheduleCallback) == []


async def test_a_damaged_script_is_shown_as_a_problem_and_does_not_hold_the_wrap_up() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await engine.offer("c1", pop_with(call_script("inbound_service_en", damage=True)))
        await settle(pilot, lambda: app.offer is not None)
        panel = app.query_one(ScriptPanel)
        assert panel.display
        assert panel.state is None
        assert "does not match the SHA-256" in shown(app, "#script-text")
        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        await pilot.press("h")
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
        await pilot.press("1")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)
    [complete] = engine.commands_of(CompleteWrapUp)
    assert isinstance(complete, CompleteWrapUp)
    assert complete.script == ""


async def test_a_wrap_up_too_big_for_the_wire_still_completes_without_the_script() -> None:
    args = ", ".join(f"a{i} = {i}" for i in range(40))  # more arguments than the wire takes
    text = (
        '[script]\nname = "Big"\nversion = "1"\ndirection = "inbound"\nstart = "go"\n'
        f'[nodes.go]\nkind = "action"\naction = "add_to_dnc"\nargs = {{ {args} }}\n'
        'next = "end"\n[nodes.end]\nkind = "end"\n'
    )
    sent = CallScript(name="Big", version="1", sha256=text_sha256(text), text=text)
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await engine.offer("c1", pop_with(sent))
        await settle(pilot, lambda: app.script_run is not None and app.script_run.finished)
        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        await pilot.press("h")
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
        await pilot.press("1")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)
        assert any("could not be sent" in str(n.message) for n in app._notifications)
    [complete] = engine.commands_of(CompleteWrapUp)
    assert isinstance(complete, CompleteWrapUp)
    assert complete.disposition == "sale"
    assert complete.script == ""


async def test_the_same_offer_again_keeps_the_run_where_it_is() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        pop = pop_with(call_script("outbound_survey"))
        await engine.offer("c1", pop)
        await settle(pilot, lambda: app.script_run is not None)
        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        await pilot.press("enter")
        assert app.script_run is not None
        assert app.script_run.node_id == "consent"
        offer = app.offer
        assert offer is not None
        app.apply(offer)  # the same offer sent again, as after a reconnect
        await pilot.pause()
        assert app.script_run is not None
        assert app.script_run.node_id == "consent"


async def test_a_call_without_a_script_has_no_panel_and_the_keys_as_before() -> None:
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT)
    async with FakeEngine(bus) as engine, app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await engine.offer("c1", pop_with(None))
        await settle(pilot, lambda: app.offer is not None)
        assert not app.query_one(ScriptPanel).display
        assert app.script_run is None
        assert "Script" not in footer_keys(app).values()


# --- snapshot ------------------------------------------------------------------------


def test_script_panel_snapshot_chinese_customer(
    snap_compare: Callable[..., bool], utc: None
) -> None:
    """A call in progress at 80x24: the Chinese card beside the Chinese script at its
    first question, with the greeting's path."""
    clock = FixedClock()
    bus = InMemoryBus()
    app = AgentDesktop(bus, AGENT, queues=("sales",), clock=clock)
    engines: list[FakeEngine] = []

    async def to_the_question(pilot: Pilot[Any]) -> None:
        engine = await FakeEngine(bus, clock=clock).__aenter__()
        engines.append(engine)
        await engine.queue_status("sales", waiting=1, longest_wait_s=12)
        await ready(pilot)
        await engine.offer("c1", pop_with(call_script("inbound_service_zh")), agent_name="王伟")
        await settle(pilot, lambda: app.script_run is not None)
        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        await pilot.press("enter")
        await settle(
            pilot, lambda: app.script_run is not None and app.script_run.node_id == "reason"
        )
        app.refresh_clock()

    assert snap_compare(app, terminal_size=(80, 24), run_before=to_the_question)
    assert engines
    assert engines[0].commands_of(CompleteWrapUp) == []
