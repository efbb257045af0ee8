"""The desk's customer side with Pilot against the real engine in-process and a real
temporary store: choose among matches, the new-customer form, search with history,
service items and escalation, callbacks. What each action stores is read back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from agent_console.customer_search import CustomerSearchScreen
from agent_console.desktop import AgentDesktop
from agent_console.dialogs import ChoiceDialog, FormScreen
from agent_console.widgets import CustomerCardView
from cti.customers.base import CustomerBase
from cti.models import AgentState, Customer, Interaction, PhoneNumber, Segment
from queue_engine.router import CallPhase
from tests.harness import Center, center_config, engine_center, settle

pytestmark = [pytest.mark.console, pytest.mark.integration]

FAMILY = "+8613800000001"


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    customers = [
        Customer(
            id=1,
            name="王建国",
            phones=(PhoneNumber(raw="138 0000 0001", e164=FAMILY),),
            value=90.0,
            segment=Segment.PLATINUM,
            company="北京星辰科技",
            time_zone="Asia/Shanghai",
        ),
        Customer(
            id=2,
            name="王小明",
            phones=(PhoneNumber(raw="138 0000 0001", e164=FAMILY),),
            value=30.0,
            segment=Segment.BRONZE,
        ),
    ]
    config = center_config(
        [{"name": "general", "wrap_up_s": 600}],
        # 1001 may search; 1002 is a plain agent
        access={"roles": {"supervisor": {"members": ["1001"]}}},
    )
    agents = {"1001": ["general"], "1002": ["general"]}
    async with engine_center(
        tmp_path / "cti.db", config=config, agents=agents, customers=customers
    ) as center:
        await center.store.add_interaction(
            2,
            Interaction(
                at=1.7e9, disposition="sale", note="换了套餐", script_answers={"满意": "是"}
            ),
        )
        yield center


async def ready(pilot: Pilot[Any], app: AgentDesktop) -> None:
    await pilot.press("enter")
    await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
    await pilot.press("r")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)


def card_text(app: AgentDesktop) -> str:
    return str(app.query_one(CustomerCardView).render())


async def finish_call(pilot: Pilot[Any], app: AgentDesktop) -> None:
    await pilot.press("a")
    await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
    await pilot.press("h")
    await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
    await pilot.press("1")
    await settle(pilot, lambda: app.agent_state is AgentState.READY)


async def test_choosing_among_matches_sends_the_record_to_the_chosen(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        call_id = center.trunk.ring("138 0000 0001")
        await settle(pilot, lambda: app.offer is not None)
        assert "2 customers hold this number · c: choose" in card_text(app)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("2")  # 王小明, the second (less valuable) holder
        card = app.query_one(CustomerCardView)
        await settle(pilot, lambda: card.details is not None)
        assert "Name      王小明" in card_text(app)
        assert "换了套餐" in card_text(app)  # the chosen customer's history
        await finish_call(pilot, app)
    await center.service.flush()
    [record] = await center.store.calls.records()
    assert (record.call_id, record.customer_id) == (call_id, 2)
    assert (await center.store.recent_interactions(2))[0].call_id == call_id


async def test_new_customer_form_stores_the_caller_found_by_search_afterwards(
    center: Center,
) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        center.trunk.ring("139 0000 0009")
        await settle(pilot, lambda: app.offer is not None)
        assert "New caller · c: new-customer form" in card_text(app)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        form = app.screen
        assert form.query_one("#f-number", Input).value == "+8613900000009"
        form.query_one("#f-email", Input).value = "li@"  # refused in the form first
        form.query_one("#f-name", Input).value = "李四"
        await pilot.press("ctrl+s")
        error = form.query_one("#form-error", Static)
        await settle(pilot, lambda: "e-mail:" in str(error.render()))
        assert form.query_one("#f-email", Input).has_class("-invalid")
        form.query_one("#f-email", Input).value = "li@example.cn"
        await pilot.press("ctrl+s")
        card = app.query_one(CustomerCardView)
        await settle(pilot, lambda: card.details is not None)
        assert "Name      李四" in card_text(app)
        await finish_call(pilot, app)

        await pilot.press("f")
        await settle(pilot, lambda: isinstance(app.screen, CustomerSearchScreen))
        app.screen.query_one("#search-query", Input).value = "李"
        await pilot.press("enter")
        results = app.screen.query_one("#search-results", OptionList)
        await settle(pilot, lambda: results.option_count > 0)
        assert "李四" in str(results.get_option_at_index(0).prompt)
    [stored] = await CustomerBase(center.store).search("李四")
    assert stored.email == "li@example.cn"
    assert stored.phones[0].e164 == "+8613900000009"
    [record] = await center.store.calls.records()
    assert record.customer_id == stored.id


async def test_search_by_a_chinese_partial_name_shows_history_with_script_answers(
    center: Center,
) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        await pilot.press("f")
        await settle(pilot, lambda: isinstance(app.screen, CustomerSearchScreen))
        app.screen.query_one("#search-query", Input).value = "小明"
        await pilot.press("enter")
        results = app.screen.query_one("#search-results", OptionList)
        await settle(pilot, lambda: results.option_count == 1)
        await pilot.press("enter")  # the list has the focus: show the customer
        details = app.screen.query_one("#details", Static)
        await settle(pilot, lambda: "换了套餐" in str(details.render()))
        assert "满意: 是" in str(details.render())
        await pilot.press("d")  # dial this customer for the agent
        await settle(pilot, lambda: bool(center.trunk.dialled))
        assert [number for _, number in center.trunk.dialled] == ["+8613800000001"]
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, CustomerSearchScreen))
        await settle(pilot, lambda: app.view == "talking")  # the dialled call is the agent's


async def test_service_item_entry_and_escalation_are_stored(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        center.trunk.ring(FAMILY)  # 王建国 ranks the call: the card's customer
        await settle(pilot, lambda: app.offer is not None)
        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        app.set_focus(None)  # the keys go to the desk, not the script
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        app.screen.query_one("#f-title", Input).value = "发票开错了"
        app.screen.query_one("#f-due", Input).value = "2030-01-02 10:00"
        await pilot.press("ctrl+s")
        card = app.query_one(CustomerCardView)
        await settle(pilot, lambda: card.details is not None and bool(card.details.service_items))
        assert "[normal] 发票开错了 · open · due 2030-01-02" in card_text(app)

        await pilot.press("u")
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        app.screen.query_one("#f-to", Input).value = "王经理"
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: "escalated 1 → 王经理" in card_text(app))
    [item] = await CustomerBase(center.store).service_items(1)
    assert (item.title, item.escalation_level, item.escalated_to) == ("发票开错了", 1, "王经理")
    assert item.due_at == 1893549600.0  # 10:00 in Asia/Shanghai, the customer's zone


async def test_callback_from_wrap_up_is_scheduled(center: Center) -> None:
    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        center.trunk.ring(FAMILY)
        await settle(pilot, lambda: app.offer is not None)
        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        await pilot.press("h")
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
        await pilot.press("b")
        await settle(pilot, lambda: isinstance(app.screen, FormScreen))
        assert app.screen.query_one("#f-time_zone", Input).value == "Asia/Shanghai"
        # the suggested time (tomorrow 10:00) is within the callback horizon
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: not isinstance(app.screen, FormScreen))
    router = center.service.router
    scheduled = [c for c in router.active_call_ids() if router.call_phase(c) is CallPhase.SCHEDULED]
    assert len(scheduled) == 1
    assert router.call_caller(scheduled[0]).e164 == FAMILY


@pytest.mark.security
async def test_a_plain_agents_search_is_refused_with_the_reason_on_the_desk(
    center: Center,
) -> None:
    app = AgentDesktop(center.bus, "1002", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        await pilot.press("f")
        await settle(pilot, lambda: isinstance(app.screen, CustomerSearchScreen))
        app.screen.query_one("#search-query", Input).value = "王"
        await pilot.press("enter")
        status = app.screen.query_one("#search-status", Static)
        await settle(pilot, lambda: "may not search" in str(status.render()))
        assert str(status.render()).startswith("search: your role (agent) may not search")
        assert app.screen.query_one("#search-results", OptionList).option_count == 0


async def test_i_opens_the_callers_details_during_the_call(center: Center) -> None:
    from agent_console.dialogs import CustomerInfoScreen

    app = AgentDesktop(center.bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        center.trunk.ring("138 0000 0001")
        await settle(pilot, lambda: app.offer is not None)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        await pilot.press("1")
        card = app.query_one(CustomerCardView)
        await settle(pilot, lambda: card.details is not None)
        await pilot.press("i")
        await settle(pilot, lambda: isinstance(app.screen, CustomerInfoScreen))
        assert "北京星辰科技" in str(app.screen.query_one(Static).render())
