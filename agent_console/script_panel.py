"""The script panel: runs a call script (:mod:`scripts_engine.runner`) for the agent.

It shows the current node's text with the call's variables filled in (customer text as
plain text, never markup; a missing value as a visible ``‹customer.name?›``), the
choices of a question (or of a choice / yes-no field) numbered for the number keys, an
input line for text, number, date and phone fields with the check's message right
under it, and the path taken so far. Keys, shown in the footer while the panel has the
focus: ``1``-``9`` choose, Enter goes on (or submits the field), Esc goes back.

The panel is reusable: the agent desktop runs the script of the call in hand, and
``cti script preview`` runs one without a call. It posts :class:`ScriptPanel.Moved` after
every step, so its owner can act on the run's effects (preselect a disposition...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, OptionList, Static

from cti.errors import ScriptError
from scripts_engine import runner
from scripts_engine.expr import Scalar
from scripts_engine.model import (
    EndNode,
    FieldType,
    InputNode,
    QuestionNode,
    SayNode,
    Script,
)
from scripts_engine.runner import AnswerError, RunState
from scripts_engine.text import TextSpan, segments

#: Most characters an agent may type into a script field.
INPUT_MAX_CHARS = 1000
#: Most steps of the path shown (the latest ones).
PATH_STEPS_SHOWN = 8
#: Label of the extra entry that skips an optional choice or yes/no field.
SKIP_LABEL = "(skip)"
#: Shown under a typed field: its keys (the desk's letter keys type into it).
FIELD_KEYS = "Enter: answer · Esc: back · Tab: leave the field"
#: How a yes/no field's two entries read, by the script's language.
YES_NO_LABELS: dict[str, tuple[str, str]] = {"zh": ("是", "否"), "en": ("Yes", "No")}


@dataclass(frozen=True)
class _Option:
    """One numbered entry of the choices list and what choosing it answers."""

    label: Text
    value: object


def segments_text(parts: list[TextSpan]) -> Text:
    """Rendered script text as rich Text: values bold, missing values as a marked
    placeholder; every piece appended as plain text (never parsed as markup)."""
    out = Text()
    for part in parts:
        if part.kind == "value":
            out.append(part.text, style="bold")
        elif part.kind == "missing":
            out.append(part.text, style="bold reverse yellow")
        else:
            out.append(part.text)
    return out


def _shown(value: Scalar) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def field_hint(node: InputNode) -> str:
    """What an input field accepts, for its placeholder: ``a date (YYYY-MM-DD) ...``."""
    kind = node.type
    if kind is FieldType.NUMBER:
        hint = "a number"
    elif kind is FieldType.DATE:
        hint = "a date, YYYY-MM-DD"
    elif kind is FieldType.PHONE:
        hint = "a phone number"
    else:
        hint = "text"
    if node.min is not None and node.max is not None:
        hint += f", {node.min} to {node.max}"
    elif node.min is not None:
        hint += f", at least {node.min}"
    elif node.max is not None:
        hint += f", at most {node.max}"
    if kind is FieldType.TEXT and (node.min is not None or node.max is not None):
        hint += " characters"
    if node.pattern is not None:
        hint += f" ({node.pattern})"
    hint += " · required" if node.required else " · optional: Enter to skip"
    return hint


class ScriptPanel(Vertical, can_focus=True):
    """Runs one call script: :meth:`start` it, then the agent answers with the keys."""

    DEFAULT_CSS = """
    ScriptPanel {
        height: 1fr;
        border: round $secondary;
        border-title-color: $text;
        padding: 0 1;
    }
    ScriptPanel:focus-within { border: round $accent; }
    ScriptPanel:focus { border: double $accent; }
    ScriptPanel.-inactive { opacity: 80%; }
    ScriptPanel > #script-text { height: auto; margin-bottom: 1; }
    ScriptPanel > #script-choices { height: auto; max-height: 11; border: none; padding: 0; }
    ScriptPanel > #script-input { margin: 0; }
    ScriptPanel > #script-message { height: auto; }
    ScriptPanel > #script-message.-error { color: $error; }
    ScriptPanel > #script-path { height: auto; color: $text-muted; margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "choose(1)", "Choose", key_display="1-9"),
        *(
            Binding(str(number), f"choose({number})", f"Choose {number}", show=False)
            for number in range(2, 10)
        ),
        Binding("enter", "next", "Next"),
        Binding("escape", "back", "Back"),
    ]

    class Moved(Message):
        """The run changed: an answer, a step on or back, or a new start."""

        def __init__(self, panel: ScriptPanel, state: RunState) -> None:
            super().__init__()
            self.panel = panel
            self.state = state

        @property
        def control(self) -> ScriptPanel:
            return self.panel

    active: reactive[bool] = reactive(True)
    """Whether the agent may answer now (an offered call's script is only shown)."""

    def __init__(
        self,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._state: RunState | None = None
        self._problems: tuple[str, ...] = ()
        self._title = ""
        self._message = ""
        self._options: list[_Option] = []
        self._field_step = -1
        """The step (path length) the input line was last cleared for."""

    def compose(self) -> ComposeResult:
        yield Static(id="script-text")
        yield OptionList(id="script-choices")
        yield Input(id="script-input", max_length=INPUT_MAX_CHARS)
        yield Static(id="script-message")
        yield Static(id="script-path")

    def on_mount(self) -> None:
        self._draw()

    # --- what the owner uses -----------------------------------------------------

    @property
    def state(self) -> RunState | None:
        """The run shown, or ``None`` when no script is loaded."""
        return self._state

    @property
    def has_script(self) -> bool:
        return self._state is not None

    @property
    def problems(self) -> tuple[str, ...]:
        """Why the script could not be loaded (shown in the panel instead of it)."""
        return self._problems

    def start(
        self, script: Script, context: Mapping[str, Scalar] | None = None, *, title: str = ""
    ) -> None:
        """Run ``script`` from its start node with these variables."""
        try:
            state = runner.start(script, context)
        except ScriptError as exc:
            self.show_problems(title or script.meta.name, [str(exc)])
            return
        self.resume(state, title=title)

    def resume(self, state: RunState, *, title: str = "") -> None:
        """Show a run where it stands (a saved or an ongoing one)."""
        meta = state.script.meta
        self._title = title or f"{meta.name} {meta.version}"
        self._state = state
        self._problems = ()
        self._moved()

    def recontext(self, context: Mapping[str, Scalar]) -> None:
        """The run reads these call variables from now on (the caller identified)."""
        if self._state is not None:
            self._state = runner.with_context(self._state, context)
            self._moved()

    def show_problems(self, title: str, problems: list[str]) -> None:
        """Show why a script cannot run instead of it (the call goes on without it)."""
        self._state = None
        self._title = title
        self._problems = tuple(problems)
        self._message = ""
        self._draw()

    def clear(self) -> None:
        """No script (the panel shows nothing to do)."""
        self._state = None
        self._problems = ()
        self._title = ""
        self._message = ""
        self._draw()

    def unfinished_reason(self) -> str | None:
        """Why the call may not be wrapped up yet, or ``None``: every required answer is
        given once the run has reached an end node."""
        state = self._state
        if state is None or state.finished:
            return None
        node = state.node
        words = "".join(s.text for s in state.text()).strip()
        quoted = f"“{words}”" if words else f"node {state.node_id}"
        if isinstance(node, SayNode):
            return f"the script is not finished: {quoted} is still to be read (Enter goes on)"
        return f"the script is not finished: {quoted} needs an answer"

    def focus_script(self) -> None:
        """Give the focus to what takes the next answer (the choices, the field, or the
        panel itself)."""
        node = self._state.node if self._state is not None else None
        if self._options and self.active:
            self.query_one("#script-choices", OptionList).focus()
        elif isinstance(node, InputNode) and self.active:
            self.query_one("#script-input", Input).focus()
        else:
            self.focus()

    def choose(self, number: int) -> bool:
        """Choose entry ``number`` (1-based) of the choices; ``False`` if there is none."""
        if self._state is None or not self.active or not 1 <= number <= len(self._options):
            return False
        return self._answer(self._options[number - 1].value)

    def submit(self, value: str) -> bool:
        """Answer the current input field with typed text; the check's message if not."""
        if self._state is None or not self.active:
            return False
        return self._answer(value)

    def go_next(self) -> bool:
        """Go on from a say node."""
        state = self._state
        if state is None or not self.active or not isinstance(state.node, SayNode):
            return False
        return self._apply(lambda: runner.advance(state))

    def go_back(self) -> bool:
        """Back to the previous node that waited for the agent (its answer forgotten)."""
        state = self._state
        if state is None or not self.active or not self._can_go_back():
            return False
        return self._apply(lambda: runner.back(state))

    # --- keys --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self._state
        if action == "choose":
            number = parameters[0] if parameters else 0
            ok = self.active and isinstance(number, int) and 1 <= number <= len(self._options)
            return bool(ok)
        if action == "next":
            return self.active and state is not None and isinstance(state.node, SayNode)
        if action == "back":
            return self.active and self._can_go_back()
        return True

    def action_choose(self, number: int) -> None:
        self.choose(number)

    def action_next(self) -> None:
        self.go_next()

    def action_back(self) -> None:
        self.go_back()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.choose(event.option_index + 1)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(event.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._message:
            self._message = ""
            self._draw_message()

    def watch_active(self, active: bool) -> None:
        self.set_class(not active, "-inactive")
        if self.is_mounted:
            self._draw()

    # --- running -----------------------------------------------------------------

    def _can_go_back(self) -> bool:
        state = self._state
        if state is None:
            return False
        try:
            runner.back(state)
        except ScriptError:
            return False
        return True

    def _answer(self, value: object) -> bool:
        state = self._state
        assert state is not None
        return self._apply(lambda: runner.answer(state, value))

    def _apply(self, move: Callable[[], RunState]) -> bool:
        had_focus = self.has_focus_within
        try:
            new_state = move()
        except AnswerError as exc:
            self._message = str(exc)
            self._draw_message()
            return False
        except ScriptError as exc:
            self._message = f"the script cannot go on: {exc}"
            self._draw_message()
            return False
        self._state = new_state
        self._moved()
        if had_focus:
            self.focus_script()
        return True

    def _moved(self) -> None:
        self._message = ""
        self._draw()
        if self._state is not None:
            self.post_message(self.Moved(self, self._state))

    # --- drawing -----------------------------------------------------------------

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        self.border_title = Text(f"Script · {self._title}" if self._title else "Script")
        text = self.query_one("#script-text", Static)
        choices = self.query_one("#script-choices", OptionList)
        field = self.query_one("#script-input", Input)
        state = self._state
        self._options = []
        if state is None:
            body = Text()
            if self._problems:
                body.append("This call's script cannot be used:\n", style="bold")
                for problem in self._problems:
                    body.append(f"• {problem}\n")
                body.append("Go on without it.", style="italic")
            else:
                body.append("No script for this call.", style="italic")
            text.update(body)
            choices.display = False
            field.display = False
            self.border_subtitle = ""
            self._draw_message()
            self.query_one("#script-path", Static).update("")
            return
        node = state.node
        body = segments_text(state.text())
        if isinstance(node, EndNode):
            if body.plain:
                body.append("\n")
            body.append("— end of script —", style="italic")
        text.update(body)
        self._options = self._options_for(state)
        choices.clear_options()
        if self._options:
            choices.add_options(
                Text.assemble((f"{n} ", "bold"), option.label)
                for n, option in enumerate(self._options, start=1)
            )
            choices.highlighted = 0
        choices.display = bool(self._options)
        choices.disabled = not self.active
        typed = isinstance(node, InputNode) and not self._options
        if len(state.path) != self._field_step:
            self._field_step = len(state.path)
            # A new step starts empty; a phone field with the caller's number.
            phone = isinstance(node, InputNode) and node.type is FieldType.PHONE
            field.value = str(state.values().get("call.number", "")) if phone else ""
        if isinstance(node, InputNode):
            field.placeholder = field_hint(node)
        field.display = typed
        field.disabled = not self.active
        self.border_subtitle = Text(self._step_label(state))
        self._draw_message()
        self.query_one("#script-path", Static).update(self._path_text(state))
        self.refresh_bindings()

    def _draw_message(self) -> None:
        """The last check's message, or how to get on from a typed field."""
        if not self.is_mounted:
            return
        if self._message:
            shown = Text(self._message)
        elif self.active and self.query_one("#script-input", Input).display:
            shown = Text(FIELD_KEYS, style="dim")
        else:
            shown = Text()
        line = self.query_one("#script-message", Static)
        line.set_class(bool(self._message), "-error")
        line.update(shown)

    def _options_for(self, state: RunState) -> list[_Option]:
        node = state.node
        if state.finished:
            return []
        if isinstance(node, QuestionNode):
            values = state.values()
            return [
                _Option(segments_text(segments(c.label, values)), n)
                for n, c in enumerate(node.choices, start=1)
            ]
        if isinstance(node, InputNode) and node.type is FieldType.YES_NO:
            yes, no = YES_NO_LABELS.get(state.script.meta.language[:2], ("Yes", "No"))
            options = [_Option(Text(yes), True), _Option(Text(no), False)]
        elif isinstance(node, InputNode) and node.type is FieldType.CHOICE:
            options = [_Option(Text(o), o) for o in node.options]
        else:
            return []
        if not node.required:
            options.append(_Option(Text(SKIP_LABEL, style="italic"), None))
        return options

    def _step_label(self, state: RunState) -> str:
        asked = sum(1 for s in state.path if s.answered)
        where = "ended" if state.finished else f"at {state.node_id}"
        return f"{where} · {asked} answered"

    def _path_text(self, state: RunState) -> Text:
        shown: list[Text] = []
        for step in state.path:
            node = state.script.nodes[step.node]
            if not isinstance(node, SayNode | QuestionNode | InputNode | EndNode):
                continue  # branches and actions pass by themselves
            piece = Text(step.node)
            if step.answered:
                piece.append(": ")
                piece.append(_shown(step.answer), style="bold")
            shown.append(piece)
        out = Text("Path: ", style="dim")
        if len(shown) > PATH_STEPS_SHOWN:
            out.append("… › ")
            shown = shown[-PATH_STEPS_SHOWN:]
        out.append_text(Text(" › ").join(shown))
        return out
