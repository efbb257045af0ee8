"""Snapshots of the customer side of the desk at 80x24 and 120x40 with Chinese
customers: the card with several matches, the new-customer form, the search screen with
results. The clock is frozen and the engine scripted, so every run draws the same."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from agent_console.customer_search import CustomerSearchScreen
from agent_console.desktop import AgentDesktop
from agent_console.dialogs import FormScreen
from cti import topics
from cti.bus.memory import InMemoryBus
from cti.models import (
    AgentState,
    CallerKind,
    Customer,
    PhoneNumber,
    Segment,
    ServiceItem,
    ServicePriority,
    ValueExplanation,
    ValueFactor,
)
from cti.protocol import (
    AgentStateChanged,
    CommandResult,
    CustomerSearchResults,
    Login,
    ScreenPop,
    SearchCustomers,
)
from tests.agent_console.fake_engine import FakeEngine
from tests.agent_console.test_desktop import T0, FixedClock, ready
from tests.harness import settle

pytestmark = pytest.mark.console

SIZES = [(80, 24), (120, 40)]
FAMILY = PhoneNumber(raw="138 0000 0001", e164="+8613800000001")
PARENT = Customer(
    id=1,
    name="欧阳建国",
    phones=(FAMILY, PhoneNumber(raw="010-6234 5678", e164="+861062345678")),
    value=91.0,
    segment=Segment.PLATINUM,
    company="北京星辰科技",
    owner="1003",
    email="jg@xingchen.cn",
    time_zone="Asia/Shanghai",
)
CHILD = Customer(id=2, name="欧阳小明", phones=(FAMILY,), value=31.0, segment=Segment.BRONZE)
GUEST = Customer(id=3, name="[bold]Markup[/bold]", phones=(FAMILY,), value=5.0)
ITEM = ServiceItem(
    id=9,
    customer_id=1,
    title="发票抬头错误",
    priority=ServicePriority.URGENT,
    created_at=T0 - 5 * 86400,
    updated_at=T0 - 86400,
    due_at=T0 - 86400,
    escalation_level=1,
    escalated_to="王经理",
)
WHY = ValueExplanation(
    value=91.0,
    segment=Segment.PLATINUM,
    segment_label="platinum",
    factors=(
        ValueFactor(name="monetary", detail="¥52,000 in 12 months", score=95, points=38.0),
        ValueFactor(name="recency", detail="last order 3 days ago", score=98, points=29.4),
    ),
)


def family_pop() -> ScreenPop:
    return ScreenPop(
        call_id="c1",
        queue="sales",
        ani="138 0000 0001",
        e164=FAMILY.e164,
        caller_kind=CallerKind.KNOWN,
        customer=PARENT,
        matches=(PARENT, CHILD, GUEST),
        service_items=(ITEM,),
        value_explanation=WHY,
        waited_s=12.0,
        priority_reason="platinum customer, waited 00:12",
    )


def unknown_pop() -> ScreenPop:
    return ScreenPop(
        call_id="c2",
        queue="sales",
        ani="139 0000 0009",
        e164="+8613900000009",
        caller_kind=CallerKind.UNKNOWN,
        waited_s=3.0,
    )


def offer_then(
    pop: ScreenPop,
    app: AgentDesktop,
    keys: tuple[str, ...],
    clock: FixedClock,
    bus: InMemoryBus,
    kept: list[Any],
) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        engine = await FakeEngine(bus, clock=clock).__aenter__()
        kept.append(engine)
        await ready(pilot)
        await engine.offer(pop.call_id, pop)
        await settle(pilot, lambda: app.view == "offer")
        app.refresh_clock()
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_card_with_several_matches(
    snap_compare: Callable[..., bool], utc: None, size: tuple[int, int]
) -> None:
    clock, bus = FixedClock(), InMemoryBus()
    kept: list[FakeEngine] = []
    app = AgentDesktop(bus, "1001", queues=("sales",), clock=clock)
    assert snap_compare(
        app, terminal_size=size, run_before=offer_then(family_pop(), app, (), clock, bus, kept)
    )


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_new_customer_form(
    snap_compare: Callable[..., bool], utc: None, size: tuple[int, int]
) -> None:
    clock, bus = FixedClock(), InMemoryBus()
    kept: list[FakeEngine] = []
    app = AgentDesktop(bus, "1001", queues=("sales",), clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        await offer_then(unknown_pop(), app, ("c",), clock, bus, kept)(pilot)
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        form = app.screen
        assert isinstance(form, FormScreen)
        form.query_one("#f-name", Input).value = "欧阳雨桐"
        form.show_error("e-mail: 'yt@' is not an address like name@example.com")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def answer_searches(bus: InMemoryBus, attached: asyncio.Event) -> None:
    """Log the agent in and answer every search with the three holders of the number."""
    async with bus.subscribe(topics.ALL_AGENT_COMMANDS) as commands:
        attached.set()
        async for _topic, command in commands:
            if isinstance(command, Login):
                await bus.publish(
                    topics.agent_state(command.agent_id),
                    AgentStateChanged(
                        agent_id=command.agent_id, state=AgentState.NOT_READY, since_wall=T0
                    ),
                    retain=True,
                )
            if isinstance(command, SearchCustomers):
                events = topics.agent_events(command.agent_id)
                await bus.publish(
                    events,
                    CustomerSearchResults(
                        agent_id=command.agent_id,
                        command_id=command.command_id,
                        query=command.query,
                        customers=(PARENT, CHILD, GUEST),
                        more=True,
                    ),
                )
                await bus.publish(events, CommandResult(command_id=command.command_id, ok=True))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_search_screen_with_results(
    snap_compare: Callable[..., bool], utc: None, size: tuple[int, int]
) -> None:
    clock, bus = FixedClock(), InMemoryBus()
    app = AgentDesktop(bus, "1001", queues=("sales",), clock=clock)
    tasks: list[asyncio.Task[None]] = []

    async def run_before(pilot: Pilot[Any]) -> None:
        attached = asyncio.Event()
        tasks.append(asyncio.create_task(answer_searches(bus, attached)))
        await attached.wait()
        await pilot.press("enter")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        await pilot.press("f")
        await settle(pilot, lambda: isinstance(app.screen, CustomerSearchScreen))
        app.screen.query_one("#search-query", Input).value = "欧阳"
        await pilot.press("enter")
        results = app.screen.query_one("#search-results", OptionList)
        await settle(pilot, lambda: results.option_count == 3)
        tasks[0].cancel()  # answered: the scripted engine is done

    assert snap_compare(app, terminal_size=size, run_before=run_before)
