"""The customer side of the agent desktop: keys, actions and what the engine answers.

:class:`CustomerActions` is a component the desk (:class:`~agent_console.desktop.AgentDesktop`)
holds: the desk lists its :data:`CUSTOMER_BINDINGS` after its own call keys and hands each
action to it. It reads the call in hand from the desk's
:class:`~agent_console.desk_model.DeskModel` and never changes the call's state:

| key | action |
|---|---|
| ``c`` | the caller: choose among the customers holding the number, or the new-customer form |
| ``f`` | find a customer (number, name, #id, e-mail) with history; attach, items, dial |
| ``i`` | the caller's customer in full: history with script answers, items, value factors |
| ``t`` | a new service item for the caller's customer (title, priority, due) |
| ``u`` | escalate one of its open items (to whom) |
| ``b`` | schedule a callback at a local time in the customer's time zone, for me or anyone |

Every command goes through :func:`~agent_console.customer_link.ask`; a refusal is shown
where the agent typed (forms) or as a notification.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen

from agent_console.customer_link import Answer, ask
from agent_console.customer_search import CustomerSearchScreen
from agent_console.desk_model import DeskModel
from agent_console.dialogs import (
    ChoiceDialog,
    CustomerInfoScreen,
    FormField,
    FormScreen,
    open_dialog,
)
from agent_console.widgets import CustomerCardView, caller_number, customer_line
from cti.bus.memory import Bus
from cti.models import CallerKind, Customer, ServiceItem, ServicePriority
from cti.protocol import (
    AddServiceItem,
    CallOffered,
    ChooseCustomer,
    CreateCustomer,
    CustomerDetails,
    EscalateServiceItem,
    ScheduleCallback,
    SearchCustomers,
    ShowCustomer,
)

#: The customer keys, listed after the desk's call keys (those matter more).
CUSTOMER_BINDINGS: tuple[Binding, ...] = (
    Binding("c", "customer", "Caller"),
    Binding("f", "find_customer", "Find"),
    Binding("i", "customer_info", "Details"),
    Binding("t", "service_item", "New item"),
    Binding("u", "escalate_item", "Escalate"),
    Binding("b", "callback", "Callback"),
)
#: The actions of this component, for the desk's check_action.
CUSTOMER_ACTIONS = frozenset(binding.action for binding in CUSTOMER_BINDINGS)
_ON_CALL = ("offer", "talking", "wrap_up")
#: The callback form's choices: reserved for this agent, or for anyone in the queue.
FOR_ME = "for me"
FOR_ANYONE = "for anyone"


class CustomerActions:
    """Customer keys for the agent desktop (see the module docstring). ``dial`` calls a
    number for the agent (the desk's call control); ``identified`` is told the customer
    the caller is, once chosen or created (the script reads it)."""

    def __init__(
        self,
        app: App[Any],
        bus: Bus,
        model: DeskModel,
        *,
        clock: Callable[[], float],
        dial: Callable[[str], None],
        identified: Callable[[Customer], None] = lambda _customer: None,
    ) -> None:
        self.app = app
        self.bus = bus
        self.model = model
        self.clock = clock
        self.dial = dial
        self.identified = identified

    # --- the caller's customer -----------------------------------------------------

    def _offer(self) -> CallOffered | None:
        """The offer of the call in hand, if any."""
        model = self.model
        offer = model.offer
        if offer is None or offer.pop.call_id != model.call_id or model.view not in _ON_CALL:
            return None
        return offer

    def _chosen(self) -> CustomerDetails | None:
        offer = self._offer()
        details = self.app.query_one(CustomerCardView).details
        if offer is None or details is None or details.call_id != offer.pop.call_id:
            return None
        return details

    def call_customer(self) -> tuple[Customer, tuple[ServiceItem, ...]] | None:
        """The customer of the call in hand (chosen, created, or the one the number
        found) with its open items; ``None`` when the caller is not known."""
        chosen = self._chosen()
        if chosen is not None:
            return chosen.customer, chosen.service_items
        offer = self._offer()
        if offer is None or offer.pop.customer is None:
            return None
        if offer.pop.caller_kind is not CallerKind.KNOWN:
            return None
        return offer.pop.customer, offer.pop.service_items

    def enabled(self, action: str) -> bool:
        """Whether a customer action applies now (the desk shows it disabled if not)."""
        if action == "find_customer":
            return self.model.view != "login"
        if action == "customer":
            return self._offer() is not None
        if action in ("customer_info", "service_item"):
            return self.call_customer() is not None
        if action == "escalate_item":
            found = self.call_customer()
            return found is not None and bool(found[1])
        if action == "callback":
            return self.model.view in ("talking", "wrap_up") and self._offer() is not None
        return True

    def why_not(self, action: str) -> str:
        """Why a customer action does not apply now, for this call (the key's notice
        and the command palette say it)."""
        view = self.model.view
        if view == "login":
            return "Log in first (type your agent id, Enter)."
        if action == "callback" and view not in ("talking", "wrap_up"):
            return "A callback is scheduled during or after a call."
        if self._offer() is None:
            if action == "customer":
                return "No call in hand: c works on the caller's card."
            return "No call in hand: f finds a customer, with its details and items."
        if action in ("customer_info", "service_item", "escalate_item"):
            if self.call_customer() is None:
                return "The caller is not known yet: c (the number's customers) or f first."
            if action == "escalate_item":
                return "The caller has no open service item (t: a new one)."
        return "Not now."

    def _not_now(self, action: str) -> bool:
        if self.enabled(action):
            return False
        self._tell(self.why_not(action), severity="warning")
        return True

    def _tell(self, text: str, *, title: str = "", severity: SeverityLevel = "information") -> None:
        self.app.notify(text, title=title, severity=severity, markup=False)

    def _open(self, screen: Screen[Any], callback: Callable[[Any], None] | None = None) -> None:
        open_dialog(self.app, screen, callback)

    def _show_on_card(self, details: CustomerDetails, call_id: str) -> None:
        card = self.app.query_one(CustomerCardView)
        card.details = details.model_copy(update={"call_id": call_id})
        if call_id == self.model.call_id:
            self.identified(details.customer)

    async def _ask(self, command: Any) -> Answer:
        return await ask(self.bus, command)

    def customer(self) -> None:
        """Several customers hold the number: choose; none: the new-customer form."""
        if self._not_now("customer"):
            return
        offer = self._offer()
        assert offer is not None
        pop = offer.pop
        if len(pop.matches) > 1:
            self._open(
                ChoiceDialog(
                    "Who is calling?",
                    [(c.id, customer_line(c)) for c in pop.matches],
                    intro=f"{len(pop.matches)} customers hold {caller_number(pop)}:",
                    hint="1-9 or ↑↓ Enter: choose · Esc: back",
                    wide=True,
                ),
                lambda chosen: self._choose(pop.call_id, chosen),
            )
        elif pop.customer is None or pop.caller_kind is not CallerKind.KNOWN:
            self.open_new_customer_form(pop.call_id, pop.e164 or "", pop.caller_name)
        else:
            self._tell(f"The number is {pop.customer.name}'s only. f: find another customer.")

    def _choose(self, call_id: str, customer_id: int | None) -> None:
        if customer_id is not None:
            self.app.run_worker(self._attach(call_id, customer_id), group="customer")

    async def _attach(self, call_id: str, customer_id: int) -> None:
        answer = await self._ask(
            ChooseCustomer(agent_id=self.model.agent_id, call_id=call_id, customer_id=customer_id)
        )
        if answer.details is None:
            self._tell(answer.error, title="Customer", severity="error")
            return
        self._show_on_card(answer.details, call_id)
        self._tell(f"The caller is {answer.details.customer.name}.")

    def open_new_customer_form(self, call_id: str, number: str, name: str = "") -> None:
        """The new-customer form, the number (and the line's caller-id name) filled in;
        saved, it is the call's."""

        async def submit(values: dict[str, str]) -> Answer:
            return await self._ask(
                CreateCustomer(agent_id=self.model.agent_id, call_id=call_id, **values)
            )

        def done(answer: Answer | None) -> None:
            if answer is not None and answer.details is not None:
                self._show_on_card(answer.details, call_id)
                self._tell(f"{answer.details.customer.name} is a customer now.")

        self._open(new_customer_form(number, submit, name), done)

    # --- search --------------------------------------------------------------------

    def find(self, query: str = "") -> None:
        if self._not_now("find_customer"):
            return
        agent_id = self.model.agent_id

        async def search(text: str) -> Answer:
            return await self._ask(SearchCustomers(agent_id=agent_id, query=text))

        async def show(customer_id: int) -> Answer:
            return await self._ask(ShowCustomer(agent_id=agent_id, customer_id=customer_id))

        self._open(CustomerSearchScreen(search, show, query))

    def act(self, event: CustomerSearchScreen.Act) -> None:
        """What the agent asked about a customer found in the search."""
        customer = event.details.customer
        if event.what == "attach":
            offer = self._offer()
            if offer is None:
                self._tell("No call in hand to attach the customer to.")
                return
            self.app.run_worker(self._attach(offer.pop.call_id, customer.id), group="customer")
        elif event.what == "new_item":
            self.open_service_item_form(customer)
        elif event.what == "escalate":
            self.open_escalation_form(customer, event.details.service_items)
        elif event.what == "dial" and customer.phones:
            self.dial(customer.phones[0].e164)

    # --- details -------------------------------------------------------------------

    def info(self) -> None:
        if self._not_now("customer_info"):
            return
        found = self.call_customer()
        assert found is not None
        self.app.run_worker(self._info(found[0].id), group="customer")

    async def _info(self, customer_id: int) -> None:
        answer = await self._ask(
            ShowCustomer(agent_id=self.model.agent_id, customer_id=customer_id)
        )
        if answer.details is None:
            self._tell(answer.error, title="Customer", severity="error")
            return
        self._open(CustomerInfoScreen(answer.details))

    # --- service items -------------------------------------------------------------

    def service_item(self) -> None:
        if self._not_now("service_item"):
            return
        found = self.call_customer()
        assert found is not None
        self.open_service_item_form(found[0])

    def open_service_item_form(self, customer: Customer) -> None:
        offer = self._offer()
        call_id = offer.pop.call_id if offer is not None else ""

        async def submit(values: dict[str, str]) -> Answer:
            return await self._ask(
                AddServiceItem(
                    agent_id=self.model.agent_id,
                    customer_id=customer.id,
                    title=values["title"],
                    priority=ServicePriority(values["priority"]),
                    due=values["due"].strip().replace(" ", "T", 1),
                    call_id=call_id,
                )
            )

        self._open(
            FormScreen(
                f"New service item · {customer.name}",
                [
                    FormField("title", "Title", placeholder="What is to be done"),
                    FormField(
                        "priority",
                        "Priority",
                        ServicePriority.NORMAL.value,
                        choices=tuple(p.value for p in ServicePriority),
                    ),
                    FormField(
                        "due",
                        f"Due ({customer.time_zone} time; empty: none)",
                        placeholder="2026-11-23 or 2026-11-23 18:00",
                        max_length=32,
                    ),
                ],
                submit,
            ),
            lambda answer: self._item_saved(answer, customer, call_id, "Service item saved."),
        )

    def _item_saved(
        self, answer: Answer | None, customer: Customer, call_id: str, message: str
    ) -> None:
        if answer is None or answer.details is None:
            return
        found = self.call_customer()
        if call_id and found is not None and found[0].id == customer.id:
            self._show_on_card(answer.details, call_id)
        self._tell(message)

    def escalate_item(self) -> None:
        if self._not_now("escalate_item"):
            return
        found = self.call_customer()
        assert found is not None
        self.open_escalation_form(*found)

    def open_escalation_form(self, customer: Customer, items: tuple[ServiceItem, ...]) -> None:
        if not items:
            self._tell(f"{customer.name} has no open service item.")
            return
        offer = self._offer()
        call_id = offer.pop.call_id if offer is not None else ""
        labels = {f"#{item.id} {item.title}": item.id for item in items}

        async def submit(values: dict[str, str]) -> Answer:
            return await self._ask(
                EscalateServiceItem(
                    agent_id=self.model.agent_id, item_id=labels[values["item"]], to=values["to"]
                )
            )

        self._open(
            FormScreen(
                f"Escalate · {customer.name}",
                [
                    FormField("item", "Item", choices=tuple(labels)),
                    FormField(
                        "to", "To whom", placeholder="supervisor, team or agent id", max_length=100
                    ),
                ],
                submit,
            ),
            lambda answer: self._item_saved(answer, customer, call_id, "Item escalated."),
        )

    # --- callbacks -----------------------------------------------------------------

    def callback(self) -> None:
        if self._not_now("callback"):
            return
        offer = self._offer()
        assert offer is not None
        pop = offer.pop
        found = self.call_customer()
        zone = found[0].time_zone if found is not None else ""
        try:
            tz = ZoneInfo(zone) if zone else None
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
        start = datetime.fromtimestamp(self.clock(), tz) + timedelta(days=1)
        suggested = start.replace(hour=10, minute=0).strftime("%Y-%m-%d %H:%M")
        asked: dict[str, str] = {}

        async def submit(values: dict[str, str]) -> Answer:
            asked.clear()
            asked.update(values)
            return await self._ask(
                ScheduleCallback(
                    agent_id=self.model.agent_id,
                    number=values["number"],
                    local_time=values["when"].strip().replace(" ", "T", 1),
                    time_zone=values["time_zone"].strip(),
                    queue=pop.queue,
                    for_agent=self.model.agent_id if values["for"] == FOR_ME else "",
                )
            )

        self._open(
            FormScreen(
                "Callback",
                [
                    FormField("number", "Number", pop.e164 or pop.ani, max_length=64),
                    FormField("when", "When (local time)", suggested, max_length=32),
                    FormField(
                        "time_zone", "Time zone (empty: the customer's)", zone, max_length=64
                    ),
                    FormField("for", "For", FOR_ME, choices=(FOR_ME, FOR_ANYONE)),
                ],
                submit,
                intro="At that moment the callback is offered to you (for me), before your "
                "queue calls, or joins this call's queue (for anyone). Yours goes to anyone "
                "if you log out or are not Ready in time. Empty time: now.",
            ),
            lambda answer: self._callback_saved(answer, pop.call_id, asked, zone),
        )

    def _callback_saved(
        self, answer: Answer | None, call_id: str, asked: dict[str, str], zone: str
    ) -> None:
        """Scheduled: said, and shown on the call's card."""
        if answer is None:
            return
        when = asked.get("when", "").strip() or "now"
        where = asked.get("time_zone", "").strip() or zone
        line = f"{when}{f' ({where})' if where else ''} · {asked.get('for', FOR_ME)}"
        line += f" · {asked['number']}" if asked.get("number") else ""
        self.app.query_one(CustomerCardView).add_callback(call_id, line)
        self._tell(f"Callback scheduled: {line}.")


def new_customer_form(
    number: str, submit: Callable[[dict[str, str]], Awaitable[Answer]], name: str = ""
) -> FormScreen:
    """The new-customer form for an unknown caller, the number (and ``name``, the line's
    caller-id name) filled in."""
    return FormScreen(
        "New customer",
        [
            FormField("name", "Name", name, placeholder="e.g. 欧阳雨桐 or José Núñez"),
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
