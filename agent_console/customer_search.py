"""The desk's customer search: by a number in any format, a name, ``#id`` or an e-mail,
with each customer's history, items and answers.

The screen does not talk to the bus: it gets async ``search`` and ``show`` functions
that send the command and return the engine's :class:`~agent_console.customer_link.Answer`;
what the agent asks about a customer (attach, new item, escalate, dial) goes to the desk
as a :class:`CustomerSearchScreen.Act` message. Customer text is always
:class:`rich.text.Text`, never markup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from agent_console.customer_link import Answer
from agent_console.desk_footer import DeskFooter
from agent_console.widgets import WrappedCard, customer_line, details_text
from cti.clock import wall_time
from cti.models import Customer
from cti.protocol import CustomerDetails


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
            yield WrappedCard(
                lambda _width: Text("Choose a result (↑↓ Enter) to see the history."),
                id="details",
            )
        yield DeskFooter(compact=True)  # its keys are in no palette: all fit at 80

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
        now = wall_time()
        self.query_one("#details", WrappedCard).show(
            lambda width: details_text(details, now, width)
        )
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
