"""The customer side of the agent desktop: keys, actions and what the engine answers.

:class:`CustomerActions` is a base class of :class:`~agent_console.desktop.AgentDesktop`
(Textual merges the ``BINDINGS`` of every class in the hierarchy, so its keys join the
desk's footer and command palette). It reads the desk's call in hand through the desk's
public properties and never changes the call's state:

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

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widget import Widget

from agent_console.customer_link import Answer, ask
from agent_console.customer_screens import (
    ChooseCustomerScreen,
    CustomerInfoScreen,
    CustomerSearchScreen,
    FormField,
    FormScreen,
    new_customer_form,
)
from agent_console.widgets import CustomerCard, caller_number
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

#: The actions of this class, for the desk's check_action.
CUSTOMER_ACTIONS = frozenset(
    {"customer", "find_customer", "customer_info", "service_item", "escalate_item", "callback"}
)
_ON_CALL = ("offer", "talking", "wrap_up")
#: The callback form's choices: reserved for this agent, or for anyone in the queue.
FOR_ME = "for me"
FOR_ANYONE = "for anyone"


class CustomerActions(App[None]):
    """Customer keys for the agent desktop (see the module docstring)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "customer", "Caller"),
        Binding("f", "find_customer", "Find"),
        Binding("i", "customer_info", "Details"),
        Binding("t", "service_item", "New item"),
        Binding("u", "escalate_item", "Escalate"),
        Binding("b", "callback", "Callback"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Textual merges BINDINGS base class first, so these keys would lead the footer;
        # the desk's call keys (answer, hang up...) matter more and go first.
        keys = self._bindings.key_to_bindings
        for binding in CustomerActions.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.key in keys:
                keys[binding.key] = keys.pop(binding.key)

    # What the desk provides (AgentDesktop's attributes and properties).
    bus: Bus
    _clock: Callable[[], float]

    @property
    def agent_id(self) -> str:
        raise NotImplementedError

    @property
    def offer(self) -> CallOffered | None:
        raise NotImplementedError

    @property
    def current_call_id(self) -> str | None:
        raise NotImplementedError

    @property
    def view(self) -> str:
        raise NotImplementedError

    # --- the caller's customer -----------------------------------------------------

    def on_mount(self) -> None:
        self.query_one(CustomerCard).clock = self._clock

    def _cx_offer(self) -> CallOffered | None:
        """The offer of the call in hand, if any."""
        offer = self.offer
        if offer is None or offer.pop.call_id != self.current_call_id or self.view not in _ON_CALL:
            return None
        return offer

    def _cx_chosen(self) -> CustomerDetails | None:
        offer = self._cx_offer()
        details = self.query_one(CustomerCard).details
        if offer is None or details is None or details.call_id != offer.pop.call_id:
            return None
        return details

    def call_customer(self) -> tuple[Customer, tuple[ServiceItem, ...]] | None:
        """The customer of the call in hand (chosen, created, or the one the number
        found) with its open items; ``None`` when the caller is not known."""
        chosen = self._cx_chosen()
        if chosen is not None:
            return chosen.customer, chosen.service_items
        offer = self._cx_offer()
        if offer is None or offer.pop.customer is None:
            return None
        if offer.pop.caller_kind is not CallerKind.KNOWN:
            return None
        return offer.pop.customer, offer.pop.service_items

    def customer_action_enabled(self, action: str) -> bool:
        """Whether a customer action applies now (the desk shows it disabled if not)."""
        if action == "find_customer":
            return self.view != "login"
        if action == "customer":
            return self._cx_offer() is not None
        if action in ("customer_info", "service_item"):
            return self.call_customer() is not None
        if action == "escalate_item":
            found = self.call_customer()
            return found is not None and bool(found[1])
        if action == "callback":
            return self.view in ("talking", "wrap_up") and self._cx_offer() is not None
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in CUSTOMER_ACTIONS:
            return True if self.customer_action_enabled(action) else None
        return True

    def _cx_not_now(self, action: str, why: str) -> bool:
        if self.customer_action_enabled(action):
            return False
        self.notify(why, severity="warning", markup=False)
        return True

    def _cx_push(self, screen: Screen[Any], callback: Callable[[Any], None] | None = None) -> None:
        """Open one of the customer screens; on return the focus goes back where it was
        (the desk's screen would otherwise focus its first field, and the call keys would
        type into it)."""
        before = self.focused

        def back(result: Any) -> None:
            if callback is not None:
                callback(result)
            self.call_after_refresh(self._cx_refocus, before)

        self.push_screen(screen, back)

    def _cx_refocus(self, widget: Widget | None) -> None:
        if widget is None or widget.is_attached:
            self.screen.set_focus(widget)

    def _cx_show_on_card(self, details: CustomerDetails, call_id: str) -> None:
        card = self.query_one(CustomerCard)
        card.details = details.model_copy(update={"call_id": call_id})

    async def _cx_ask(self, command: Any) -> Answer:
        answer = await ask(self.bus, command)
        return answer

    def action_customer(self) -> None:
        """Several customers hold the number: choose; none: the new-customer form."""
        if self._cx_not_now("customer", "No call in hand: c works on the caller's card."):
            return
        offer = self._cx_offer()
        assert offer is not None
        pop = offer.pop
        if len(pop.matches) > 1:
            self._cx_push(
                ChooseCustomerScreen(pop.matches, caller_number(pop)),
                lambda chosen: self._cx_choose(pop.call_id, chosen),
            )
        elif pop.customer is None or pop.caller_kind is not CallerKind.KNOWN:
            self.open_new_customer_form(pop.call_id, pop.e164 or "")
        else:
            self.notify(
                f"The number is {pop.customer.name}'s only. f: find another customer.",
                markup=False,
            )

    def _cx_choose(self, call_id: str, customer_id: int | None) -> None:
        if customer_id is not None:
            self.run_worker(self._cx_attach(call_id, customer_id), group="customer")

    async def _cx_attach(self, call_id: str, customer_id: int) -> None:
        answer = await self._cx_ask(
            ChooseCustomer(agent_id=self.agent_id, call_id=call_id, customer_id=customer_id)
        )
        if answer.details is None:
            self.notify(answer.error, title="Customer", severity="error", markup=False)
            return
        self._cx_show_on_card(answer.details, call_id)
        self.notify(f"The caller is {answer.details.customer.name}.", markup=False)

    def open_new_customer_form(self, call_id: str, number: str) -> None:
        """The new-customer form, the number filled in; saved, it is the call's."""

        async def submit(values: dict[str, str]) -> Answer:
            return await self._cx_ask(
                CreateCustomer(agent_id=self.agent_id, call_id=call_id, **values)
            )

        def done(answer: Answer | None) -> None:
            if answer is not None and answer.details is not None:
                self._cx_show_on_card(answer.details, call_id)
                self.notify(f"{answer.details.customer.name} is a customer now.", markup=False)

        self._cx_push(new_customer_form(number, submit), done)

    # --- search --------------------------------------------------------------------

    def action_find_customer(self, query: str = "") -> None:
        if self._cx_not_now("find_customer", "Log in first."):
            return

        async def search(text: str) -> Answer:
            return await self._cx_ask(SearchCustomers(agent_id=self.agent_id, query=text))

        async def show(customer_id: int) -> Answer:
            return await self._cx_ask(ShowCustomer(agent_id=self.agent_id, customer_id=customer_id))

        self._cx_push(CustomerSearchScreen(search, show, query))

    def on_customer_search_screen_act(self, event: CustomerSearchScreen.Act) -> None:
        event.stop()
        customer = event.details.customer
        if event.what == "attach":
            offer = self._cx_offer()
            if offer is None:
                self.notify("No call in hand to attach the customer to.", markup=False)
                return
            self.run_worker(self._cx_attach(offer.pop.call_id, customer.id), group="customer")
        elif event.what == "new_item":
            self.open_service_item_form(customer)
        elif event.what == "escalate":
            self.open_escalation_form(customer, event.details.service_items)
        elif event.what == "dial" and customer.phones:
            self.dial_customer(customer.phones[0].e164, customer.id)

    def dial_customer(self, number: str, customer_id: int) -> None:
        """Dial a customer's number (the search screen's ``d``). The call-control side of
        the desk overrides this; until then the agent is told it cannot."""
        self.notify(
            f"Dialling {number} from the desk is not available yet.",
            severity="warning",
            markup=False,
        )

    # --- details -------------------------------------------------------------------

    def action_customer_info(self) -> None:
        if self._cx_not_now("customer_info", "No known caller: c or f first."):
            return
        found = self.call_customer()
        assert found is not None
        self.run_worker(self._cx_info(found[0].id), group="customer")

    async def _cx_info(self, customer_id: int) -> None:
        answer = await self._cx_ask(ShowCustomer(agent_id=self.agent_id, customer_id=customer_id))
        if answer.details is None:
            self.notify(answer.error, title="Customer", severity="error", markup=False)
            return
        self._cx_push(CustomerInfoScreen(answer.details))

    # --- service items -------------------------------------------------------------

    def action_service_item(self) -> None:
        if self._cx_not_now("service_item", "No known caller: c or f first."):
            return
        found = self.call_customer()
        assert found is not None
        self.open_service_item_form(found[0])

    def open_service_item_form(self, customer: Customer) -> None:
        offer = self._cx_offer()
        call_id = offer.pop.call_id if offer is not None else ""

        async def submit(values: dict[str, str]) -> Answer:
            return await self._cx_ask(
                AddServiceItem(
                    agent_id=self.agent_id,
                    customer_id=customer.id,
                    title=values["title"],
                    priority=ServicePriority(values["priority"]),
                    due=values["due"].strip().replace(" ", "T", 1),
                    call_id=call_id,
                )
            )

        self._cx_push(
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
            lambda answer: self._cx_item_saved(answer, customer, call_id, "Service item saved."),
        )

    def _cx_item_saved(
        self, answer: Answer | None, customer: Customer, call_id: str, message: str
    ) -> None:
        if answer is None or answer.details is None:
            return
        found = self.call_customer()
        if call_id and found is not None and found[0].id == customer.id:
            self._cx_show_on_card(answer.details, call_id)
        self.notify(message, markup=False)

    def action_escalate_item(self) -> None:
        if self._cx_not_now("escalate_item", "The caller has no open service item."):
            return
        found = self.call_customer()
        assert found is not None
        self.open_escalation_form(*found)

    def open_escalation_form(self, customer: Customer, items: tuple[ServiceItem, ...]) -> None:
        if not items:
            self.notify(f"{customer.name} has no open service item.", markup=False)
            return
        offer = self._cx_offer()
        call_id = offer.pop.call_id if offer is not None else ""
        labels = {f"#{item.id} {item.title}": item.id for item in items}

        async def submit(values: dict[str, str]) -> Answer:
            return await self._cx_ask(
                EscalateServiceItem(
                    agent_id=self.agent_id, item_id=labels[values["item"]], to=values["to"]
                )
            )

        self._cx_push(
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
            lambda answer: self._cx_item_saved(answer, customer, call_id, "Item escalated."),
        )

    # --- callbacks -----------------------------------------------------------------

    def action_callback(self) -> None:
        if self._cx_not_now("callback", "A callback is scheduled during or after a call."):
            return
        offer = self._cx_offer()
        assert offer is not None
        pop = offer.pop
        found = self.call_customer()
        zone = found[0].time_zone if found is not None else ""
        try:
            tz = ZoneInfo(zone) if zone else None
        except (ZoneInfoNotFoundError, ValueError):
            tz = None
        start = datetime.fromtimestamp(self._clock(), tz) + timedelta(days=1)
        suggested = start.replace(hour=10, minute=0).strftime("%Y-%m-%d %H:%M")

        async def submit(values: dict[str, str]) -> Answer:
            return await self._cx_ask(
                ScheduleCallback(
                    agent_id=self.agent_id,
                    number=values["number"],
                    local_time=values["when"].strip().replace(" ", "T", 1),
                    time_zone=values["time_zone"].strip(),
                    queue=pop.queue,
                    for_agent=self.agent_id if values["for"] == FOR_ME else "",
                )
            )

        self._cx_push(
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
            self._cx_callback_saved,
        )

    def _cx_callback_saved(self, answer: Answer | None) -> None:
        if answer is not None:
            self.notify("Callback scheduled.", markup=False)
