"""The desk's customer screens: choose among the customers holding a number, forms (new
customer, service item, escalation, callback) and the customer search with history.

Screens do not talk to the bus: each gets an async ``submit`` that sends the command and
returns the engine's :class:`~agent_console.customer_link.Answer`; a refusal is shown in
the form, under its fields, and the field it names is marked. Customer text is always
:class:`rich.text.Text`, never markup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Checkbox, Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from agent_console.customer_link import Answer
from agent_console.widgets import customer_line, details_text
from cti.clock import wall_time
from cti.models import Customer
from cti.protocol import CustomerDetails

# --- choosing among matches ----------------------------------------------------------


class ChooseCustomerScreen(ModalScreen[int | None]):
    """Several customers hold the caller's number: which one is calling? Returns the
    customer id chosen (Enter, or its number key), or ``None`` (Esc)."""

    DEFAULT_CSS = """
    ChooseCustomerScreen { align: center middle; }
    ChooseCustomerScreen > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: round $primary; padding: 0 1; background: $surface;
    }
    ChooseCustomerScreen OptionList { height: auto; max-height: 12; }
    ChooseCustomerScreen .hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Back"),
        *(Binding(str(n), f"pick({n})", f"Customer {n}", show=False) for n in range(1, 10)),
    ]

    def __init__(self, customers: Sequence[Customer], number: str) -> None:
        super().__init__()
        self.customers = tuple(customers)
        self.number = number

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Text("Who is calling?")
            yield Static(
                Text(f"{len(self.customers)} customers hold {self.number}:"), classes="hint"
            )
            yield OptionList(
                *(
                    Option(Text.assemble((f"{n} ", "bold"), customer_line(c)), id=str(c.id))
                    for n, c in enumerate(self.customers, start=1)
                ),
                id="matches",
            )
            yield Static(Text("1-9 or ↑↓ Enter: choose · Esc: back"), classes="hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def action_pick(self, number: int) -> None:
        if 1 <= number <= len(self.customers):
            self.dismiss(self.customers[number - 1].id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.customers[event.option_index].id)


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


def new_customer_form(
    number: str, submit: Callable[[dict[str, str]], Awaitable[Answer]]
) -> FormScreen:
    """The new-customer form for an unknown caller, the number filled in."""
    return FormScreen(
        "New customer",
        [
            FormField("name", "Name", placeholder="e.g. 欧阳雨桐 or José Núñez"),
            FormField("number", "Number", number, max_length=64),
            FormField("email", "E-mail", placeholder="name@example.com", max_length=254),
            FormField("company", "Company"),
            FormField(
                "language",
                "Language",
                placeholder="zh, en… (empty: from the number)",
                max_length=35,
            ),
            FormField(
                "time_zone",
                "Time zone",
                placeholder="Asia/Shanghai… (empty: from the number)",
                max_length=64,
            ),
        ],
        submit,
        intro="Saved to the customer base; the call's record and history go to this customer.",
    )


# --- customer search -----------------------------------------------------------------


class CustomerSearchScreen(Screen[None]):
    """Search by a number in any format, a name (Chinese or Latin, partial), ``#id`` or
    an e-mail; Enter on a result shows the customer with history, items and answers."""

    DEFAULT_CSS = """
    CustomerSearchScreen #search-query { margin: 0 1; }
    CustomerSearchScreen #search-status { height: 1; padding: 0 2; color: $text-muted; }
    CustomerSearchScreen #search-results { height: auto; max-height: 40%; margin: 0 1; }
    CustomerSearchScreen #search-details {
        height: 1fr; border: round $primary; margin: 0 1; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("slash", "focus_query", "Search", key_display="/"),
        Binding("a", "attach", "Is the caller"),
        Binding("t", "new_item", "New item"),
        Binding("u", "escalate", "Escalate"),
        Binding("d", "dial", "Dial"),
    ]

    class Act(Message):
        """The agent asked for something about a customer: ``attach`` (the caller is
        this customer), ``new_item``, ``escalate``, ``dial`` (the desk decides)."""

        def __init__(self, what: str, details: CustomerDetails) -> None:
            super().__init__()
            self.what = what
            self.details = details

    def __init__(
        self,
        search: Callable[[str], Awaitable[Answer]],
        show: Callable[[int], Awaitable[Answer]],
        query: str = "",
    ) -> None:
        super().__init__()
        self.search = search
        self.show = show
        self.first_query = query
        self.found: tuple[Customer, ...] = ()
        self.details: CustomerDetails | None = None

    def compose(self) -> ComposeResult:
        yield Input(
            self.first_query,
            placeholder="Number, name (张 / 雨桐 / núñez), #id or e-mail · Enter",
            max_length=200,
            id="search-query",
        )
        yield Static(id="search-status")
        yield OptionList(id="search-results")
        with VerticalScroll(id="search-details") as box:
            box.border_title = Text("Customer")
            yield Static(Text("Choose a result (↑↓ Enter) to see the history."), id="details")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#search-query", Input).focus()
        if self.first_query:
            self.run_search(self.first_query)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_focus_query(self) -> None:
        self.query_one("#search-query", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.run_search(event.value)

    def status(self, text: str) -> None:
        self.query_one("#search-status", Static).update(Text(text))

    @work(exclusive=True, group="search")
    async def run_search(self, query: str) -> None:
        self.status(f"Searching {query!r}…")
        answer = await self.search(query)
        results = self.query_one("#search-results", OptionList)
        if not answer.ok or answer.results is None:
            self.status(answer.error or "no answer")
            return
        self.found = answer.results.customers
        results.set_options(Option(customer_line(c), id=str(c.id)) for c in self.found)
        more = " (more match: type more to narrow)" if answer.results.more else ""
        self.status(f"{len(self.found)} found{more}" if self.found else "Nobody found.")
        if self.found:
            results.highlighted = 0
            results.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.load(self.found[event.option_index].id)

    @work(exclusive=True, group="show")
    async def load(self, customer_id: int) -> None:
        answer = await self.show(customer_id)
        if answer.details is None:
            self.status(answer.error or "no answer")
            return
        self.set_details(answer.details)

    def set_details(self, details: CustomerDetails) -> None:
        self.details = details
        self.query_one("#details", Static).update(details_text(details, wall_time()))
        self.query_one("#search-details").border_title = Text(details.customer.name)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("attach", "new_item", "escalate", "dial"):
            if self.details is None:
                return None
            if action == "escalate" and not self.details.service_items:
                return None
            if action == "dial" and not self.details.customer.phones:
                return None
        return True

    def _act(self, what: str) -> None:
        if self.details is not None:
            self.post_message(self.Act(what, self.details))

    def action_attach(self) -> None:
        self._act("attach")

    def action_new_item(self) -> None:
        self._act("new_item")

    def action_escalate(self) -> None:
        self._act("escalate")

    def action_dial(self) -> None:
        self._act("dial")


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
            yield Static(details_text(self.details, wall_time()))

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
