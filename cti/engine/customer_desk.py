"""The desk's customer commands: search, show, choose or create a call's customer,
open and escalate service items; who may read which customer (config ``[access]``);
and the customer audit trail, where every look, search and change is kept, allowed or
refused, and every card an agent is offered (:class:`AuditTrail`)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime

from cti import log_limits, topics
from cti.clock import wall_time
from cti.config import Config
from cti.customers.base import AuditEntry, CustomerBase, new_customer, safe_text, text_problem
from cti.engine.callbacks import local_to_epoch
from cti.engine.card_budget import fit_card, fit_search_results
from cti.engine.screen_pop import ScreenPops, customers_on
from cti.errors import CtiError, StoreError
from cti.models import AgentState, Customer
from cti.protocol import (
    AddServiceItem,
    AnyCommand,
    CallOffered,
    ChooseCustomer,
    CreateCustomer,
    CustomerDetails,
    CustomerSearchResults,
    EscalateServiceItem,
    Message,
    SearchCustomers,
    ShowCustomer,
)
from cti.scoring import score
from queue_engine.router import Router

log = logging.getLogger(__name__)

CustomerCommand = (
    ChooseCustomer
    | CreateCustomer
    | SearchCustomers
    | ShowCustomer
    | AddServiceItem
    | EscalateServiceItem
)
#: Audit entries of offered cards waiting for the store at most (a full disk): beyond,
#: the oldest are logged and dropped, never the routing held up.
MAX_QUEUED_AUDIT = 10_000


class AuditTrail:
    """Keeps audit entries in the store: at once for the desk's commands (the agent
    waits for those anyway), queued for the cards offered (the routing path never waits
    for the store; :meth:`serve` writes them in order). A store failure is logged: the
    desk keeps working."""

    def __init__(self, base: CustomerBase) -> None:
        self._base = base
        self._queue: deque[AuditEntry] = deque()
        self._queued = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0
        """Queued entries dropped because the queue was full (each logged)."""

    async def keep(self, entry: AuditEntry) -> None:
        try:
            await self._base.audit(entry)
        except StoreError as exc:
            log_limits.error(log, "customer audit entry not kept (%s): %s", entry, exc)

    def queue(self, entry: AuditEntry) -> None:
        """Keep ``entry`` soon, without waiting (see :meth:`serve`)."""
        if len(self._queue) >= MAX_QUEUED_AUDIT:
            self.dropped += 1
            log_limits.error(log, "customer audit entry not kept (queue full): %s",
                             self._queue.popleft())  # fmt: skip
        self._queue.append(entry)
        self._idle.clear()
        self._queued.set()

    def offered(self, offer: CallOffered, wall: float) -> None:
        """The card of ``offer`` was put before its agent: one look per customer on it."""
        for customer_id in customers_on(offer.pop):
            detail = f"offered call {offer.pop.call_id}"
            self.queue(AuditEntry(wall, offer.agent_id, "offer", customer_id, True, detail))

    async def serve(self) -> None:
        """Write the queued entries, oldest first (run as a task)."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            await self.drain()

    async def drain(self) -> None:
        """Write the entries queued now, oldest first."""
        while self._queue:
            await self.keep(self._queue.popleft())
        self._idle.set()

    async def flush(self) -> None:
        """Wait until every entry queued so far is written (or logged as not kept)."""
        await self._idle.wait()


class CustomerDesk:
    """Runs the desk's customer commands (module docstring). ``call_customer``: call ->
    the customer the agent chose or created for it (its record and history go there)."""

    def __init__(
        self,
        base: CustomerBase | None,
        config: Callable[[], Config],
        router: Router,
        pops: ScreenPops,
        send: Callable[[str, Message], None],
    ) -> None:
        self.base = base
        self.trail = AuditTrail(base) if base is not None else None
        self._config = config
        self._router = router
        self._pops = pops
        self._send = send
        self.call_customer: dict[str, Customer] = {}

    async def run(self, command: CustomerCommand) -> None:
        """Run one customer command on the customer base and send its answer (search
        results or the customer's details) to the agent, ahead of the CommandResult.
        Raises :class:`CtiError` saying what was wrong."""
        if self.base is None:
            raise CtiError("this engine has no customer base (no store): customer commands")
        agent, call_id = command.agent_id, ""
        match command:
            case SearchCustomers():
                await self._search(command)
                return
            case ShowCustomer(customer_id=customer_id, history=history):
                await self._may_read(agent, "show", customer_id)
                customer = await self._customer(customer_id)
                await self._audit(agent, "show", customer_id)
                await self._send_details(command, customer, history=history)
                return
            case ChooseCustomer(call_id=call_id, customer_id=customer_id):
                self._check_on_call(agent, call_id)
                await self._may_read(agent, "choose", customer_id)
                customer = await self._customer(customer_id)
                await self._audit(agent, "choose", customer_id, f"for call {call_id}")
            case CreateCustomer(call_id=call_id):
                customer = await self._create(command)
            case AddServiceItem():
                customer = await self._add_item(command)
            case EscalateServiceItem():
                customer = await self._escalate(command)
        if call_id:
            self.call_customer[call_id] = customer
        await self._send_details(command, customer, call_id=call_id)

    async def _search(self, command: SearchCustomers) -> None:
        assert self.base is not None
        agent, query, limit = command.agent_id, command.query, command.limit
        if not query.strip():
            raise CtiError("search: empty; type a number, a name, #id or an e-mail")
        access = self._config().access
        if not access.may_search(agent):
            await self._audit(agent, "search", None, f"{query!r}", allowed=False)
            raise CtiError(
                f"search: your role ({access.role_of(agent)}) may not search the customer"
                " base; the customers of your calls are on your card (c: choose, i: details)"
            )
        region = self._config().engine.default_region
        found = await self.base.search(query, default_region=region, limit=limit + 1)
        shown = found[:limit]
        await self._audit(agent, "search", None, f"{query!r} found {[c.id for c in shown]}")
        results = CustomerSearchResults(
            agent_id=agent,
            command_id=command.command_id,
            query=query,
            customers=tuple(shown),
            more=len(found) > limit,
        )
        self._send(topics.agent_events(agent), fit_search_results(results))

    async def _create(self, command: CreateCustomer) -> Customer:
        assert self.base is not None
        agent, call_id = command.agent_id, command.call_id
        if call_id:
            self._check_on_call(agent, call_id)
        engine = self._config().engine
        customer = await self.base.create_customer(
            new_customer(
                name=command.name,
                number=command.number,
                email=command.email,
                company=command.company,
                language=command.language,
                time_zone=command.time_zone,
                default_region=engine.default_region,
                default_time_zone=engine.time_zone,
            )
        )
        log.info("agent %s created customer %d", agent, customer.id)
        await self._audit(agent, "create", customer.id, f"for call {call_id}")
        return customer

    async def _add_item(self, command: AddServiceItem) -> Customer:
        assert self.base is not None
        agent, title = command.agent_id, command.title
        await self._may_read(agent, "item", command.customer_id)
        customer = await self._customer(command.customer_id)
        if not title.strip():
            raise CtiError("title: empty; say in a few words what is to be done")
        if (problem := text_problem(title)) is not None:
            raise CtiError(f"title: {problem}")
        due = None
        if command.due:
            local = command.due if "T" in command.due else f"{command.due}T23:59"
            try:
                datetime.fromisoformat(local)
            except ValueError:
                raise CtiError(
                    f"due: {command.due!r} is not a date or time such as 2026-11-23"
                    " or 2026-11-23T18:00"
                ) from None
            due = local_to_epoch(local, command.time_zone or customer.time_zone)
        detail = safe_text(command.detail)
        if command.call_id:
            detail = f"{detail}\n(call {command.call_id})".strip()
        await self.base.open_service_item(
            customer.id,
            " ".join(title.split()),
            now=wall_time(),
            detail=detail,
            priority=command.priority,
            due_at=due,
            assignee=agent,
        )
        await self._audit(agent, "item", customer.id, " ".join(title.split()))
        return customer

    async def _escalate(self, command: EscalateServiceItem) -> Customer:
        assert self.base is not None
        agent, item_id, to = command.agent_id, command.item_id, command.to
        if not to.strip():
            raise CtiError("to: empty; name the supervisor, team or agent to escalate to")
        if (problem := text_problem(to)) is not None:
            raise CtiError(f"to: {problem}")
        item = await self.base.service_item(item_id)
        await self._may_read(agent, "escalate", item.customer_id)
        item = await self.base.escalate_service_item(item_id, to.strip(), now=wall_time())
        customer = await self._customer(item.customer_id)
        await self._audit(agent, "escalate", customer.id, f"item {item_id} to {to.strip()}")
        return customer

    def _check_on_call(self, agent_id: str, call_id: str) -> None:
        """The agent is on ``call_id`` (offered, talking or wrapping up) or CtiError."""
        if not self._router.has_agent(agent_id):
            raise CtiError(f"agent {agent_id!r} is not configured")
        agent = self._router.agent(agent_id)
        if agent.call_id != call_id or agent.state not in (
            AgentState.RESERVED,
            AgentState.TALKING,
            AgentState.WRAP_UP,
        ):
            raise CtiError(f"call {call_id!r} is not yours now: its customer cannot be set")

    async def _may_read(self, agent_id: str, action: str, customer_id: int) -> None:
        """CtiError (kept in the audit trail) unless the agent may read the customer: one
        of their current or recent calls', or any with a search right (config [access])."""
        access = self._config().access
        if access.may_search(agent_id) or customer_id in await self._customers_of(agent_id):
            return
        reason = (
            f"customer #{customer_id} is not one of your calls' customers, and your role"
            f" ({access.role_of(agent_id)}) may not read others; ask a supervisor"
        )
        await self._audit(agent_id, action, customer_id, reason, allowed=False)
        raise CtiError(reason)

    async def _customers_of(self, agent_id: str) -> set[int]:
        """The customers of the agent's call in hand (its caller, the customers holding
        its number, the one chosen) and of their recent calls."""
        assert self.base is not None
        ids: set[int] = set()
        for book in (self._pops.offers, self._pops.current):
            offer = book.get(agent_id)
            if offer is None:
                continue
            pop = offer.pop
            ids.update(c.id for c in pop.matches)
            chosen = self.call_customer.get(pop.call_id, pop.customer)
            ids.update(c.id for c in (pop.customer, chosen) if c is not None)
        access = self._config().access
        since = wall_time() - access.recent_hours * 3600.0
        return ids | await self.base.recent_customers_of(
            agent_id, since=since, limit=access.recent_calls
        )

    async def _audit(
        self,
        agent_id: str,
        action: str,
        customer_id: int | None,
        detail: str = "",
        *,
        allowed: bool = True,
    ) -> None:
        """Keep a look, search or change in the customer audit trail."""
        assert self.trail is not None
        await self.trail.keep(
            AuditEntry(wall_time(), agent_id, action, customer_id, allowed, detail)
        )

    async def _customer(self, customer_id: int) -> Customer:
        assert self.base is not None
        customer = await self.base.get(customer_id)
        if customer is None:
            raise CtiError(f"there is no customer #{customer_id}")
        return customer

    async def _send_details(
        self,
        command: AnyCommand,
        customer: Customer,
        *,
        call_id: str = "",
        history: int = 5,
    ) -> None:
        """Send the customer's card; with ``call_id``, also make it that call's card (so
        a console that asks for a snapshot gets it back)."""
        assert self.base is not None
        card = await self.base.card(customer.id, history_limit=history)
        inputs = card.value_inputs
        details = fit_card(
            CustomerDetails(
                agent_id=command.agent_id,
                command_id=command.command_id,
                call_id=call_id,
                customer=customer,
                history=card.history,
                service_items=card.service_items,
                value_explanation=None
                if inputs is None
                else score(inputs, self._config().customers),
            )
        )
        if call_id:
            self._pops.chosen(command.agent_id, call_id, customer, details)
        self._send(topics.agent_events(command.agent_id), details)
