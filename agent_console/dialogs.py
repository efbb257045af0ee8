"""Every dialog of the consoles (the agent desk and the wallboard).

- :class:`Prompt`: one line to type (a number to dial, a transfer target, a priority,
  a reason), checked before it is given back; with ``choices`` (a transfer's or a
  consultation's agents and queues) a list under the line to pick from instead (↓).
- :class:`ChoiceDialog`: one of a few options, on the number keys or with the arrows
  (a Not ready reason, which customer holds the caller's number, a dial mode, yes/no).
- :class:`FormScreen`: a small form whose ``submit`` sends a command and shows the
  engine's refusal under its fields (new customer, service item, escalation, callback).
- :class:`CustomerInfoScreen`: one customer in full.
- :func:`quit_dialog`: quitting with a call in hand, asked first (:func:`quit_question`
  says what happens to the call).

All are modal: Enter (or a number key) gives the answer, Esc gives ``None``. What the
agent types and what the engine sends are shown as :class:`rich.text.Text`, never markup.
:func:`open_dialog` opens one and gives the focus back where it was when it closes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from agent_console.colleagues import Target
from agent_console.customer_link import Answer
from agent_console.widgets import WrappedCard, details_text
from cti.clock import wall_time
from cti.protocol import CallOffered, CustomerDetails

#: Longest line a prompt takes (a phone number, a queue or an agent id, a reason).
PROMPT_MAX_CHARS = 40

T = TypeVar("T")

_BOX_CSS = """
    {name} {{ align: center middle; }}
    {name} > Vertical {{
        width: 60;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        border: round $primary;
        border-title-align: center;
        padding: 0 1;
        background: $surface;
    }}
    {name} > Vertical.-wide {{ width: 90%; max-width: 100; }}
    {name} OptionList {{ height: auto; max-height: 12; }}
    {name} .hint {{ color: $text-muted; }}
    {name} .problem {{ color: $error; }}
"""


_NUMBER_CHARS = frozenset("0123456789 -.()+")
#: A transfer target with this many digits is a phone number (agent ids are shorter).
NUMBER_MIN_DIGITS = 7


def is_phone_number(text: str) -> bool:
    """Whether a transfer target is a phone number: digits (spaces, dashes, dots and
    brackets between them), ``+`` first or :data:`NUMBER_MIN_DIGITS` digits or more."""
    value = text.strip()
    digits = sum(c.isdigit() for c in value)
    if not digits or not set(value) <= _NUMBER_CHARS:
        return False
    return value.startswith("+") or digits >= NUMBER_MIN_DIGITS


def transfer_target(text: str, queues: set[str]) -> tuple[str, str, str]:
    """(queue, agent id, number) of what the agent typed: one of them is set."""
    value = text.strip()
    if value in queues:
        return value, "", ""
    if is_phone_number(value):
        return "", "", value
    return "", value, ""


def transfer_target_problem(value: str) -> str | None:
    """The transfer prompt's check: a queue or agent id has no spaces (a number may)."""
    if " " not in value.strip() or is_phone_number(value):
        return None
    return f"{value!r} has a space: a queue name or an agent id has none."


def open_dialog(
    app: App[Any], screen: Screen[Any], callback: Callable[[Any], None] | None = None
) -> None:
    """Open ``screen``; when it closes, ``callback`` gets its answer and the focus goes
    back where it was (the screen below would otherwise focus its first field, and the
    desk's keys would type into it)."""
    before = app.focused
    opener = app.screen

    def refocus(widget: Widget | None) -> None:
        if app.screen is not opener:
            return  # another dialog opened meanwhile: its field keeps the focus
        if widget is None or widget.is_attached:
            app.screen.set_focus(widget)

    def back(result: Any) -> None:
        if callback is not None:
            callback(result)
        app.call_after_refresh(refocus, before)

    app.push_screen(screen, back)


class Prompt(ModalScreen[str | None]):
    """One line to type: Enter gives it (once ``check`` finds no problem), Esc cancels.
    ``intro`` is shown above the line, ``hint`` under it. ``choices`` are listed under
    the hint (↓ from the line goes to them; Enter on one gives its value; those not
    free are shown dimmed and cannot be chosen)."""

    DEFAULT_CSS = _BOX_CSS.format(name="Prompt") + "Prompt OptionList { max-height: 8; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "to_choices", "Choose", show=False),
    ]

    def __init__(
        self,
        title: str,
        hint: str,
        value: str = "",
        *,
        intro: str = "",
        check: Callable[[str], str | None] | None = None,
        choices: Sequence[Target] = (),
    ) -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.intro = intro
        self.value = value
        self.check = check
        self.choices = tuple(choices)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Text(self.title_text)
            if self.intro:
                yield Static(Text(self.intro), classes="hint")
            yield Input(self.value, max_length=PROMPT_MAX_CHARS, id="prompt-input")
            yield Static(Text(self.hint), classes="hint")
            yield Static(id="prompt-problem", classes="problem")
            if self.choices:
                yield OptionList(
                    *(Option(c.label, disabled=not c.free) for c in self.choices),
                    id="prompt-choices",
                )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def action_to_choices(self) -> None:
        if self.choices and isinstance(self.focused, Input):
            self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.choices[event.option_index].value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        problem = "Type something, or Esc to cancel." if not value else None
        if problem is None and self.check is not None:
            problem = self.check(value)
        if problem is not None:
            self.query_one("#prompt-problem", Static).update(Text(problem))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceDialog(ModalScreen[T | None]):
    """A few options, each a (value, label), numbered 1-9: a number key or Enter chooses
    (the dialog gives the value), Esc cancels. ``wide`` for long labels (customers)."""

    DEFAULT_CSS = _BOX_CSS.format(name="ChoiceDialog")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("1", "choose(1)", "Choose", key_display="1-9"),
        *(
            Binding(str(number), f"choose({number})", f"Choose {number}", show=False)
            for number in range(2, 10)
        ),
    ]

    def __init__(
        self,
        title: str,
        choices: Sequence[tuple[T, str | Text]],
        *,
        intro: str = "",
        hint: str = "",
        wide: bool = False,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.choices = tuple(choices)
        self.intro = intro
        self.hint = hint or "1-9 or ↑↓ Enter: choose · Esc: cancel"
        self.wide = wide

    @property
    def options(self) -> tuple[T, ...]:
        """The values offered, in order."""
        return tuple(value for value, _ in self.choices)

    def compose(self) -> ComposeResult:
        with Vertical(classes="-wide" if self.wide else "") as box:
            box.border_title = Text(self.title_text)
            if self.intro:
                yield Static(Text(self.intro), classes="hint")
            yield OptionList(
                *(
                    Text.assemble((f"{number} ", "bold"), label)
                    for number, (_, label) in enumerate(self.choices, start=1)
                ),
                id="choice-options",
            )
            yield Label(Text(self.hint), classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0 if self.choices else None
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.choices[event.option_index][0])

    def action_choose(self, number: int) -> None:
        if 1 <= number <= len(self.choices):
            self.dismiss(self.choices[number - 1][0])

    def action_cancel(self) -> None:
        self.dismiss(None)


# --- forms ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of a form: an Input, or a Select when ``choices`` are given."""

    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    choices: tuple[str, ...] = ()
    max_length: int = 200


#: The words an engine refusal starts with, for each field name (``e-mail: ...``).
_ERROR_PREFIX = {"email": "e-mail", "time_zone": "time zone", "to": "to"}


class FormScreen(ModalScreen[Answer | None]):
    """A small form: Enter in the last field (or Ctrl+S) sends it, Esc leaves it.

    ``submit`` gets the values by field name and returns the engine's answer: accepted,
    the screen closes with it; refused, the error stays in the form and the field it
    names is marked."""

    DEFAULT_CSS = """
    FormScreen { align: center middle; }
    FormScreen > VerticalScroll {
        width: 90%; max-width: 80; height: auto; max-height: 100%;
        border: round $primary; padding: 0 1; background: $surface;
    }
    FormScreen Label { margin-top: 0; color: $text-muted; }
    FormScreen Input, FormScreen Select { width: 100%; }
    FormScreen Input { height: 1; border: none; padding: 0 1; background: $boost; }
    FormScreen Input:focus { background: $primary 30%; border: none; }
    FormScreen Input.-invalid, FormScreen Input.-invalid:focus { border: none; }
    FormScreen Input.-invalid, FormScreen Select.-invalid { background: $error 40%; }
    FormScreen #form-error { color: $error; height: auto; }
    FormScreen .hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+s", "send", "Save"),
    ]

    def __init__(
        self,
        title: str,
        fields: Sequence[FormField],
        submit: Callable[[dict[str, str]], Awaitable[Answer]],
        *,
        intro: str = "",
        checkbox: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.fields = tuple(fields)
        self.submit = submit
        self.intro = intro
        self.checkbox = checkbox
        self.sending = False

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = Text(self.title_text)
            if self.intro:
                yield Static(Text(self.intro), classes="hint")
            for field in self.fields:
                yield Label(Text(field.label))
                if field.choices:
                    yield Select(
                        [(Text(c), c) for c in field.choices],
                        value=field.value or field.choices[0],
                        allow_blank=False,
                        id=f"f-{field.name}",
                    )
                else:
                    yield Input(
                        field.value,
                        placeholder=field.placeholder,
                        max_length=field.max_length,
                        id=f"f-{field.name}",
                    )
            if self.checkbox:
                yield Checkbox(self.checkbox, value=True, id="f-check")
            yield Static(id="form-error")
            yield Static(
                Text("Enter in the last field or Ctrl+S: save · Esc: cancel"), classes="hint"
            )

    def on_mount(self) -> None:
        first = next((f for f in self.fields if not f.value and not f.choices), self.fields[0])
        self.query_one(f"#f-{first.name}").focus()

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for field in self.fields:
            widget = self.query_one(f"#f-{field.name}")
            if isinstance(widget, Input):
                out[field.name] = widget.value
            elif isinstance(widget, Select):
                out[field.name] = str(widget.value)
        if self.checkbox:
            out["check"] = "yes" if self.query_one("#f-check", Checkbox).value else ""
        return out

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input))
        if event.input is inputs[-1]:
            self.action_send()
        else:
            event.input.screen.focus_next()

    def action_send(self) -> None:
        if not self.sending:
            self.sending = True
            self._send(self.values())

    @work(exclusive=True, group="form")
    async def _send(self, values: dict[str, str]) -> None:
        self.show_error("Saving…")
        try:
            answer = await self.submit(values)
        finally:
            self.sending = False
        if answer.ok:
            self.dismiss(answer)
            return
        self.show_error(answer.error)

    def show_error(self, error: str) -> None:
        self.query_one("#form-error", Static).update(Text(error))
        for field in self.fields:
            prefix = _ERROR_PREFIX.get(field.name, field.name)
            widget = self.query_one(f"#f-{field.name}")
            widget.set_class(error.startswith(f"{prefix}:"), "-invalid")


class CustomerInfoScreen(ModalScreen[None]):
    """One customer in full (the card's ``i``): scroll with ↑↓, Esc to go back."""

    DEFAULT_CSS = """
    CustomerInfoScreen { align: center middle; }
    CustomerInfoScreen > VerticalScroll {
        width: 95%; height: 95%; border: round $primary; padding: 0 1; background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Back")]

    def __init__(self, details: CustomerDetails) -> None:
        super().__init__()
        self.details = details

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = Text(self.details.customer.name)
            now = wall_time()
            yield WrappedCard(lambda width: details_text(self.details, now, width))

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()


# --- quitting with a call ------------------------------------------------------------


def quit_question(view: str, offer: CallOffered | None) -> str | None:
    """What quitting does to the call in hand (``view`` is the desk's), or ``None`` when
    there is none and quitting just logs out (docs/acd.md, "Logging out with a call")."""
    queue = f"queue {offer.pop.queue}" if offer is not None else "its queue"
    if offer is not None and offer.consult_from and view in ("offer", "talking"):
        return (
            f"You are in a consultation with {offer.consult_from}. Quitting logs you out "
            "and ends it; the caller stays with them."
        )
    if view == "offer":
        return (
            "A call is ringing for you. Quitting logs you out; the caller goes back to "
            f"their place in {queue}."
        )
    if view == "talking":
        return (
            "You are on a call. Quitting logs you out and hands the caller back to "
            f"{queue} for the next agent (or hangs up, if the queue is set to "
            "on_agent_logout = hang_up; a call you dialled is hung up)."
        )
    if view == "wrap_up":
        return (
            "You are in wrap-up. Quitting logs you out and ends it with no disposition "
            "(the call is recorded without one)."
        )
    return None


def quit_dialog(question: str) -> ChoiceDialog[bool]:
    """Ask before quitting with a call in hand: True to log out and quit."""
    return ChoiceDialog(
        "Quit with a call in hand?",
        [(False, "Stay (Esc)"), (True, "Log out and quit")],
        intro=question,
    )
