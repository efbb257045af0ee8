"""The desk's customer commands, executed by the real engine on a real temporary store:
search, show, choose among matches, create, service items and escalation. Bad input is
refused with a reason that names the field; nothing crashes and the engine goes on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from cti import protocol, topics
from cti.bus.memory import InMemoryBus, Subscription
from cti.config import load_config
from cti.customers.base import CustomerBase, CustomerFormError, new_customer
from cti.engine.service import EngineService
from cti.models import (
    AgentState,
    Customer,
    Interaction,
    PhoneNumber,
    Segment,
    ServicePriority,
)
from cti.protocol import (
    AcceptOffer,
    AddServiceItem,
    AnyCommand,
    ChooseCustomer,
    CommandResult,
    CompleteWrapUp,
    CreateCustomer,
    CustomerDetails,
    CustomerSearchResults,
    EscalateServiceItem,
    HangUp,
    Login,
    Message,
    SearchCustomers,
    SetReady,
    ShowCustomer,
)
from cti.store.database import Store
from telephony_adapters.sim import SimTrunk
from tests.harness import engine_center, until

pytestmark = pytest.mark.customers

AGENT = "1001"
FAMILY = "+8613800000001"


@dataclass
class Engine:
    service: EngineService
    store: Store
    trunk: SimTrunk
    events: Subscription
    bus: InMemoryBus

    async def send(self, command: AnyCommand) -> tuple[CommandResult, list[Message]]:
        """Send ``command`` and collect what the engine says until its answer (its result,
        or the event that answers it: :func:`cti.protocol.answer`)."""
        await self.bus.publish(topics.agent_commands(command.agent_id), command)
        seen: list[Message] = []
        async with asyncio.timeout(5):
            async for _topic, message in self.events:
                result = protocol.answer(message)
                if result is not None and result.command_id == command.command_id:
                    return result, seen
                seen.append(message)
        raise AssertionError("no answer")  # pragma: no cover

    async def until_state(self, state: AgentState) -> None:
        await until(lambda: self.service.router.agent(AGENT).state is state, what=state.value)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """The engine with AGENT a supervisor (may search and read every customer)."""
    async with start_engine(tmp_path, supervisor=True) as started:
        yield started


@asynccontextmanager
async def start_engine(
    tmp_path: Path, *, supervisor: bool, recent: int = 20
) -> AsyncIterator[Engine]:
    store = await Store.open(tmp_path / "cti.db")
    await store.add_customers(
        [
            Customer(
                id=1,
                name="王建国",
                phones=(PhoneNumber(raw=FAMILY, e164=FAMILY),),
                value=90.0,
                segment=Segment.PLATINUM,
                time_zone="Asia/Shanghai",
            ),
            Customer(
                id=2,
                name="王小明",
                phones=(PhoneNumber(raw=FAMILY, e164=FAMILY),),
                value=30.0,
                segment=Segment.BRONZE,
            ),
            Customer(id=3, name="José Núñez", email="jose@example.org", time_zone="Europe/Madrid"),
        ]
    )
    await store.add_interaction(
        2, Interaction(at=1.7e9, disposition="sale", note="旧订单", script_answers={"q1": "是"})
    )
    bus = InMemoryBus()
    trunk = SimTrunk()
    config = load_config(
        overrides={
            "queues": [{"name": "general", "wrap_up_s": 600}],
            "access": {
                "roles": {"supervisor": {"members": [AGENT] if supervisor else []}},
                "recent_calls": recent,
            },
        }
    )
    try:
        async with (
            engine_center(
                store, config=config, agents={AGENT: ["general"]}, lines=[trunk], bus=bus
            ) as center,
            bus.subscribe(topics.agent_events(AGENT)) as events,
        ):
            yield Engine(center.service, store, trunk, events, bus)
    finally:
        await store.close()


async def ring_and_answer(engine: Engine, ani: str) -> str:
    await engine.send(Login(agent_id=AGENT))
    await engine.send(SetReady(agent_id=AGENT))
    call_id = engine.trunk.ring(ani)
    await engine.until_state(AgentState.RESERVED)
    result, _ = await engine.send(AcceptOffer(agent_id=AGENT, call_id=call_id))
    assert result.ok, result.error
    return call_id


async def test_search_by_partial_chinese_name_number_and_email(engine: Engine) -> None:
    result, seen = await engine.send(SearchCustomers(agent_id=AGENT, query="小明"))
    assert result.ok
    [answer] = [m for m in seen if isinstance(m, CustomerSearchResults)]
    assert [c.id for c in answer.customers] == [2]
    assert not answer.more

    _, seen = await engine.send(SearchCustomers(agent_id=AGENT, query="138 0000 0001", limit=1))
    [answer] = [m for m in seen if isinstance(m, CustomerSearchResults)]
    assert len(answer.customers) == 1
    assert answer.more

    _, seen = await engine.send(SearchCustomers(agent_id=AGENT, query="JOSE@example.org"))
    [answer] = [m for m in seen if isinstance(m, CustomerSearchResults)]
    assert [c.name for c in answer.customers] == ["José Núñez"]


async def test_empty_search_and_unknown_customer_are_refused_with_a_reason(engine: Engine) -> None:
    result, seen = await engine.send(SearchCustomers(agent_id=AGENT, query="   "))
    assert not result.ok
    assert "search: empty" in result.error
    assert not seen
    result, _ = await engine.send(ShowCustomer(agent_id=AGENT, customer_id=999))
    assert not result.ok
    assert "no customer #999" in result.error
    # and the engine goes on
    result, seen = await engine.send(ShowCustomer(agent_id=AGENT, customer_id=2))
    [details] = [m for m in seen if isinstance(m, CustomerDetails)]
    assert result.ok
    assert details.history[0].script_answers == {"q1": "是"}


async def test_choosing_among_matches_sends_record_and_history_to_the_chosen(
    engine: Engine,
) -> None:
    call_id = await ring_and_answer(engine, "138 0000 0001")
    offer = engine.service.pops.current[AGENT]
    assert [c.id for c in offer.pop.matches] == [1, 2]  # the most valuable ranks the call

    result, seen = await engine.send(ChooseCustomer(agent_id=AGENT, call_id=call_id, customer_id=2))
    assert result.ok, result.error
    [details] = [m for m in seen if isinstance(m, CustomerDetails)]
    assert (details.call_id, details.customer.name) == (call_id, "王小明")
    shown = engine.service.pops.current[AGENT].pop.customer  # a snapshot shows the choice
    assert shown is not None
    assert shown.id == 2

    await engine.send(HangUp(agent_id=AGENT, call_id=call_id))
    await engine.until_state(AgentState.WRAP_UP)
    await engine.send(CompleteWrapUp(agent_id=AGENT, call_id=call_id, disposition="sale"))
    await engine.service.flush()
    [record] = await engine.store.calls.records()
    assert record.customer_id == 2
    history = await engine.store.recent_interactions(2)
    assert history[0].call_id == call_id
    assert await engine.store.recent_interactions(1) == ()


async def test_choosing_for_a_call_not_yours_is_refused(engine: Engine) -> None:
    result, _ = await engine.send(ChooseCustomer(agent_id=AGENT, call_id="nope", customer_id=1))
    assert not result.ok
    assert "'nope' is not yours" in result.error


async def test_new_customer_for_an_unknown_caller_is_stored_attached_and_found(
    engine: Engine,
) -> None:
    call_id = await ring_and_answer(engine, "+86 139 0000 0009")
    result, seen = await engine.send(
        CreateCustomer(
            agent_id=AGENT,
            call_id=call_id,
            name="  李  四 ",
            number="139 0000 0009",
            email="li@example.cn",
            company="北京星辰",
        )
    )
    assert result.ok, result.error
    [details] = [m for m in seen if isinstance(m, CustomerDetails)]
    new = details.customer
    assert (new.name, new.language, new.time_zone) == ("李 四", "zh", "Asia/Shanghai")
    assert new.phones[0].e164 == "+8613900000009"
    _, seen = await engine.send(SearchCustomers(agent_id=AGENT, query="李"))
    [found] = [m for m in seen if isinstance(m, CustomerSearchResults)]
    assert [c.id for c in found.customers] == [new.id]

    await engine.send(HangUp(agent_id=AGENT, call_id=call_id))
    await engine.until_state(AgentState.WRAP_UP)
    await engine.send(CompleteWrapUp(agent_id=AGENT, call_id=call_id, disposition="done"))
    await engine.service.flush()
    [record] = await engine.store.calls.records()
    assert record.customer_id == new.id


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"name": " "}, "name: empty"),
        ({"name": "A", "number": "12"}, "number: "),
        ({"name": "A", "email": "not-an-address"}, "e-mail: 'not-an-address' is not"),
        ({"name": "A", "language": "中文"}, "language: "),
        ({"name": "A", "time_zone": "Mars/Olympus"}, "time zone: 'Mars/Olympus' is not"),
        ({"name": "王建国", "number": FAMILY}, "name: customer #1 already has this name"),
    ],
)
async def test_bad_new_customer_is_refused_naming_the_field(
    engine: Engine, fields: dict[str, str], error: str
) -> None:
    before = await engine.store.customer_count()
    result, seen = await engine.send(CreateCustomer(agent_id=AGENT, **fields))
    assert not result.ok
    assert result.error.startswith(error)
    assert not seen
    assert await engine.store.customer_count() == before


async def test_service_item_entry_and_escalation_are_stored(engine: Engine) -> None:
    result, seen = await engine.send(
        AddServiceItem(
            agent_id=AGENT,
            customer_id=1,
            title="发票 开错",
            priority=ServicePriority.HIGH,
            due="2030-01-02T10:00",
        )
    )
    assert result.ok, result.error
    [details] = [m for m in seen if isinstance(m, CustomerDetails)]
    [item] = details.service_items
    assert (item.title, item.priority, item.assignee) == ("发票 开错", ServicePriority.HIGH, AGENT)
    assert item.due_at == 1893549600.0  # 10:00 in Shanghai (the customer's zone) is 02:00 UTC

    result, seen = await engine.send(
        EscalateServiceItem(agent_id=AGENT, item_id=item.id, to="王经理")
    )
    assert result.ok, result.error
    [details] = [m for m in seen if isinstance(m, CustomerDetails)]
    stored = (await CustomerBase(engine.store).service_items(1))[0]
    assert details.service_items == (stored,)
    assert (stored.escalation_level, stored.escalated_to) == (1, "王经理")


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (AddServiceItem(agent_id=AGENT, customer_id=1, title=" "), "title: empty"),
        (
            AddServiceItem(agent_id=AGENT, customer_id=1, title="x", due="soon"),
            "due: 'soon' is not",
        ),
        (AddServiceItem(agent_id=AGENT, customer_id=77, title="x"), "no customer #77"),
        (EscalateServiceItem(agent_id=AGENT, item_id=5, to=""), "to: empty"),
        (EscalateServiceItem(agent_id=AGENT, item_id=5, to="lead"), "no service item 5"),
    ],
)
async def test_bad_service_item_commands_are_refused(
    engine: Engine, command: AnyCommand, error: str
) -> None:
    result, _ = await engine.send(command)
    assert not result.ok
    assert error in result.error
    assert await CustomerBase(engine.store).service_items(1) == ()


async def test_without_a_store_customer_commands_are_refused(engine: Engine) -> None:
    engine.service.desk.base = None
    result, _ = await engine.send(SearchCustomers(agent_id=AGENT, query="王"))
    assert not result.ok
    assert "no customer base" in result.error


def test_new_customer_defaults_from_the_number() -> None:
    london = new_customer(name="Ada", number="+44 20 7946 0958")
    assert (london.language, london.time_zone) == ("en", "Europe/London")
    plain = new_customer(name="Ada", default_time_zone="Asia/Shanghai")
    assert plain.time_zone == "Asia/Shanghai"
    assert plain.phones == ()
    with pytest.raises(CustomerFormError, match=r"^name: holds a control character \(U\+0007\)"):
        new_customer(name="A\x07")
