"""The real desktop against the real engine: a simulated call from ring to Ready again.

No fake here: the engine service routes a call from the simulator trunk to the desk
over the in-memory bus, with the customer looked up in a real SQLite store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_console.desktop import AgentDesktop
from agent_console.widgets import CustomerCardView
from cti.bus.memory import InMemoryBus
from cti.models import AgentState, CallerKind, Customer, PhoneNumber, Segment
from cti.store.database import Store
from telephony_adapters.sim import SimCallState, SimTrunk
from tests.harness import center_config, engine_center, settle

pytestmark = [pytest.mark.console, pytest.mark.integration]

NAMES = {
    1: ("欧阳明月", "+8613800000001"),
    2: ("[bold]Markup[/bold] Test", "+8613800000002"),
}


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[InMemoryBus, SimTrunk, Store]]:
    customers = [
        Customer(
            id=cid,
            name=name,
            phones=(PhoneNumber(raw=e164, e164=e164),),
            value=80.0,
            segment=Segment.GOLD,
        )
        for cid, (name, e164) in NAMES.items()
    ]
    config = center_config([{"name": "general", "wrap_up_s": 600}])
    async with engine_center(tmp_path / "cti.db", config=config, customers=customers) as center:
        yield center.bus, center.trunk, center.store


async def test_ring_pop_answer_hang_up_disposition_ready(
    engine: tuple[InMemoryBus, SimTrunk, Store],
) -> None:
    bus, trunk, store = engine
    app = AgentDesktop(bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("enter")  # log in
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        await pilot.press("r")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)

        call_id = trunk.ring("138 0000 0001")
        await settle(pilot, lambda: app.current_call_id == call_id)
        assert app.agent_state is AgentState.RESERVED
        assert app.offer is not None
        assert app.offer.pop.caller_kind is CallerKind.KNOWN
        card = app.query_one("#pop-card", CustomerCardView)
        assert "欧阳明月" in str(card.render())

        await pilot.press("a")
        await settle(pilot, lambda: app.agent_state is AgentState.TALKING)
        assert trunk.state(call_id) is SimCallState.ANSWERED

        await pilot.press("h")
        await settle(pilot, lambda: app.agent_state is AgentState.WRAP_UP)
        assert trunk.state(call_id) is None

        await pilot.press("3")  # the third disposition: "sale"
        await settle(pilot, lambda: app.agent_state is AgentState.READY)
        assert app.current_call_id is None

    [record] = await store.calls.records()
    assert (record.call_id, record.outcome, record.disposition) == (call_id, "answered", "sale")
    assert record.agent_id == "1001"
    assert record.customer_id == 1


async def test_markup_name_from_the_store_shows_literally(
    engine: tuple[InMemoryBus, SimTrunk, Store],
) -> None:
    bus, trunk, _ = engine
    app = AgentDesktop(bus, "1001", queues=["general"])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("enter")
        await settle(pilot, lambda: app.agent_state is AgentState.NOT_READY)
        await pilot.press("r")
        await settle(pilot, lambda: app.agent_state is AgentState.READY)
        trunk.ring("+86 138 0000 0002")
        await settle(pilot, lambda: app.offer is not None)
        card = app.query_one("#pop-card", CustomerCardView)
        drawn = [card.render_line(y).text for y in range(card.size.height)]
        shown = "\n".join(drawn)
        assert "[bold]Markup[/bold] Test" in shown
