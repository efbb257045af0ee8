"""Small dialogs of the agent desk's call control: type a target, choose a reason.

:class:`Prompt` asks for one line (the number to dial, the queue or agent to transfer
to, the agent to consult); :class:`Choice` offers a few options on the number keys (the
Not Ready reasons). Both are modal: Enter gives the answer, Esc gives ``None``. What the
agent types is shown as plain text, never markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static

#: Longest line a prompt takes (a phone number, a queue or an agent id).
PROMPT_MAX_CHARS = 40

_BOX_CSS = """
    {name} {{ align: center middle; }}
    {name} > Vertical {{
        width: 60;
        max-width: 100%;
        height: auto;
        border: round $primary;
        border-title-align: center;
        padding: 0 1;
        background: $surface;
    }}
    {name} .hint {{ color: $text-muted; }}
    {name} .problem {{ color: $error; }}
"""


class Prompt(ModalScreen[str | None]):
    """One line to type: Enter gives it (once ``check`` finds no problem), Esc cancels."""

    DEFAULT_CSS = _BOX_CSS.format(name="Prompt")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        hint: str,
        value: str = "",
        *,
        check: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.value = value
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Text(self.title_text)
            yield Input(self.value, max_length=PROMPT_MAX_CHARS, id="prompt-input")
            yield Static(Text(self.hint), classes="hint")
            yield Static(id="prompt-problem", classes="problem")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

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


class Choice(ModalScreen[str | None]):
    """A few options numbered 1-9: a number key or Enter chooses, Esc cancels."""

    DEFAULT_CSS = _BOX_CSS.format(name="Choice")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("1", "choose(1)", "Choose", key_display="1-9"),
        *(
            Binding(str(number), f"choose({number})", f"Choose {number}", show=False)
            for number in range(2, 10)
        ),
    ]

    def __init__(self, title: str, options: Sequence[str], hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.options = tuple(options)
        self.hint = hint or "1-9 or ↑↓ Enter: choose · Esc: cancel"

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Text(self.title_text)
            yield OptionList(
                *(
                    Text.assemble((f"{number} ", "bold"), option)
                    for number, option in enumerate(self.options, start=1)
                ),
                id="choice-options",
            )
            yield Label(Text(self.hint), classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0 if self.options else None
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.options[event.option_index])

    def action_choose(self, number: int) -> None:
        if 1 <= number <= len(self.options):
            self.dismiss(self.options[number - 1])

    def action_cancel(self) -> None:
        self.dismiss(None)
